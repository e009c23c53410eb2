//! The run journal: every transition of a run and every host call a step makes.
//!
//! A run is event-sourced: its state is the fold of its journal ([`crate::RunState`]).
//! Entries are appended and flushed before the next side effect starts, so after a crash
//! the journal says exactly how far the run got. Host calls are journalled through one
//! chokepoint ([`crate::AttemptHost`]) so a later attempt can be replayed against them.

use medic_model::{Decision, Incident, IncidentStatus, Workflow};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One journal record: a sequence number (dense, from 0), when it was written, and what happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub seq: u64,
    /// Wall-clock milliseconds since the Unix epoch, from the injected clock.
    pub at_ms: u64,
    pub event: Event,
}

/// What happened. Externally tagged by `type` so the encoded journal reads well.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// Always entry 0: the exact workflow and incident this run started with.
    /// Boxed: it is much larger than every other event.
    RunCreated(Box<RunCreated>),
    /// The step's `if` was false, or an earlier step failed.
    StepSkipped { step: String, reason: String },
    /// The step will not run because the incident resolved by itself (`on-resolved:
    /// cancel`); an open gate is closed undecided. Kept apart from `step_skipped` so a
    /// run that ended this way reads differently from one that restored service.
    StepCancelled { step: String, reason: String },
    /// An attempt begins. Written before the component is instantiated.
    AttemptStarted {
        step: String,
        attempt: u32,
        idempotency_key: String,
        /// Params after templating (secrets are never templated into params).
        params: serde_json::Value,
    },
    /// A host call made by the step during an attempt.
    HostCall {
        step: String,
        attempt: u32,
        call: HostCall,
    },
    /// The attempt returned `done`. The step succeeded.
    AttemptSucceeded {
        step: String,
        attempt: u32,
        output: serde_json::Value,
        duration_ms: u64,
    },
    /// The attempt failed (or asked to be retried later). `retry` says what happens
    /// next; `None` means the step has failed for good. Deciding in the same record
    /// keeps "failed" and "retry scheduled" from ever being half-written.
    AttemptFailed {
        step: String,
        attempt: u32,
        failure: Failure,
        duration_ms: u64,
        retry: Option<RetryPlan>,
    },
    /// A gate step waits for people. The deadline is a wall-clock instant, so a restart
    /// keeps it (and a deadline that passed while medic was down is taken at start-up).
    GateOpened {
        step: String,
        /// The prompt, rendered.
        prompt: String,
        #[serde(default)]
        approvers: Vec<String>,
        deadline_ms: u64,
        on_deadline: Decision,
    },
    /// A gate was decided, by a person (`by`) or by its deadline (`by_deadline`). The step
    /// succeeded either way: later steps test `steps.<id>.output.approved`.
    GateDecided {
        step: String,
        decision: Decision,
        by: String,
        by_deadline: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
    },
    /// The incident changed while the run was going (its alerts resolved, or fired
    /// again). Later steps see the new `incident.status`.
    IncidentUpdated { status: IncidentStatus },
    /// The run is over.
    RunFinished {
        status: RunStatus,
        #[serde(default)]
        reason: Option<String>,
    },
}

/// The payload of [`Event::RunCreated`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunCreated {
    pub workflow: Workflow,
    /// Where the workflow came from (for people; the snapshot above is what runs).
    pub workflow_file: String,
    pub incident: Incident,
    /// Step id -> resolved component location, fixed at creation so a resumed run
    /// uses the same components.
    pub components: BTreeMap<String, String>,
    #[serde(default)]
    pub drill: bool,
}

/// When the next attempt of a step may start: a durable timer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryPlan {
    pub attempt: u32,
    /// Wall-clock milliseconds since the Unix epoch.
    pub not_before_ms: u64,
}

/// Why an attempt failed, in words for the person on call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
    pub retryable: bool,
}

impl Failure {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Running,
    Succeeded,
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
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum HostCall {
    Log {
        level: Level,
        message: String,
    },
    Annotate {
        message: String,
    },
    /// That a secret was asked for: never its value.
    SecretRead {
        name: String,
        granted: bool,
        present: bool,
    },
    StateSet {
        key: String,
        value: String,
    },
    /// Written (flushed) before the request is sent, so a crash mid-request is visible.
    HttpRequest {
        id: u32,
        method: String,
        url: String,
        headers: Vec<(String, String)>,
        #[serde(default, skip_serializing_if = "Body::is_empty")]
        body: Body,
    },
    /// Written (flushed) once the whole response arrived, or the request failed, and
    /// before the guest sees it: a replay answers the request from here.
    HttpResponse {
        id: u32,
        outcome: HttpOutcome,
        duration_ms: u64,
    },
    /// A request to a host the step was not granted. Never sent.
    HttpDenied {
        method: String,
        url: String,
        host: String,
    },
    /// A clock read (`wasi:clocks`), so a replay sees the same time.
    Clock {
        clock: ClockKind,
        ns: u64,
    },
    /// Random bytes handed to the guest (`wasi:random`), hex. With `seed`, the 32-byte seed
    /// of the attempt's random stream: every later read of the attempt is derived from it
    /// (see `AttemptHost::random`), so one record covers them all.
    Random {
        hex: String,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        seed: bool,
    },
}

impl HostCall {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClockKind {
    Wall,
    Monotonic,
}

impl ClockKind {
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
    #[default]
    Empty,
    Text(String),
    Base64(String),
}

impl Body {
    pub fn is_empty(&self) -> bool {
        matches!(self, Body::Empty)
    }

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

    pub fn len(&self) -> usize {
        match self {
            Body::Empty => 0,
            Body::Text(s) => s.len(),
            Body::Base64(b) => b.len() / 4 * 3,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum HttpOutcome {
    Response {
        status: u16,
        headers: Vec<(String, String)>,
        #[serde(default, skip_serializing_if = "Body::is_empty")]
        body: Body,
    },
    Error {
        message: String,
    },
}
