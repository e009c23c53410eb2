/*!
medic's workflow and incident model: parse, validate and template incident workflows.

A workflow is a YAML file whose steps are sandboxed WebAssembly components, run phase by
phase (detect → communicate → restore → verify → follow-up) when an alert matches its
trigger. This crate turns the file into a [`Workflow`], reporting every problem at once with
`file:line:column`, renders the `{{ path }}` templates of step parameters ([`template`]),
evaluates step conditions ([`expr`]), and reads and writes times ([`time`]). Alerts become
[`Incident`]s in `medic-intake`.

The crate does no I/O: callers read files and pass their text.

# Example

```
use medic_model::{parse_workflow, template, expr, Phase};
use serde_json::json;

let src = r#"
apiVersion: medic/v1
kind: Workflow
name: checkout-bad-flag
steps:
  - id: probe
    phase: detect
    uses: http-probe
    with: { url: "{{ incident.annotations.health_url }}" }
  - id: rollback
    phase: restore
    uses: unleash-toggle
    if: 'steps.probe.output.status >= 500'
    with: { flag: checkout-v2, enabled: false }
"#;
let doc = parse_workflow("checkout.yaml", src).expect("valid");
assert_eq!(doc.workflow.steps[1].phase, Phase::Restore);
assert_eq!(doc.locate("steps[1].with.flag").map(|p| p.line), Some(14));

let ctx = json!({
    "incident": {"annotations": {"health_url": "http://checkout/health"}},
    "steps": {"probe": {"status": "succeeded", "output": {"status": 503}}},
});
let with = template::render(&doc.workflow.steps[0].with, &ctx).unwrap();
assert_eq!(with, json!({"url": "http://checkout/health"}));
let run = expr::eval_condition(doc.workflow.steps[1].condition.as_deref().unwrap(), &ctx);
assert_eq!(run, Ok(true));

// Errors say where, and what to do.
let errors = parse_workflow("bad.yaml", &src.replace("phase: restore", "phase: restor")).unwrap_err();
assert_eq!(
    errors[0].to_string(),
    "bad.yaml:11:12: steps[1].phase: unknown phase `restor`; did you mean `restore`? \
     (phases run in this order: detect, communicate, restore, verify, follow-up)"
);
```

The file format, templates and conditions are described in `docs/workflows.md`.
*/

#![warn(missing_docs)]

mod diag;
pub mod expr;
mod fields;
mod gate;
mod matcher;
mod parse;
mod path;
mod refs;
mod schema;
mod step_tls;
pub mod template;
pub mod time;
pub mod types;
pub mod units;
mod vars;
mod yaml;

pub use diag::{Diagnostic, Pos};
pub use parse::{Document, parse_workflow, parse_workflow_with_vars};
pub use schema::{check_params, workflow_schema};
pub use types::*;
