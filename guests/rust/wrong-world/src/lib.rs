//! `wrong-world`: a TEST-ONLY component built against a different WIT world than
//! `medic:step`, so the engine's tests can check that a WIT mismatch is reported clearly
//! instead of failing obscurely at call time.

wit_bindgen::generate!({
    inline: "
        package test:wrong-world@1.0.0;

        world not-a-step {
            export run: func(params: string) -> string;
        }
    ",
    world: "not-a-step",
});

struct WrongWorld;

impl Guest for WrongWorld {
    fn run(params: String) -> String {
        params
    }
}

export!(WrongWorld);
