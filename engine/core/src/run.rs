//! What a run starts from: a workflow with its components resolved ([`LoadedWorkflow`], as
//! `medic run` and `medic serve` load it) and, with the incident, the run to create
//! ([`NewRun`]), whose journal opens with `run_created`.

use crate::journal::{Entry, Event, RunCreated, RunStatus};
use crate::store::RunMeta;
use medic_model::{Incident, Workflow};
use sha2::Digest;
use std::collections::BTreeMap;

/// A workflow ready to start runs of: parsed, validated, each step's component found.
#[derive(Debug, Clone)]
pub struct LoadedWorkflow {
    /// The workflow as parsed.
    pub workflow: Workflow,
    /// Where it was read from, as shown to people.
    pub file: String,
    /// Step id -> component location (a `.wasm` path). Gates have none.
    pub components: BTreeMap<String, String>,
}

impl LoadedWorkflow {
    /// The run of this workflow for `incident` (`drill`: a rehearsal, see [`NewRun::drill`]).
    pub fn new_run(&self, incident: Incident, drill: bool) -> NewRun {
        NewRun {
            workflow: self.workflow.clone(),
            workflow_file: self.file.clone(),
            incident,
            components: self.components.clone(),
            drill,
        }
    }
}

/// A run to create.
#[derive(Debug, Clone)]
pub struct NewRun {
    /// The workflow as loaded; journalled whole in `run_created`.
    pub workflow: Workflow,
    /// Where the workflow was read from, for people (`examples/checkout-flag/workflow.yaml`).
    pub workflow_file: String,
    /// The incident the run responds to.
    pub incident: Incident,
    /// Step id -> component location (a `.wasm` path).
    pub components: BTreeMap<String, String>,
    /// A drill: steps see `invocation.drill` and must not change production.
    pub drill: bool,
}

impl NewRun {
    /// The run's index record and its entry 0 (`run_created`), at `now_ms` (Unix ms).
    pub(crate) fn first_entry(self, id: &str, now_ms: u64) -> (RunMeta, Entry) {
        let meta = RunMeta {
            id: id.to_string(),
            workflow: self.workflow.name.clone(),
            incident_title: self.incident.title.clone(),
            status: RunStatus::Running,
            created_ms: now_ms,
            updated_ms: now_ms,
        };
        let first = Entry {
            seq: 0,
            at_ms: now_ms,
            event: Event::RunCreated(Box::new(RunCreated {
                workflow: self.workflow,
                workflow_file: self.workflow_file,
                incident: self.incident,
                components: self.components,
                drill: self.drill,
            })),
        };
        (meta, first)
    }
}

/// Ids of the runs in `store` that have not finished.
///
/// # Errors
///
/// [`crate::ExecutorError::Store`] when the runs cannot be listed.
pub fn unfinished_runs(
    store: &dyn crate::JournalStore,
) -> Result<Vec<String>, crate::ExecutorError> {
    Ok(store
        .runs()?
        .into_iter()
        .filter(|m| m.status == RunStatus::Running)
        .map(|m| m.id)
        .collect())
}

/// The same for every attempt of a step in a run, across retries and restarts: 32 hex
/// digits (the first 16 bytes of SHA-256 of `medic/<run>/<step>`).
pub fn idempotency_key(run_id: &str, step_id: &str) -> String {
    hex::encode(&sha2::Sha256::digest(format!("medic/{run_id}/{step_id}"))[..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;

    /// A run's first driver under `medic serve` starts from the records it just wrote
    /// (`Executor::drive_created_or_park`), a later one from what the store decodes: the
    /// two must be the same run. So `run_created` must decode to exactly what was
    /// encoded, for every workflow the examples ship (templates, conditions, gates,
    /// retries, limits, secrets by name) and for floats hard to read back exactly.
    #[test]
    fn run_created_decodes_to_what_was_encoded_for_every_example_workflow() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
        // Every example, as it is added: each `examples/<name>/workflow.yaml`.
        let mut files: Vec<_> = std::fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().path().join("workflow.yaml"))
            .filter(|f| f.is_file())
            .map(|f| f.display().to_string())
            .collect();
        files.sort();
        for f in std::fs::read_dir(format!("{root}/drills/workflows")).unwrap() {
            files.push(f.unwrap().path().display().to_string());
        }
        let incident = Incident {
            id: "fp-1".into(),
            title: "CheckoutErrors — 5xx above 2 % «é»".into(),
            severity: "critical".into(),
            status: medic_model::IncidentStatus::Firing,
            labels: [("service".to_string(), "checkout".to_string())].into(),
            annotations: [("ratio".to_string(), "0.1".to_string())].into(),
            started_at: "2026-11-22T03:00:00Z".into(),
            source: "alertmanager".into(),
            notes: vec!["a note".into()],
        };
        // And floats that a JSON parser without correct rounding reads back one unit off
        // (serde_json's `float_roundtrip`, on for the workspace).
        let sources: Vec<(String, String)> = files
            .iter()
            .map(|f| (f.clone(), std::fs::read_to_string(f).unwrap()))
            .chain([(
                "floats.yaml".to_string(),
                "apiVersion: medic/v1\nkind: Workflow\nname: floats\ntrigger:\n  matchers: ['alertname=\"X\"']\nsteps:\n  - id: first\n    phase: detect\n    uses: echo\n    with:\n      tiny: 1e-30\n      sum: 0.30000000000000004\n      max: 1.7976931348623157e308\n      least: 5e-324\n      long: 123456.78901234567\n".to_string(),
            )])
            .collect();
        for (file, src) in &sources {
            let doc =
                medic_model::parse_workflow(file, src).unwrap_or_else(|d| panic!("{file}: {d:?}"));
            let components = doc
                .workflow
                .steps
                .iter()
                .map(|s| (s.id.clone(), format!("/steps/{}.wasm", s.id)))
                .collect();
            let loaded = LoadedWorkflow {
                workflow: doc.workflow,
                file: file.clone(),
                components,
            };
            let (_, first) = loaded
                .new_run(incident.clone(), false)
                .first_entry("run-1", 1_764_000_000_123);
            let decoded = codec::decode_entry(&codec::encode_entry(&first)).unwrap();
            assert_eq!(decoded, first, "{file}");
        }
        assert!(sources.len() >= 8, "{files:?}");
    }
}
