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

/// The path of the component built from `guests/rust/<name>` (`name` is the package name,
/// `"http-probe"`), or `None` when no guest has that name.
pub fn path(name: &str) -> Option<&'static str> {
    ALL.iter().find(|(n, _)| *n == name).map(|(_, p)| *p)
}

/// The guests that none of `sources` (the texts of test files) uses: a guest counts as used
/// where a source names it as a component, as a workflow's `uses: <name>`, the string
/// `"<name>"` (a lookup) or its constant (`HTTP_PROBE`). A guest nothing exercises is dead
/// weight in every build, or a capability whose test was lost; the check in
/// `tests/every_guest_tested.rs` keeps the list empty.
pub fn untested<'a>(sources: impl IntoIterator<Item = &'a str> + Clone) -> Vec<&'static str> {
    ALL.iter()
        .map(|(name, _)| *name)
        .filter(|name| {
            let constant = name.replace('-', "_").to_uppercase();
            let uses = format!("uses: {name}");
            let quoted = format!("\"{name}\"");
            !sources
                .clone()
                .into_iter()
                .any(|text| names(text, &uses) || text.contains(&quoted) || names(text, &constant))
        })
        .collect()
}

/// Whether `text` holds `word` not followed by a name character, so `uses: echo` is not
/// found in `uses: echo-v2`.
fn names(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(at, _)| {
        let next = text[at + word.len()..].chars().next();
        !next.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    })
}
