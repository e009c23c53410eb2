//! The functions medic's host gives every step (`medic:step/host`): log, secret, annotate
//! and durable step state.
//!
//! In a component they call the host. On any other target (`cargo test` on the machine
//! that builds the step) they use the fake host of [`crate::testing`], so the step's
//! `run` can be unit-tested without medic.

pub use crate::bindings::medic::step::types::Level;

#[cfg(target_family = "wasm")]
use crate::bindings::medic::step::host as imp;
#[cfg(not(target_family = "wasm"))]
use crate::testing::fake as imp;

/// Writes a log line to the run's journal. Never log secret values: the host redacts the
/// secrets it handed out, but cannot know others.
pub fn log(level: Level, message: &str) {
    imp::log(level, message);
}

/// A secret the workflow granted to this step (`secrets:`), or `None` when it was not
/// granted or is not configured (the host logs the refusal).
pub fn secret(name: &str) -> Option<String> {
    imp::secret(name)
}

/// Adds a line to the incident timeline, for the humans following along and the postmortem.
pub fn annotate(message: &str) {
    imp::annotate(message);
}

/// A value this step stored earlier in this run (any attempt).
pub fn state_get(key: &str) -> Option<String> {
    imp::state_get(key)
}

/// Durably stores a value for later attempts of this step in this run (e.g. the revision
/// chosen for a rollback, so a retry does not flip back). Written before this returns.
pub fn state_set(key: &str, value: &str) {
    imp::state_set(key, value);
}
