//! Unit tests of the param parsing and checks (host target).

use super::*;
use serde_json::json;

/// The params JSON, parsed and checked as a run does.
fn parse_params(json: &str) -> Result<Params, medic_step::Failure> {
    medic_step::params::parse::<crate::probe::Raw>(json).and_then(Params::check)
}

fn params(json: Value) -> Params {
    parse_params(&json.to_string()).expect("valid params")
}

fn param_error(json: Value) -> Failure {
    parse_params(&json.to_string()).expect_err("invalid params")
}

fn observed(status: u16, latency_ms: u64, body: &str) -> Observed {
    Observed {
        status,
        latency_ms,
        body: body.as_bytes().to_vec(),
    }
}

#[test]
fn schema_is_valid_json_and_lists_every_param() {
    let schema: Value = serde_json::from_str(PARAMS_SCHEMA).expect("schema parses");
    assert_eq!(schema["additionalProperties"], json!(false));
    assert_eq!(schema["required"], json!(["url"]));
    let properties = schema["properties"].as_object().expect("properties");
    let mut names: Vec<&str> = properties.keys().map(String::as_str).collect();
    names.sort_unstable();
    let mut expected = vec![
        "url",
        "method",
        "headers",
        "body",
        "expect_status",
        "body_contains",
        "json_pointer",
        "json_equals",
        "latency_budget_ms",
        "idempotency",
    ];
    expected.sort_unstable();
    assert_eq!(names, expected);
    assert_eq!(schema["properties"]["method"]["enum"], json!(METHODS));
}

#[test]
fn defaults() {
    let p = params(json!({"url": "http://svc/health"}));
    assert_eq!(p.method, "GET");
    assert_eq!(p.expect_status, vec![200]);
    assert!(!p.idempotency);
    assert!(p.headers.is_empty());
    assert_eq!(p.latency_budget_ms, None);
}

#[test]
fn full_params() {
    let p = params(json!({
        "url": "https://svc:8443/x?y=1",
        "method": "POST",
        "headers": {"X-A": "1"},
        "body": "{}",
        "expect_status": [200, 204],
        "body_contains": "ok",
        "json_pointer": "/a/0",
        "json_equals": {"b": true},
        "latency_budget_ms": 500,
        "idempotency": true
    }));
    assert_eq!(p.headers, vec![("X-A".to_owned(), "1".to_owned())]);
    assert_eq!(p.expect_status, vec![200, 204]);
    assert_eq!(p.json_equals, Some(json!({"b": true})));
    assert_eq!(p.latency_budget_ms, Some(500));
    assert!(p.idempotency);
}

#[test]
fn bad_params_name_the_field_and_are_not_retryable() {
    let cases = [
        (json!({}), "`url`"),
        (json!({"url": 5}), "`url`"),
        (json!({"url": "ftp://x"}), "`url`"),
        (json!({"url": "http://"}), "`url`"),
        (json!({"url": "http://x", "method": "BREW"}), "`method`"),
        (
            json!({"url": "http://x", "headers": {"a": 1}}),
            "`headers.a`",
        ),
        (json!({"url": "http://x", "headers": []}), "`headers`"),
        (
            json!({"url": "http://x", "expect_status": "200"}),
            "`expect_status`",
        ),
        (
            json!({"url": "http://x", "expect_status": []}),
            "`expect_status`",
        ),
        (
            json!({"url": "http://x", "expect_status": [200, 700]}),
            "`expect_status`",
        ),
        (
            json!({"url": "http://x", "json_pointer": "a"}),
            "`json_pointer`",
        ),
        (
            json!({"url": "http://x", "json_equals": 1}),
            "`json_equals`",
        ),
        (
            json!({"url": "http://x", "latency_budget_ms": -1}),
            "`latency_budget_ms`",
        ),
        (
            json!({"url": "http://x", "idempotency": "yes"}),
            "`idempotency`",
        ),
        (json!({"url": "http://x", "timeout": 1}), "`timeout`"),
    ];
    for (input, field) in cases {
        let failure = param_error(input.clone());
        assert!(!failure.retryable, "{input}: {failure:?}");
        assert!(
            failure.message.contains(field),
            "{input}: {}",
            failure.message
        );
    }
    assert!(!parse_params("[1]").expect_err("not an object").retryable);
    assert!(!parse_params("{").expect_err("not JSON").retryable);
}

#[test]
fn passing_probe_output() {
    let p = params(json!({"url": "http://svc/health", "body_contains": "ok"}));
    let body = format!("ok {}", "y".repeat(300));
    let out = evaluate(&p, &observed(200, 12, &body)).expect("passes");
    assert_eq!(out["status"], json!(200));
    assert_eq!(out["latency_ms"], json!(12));
    assert_eq!(out["ok"], json!(true));
    assert_eq!(out["url"], json!("http://svc/health"));
    assert_eq!(
        out["body_excerpt"].as_str().map(|s| s.chars().count()),
        Some(200)
    );
    assert!(out.get("json_value").is_none());
}

#[test]
fn status_mismatch_is_retryable_and_names_the_url() {
    let p = params(json!({"url": "http://svc/health"}));
    let f = evaluate(&p, &observed(503, 5, "")).expect_err("fails");
    assert_eq!(
        f,
        Failure::transient("expected status 200, got 503 from http://svc/health")
    );
    let p = params(json!({"url": "http://svc/health", "expect_status": [200, 204]}));
    let f = evaluate(&p, &observed(404, 5, "")).expect_err("fails");
    assert!(
        f.message
            .starts_with("expected status one of 200, 204, got 404"),
        "{f:?}"
    );
}

#[test]
fn latency_and_body_checks() {
    let p = params(json!({"url": "http://svc", "latency_budget_ms": 500, "body_contains": "ok"}));
    let f = evaluate(&p, &observed(200, 812, "ok")).expect_err("slow");
    assert!(f.retryable);
    assert!(
        f.message.starts_with("latency 812 ms over budget 500 ms"),
        "{f:?}"
    );
    let f = evaluate(&p, &observed(200, 10, "degraded")).expect_err("wrong body");
    assert!(
        f.message.starts_with("body does not contain \"ok\""),
        "{f:?}"
    );
    assert!(evaluate(&p, &observed(200, 500, "all ok")).is_ok());
}

#[test]
fn json_pointer_checks() {
    let body = r#"{"status": {"healthy": true, "replicas": [3, 3]}}"#;
    let p = params(
        json!({"url": "http://svc", "json_pointer": "/status/healthy", "json_equals": true}),
    );
    assert_eq!(
        evaluate(&p, &observed(200, 1, body)).expect("passes")["json_value"],
        json!(true)
    );

    let p = params(
        json!({"url": "http://svc", "json_pointer": "/status/replicas/1", "json_equals": 2}),
    );
    let f = evaluate(&p, &observed(200, 1, body)).expect_err("mismatch");
    assert!(
        f.message
            .starts_with("JSON at \"/status/replicas/1\" is 3, expected 2"),
        "{f:?}"
    );

    let p = params(json!({"url": "http://svc", "json_pointer": "/missing"}));
    assert!(
        evaluate(&p, &observed(200, 1, body))
            .expect_err("missing")
            .message
            .contains("not found")
    );

    // Without json_equals the pointer only has to resolve; its value is reported.
    let p = params(json!({"url": "http://svc", "json_pointer": "/status/replicas"}));
    assert_eq!(
        evaluate(&p, &observed(200, 1, body)).expect("passes")["json_value"],
        json!([3, 3])
    );

    let f = evaluate(&p, &observed(200, 1, "<html>")).expect_err("not json");
    assert!(f.retryable && f.message.contains("is not JSON"), "{f:?}");
}

#[test]
fn excerpt_respects_char_boundaries() {
    let text = "é".repeat(250);
    assert_eq!(excerpt(&text).chars().count(), 200);
    assert_eq!(excerpt("short"), "short");
}

#[test]
fn summary_line_format() {
    let p = params(json!({"url": "http://svc/health"}));
    assert_eq!(
        summary_line(&p, 200, 7),
        "GET http://svc/health -> 200 in 7 ms"
    );
}
