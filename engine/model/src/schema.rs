//! JSON Schemas: the workflow format's own (for editors), and checking a step's `with`
//! against the params schema its component declares.

use crate::diag::{self, Diagnostic};
use crate::parse::Document;
use crate::path::join_key;
use crate::template::is_templated;
use jsonschema::error::ValidationErrorKind;
use jsonschema::paths::LocationSegment;
use serde_json::Value;

/// Kept as a file so editors and reviewers can read it as it is.
const WORKFLOW_SCHEMA: &str = include_str!("workflow.schema.json");

/// The JSON Schema (draft 2020-12) of the workflow file format, for editors
/// (`medic schema` prints it). Field formats the schema cannot express (template and
/// condition syntax, references between steps) are checked by [`crate::parse_workflow`] only.
pub fn workflow_schema() -> Value {
    serde_json::from_str(WORKFLOW_SCHEMA).expect("workflow.schema.json is valid JSON (tested)")
}

/// True when `v` or anything under it is a templated string.
fn has_template(v: &Value) -> bool {
    match v {
        Value::String(s) => is_templated(s),
        Value::Array(items) => items.iter().any(has_template),
        Value::Object(map) => map.values().any(has_template),
        _ => false,
    }
}

/// Checks step `step_index`'s `with` against a component's params JSON Schema.
///
/// Templated values are only known at run time, so errors at or under them are skipped, and
/// so are errors of combining keywords (`anyOf`, `oneOf`, `not`) over values holding one.
/// A templated value is present, so it satisfies `required`.
pub fn check_params(
    doc: &Document,
    step_index: usize,
    component: &str,
    schema: &Value,
) -> Vec<Diagnostic> {
    let step_path = format!("steps[{step_index}]");
    let Some(step) = doc.workflow.steps.get(step_index) else {
        let msg = format!(
            "no step {step_index}: the workflow has {} steps",
            doc.workflow.steps.len()
        );
        return vec![Diagnostic::new(doc.file(), None, step_path, msg)];
    };
    let validator = match jsonschema::validator_for(schema) {
        Ok(v) => v,
        Err(e) => {
            let field = format!("{step_path}.uses");
            let msg = format!(
                "{component} declares an invalid params schema, so its parameters cannot be checked: {e}"
            );
            return vec![Diagnostic::new(doc.file(), doc.locate(&field), field, msg)];
        }
    };
    let mut diags = Vec::new();
    for err in validator.iter_errors(&step.with) {
        let mut field = format!("{step_path}.with");
        let mut value = Some(&step.with);
        let mut templated = false;
        for seg in err.instance_path().iter() {
            templated |= matches!(value, Some(Value::String(s)) if is_templated(s));
            match seg {
                LocationSegment::Property(p) => {
                    value = value.and_then(|v| v.get(p.as_ref()));
                    field = join_key(&field, &p);
                }
                LocationSegment::Index(i) => {
                    value = value.and_then(|v| v.get(i));
                    field = format!("{field}[{i}]");
                }
            }
        }
        templated |= matches!(value, Some(Value::String(s)) if is_templated(s));
        let combining = matches!(
            err.kind(),
            ValidationErrorKind::AnyOf { .. }
                | ValidationErrorKind::OneOfNotValid { .. }
                | ValidationErrorKind::OneOfMultipleValid { .. }
                | ValidationErrorKind::Not { .. }
        );
        if templated || (combining && value.is_some_and(has_template)) {
            continue;
        }
        // Point at the unexpected key itself rather than at the mapping holding it.
        if let ValidationErrorKind::AdditionalProperties { unexpected } = err.kind()
            && let [key] = unexpected.as_slice()
        {
            field = join_key(&field, key);
        }
        let message = format!("{component} params: {err}");
        diags.push(Diagnostic::new(
            doc.file(),
            doc.locate(&field),
            field,
            message,
        ));
    }
    diag::sort(&mut diags);
    diags.dedup();
    diags
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{LIMITS_FIELDS, RETRY_FIELDS, STEP_FIELDS, TOP_FIELDS, TRIGGER_FIELDS};
    use std::collections::BTreeSet;

    fn names(v: &Value) -> BTreeSet<String> {
        v["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .cloned()
            .collect()
    }

    fn set(fields: &[&str]) -> BTreeSet<String> {
        fields.iter().map(|s| s.to_string()).collect()
    }

    /// Every field the parser accepts is in the schema, and the schema has no others.
    #[test]
    fn schema_fields_match_the_parser() {
        let schema = workflow_schema();
        let step = &schema["$defs"]["step"];
        assert_eq!(names(&schema), set(TOP_FIELDS));
        assert_eq!(names(&schema["properties"]["trigger"]), set(TRIGGER_FIELDS));
        assert_eq!(names(step), set(STEP_FIELDS));
        assert_eq!(names(&step["properties"]["retry"]), set(RETRY_FIELDS));
        assert_eq!(names(&step["properties"]["limits"]), set(LIMITS_FIELDS));
        assert_eq!(
            names(&step["properties"]["tls"]["items"]),
            set(crate::step_tls::STEP_TLS_FIELDS)
        );
        let phases: Vec<&str> = step["properties"]["phase"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(phases, crate::Phase::ALL.map(crate::Phase::as_str));
        assert_eq!(
            schema["properties"]["apiVersion"]["const"],
            crate::API_VERSION
        );
        for obj in [
            &schema,
            &schema["properties"]["trigger"],
            step,
            &step["properties"]["retry"],
            &step["properties"]["limits"],
        ] {
            assert_eq!(
                obj["additionalProperties"], false,
                "unknown fields are errors in the parser too"
            );
        }
    }

    fn example(name: &str) -> (String, String) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/validate");
        (
            name.to_string(),
            std::fs::read_to_string(dir.join(name)).expect("example file"),
        )
    }

    fn as_json(src: &str) -> Value {
        let opts = marked_yaml::LoaderOptions::default().prevent_coercion(true);
        crate::yaml::to_json(&marked_yaml::parse_yaml_with_options(0, src, opts).expect("YAML"))
    }

    /// The valid example passes both the parser and the schema; files with mistakes the
    /// schema can express fail both.
    #[test]
    fn examples_agree_with_the_schema() {
        let validator = jsonschema::validator_for(&workflow_schema()).unwrap();
        let (name, src) = example("ok-checkout-bad-flag.yaml");
        assert!(crate::parse_workflow(&name, &src).is_ok());
        let errors: Vec<String> = validator
            .iter_errors(&as_json(&src))
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{name}: {errors:#?}");
        for name in [
            "unknown-top-level-field.yaml",
            "unknown-step-field.yaml",
            "missing-required-field.yaml",
            "wrong-api-version.yaml",
            "wrong-kind.yaml",
            "bad-phase.yaml",
            "bad-duration.yaml",
            "retry-attempts-zero.yaml",
            "wrong-types.yaml",
            "bad-size.yaml",
            "empty-steps.yaml",
            "bad-names-and-hosts.yaml",
        ] {
            let (name, src) = example(name);
            assert!(crate::parse_workflow(&name, &src).is_err(), "{name}");
            assert!(
                !validator.is_valid(&as_json(&src)),
                "{name} should fail the schema too"
            );
        }
    }

    #[test]
    fn schema_compiles_as_draft_2020_12() {
        let schema = workflow_schema();
        jsonschema::draft202012::meta::validate(&schema).expect("valid against the meta-schema");
        jsonschema::draft202012::new(&schema).expect("compiles");
    }
}
