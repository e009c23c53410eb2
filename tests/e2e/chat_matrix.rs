//! The chat-matrix step against a real Synapse: war rooms and messages are read back through
//! the client-server API as a second user; failures carry Matrix's errcode; a run killed at
//! any journal write and resumed opens one room and posts once; tokens stay out of journals.

use crate::support::incident;
use crate::synapse::{SERVER_NAME, Synapse, raw_request};
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use medic_core::{RunState, RunStatus};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

const HEAD: &str = "apiVersion: medic/v1\nkind: Workflow\nname: chat\nsteps:\n";

/// A chat-matrix step as YAML: `with` is given as JSON (valid YAML flow mapping) so every
/// value is quoted correctly; templates stay strings.
fn step(id: &str, phase: &str, with: Value, extra: &str) -> String {
    format!(
        "  - id: {id}\n    phase: {phase}\n    uses: chat-matrix\n    with: {with}\n    secrets: [MATRIX_TOKEN]\n{extra}"
    )
}

const ALLOW_LOCAL: &str = "    allow: [127.0.0.1]\n";

fn common(hs: &Synapse) -> Value {
    json!({"homeserver": hs.url(), "token_secret": "MATRIX_TOKEN"})
}

fn with(base: &Value, extra: Value) -> Value {
    let mut v = base.clone();
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

/// Runs `yaml` in-process with the bot's token as the only secret; returns the run's final
/// state and its journal as JSON text.
async fn run(yaml: &str, token: &str) -> (RunStatus, RunState, String) {
    let ran = crate::support::run(yaml, &[("MATRIX_TOKEN", token)]).await;
    let journal = ran.journal();
    (ran.status, ran.state, journal)
}

fn output<'a>(state: &'a RunState, step: &str) -> &'a Value {
    state.steps[step]
        .output
        .as_ref()
        .unwrap_or_else(|| panic!("step {step} has no output: {:?}", state.reason))
}

#[tokio::test(flavor = "multi_thread")]
async fn opens_a_war_room_and_posts_into_it_as_a_human_reads_it() {
    let hs = Synapse::shared();
    let bot = hs.register("war-bot");
    let alice = hs.register("war-alice");
    let base = common(hs);
    let topic = "Checkout 5xx above 5% since 03:00; flag new-checkout suspected";
    let yaml = [
        HEAD.to_string(),
        step(
            "war-room",
            "communicate",
            with(
                &base,
                json!({"action": "open_war_room", "name": "INC checkout 5xx",
                "topic": topic, "invite": [alice.user_id], "alias": "inc-checkout"}),
            ),
            ALLOW_LOCAL,
        ),
        step(
            "announce",
            "communicate",
            with(
                &base,
                json!({"action": "post", "room": "{{ steps.war-room.output.room_id }}",
                "text": "Investigating: {{ incident.title }}",
                "html": "<b>Investigating</b>: {{ incident.title }}", "msgtype": "m.notice"}),
            ),
            ALLOW_LOCAL,
        ),
        step(
            "restored",
            "restore",
            with(
                &base,
                json!({"action": "post", "room": "{{ steps.war-room.output.alias }}",
                "text": "Flag new-checkout is off"}),
            ),
            ALLOW_LOCAL,
        ),
    ]
    .concat();
    let (status, state, journal) = run(&yaml, &bot.token).await;
    assert_eq!(
        status,
        RunStatus::Succeeded,
        "{:?}\n{}",
        state.reason,
        hs.log_tail()
    );

    let room = output(&state, "war-room");
    let room_id = room["room_id"].as_str().unwrap();
    assert_eq!(room["alias"], format!("#inc-checkout:{SERVER_NAME}"));
    assert_eq!(room["created"], true);
    assert_eq!(room["invited"], json!([alice.user_id]));

    // The room as the homeserver has it: name, topic, alice invited, the alias pointing here.
    assert_eq!(
        hs.state(&bot, room_id, "m.room.name", "")["name"],
        "INC checkout 5xx"
    );
    assert_eq!(hs.state(&bot, room_id, "m.room.topic", "")["topic"], topic);
    let invite = hs.state(&bot, room_id, "m.room.member", &alice.user_id);
    assert_eq!(invite["membership"], "invite", "{invite}");
    let alias = hs.ok(
        "GET",
        &format!("/_matrix/client/v3/directory/room/%23inc-checkout%3A{SERVER_NAME}"),
        &alice,
        None,
    );
    assert_eq!(alias["room_id"], room_id);

    // Alice accepts the invite and reads the two messages, in order, from the bot.
    assert_eq!(hs.join(&alice, room_id), room_id);
    let messages = hs.messages(&alice, room_id);
    assert_eq!(messages.len(), 2, "{messages:#?}");
    let title = incident().title;
    let first = &messages[0];
    assert_eq!(first["sender"], bot.user_id);
    assert_eq!(first["event_id"], output(&state, "announce")["event_id"]);
    assert_eq!(
        first["content"],
        json!({"msgtype": "m.notice", "body": format!("Investigating: {title}"),
               "format": "org.matrix.custom.html",
               "formatted_body": format!("<b>Investigating</b>: {title}")})
    );
    let second = &messages[1];
    assert_eq!(second["event_id"], output(&state, "restored")["event_id"]);
    assert_eq!(
        second["content"],
        json!({"msgtype": "m.text", "body": "Flag new-checkout is off"})
    );
    assert_eq!(output(&state, "restored")["room_id"], room_id);

    assert!(!journal.contains(&bot.token), "token in the journal");
    assert!(journal.contains("[redacted:MATRIX_TOKEN]"), "{journal}");
}

/// Bad token, a room the bot is not in, a taken alias, a homeserver not granted: each fails
/// its step at once (no retries) with the status and errcode, and no token reaches the journal.
#[tokio::test(flavor = "multi_thread")]
async fn refusals_fail_clearly_without_retrying() {
    let hs = Synapse::shared();
    let bot = hs.register("refused-bot");
    let alice = hs.register("refused-alice");
    let alices_room = hs.create_room(&alice, "alice only");
    let taken_alias = json!({"room_id": hs.create_room(&alice, "has alias")});
    hs.ok(
        "PUT",
        &format!("/_matrix/client/v3/directory/room/%23taken%3A{SERVER_NAME}"),
        &alice,
        Some(&taken_alias),
    );
    let base = common(hs);
    let retry = "    retry: { attempts: 3, backoff: 10ms }\n";
    let post = |room: &str| {
        with(
            &base,
            json!({"action": "post", "room": room, "text": "hello"}),
        )
    };

    let cases = [
        (
            "syt_not_a_real_token_0123456789",
            post(&alices_room),
            ALLOW_LOCAL,
            "homeserver answered 401 M_UNKNOWN_TOKEN: Invalid access token passed.",
        ),
        (
            bot.token.as_str(),
            post(&alices_room),
            ALLOW_LOCAL,
            "homeserver answered 403 M_FORBIDDEN",
        ),
        (
            bot.token.as_str(),
            with(
                &base,
                json!({"action": "open_war_room", "name": "x", "alias": "taken"}),
            ),
            ALLOW_LOCAL,
            "creating war room with alias #taken:medic.test: homeserver answered 400 M_ROOM_IN_USE",
        ),
        (
            bot.token.as_str(),
            post("#nowhere:medic.test"),
            ALLOW_LOCAL,
            "resolving room alias #nowhere:medic.test: homeserver answered 404 M_NOT_FOUND",
        ),
        (
            bot.token.as_str(),
            post(&alices_room),
            "    allow: [matrix.example.org]\n",
            // The host's own verdict; the step's explanation is on the timeline.
            "host not allowed: 127.0.0.1",
        ),
    ];
    for (token, params, allow, want) in cases {
        let yaml = format!(
            "{HEAD}{}",
            step("say", "communicate", params, &format!("{allow}{retry}"))
        );
        let (status, state, journal) = run(&yaml, token).await;
        assert_eq!(status, RunStatus::Failed, "{want}");
        let reason = state.reason.clone().unwrap_or_default();
        assert!(reason.contains(want), "want {want:?} in {reason:?}");
        assert_eq!(state.steps["say"].attempt, 1, "{want}: not retryable");
        assert!(!journal.contains(token), "token in the journal: {want}");
    }
    // Nothing reached alice's room.
    assert!(hs.messages(&alice, &alices_room).is_empty());
}

/// A reverse proxy in front of the homeserver that, the first time it sees a message send or
/// a room creation, passes the request on and then answers 502 Bad Gateway: the homeserver
/// acted, the step never learnt it. That is the classic lost answer a retry must not repeat.
struct LossyProxy {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct Lost {
    /// `send` / `createRoom` once their first answer was dropped.
    dropped: Mutex<Vec<&'static str>>,
}

impl LossyProxy {
    async fn start(upstream: u16) -> LossyProxy {
        let lost = Arc::new(Lost::default());
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let lost = lost.clone();
                async move { forward(upstream, &lost, method, uri, headers, body).await }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        LossyProxy { port, task }
    }
}

impl Drop for LossyProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(
    upstream: u16,
    lost: &Lost,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let path = uri
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let (status, answer) = tokio::task::spawn_blocking({
        let (method, path) = (method.to_string(), path.clone());
        move || raw_request(upstream, &method, &path, token.as_deref(), &body)
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("proxy to {path}: {e}"));
    let kind = if path.contains("/send/m.room.message/") {
        Some("send")
    } else if path.ends_with("/createRoom") {
        Some("createRoom")
    } else {
        None
    };
    if let Some(kind) = kind {
        let mut dropped = lost.dropped.lock().unwrap();
        if !dropped.contains(&kind) {
            dropped.push(kind);
            return (StatusCode::BAD_GATEWAY, "upstream timed out".into());
        }
    }
    let status = StatusCode::from_u16(status).unwrap();
    (status, String::from_utf8_lossy(&answer).into_owned())
}

/// Behind a proxy that loses the first answer of each effect, retried attempts open one room
/// and post one message: the retry reuses the room (its alias is taken by our own creation)
/// and the homeserver recognises the message's transaction id.
#[tokio::test(flavor = "multi_thread")]
async fn retried_attempts_after_lost_answers_do_not_duplicate() {
    let hs = Synapse::shared();
    let bot = hs.register("retry-bot");
    let proxy = LossyProxy::start(hs.port).await;
    let base = json!({"homeserver": format!("http://127.0.0.1:{}", proxy.port),
                      "token_secret": "MATRIX_TOKEN"});
    let retry = "    allow: [127.0.0.1]\n    retry: { attempts: 3, backoff: 10ms }\n";
    let yaml = [
        HEAD.to_string(),
        step(
            "war-room",
            "communicate",
            with(
                &base,
                json!({"action": "open_war_room", "name": "INC retry"}),
            ),
            retry,
        ),
        step(
            "announce",
            "communicate",
            with(
                &base,
                json!({"action": "post", "room": "{{ steps.war-room.output.room_id }}",
                "text": "Investigating"}),
            ),
            retry,
        ),
    ]
    .concat();
    let (status, state, journal) = run(&yaml, &bot.token).await;
    assert_eq!(status, RunStatus::Succeeded, "{:?}", state.reason);
    for step in ["war-room", "announce"] {
        assert_eq!(
            state.steps[step].attempt, 2,
            "{step}: the 502 was retried once"
        );
    }
    assert!(
        journal.contains("homeserver answered 502 upstream timed out"),
        "{journal}"
    );

    let rooms = hs.joined_rooms(&bot);
    assert_eq!(rooms.len(), 1, "one war room: {rooms:?}");
    let room_id = output(&state, "war-room")["room_id"].as_str().unwrap();
    assert_eq!(rooms[0], room_id);
    let messages = hs.messages(&bot, room_id);
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert_eq!(
        messages[0]["event_id"],
        output(&state, "announce")["event_id"]
    );
}

fn medic_in(data: &Path, token: &str) -> Command {
    let mut c = crate::support::medic_in(data);
    c.env("MEDIC_SECRET_MATRIX_TOKEN", token)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// The journal entries of the only run in `data`; `None` when there is no run.
fn journal(data: &Path, token: &str) -> Option<Vec<Value>> {
    let runs = medic_in(data, token)
        .args(["runs", "--json"])
        .stdout(Stdio::piped())
        .output();
    let runs: Value = serde_json::from_slice(&runs.unwrap().stdout).unwrap();
    let id = runs.as_array().unwrap().first()?["id"]
        .as_str()?
        .to_string();
    let out = medic_in(data, token)
        .args(["runs", "show", &id, "--json", "--journal"])
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    Some(shown["journal"].as_array().unwrap().clone())
}

/// `medic run` killed (SIGKILL) before each of its journal writes in turn, then `medic
/// resume`: every time exactly one war room is created and exactly one message posted in it,
/// although the attempt in flight at the kill resends its requests.
#[test]
fn a_run_killed_anywhere_and_resumed_opens_one_room_and_posts_once() {
    let hs = Synapse::shared();
    let bot = hs.register("crash-bot");
    let base = common(hs);
    let yaml = [
        HEAD.to_string(),
        step(
            "war-room",
            "communicate",
            with(
                &base,
                json!({"action": "open_war_room", "name": "INC crash test"}),
            ),
            ALLOW_LOCAL,
        ),
        step(
            "announce",
            "communicate",
            with(
                &base,
                json!({"action": "post", "room": "{{ steps.war-room.output.room_id }}",
                "text": "Investigating {{ incident.id }}"}),
            ),
            ALLOW_LOCAL,
        ),
    ]
    .concat();
    let dir = tempfile::tempdir().unwrap();
    let workflow = dir.path().join("workflow.yaml");
    std::fs::write(&workflow, yaml).unwrap();

    // Each run gets its own alert id, so each run's message is told apart by its text.
    let run_once = |data: &Path, n: usize, crash_at: Option<usize>| {
        let alert = data.with_extension("alert.json");
        let alert_doc = json!({"title": "CheckoutErrorRate", "id": format!("INC-{n}")});
        std::fs::write(&alert, alert_doc.to_string()).unwrap();
        let mut cmd = medic_in(data, &bot.token);
        cmd.arg("run").arg(&workflow).arg("--alert").arg(&alert);
        if let Some(k) = crash_at {
            cmd.env("MEDIC_CRASH_AT_WRITE", k.to_string());
        }
        cmd.output().unwrap()
    };
    // Exactly one room more than `before`, holding exactly one message of run `n`.
    let check = |n: usize, before: &[String], what: &str| {
        let rooms = hs.joined_rooms(&bot);
        let new: Vec<&String> = rooms.iter().filter(|r| !before.contains(r)).collect();
        assert_eq!(new.len(), 1, "{what}: new rooms {new:?}");
        let want = format!("Investigating INC-{n}");
        let messages = hs.messages(&bot, new[0]);
        let posted = messages
            .iter()
            .filter(|m| m["content"]["body"] == want)
            .count();
        assert_eq!(
            posted, 1,
            "{what}: {want:?} posted {posted} times: {messages:#?}"
        );
    };

    // A clean run tells how many journal writes there are to crash at.
    let clean = dir.path().join("clean");
    let out = run_once(&clean, 0, None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    check(0, &[], "clean run");
    // The journal's entries, and the finishing append's meta, a write of its own.
    let writes = journal(&clean, &bot.token)
        .expect("the clean run is recorded")
        .len()
        + 1;
    // Kills while createRoom was in flight, so that the resumed attempt sent it again.
    let mut resent_creations = 0;

    for k in 1..=writes {
        let before = hs.joined_rooms(&bot);
        let data = dir.path().join(format!("crash-{k}"));
        let out = run_once(&data, k, Some(k));
        assert!(!out.status.success(), "write {k}: medic run was not killed");
        let what = format!("killed before journal write {k} of {writes}");
        let resumed = medic_in(&data, &bot.token).arg("resume").output().unwrap();
        assert!(
            resumed.status.success(),
            "{what}: resume failed: {}",
            String::from_utf8_lossy(&resumed.stderr)
        );
        let Some(entries) = journal(&data, &bot.token) else {
            // Killed before the run was created: nothing to resume, nothing may be sent.
            assert_eq!(hs.joined_rooms(&bot), before, "{what}");
            continue;
        };
        check(k, &before, &what);
        let text = serde_json::to_string(&entries).unwrap();
        if text.contains("was created by an earlier send of this step") {
            resent_creations += 1;
        }
        assert!(!text.contains(&bot.token), "{what}: token in the journal");
    }
    eprintln!("crashed at {writes} journal writes; {resent_creations} resent createRoom");
    assert!(
        resent_creations >= 1,
        "no kill caught createRoom in flight: the test proves nothing about it"
    );
}

#[test]
fn the_docs_examples_validate_and_wrong_params_are_reported() {
    let (ok, report) = crate::harness::docs::validate_doc_snippets("docs/providers/chat-matrix.md");
    assert!(ok, "{report}");

    // A war-room param on a post, and a post without text: caught before anything runs.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("workflow.yaml");
    let params = json!({"homeserver": "https://matrix.example.org", "token_secret": "MATRIX_TOKEN",
        "action": "post", "room": "#ops:example.org", "invite": ["@a:example.org"]});
    std::fs::write(
        &file,
        format!("{HEAD}{}", step("say", "communicate", params, ALLOW_LOCAL)),
    )
    .unwrap();
    let out = crate::support::medic_validate(&dir.path().join("data"), &file);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{report}");
    assert!(
        report.contains("steps[0].with.invite: chat-matrix params:"),
        "{report}"
    );
    assert!(
        report.contains("\"text\" is a required property"),
        "{report}"
    );
}
