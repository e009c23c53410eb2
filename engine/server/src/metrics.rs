//! Prometheus text-format metrics, kept by hand: a handful of counters, gauges and one
//! histogram do not justify a metrics framework.

use crate::LoadedWorkflow;
use medic_core::{Event, Observer, RunMeta, Store};
use medic_intake::Source;
use medic_store::SledStore;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
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

pub(crate) struct Metrics {
    alerts: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    queued: AtomicI64,
    inbox: AtomicUsize,
    steps: Mutex<BTreeMap<(String, &'static str), Histogram>>,
    /// (workflow, step) -> component, to label step durations by component.
    components: HashMap<(String, String), String>,
}

impl Metrics {
    pub(crate) fn new(workflows: &[LoadedWorkflow]) -> Self {
        let components = workflows
            .iter()
            .flat_map(|w| {
                w.workflow
                    .steps
                    .iter()
                    .map(|s| ((w.workflow.name.clone(), s.id.clone()), s.uses.clone()))
            })
            .collect();
        Metrics {
            alerts: Mutex::default(),
            queued: AtomicI64::new(0),
            inbox: AtomicUsize::new(0),
            steps: Mutex::default(),
            components,
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

    pub(crate) fn queued(&self, delta: i64) {
        self.queued.fetch_add(delta, Ordering::Relaxed);
    }

    pub(crate) fn set_inbox_depth(&self, n: usize) {
        self.inbox.store(n, Ordering::Relaxed);
    }

    /// Observes attempt durations from the journal as entries become durable.
    pub(crate) fn observer(self: &Arc<Self>, store: Arc<SledStore>) -> Observer {
        let me = self.clone();
        Arc::new(move |run, entry| {
            let (step, ms, result) = match &entry.event {
                Event::AttemptSucceeded {
                    step, duration_ms, ..
                } => (step, *duration_ms, "succeeded"),
                Event::AttemptFailed {
                    step, duration_ms, ..
                } => (step, *duration_ms, "failed"),
                _ => return,
            };
            let workflow = match store.run(run) {
                Ok(Some(m)) => m.workflow,
                _ => return,
            };
            let component = me
                .components
                .get(&(workflow, step.clone()))
                .cloned()
                .unwrap_or_else(|| "unknown".into());
            let secs = ms as f64 / 1000.0;
            let mut steps = me.steps.lock().expect("metrics lock");
            let h = steps.entry((component, result)).or_default();
            for (i, b) in BUCKETS.iter().enumerate() {
                if secs <= *b {
                    h.counts[i] += 1;
                }
            }
            h.count += 1;
            h.sum += secs;
        })
    }

    pub(crate) fn render(&self, runs: &[RunMeta]) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP medic_alerts_received_total Alerts received, by source and result."
        );
        let _ = writeln!(out, "# TYPE medic_alerts_received_total counter");
        for ((source, result), n) in self.alerts.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "medic_alerts_received_total{{source=\"{source}\",result=\"{result}\"}} {n}"
            );
        }
        let mut by_status: BTreeMap<&str, u64> = ["running", "succeeded", "failed"]
            .into_iter()
            .map(|s| (s, 0))
            .collect();
        for r in runs {
            *by_status.entry(r.status.as_str()).or_default() += 1;
        }
        let _ = writeln!(out, "# HELP medic_runs Runs in the store, by status.");
        let _ = writeln!(out, "# TYPE medic_runs gauge");
        for (status, n) in by_status {
            let _ = writeln!(out, "medic_runs{{status=\"{status}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP medic_queue_depth Work waiting: accepted alerts not yet handled, runs waiting for a slot."
        );
        let _ = writeln!(out, "# TYPE medic_queue_depth gauge");
        let _ = writeln!(
            out,
            "medic_queue_depth{{queue=\"inbox\"}} {}",
            self.inbox.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "medic_queue_depth{{queue=\"runs\"}} {}",
            self.queued.load(Ordering::Relaxed).max(0)
        );
        let _ = writeln!(
            out,
            "# HELP medic_step_duration_seconds Step attempt durations, by component and result."
        );
        let _ = writeln!(out, "# TYPE medic_step_duration_seconds histogram");
        for ((component, result), h) in self.steps.lock().expect("metrics lock").iter() {
            let labels = format!("component=\"{component}\",result=\"{result}\"");
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "medic_step_duration_seconds_bucket{{{labels},le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "medic_step_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(out, "medic_step_duration_seconds_sum{{{labels}}} {}", h.sum);
            let _ = writeln!(
                out,
                "medic_step_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
        out
    }
}
