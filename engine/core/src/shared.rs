//! One copy in memory of each workflow that runs share.
//!
//! Every run's journal starts with the exact workflow it runs (docs/durability.md), and
//! each fold decodes it, so a thousand runs of one workflow parked at a gate held a
//! thousand equal copies of it, each as big as the workflow (its steps, params and
//! templates). A fold takes the shared copy instead, for as long as any run holds it.
//! (The `memory` bench of `medic-cli` parks runs of a two-step workflow, whose copy is
//! small: its figure per parked run did not move.)

use medic_model::Workflow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

/// Live copies by workflow name (runs of different versions of one workflow can be in
/// flight at once, so a name can have several).
fn table() -> &'static Mutex<HashMap<String, Vec<Weak<Workflow>>>> {
    static TABLE: OnceLock<Mutex<HashMap<String, Vec<Weak<Workflow>>>>> = OnceLock::new();
    TABLE.get_or_init(Mutex::default)
}

/// The shared copy of a workflow equal to `workflow`, made from it if no run holds one.
pub(crate) fn workflow(workflow: &Workflow) -> Arc<Workflow> {
    // Only plain map and vector updates happen under the lock: nothing is left half-done.
    let mut table = table().lock().unwrap_or_else(PoisonError::into_inner);
    let copies = table.entry(workflow.name.clone()).or_default();
    copies.retain(|w| w.strong_count() > 0);
    if let Some(found) = copies
        .iter()
        .filter_map(Weak::upgrade)
        .find(|w| **w == *workflow)
    {
        return found;
    }
    let copy = Arc::new(workflow.clone());
    copies.push(Arc::downgrade(&copy));
    copy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_workflows_share_one_copy_and_a_changed_one_gets_its_own() {
        let src = "apiVersion: medic/v1\nkind: Workflow\nname: shared-test\ntrigger:\n  matchers: ['alertname=\"X\"']\nsteps:\n  - id: a\n    phase: verify\n    uses: probe.wasm\n";
        let parsed = medic_model::parse_workflow("w.yaml", src).unwrap().workflow;
        let one = workflow(&parsed);
        let two = workflow(&parsed.clone());
        assert!(Arc::ptr_eq(&one, &two));
        let mut changed = parsed.clone();
        changed.steps[0].uses = "other.wasm".into();
        let three = workflow(&changed);
        assert!(!Arc::ptr_eq(&one, &three));
        assert_eq!(*three, changed);
        // Once no run holds a copy, the next fold makes a fresh one.
        let weak = Arc::downgrade(&one);
        drop((one, two));
        assert!(weak.upgrade().is_none());
        assert_eq!(*workflow(&parsed), parsed);
    }
}
