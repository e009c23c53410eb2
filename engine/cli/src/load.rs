//! Loading a workflow file to run it: parse, then find each step's component. Shared by
//! `medic run` and `medic serve` so both report problems the same way.

use crate::app::Ctx;
use medic_core::LoadedWorkflow;
use std::collections::BTreeMap;
use std::path::Path;

/// The workflow in `file` with its components resolved, or every problem found, each as
/// `file:line:column: field: message`.
pub fn load_workflow(ctx: &Ctx, file: &Path) -> Result<LoadedWorkflow, Vec<String>> {
    let shown = file.display().to_string();
    let src =
        std::fs::read_to_string(file).map_err(|e| vec![format!("{shown}: cannot read: {e}")])?;
    let mut doc = medic_model::parse_workflow_with_vars(&shown, &src, &ctx.env.vars)
        .map_err(|diags| diags.iter().map(|d| d.to_string()).collect::<Vec<_>>())?;
    ctx.env.apply_kube(&mut doc.workflow);
    let dir = file.parent().unwrap_or(Path::new("."));
    // Warnings for skipped verification come from the sandbox, on every connection.
    let (tls_problems, _) = crate::step_tls::check(&mut doc, dir, false);
    if !tls_problems.is_empty() {
        return Err(tls_problems.iter().map(|d| d.to_string()).collect());
    }
    let dirs = ctx.step_dirs(dir);
    let mut components = BTreeMap::new();
    let mut problems = Vec::new();
    for (i, s) in doc.workflow.steps.iter().enumerate() {
        if s.is_gate() {
            // A gate runs no component.
            continue;
        }
        match crate::resolve::component(&s.uses, dir, &dirs) {
            Ok(p) => {
                components.insert(s.id.clone(), p.display().to_string());
            }
            Err(e) => {
                let pos = doc
                    .locate(&format!("steps[{i}].uses"))
                    .map(|p| format!(":{}:{}", p.line, p.column))
                    .unwrap_or_default();
                problems.push(format!("{shown}{pos}: steps[{i}].uses: {e:#}"));
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(LoadedWorkflow {
        workflow: doc.workflow,
        file: shown,
        components,
    })
}
