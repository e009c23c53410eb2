//! The per-instance state of one attempt and its journaling chokepoint: every host call a
//! step makes goes through [`AttemptHost`], which checks grants, redacts secrets and
//! writes the call to the run's journal before the guest sees the result. Every call,
//! the guest's and the host's own (an HTTP response), passes through one private `call()`:
//! replay from the journal, or append with the call's effect class
//! ([`HostCall::durability`]).

use crate::clock::{Entropy, OsEntropy};
use crate::journal::{Body, ClockKind, Event, HostCall, HttpOutcome, Level, Recorded, RunJournal};
use crate::secrets::{Redactor, SecretSource};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Why a host call could not be served. Both are fatal for the attempt.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HostError {
    /// The journal write failed (holds the store's message): the run must stop.
    #[error("journal write failed: {0}")]
    Store(String),
    /// A resumed attempt asked for something other than what its journal recorded.
    #[error(
        "nondeterminism at host call #{index}: the journal recorded `{recorded}`, but the step now asks for `{requested}`"
    )]
    Nondeterminism {
        /// The call's position in the attempt, from 1.
        index: usize,
        /// The call the journal holds, described.
        recorded: String,
        /// The call the step made, described.
        requested: String,
    },
}

impl HostError {
    /// The failure kind an attempt ended by this error is journalled with.
    pub fn kind(&self) -> crate::FailureKind {
        match self {
            HostError::Store(_) => crate::FailureKind::Store,
            HostError::Nondeterminism { .. } => crate::FailureKind::Nondeterminism,
        }
    }
}

/// What to do with an outgoing HTTP request.
#[derive(Debug)]
pub enum HttpPlan {
    /// Send it; record the response under `id`.
    Send {
        /// The request's number in the attempt.
        id: u32,
    },
    /// Do not send it: answer from the journal.
    Replay {
        /// The request's number in the attempt.
        id: u32,
        /// The response the journal holds.
        response: HttpOutcome,
    },
}

/// The host side of one attempt: what the sandbox calls for every host function.
///
/// Every call is checked against the step's grants, redacted, and appended to the
/// run's journal before its result is returned. When the attempt is a resumption of
/// one that was in flight at a crash, calls are first answered from the journal
/// (`replay`), in order, and only the first unrecorded call goes live.
#[derive(Clone)]
pub struct AttemptHost {
    inner: Arc<HostInner>,
}

struct HostInner {
    journal: Arc<RunJournal>,
    step: String,
    attempt: u32,
    granted_secrets: Vec<String>,
    secrets: Arc<dyn SecretSource>,
    entropy: Arc<dyn Entropy>,
    redactor: Redactor,
    state: Mutex<BTreeMap<String, String>>,
    mutable: Mutex<Mutable>,
    responder: Option<Arc<dyn crate::HttpResponder>>,
}

struct Mutable {
    replay: VecDeque<HostCall>,
    responses: HashMap<u32, HttpOutcome>,
    /// How many host calls this attempt has made (replayed or live).
    calls: usize,
    next_http_id: u32,
    violations: Vec<String>,
    fatal: Option<HostError>,
    /// (value, when): the monotonic clock continues from the last value the guest saw,
    /// so it never goes backwards across a replay.
    monotonic: (u64, Instant),
    /// The attempt's random stream, once its seed is journalled.
    random: Option<crate::random::RandomStream>,
}

/// How an attempt's host is set up.
pub struct HostSetup {
    /// The run's journal, where every call is appended.
    pub journal: Arc<RunJournal>,
    /// The step's id.
    pub step: String,
    /// The attempt's number, from 1.
    pub attempt: u32,
    /// Secret names the step may read; their values are redacted from all it writes.
    pub granted_secrets: Vec<String>,
    /// Where secret values come from.
    pub secrets: Arc<dyn SecretSource>,
    /// Where the attempt's random seed comes from.
    pub entropy: Arc<dyn Entropy>,
    /// Step state as it was when the attempt started.
    pub state: BTreeMap<String, String>,
    /// For a resumed attempt: what it did before the crash.
    pub recorded: Recorded,
    /// Answers requests instead of the network (drills); `None` for real runs.
    pub responder: Option<Arc<dyn crate::HttpResponder>>,
}

impl AttemptHost {
    /// The host of one attempt, set up as `setup` says.
    pub fn new(setup: HostSetup) -> Self {
        // Every granted secret is redacted from everything this attempt writes, whether
        // or not the step reads it through `secret()`.
        let redactor = Redactor::new(
            setup
                .granted_secrets
                .iter()
                .filter_map(|name| setup.secrets.get(name).map(|v| (name.clone(), v))),
        );
        AttemptHost {
            inner: Arc::new(HostInner {
                journal: setup.journal,
                step: setup.step,
                attempt: setup.attempt,
                granted_secrets: setup.granted_secrets,
                secrets: setup.secrets,
                entropy: setup.entropy,
                redactor,
                state: Mutex::new(setup.state),
                responder: setup.responder,
                mutable: Mutex::new(Mutable {
                    replay: setup.recorded.calls.into(),
                    responses: setup.recorded.responses,
                    calls: 0,
                    next_http_id: 0,
                    violations: Vec::new(),
                    fatal: None,
                    monotonic: (0, Instant::now()),
                    random: None,
                }),
            }),
        }
    }

    /// A host for attempt 1 of `step` driven outside the executor (benchmarks, tests that
    /// call the sandbox directly), journalled to `journal` (see [`RunJournal::create`]):
    /// same grants and redaction as in a run.
    pub fn standalone(
        journal: Arc<RunJournal>,
        step: &str,
        granted_secrets: Vec<String>,
        secrets: Arc<dyn SecretSource>,
    ) -> Self {
        Self::new(HostSetup {
            journal,
            step: step.to_string(),
            attempt: 1,
            granted_secrets,
            secrets,
            entropy: Arc::new(OsEntropy),
            state: BTreeMap::new(),
            recorded: Recorded::default(),
            responder: None,
        })
    }

    /// The step's id.
    pub fn step(&self) -> &str {
        &self.inner.step
    }

    /// The attempt's redactor: every granted secret's value.
    pub fn redactor(&self) -> &Redactor {
        &self.inner.redactor
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Mutable> {
        self.inner.mutable.lock().expect("host lock")
    }

    /// The single chokepoint, for every host call: replays `requested` from the journal if
    /// this attempt is being resumed and has recorded guest calls left, else appends it
    /// with its effect class ([`HostCall::durability`]). Returns the recorded call when
    /// replayed. After a fatal error every call fails with it.
    fn call(&self, requested: HostCall) -> Result<Option<HostCall>, HostError> {
        let mut m = self.lock();
        if let Some(e) = &m.fatal {
            return Err(e.clone());
        }
        // A response is the host's record of a live request, never replayed in order
        // (see `HostCall::is_guest_request`), so it neither counts nor consumes the replay.
        if requested.is_guest_request() {
            m.calls += 1;
            if let Some(recorded) = m.replay.pop_front() {
                if recorded.same_request(&requested) {
                    return Ok(Some(recorded));
                }
                let e = HostError::Nondeterminism {
                    index: m.calls,
                    recorded: recorded.describe(),
                    requested: requested.describe(),
                };
                m.fatal = Some(e.clone());
                return Err(e);
            }
        }
        let durability = requested.durability();
        // Appending under the host lock keeps this attempt's calls in guest order.
        let res = self.inner.journal.append_with(
            Event::HostCall {
                step: self.inner.step.clone(),
                attempt: self.inner.attempt,
                call: requested,
            },
            durability,
        );
        match res {
            Ok(_) => Ok(None),
            Err(e) => {
                let e = HostError::Store(e.to_string());
                m.fatal = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Journals a log line (redacted).
    ///
    /// # Errors
    ///
    /// [`HostError`] when the journal write fails or a replay diverges.
    pub fn log(&self, level: Level, message: &str) -> Result<(), HostError> {
        let message = self.inner.redactor.text(message);
        self.call(HostCall::Log { level, message }).map(|_| ())
    }

    /// Journals a note for the timeline (redacted).
    ///
    /// # Errors
    ///
    /// [`HostError`] when the journal write fails or a replay diverges.
    pub fn annotate(&self, message: &str) -> Result<(), HostError> {
        let message = self.inner.redactor.text(message);
        self.call(HostCall::Annotate { message }).map(|_| ())
    }

    /// A granted secret's value, or `None`. Asking for an ungranted secret is recorded
    /// and fails the attempt once it returns (see [`AttemptHost::violations`]).
    ///
    /// # Errors
    ///
    /// [`HostError`] when the journal write fails or a replay diverges.
    pub fn secret(&self, name: &str) -> Result<Option<String>, HostError> {
        let granted = self.inner.granted_secrets.iter().any(|g| g == name);
        let value = if granted {
            self.inner.secrets.get(name)
        } else {
            self.violation(format!("secret not granted: {name}"));
            None
        };
        let call = HostCall::SecretRead {
            name: name.to_string(),
            granted,
            present: value.is_some(),
        };
        self.call(call)?;
        Ok(value)
    }

    /// A granted secret's value for the host's own use (a step's `tls` client key), never
    /// handed to the guest and so not a guest call: nothing is journalled, and a resumed
    /// attempt's replay is unchanged. `None` when the secret is not granted or not set.
    pub fn host_secret(&self, name: &str) -> Option<String> {
        if self.inner.granted_secrets.iter().any(|g| g == name) {
            self.inner.secrets.get(name)
        } else {
            None
        }
    }

    /// The step's durable state under `key`, as it was when the attempt started plus
    /// this attempt's own writes.
    pub fn state_get(&self, key: &str) -> Option<String> {
        self.inner
            .state
            .lock()
            .expect("state lock")
            .get(key)
            .cloned()
    }

    /// Sets durable step state (the value redacted), journalled and flushed first.
    ///
    /// # Errors
    ///
    /// [`HostError`] when the journal write fails or a replay diverges.
    pub fn state_set(&self, key: &str, value: &str) -> Result<(), HostError> {
        let value = self.inner.redactor.text(value);
        let call = HostCall::StateSet {
            key: key.to_string(),
            value: value.clone(),
        };
        self.call(call)?;
        self.inner
            .state
            .lock()
            .expect("state lock")
            .insert(key.to_string(), value);
        Ok(())
    }

    /// Wall-clock time since the Unix epoch, as the guest sees it: `live` now, the
    /// journalled reading on replay.
    ///
    /// # Errors
    ///
    /// [`HostError`] when the journal write fails or a replay diverges.
    pub fn wall_clock(&self, live: std::time::Duration) -> Result<std::time::Duration, HostError> {
        let ns = live.as_nanos() as u64;
        let call = HostCall::Clock {
            clock: ClockKind::Wall,
            ns,
        };
        Ok(match self.call(call)? {
            Some(HostCall::Clock { ns, .. }) => std::time::Duration::from_nanos(ns),
            _ => live,
        })
    }

    /// Monotonic nanoseconds, as the guest sees it.
    ///
    /// # Errors
    ///
    /// [`HostError`] when the journal write fails or a replay diverges.
    pub fn monotonic_clock(&self) -> Result<u64, HostError> {
        let live = {
            let m = self.lock();
            m.monotonic.0 + m.monotonic.1.elapsed().as_nanos() as u64
        };
        let call = HostCall::Clock {
            clock: ClockKind::Monotonic,
            ns: live,
        };
        let ns = match self.call(call)? {
            Some(HostCall::Clock { ns, .. }) => ns,
            _ => live,
        };
        self.lock().monotonic = (ns, Instant::now());
        Ok(ns)
    }

    /// `n` random bytes, as the guest sees them.
    ///
    /// The first read of an attempt draws a 32-byte seed, journals it, and starts a stream
    /// derived from it (SHA-256 in counter mode); later reads take the stream's next bytes
    /// without a journal record. A replay gets the seed back from the journal and so the
    /// same bytes. Guests read randomness in small pieces and often (componentize-py makes
    /// thousands of 4-byte reads per attempt): one record per read was most of a Python
    /// step's time and journal.
    ///
    /// # Errors
    ///
    /// [`HostError`] when the journal write fails or a replay diverges.
    pub fn random(&self, buf: &mut [u8]) -> Result<(), HostError> {
        if let Some(stream) = self.lock().random.as_mut() {
            stream.fill(buf);
            return Ok(());
        }
        let mut seed = [0u8; 32];
        self.inner.entropy.fill(&mut seed);
        let call = HostCall::Random {
            hex: hex::encode(seed),
            seed: true,
        };
        match self.call(call)? {
            Some(HostCall::Random {
                hex: recorded,
                seed: true,
            }) => {
                if let Ok(bytes) = hex::decode(recorded)
                    && let Ok(recorded) = <[u8; 32]>::try_from(bytes.as_slice())
                {
                    seed = recorded;
                }
            }
            // A journal from before random streams: that read's own bytes.
            Some(HostCall::Random { hex: recorded, .. }) => {
                match hex::decode(recorded) {
                    Ok(bytes) if bytes.len() == buf.len() => buf.copy_from_slice(&bytes),
                    _ => self.inner.entropy.fill(buf),
                }
                return Ok(());
            }
            _ => {}
        }
        let mut stream = crate::random::RandomStream::new(seed);
        stream.fill(buf);
        self.lock().random = Some(stream);
        Ok(())
    }

    /// Records an outgoing request (redacted) before it is sent, or finds it in the
    /// journal: says whether to send it or answer it from there.
    ///
    /// # Errors
    ///
    /// [`HostError`] when the journal write fails or a replay diverges.
    pub fn http_request(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<HttpPlan, HostError> {
        let r = &self.inner.redactor;
        let id = {
            let mut m = self.lock();
            m.next_http_id += 1;
            m.next_http_id
        };
        // Text or binary, every encoded form of a secret goes (secrets.rs).
        let body = r.body(&Body::from_bytes(body));
        let call = HostCall::HttpRequest {
            id,
            method: method.to_string(),
            url: r.text(url),
            headers: headers
                .iter()
                .map(|(k, v)| (k.clone(), r.text(v)))
                .collect(),
            body,
        };
        let asked = self.inner.responder.as_ref().map(|_| call.clone());
        let plan = match self.call(call)? {
            Some(HostCall::HttpRequest { id: recorded, .. }) => {
                let mut m = self.lock();
                m.next_http_id = recorded;
                match m.responses.remove(&recorded) {
                    Some(response) => HttpPlan::Replay {
                        id: recorded,
                        response,
                    },
                    // Sent before the crash but never answered in the journal: send it
                    // again. This is the one request that can arrive twice.
                    None => HttpPlan::Send { id: recorded },
                }
            }
            _ => HttpPlan::Send { id },
        };
        // A drill answers instead of the network; the answer is journalled like a
        // response that arrived.
        if let (HttpPlan::Send { id }, Some(responder), Some(asked)) =
            (&plan, &self.inner.responder, &asked)
            && let Some(response) = responder.respond(&self.inner.step, self.inner.attempt, asked)
        {
            self.http_response(*id, response.clone(), 0)?;
            return Ok(HttpPlan::Replay { id: *id, response });
        }
        Ok(plan)
    }

    /// Records a response (whole body, redacted) to request `id` before the guest sees
    /// it; `duration_ms` from sending to the whole response.
    ///
    /// # Errors
    ///
    /// [`HostError`] when the journal write fails (or an earlier call failed fatally).
    pub fn http_response(
        &self,
        id: u32,
        outcome: HttpOutcome,
        duration_ms: u64,
    ) -> Result<(), HostError> {
        let r = &self.inner.redactor;
        let outcome = match outcome {
            HttpOutcome::Response {
                status,
                headers,
                body,
            } => HttpOutcome::Response {
                status,
                headers: headers.into_iter().map(|(k, v)| (k, r.text(&v))).collect(),
                body: r.body(&body),
            },
            HttpOutcome::Error { message } => HttpOutcome::Error {
                message: r.text(&message),
            },
        };
        let call = HostCall::HttpResponse {
            id,
            outcome,
            duration_ms,
        };
        self.call(call).map(|_| ())
    }

    /// A request to a host not in the step's `allow` list: recorded, never sent, and
    /// the attempt fails once it returns.
    ///
    /// # Errors
    ///
    /// [`HostError`] when the journal write fails or a replay diverges.
    pub fn http_denied(&self, method: &str, url: &str, host: &str) -> Result<(), HostError> {
        self.violation(format!("host not allowed: {host}"));
        let call = HostCall::HttpDenied {
            method: method.to_string(),
            url: self.inner.redactor.text(url),
            host: host.to_string(),
        };
        self.call(call).map(|_| ())
    }

    fn violation(&self, what: String) {
        let mut m = self.lock();
        if !m.violations.contains(&what) {
            m.violations.push(what);
        }
    }

    /// Grant violations seen so far ("host not allowed: X", "secret not granted: Y").
    pub fn violations(&self) -> Vec<String> {
        self.lock().violations.clone()
    }

    /// A journal write failure or a replay mismatch: the attempt cannot be trusted.
    pub fn fatal(&self) -> Option<HostError> {
        self.lock().fatal.clone()
    }
}
