//! `medic serve` through a real socket, as careless and hostile senders use it (issue 12):
//! slow and half-sent requests, declared sizes over the limit, too many connections,
//! error answers in one JSON shape, concurrent duplicate deliveries, strict input and a
//! bounded shutdown. Secrets and a full disk are in `http/secrets.rs` and
//! `http/full_disk.rs`, runs parked at gates in `http/parked.rs` (modules of this binary).

#[path = "http/compaction.rs"]
mod compaction;
#[path = "http/full_disk.rs"]
mod full_disk;
#[path = "http/parked.rs"]
mod parked;
#[path = "http/secrets.rs"]
mod secrets;
mod support;

use std::time::{Duration, Instant};
use support::{ECHO, Server, TOKEN, eventually, pagerduty_sign, payload};

const JSON: (&str, &str) = ("content-type", "application/json");
const AUTH: (&str, &str) = ("authorization", "Bearer t0ken");

#[tokio::test(flavor = "multi_thread")]
async fn a_client_sending_half_its_headers_is_cut_off() {
    let s = Server::start("header_read_timeout = \"1s\"\n", &[ECHO]).await;
    let started = Instant::now();
    let mut half = s
        .open(b"POST /intake/alertmanager HTTP/1.1\r\nhost: x\r\ncontent-type: applic")
        .await;
    // The server closes the connection; without a timeout this read never ends.
    let answer = support::read_response(&mut half, Duration::from_secs(10)).await;
    assert!(answer.is_some(), "connection still open after 10 s");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "closed too early: {waited:?}"
    );
    // The server still serves others.
    let r = s.request("GET", "/healthz", &[], b"").await;
    assert_eq!(r.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_declared_body_over_the_limit_gets_413_at_once_and_one_never_sent_408() {
    let s = Server::start("body_read_timeout = \"1s\"\n", &[ECHO]).await;
    // 2 MB declared against the default 1 MiB, and never sent.
    let head = format!(
        "POST /intake/alertmanager HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\ncontent-type: application/json\r\ncontent-length: 2000000\r\n\r\n{{\"ver"
    );
    let started = Instant::now();
    let r = s
        .raw(head.as_bytes(), Duration::from_secs(5))
        .await
        .expect("an answer within 5 s");
    assert_eq!(r.status, 413, "{r:?}");
    assert!(r.error().contains("max_body_bytes"), "{r:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // Within the limit but never sent: 408 once body_read_timeout passes.
    let head = format!(
        "POST /intake/alertmanager HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{{\"ver"
    );
    let r = s
        .raw(head.as_bytes(), Duration::from_secs(5))
        .await
        .expect("an answer within 5 s");
    assert_eq!(r.status, 408, "{r:?}");
    assert!(r.error().contains("body_read_timeout"), "{r:?}");
    // Nothing was accepted.
    assert_eq!(s.get("/api/incidents").await, serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_over_the_cap_get_503_and_the_cap_frees_up() {
    let s = Server::start(
        "max_connections = 2\nheader_read_timeout = \"2s\"\n",
        &[ECHO],
    )
    .await;
    let a = s.open(b"GET /healthz HTTP/1.1\r\nhost: x\r\n").await;
    let b = s.open(b"GET /healthz HTTP/1.1\r\nhost: x\r\n").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = s.request("GET", "/healthz", &[], b"").await;
    assert_eq!(r.status, 503, "{r:?}");
    assert!(r.error().contains("max_connections = 2"), "{r:?}");
    drop((a, b));
    let r = eventually("a free connection slot", async || {
        let r = s.request("GET", "/healthz", &[], b"").await;
        (r.status == 200).then_some(r)
    })
    .await;
    assert_eq!(r.body, "ok\n");
}

/// One refused request: method, target, headers, body, the status and the error it names.
type Case<'a> = (
    &'a str,
    &'a str,
    Vec<(&'a str, &'a str)>,
    Vec<u8>,
    u16,
    &'a str,
);

/// (413 and 408 are above, 503 in `full_disk` and the connection cap.)
#[tokio::test(flavor = "multi_thread")]
async fn every_error_answer_is_the_documented_json() {
    let s = Server::start("", &[ECHO]).await;
    let long_uri = format!("/api/runs/{}", "x".repeat(9000));
    let big_header = "y".repeat(20_000);
    let cases: Vec<Case> = vec![
        (
            "GET",
            "/intake/alertmanager",
            vec![AUTH],
            vec![],
            405,
            "does not take GET",
        ),
        (
            "GET",
            "/nowhere",
            vec![AUTH],
            vec![],
            404,
            "no such endpoint: /nowhere",
        ),
        ("GET", &long_uri, vec![AUTH], vec![], 414, "at most 8192"),
        (
            "GET",
            "/api/runs",
            vec![AUTH, ("x-big", &big_header)],
            vec![],
            431,
            "header",
        ),
        (
            "POST",
            "/intake/alertmanager",
            vec![JSON],
            payload("alertmanager-group.json"),
            401,
            "bearer token",
        ),
        (
            "POST",
            "/intake/alertmanager",
            vec![AUTH, ("content-type", "application/jsonfoo")],
            payload("alertmanager-group.json"),
            415,
            "application/jsonfoo",
        ),
        (
            "GET",
            "/api/runs/nope",
            vec![AUTH],
            vec![],
            404,
            "no run with id nope",
        ),
    ];
    for (method, path, headers, body, want, needle) in cases {
        let r = s.request(method, path, &headers, &body).await;
        assert_eq!(
            r.status,
            want,
            "{method} {}: {r:?}",
            &path[..path.len().min(40)]
        );
        let e = r.error();
        assert!(
            e.contains(needle),
            "{want}: {e:?} should mention {needle:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_identical_signed_deliveries_are_counted_once() {
    let s = Server::start("[pagerduty]\nsecrets = [\"pd-signing-secret\"]\n", &[ECHO]).await;
    let body = payload("pagerduty-triggered.json");
    let sig = format!("v1={}", pagerduty_sign("pd-signing-secret", &body));
    let s = std::sync::Arc::new(s);
    let rounds = 30;
    let mut accepted = 0;
    let mut duplicates = 0;
    for round in 0..rounds {
        let id = format!("webhook-{round}");
        let sends: Vec<_> = (0..16)
            .map(|_| {
                let (s, body, sig, id) = (s.clone(), body.clone(), sig.clone(), id.clone());
                tokio::spawn(async move {
                    let headers = [
                        JSON,
                        ("x-pagerduty-signature", sig.as_str()),
                        ("x-webhook-id", id.as_str()),
                    ];
                    s.request("POST", "/intake/pagerduty", &headers, &body)
                        .await
                })
            })
            .collect();
        for send in sends {
            let r = send.await.unwrap();
            assert_eq!(r.status, 202, "{r:?}");
            let v = r.json();
            if v["duplicate"] == true {
                duplicates += 1;
            } else {
                assert_eq!(v["accepted"], 1, "{v}");
                accepted += 1;
            }
        }
    }
    assert_eq!((accepted, duplicates), (rounds, rounds * 15));
    let incidents = eventually("every delivery handled", async || {
        let i = s.get("/api/incidents").await;
        (i[0]["alerts"] == rounds).then_some(i)
    })
    .await;
    assert_eq!(incidents.as_array().unwrap().len(), 1, "{incidents}");
    // Settled: nothing more arrives later.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(s.get("/api/incidents").await[0]["alerts"], rounds);
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicate_keys_non_json_types_and_personal_tokens_are_refused_at_intake() {
    let s = Server::start("[users]\nalice = \"alice-personal-token\"\n", &[ECHO]).await;
    let twice = br#"{"version":"4","status":"firing","receiver":"medic","groupKey":"g","alerts":[{"status":"firing","labels":{"alertname":"A"},"annotations":{},"startsAt":"2026-11-22T03:00:00Z","fingerprint":"f1"}],"alerts":[]}"#;
    let r = s
        .request("POST", "/intake/alertmanager", &[AUTH, JSON], twice)
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.error().contains("duplicate key `alerts`"), "{r:?}");

    let am = payload("alertmanager-group.json");
    let r = s
        .request(
            "POST",
            "/intake/alertmanager",
            &[AUTH, ("content-type", "application/jsonfoo")],
            &am,
        )
        .await;
    assert_eq!(r.status, 415, "{r:?}");
    // Parameters are fine.
    let r = s
        .request(
            "POST",
            "/intake/alertmanager",
            &[AUTH, ("content-type", "application/json; charset=utf-8")],
            &am,
        )
        .await;
    assert_eq!(r.status, 202, "{r:?}");

    let alice = ("authorization", "Bearer alice-personal-token");
    let r = s
        .request("POST", "/intake/alertmanager", &[alice, JSON], &am)
        .await;
    assert_eq!(r.status, 403, "{r:?}");
    assert!(r.error().contains("personal tokens"), "{r:?}");
    // The same token reads the API.
    let r = s.request("GET", "/api/runs", &[alice], b"").await;
    assert_eq!(r.status, 200, "{r:?}");

    let open = Server::start(
        "intake_accepts_user_tokens = true\n[users]\nalice = \"alice-personal-token\"\n",
        &[ECHO],
    )
    .await;
    let r = open
        .request("POST", "/intake/alertmanager", &[alice, JSON], &am)
        .await;
    assert_eq!(r.status, 202, "{r:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_with_a_half_sent_request_open_ends_within_the_grace_period() {
    let mut s = Server::start(
        "shutdown_grace = \"1s\"\nheader_read_timeout = \"60s\"\nbody_read_timeout = \"60s\"\n",
        &[ECHO],
    )
    .await;
    let _half_headers = s.open(b"GET /api/runs HTTP/1.1\r\nhost: x\r\n").await;
    let _half_body = s
        .open(
            format!("POST /intake/alertmanager HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{{")
                .as_bytes(),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    s.signal_stop();
    let stopped = tokio::time::timeout(Duration::from_secs(5), &mut s.stopped)
        .await
        .expect("serve returned within 5 s")
        .unwrap()
        .unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(!stopped.connections_closed, "{stopped:?}");
    assert!(stopped.attempts_finished, "{stopped:?}");
}
