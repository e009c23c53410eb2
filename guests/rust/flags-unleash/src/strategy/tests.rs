use super::*;
use crate::flag::Raw;

/// The params JSON, parsed and checked as a run does.
fn parse_params(json: &str) -> Result<Params, Failure> {
    medic_step::params::parse::<Raw>(json).and_then(Params::check)
}

fn params(extra: &str) -> Params {
    parse_params(&format!(
        r#"{{"url": "http://u:4242", "feature": "checkout", "environment": "production", "action": "set_rollout", "percentage": 25, "token_secret": "T"{extra}}}"#
    ))
    .unwrap()
}

fn rollout(id: &str, pct: &str) -> Value {
    json!({"id": id, "name": "flexibleRollout", "title": null, "disabled": false, "constraints": [],
           "variants": [], "segments": [3], "sortOrder": 0,
           "parameters": {"rollout": pct, "stickiness": "default", "groupId": "checkout"}})
}

#[test]
fn picks_the_only_flexible_rollout_or_the_named_one() {
    let p = params("");
    assert!(pick(&p, &[]).unwrap().is_none());
    let list = [rollout("a", "5")];
    assert_eq!(id(pick(&p, &list).unwrap().unwrap()), "a");
    assert_eq!(percentage(&list[0]), Some(5));

    let two = [rollout("a", "5"), rollout("b", "10")];
    let e = pick(&p, &two).unwrap_err();
    assert!(
        e.message.contains("2 gradual rollout strategies"),
        "{}",
        e.message
    );
    assert!(e.message.contains("param `strategy_id`"), "{}", e.message);

    let mut off = rollout("b", "10");
    off["disabled"] = json!(true);
    let named = params(r#", "strategy_id": "a""#);
    assert_eq!(
        id(pick(&named, &[rollout("a", "5"), off]).unwrap().unwrap()),
        "a"
    );
    // Another enabled strategy would let everyone in: refused.
    let e = pick(&named, &two).unwrap_err();
    assert!(
        e.message
            .contains("other enabled strategies (flexibleRollout (b))"),
        "{}",
        e.message
    );

    let default = json!({"id": "d", "name": "default", "parameters": {}});
    let e = pick(&p, &[default]).unwrap_err();
    assert!(e.message.contains("no gradual rollout"), "{}", e.message);
    let e = pick(&params(r#", "strategy_id": "zz""#), &list).unwrap_err();
    assert!(
        e.message.contains("no strategy with id `zz`"),
        "{}",
        e.message
    );
}

#[test]
fn the_update_sends_the_strategy_back_with_only_the_percentage_changed() {
    let body = update_body(&rollout("a", "5"), 25);
    assert_eq!(
        body,
        json!({"name": "flexibleRollout", "disabled": false, "constraints": [], "variants": [],
               "segments": [3], "sortOrder": 0,
               "parameters": {"rollout": "25", "stickiness": "default", "groupId": "checkout"}})
    );
    assert_eq!(
        create_body(&params(""), 5)["parameters"],
        json!({"rollout": "5", "stickiness": "default", "groupId": "checkout"})
    );
    assert_eq!(
        strategies_url(&params(""), Some("a b")),
        "http://u:4242/api/admin/projects/default/features/checkout/environments/production/strategies/a%20b"
    );
}

#[test]
fn percentage_params_are_checked() {
    for (extra, action, needle) in [
        ("", "set_rollout", "needs param `percentage`"),
        (r#", "percentage": 101"#, "set_rollout", "from 0 to 100"),
        (
            r#", "percentage": 5"#,
            "enable",
            "only applies to action `set_rollout`",
        ),
    ] {
        let e = parse_params(&format!(
            r#"{{"url": "http://u", "feature": "f", "environment": "e", "action": "{action}", "token_secret": "T"{extra}}}"#
        ))
        .unwrap_err();
        assert!(e.message.contains(needle), "{extra}: {}", e.message);
    }
    let line = timeline_line(&params(""), Some(5), 25, true);
    assert!(line.ends_with("rollout 25% (was 5%)"), "{line}");
    assert!(timeline_line(&params(""), Some(5), 25, false).contains("disabled there"));
}
