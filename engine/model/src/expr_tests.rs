use super::*;
use serde_json::json;

fn ctx() -> Value {
    json!({
        "incident": {
            "severity": "critical",
            "labels": {"service": "checkout", "app.kubernetes.io/name": "shop"},
            "annotations": {},
        },
        "steps": {
            "probe": {"status": "failed", "output": {"code": 503, "latency": 1.5, "tags": ["a", "b"], "error": null}},
            "skipped-one": {"status": "skipped", "output": null},
        },
    })
}

fn eval(src: &str) -> Result<bool, ExprError> {
    eval_condition(src, &ctx())
}

#[test]
fn comparisons_and_logic() {
    let truthy = [
        r#"steps.probe.status == "failed" && incident.severity == "critical""#,
        r#"steps.probe.status == 'failed'"#,
        "steps.probe.output.code >= 500",
        "steps.probe.output.code == 503.0",
        "steps.probe.output.latency < 2",
        "steps.probe.output.latency <= 1.5",
        "-1 < 0",
        r#""a" < "b""#,
        "steps.probe.output.error == null",
        "steps.probe.output.nothing.deeper == null",
        "steps.skipped-one.output == null",
        r#"steps.skipped-one.status != "succeeded""#,
        "!(steps.probe.output.code < 500)",
        "!false && (false || true)",
        "true || 1 < \"x\"", // short-circuits past the type error
        r#"contains(steps.probe.output.tags, "b")"#,
        r#"contains(incident.labels.service, "check")"#,
        r#"contains(incident.labels, "app.kubernetes.io/name")"#,
        r#"!contains(incident.labels.team, "sre")"#,
        r#"incident.labels["app.kubernetes.io/name"] == "shop""#,
        r#"steps.probe.output.tags[1] == "b""#,
    ];
    for src in truthy {
        assert_eq!(eval(src), Ok(true), "{src}");
    }
    let falsy = [
        "steps.probe.output.code > 503",
        r#"incident.severity == "warning""#,
        "true && false",
        r#"contains(steps.probe.output.tags, "c")"#,
        "1 == \"1\"",
    ];
    for src in falsy {
        assert_eq!(eval(src), Ok(false), "{src}");
    }
}

#[test]
fn precedence() {
    // && binds tighter than ||.
    assert_eq!(eval("true || false && false"), Ok(true));
    assert_eq!(eval("(true || false) && false"), Ok(false));
    assert_eq!(eval("!true == false"), Ok(true));
}

#[test]
fn syntax_errors_give_the_column() {
    let cases = [
        ("steps.probe.status = \"failed\"", 20, "use `==`"),
        ("steps.probe.status == ", 23, "unexpected end"),
        ("(true", 6, "expected `)`"),
        ("true false", 6, "expected `&&`"),
        ("a < b < c", 7, "do not chain"),
        ("contains(a)", 11, "`,`"),
        ("\"open", 1, "unterminated"),
        ("a & b", 3, "&&"),
        ("a == #", 6, "unexpected `#`"),
        ("", 1, "empty"),
        ("== 1", 1, "before `==`"),
        ("steps.", 7, "field name"),
    ];
    for (src, column, needle) in cases {
        match parse(src) {
            Err(ExprError::Syntax { column: c, message }) => {
                assert_eq!(c, column, "{src}: {message}");
                assert!(message.contains(needle), "{src}: {message}");
            }
            other => panic!("{src}: {other:?}"),
        }
    }
}

#[test]
fn type_errors() {
    let err = eval("steps.probe.status < 3").unwrap_err();
    assert_eq!(
        err.to_string(),
        "at column 20: cannot compare a string (\"failed\") < a number (3): `<` needs two numbers or two strings"
    );
    let err = eval("steps.probe.output.code && true").unwrap_err();
    assert!(
        err.to_string()
            .contains("`&&` needs true or false, found a number (503)"),
        "{err}"
    );
    let err = eval("steps.probe.output.code").unwrap_err();
    assert!(err.to_string().contains("must be true or false"), "{err}");
    let err = eval("contains(1, 2)").unwrap_err();
    assert!(err.to_string().contains("contains(a, b)"), "{err}");
    let err = eval("steps.nope.output.x > 1").unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot compare null > a number (1)"),
        "{err}"
    );
}

#[test]
fn paths_are_listed() {
    let e = parse("contains(steps.a.output, incident.title) || !steps.b.status").unwrap();
    let paths: Vec<String> = e.paths().iter().map(|(p, o)| format!("{p}@{o}")).collect();
    assert_eq!(
        paths,
        ["steps.a.output@9", "incident.title@25", "steps.b.status@45"]
    );
}
