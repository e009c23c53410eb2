//! The drill report: the recorded run against the replay, step by step, with a verdict.
//! Everything in it comes from the drill file, the options and the replay's journal (in
//! virtual time), never from the wall clock or the run id, so the same drill with the same
//! inputs gives the same report byte for byte.

use crate::format::{DrillFile, Offset};
use crate::matcher::Divergence;
use crate::outcome::{Outcome, StepOutcome};
use crate::replay::{Options, Replay, Setup};
use crate::responder::{Decision, Oracle};
use medic_core::{Event, HostCall};
use serde::Serialize;
use std::fmt::Write as _;

/// How the replay went, compared with the recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Restored, with the same steps, outcomes and provider calls as the recording.
    RestoredAsBefore,
    /// Restored, but not the way the recording did.
    RestoredDifferently,
    /// Restored; the drill has no recorded run to compare with (a hand-written scenario).
    Restored,
    /// The restore phase did not succeed.
    DidNotRestore,
}

impl Verdict {
    /// How the report writes it: `restored as before`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::RestoredAsBefore => "restored as before",
            Verdict::RestoredDifferently => "restored differently",
            Verdict::Restored => "restored",
            Verdict::DidNotRestore => "did not restore",
        }
    }
}

/// A drill report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The drill's name.
    pub drill: String,
    /// The workflow's name.
    pub workflow: String,
    /// Where the workflow came from.
    pub workflow_file: String,
    /// How it went, compared with the recording.
    pub verdict: Verdict,
    /// For "did not restore": the step that kept it from restoring and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_by: Option<String>,
    /// What the drill was asked to change (faults, decisions, fork, crash).
    pub inputs: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The recorded run, when the drill has it.
    pub original: Option<Outcome>,
    /// The replay.
    pub replay: Outcome,
    /// Requests the recording could not answer.
    pub divergences: Vec<Divergence>,
    /// Recorded requests the replay never made: `METHOD URL (step S)`.
    pub not_made: Vec<String>,
    /// Faults that answered requests: `step: METHOD URL -> fault`.
    pub faulted: Vec<String>,
}

impl Report {
    /// Builds the report of `replay`.
    pub fn new(
        drill: &DrillFile,
        setup: &Setup,
        opts: &Options,
        replay: &Replay,
    ) -> Result<Report, medic_core::StateError> {
        let outcome = Outcome::from_journal(&replay.run_id, &replay.entries)?;
        let mut oracle = Oracle::new(drill, &opts.faults, opts.from);
        let mut used = vec![false; drill.exchanges.len()];
        let mut divergences = Vec::new();
        let mut faulted = Vec::new();
        for e in &replay.entries {
            let Event::HostCall {
                step,
                attempt,
                call: call @ HostCall::HttpRequest { method, url, .. },
            } = &e.event
            else {
                continue;
            };
            match oracle.decide(step, *attempt, call, e.at_ms) {
                Some(Decision::Recorded { index, .. }) => used[index] = true,
                Some(Decision::Fault(kind, rec)) => {
                    if let Some(i) = rec {
                        used[i] = true;
                    }
                    faulted.push(format!("{step}: {method} {url} -> {kind}"));
                }
                Some(Decision::Unseen(d, _)) => divergences.push(d),
                None => {}
            }
        }
        let not_made: Vec<String> = drill
            .exchanges
            .iter()
            .zip(&used)
            .filter(|(_, u)| !**u)
            .map(|(x, _)| format!("{} {} (step {})", x.request.method, x.request.url, x.step))
            .collect();
        let verdict = match (&drill.original, outcome.restored()) {
            (_, false) => Verdict::DidNotRestore,
            (None, true) => Verdict::Restored,
            (Some(o), true) if same_path(o, &outcome) && divergences.is_empty() => {
                Verdict::RestoredAsBefore
            }
            (Some(_), true) => Verdict::RestoredDifferently,
        };
        let blocked_by =
            (verdict == Verdict::DidNotRestore).then(|| match outcome.blocking_step() {
                Some(s) => format!(
                    "step {} {}{}",
                    s.id,
                    s.status,
                    s.why.as_ref().map(|w| format!(": {w}")).unwrap_or_default()
                ),
                None => "no restore step succeeded".into(),
            });
        let mut inputs = Vec::new();
        if opts.from.ms() > 0 {
            inputs.push(format!(
                "fork: recorded history until {}, then the changes below",
                opts.from
            ));
        }
        for f in drill.faults.iter().chain(&opts.faults) {
            let target = match (&f.step, &f.request) {
                (Some(s), Some(r)) => format!("step {s}, requests with `{r}`"),
                (Some(s), None) => format!("step {s}"),
                (None, Some(r)) => format!("requests with `{r}`"),
                (None, None) => "every request".into(),
            };
            let times = f.times.map(|n| format!(", first {n}")).unwrap_or_default();
            inputs.push(format!("fault: {target}: {}{times}", f.fault));
        }
        for d in &opts.decide {
            let what = d
                .decision
                .map(|d| d.as_str())
                .unwrap_or("nobody answers (deadline)");
            inputs.push(format!(
                "gate {}: {what}, {} after it opens",
                d.step, d.after
            ));
        }
        for u in &opts.incident_updates {
            inputs.push(format!("incident: {} at {}", u.status.as_str(), u.at));
        }
        if let Some(n) = replay.crashed_at {
            inputs.push(format!(
                "crash: medic stopped at journal write {n}, then resumed"
            ));
        }
        if opts.live {
            inputs.push("live: requests went to the real services".into());
        }
        Ok(Report {
            drill: drill.name.clone(),
            workflow: setup.workflow.name.clone(),
            workflow_file: setup.workflow_file.clone(),
            verdict,
            blocked_by,
            inputs,
            original: drill.original.clone(),
            replay: outcome,
            divergences,
            not_made,
            faulted,
        })
    }

    /// Whether the replay did worse than the recording: it did not restore, or the
    /// recording was verified and the replay was not, or the recorded run succeeded and
    /// the replay's failed.
    pub fn regressed(&self) -> bool {
        let replay_verified = self.replay.time_to_verified.is_some();
        match &self.original {
            Some(o) => {
                (o.restored() && !self.replay.restored())
                    || (o.time_to_verified.is_some() && !replay_verified)
                    || (o.status == "succeeded" && self.replay.status != "succeeded")
            }
            None => !self.replay.restored(),
        }
    }

    /// Whether the replay asked for anything the recording did not have, or took
    /// another path.
    pub fn diverged(&self) -> bool {
        !self.divergences.is_empty() || self.verdict == Verdict::RestoredDifferently
    }

    /// The report as JSON (sorted keys).
    pub fn json(&self) -> String {
        let v = serde_json::to_value(self).expect("reports serialize");
        let mut s = serde_json::to_string_pretty(&v).expect("JSON values print");
        s.push('\n');
        s
    }

    /// The report for people.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let w = &mut out;
        let _ = writeln!(w, "drill: {}", self.drill);
        let _ = writeln!(w, "workflow: {} ({})", self.workflow, self.workflow_file);
        let verdict = self.verdict.as_str().to_uppercase();
        match &self.blocked_by {
            Some(b) => {
                let _ = writeln!(w, "verdict: {verdict}: {b}");
            }
            None => {
                let _ = writeln!(w, "verdict: {verdict}");
            }
        }
        for i in &self.inputs {
            let _ = writeln!(w, "  {i}");
        }
        let o = self.original.as_ref();
        let r = &self.replay;
        let t = |x: Option<Offset>| x.map(|d| d.to_string()).unwrap_or_else(|| "-".into());
        let _ = writeln!(w, "\n{:<22} {:<24} replay (virtual time)", "", "original");
        let row = |w: &mut String, name: &str, a: String, b: String| {
            let _ = writeln!(w, "{name:<22} {a:<24} {b}");
        };
        let na = || "-".to_string();
        row(
            w,
            "time to restore",
            o.map(|o| t(o.time_to_restore)).unwrap_or_else(na),
            t(r.time_to_restore),
        );
        row(
            w,
            "time to verified",
            o.map(|o| t(o.time_to_verified)).unwrap_or_else(na),
            t(r.time_to_verified),
        );
        row(
            w,
            "run",
            o.map(|o| o.status.clone()).unwrap_or_else(na),
            r.status.clone(),
        );
        row(
            w,
            "duration",
            o.map(|o| o.duration.to_string()).unwrap_or_else(na),
            r.duration.to_string(),
        );
        let phases = medic_model::Phase::ALL
            .iter()
            .filter_map(|p| r.phases.get(p.as_str()).map(|x| (p.as_str(), x)));
        for (phase, (from, to)) in phases {
            let orig = o
                .and_then(|o| o.phases.get(phase))
                .map(|(a, b)| format!("{a} - {b}"))
                .unwrap_or_else(na);
            row(w, &format!("phase {phase}"), orig, format!("{from} - {to}"));
        }
        let _ = writeln!(
            w,
            "\n{:<20} {:<10} {:<30} replay",
            "step", "phase", "original"
        );
        let mut ids: Vec<&str> = r.steps.iter().map(|s| s.id.as_str()).collect();
        for s in o.map(|o| o.steps.as_slice()).unwrap_or(&[]) {
            if !ids.contains(&s.id.as_str()) {
                ids.push(&s.id);
            }
        }
        for id in ids {
            let a = o.and_then(|o| o.steps.iter().find(|s| s.id == id));
            let b = r.steps.iter().find(|s| s.id == id);
            let phase = b.or(a).map(|s| s.phase.as_str()).unwrap_or("");
            let same =
                a.map(summary) == b.map(summary) && a.map(|s| &s.calls) == b.map(|s| &s.calls);
            let mark = if o.is_none() || same { " " } else { "*" };
            let absent = if o.is_some() {
                "(not in the recording)"
            } else {
                "-"
            };
            let _ = writeln!(
                w,
                "{mark}{id:<19} {phase:<10} {:<30} {}",
                a.map(summary).unwrap_or_else(|| absent.into()),
                b.map(summary)
                    .unwrap_or_else(|| "(not in this workflow)".into()),
            );
            if let Some(why) = b
                .and_then(|s| s.why.as_ref())
                .filter(|_| !same || o.is_none())
            {
                let _ = writeln!(w, "{:31}{}", "", medic_core::timeline::truncate(why, 160));
            }
            let calls_a = a.map(|s| s.calls.as_slice()).unwrap_or(&[]);
            let calls_b = b.map(|s| s.calls.as_slice()).unwrap_or(&[]);
            if o.is_none() {
                for c in calls_b {
                    let _ = writeln!(w, "{:31}  {c}", "");
                }
            } else if calls_a != calls_b {
                for c in calls_b.iter().filter(|c| !calls_a.contains(c)) {
                    let _ = writeln!(w, "{:31}+ {c}", "");
                }
                for c in calls_a.iter().filter(|c| !calls_b.contains(c)) {
                    let _ = writeln!(w, "{:31}- {c}", "");
                }
            }
        }
        let calls = |o: &Outcome| o.steps.iter().map(|s| s.calls.len()).sum::<usize>();
        let _ = writeln!(
            w,
            "\nprovider calls: original {}, replay {} (+ new, - not made again; * step changed)",
            o.map(|o| calls(o).to_string()).unwrap_or_else(na),
            calls(r)
        );
        if !self.faulted.is_empty() {
            let _ = writeln!(w, "\nfaults injected ({}):", self.faulted.len());
            for f in &self.faulted {
                let _ = writeln!(w, "  {f}");
            }
        }
        if self.divergences.is_empty() {
            let _ = writeln!(
                w,
                "\ndivergences: none (every request was answered from the recording)"
            );
        } else {
            let _ = writeln!(
                w,
                "\ndivergences ({}): requests the recording never saw, answered without the network",
                self.divergences.len()
            );
            for d in &self.divergences {
                let _ = writeln!(w, "  step {} attempt {}: {}", d.step, d.attempt, d.request);
                match &d.closest {
                    Some(c) => {
                        let _ = writeln!(w, "    closest recorded: {c}");
                        let _ = writeln!(w, "    difference: {}", d.difference);
                    }
                    None => {
                        let _ = writeln!(w, "    {}", d.difference);
                    }
                }
            }
        }
        if !self.not_made.is_empty() {
            let _ = writeln!(
                w,
                "\nrecorded requests the replay did not make ({}):",
                self.not_made.len()
            );
            for n in self.not_made.iter().take(20) {
                let _ = writeln!(w, "  {n}");
            }
            if self.not_made.len() > 20 {
                let _ = writeln!(w, "  ... and {} more", self.not_made.len() - 20);
            }
        }
        out
    }
}

/// `succeeded (2 attempts)`, `rejected by deadline`, `skipped`.
fn summary(s: &StepOutcome) -> String {
    if let Some(d) = &s.decision {
        return d.clone();
    }
    match s.attempts {
        0 => s.status.clone(),
        1 => format!("{} (1 attempt)", s.status),
        n => format!("{} ({n} attempts)", s.status),
    }
}

/// Same steps with the same statuses, attempts, decisions and provider calls.
fn same_path(a: &Outcome, b: &Outcome) -> bool {
    a.steps.len() == b.steps.len()
        && a.steps.iter().zip(&b.steps).all(|(x, y)| {
            x.id == y.id
                && x.status == y.status
                && x.attempts == y.attempts
                && x.calls == y.calls
                && x.decision == y.decision
        })
}
