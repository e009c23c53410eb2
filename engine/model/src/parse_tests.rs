use super::*;

const OK: &str = r#"apiVersion: medic/v1
kind: Workflow
name: checkout-bad-flag
description: Roll back the checkout-v2 flag when checkout errors spike.
trigger:
  matchers: ['alertname="HighErrorRate"', 'service=~"checkout|cart"']
  severity: [critical, page]
  source: [alertmanager]
steps:
  - id: probe
    phase: detect
    uses: http-probe
    with: { url: "{{ incident.annotations.health_url }}", expect: 200 }
    retry: { attempts: 3, backoff: 2s, factor: 2, max-backoff: 1m }
    timeout: 30s
  - id: rollback
    phase: restore
    uses: ./steps/unleash-toggle.wasm
    if: 'steps.probe.status == "failed" && incident.severity == "critical"'
    with:
      flag: checkout-v2
      enabled: false
      reason: "{{ incident.title }} ({{ steps.probe.output.status }})"
    secrets: [UNLEASH_TOKEN]
    allow: [127.0.0.1, "flags.internal:4242", "*.example.com"]
    limits: { memory: 64MiB, output: 1MiB }
    continue-on-error: true
  - id: tell
    phase: communicate
    uses: slack-notify
"#;

fn errors(src: &str) -> Vec<String> {
    parse_workflow("w.yaml", src)
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn parses_every_field() {
    let doc = parse_workflow("w.yaml", OK).unwrap();
    let w = &doc.workflow;
    assert_eq!(w.name, "checkout-bad-flag");
    assert_eq!(w.trigger.matchers[1].op, MatchOp::Re);
    assert_eq!(w.trigger.severity, ["critical", "page"]);
    assert_eq!(w.trigger.source, ["alertmanager"]);
    let probe = &w.steps[0];
    assert_eq!(
        probe.with,
        serde_json::json!({"url": "{{ incident.annotations.health_url }}", "expect": 200})
    );
    assert_eq!(
        probe.retry,
        Retry {
            attempts: 3,
            backoff_ms: 2_000,
            factor: 2.0,
            max_backoff_ms: 60_000
        }
    );
    assert_eq!(probe.timeout_ms, Some(30_000));
    let rb = &w.steps[1];
    assert_eq!(
        rb.condition.as_deref(),
        Some(r#"steps.probe.status == "failed" && incident.severity == "critical""#)
    );
    assert_eq!(rb.with["enabled"], serde_json::json!(false));
    assert_eq!(rb.secrets, ["UNLEASH_TOKEN"]);
    assert_eq!(rb.allow.len(), 3);
    assert_eq!(
        rb.limits,
        Limits {
            memory_bytes: Some(64 << 20),
            output_bytes: Some(1 << 20)
        }
    );
    assert!(rb.continue_on_error);
    assert_eq!(w.steps[2].with, serde_json::json!({}));
    assert_eq!(w.steps[2].retry, Retry::default());
    assert_eq!(w.execution_order(), [0, 2, 1]);
    assert_eq!(doc.file(), "w.yaml");
}

#[test]
fn locate_fields() {
    let doc = parse_workflow("w.yaml", OK).unwrap();
    let at = |p: &str| doc.locate(p).map(|p| (p.line, p.column));
    assert_eq!(at("steps[0].retry.attempts"), Some((14, 24)));
    assert_eq!(at("steps[1].with.flag"), Some((21, 13)));
    assert_eq!(at("steps[1].with"), Some((20, 5)));
    assert_eq!(at("steps[1].with.nope"), Some((20, 5)));
    assert_eq!(at("steps[1]"), Some((16, 7)));
    assert_eq!(at("name"), Some((3, 7)));
    assert_eq!(at("nothing.here"), Some((1, 1)));
}

#[test]
fn reports_every_error_sorted() {
    let src = OK
        .replace("attempts: 3", "attempts: 0")
        .replace("timeout: 30s", "timeout: 30")
        .replace("    secrets: [UNLEASH_TOKEN]", "    secrets: UNLEASH_TOKEN")
        .replace("name: checkout-bad-flag", "name: Checkout");
    let errs = errors(&src);
    assert_eq!(errs.len(), 4, "{errs:#?}");
    assert!(
        errs[0].starts_with("w.yaml:3:7: name: `Checkout` is not a valid workflow name"),
        "{errs:#?}"
    );
    assert!(
        errs[1].starts_with("w.yaml:14:24: steps[0].retry.attempts: must be at least 1, found 0"),
        "{errs:#?}"
    );
    assert!(
        errs[2].starts_with(
            "w.yaml:15:14: steps[0].timeout: expected a duration, found the number 30"
        ),
        "{errs:#?}"
    );
    assert!(errs[3].starts_with("w.yaml:24:14: steps[1].secrets: expected a list of secret names, found `UNLEASH_TOKEN`; write `[UNLEASH_TOKEN]`"), "{errs:#?}");
}

#[test]
fn types_of_values() {
    let errs = errors(&OK.replace("continue-on-error: true", "continue-on-error: \"true\""));
    assert_eq!(
        errs,
        [
            "w.yaml:27:24: steps[1].continue-on-error: expected `true` or `false`, found the string \"true\""
        ]
    );
    let errs = errors(&OK.replace("factor: 2,", "factor: 0.5,"));
    assert_eq!(errs.len(), 1);
    assert!(
        errs[0].contains("steps[0].retry.factor: must be between 1 and 100, found 0.5"),
        "{errs:?}"
    );
    let errs = errors(&OK.replace("max-backoff: 1m", "max-backoff: 1s"));
    assert!(
        errs[0].contains("`max-backoff` (1s) is shorter than `backoff` (2s)"),
        "{errs:?}"
    );
    let errs = errors(&OK.replace("memory: 64MiB", "memory: 8GiB"));
    assert!(errs[0].contains("8GiB is more than the 4GiB"), "{errs:?}");
    let errs = errors(&OK.replace("timeout: 30s", "timeout: 0s"));
    assert!(
        errs[0].ends_with("steps[0].timeout: must be longer than 0ms"),
        "{errs:?}"
    );
    let errs = errors(&OK.replace("timeout: 30s", "timeout: 2d"));
    assert!(
        errs[0].ends_with("steps[0].timeout: `2d` is too long: at most 1d"),
        "{errs:?}"
    );
    let errs = errors(&OK.replace("timeout: 30s", "timeout:"));
    assert!(
        errs[0].starts_with(
            "w.yaml:15:5: steps[0].timeout: expected a duration, found nothing (null)"
        ),
        "{errs:?}"
    );
}

#[test]
fn backoff_alone_raises_the_default_cap() {
    let doc = parse_workflow(
        "w.yaml",
        &OK.replace(", max-backoff: 1m", "")
            .replace("backoff: 2s", "backoff: 10m"),
    )
    .unwrap();
    assert_eq!(doc.workflow.steps[0].retry.max_backoff_ms, 600_000);
}

#[test]
fn yaml_level_errors() {
    assert_eq!(
        errors(""),
        [
            "w.yaml:1:1: the file is empty: a workflow needs `apiVersion: medic/v1`, `kind: Workflow`, a `name` and `steps`"
        ]
    );
    assert_eq!(
        errors("- a\n"),
        [
            "w.yaml:1:1: a workflow file must be a YAML mapping (`apiVersion: medic/v1`, `kind: Workflow`, `name`, `steps`)"
        ]
    );
    assert_eq!(
        errors("a: &x 1\nb: *x\n"),
        [
            "w.yaml:1:7: YAML anchors and aliases (`&name`, `*name`) are not supported in workflow files; write the value out"
        ]
    );
    assert_eq!(
        errors("name: a\nname: b\n"),
        ["w.yaml:2:1: `name` is set twice in the same mapping (first at line 1); keep one"]
    );
    assert_eq!(
        errors("a: b: c\n"),
        [
            "w.yaml:1:5: YAML syntax error: mapping values are not allowed in this context (a value containing `: ` must be quoted)"
        ]
    );
    let errs = errors(&format!("{OK}---\n{OK}"));
    assert_eq!(
        errs,
        [
            "w.yaml:31:1: a workflow file holds one YAML document, but `---` starts another here; put each workflow in its own file"
        ]
    );
    assert!(parse_workflow("w.yaml", &format!("---\n{OK}")).is_ok());
}

#[test]
fn missing_top_level_fields() {
    let errs = errors("description: x\n");
    assert_eq!(
        errs,
        [
            "w.yaml:1:1: apiVersion: missing required field `apiVersion` at the top level: write `apiVersion: medic/v1`",
            "w.yaml:1:1: kind: missing required field `kind` at the top level: write `kind: Workflow`",
            "w.yaml:1:1: name: missing required field `name` at the top level: the workflow's name, e.g. `checkout-bad-flag`",
            "w.yaml:1:1: steps: missing required field `steps` at the top level: the list of steps to run",
        ]
    );
}

#[test]
fn references_between_steps() {
    let src = OK.replace(
        "{{ incident.annotations.health_url }}",
        "{{ steps.tell.output.ts }}",
    );
    let errs = errors(&src);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(errs[0].starts_with("w.yaml:13:22: steps[0].with.url: step `probe` refers to `steps.tell.output.ts`, which runs later (communicate phase, line 28, while step `probe` is in the detect phase)"), "{errs:#?}");
    let errs = errors(&OK.replace("steps.probe.status ==", "steps.prob.status =="));
    assert_eq!(
        errs,
        [
            "w.yaml:19:10: steps[1].if: step `rollback` refers to `steps.prob.status`, but there is no step `prob`; did you mean `probe`?"
        ]
    );
    let errs = errors(&OK.replace("{{ incident.title }}", "{{ incident.titel }}"));
    assert!(errs[0].starts_with("w.yaml:23:19: steps[1].with.reason: `incident.titel`: an incident has no field `titel`; did you mean `title`?"), "{errs:#?}");
    let errs = errors(&OK.replace("{{ incident.title }}", "{{ alert.title }}"));
    assert_eq!(
        errs,
        [
            "w.yaml:23:19: steps[1].with.reason: `alert.title`: references start with `incident.`, `steps.`, `vars.` or `run.`"
        ]
    );
    let errs = errors(&OK.replace("steps.probe.output.status", "steps.probe.outputs.status"));
    assert!(
        errs[0].ends_with("a step result has `status` and `output`; did you mean `output`?"),
        "{errs:#?}"
    );
    let errs = errors(&OK.replace(
        "{{ steps.probe.output.status }}",
        "{{ steps.rollback.status }}",
    ));
    assert!(
        errs[0].contains("step `rollback` refers to its own result"),
        "{errs:#?}"
    );
}

#[test]
fn same_phase_later_in_file() {
    let src = OK.replace("phase: communicate", "phase: detect").replace(
        "{{ incident.annotations.health_url }}",
        "{{ steps.tell.status }}",
    );
    let errs = errors(&src);
    assert!(
        errs[0].contains("which runs later (also detect phase but later in the file, line 28)"),
        "{errs:#?}"
    );
}

#[test]
fn template_and_condition_syntax() {
    let errs = errors(&OK.replace("{{ incident.title }}", "{{ incident.title }"));
    assert_eq!(
        errs,
        [
            "w.yaml:23:34: steps[1].with.reason: invalid template: expected `}}` to close the template, found a single `}`"
        ]
    );
    let errs = errors(&OK.replace("\" && incident", "\" and incident"));
    assert_eq!(
        errs,
        [
            "w.yaml:19:41: steps[1].if: invalid condition: expected `&&`, `||` or the end of the condition"
        ]
    );
    let errs = errors(&OK.replace(
        "'steps.probe.status == \"failed\" && incident.severity == \"critical\"'",
        "\"{{ steps.probe.status }}\"",
    ));
    assert!(
        errs[0].contains("conditions are expressions, not templates"),
        "{errs:#?}"
    );
}

#[test]
fn unknown_fields_and_duplicates() {
    let errs = errors(
        &OK.replace("    retry:", "    retries:")
            .replace("  - id: tell", "  - id: probe"),
    );
    assert_eq!(
        errs,
        [
            "w.yaml:14:5: steps[0].retries: unknown field `retries` in step `probe`; did you mean `retry`? (expected one of: id, phase, uses, gate, with, if, retry, timeout, secrets, allow, tls, limits, continue-on-error)",
            "w.yaml:28:9: steps[2].id: duplicate step id `probe`: already used by the step at line 10; step ids must be unique",
        ]
    );
}

#[test]
fn matchers_hosts_and_sizes() {
    let errs = errors(&OK.replace("checkout|cart", "checkout|(cart"));
    assert_eq!(
        errs,
        [
            "w.yaml:6:54: trigger.matchers[1]: invalid regular expression `checkout|(cart`: unclosed group"
        ]
    );
    let errs = errors(&OK.replace("\"*.example.com\"", "https://flags.example.com"));
    assert!(
        errs[0].starts_with(
            "w.yaml:25:47: steps[1].allow[2]: `https://flags.example.com` is not a host"
        ),
        "{errs:#?}"
    );
    let errs = errors(&OK.replace("output: 1MiB", "output: 1 MiB"));
    assert!(
        errs[0].starts_with("w.yaml:26:38: steps[1].limits.output: `1 MiB` is not a size"),
        "{errs:#?}"
    );
}

/// Any prefix of a valid file, or the file without any one line, gives diagnostics or a
/// workflow, never a panic, and every diagnostic has a position.
#[test]
fn mangled_files_never_panic() {
    let chars: Vec<char> = OK.chars().collect();
    for end in 0..chars.len() {
        let src: String = chars[..end].iter().collect();
        if let Err(diags) = parse_workflow("w.yaml", &src) {
            assert!(diags.iter().all(|d| d.pos.is_some()), "{src}\n{diags:#?}");
        }
    }
    let lines: Vec<&str> = OK.lines().collect();
    for skip in 0..lines.len() {
        let src: Vec<&str> = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != skip)
            .map(|(_, l)| *l)
            .collect();
        let _ = parse_workflow("w.yaml", &src.join("\n"));
    }
}

#[test]
fn matchers_as_alertmanager_writes_them() {
    let src = include_str!("../../../tests/validate/ok-field-matchers.yaml");
    let w = parse_workflow("ok-field-matchers.yaml", src)
        .unwrap()
        .workflow;
    let got: Vec<(&str, MatchOp, &str)> = w
        .trigger
        .matchers
        .iter()
        .map(|m| (m.label.as_str(), m.op, m.value.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("alertname", MatchOp::Eq, "HighErrorRate"),
            ("env", MatchOp::Eq, "prod"),
            ("team", MatchOp::Eq, "payments"),
            ("severity", MatchOp::Re, "critical|page"),
            ("service.name", MatchOp::Eq, "rails"),
        ]
    );
    assert_eq!(w.trigger.group_by, ["service.namespace", "alertname"]);
}
