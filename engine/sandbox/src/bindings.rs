//! Generated bindings, one module per released version of the `medic:step` WIT package
//! (see docs/wit-versioning.md). The host adapts older versions to the newest.

/// `medic:step@0.1.0`.
pub mod v0_1_0 {
    wasmtime::component::bindgen!({
        path: "../../wit/0.1.0",
        world: "medic:step/step-component",
        // Host functions may trap: a journal write that fails must stop the guest.
        imports: { default: trappable },
        exports: { default: async },
        with: {
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        },
    });
}
