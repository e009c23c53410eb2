//! Generated bindings, one module per released version of the `medic:step` WIT package
//! (see docs/wit-versioning.md). A released version's folder under `wit/` is frozen, so
//! each module here is fixed once written; `versions.rs` adapts the older ones to the
//! newest, which is the only one the rest of the sandbox speaks.

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

/// `medic:step@0.2.0`: adds `invocation.deadline-ms`.
pub mod v0_2_0 {
    wasmtime::component::bindgen!({
        path: "../../wit/0.2.0",
        world: "medic:step/step-component",
        imports: { default: trappable },
        exports: { default: async },
        with: {
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        },
    });
}

/// The newest version: what the host implements natively.
pub use v0_2_0 as newest;
