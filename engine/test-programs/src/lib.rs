//! Paths of the guest step components, for the engine's tests and benches.
//!
//! The build script compiles every crate under `guests/rust/` for
//! `wasm32-wasip2` (rustc emits components directly) into this crate's
//! `OUT_DIR`, then generates one constant per guest holding the absolute path
//! of its `.wasm`:
//!
//! - `HTTP_PROBE`, `ECHO`, `HOSTILE`, ... named after the package in
//!   SCREAMING_SNAKE_CASE;
//! - [`ALL`]: `(component name, path)` for every guest, the name being the
//!   package name (`http-probe`).
//!
//! A new guest crate under `guests/rust/` appears here on the next build.
//! The `wasm32-wasip2` target must be installed (`scripts/test` does it).

include!(concat!(env!("OUT_DIR"), "/components.rs"));
