//! The run journal: every transition of a run and every host call a step makes.
//!
//! A run is event-sourced: its state is the fold of its journal ([`crate::RunState`]).
//! Entries are appended and flushed before the next side effect starts, so after a crash
//! the journal says exactly how far the run got. Host calls are journalled through one
//! chokepoint ([`crate::AttemptHost`]) so a later attempt can be replayed against them.

mod replay;
mod tagged;
mod writer;

pub use replay::Recorded;
pub use writer::{Observer, RunJournal};

use crate::store::Durability;
use medic_model::{Decision, Incident, IncidentStatus, Workflow};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One journal record: a sequence number (dense, from 0), when it was written, and what happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Position in the run's journal: 0 is `run_created`, each append the next number.
    pub seq: u64,
    /// Wall-clock milliseconds since the Unix epoch, from the injected clock.
    pub at_ms: u64,
    /// What happened.
    pub event: Event,
}

/// What happened. Tagged by a `type` field so the encoded journal reads well; decoded
/// without buffering when the tag comes first (`tagged.rs`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// Always entry 0: the exact workflow and incident this run started with.
    /// Boxed: it is much larger than every other event.
    RunCreated(Box<RunCreated>),
    /// The step's `if` was false, or an earlier step failed.
    StepSkipped {
        /// The step's id.
        step: String,
        /// Why, for people (`condition is false`).
        reason: String,
    },
    /// The step will not run because the incident resolved by itself (`on-resolved:
    /// cancel`); an open gate is closed undecided. Kept apart from `step_skipped` so a
    /// run that ended this way reads differently from one that restored service.
    StepCancelled {
        /// The step's id.
        step: String,
        /// Why, for people (`the incident resolved (on-resolved: cancel)`).
        reason: String,
    },
    /// An attempt begins. Written before the component is instantiated.
    AttemptStarted {
        /// The step's id.
        step: String,
        /// The attempt's number, from 1.
        attempt: u32,
        /// The same for every attempt of the step in this run ([`crate::idempotency_key`]).
        idempotency_key: String,
        /// Params after templating (secrets are never templated into params).
        params: serde_json::Value,
    },
    /// A host call made by the step during an attempt.
    HostCall {
        /// The step's id.
        step: String,
        /// The attempt's number, from 1.
        attempt: u32,
        /// The call, redacted.
        call: HostCall,
    },
    /// The attempt returned `done`. The step succeeded.
    AttemptSucceeded {
        /// The step's id.
        step: String,
        /// The attempt's number, from 1.
        attempt: u32,
        /// The step's output document, redacted.
        output: serde_json::Value,
        /// How long the attempt ran, milliseconds.
        duration_ms: u64,
    },
    /// The attempt failed (or asked to be retried later). `retry` says what happens
    /// next; `None` means the step has failed for good. Deciding in the same record
    /// keeps "failed" and "retry scheduled" from ever being half-written.
    AttemptFailed {
        /// The step's id.
        step: String,
        /// The attempt's number, from 1.
        attempt: u32,
        /// What went wrong, redacted.
        failure: Failure,
        /// How long the attempt ran, milliseconds.
        duration_ms: u64,
        /// The next attempt and when it may start; `None`: the step failed for good.
        retry: Option<RetryPlan>,
    },
    /// A gate step waits for people. The deadline is a wall-clock instant, so a restart
    /// keeps it (and a deadline that passed while medic was down is taken at start-up).
    GateOpened {
        /// The gate step's id.
        step: String,
        /// The prompt, rendered.
        prompt: String,
        /// Who may decide; empty: anyone.
        #[serde(default)]
        approvers: Vec<String>,
        /// When the default decision is taken: wall-clock ms since the Unix epoch.
        deadline_ms: u64,
        /// The decision taken at the deadline.
        on_deadline: Decision,
    },
    /// A gate was decided, by a person (`by`) or by its deadline (`by_deadline`). The step
    /// succeeded either way: later steps test `steps.<id>.output.approved`.
    GateDecided {
        /// The gate step's id.
        step: String,
        /// Approved or rejected.
        decision: Decision,
        /// Who decided (a person's name; the deadline's own name when `by_deadline`).
        by: String,
        /// Whether the deadline decided.
        by_deadline: bool,
        /// What the person said, if anything.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
    },
    /// The incident changed while the run was going (its alerts resolved, or fired
    /// again). Later steps see the new `incident.status`.
    IncidentUpdated {
        /// The incident's new status.
        status: IncidentStatus,
    },
    /// The run is over.
    RunFinished {
        /// Succeeded or failed.
        status: RunStatus,
        /// Why it failed, for people.
        #[serde(default)]
        reason: Option<String>,
    },
}

/// The payload of [`Event::RunCreated`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunCreated {
    /// The workflow as it was when the run started: what runs, whatever the file says now.
    pub workflow: Workflow,
    /// Where the workflow came from (for people; the snapshot above is what runs).
    pub workflow_file: String,
    /// The incident the run responds to.
    pub incident: Incident,
    /// Step id -> resolved component location, fixed at creation so a resumed run
    /// uses the same components.
    pub components: BTreeMap<String, String>,
    /// A drill: steps see `invocation.drill`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drill: bool,
}

/// When the next attempt of a step may start: a durable timer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryPlan {
    /// The number of the next attempt.
    pub attempt: u32,
    /// Wall-clock milliseconds since the Unix epoch.
    pub not_before_ms: u64,
}

/// Why an attempt failed, in words for the person on call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// The class of failure.
    pub kind: FailureKind,
    /// What happened, in words.
    pub message: String,
    /// Whether another attempt may succeed (the step's retry policy decides if one runs).
    pub retryable: bool,
}

impl Failure {
    /// A failure of `kind` saying `message`.
    pub fn new(kind: FailureKind, retryable: bool, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
            retryable,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

/// The class of an attempt's failure; journalled in kebab-case (`step-error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// The step returned an error.
    StepError,
    /// The step asked to be run again later (`retry-after`).
    NotReady,
    /// Wall-time limit reached.
    Timeout,
    /// Linear memory limit reached.
    MemoryLimit,
    /// The guest trapped (panic, unreachable, stack overflow...).
    Trap,
    /// The output was larger than the step's output limit.
    OutputTooLarge,
    /// The output was not valid JSON.
    InvalidOutput,
    /// The component could not be found, compiled or linked.
    Component,
    /// Params could not be rendered or the condition could not be evaluated.
    Template,
    /// The engine stopped while the attempt was running.
    Interrupted,
    /// The journal could not be written: the attempt's effects are unknown.
    Store,
    /// A resumed attempt asked for a different host call than its journal recorded.
    Nondeterminism,
}

impl FailureKind {
    /// The kind in words, for timelines (`step error`).
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::StepError => "step error",
            FailureKind::NotReady => "not ready",
            FailureKind::Timeout => "timed out",
            FailureKind::MemoryLimit => "memory limit",
            FailureKind::Trap => "trap",
            FailureKind::OutputTooLarge => "output too large",
            FailureKind::InvalidOutput => "invalid output",
            FailureKind::Component => "component",
            FailureKind::Template => "template",
            FailureKind::Interrupted => "interrupted",
            FailureKind::Store => "store",
            FailureKind::Nondeterminism => "nondeterminism",
        }
    }
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Not finished (also: waiting for a retry or a gate, or interrupted).
    Running,
    /// Every step succeeded or was skipped, or failed with `continue-on-error`.
    Succeeded,
    /// A step failed for good.
    Failed,
    /// Nothing failed, but steps were cancelled because the incident resolved by itself
    /// (`on-resolved: cancel`): not a restore.
    Cancelled,
}

impl RunStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [RunStatus; 4] = [
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Cancelled,
    ];

    /// The status spelled as [`as_str`](RunStatus::as_str) spells it.
    pub fn parse(s: &str) -> Option<RunStatus> {
        RunStatus::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// `running`, `succeeded`, `failed` or `cancelled`.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }
}

/// Log levels, as in the WIT `level` enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Finest detail.
    Trace,
    /// Detail for debugging the step.
    Debug,
    /// Normal progress.
    Info,
    /// Something the person on call may want to know.
    Warn,
    /// Something went wrong.
    Error,
}

impl Level {
    /// The level's name, lowercase.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// A host call as journalled. Secret values are redacted before they get here.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum HostCall {
    /// A log line for the person debugging the step.
    Log {
        /// Its level.
        level: Level,
        /// The line, redacted.
        message: String,
    },
    /// A note for the run's timeline.
    Annotate {
        /// The note, redacted.
        message: String,
    },
    /// That a secret was asked for: never its value.
    SecretRead {
        /// The secret's name.
        name: String,
        /// Whether the step was granted it.
        granted: bool,
        /// Whether it had a value.
        present: bool,
    },
    /// Durable step state written, for the step's next attempt.
    StateSet {
        /// The key.
        key: String,
        /// The value, redacted.
        value: String,
    },
    /// Written (flushed) before the request is sent, so a crash mid-request is visible.
    HttpRequest {
        /// The request's number in the attempt, from 1; its response carries it too.
        id: u32,
        /// The HTTP method (`GET`).
        method: String,
        /// The URL, redacted.
        url: String,
        /// (name, value) in order, values redacted.
        headers: Vec<(String, String)>,
        /// The body, redacted when text.
        #[serde(default, skip_serializing_if = "Body::is_empty")]
        body: Body,
    },
    /// Written (flushed) once the whole response arrived, or the request failed, and
    /// before the guest sees it: a replay answers the request from here.
    HttpResponse {
        /// The request it answers.
        id: u32,
        /// The response, or the transport error; redacted.
        outcome: HttpOutcome,
        /// From sending the request to the whole response, milliseconds.
        duration_ms: u64,
    },
    /// A request to a host the step was not granted. Never sent.
    HttpDenied {
        /// The HTTP method.
        method: String,
        /// The URL, redacted.
        url: String,
        /// The host that is not in the step's `allow` list.
        host: String,
    },
    /// A clock read (`wasi:clocks`), so a replay sees the same time.
    Clock {
        /// Which clock.
        clock: ClockKind,
        /// Its reading, nanoseconds (since the Unix epoch for the wall clock).
        ns: u64,
    },
    /// Random bytes handed to the guest (`wasi:random`), hex. With `seed`, the 32-byte seed
    /// of the attempt's random stream: every later read of the attempt is derived from it
    /// (see `AttemptHost::random`), so one record covers them all.
    Random {
        /// The bytes, hex.
        hex: String,
        /// Whether `hex` is the attempt's 32-byte seed.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        seed: bool,
    },
}

impl HostCall {
    /// The call's effect class: whether its record must be on disk before the call's
    /// effect (a request sent, a result the guest sees, state the next attempt reads) or
    /// may be flushed by a later write. The table of docs/durability.md (sections 2 and 3)
    /// in one match; exhaustive, so a new host call is classified when it is added.
    pub fn durability(&self) -> Durability {
        match self {
            HostCall::StateSet { .. }
            | HostCall::HttpRequest { .. }
            | HostCall::HttpResponse { .. }
            | HostCall::HttpDenied { .. } => Durability::Flush,
            // A replay regenerates these, and nothing outside the journal has depended on
            // them before the next Flush record is written.
            HostCall::Log { .. }
            | HostCall::Annotate { .. }
            | HostCall::SecretRead { .. }
            | HostCall::Clock { .. }
            | HostCall::Random { .. } => Durability::Lazy,
        }
    }

    /// Whether the guest asks for this call, so that a replay answers it in guest order.
    /// An HTTP response is the host's, not the guest's: responses may arrive in any order,
    /// and a replay finds them by request id ([`Recorded::responses`]).
    pub fn is_guest_request(&self) -> bool {
        !matches!(self, HostCall::HttpResponse { .. })
    }

    /// One line naming the call, for nondeterminism errors.
    pub fn describe(&self) -> String {
        match self {
            HostCall::Log { level, message } => format!("log {} {message:?}", level.as_str()),
            HostCall::Annotate { message } => format!("annotate {message:?}"),
            HostCall::SecretRead { name, .. } => format!("secret {name}"),
            HostCall::StateSet { key, .. } => format!("state-set {key}"),
            HostCall::HttpRequest { method, url, .. } => format!("http {method} {url}"),
            HostCall::HttpResponse { id, .. } => format!("http response #{id}"),
            HostCall::HttpDenied { method, url, .. } => format!("http {method} {url} (denied)"),
            HostCall::Clock { clock, .. } => format!("{} clock read", clock.as_str()),
            HostCall::Random { seed: true, .. } => "random seed".to_string(),
            HostCall::Random { hex, .. } => format!("{} random bytes", hex.len() / 2),
        }
    }

    /// Whether a replayed guest asking for `requested` asks for what was recorded here.
    /// Results (clock values, random bytes, response) are not compared: they are what
    /// the replay hands back.
    pub fn same_request(&self, requested: &HostCall) -> bool {
        use HostCall as H;
        match (self, requested) {
            (
                H::Log {
                    level: a,
                    message: m,
                },
                H::Log {
                    level: b,
                    message: n,
                },
            ) => a == b && m == n,
            (H::Annotate { message: a }, H::Annotate { message: b }) => a == b,
            (H::SecretRead { name: a, .. }, H::SecretRead { name: b, .. }) => a == b,
            (H::StateSet { key: a, value: v }, H::StateSet { key: b, value: w }) => {
                a == b && v == w
            }
            (
                H::HttpRequest {
                    method: a,
                    url: u,
                    body: x,
                    ..
                },
                H::HttpRequest {
                    method: b,
                    url: v,
                    body: y,
                    ..
                },
            ) => a == b && u == v && x == y,
            (
                H::HttpDenied {
                    method: a, url: u, ..
                },
                H::HttpDenied {
                    method: b, url: v, ..
                },
            ) => a == b && u == v,
            (H::Clock { clock: a, .. }, H::Clock { clock: b, .. }) => a == b,
            // Journals written before random streams hold one record per read: any random
            // read answers any other (the bytes are the result, not the request).
            (H::Random { .. }, H::Random { .. }) => true,
            _ => false,
        }
    }
}

/// The two WASI clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockKind {
    /// `wasi:clocks/wall-clock`: time of day.
    Wall,
    /// `wasi:clocks/monotonic-clock`: never goes backwards, also across a replay.
    Monotonic,
}

impl ClockKind {
    /// `wall` or `monotonic`.
    pub fn as_str(self) -> &'static str {
        match self {
            ClockKind::Wall => "wall",
            ClockKind::Monotonic => "monotonic",
        }
    }
}

/// An HTTP body as journalled: text when it is UTF-8, else base64.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Body {
    /// No body.
    #[default]
    Empty,
    /// A UTF-8 body.
    Text(String),
    /// Any other body, base64 (standard alphabet, padded).
    Base64(String),
}

impl Body {
    /// Whether there is no body.
    pub fn is_empty(&self) -> bool {
        matches!(self, Body::Empty)
    }

    /// `bytes` as journalled: text when UTF-8, else base64.
    pub fn from_bytes(bytes: &[u8]) -> Body {
        use base64::Engine as _;
        if bytes.is_empty() {
            Body::Empty
        } else {
            match std::str::from_utf8(bytes) {
                Ok(s) => Body::Text(s.to_string()),
                Err(_) => Body::Base64(base64::engine::general_purpose::STANDARD.encode(bytes)),
            }
        }
    }

    /// The body's bytes (a malformed base64 body gives none).
    pub fn to_bytes(&self) -> Vec<u8> {
        use base64::Engine as _;
        match self {
            Body::Empty => Vec::new(),
            Body::Text(s) => s.as_bytes().to_vec(),
            Body::Base64(b) => base64::engine::general_purpose::STANDARD
                .decode(b)
                .unwrap_or_default(),
        }
    }

    /// The body's length in bytes (for base64, estimated from the text's length).
    pub fn len(&self) -> usize {
        match self {
            Body::Empty => 0,
            Body::Text(s) => s.len(),
            Body::Base64(b) => b.len() / 4 * 3,
        }
    }
}

/// How an HTTP request ended, as journalled; tagged by `result`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum HttpOutcome {
    /// A whole response.
    Response {
        /// The HTTP status code.
        status: u16,
        /// (name, value) in order.
        headers: Vec<(String, String)>,
        /// The whole body.
        #[serde(default, skip_serializing_if = "Body::is_empty")]
        body: Body,
    },
    /// No response: the transport error, in words.
    Error {
        /// What went wrong.
        message: String,
    },
}
