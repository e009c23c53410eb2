use super::*;

/// The params JSON, parsed and checked as a run does.
fn parse_params(json: &str) -> Result<Params, medic_step::Failure> {
    medic_step::params::parse::<crate::flag::Raw>(json).and_then(Params::check)
}

fn params(action: &str) -> Params {
    parse_params(&format!(
        r#"{{"url": "http://unleash.internal:4242/", "feature": "new checkout", "environment": "production", "action": "{action}", "token_secret": "UNLEASH_TOKEN"}}"#
    ))
    .unwrap()
}

#[test]
fn parses_with_defaults_and_builds_encoded_admin_paths() {
    let p = params("disable");
    assert_eq!(p.project, "default");
    assert_eq!(p.action, Action::Disable);
    assert_eq!(
        p.feature_url(),
        "http://unleash.internal:4242/api/admin/projects/default/features/new%20checkout"
    );
    assert_eq!(
        p.toggle_url(false),
        "http://unleash.internal:4242/api/admin/projects/default/features/new%20checkout/environments/production/off"
    );
    assert!(p.toggle_url(true).ends_with("/environments/production/on"));
}

#[test]
fn bad_params_name_the_field() {
    let cases = [
        (r#"[]"#, "params must be a JSON object"),
        (
            r#"{"url": "ftp://x", "feature": "f", "environment": "e", "action": "get", "token_secret": "T"}"#,
            "param `url` must start with http://",
        ),
        (
            r#"{"url": "http://x", "environment": "e", "action": "get", "token_secret": "T"}"#,
            "missing required param `feature`",
        ),
        (
            r#"{"url": "http://x", "feature": "f", "environment": "e", "action": "toggle", "token_secret": "T"}"#,
            "param `action` must be one of enable, disable, get, set_rollout; got \"toggle\"",
        ),
        (
            r#"{"url": "http://x", "feature": "f", "environment": "e", "action": "get", "token_secret": "not a name"}"#,
            "param `token_secret` must be a secret name",
        ),
        (
            r#"{"url": "http://x", "feature": "f", "environment": "e", "action": "get", "token_secret": "T", "enabled": false}"#,
            "unknown param `enabled`",
        ),
        (
            r#"{"url": "http://x", "feature": "", "environment": "e", "action": "get", "token_secret": "T"}"#,
            "param `feature` must not be empty",
        ),
        (
            r#"{"url": "http://x?a=1", "feature": "f", "environment": "e", "action": "get", "token_secret": "T"}"#,
            "no query",
        ),
    ];
    for (json, expected) in cases {
        let err = parse_params(json).unwrap_err();
        assert!(!err.retryable, "{json}");
        assert!(
            err.message.contains(expected),
            "{json}: {:?} lacks {expected:?}",
            err.message
        );
    }
}

#[test]
fn reads_the_environment_state_or_names_the_environments_there_are() {
    let p = params("get");
    let body = r#"{"name": "new checkout", "environments": [
        {"name": "development", "enabled": false},
        {"name": "production", "enabled": true}]}"#;
    assert_eq!(enabled_in(&p, body), Ok(true));
    let other = body.replace("production", "staging");
    let err = enabled_in(&p, &other).unwrap_err();
    assert!(!err.retryable);
    assert!(
        err.message.contains("it has: development, staging"),
        "{}",
        err.message
    );
    assert!(enabled_in(&p, "<html>").unwrap_err().retryable);
}

#[test]
fn refusals_carry_status_and_unleash_message_and_classify_retries() {
    let p = params("disable");
    let not_found = r#"{"id":"x","name":"NotFoundError","message":"Could not find feature flag `new checkout`."}"#;
    let f = refusal(&p, "read", 404, not_found);
    assert!(!f.retryable);
    assert!(
        f.message.starts_with(
            "feature `new checkout` in environment `production` (project `default`) not found"
        ),
        "{}",
        f.message
    );
    assert!(f.message.contains("Could not find feature flag"));

    let f = refusal(&p, "read", 401, r#"{"message":"You must log in"}"#);
    assert!(!f.retryable);
    assert!(
        f.message.contains("secret `UNLEASH_TOKEN` (401)"),
        "{}",
        f.message
    );

    let f = refusal(&p, "disable", 503, "upstream unavailable");
    assert!(f.retryable);
    assert!(f.message.contains("503") && f.message.contains("upstream unavailable"));
    assert!(refusal(&p, "disable", 429, "").retryable);
    assert!(!refusal(&p, "disable", 409, "").retryable);
}

#[test]
fn unleash_messages_include_details() {
    let body =
        r#"{"message":"Request validation failed","details":[{"message":"name is invalid"}]}"#;
    assert_eq!(
        unleash_message(body),
        "Request validation failed; name is invalid"
    );
    assert_eq!(excerpt(&"é".repeat(400)).chars().count(), 303);
}

#[test]
fn output_and_timeline_say_what_changed() {
    let p = params("disable");
    let out = output(&p, true, false);
    assert_eq!(out["previous"], true);
    assert_eq!(out["current"], false);
    assert_eq!(out["changed"], true);
    assert_eq!(out["feature"], "new checkout");
    assert_eq!(
        timeline_line(&p, true, false),
        "flags-unleash: feature `new checkout` in environment `production` (project `default`) disabled (was enabled)"
    );
    assert!(timeline_line(&p, false, false).ends_with("already disabled; no change"));
    assert_eq!(output(&p, false, false)["changed"], false);
    assert!(timeline_line(&params("get"), true, true).ends_with("is enabled"));
}
