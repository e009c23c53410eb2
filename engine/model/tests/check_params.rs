//! `check_params`: a step's `with` against its component's params schema.

use medic_model::{check_params, parse_workflow};
use serde_json::json;

const SRC: &str = r#"apiVersion: medic/v1
kind: Workflow
name: params
steps:
  - id: probe
    phase: detect
    uses: http-probe
    with:
      url: "{{ incident.annotations.health_url }}"
      method: FETCH
      count: "{{ incident.labels.count }}"
      retries: 3
      headers:
        x-team: 7
        x-from: "{{ incident.labels.team }}"
  - id: bare
    phase: detect
    uses: http-probe
  - id: templated-object
    phase: verify
    uses: http-probe
    with:
      url: http://x
      target: "{{ steps.probe.output }}"
"#;

fn schema() -> serde_json::Value {
    json!({
        "type": "object",
        "required": ["url"],
        "additionalProperties": false,
        "properties": {
            "url": {"type": "string"},
            "method": {"enum": ["GET", "HEAD"]},
            "count": {"type": "integer"},
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
            "target": {"type": "object", "required": ["host"]},
        },
    })
}

fn check(step: usize) -> Vec<String> {
    let doc = parse_workflow("p.yaml", SRC).expect("valid workflow");
    check_params(&doc, step, "http-probe", &schema())
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn errors_point_into_with() {
    assert_eq!(
        check(0),
        [
            "p.yaml:10:15: steps[0].with.method: http-probe params: \"FETCH\" is not one of \"GET\" or \"HEAD\"",
            "p.yaml:12:16: steps[0].with.retries: http-probe params: Additional properties are not allowed ('retries' was unexpected)",
            "p.yaml:14:17: steps[0].with.headers.x-team: http-probe params: 7 is not of type \"string\"",
        ]
    );
}

#[test]
fn missing_with_is_an_empty_object() {
    assert_eq!(
        check(1),
        ["p.yaml:16:7: steps[1].with: http-probe params: \"url\" is a required property"]
    );
}

#[test]
fn templated_values_are_not_checked() {
    // `target` is only known at run time, so its `required: [host]` cannot be checked now.
    assert_eq!(check(2), Vec::<String>::new());
}

#[test]
fn bad_schema_and_bad_index() {
    let doc = parse_workflow("p.yaml", SRC).unwrap();
    let diags = check_params(&doc, 0, "http-probe", &json!({"type": 12}));
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0].field, "steps[0].uses");
    assert!(
        diags[0]
            .message
            .starts_with("http-probe declares an invalid params schema"),
        "{}",
        diags[0]
    );
    let diags = check_params(&doc, 9, "http-probe", &schema());
    assert_eq!(
        diags[0].to_string(),
        "p.yaml: steps[9]: no step 9: the workflow has 3 steps"
    );
}
