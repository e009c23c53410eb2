//! medic end to end. Each module is one capability, exercised the way a user would:
//! through the `medic` binary or the engine crates with the real sandbox and sled store.

mod support;

/// The command line itself: schema output, clear errors for unusable stores and unknown runs.
mod cli;
/// Killed at every journal write and at random instants: runs resume, effects never repeat.
mod crash;
/// The checkout-flag example runs end to end with `medic run` against a local service.
mod example_run;
/// Every hostile guest fails only its own step, with a clear reason; the engine carries on.
mod hostile_guests;
/// Python and JavaScript steps run like Rust ones: HTTP, secrets, notes, state, grants, limits.
mod polyglot;
/// Real Prometheus and Alertmanager, started by the test: the harness `medic serve` is tested
/// against, proven here with a plain receiver.
mod prom_stack;
/// A resumed attempt replays its host calls; a different call is a nondeterminism error.
mod replay;
/// Unfinished runs resume from the journal; retry timers survive a restart.
mod resume;
/// `medic serve`: alerts over HTTP start runs; a kill -9 after acknowledging loses nothing.
mod serve;
/// `medic validate` checks components and their params schemas.
mod validate_components;
/// Retries, conditions, templating, durable step state and secrets through real components.
mod workflow_semantics;
