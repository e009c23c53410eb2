//! The journaling chokepoint: every host call a step makes goes through [`AttemptHost`],
//! which checks grants, redacts secrets and writes the call to the run's journal
//! (flushed) before the guest sees the result.

use crate::Clock;
use crate::journal::{Entry, Event, HostCall, HttpOutcome, Level, RunStatus};
use crate::secrets::{Redactor, SecretSource};
use crate::store::{Durability, RunMeta, Store, StoreError};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Called after each entry is durably appended (live progress output, metrics).
pub type Observer = Arc<dyn Fn(&str, &Entry) + Send + Sync>;

/// The append side of one run's journal. One per run being driven; appends are
/// serialised so sequence numbers stay dense.
pub struct RunJournal {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    observer: Option<Observer>,
    inner: Mutex<JournalInner>,
}

struct JournalInner {
    next_seq: u64,
    meta: RunMeta,
    /// Appended but not yet folded into the driver's `RunState`.
    unapplied: Vec<Entry>,
}

impl RunJournal {
    /// The append side of an existing run's journal; `next_seq` follows its last entry.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        observer: Option<Observer>,
        meta: RunMeta,
        next_seq: u64,
    ) -> Self {
        RunJournal {
            store,
            clock,
            observer,
            inner: Mutex::new(JournalInner {
                next_seq,
                meta,
                unapplied: Vec::new(),
            }),
        }
    }

    /// A journal for running a step outside any workflow run (`medic step test`,
    /// benchmarks): its host calls are recorded in `store` under `run_id`.
    pub fn scratch(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        run_id: &str,
    ) -> Result<Arc<RunJournal>, StoreError> {
        let now = clock.now_ms();
        let meta = RunMeta {
            id: run_id.to_string(),
            workflow: "(standalone step)".into(),
            incident_title: String::new(),
            status: crate::RunStatus::Running,
            created_ms: now,
            updated_ms: now,
        };
        let first = Entry {
            seq: 0,
            at_ms: now,
            event: Event::StepSkipped {
                step: "-".into(),
                reason: "scratch journal of a standalone step".into(),
            },
        };
        store.create_run(&meta, &first)?;
        Ok(Arc::new(RunJournal::new(store, clock, None, meta, 1)))
    }

    pub fn run_id(&self) -> String {
        self.inner.lock().expect("journal lock").meta.id.clone()
    }

    /// Append an event; returns once it is on disk.
    pub fn append(&self, event: Event) -> Result<Entry, StoreError> {
        let mut inner = self.inner.lock().expect("journal lock");
        let at_ms = self.clock.now_ms();
        let entry = Entry {
            seq: inner.next_seq,
            at_ms,
            event,
        };
        // The meta is rewritten only when the run's status changes, which keeps the
        // common append a single small write.
        let meta = match &entry.event {
            Event::RunFinished { status, .. } => {
                let mut m = inner.meta.clone();
                m.status = *status;
                m.updated_ms = at_ms;
                Some(m)
            }
            _ => None,
        };
        let run = inner.meta.id.clone();
        self.store.append(&run, &entry, meta.as_ref(), Durability::Flush)?;
        inner.next_seq += 1;
        inner.unapplied.push(entry.clone());
        if let Some(m) = meta {
            inner.meta = m;
        }
        drop(inner);
        if let Some(observer) = &self.observer {
            observer(&run, &entry);
        }
        Ok(entry)
    }

    /// Entries appended since the last call, in order: the driver folds them into its
    /// state, whoever appended them (the executor or a step's host calls).
    pub(crate) fn take_unapplied(&self) -> Vec<Entry> {
        std::mem::take(&mut self.inner.lock().expect("journal lock").unapplied)
    }

    pub(crate) fn status(&self) -> RunStatus {
        self.inner.lock().expect("journal lock").meta.status
    }
}

/// The host side of one attempt: what the sandbox calls for every host function.
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
    redactor: Redactor,
    state: Mutex<BTreeMap<String, String>>,
    mutable: Mutex<Mutable>,
}

#[derive(Default)]
struct Mutable {
    next_http_id: u32,
    violations: Vec<String>,
    store_error: Option<String>,
}

impl AttemptHost {
    pub(crate) fn new(
        journal: Arc<RunJournal>,
        step: String,
        attempt: u32,
        granted_secrets: Vec<String>,
        secrets: Arc<dyn SecretSource>,
        state: BTreeMap<String, String>,
    ) -> Self {
        // Every granted secret is redacted from everything this attempt writes, whether
        // or not the step reads it through `secret()`.
        let redactor = Redactor::new(
            granted_secrets
                .iter()
                .filter_map(|name| secrets.get(name).map(|v| (name.clone(), v))),
        );
        AttemptHost {
            inner: Arc::new(HostInner {
                journal,
                step,
                attempt,
                granted_secrets,
                secrets,
                redactor,
                state: Mutex::new(state),
                mutable: Mutex::new(Mutable::default()),
            }),
        }
    }

    /// A host for running a step outside any run (`medic step test`, benchmarks):
    /// same grants and redaction, journalled to the given journal.
    pub fn standalone(
        journal: Arc<RunJournal>,
        step: &str,
        granted_secrets: Vec<String>,
        secrets: Arc<dyn SecretSource>,
    ) -> Self {
        Self::new(
            journal,
            step.to_string(),
            1,
            granted_secrets,
            secrets,
            BTreeMap::new(),
        )
    }

    pub fn step(&self) -> &str {
        &self.inner.step
    }

    pub fn redactor(&self) -> &Redactor {
        &self.inner.redactor
    }

    fn record(&self, call: HostCall) -> Result<(), StoreError> {
        let res = self.inner.journal.append(Event::HostCall {
            step: self.inner.step.clone(),
            attempt: self.inner.attempt,
            call,
        });
        if let Err(e) = &res {
            self.inner.mutable.lock().expect("host lock").store_error = Some(e.to_string());
        }
        res.map(|_| ())
    }

    pub fn log(&self, level: Level, message: &str) -> Result<(), StoreError> {
        let message = self.inner.redactor.text(message);
        self.record(HostCall::Log { level, message })
    }

    pub fn annotate(&self, message: &str) -> Result<(), StoreError> {
        let message = self.inner.redactor.text(message);
        self.record(HostCall::Annotate { message })
    }

    /// A granted secret's value, or `None`. Asking for an ungranted secret is recorded
    /// and fails the attempt once it returns (see [`AttemptHost::violations`]).
    pub fn secret(&self, name: &str) -> Result<Option<String>, StoreError> {
        let granted = self.inner.granted_secrets.iter().any(|g| g == name);
        let value = if granted {
            self.inner.secrets.get(name)
        } else {
            self.violation(format!("secret not granted: {name}"));
            None
        };
        self.record(HostCall::SecretRead {
            name: name.to_string(),
            granted,
            present: value.is_some(),
        })?;
        Ok(value)
    }

    pub fn state_get(&self, key: &str) -> Option<String> {
        self.inner
            .state
            .lock()
            .expect("state lock")
            .get(key)
            .cloned()
    }

    pub fn state_set(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let value = self.inner.redactor.text(value);
        self.record(HostCall::StateSet {
            key: key.to_string(),
            value: value.clone(),
        })?;
        self.inner
            .state
            .lock()
            .expect("state lock")
            .insert(key.to_string(), value);
        Ok(())
    }

    /// Record an outgoing request before it is sent. Returns the id its response is
    /// recorded under.
    pub fn http_request(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
    ) -> Result<u32, StoreError> {
        let id = {
            let mut m = self.inner.mutable.lock().expect("host lock");
            m.next_http_id += 1;
            m.next_http_id
        };
        let r = &self.inner.redactor;
        self.record(HostCall::HttpRequest {
            id,
            method: method.to_string(),
            url: r.text(url),
            headers: headers
                .iter()
                .map(|(k, v)| (k.clone(), r.text(v)))
                .collect(),
        })?;
        Ok(id)
    }

    pub fn http_response(
        &self,
        id: u32,
        outcome: HttpOutcome,
        duration_ms: u64,
    ) -> Result<(), StoreError> {
        let r = &self.inner.redactor;
        let outcome = match outcome {
            HttpOutcome::Response { status, headers } => HttpOutcome::Response {
                status,
                headers: headers.into_iter().map(|(k, v)| (k, r.text(&v))).collect(),
            },
            HttpOutcome::Error { message } => HttpOutcome::Error {
                message: r.text(&message),
            },
        };
        self.record(HostCall::HttpResponse {
            id,
            outcome,
            duration_ms,
        })
    }

    /// A request to a host not in the step's `allow` list: recorded, never sent, and
    /// the attempt fails once it returns.
    pub fn http_denied(&self, method: &str, url: &str, host: &str) -> Result<(), StoreError> {
        self.violation(format!("host not allowed: {host}"));
        self.record(HostCall::HttpDenied {
            method: method.to_string(),
            url: self.inner.redactor.text(url),
            host: host.to_string(),
        })
    }

    fn violation(&self, what: String) {
        let mut m = self.inner.mutable.lock().expect("host lock");
        if !m.violations.contains(&what) {
            m.violations.push(what);
        }
    }

    /// Grant violations seen so far ("host not allowed: X", "secret not granted: Y").
    pub fn violations(&self) -> Vec<String> {
        self.inner
            .mutable
            .lock()
            .expect("host lock")
            .violations
            .clone()
    }

    /// Set when a journal write failed: the attempt's effects are no longer recorded.
    pub fn store_error(&self) -> Option<String> {
        self.inner
            .mutable
            .lock()
            .expect("host lock")
            .store_error
            .clone()
    }
}
