//! What `medic step test` prints: the component's describe(), every host call the attempt
//! made (read back from its journal, where the host already redacted secrets), and how
//! it ended, as text or JSON. Everything printed passes the attempt's redactor once more,
//! so a secret value given with `--secret` never appears, wherever the step put it.

use medic_core::{Entry, Event, HostCall, HttpOutcome, Invocation, Redactor};
use medic_sandbox::{Manifest, SandboxError};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

/// How the attempt ended.
pub enum StepResult {
    Done(Value),
    RetryAfter {
        ms: u64,
        reason: String,
    },
    Failed {
        kind: String,
        retryable: bool,
        message: String,
    },
}

/// One thing the step did, in order.
enum Call {
    Log {
        level: String,
        message: String,
    },
    Annotate(String),
    StateSet {
        key: String,
        value: String,
    },
    Secret {
        name: String,
        granted: bool,
        present: bool,
    },
    Http(Exchange),
    Denied {
        method: String,
        url: String,
        host: String,
    },
}

struct Exchange {
    id: u32,
    method: String,
    url: String,
    at_ms: u64,
    /// Status, or the transport error; `None` while unanswered.
    outcome: Option<Result<u16, String>>,
    duration_ms: Option<u64>,
}

pub struct Report {
    component: String,
    describe: Result<Manifest, String>,
    invocation: Value,
    calls: Vec<(u64, Call)>,
    result: StepResult,
    elapsed: Duration,
}

impl Report {
    #[expect(
        clippy::too_many_arguments,
        reason = "one call site; each argument is one part of the report"
    )]
    pub fn new(
        component: &Path,
        describe: Result<Manifest, SandboxError>,
        invocation: &Invocation,
        params: &Value,
        allow: &[String],
        entries: &[Entry],
        result: StepResult,
        elapsed: Duration,
        r: &Redactor,
    ) -> Report {
        let start_ms = entries.first().map(|e| e.at_ms).unwrap_or(0);
        let mut calls: Vec<(u64, Call)> = Vec::new();
        let mut open: BTreeMap<u32, usize> = BTreeMap::new();
        for e in entries {
            let Event::HostCall { call, .. } = &e.event else {
                continue;
            };
            let at = e.at_ms.saturating_sub(start_ms);
            let c = match call {
                HostCall::Log { level, message } => Call::Log {
                    level: level.as_str().to_string(),
                    message: r.text(message),
                },
                HostCall::Annotate { message } => Call::Annotate(r.text(message)),
                HostCall::StateSet { key, value } => Call::StateSet {
                    key: r.text(key),
                    value: r.text(value),
                },
                HostCall::SecretRead {
                    name,
                    granted,
                    present,
                } => Call::Secret {
                    name: name.clone(),
                    granted: *granted,
                    present: *present,
                },
                HostCall::HttpRequest {
                    id, method, url, ..
                } => {
                    open.insert(*id, calls.len());
                    Call::Http(Exchange {
                        id: *id,
                        method: method.clone(),
                        url: r.text(url),
                        at_ms: at,
                        outcome: None,
                        duration_ms: None,
                    })
                }
                HostCall::HttpResponse {
                    id,
                    outcome,
                    duration_ms,
                } => {
                    if let Some(&i) = open.get(id)
                        && let Call::Http(x) = &mut calls[i].1
                    {
                        x.outcome = Some(match outcome {
                            HttpOutcome::Response { status, .. } => Ok(*status),
                            HttpOutcome::Error { message } => Err(r.text(message)),
                        });
                        x.duration_ms = Some(*duration_ms);
                    }
                    continue;
                }
                HostCall::HttpDenied { method, url, host } => Call::Denied {
                    method: method.clone(),
                    url: r.text(url),
                    host: host.clone(),
                },
                // Clock reads and random bytes are journalled for replay; not news.
                HostCall::Clock { .. } | HostCall::Random { .. } => continue,
            };
            calls.push((at, c));
        }
        let result = match result {
            StepResult::Done(v) => StepResult::Done(r.json(&v)),
            StepResult::RetryAfter { ms, reason } => StepResult::RetryAfter {
                ms,
                reason: r.text(&reason),
            },
            StepResult::Failed {
                kind,
                retryable,
                message,
            } => StepResult::Failed {
                kind,
                retryable,
                message: r.text(&message),
            },
        };
        let invocation = json!({
            "phase": invocation.phase.as_str(),
            "attempt": invocation.attempt,
            "idempotency_key": invocation.idempotency_key,
            "params": r.json(params),
            "allow": allow,
            "incident": {
                "title": r.text(&invocation.incident.title),
                "severity": invocation.incident.severity,
                "status": match invocation.incident.status {
                    medic_model::IncidentStatus::Firing => "firing",
                    medic_model::IncidentStatus::Resolved => "resolved",
                },
                "labels": invocation.incident.labels,
            },
        });
        Report {
            component: component.display().to_string(),
            describe: describe.map_err(|e| r.text(&e.to_string())),
            invocation,
            calls,
            result,
            elapsed,
        }
    }

    pub fn ok(&self) -> bool {
        !matches!(self.result, StepResult::Failed { .. })
    }

    pub fn to_json(&self) -> Value {
        let describe = match &self.describe {
            Ok(m) => json!({
                "name": m.name,
                "version": m.version,
                "summary": m.summary,
                "params_schema": m.params_schema,
                "capabilities": {"hosts": m.hosts, "secrets": m.secrets},
            }),
            Err(e) => json!({ "error": e }),
        };
        let mut logs = Vec::new();
        let mut annotations = Vec::new();
        let mut state = Vec::new();
        let mut secrets = Vec::new();
        let mut http = Vec::new();
        for (at, c) in &self.calls {
            match c {
                Call::Log { level, message } => {
                    logs.push(json!({"at_ms": at, "level": level, "message": message}))
                }
                Call::Annotate(m) => annotations.push(json!({"at_ms": at, "message": m})),
                Call::StateSet { key, value } => {
                    state.push(json!({"at_ms": at, "key": key, "value": value}))
                }
                Call::Secret {
                    name,
                    granted,
                    present,
                } => secrets.push(json!({"name": name, "granted": granted, "present": present})),
                Call::Http(x) => http.push(json!({
                    "at_ms": x.at_ms,
                    "id": x.id,
                    "method": x.method,
                    "url": x.url,
                    "denied": false,
                    "status": x.outcome.as_ref().and_then(|o| o.as_ref().ok()),
                    "error": x.outcome.as_ref().and_then(|o| o.as_ref().err()),
                    "duration_ms": x.duration_ms,
                })),
                Call::Denied { method, url, host } => http.push(json!({
                    "at_ms": at,
                    "method": method,
                    "url": url,
                    "denied": true,
                    "host": host,
                })),
            }
        }
        let result = match &self.result {
            StepResult::Done(v) => json!({"status": "done", "output": v}),
            StepResult::RetryAfter { ms, reason } => {
                json!({"status": "retry-after", "retry_after_ms": ms, "reason": reason})
            }
            StepResult::Failed {
                kind,
                retryable,
                message,
            } => json!({
                "status": "failed",
                "error": {"kind": kind, "retryable": retryable, "message": message},
            }),
        };
        json!({
            "component": self.component,
            "wit_version": self.describe.as_ref().ok().map(|m| m.wit_version.as_str()),
            "describe": describe,
            "invocation": self.invocation,
            "logs": logs,
            "annotations": annotations,
            "state_writes": state,
            "secrets": secrets,
            "http": http,
            "result": result,
            "ok": self.ok(),
            "duration_ms": self.elapsed.as_millis() as u64,
        })
    }

    pub fn to_text(&self) -> String {
        let mut o = String::new();
        let w = &mut o;
        let _ = writeln!(w, "component   {}", self.component);
        match &self.describe {
            Ok(m) => {
                let _ = writeln!(w, "wit         medic:step@{}", m.wit_version);
                let _ = writeln!(w, "describe    {} {}: {}", m.name, m.version, m.summary);
                let _ = writeln!(w, "  params    {}", m.params_schema);
                let _ = writeln!(
                    w,
                    "  needs     hosts [{}], secrets [{}]",
                    m.hosts.join(", "),
                    m.secrets.join(", ")
                );
            }
            Err(e) => {
                let _ = writeln!(w, "describe    FAILED: {e}");
            }
        }
        let inv = &self.invocation;
        let _ = writeln!(
            w,
            "invocation  phase {}, attempt {}, idempotency key {}",
            inv["phase"].as_str().unwrap_or(""),
            inv["attempt"],
            inv["idempotency_key"].as_str().unwrap_or("")
        );
        let _ = writeln!(w, "  params    {}", inv["params"]);
        let _ = writeln!(
            w,
            "  incident  {}",
            inv["incident"]["title"].as_str().unwrap_or("")
        );
        let _ = writeln!(w, "  allow     [{}]", strings(&inv["allow"]).join(", "));
        let _ = writeln!(w);
        if self.calls.is_empty() {
            let _ = writeln!(w, "(no host calls)");
        }
        for (at, c) in &self.calls {
            let t = format!("{:>6} ms", at);
            let _ = match c {
                Call::Log { level, message } => writeln!(w, "{t}  log {level:<5}  {message}"),
                Call::Annotate(m) => writeln!(w, "{t}  annotate   {m}"),
                Call::StateSet { key, value } => writeln!(w, "{t}  state-set  {key} = {value}"),
                Call::Secret {
                    name,
                    granted,
                    present,
                } => writeln!(
                    w,
                    "{t}  secret     {name} ({}, {})",
                    if *granted { "granted" } else { "NOT GRANTED" },
                    if *present { "present" } else { "absent" }
                ),
                Call::Http(x) => {
                    let end = match (&x.outcome, x.duration_ms) {
                        (Some(Ok(s)), Some(d)) => format!("{s} in {d} ms"),
                        (Some(Err(e)), Some(d)) => format!("error after {d} ms: {e}"),
                        _ => "no answer".into(),
                    };
                    writeln!(w, "{t}  http       {} {} -> {end}", x.method, x.url)
                }
                Call::Denied { method, url, host } => writeln!(
                    w,
                    "{t}  http       {method} {url} -> DENIED: {host} is not granted (--allow)"
                ),
            };
        }
        let _ = writeln!(w);
        let took = if self.elapsed < std::time::Duration::from_secs(10) {
            format!("{:.1} ms", self.elapsed.as_secs_f64() * 1e3)
        } else {
            medic_model::units::format_duration_ms(self.elapsed.as_millis() as u64)
        };
        match &self.result {
            StepResult::Done(v) => {
                let _ = writeln!(w, "result      done in {took}");
                let pretty = serde_json::to_string_pretty(v).unwrap_or_default();
                let _ = writeln!(w, "output      {}", pretty.replace('\n', "\n            "));
            }
            StepResult::RetryAfter { ms, reason } => {
                let _ = writeln!(w, "result      retry-after {ms} ms in {took}: {reason}");
            }
            StepResult::Failed {
                kind,
                retryable,
                message,
            } => {
                let _ = writeln!(
                    w,
                    "result      FAILED in {took} ({kind}, {}): {message}",
                    if *retryable {
                        "retryable"
                    } else {
                        "not retryable"
                    }
                );
            }
        }
        o
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}
