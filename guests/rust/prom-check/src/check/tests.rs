use super::*;

/// The params JSON, parsed and checked as a run does.
fn parse_params(json: &str) -> Result<Params, medic_step::Failure> {
    medic_step::params::parse::<crate::check::Raw>(json).and_then(Params::check)
}

fn params(extra: &str) -> Params {
    parse_params(&format!(
        r#"{{"url": "http://prometheus:9090/", "query": "sum(rate(errors[1m])) by (job)", "op": "<", "value": 0.05{extra}}}"#
    ))
    .unwrap()
}

fn vector(values: &[(&str, &str)]) -> String {
    let items: Vec<String> = values
        .iter()
        .map(|(job, v)| {
            format!(r#"{{"metric": {{"job": "{job}"}}, "value": [1763800000.123, "{v}"]}}"#)
        })
        .collect();
    format!(
        r#"{{"status": "success", "data": {{"resultType": "vector", "result": [{}]}}}}"#,
        items.join(",")
    )
}

#[test]
fn parses_defaults_and_encodes_the_query() {
    let p = params("");
    assert_eq!(p.consecutive, 1);
    assert_eq!(p.interval_ms, 1000);
    assert!(!p.pass_on_empty);
    assert_eq!(p.token_secret, None);
    assert_eq!(
        p.query_url(),
        "http://prometheus:9090/api/v1/query?query=sum%28rate%28errors%5B1m%5D%29%29%20by%20%28job%29"
    );
    let p = params(
        r#", "consecutive": 3, "interval_ms": 0, "on_empty": "pass", "token_secret": "PROM_TOKEN""#,
    );
    assert_eq!((p.consecutive, p.interval_ms), (3, 0));
    assert!(p.pass_on_empty);
    assert_eq!(p.token_secret.as_deref(), Some("PROM_TOKEN"));
}

#[test]
fn bad_params_name_the_field() {
    let base = r#""url": "http://p:9090", "query": "up", "op": "<", "value": 1"#;
    let cases = [
        (format!(r#"{{{base}, "op2": 1}}"#), "unknown param `op2`"),
        (
            r#"{"url": "http://p", "query": "up", "op": "=<", "value": 1}"#.to_owned(),
            "param `op` must be one of",
        ),
        (
            r#"{"url": "http://p", "query": "up", "op": "<", "value": "1"}"#.to_owned(),
            "param `value` must be a number",
        ),
        (
            r#"{"url": "http://p", "query": "up", "op": "<"}"#.to_owned(),
            "missing required param `value`",
        ),
        (
            format!(r#"{{{base}, "consecutive": 0}}"#),
            "param `consecutive` must be an integer from 1 to 100",
        ),
        (
            format!(r#"{{{base}, "on_empty": "skip"}}"#),
            "param `on_empty` must be fail or pass",
        ),
        (
            r#"{"url": "prometheus:9090", "query": "up", "op": "<", "value": 1}"#.to_owned(),
            "param `url` must start with http://",
        ),
    ];
    for (json, expected) in cases {
        let err = parse_params(&json).unwrap_err();
        assert!(!err.retryable, "{json}");
        assert!(err.message.contains(expected), "{json}: {}", err.message);
    }
}

#[test]
fn operators_compare_like_promql() {
    let cases = [
        (Op::Lt, 1.0, 2.0, true),
        (Op::Lt, 2.0, 2.0, false),
        (Op::Le, 2.0, 2.0, true),
        (Op::Gt, 3.0, 2.0, true),
        (Op::Ge, 1.0, 2.0, false),
        (Op::Eq, 2.0, 2.0, true),
        (Op::Ne, 2.0, 2.0, false),
        (Op::Lt, f64::NAN, 2.0, false),
        (Op::Ne, f64::NAN, 2.0, true),
        (Op::Gt, f64::INFINITY, 2.0, true),
    ];
    for (op, sample, threshold, expected) in cases {
        assert_eq!(
            op.holds(sample, threshold),
            expected,
            "{sample} {} {threshold}",
            op.as_str()
        );
    }
}

#[test]
fn reads_vectors_scalars_and_special_values() {
    let got = samples(&vector(&[
        ("checkout", "0.01"),
        ("cart", "NaN"),
        ("api", "+Inf"),
    ]))
    .unwrap();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].series, r#"{job="checkout"}"#);
    assert_eq!(got[0].value, 0.01);
    assert!(got[1].value.is_nan());
    assert_eq!(got[2].value, f64::INFINITY);
    assert_eq!(got[1].to_json()["value"], "NaN");

    let named = r#"{"status":"success","data":{"resultType":"vector","result":[
        {"metric":{"__name__":"up","job":"a","instance":"h:1"},"value":[1,"1"]},
        {"metric":{"__name__":"up"},"value":[1,"0"]}]}}"#;
    let got = samples(named).unwrap();
    assert_eq!(got[0].series, r#"up{instance="h:1", job="a"}"#);
    assert_eq!(got[1].series, "up");

    let scalar = r#"{"status":"success","data":{"resultType":"scalar","result":[1,"42"]}}"#;
    assert_eq!(
        samples(scalar).unwrap(),
        vec![Sample {
            series: String::new(),
            value: 42.0
        }]
    );

    let matrix = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
    let err = samples(matrix).unwrap_err();
    assert!(
        !err.retryable && err.message.contains("`matrix`"),
        "{err:?}"
    );
    assert!(samples("<html>").unwrap_err().retryable);
}

#[test]
fn every_series_must_hold_and_empty_follows_the_policy() {
    let p = params("");
    let good = samples(&vector(&[("checkout", "0.01"), ("cart", "0.02")])).unwrap();
    assert!(holds(&p, &good));
    let mixed = samples(&vector(&[("checkout", "0.01"), ("cart", "0.5")])).unwrap();
    assert!(!holds(&p, &mixed));
    assert!(!holds(&p, &[]));
    assert!(holds(&params(r#", "on_empty": "pass""#), &[]));
}

#[test]
fn not_satisfied_names_query_values_and_threshold() {
    let p = params(r#", "consecutive": 3"#);
    let mixed = samples(&vector(&[("checkout", "0.01"), ("cart", "0.5")])).unwrap();
    let f = not_satisfied(&p, 2, &mixed);
    assert!(f.retryable);
    assert_eq!(
        f.message,
        r#"not satisfied (evaluation 2 of 3): sum(rate(errors[1m])) by (job) < 0.05; 1 of 2 series fail: {job="cart"}=0.5"#
    );
    let f = not_satisfied(&params(""), 1, &[]);
    assert!(
        f.message
            .ends_with("the query returned no series (on_empty: fail)"),
        "{}",
        f.message
    );
}

#[test]
fn refusals_carry_status_and_prometheus_error() {
    let p = params("");
    let bad = r#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:5: parse error"}"#;
    let f = refusal(&p, 400, bad);
    assert!(!f.retryable);
    assert!(
        f.message.contains("400") && f.message.contains("bad_data: invalid parameter"),
        "{}",
        f.message
    );
    assert!(refusal(&p, 503, "timeout").retryable);
    let f = refusal(
        &params(r#", "token_secret": "PROM_TOKEN""#),
        401,
        "Unauthorized",
    );
    assert!(!f.retryable);
    assert!(
        f.message.contains("secret `PROM_TOKEN` (401)"),
        "{}",
        f.message
    );
}

#[test]
fn output_lists_every_evaluation() {
    let p = params(r#", "consecutive": 2"#);
    let one = samples(&vector(&[("checkout", "0.01")])).unwrap();
    let out = output(&p, &[one.clone(), one]);
    assert_eq!(out["satisfied"], true);
    assert_eq!(out["op"], "<");
    assert_eq!(out["value"], 0.05);
    assert_eq!(out["evaluations"].as_array().unwrap().len(), 2);
    assert_eq!(out["evaluations"][1][0]["value"], 0.01);
    assert_eq!(out["evaluations"][1][0]["series"], r#"{job="checkout"}"#);
}
