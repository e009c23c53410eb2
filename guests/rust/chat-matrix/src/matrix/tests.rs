use super::*;

/// The params JSON, parsed and checked as a run does.
fn parse_params(json: &str) -> Result<Params, medic_step::Failure> {
    medic_step::params::parse::<crate::matrix::Raw>(json).and_then(Params::check)
}

fn parse(v: Value) -> Result<Params, Failure> {
    parse_params(&v.to_string())
}

fn base() -> Value {
    json!({"homeserver": "https://matrix.example.org/", "token_secret": "MATRIX_TOKEN"})
}

fn with(extra: Value) -> Value {
    let mut v = base();
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

#[test]
fn post_params_parse_with_defaults() {
    let p = parse(with(
        json!({"action": "post", "room": "#ops:example.org", "text": "hi"}),
    ))
    .unwrap();
    assert_eq!(p.homeserver, "https://matrix.example.org");
    let Action::Post(post) = p.action else {
        panic!("{:?}", p.action)
    };
    assert_eq!(post.msgtype, "m.text");
    assert_eq!(post.html, None);
    assert_eq!(
        message_body(&post),
        json!({"msgtype": "m.text", "body": "hi"})
    );
}

#[test]
fn html_posts_carry_format_and_formatted_body() {
    let p = parse(with(
        json!({"action": "post", "room": "!abc:x", "text": "*hi*",
        "html": "<b>hi</b>", "msgtype": "m.notice"}),
    ))
    .unwrap();
    let Action::Post(post) = p.action else {
        panic!()
    };
    assert_eq!(
        message_body(&post),
        json!({"msgtype": "m.notice", "body": "*hi*", "format": HTML_FORMAT, "formatted_body": "<b>hi</b>"})
    );
}

#[test]
fn bad_params_name_the_field() {
    let cases = [
        (
            json!({"action": "post", "room": "ops", "text": "x"}),
            "param `room`",
        ),
        (
            json!({"action": "post", "room": "#ops", "text": "x"}),
            "param `room`",
        ),
        (
            json!({"action": "post", "room": "!a:b"}),
            "missing required param `text`",
        ),
        (
            json!({"action": "post", "room": "!a:b", "text": "x", "format": "y"}),
            "param `format` needs `html`",
        ),
        (
            json!({"action": "post", "room": "!a:b", "text": "x", "msgtype": "m.image"}),
            "param `msgtype`",
        ),
        (
            json!({"action": "post", "room": "!a:b", "text": "x", "name": "n"}),
            "param `name` does not apply to action `post`",
        ),
        (
            json!({"action": "open_war_room", "name": "n", "invite": ["bob"]}),
            "param `invite[0]`",
        ),
        (
            json!({"action": "open_war_room", "name": "n", "invite": "@a:b"}),
            "param `invite` must be a list",
        ),
        (
            json!({"action": "open_war_room", "name": "n", "alias": "a b"}),
            "param `alias`",
        ),
        (
            json!({"action": "open_war_room"}),
            "missing required param `name`",
        ),
        (json!({"action": "shout"}), "param `action` must be"),
        (
            json!({"action": "post", "room": "!a:b", "text": "x", "colour": 1}),
            "unknown param `colour`",
        ),
    ];
    for (extra, want) in cases {
        let err = parse(with(extra.clone())).unwrap_err();
        assert!(err.message.contains(want), "{extra}: {}", err.message);
        assert!(!err.retryable);
    }
    let err =
        parse(json!({"homeserver": "matrix.example.org", "token_secret": "T", "action": "post"}))
            .unwrap_err();
    assert!(
        err.message.contains("param `homeserver`"),
        "{}",
        err.message
    );
    let err =
        parse(json!({"homeserver": "http://h", "token_secret": "syt_abc-def", "action": "post"}))
            .unwrap_err();
    assert!(
        err.message.contains("param `token_secret`"),
        "{}",
        err.message
    );
}

#[test]
fn war_room_alias_takes_the_local_part_and_builds_create_room() {
    let p = parse(with(
        json!({"action": "open_war_room", "name": "INC-7 checkout",
        "topic": "checkout 5xx", "invite": ["@alice:example.org"], "alias": "#inc-7:example.org"}),
    ))
    .unwrap();
    let Action::OpenWarRoom(room) = p.action else {
        panic!()
    };
    assert_eq!(room.alias.as_deref(), Some("inc-7"));
    let alias = war_room_alias(&room, "k1");
    assert_eq!(alias, "inc-7");
    assert_eq!(
        create_room_body(&room, &alias, "k1"),
        json!({"name": "INC-7 checkout", "topic": "checkout 5xx", "preset": "private_chat",
               "visibility": "private", "invite": ["@alice:example.org"], "room_alias_name": "inc-7",
               "creation_content": {"medic.idempotency_key": "k1"}})
    );
    let bare = WarRoom {
        alias: None,
        topic: None,
        invite: Vec::new(),
        ..room
    };
    assert_eq!(war_room_alias(&bare, "0a1b"), "medic-0a1b");
    assert_eq!(
        create_room_body(&bare, "medic-0a1b", "0a1b").get("topic"),
        None
    );
}

#[test]
fn paths_encode_room_ids_aliases_and_transactions() {
    assert_eq!(
        send_path("!abc:example.org", &txn_id("0123abcd")),
        "/_matrix/client/v3/rooms/%21abc%3Aexample.org/send/m.room.message/medic-0123abcd"
    );
    assert_eq!(
        alias_path("#ops:example.org"),
        "/_matrix/client/v3/directory/room/%23ops%3Aexample.org"
    );
    assert_eq!(txn_id("a/b c"), "medic-a%2Fb%20c");
}

#[test]
fn refusals_carry_status_errcode_and_retryability() {
    let f = refusal(
        "posting",
        401,
        br#"{"errcode":"M_UNKNOWN_TOKEN","error":"Invalid access token passed."}"#,
        None,
    );
    assert!(
        f.message.starts_with(
            "posting: homeserver answered 401 M_UNKNOWN_TOKEN: Invalid access token passed."
        ),
        "{}",
        f.message
    );
    assert!(!f.retryable);
    let f = refusal(
        "posting",
        429,
        br#"{"errcode":"M_LIMIT_EXCEEDED","error":"Too Many Requests","retry_after_ms":1500}"#,
        Some("9"),
    );
    assert!(f.retryable);
    assert_eq!(f.retry_after_ms, Some(1500));
    let f = refusal("posting", 429, b"slow down", Some("2"));
    assert_eq!(f.retry_after_ms, Some(2000));
    assert_eq!(f.message, "posting: homeserver answered 429 slow down");
    let f = refusal("posting", 502, b"<html>\n Bad   gateway</html>", None);
    assert!(f.retryable);
    assert_eq!(f.retry_after_ms, None);
    assert_eq!(
        f.message,
        "posting: homeserver answered 502 <html> Bad gateway</html>"
    );
}

#[test]
fn schema_is_json() {
    assert_eq!(
        medic_step::testing::known_params::<Raw>(),
        medic_step::testing::schema_params(PARAMS_SCHEMA),
        "schema and parser know the same params"
    );
}
