//! Answering a replay's requests: faults first, then the recording. The decisions are a
//! pure function of the requests in order ([`Oracle`]), so the report recomputes them
//! from the replay's journal, and a drill resumed after a crash rebuilds its state the
//! same way.

use crate::clock::DrillClock;
use crate::faults::{Fault, FaultKind};
use crate::format::{DrillBody, DrillFile, Offset};
use crate::matcher::{Divergence, Matched, Matcher, RequestKey};
use medic_core::{Body, HostCall, HttpOutcome, HttpResponder};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// How one request is answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// A fault, with the recorded exchange it used (latency and malformed keep the
    /// recorded answer).
    Fault(FaultKind, Option<usize>),
    /// The recorded exchange at this index (`repeat`: its requests were all used).
    Recorded {
        /// Index into the drill's exchanges.
        index: usize,
        /// Every recorded answer to this request was used: the last one again.
        repeat: bool,
    },
    /// Nothing recorded: the `matching.unmatched` answer, and why.
    Unseen(Divergence, FaultKind),
}

/// Decides how each request is answered, in order.
pub struct Oracle {
    matcher: Matcher,
    faults: Vec<(Fault, u32)>,
    /// Faults given for the fork apply from this virtual offset on.
    forked_faults_from: u64,
    forked: usize,
    unmatched: FaultKind,
    start_ms: u64,
    /// Recorded exchanges before this offset are answered no earlier than recorded: until
    /// the replay departs from the recording.
    catch_up_until: u64,
}

impl Oracle {
    /// `faults` from the drill file apply throughout; `extra` (the command line's) from
    /// `fork_from` on.
    pub fn new(drill: &DrillFile, extra: &[Fault], fork_from: Offset) -> Self {
        let mut faults: Vec<(Fault, u32)> = extra.iter().map(|f| (f.clone(), 0)).collect();
        let forked = faults.len();
        faults.extend(drill.faults.iter().map(|f| (f.clone(), 0)));
        Oracle {
            matcher: Matcher::new(drill),
            faults,
            forked_faults_from: fork_from.ms(),
            forked,
            unmatched: drill.matching.unmatched.unwrap_or(FaultKind::Refused),
            start_ms: drill.started_at_ms,
            catch_up_until: u64::MAX,
        }
    }

    /// From `at_ms` on, the replay no longer follows the recording's clock (see
    /// [`Oracle::not_before`]): a gate decided otherwise, an incident update the recording
    /// did not have. Faults and requests the recording never saw depart by themselves.
    pub fn depart(&mut self, at_ms: u64) {
        self.catch_up_until = self.catch_up_until.min(at_ms.saturating_sub(self.start_ms));
    }

    /// The instant (ms since the epoch) `decision` is answered no earlier than, if any.
    ///
    /// A replay follows the recording's clock until it departs from it: a request answered
    /// from the recording is answered no earlier than it was recorded (the clock jumps
    /// there first). The recording knows how long steps and providers took between
    /// requests (a poll's sleep, a slow provider, compiling a component); the replay does
    /// not, so without this an unchanged workflow would restore sooner in the replay than
    /// it did, and a template quoting times (`run.metrics`) would render other text. From
    /// the first departure on (a fault, an unseen request, [`Oracle::depart`]) the replay
    /// runs on its own time, so a "what if" shows the minutes it saves.
    pub fn not_before(&self, decision: &Decision) -> Option<u64> {
        let Decision::Recorded {
            index,
            repeat: false,
        } = decision
        else {
            return None;
        };
        let at = self.matcher.exchange(*index).at.ms();
        (at < self.catch_up_until).then_some(self.start_ms + at)
    }

    /// The matcher (for the recorded exchanges).
    pub fn matcher(&self) -> &Matcher {
        &self.matcher
    }

    /// Decides for `request` (a journalled `HostCall::HttpRequest`), made at `now_ms`.
    /// `None` for any other call.
    pub fn decide(
        &mut self,
        step: &str,
        attempt: u32,
        request: &HostCall,
        now_ms: u64,
    ) -> Option<Decision> {
        let HostCall::HttpRequest {
            method, url, body, ..
        } = request
        else {
            return None;
        };
        let shown = format!("{method} {url}");
        let key = RequestKey::new(
            method,
            url,
            DrillBody::from_journal(body)
                .map(|b| crate::record::clean_body(b, &medic_core::Redactor::default()))
                .as_ref(),
            self.matcher.ignore(),
        );
        let offset = now_ms.saturating_sub(self.start_ms);
        let fault = self
            .faults
            .iter_mut()
            .enumerate()
            .find_map(|(i, (f, used))| {
                let active = i >= self.forked || offset >= self.forked_faults_from;
                let left = f.times.is_none_or(|t| *used < t);
                (active && left && f.targets(step, method, url)).then(|| {
                    *used += 1;
                    f.fault
                })
            });
        if fault.is_some() {
            self.depart(now_ms);
        }
        let matched = match fault {
            // These answer without the recording: they must not use up a recorded answer.
            Some(k @ (FaultKind::Status(_) | FaultKind::Timeout | FaultKind::Refused)) => {
                return Some(Decision::Fault(k, None));
            }
            _ => self.matcher.take(step, attempt, &shown, &key),
        };
        Some(match (fault, matched) {
            (Some(k), Matched::Recorded(i) | Matched::Repeat(i)) => Decision::Fault(k, Some(i)),
            (Some(k), Matched::Unseen(_)) => Decision::Fault(k, None),
            (None, Matched::Recorded(i)) => Decision::Recorded {
                index: i,
                repeat: false,
            },
            (None, Matched::Repeat(i)) => Decision::Recorded {
                index: i,
                repeat: true,
            },
            (None, Matched::Unseen(d)) => {
                self.depart(now_ms);
                Decision::Unseen(d, self.unmatched)
            }
        })
    }

    /// The answer for `decision`, and how much virtual time it takes. `timeout_ms` is the
    /// step's attempt timeout (what "no answer" costs).
    pub fn answer(&self, decision: &Decision, timeout_ms: u64) -> (HttpOutcome, u64) {
        let recorded = |i: usize| {
            let e = self.matcher.exchange(i);
            let outcome = match (e.response.status, &e.response.error) {
                (Some(status), _) => HttpOutcome::Response {
                    status,
                    headers: e
                        .response
                        .headers
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    body: e
                        .response
                        .body
                        .as_ref()
                        .map(DrillBody::to_journal)
                        .unwrap_or(Body::Empty),
                },
                (None, error) => HttpOutcome::Error {
                    message: error.clone().unwrap_or_else(|| "no response".into()),
                },
            };
            (outcome, e.latency.ms())
        };
        let fault = |k: FaultKind, rec: Option<usize>| -> (HttpOutcome, u64) {
            match k {
                FaultKind::Status(status) => (
                    HttpOutcome::Response {
                        status,
                        headers: vec![("content-type".into(), "text/plain".into())],
                        body: Body::Text(format!("drill fault: HTTP {status}")),
                    },
                    0,
                ),
                FaultKind::Timeout => (
                    HttpOutcome::Error {
                        message: "drill fault: no answer (timed out)".into(),
                    },
                    timeout_ms,
                ),
                FaultKind::Refused => (
                    HttpOutcome::Error {
                        message: "drill fault: connection refused".into(),
                    },
                    0,
                ),
                FaultKind::Latency(d) => match rec {
                    Some(i) => {
                        let (o, l) = recorded(i);
                        (o, l + d.ms())
                    }
                    None => (
                        HttpOutcome::Error {
                            message: "drill: connection refused (not in the recording)".into(),
                        },
                        d.ms(),
                    ),
                },
                FaultKind::Malformed => {
                    let status = rec
                        .and_then(|i| self.matcher.exchange(i).response.status)
                        .unwrap_or(200);
                    (
                        HttpOutcome::Response {
                            status,
                            headers: vec![("content-type".into(), "application/json".into())],
                            body: Body::Text("{\"drill\": \"malformed bo".into()),
                        },
                        0,
                    )
                }
            }
        };
        match decision {
            Decision::Recorded { index, .. } => recorded(*index),
            Decision::Fault(k, rec) => fault(*k, *rec),
            Decision::Unseen(_, FaultKind::Refused) => (
                HttpOutcome::Error {
                    message: "drill: connection refused (the recording has no such request)".into(),
                },
                0,
            ),
            Decision::Unseen(_, k) => fault(*k, None),
        }
    }
}

/// The drill's [`HttpResponder`]: every request is answered here, none reaches the
/// network, unless `live` (then only faulted requests are answered here).
pub struct Responder {
    oracle: Mutex<Oracle>,
    clock: Arc<DrillClock>,
    timeouts: HashMap<String, u64>,
    live: bool,
}

impl Responder {
    /// `timeouts`: each step's attempt timeout in ms (what a `timeout` fault costs).
    pub fn new(
        oracle: Oracle,
        clock: Arc<DrillClock>,
        timeouts: BTreeMap<String, u64>,
        live: bool,
    ) -> Self {
        Responder {
            oracle: Mutex::new(oracle),
            clock,
            timeouts: timeouts.into_iter().collect(),
            live,
        }
    }

    /// From `at_ms` on, answers no longer follow the recording's clock ([`Oracle::depart`]).
    pub fn depart(&self, at_ms: u64) {
        self.oracle.lock().expect("oracle lock").depart(at_ms);
    }

    /// Feeds a request already answered (in the journal of a drill being resumed), so the
    /// next answers follow on from it.
    pub fn replayed(&self, step: &str, attempt: u32, request: &HostCall, at_ms: u64) {
        self.oracle
            .lock()
            .expect("oracle lock")
            .decide(step, attempt, request, at_ms);
    }
}

impl HttpResponder for Responder {
    fn respond(&self, step: &str, attempt: u32, request: &HostCall) -> Option<HttpOutcome> {
        let now = medic_core::Clock::now_ms(self.clock.as_ref());
        let mut oracle = self.oracle.lock().expect("oracle lock");
        let decision = oracle.decide(step, attempt, request, now)?;
        if self.live && !matches!(decision, Decision::Fault(..)) {
            return None;
        }
        let timeout = self.timeouts.get(step).copied().unwrap_or(30_000);
        let (outcome, took) = oracle.answer(&decision, timeout);
        let wait = oracle
            .not_before(&decision)
            .map_or(0, |at| at.saturating_sub(now));
        drop(oracle);
        self.clock.advance(wait + took);
        Some(outcome)
    }
}
