//! medic's executor core: a run is a durable state machine over three traits —
//! [`JournalStore`] (where the journal lives), [`StepRunner`] (what runs a step attempt) and
//! [`Clock`] (time, injected so timers survive restarts and drills can run fast).
//!
//! Every transition is a journal [`Entry`] written (and flushed) before the next side
//! effect starts; a run's state is the fold of its journal ([`RunState`]). After a
//! crash, [`Executor::drive`] continues any run from its journal.
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<dyn medic_core::JournalStore>,
//! #               runner: std::sync::Arc<dyn medic_core::StepRunner>,
//! #               new_run: medic_core::NewRun) -> Result<(), medic_core::ExecutorError> {
//! use medic_core::{Executor, EnvSecrets, SystemClock};
//! use std::sync::Arc;
//! let engine = Executor::new(store, runner, Arc::new(SystemClock), Arc::new(EnvSecrets));
//! let run = engine.create_run(new_run)?;
//! let status = engine.drive(&run).await?;
//! println!("run {run}: {}", status.as_str());
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod attempt;
pub mod clock;
pub mod codec;
mod executor;
pub mod gates;
mod instance;
pub mod journal;
pub mod lanes;
mod memstore;
mod random;
mod responder;
mod run;
mod runner;
pub mod secrets;
mod shared;
mod state;
mod store;
pub mod timeline;
mod waker;

pub use clock::{Clock, Entropy, ManualClock, OsEntropy, SystemClock};
pub use executor::{DriveHook, Executor, ExecutorError, LaneOf, RunContext};
pub use instance::{AttemptHost, HostError, HostSetup, HttpPlan};
pub use journal::{
    Body, ClockKind, Entry, Event, Failure, FailureKind, HostCall, HttpOutcome, Level, Observer,
    Recorded, RetryPlan, RunJournal, RunStatus,
};
pub use memstore::MemoryStore;
pub use responder::HttpResponder;
pub use run::{LoadedWorkflow, NewRun, idempotency_key, unfinished_runs};
pub use runner::{
    AttemptRequest, AttemptResult, Grants, Invocation, ResolvedLimits, StepRunner, host_allowed,
};
pub use secrets::{
    EnvSecrets, Redactor, SecretError, SecretSource, StaticSecrets, check_granted, check_secret,
};
pub use state::{LoadError, Next, RunState, StateError, StepState, StepStatus};
pub use store::{Durability, JournalStore, Message, PendingFlush, RunMeta, StoreError};
pub use waker::{Driven, PARK_AFTER_MS};
