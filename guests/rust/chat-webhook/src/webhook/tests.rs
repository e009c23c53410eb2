use super::*;

/// The params JSON, parsed and checked as a run does.
fn parse_params(json: &str) -> Result<Params, medic_step::Failure> {
    medic_step::params::parse::<crate::webhook::Raw>(json).and_then(Params::check)
}

fn parse(v: Value) -> Result<Params, Failure> {
    parse_params(&v.to_string())
}

#[test]
fn payload_has_the_slack_shape() {
    let p = parse(json!({"url_secret": "HOOK", "text": "checkout is down",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*down*"}}],
        "username": "medic", "icon_emoji": ":rotating_light:"}))
    .unwrap();
    assert_eq!(
        p.payload(),
        json!({"text": "checkout is down",
               "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*down*"}}],
               "username": "medic", "icon_emoji": ":rotating_light:"})
    );
    let p = parse(json!({"url_secret": "HOOK", "blocks": [{"type": "divider"}]})).unwrap();
    assert_eq!(p.payload(), json!({"blocks": [{"type": "divider"}]}));
}

#[test]
fn bad_params_name_the_field() {
    let cases = [
        (json!({"text": "x"}), "missing required param `url_secret`"),
        (json!({"url_secret": "HOOK"}), "need `text` or `blocks`"),
        (
            json!({"url_secret": "HOOK", "text": ""}),
            "param `text` must not be empty",
        ),
        (
            json!({"url_secret": "HOOK", "blocks": []}),
            "param `blocks` must be a non-empty list",
        ),
        (
            json!({"url_secret": "HOOK", "blocks": [{"text": "x"}]}),
            "param `blocks[0]` must be an object with a `type`",
        ),
        (
            json!({"url_secret": "HOOK", "blocks": ["x"]}),
            "param `blocks[0]`",
        ),
        (
            json!({"url_secret": "HOOK", "text": "x", "icon_emoji": "fire"}),
            "param `icon_emoji`",
        ),
        (
            json!({"url_secret": "HOOK", "text": 5}),
            "param `text` must be a string, got integer `5`",
        ),
        (
            json!({"url_secret": "HOOK", "text": "x", "channel": "#ops"}),
            "unknown param `channel`",
        ),
    ];
    for (params, want) in cases {
        let err = parse(params.clone()).unwrap_err();
        assert!(err.message.contains(want), "{params}: {}", err.message);
        assert!(!err.retryable);
    }
}

#[test]
fn a_url_pasted_as_the_secret_name_is_not_echoed() {
    let url = "https://hooks.slack.com/services/T000/B000/XXXXSECRET";
    let err = parse(json!({"url_secret": url, "text": "x"})).unwrap_err();
    assert!(
        err.message.contains("param `url_secret`"),
        "{}",
        err.message
    );
    assert!(!err.message.contains("XXXXSECRET"), "{}", err.message);
}

#[test]
fn refusals_carry_status_reason_and_retryability() {
    let f = refusal("hooks.slack.com", 400, b"invalid_payload", None);
    assert_eq!(
        f.message,
        "webhook at hooks.slack.com answered 400 invalid_payload (the receiver rejected the message's shape)"
    );
    assert!(!f.retryable);
    let f = refusal("h", 404, b"no_service", None);
    assert!(f.message.contains("404 no_service"), "{}", f.message);
    let f = refusal("h", 429, b"rate_limited", Some("3"));
    assert!(f.retryable);
    assert_eq!(f.retry_after_ms, Some(3000));
    let f = refusal("h", 503, b"", None);
    assert!(f.retryable);
    assert_eq!(f.message, "webhook at h answered 503");
}

#[test]
fn schema_and_parser_know_the_same_params() {
    assert_eq!(
        medic_step::testing::known_params::<Raw>(),
        medic_step::testing::schema_params(PARAMS_SCHEMA)
    );
}
