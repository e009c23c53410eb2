//! Drills: replay a past incident against today's workflows, in virtual time, with
//! faults, and compare how it went with how it went before.
//!
//! - [`record()`] turns a run's journal into a [`DrillFile`]: the incident, its status
//!   changes, gate decisions, every provider exchange with its offset, the workflow as it
//!   was, and how the run went. Secrets stay placeholders, volatile headers are dropped.
//! - [`replay::run`] runs a workflow for the recorded incident on a [`DrillClock`] that
//!   jumps to the next due instant whenever nothing runs, with every outgoing request
//!   answered from the recording through the journal's chokepoint (medic-core's
//!   `HttpResponder`), never the network; [`Fault`]s, gate overrides, a fork point and a
//!   crash at journal write N are options.
//! - [`Report`] compares the replay with the recording: a [`Verdict`], time to restore and
//!   to verified (virtual), step by step, and the requests the recording never saw with the
//!   closest recorded one.
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<dyn medic_core::JournalStore>,
//! #               runner: std::sync::Arc<dyn medic_core::StepRunner>,
//! #               setup: medic_drill::Setup) -> Result<(), Box<dyn std::error::Error>> {
//! use medic_drill::{Env, Options, Report};
//! let src = std::fs::read_to_string("examples/drills/bad-flag.yaml")?;
//! let drill = medic_drill::parse("bad-flag.yaml", &src)?;
//! let opts = Options {
//!     faults: vec![medic_drill::Fault::parse("retoggle=503x5")?],
//!     ..Options::default()
//! };
//! let env = Env { store: Some(store), runner, secrets: None, observer: None };
//! let replay = medic_drill::replay::run(&drill, &setup, &opts, &env).await?;
//! let report = Report::new(&drill, &setup, &opts, &replay)?;
//! print!("{}", report.text());
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod clock;
mod crash;
pub mod faults;
pub mod format;
pub mod io;
pub mod live;
pub mod matcher;
pub mod outcome;
pub mod record;
pub mod replay;
pub mod report;
pub mod responder;

pub use clock::DrillClock;
pub use faults::{Fault, FaultKind};
pub use format::{DrillFile, FORMAT_VERSION, Offset};
pub use io::{FormatError, Syntax, drill_schema, parse, write};
pub use outcome::Outcome;
pub use record::record;
pub use replay::{DecideOverride, DrillError, Env, Options, Replay, Setup};
pub use report::{Report, Verdict};

/// Whether a run in medic's store is a kept drill run (what [`replay::run`] copies into
/// [`Env::store`]): its id has `-drill-` and its incident title starts with `[drill] `.
/// `medic runs` marks these, and `medic serve`'s `/metrics` labels them `drill="true"`, so
/// drills never count as real incidents.
pub fn is_drill_run(meta: &medic_core::RunMeta) -> bool {
    meta.id.contains("-drill-") && meta.incident_title.starts_with("[drill] ")
}
