//! Storm control: at most `max_runs` runs of a workflow started per `per` (a sliding
//! window), from `[storm]` in medic.toml. An incident whose run would go over the cap is
//! still recorded, with its alerts counted, and the run it did not get is listed on it as
//! suppressed by storm control (`/api/incidents`, `medic_storm_suppressed_total`): an
//! alert over the cap is never dropped silently.
//!
//! The window is kept in memory: a restart starts it afresh.

use medic_model::units;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

/// `[storm]`: the default cap for every workflow and per-workflow caps.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StormConfig {
    /// Runs of one workflow started at most per `per` (default: no cap).
    #[serde(default)]
    pub max_runs: Option<u32>,
    /// The window, a duration such as `1m` (default `1m`).
    #[serde(default)]
    pub per: Option<String>,
    /// Caps by workflow name, over the default: `[storm.workflows.page-oncall]`.
    #[serde(default)]
    pub workflows: BTreeMap<String, StormLimit>,
}

/// One workflow's cap.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StormLimit {
    /// Runs started at most per `per`.
    pub max_runs: u32,
    /// The window (default `1m`).
    #[serde(default)]
    pub per: Option<String>,
}

/// A run storm control did not start, recorded on its incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suppressed {
    /// The workflow whose run was not started.
    pub workflow: String,
    /// When (Unix ms, medic's clock).
    pub at_ms: u64,
    /// Why, for the person on call: the cap and the window.
    pub reason: String,
}

#[derive(Debug, Clone)]
struct Cap {
    max_runs: u32,
    per_ms: u64,
    /// The window as configured, for messages.
    per: String,
}

/// The caps and the start times inside each workflow's window.
#[derive(Debug, Default)]
pub(crate) struct StormControl {
    default: Option<Cap>,
    by_workflow: HashMap<String, Cap>,
    started: Mutex<HashMap<String, VecDeque<u64>>>,
}

fn per_ms(what: &str, per: &Option<String>) -> Result<u64, String> {
    match per {
        None => Ok(60_000),
        Some(text) => match units::parse_duration_ms(text) {
            Some(ms) if ms > 0 => Ok(ms),
            _ => Err(format!(
                "{what}: `{text}` is not a positive duration (e.g. `1m`)"
            )),
        },
    }
}

impl StormConfig {
    /// The storm control this config describes.
    ///
    /// # Errors
    ///
    /// A message naming the `per` that is not a duration.
    pub(crate) fn resolve(&self) -> Result<StormControl, String> {
        let default = match self.max_runs {
            Some(max_runs) => Some(Cap {
                max_runs,
                per_ms: per_ms("storm.per", &self.per)?,
                per: self.per.clone().unwrap_or_else(|| "1m".into()),
            }),
            None => {
                per_ms("storm.per", &self.per)?;
                None
            }
        };
        let mut by_workflow = HashMap::new();
        for (name, l) in &self.workflows {
            let per_ms = per_ms(&format!("storm.workflows.{name}.per"), &l.per)?;
            by_workflow.insert(
                name.clone(),
                Cap {
                    max_runs: l.max_runs,
                    per_ms,
                    per: l.per.clone().unwrap_or_else(|| "1m".into()),
                },
            );
        }
        Ok(StormControl {
            default,
            by_workflow,
            started: Mutex::default(),
        })
    }
}

impl StormControl {
    /// Takes a place for a run of `workflow` starting at `now_ms`, or says why not
    /// (the cap is reached inside the window).
    pub(crate) fn admit(&self, workflow: &str, now_ms: u64) -> Result<(), String> {
        let Some(cap) = self.by_workflow.get(workflow).or(self.default.as_ref()) else {
            return Ok(());
        };
        let mut started = self
            .started
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let window = started.entry(workflow.to_string()).or_default();
        while window.front().is_some_and(|&t| t + cap.per_ms <= now_ms) {
            window.pop_front();
        }
        if window.len() >= cap.max_runs as usize {
            return Err(format!(
                "suppressed by storm control: {} runs of `{workflow}` already started in the last {}",
                window.len(),
                cap.per
            ));
        }
        window.push_back(now_ms);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn control(toml_text: &str) -> StormControl {
        let c: StormConfig = toml::from_str(toml_text).unwrap();
        c.resolve().unwrap()
    }

    #[test]
    fn the_cap_holds_per_workflow_inside_a_sliding_window() {
        let s =
            control("max_runs = 2\nper = \"1m\"\n[workflows.page]\nmax_runs = 1\nper = \"10s\"\n");
        assert!(s.admit("wf", 0).is_ok());
        assert!(s.admit("wf", 1_000).is_ok());
        let e = s.admit("wf", 2_000).unwrap_err();
        assert!(
            e.contains("2 runs of `wf` already started in the last"),
            "{e}"
        );
        // The first start leaves the window after a minute.
        assert!(s.admit("wf", 60_000).is_ok());
        assert!(s.admit("page", 0).is_ok());
        assert!(s.admit("page", 9_999).is_err());
        assert!(s.admit("page", 10_000).is_ok());
        // No cap configured: everything starts.
        let none = control("");
        assert!((0..100).all(|t| none.admit("wf", t).is_ok()));
        let bad: StormConfig = toml::from_str("max_runs = 1\nper = \"soon\"\n").unwrap();
        assert!(bad.resolve().unwrap_err().contains("storm.per: `soon`"));
    }
}
