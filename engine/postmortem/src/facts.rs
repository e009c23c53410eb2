//! The facts of a postmortem, as one serialisable document: what the JSON output is, and
//! what every template sees (each field is a template variable; docs/postmortems.md lists
//! them). Only what the journals say: causes are left to people, as prompts.

use crate::metrics::{self, Metrics};
use crate::scan::{Outcome, RunRec, Scan};
use crate::time;
use medic_model::{IncidentStatus, Phase};
use serde::Serialize;
use std::collections::BTreeMap;

/// The version of the JSON document's shape.
pub const FORMAT: &str = "medic-postmortem/1";

/// Everything a postmortem says. See docs/postmortems.md for each field.
#[derive(Debug, Clone, Serialize)]
pub struct Facts {
    /// Always [`FORMAT`].
    pub format: &'static str,
    /// `Postmortem draft: <incident title>`.
    pub title: String,
    /// "UTC (offset +00:00)": every time in the document is UTC.
    pub timezone: &'static str,
    /// The incident the first run was created for.
    pub incident: IncidentFacts,
    /// Impact start to resolution.
    pub impact: Impact,
    /// One paragraph written from the facts below.
    pub summary: String,
    /// Every run, oldest first.
    pub runs: Vec<RunFacts>,
    /// The standard metrics, with definitions.
    pub metrics: Metrics,
    /// Restore-phase steps that succeeded, and which restore option each was.
    pub restore: Vec<RestoreFacts>,
    /// Every gate: what people were asked and what they decided.
    pub gates: Vec<GateFacts>,
    /// Every step of every run, in run order.
    pub steps: Vec<StepFacts>,
    /// The merged timeline, oldest first.
    pub timeline: Vec<TimelineRow>,
    /// The sections only people can write, as questions.
    pub prompts: Vec<Prompt>,
}

/// The incident.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentFacts {
    /// The incident id (the alert fingerprint in `medic serve`).
    pub id: String,
    /// The alert's title.
    pub title: String,
    /// The alert's severity.
    pub severity: String,
    /// Where the alert came from: `alertmanager`, `cli`, ...
    pub source: String,
    /// `firing` or `resolved`: the latest status any run journalled.
    pub status: &'static str,
    /// The alert's labels.
    pub labels: BTreeMap<String, String>,
    /// The alert's `summary` annotation, when it has one.
    pub description: Option<String>,
    /// `startsAt` as the alert gave it.
    pub started_at: String,
}

/// The impact window.
#[derive(Debug, Clone, Serialize)]
pub struct Impact {
    /// RFC 3339 UTC: T+00:00 of every timeline offset.
    pub start: String,
    /// Where `start` comes from.
    pub start_source: String,
    /// When the incident resolved, if a run journalled it.
    pub end: Option<String>,
    /// `end - start`, for people; `null` while unresolved.
    pub duration: Option<String>,
    /// `end - start` in seconds; `null` while unresolved.
    pub seconds: Option<f64>,
}

/// One run of the incident.
#[derive(Debug, Clone, Serialize)]
pub struct RunFacts {
    /// The run id.
    pub id: String,
    /// The workflow's name.
    pub workflow: String,
    /// The workflow file the run was started from.
    pub workflow_file: String,
    /// `running`, `succeeded` or `failed`.
    pub status: &'static str,
    /// Why it failed, when it did.
    pub reason: Option<String>,
    /// Whether it was a drill.
    pub drill: bool,
    /// When it was created (medic received the alert), RFC 3339 UTC.
    pub created: String,
    /// When it finished; `null` while running.
    pub finished: Option<String>,
    /// Run length for people (created → finished, or → its last entry while running).
    pub duration: String,
    /// `<external_url>/runs/<id>`, when an external URL is configured.
    pub url: Option<String>,
    /// `<external_url>/api/runs/<id>/postmortem`, when an external URL is configured.
    pub postmortem_url: Option<String>,
}

/// A restore-phase step that succeeded.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreFacts {
    /// The run id.
    pub run: String,
    /// The step id.
    pub step: String,
    /// Its component.
    pub uses: String,
    /// Its `action` parameter, when it has one (`undo`, `disable`, ...).
    pub action: Option<String>,
    /// `retoggle`, `rollback`, `roll forward`, `wait` (a status check) or `other`.
    pub kind: &'static str,
    /// When it succeeded, RFC 3339 UTC.
    pub at: String,
    /// The same as T+ from impact start.
    pub t: String,
}

/// A gate: what people were asked, and what they decided.
#[derive(Debug, Clone, Serialize)]
pub struct GateFacts {
    /// The run id.
    pub run: String,
    /// The gate step's id.
    pub step: String,
    /// The question, rendered.
    pub prompt: String,
    /// Who could decide (empty: anyone with an API token).
    pub approvers: Vec<String>,
    /// When it opened, RFC 3339 UTC.
    pub opened: String,
    /// The same as T+.
    pub opened_t: String,
    /// When its deadline decides, RFC 3339 UTC.
    pub deadline: String,
    /// What the deadline decides: `approved` or `rejected`.
    pub on_deadline: &'static str,
    /// `approved`, `rejected`, or `null` while open.
    pub decision: Option<&'static str>,
    /// When it was decided, RFC 3339 UTC.
    pub decided: Option<String>,
    /// The same as T+.
    pub decided_t: Option<String>,
    /// Who decided (for a deadline, what `by` the journal holds).
    pub by: Option<String>,
    /// True when the deadline decided, nobody having answered.
    pub by_deadline: bool,
    /// The decider's comment.
    pub comment: Option<String>,
    /// How long it waited, for people (to the journal's end while open).
    pub wait: String,
    /// The same in seconds.
    pub wait_seconds: f64,
}

/// One step of one run.
#[derive(Debug, Clone, Serialize)]
pub struct StepFacts {
    /// The run id.
    pub run: String,
    /// The step id.
    pub id: String,
    /// Its phase.
    pub phase: &'static str,
    /// The component, or `gate`.
    pub uses: String,
    /// `succeeded`, `failed`, `skipped`, `waiting`, `running` or `pending`.
    pub status: &'static str,
    /// Attempts started (retries included).
    pub attempts: u32,
    /// First attempt start → last result, for people; `null` when it never ran.
    pub duration: Option<String>,
    /// The same in seconds.
    pub seconds: Option<f64>,
    /// When its first attempt started (or its gate opened), T+.
    pub started_t: Option<String>,
    /// The last failure, or the reason it was skipped.
    pub note: Option<String>,
}

/// One row of the timeline.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineRow {
    /// RFC 3339 UTC with milliseconds.
    pub at: String,
    /// `03:00:12` UTC.
    pub clock: String,
    /// `T+04:12` from impact start.
    pub t: String,
    /// The run's workflow name; empty for incident-wide rows.
    pub workflow: String,
    /// The step's phase, for step rows.
    pub phase: Option<&'static str>,
    /// The step, for step rows.
    pub step: Option<String>,
    /// `impact`, `alert`, `succeeded`, `retry`, `failed`, `skipped`, `http`, `note`,
    /// `log`, `denied`, `gate`, `decision`, `incident` or `finished`.
    pub kind: &'static str,
    /// What happened, one line.
    pub text: String,
}

/// A section only people can write, as a question.
#[derive(Debug, Clone, Serialize)]
pub struct Prompt {
    /// The section's heading.
    pub section: &'static str,
    /// The question.
    pub prompt: &'static str,
}

const PROMPTS: [(&str, &str); 6] = [
    (
        "Impact",
        "Who and what was affected (users, requests, revenue, other systems), and how badly? The journal only knows when the alert fired and when medic's checks passed.",
    ),
    (
        "Contributing factors",
        "What conditions made this incident possible? List several; avoid a single root cause and avoid naming people.",
    ),
    (
        "What went well",
        "What helped: alerts, runbook steps, tools, people?",
    ),
    (
        "What went wrong",
        "What slowed detection, communication or recovery? Which steps failed or retried, and why?",
    ),
    (
        "Where we got lucky",
        "What could have made this much worse, and did not?",
    ),
    (
        "Action items",
        "Each with an owner, a due date and a ticket: | action | owner | due | ticket |",
    ),
];

/// The facts, and impact start (Unix ms): T+00:00.
/// When impact started (ms): the alert's `startsAt`, or when medic received the alert,
/// with why, when that time cannot be used.
pub(crate) fn impact(scan: &Scan) -> (u64, Option<String>) {
    let first = &scan.runs[0];
    let incident = &first.incident;
    let received = first.created_ms;
    match time::parse_rfc3339(&incident.started_at) {
        Some(ms) if ms <= received => (ms, None),
        Some(_) => (
            received,
            Some("the alert's startsAt is later than when medic received it (the clocks of the alert source and medic disagree)".to_string()),
        ),
        None => (
            received,
            Some(format!(
                "the alert's startsAt `{}` is not an RFC 3339 time",
                incident.started_at
            )),
        ),
    }
}

pub(crate) fn build(scan: &Scan, external_url: Option<&str>) -> (Facts, u64) {
    let first = &scan.runs[0];
    let incident = &first.incident;
    let (impact_ms, no_start) = impact(scan);
    let start_source = match &no_start {
        None => "the alert's startsAt".to_string(),
        Some(why) => format!("when medic received the alert: {why}"),
    };
    let metrics = metrics::compute(scan, impact_ms, no_start.as_deref());
    let status = scan
        .updates
        .iter()
        .max_by_key(|u| (u.at_ms, u.run))
        .map_or(incident.status, |u| u.status);
    let base = external_url.map(|u| u.trim_end_matches('/').to_string());
    let runs: Vec<RunFacts> = scan
        .runs
        .iter()
        .map(|r| run_facts(r, base.as_deref()))
        .collect();
    let t = |ms: u64| time::t_plus(ms, impact_ms);
    let restore = restore_facts(&scan.runs, impact_ms);
    let gates = gate_facts(&scan.runs, impact_ms);
    let steps = scan
        .runs
        .iter()
        .flat_map(|r| r.steps.iter().map(move |s| (r, s)))
        .map(|(r, s)| {
            let start = s
                .attempts
                .first()
                .map(|a| a.start_ms)
                .or(s.gate.as_ref().map(|g| g.opened_ms));
            let end = s.attempts.last().map(|a| a.end_ms).max(
                s.gate
                    .as_ref()
                    .and_then(|g| g.decided.as_ref())
                    .map(|d| d.at_ms),
            );
            let took = start.zip(end).map(|(a, b)| b.saturating_sub(a));
            StepFacts {
                run: r.id.clone(),
                id: s.id.clone(),
                phase: s.phase.as_str(),
                uses: s.uses.clone(),
                status: s.status(),
                attempts: u32::try_from(s.attempts.len()).unwrap_or(u32::MAX),
                duration: took.map(time::human),
                seconds: took.map(|ms| ms as f64 / 1000.0),
                started_t: start.map(t),
                note: match &s.skipped {
                    Some((_, reason)) => Some(format!("skipped: {reason}")),
                    None => s.attempts.iter().rev().find_map(|a| a.failure.clone()),
                },
            }
        })
        .collect();
    let mut rows = scan.rows.clone();
    rows.push(crate::scan::Row {
        at_ms: impact_ms,
        run: 0,
        seq: 0,
        phase: None,
        step: None,
        kind: "impact",
        text: format!("impact started ({start_source})"),
    });
    // Merged across runs: by time, then run, then journal order; the impact row first
    // among rows of its instant.
    rows.sort_by_key(|r| (r.at_ms, r.kind != "impact", r.run, r.seq));
    let multi = scan.runs.len() > 1;
    let timeline = rows
        .into_iter()
        .map(|r| TimelineRow {
            at: time::utc(r.at_ms),
            clock: time::clock(r.at_ms),
            t: t(r.at_ms),
            workflow: if r.kind == "impact" || !multi {
                String::new()
            } else {
                scan.runs[r.run].workflow.name.clone()
            },
            phase: r.phase.map(Phase::as_str),
            step: r.step,
            kind: r.kind,
            text: r.text,
        })
        .collect();
    let end_ms = metrics.time_to_resolve.to_ms;
    let impact = Impact {
        start: time::utc(impact_ms),
        start_source,
        end: end_ms.map(time::utc),
        duration: end_ms.map(|e| time::human(e - impact_ms)),
        seconds: end_ms.map(|e| (e - impact_ms) as f64 / 1000.0),
    };
    let summary = summary(scan, &metrics, &restore, &gates, &runs, status);
    let facts = Facts {
        format: FORMAT,
        title: format!("Postmortem draft: {}", incident.title),
        timezone: "UTC (offset +00:00)",
        incident: crate::facts::IncidentFacts {
            id: incident.id.clone(),
            title: incident.title.clone(),
            severity: incident.severity.clone(),
            source: incident.source.clone(),
            status: status.as_str(),
            labels: incident.labels.clone(),
            description: incident.annotations.get("summary").cloned(),
            started_at: incident.started_at.clone(),
        },
        impact,
        summary,
        runs,
        metrics,
        restore,
        gates,
        steps,
        timeline,
        prompts: PROMPTS
            .iter()
            .map(|&(section, prompt)| Prompt { section, prompt })
            .collect(),
    };
    (facts, impact_ms)
}

fn run_facts(r: &RunRec, base: Option<&str>) -> RunFacts {
    let end = r.finished.as_ref().map_or(r.last_ms, |f| f.0);
    RunFacts {
        id: r.id.clone(),
        workflow: r.workflow.name.clone(),
        workflow_file: r.workflow_file.clone(),
        status: r.finished.as_ref().map_or("running", |f| f.1.as_str()),
        reason: r.finished.as_ref().and_then(|f| f.2.clone()),
        drill: r.drill,
        created: time::utc(r.created_ms),
        finished: r.finished.as_ref().map(|f| time::utc(f.0)),
        duration: time::human(end.saturating_sub(r.created_ms)),
        url: base.map(|b| format!("{b}/runs/{}", r.id)),
        postmortem_url: base.map(|b| format!("{b}/api/runs/{}/postmortem", r.id)),
    }
}

fn restore_facts(runs: &[RunRec], impact_ms: u64) -> Vec<RestoreFacts> {
    let mut out = Vec::new();
    for r in runs {
        for s in r.steps.iter().filter(|s| s.phase == Phase::Restore) {
            let Some(a) = s.attempts.iter().find(|a| a.outcome == Outcome::Succeeded) else {
                continue;
            };
            let action = a.action.clone();
            let kind = match action.as_deref() {
                _ if s.uses.contains("flag") => "retoggle",
                Some("undo" | "rollback") => "rollback",
                Some("set_image" | "set-image" | "deploy" | "roll_forward" | "roll-forward") => {
                    "roll forward"
                }
                Some("status") => "wait",
                _ => "other",
            };
            out.push(RestoreFacts {
                run: r.id.clone(),
                step: s.id.clone(),
                uses: s.uses.clone(),
                action,
                kind,
                at: time::utc(a.end_ms),
                t: time::t_plus(a.end_ms, impact_ms),
            });
        }
    }
    out
}

fn gate_facts(runs: &[RunRec], impact_ms: u64) -> Vec<GateFacts> {
    let mut out = Vec::new();
    for r in runs {
        for s in &r.steps {
            let Some(g) = &s.gate else { continue };
            let d = g.decided.as_ref();
            let wait = d.map_or(r.last_ms, |d| d.at_ms).saturating_sub(g.opened_ms);
            out.push(GateFacts {
                run: r.id.clone(),
                step: s.id.clone(),
                prompt: g.prompt.clone(),
                approvers: g.approvers.clone(),
                opened: time::utc(g.opened_ms),
                opened_t: time::t_plus(g.opened_ms, impact_ms),
                deadline: time::utc(g.deadline_ms),
                on_deadline: g.on_deadline.past(),
                decision: d.map(|d| d.decision.past()),
                decided: d.map(|d| time::utc(d.at_ms)),
                decided_t: d.map(|d| time::t_plus(d.at_ms, impact_ms)),
                by: d.map(|d| d.by.clone()),
                by_deadline: d.is_some_and(|d| d.by_deadline),
                comment: d.and_then(|d| d.comment.clone()),
                wait: time::human(wait),
                wait_seconds: wait as f64 / 1000.0,
            });
        }
    }
    out
}

/// The summary paragraph: each sentence states a journalled fact or a metric.
fn summary(
    scan: &Scan,
    m: &Metrics,
    restore: &[RestoreFacts],
    gates: &[GateFacts],
    runs: &[RunFacts],
    status: IncidentStatus,
) -> String {
    let incident = &scan.runs[0].incident;
    let mut s = format!(
        "The {} alert \"{}\" (from {}) started the incident.",
        incident.severity, incident.title, incident.source
    );
    if let Some(ms) = m.time_to_detect.millis() {
        s += &format!(" medic received it {} after impact start", time::human(ms));
    } else {
        s += " medic received it";
    }
    let names: Vec<String> = runs
        .iter()
        .map(|r| format!("{} (run {}, {})", r.workflow, r.id, r.status))
        .collect();
    s += &format!(
        " and ran {} {}.",
        if runs.len() == 1 {
            "workflow"
        } else {
            "workflows"
        },
        names.join(" and ")
    );
    let options: Vec<String> = restore
        .iter()
        .filter(|r| r.kind != "wait")
        .map(|r| {
            let what = r
                .action
                .as_ref()
                .map_or(r.uses.clone(), |a| format!("{} {a}", r.uses));
            format!("{} (step {}: {what})", r.kind, r.step)
        })
        .collect();
    match (&m.time_to_mitigate.absent, options.is_empty()) {
        (None, false) => {
            s += &format!(
                " It restored service by {}; the restore phase finished {} after impact start.",
                options.join(", then "),
                m.time_to_mitigate.text
            )
        }
        (None, true) => {
            s += &format!(
                " Its restore phase finished {} after impact start.",
                m.time_to_mitigate.text
            )
        }
        (Some(why), _) => s += &format!(" No restore is recorded as done: {why}."),
    }
    match &m.time_to_verified.absent {
        None => {
            s += &format!(
                " Verification passed {} after impact start.",
                m.time_to_verified.text
            )
        }
        Some(why) => s += &format!(" Verification did not pass: {why}."),
    }
    let decided: Vec<String> = gates
        .iter()
        .map(|g| match (&g.decision, &g.by, g.by_deadline) {
            (Some(d), _, true) => format!("{} was {d} by its deadline", g.step),
            (Some(d), Some(by), false) => format!("{} was {d} by {by}", g.step),
            _ => format!("{} is still waiting", g.step),
        })
        .collect();
    if !decided.is_empty() {
        s += &format!(
            " People were asked {} time(s): {}.",
            gates.len(),
            decided.join("; ")
        );
    }
    match (status, &m.time_to_resolve.absent) {
        (IncidentStatus::Resolved, None) => {
            s += &format!(
                " The incident resolved {} after impact start.",
                m.time_to_resolve.text
            )
        }
        _ => s += " The incident is not recorded as resolved.",
    }
    s
}
