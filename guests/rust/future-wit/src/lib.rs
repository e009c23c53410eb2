//! `future-wit`: a TEST-ONLY component that exports `medic:step/step@0.99.0`, a version
//! no medic has released, so the engine's tests can check that an unsupported version
//! is refused with an error naming it and the supported ones.

wit_bindgen::generate!({
    inline: "
        package medic:step@0.99.0;

        interface step {
            describe: func() -> string;
        }

        world step-component {
            export step;
        }
    ",
    world: "step-component",
});

struct FutureWit;

impl exports::medic::step::step::Guest for FutureWit {
    fn describe() -> String {
        "from the future".into()
    }
}

export!(FutureWit);
