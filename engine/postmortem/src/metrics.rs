//! The standard incident metrics, each measured from impact start and each with its
//! definition; a metric whose inputs the journals do not hold is absent, with the reason.
//!
//! Impact start is the alert's `startsAt` (Alertmanager, Grafana; PagerDuty's
//! `created_at`; medic's own `startsAt` or the time it read the alert), not the moment
//! medic heard of it: FireHydrant and incident.io measure from impact too, so that time
//! to detect is part of the picture rather than hidden.

use crate::scan::{Outcome, RunRec, Scan};
use crate::time;
use medic_model::{IncidentStatus, Phase};
use serde::Serialize;

/// One metric: a duration from `from` to `to`, or absent with the reason.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metric {
    /// Seconds (millisecond precision), `null` when absent.
    pub seconds: Option<f64>,
    /// For people: `4 m 12 s`, or `unknown` when absent.
    pub text: String,
    /// Where the measurement starts and ends, RFC 3339 UTC; `null` when absent.
    pub from: Option<String>,
    pub to: Option<String>,
    /// The journal entry the end was taken from (`run`, `step`, `event`), in words.
    pub source: Option<String>,
    /// What the metric measures.
    pub definition: &'static str,
    /// Why it is absent; `null` when present.
    pub absent: Option<String>,
    #[serde(skip)]
    pub(crate) ms: Option<u64>,
    #[serde(skip)]
    pub(crate) to_ms: Option<u64>,
}

impl Metric {
    fn present(def: &'static str, from_ms: u64, to_ms: u64, source: String) -> Metric {
        let ms = to_ms.saturating_sub(from_ms);
        Metric {
            seconds: Some(ms as f64 / 1000.0),
            text: time::human(ms),
            from: Some(time::utc(from_ms)),
            to: Some(time::utc(to_ms)),
            source: Some(source),
            definition: def,
            absent: None,
            ms: Some(ms),
            to_ms: Some(to_ms),
        }
    }

    fn absent(def: &'static str, reason: impl Into<String>) -> Metric {
        Metric {
            seconds: None,
            text: "unknown".into(),
            from: None,
            to: None,
            source: None,
            definition: def,
            absent: Some(reason.into()),
            ms: None,
            to_ms: None,
        }
    }

    /// Milliseconds, when present.
    pub fn millis(&self) -> Option<u64> {
        self.ms
    }
}

/// Counts of what was done, and by whom.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Actions {
    /// Steps medic ran (components, not gates) that reached a result.
    pub automated: u32,
    /// Attempts of those steps, retries included.
    pub automated_attempts: u32,
    /// Gates a person decided.
    pub by_people: u32,
    /// Gates their deadline decided, nobody having answered.
    pub by_deadline: u32,
    pub definition: &'static str,
}

/// Every metric of a postmortem. Serialised as the `metrics` object of the JSON output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    pub time_to_detect: Metric,
    pub time_to_communicate: Metric,
    pub time_to_mitigate: Metric,
    pub time_to_verified: Metric,
    pub time_to_resolve: Metric,
    /// The sum of every gate's wait, opened → decided (or → the end of the journal for a
    /// gate still open). Measured from each gate's opening, not from impact start.
    pub waiting_on_people: Metric,
    pub actions: Actions,
}

pub(crate) const DETECT: &str =
    "Impact start (the alert's startsAt) → medic received the alert (the first run was created).";
pub(crate) const COMMUNICATE: &str =
    "Impact start → the first communicate-phase step that succeeded.";
pub(crate) const MITIGATE: &str = "Impact start → the last restore-phase step that succeeded, when no restore step failed for good.";
pub(crate) const VERIFIED: &str = "Impact start → the verify phase passed: the last verify step succeeded, every verify step having succeeded.";
pub(crate) const RESOLVE: &str =
    "Impact start → the incident resolved (its alerts stopped firing, as journalled by a run).";
pub(crate) const WAITING: &str = "Time gates waited for a decision by people, summed over gates (opened → decided; a gate still open counts to the end of its journal).";
pub(crate) const ACTIONS: &str = "Steps medic ran by itself (automated; with their attempts, retries included) versus gates decided by a person, or by their deadline when nobody answered.";

/// Computes every metric from the scanned journals and the impact start.
pub(crate) fn compute(scan: &Scan, impact_ms: u64) -> Metrics {
    let runs = &scan.runs;
    let received = runs.iter().map(|r| r.created_ms).min().unwrap_or(impact_ms);
    let time_to_detect = if received < impact_ms {
        Metric::absent(
            DETECT,
            "the alert's startsAt is later than when medic received it (the clocks of the alert source and medic disagree)",
        )
    } else {
        Metric::present(
            DETECT,
            impact_ms,
            received,
            format!("run_created of run {}", first_run(runs, received)),
        )
    };
    Metrics {
        time_to_detect,
        time_to_communicate: communicate(runs, impact_ms),
        time_to_mitigate: phase_done(runs, impact_ms, Phase::Restore, MITIGATE),
        time_to_verified: phase_done(runs, impact_ms, Phase::Verify, VERIFIED),
        time_to_resolve: resolve(scan, impact_ms),
        waiting_on_people: waiting(runs),
        actions: actions(runs),
    }
}

fn first_run(runs: &[RunRec], created: u64) -> &str {
    runs.iter()
        .find(|r| r.created_ms == created)
        .map_or("?", |r| r.id.as_str())
}

fn communicate(runs: &[RunRec], impact_ms: u64) -> Metric {
    let steps: Vec<_> = runs
        .iter()
        .flat_map(|r| r.steps.iter().map(move |s| (r, s)))
        .filter(|(_, s)| s.phase == Phase::Communicate)
        .collect();
    if steps.is_empty() {
        return Metric::absent(COMMUNICATE, "the workflow has no communicate step");
    }
    let first = steps
        .iter()
        .filter_map(|(r, s)| s.succeeded_ms().map(|at| (at, *r, *s)))
        .min_by_key(|(at, _, _)| *at);
    match first {
        Some((at, r, s)) => Metric::present(
            COMMUNICATE,
            impact_ms,
            at,
            format!("attempt_succeeded of step {} in run {}", s.id, r.id),
        ),
        None => Metric::absent(
            COMMUNICATE,
            format!("no communicate step succeeded ({})", outcomes(&steps)),
        ),
    }
}

/// Time to mitigate (restore) and time to verified (verify): the phase is done when every
/// one of its steps that ran succeeded, at the last success.
fn phase_done(runs: &[RunRec], impact_ms: u64, phase: Phase, def: &'static str) -> Metric {
    let steps: Vec<_> = runs
        .iter()
        .flat_map(|r| r.steps.iter().map(move |s| (r, s)))
        .filter(|(_, s)| s.phase == phase)
        .collect();
    let name = phase.as_str();
    if steps.is_empty() {
        return Metric::absent(def, format!("the workflow has no {name} step"));
    }
    if let Some((r, s)) = steps.iter().find(|(_, s)| s.failed().is_some()) {
        return Metric::absent(def, format!("{name} step {} failed in run {}", s.id, r.id));
    }
    if phase == Phase::Verify
        && let Some((_, s)) = steps.iter().find(|(_, s)| s.succeeded_ms().is_none())
    {
        return Metric::absent(
            def,
            format!("verify step {} did not pass ({})", s.id, describe(s)),
        );
    }
    let last = steps
        .iter()
        .filter_map(|(r, s)| s.succeeded_ms().map(|at| (at, *r, *s)))
        .max_by_key(|(at, _, _)| *at);
    match last {
        Some((at, r, s)) => Metric::present(
            def,
            impact_ms,
            at,
            format!("attempt_succeeded of step {} in run {}", s.id, r.id),
        ),
        None => Metric::absent(
            def,
            format!("no {name} step succeeded ({})", outcomes(&steps)),
        ),
    }
}

fn resolve(scan: &Scan, impact_ms: u64) -> Metric {
    let resolved = scan
        .updates
        .iter()
        .filter(|u| u.status == IncidentStatus::Resolved)
        .min_by_key(|u| u.at_ms);
    match resolved {
        Some(u) => Metric::present(
            RESOLVE,
            impact_ms,
            u.at_ms,
            format!("incident_updated (resolved) in run {}", scan.runs[u.run].id),
        ),
        None => Metric::absent(
            RESOLVE,
            "no run journalled the incident as resolved (no resolved alert arrived while a run was going)",
        ),
    }
}

fn waiting(runs: &[RunRec]) -> Metric {
    let gates: Vec<_> = runs
        .iter()
        .flat_map(|r| {
            r.steps
                .iter()
                .filter_map(move |s| s.gate.as_ref().map(|g| (r, g)))
        })
        .collect();
    if gates.is_empty() {
        return Metric::absent(WAITING, "no gate opened: nothing waited on people");
    }
    let total: u64 = gates
        .iter()
        .map(|(r, g)| {
            let end = g.decided.as_ref().map_or(r.last_ms, |d| d.at_ms);
            end.saturating_sub(g.opened_ms)
        })
        .sum();
    let first = gates.iter().map(|(_, g)| g.opened_ms).min().unwrap_or(0);
    let mut m = Metric::present(
        WAITING,
        first,
        first + total,
        format!("gate_opened → gate_decided of {} gate(s)", gates.len()),
    );
    // A sum of waits has no single end instant.
    m.from = None;
    m.to = None;
    m.to_ms = None;
    m
}

fn actions(runs: &[RunRec]) -> Actions {
    let mut a = Actions {
        automated: 0,
        automated_attempts: 0,
        by_people: 0,
        by_deadline: 0,
        definition: ACTIONS,
    };
    for s in runs.iter().flat_map(|r| &r.steps) {
        match &s.gate {
            Some(g) => match &g.decided {
                Some(d) if d.by_deadline => a.by_deadline += 1,
                Some(_) => a.by_people += 1,
                None => {}
            },
            None if !s.attempts.is_empty() => {
                a.automated += 1;
                a.automated_attempts += u32::try_from(s.attempts.len()).unwrap_or(u32::MAX);
            }
            None => {}
        }
    }
    a
}

fn describe(s: &crate::scan::StepRec) -> String {
    match (&s.skipped, s.attempts.last()) {
        (Some((_, reason)), _) => format!("skipped: {reason}"),
        (None, Some(a)) if a.outcome == Outcome::Open => "no result in the journal".into(),
        (None, Some(a)) => a.failure.clone().unwrap_or_else(|| s.status().into()),
        (None, None) => "it did not run".into(),
    }
}

fn outcomes(steps: &[(&RunRec, &crate::scan::StepRec)]) -> String {
    steps
        .iter()
        .map(|(_, s)| format!("{}: {}", s.id, describe(s)))
        .collect::<Vec<_>>()
        .join("; ")
}
