//! Prometheus text-format metrics, kept by hand: a handful of counters, gauges and one
//! histogram do not justify a metrics framework.

use crate::LoadedWorkflow;
use medic_core::lanes::Lane;
use medic_core::{Event, Observer, RunMeta};
use medic_intake::Source;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Queue depths read when `/metrics` is asked.
#[derive(Default)]
pub(crate) struct Queues {
    /// Items in the inbox.
    pub inbox: usize,
    /// Step attempts ready to start, waiting for a slot.
    pub runs: u64,
    /// Inbox items per lane (critical, warning, info).
    pub inbox_lanes: [usize; 3],
    /// Step attempts waiting for a slot, per lane.
    pub run_lanes: [usize; 3],
    /// The store's size on disk, bytes.
    pub store_bytes: u64,
    /// Runs parked at a gate or a retry wait with no driver in memory (parked.rs).
    pub parked: usize,
}

pub(crate) struct Metrics {
    alerts: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// Alerts written to the inbox (acknowledged), and inbox items handled, since start.
    inbox_accepted: AtomicU64,
    inbox_handled: AtomicU64,
    inbox_dead: AtomicU64,
    steps: Mutex<BTreeMap<(String, &'static str), Histogram>>,
    /// workflow -> step -> component, to label step durations by component (nested, so
    /// a lookup borrows the names instead of building a key).
    components: HashMap<String, HashMap<String, String>>,
    /// Open gates: (run, step) -> when they opened.
    gates_open: Mutex<HashMap<(String, String), u64>>,
    /// Gate waits, by how they ended (approved/rejected, by a person or the deadline).
    gate_waits: Mutex<BTreeMap<(&'static str, &'static str), Histogram>>,
    /// Runs storm control did not start, by workflow.
    suppressed: Mutex<BTreeMap<String, u64>>,
    /// Runs and incident records retention removed since start.
    removed_runs: AtomicU64,
    removed_incidents: AtomicU64,
    removed_marks: AtomicU64,
    /// Online compactions done since start, and the last one's pause (µs).
    compactions: AtomicU64,
    last_pause_us: AtomicU64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += secs;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels},le=\"{b}\"}} {}",
                self.counts[i]
            );
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

impl Metrics {
    pub(crate) fn new(workflows: &[LoadedWorkflow]) -> Self {
        let components = workflows
            .iter()
            .map(|w| {
                let steps = w.workflow.steps.iter();
                let uses = steps.map(|s| (s.id.clone(), s.uses.clone())).collect();
                (w.workflow.name.clone(), uses)
            })
            .collect();
        Metrics {
            alerts: Mutex::default(),
            inbox_accepted: AtomicU64::new(0),
            inbox_handled: AtomicU64::new(0),
            inbox_dead: AtomicU64::new(0),
            steps: Mutex::default(),
            components,
            gates_open: Mutex::default(),
            gate_waits: Mutex::default(),
            suppressed: Mutex::default(),
            removed_runs: AtomicU64::new(0),
            removed_incidents: AtomicU64::new(0),
            removed_marks: AtomicU64::new(0),
            compactions: AtomicU64::new(0),
            last_pause_us: AtomicU64::new(0),
        }
    }

    pub(crate) fn alert_received(&self, source: Source, result: &'static str) {
        *self
            .alerts
            .lock()
            .expect("metrics lock")
            .entry((source.as_str(), result))
            .or_default() += 1;
    }

    /// Storm control did not start a run of `workflow`.
    pub(crate) fn storm_suppressed(&self, workflow: &str) {
        *self
            .suppressed
            .lock()
            .expect("metrics lock")
            .entry(workflow.to_string())
            .or_default() += 1;
    }

    /// A retention sweep removed these.
    pub(crate) fn removed(&self, swept: crate::Swept) {
        self.removed_runs
            .fetch_add(swept.runs as u64, Ordering::Relaxed);
        self.removed_incidents
            .fetch_add(swept.incidents as u64, Ordering::Relaxed);
        self.removed_marks
            .fetch_add(swept.dedupe_marks as u64, Ordering::Relaxed);
    }

    /// An online compaction made every store operation wait `pause`.
    pub(crate) fn compacted(&self, pause: std::time::Duration) {
        self.compactions.fetch_add(1, Ordering::Relaxed);
        self.last_pause_us
            .store(pause.as_micros() as u64, Ordering::Relaxed);
    }

    /// `n` alerts are durably in the inbox.
    pub(crate) fn inbox_added(&self, n: usize) {
        self.inbox_accepted.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// `n` inbox items were handled (their incidents and runs written, the items removed).
    pub(crate) fn inbox_handled(&self, n: usize) {
        self.inbox_handled.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// `n` inbox alerts could not be read and were moved to `x/dead/`, not handled.
    pub(crate) fn inbox_dead(&self, n: usize) {
        self.inbox_dead.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Counts the gates a resumed run finds still open (they opened before a restart).
    pub(crate) fn drive_hook(self: &Arc<Self>) -> medic_core::DriveHook {
        let me = self.clone();
        Arc::new(move |state| {
            for (step, s) in &state.steps {
                if state.open_gate(step).is_some() {
                    me.gate_open(&state.id, step, s.started_ms);
                }
            }
        })
    }

    fn gate_open(&self, run: &str, step: &str, since_ms: u64) {
        self.gates_open
            .lock()
            .expect("metrics lock")
            .insert((run.to_string(), step.to_string()), since_ms);
    }

    fn gate_event(&self, run: &str, entry: &medic_core::Entry) {
        match &entry.event {
            Event::GateOpened { step, .. } => self.gate_open(run, step, entry.at_ms),
            Event::GateDecided {
                step,
                decision,
                by_deadline,
                ..
            } => {
                let key = (run.to_string(), step.clone());
                let opened = self.gates_open.lock().expect("metrics lock").remove(&key);
                let how = if *by_deadline { "deadline" } else { "person" };
                if let Some(at) = opened {
                    let secs = entry.at_ms.saturating_sub(at) as f64 / 1000.0;
                    let mut waits = self.gate_waits.lock().expect("metrics lock");
                    waits
                        .entry((decision.past(), how))
                        .or_default()
                        .observe(secs);
                }
            }
            Event::StepSkipped { step, .. } | Event::StepCancelled { step, .. } => {
                let key = (run.to_string(), step.clone());
                self.gates_open.lock().expect("metrics lock").remove(&key);
            }
            _ => {}
        }
    }

    /// Observes attempt durations and gates from the journal as entries are appended (a
    /// run's last outcome a moment before the `run_finished` flush that makes it durable).
    pub(crate) fn observer(self: &Arc<Self>) -> Observer {
        let me = self.clone();
        Arc::new(move |meta, entry| {
            me.gate_event(&meta.id, entry);
            let (step, ms, result) = match &entry.event {
                Event::AttemptSucceeded {
                    step, duration_ms, ..
                } => (step, *duration_ms, "succeeded"),
                Event::AttemptFailed {
                    step, duration_ms, ..
                } => (step, *duration_ms, "failed"),
                _ => return,
            };
            let component = me
                .components
                .get(&meta.workflow)
                .and_then(|steps| steps.get(step))
                .cloned()
                .unwrap_or_else(|| "unknown".into());
            let secs = ms as f64 / 1000.0;
            let mut steps = me.steps.lock().expect("metrics lock");
            steps.entry((component, result)).or_default().observe(secs);
        })
    }

    /// The metrics in Prometheus text format, with the run list and queue depths read now.
    pub(crate) fn render(&self, runs: &[RunMeta], queues: &Queues) -> String {
        let (waiting, inbox) = (queues.runs, queues.inbox);
        let mut out = String::new();
        header(
            &mut out,
            ("medic_alerts_received_total", "counter"),
            "Alerts received, by source and result.",
        );
        for ((source, result), n) in self.alerts.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "medic_alerts_received_total{{source=\"{source}\",result=\"{result}\"}} {n}"
            );
        }
        let mut by_status: BTreeMap<&str, u64> = ["running", "succeeded", "failed", "cancelled"]
            .into_iter()
            .map(|s| (s, 0))
            .collect();
        // Drill runs (medic drill, the web view's replays) never count as incidents; the
        // rule is medic-drill's `is_drill_run`.
        let mut drills: BTreeMap<&str, u64> = BTreeMap::new();
        for r in runs {
            let drill = r.id.contains("-drill-") && r.incident_title.starts_with("[drill] ");
            let count = if drill { &mut drills } else { &mut by_status };
            *count.entry(r.status.as_str()).or_default() += 1;
        }
        header(
            &mut out,
            ("medic_runs", "gauge"),
            "Runs in the store, by status; drill runs carry drill=\"true\".",
        );
        for (status, n) in by_status {
            let _ = writeln!(out, "medic_runs{{status=\"{status}\"}} {n}");
        }
        for (status, n) in drills {
            let _ = writeln!(out, "medic_runs{{status=\"{status}\",drill=\"true\"}} {n}");
        }
        header(
            &mut out,
            ("medic_queue_depth", "gauge"),
            "Work waiting: accepted alerts not yet handled (inbox), step attempts waiting for a slot (runs).",
        );
        let _ = writeln!(out, "medic_queue_depth{{queue=\"inbox\"}} {inbox}");
        let _ = writeln!(out, "medic_queue_depth{{queue=\"runs\"}} {waiting}");
        header(
            &mut out,
            ("medic_lane_queue_depth", "gauge"),
            "Work waiting by severity lane: alerts in the inbox, step attempts waiting for a slot.",
        );
        for (queue, depths) in [("inbox", queues.inbox_lanes), ("runs", queues.run_lanes)] {
            for lane in Lane::ALL {
                let n = depths[lane as usize];
                let lane = lane.as_str();
                let _ = writeln!(
                    out,
                    "medic_lane_queue_depth{{queue=\"{queue}\",lane=\"{lane}\"}} {n}"
                );
            }
        }
        // With the depth above, these let a sender (or a test) see that what it posted has
        // been handled: accepted == handled and depth 0.
        header(
            &mut out,
            ("medic_inbox_items_total", "counter"),
            "Inbox items since start: alerts accepted (stored, acknowledged), handled (incident and runs written) and dead (unreadable, moved to x/dead/).",
        );
        for (state, n) in [
            ("accepted", &self.inbox_accepted),
            ("handled", &self.inbox_handled),
            ("dead", &self.inbox_dead),
        ] {
            let n = n.load(Ordering::Relaxed);
            let _ = writeln!(out, "medic_inbox_items_total{{state=\"{state}\"}} {n}");
        }
        header(
            &mut out,
            ("medic_storm_suppressed_total", "counter"),
            "Runs storm control did not start (recorded on their incidents), by workflow.",
        );
        for (workflow, n) in self.suppressed.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "medic_storm_suppressed_total{{workflow=\"{workflow}\"}} {n}"
            );
        }
        header(
            &mut out,
            ("medic_retention_removed_total", "counter"),
            "Records retention removed since start: finished runs (with their journals), resolved incidents and PagerDuty dedupe marks.",
        );
        for (what, n) in [
            ("runs", &self.removed_runs),
            ("incidents", &self.removed_incidents),
            ("dedupe_marks", &self.removed_marks),
        ] {
            let n = n.load(Ordering::Relaxed);
            let _ = writeln!(out, "medic_retention_removed_total{{what=\"{what}\"}} {n}");
        }
        single(
            &mut out,
            ("medic_store_size_bytes", "gauge"),
            "The store's size on disk.",
            queues.store_bytes,
        );
        single(
            &mut out,
            ("medic_store_compactions_total", "counter"),
            "Online compactions (store rewritten while serving) since start.",
            self.compactions.load(Ordering::Relaxed),
        );
        single(
            &mut out,
            ("medic_store_compaction_pause_seconds", "gauge"),
            "How long the last online compaction made every store operation wait (0 before the first).",
            self.last_pause_us.load(Ordering::Relaxed) as f64 / 1e6,
        );
        header(
            &mut out,
            ("medic_step_duration_seconds", "histogram"),
            "Step attempt durations, by component and result.",
        );
        for ((component, result), h) in self.steps.lock().expect("metrics lock").iter() {
            let labels = format!("component=\"{component}\",result=\"{result}\"");
            h.render(&mut out, "medic_step_duration_seconds", &labels);
        }
        let waiting = self.gates_open.lock().expect("metrics lock").len();
        single(
            &mut out,
            ("medic_gates_waiting", "gauge"),
            "Human gates waiting for a decision.",
            waiting,
        );
        single(
            &mut out,
            ("medic_runs_parked", "gauge"),
            "Runs waiting at a gate or for a retry with no driver in memory, to be driven again when the wait ends or a message comes.",
            queues.parked,
        );
        header(
            &mut out,
            ("medic_gate_wait_seconds", "histogram"),
            "How long gates waited, by decision and by whom (a person or the deadline).",
        );
        for ((decision, how), h) in self.gate_waits.lock().expect("metrics lock").iter() {
            let labels = format!("decision=\"{decision}\",decided_by=\"{how}\"");
            h.render(&mut out, "medic_gate_wait_seconds", &labels);
        }
        out
    }
}

/// A metric with one value and no labels: its [`header`], then the value.
fn single(out: &mut String, metric: (&str, &str), help: &str, value: impl std::fmt::Display) {
    header(out, metric, help);
    let _ = writeln!(out, "{} {value}", metric.0);
}

/// A metric's `# HELP` and `# TYPE` lines; `metric` is (name, Prometheus type).
fn header(out: &mut String, (name, kind): (&str, &str), help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}
