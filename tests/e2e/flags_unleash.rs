//! The `flags-unleash` step through the real engine against a real Unleash: after each run
//! the flag's state is read back through Unleash's own Admin API, not the step's output.
//!
//! One Unleash (with its PostgreSQL) serves every test here: a cold start runs its
//! migrations, so starting one per test would multiply that cost. Each test uses its own
//! feature flag, so they do not interfere when run in parallel.

use crate::support::Ran;
use crate::unleash::{ADMIN_TOKEN, Unleash};
use medic_core::{Event, HostCall, RunStatus};
use std::sync::OnceLock;

pub(crate) fn unleash() -> &'static Unleash {
    static UNLEASH: OnceLock<Unleash> = OnceLock::new();
    UNLEASH.get_or_init(Unleash::start)
}

pub(crate) const PROJECT: &str = "default";
pub(crate) const ENV: &str = "production";

/// A one-step workflow: `flags-unleash` with `action` on `feature`, granted the Unleash host
/// (unless `allow` says otherwise) and the token secret, with 3 attempts so a test can see
/// that a non-retryable failure is not retried.
fn workflow(url: &str, feature: &str, action: &str, allow: &str) -> String {
    format!(
        r#"apiVersion: medic/v1
kind: Workflow
name: retoggle
steps:
  - id: flag
    phase: restore
    uses: flags-unleash
    with:
      url: "{url}"
      feature: {feature}
      environment: {ENV}
      action: {action}
      token_secret: UNLEASH_TOKEN
    secrets: [UNLEASH_TOKEN]
    allow: [{allow}]
    retry: {{ attempts: 3, backoff: 10ms }}
"#
    )
}

pub(crate) async fn run(yaml: &str, token: &str) -> Ran {
    crate::support::run(yaml, &[("UNLEASH_TOKEN", token)]).await
}

pub(crate) fn allow(u: &Unleash) -> String {
    u.url.trim_start_matches("http://").to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn disable_turns_the_flag_off_and_the_timeline_says_so() {
    let u = unleash();
    u.create_feature(PROJECT, "checkout-disable");
    u.set_enabled(PROJECT, "checkout-disable", ENV, true);

    let yaml = workflow(&u.url, "checkout-disable", "disable", &allow(u));
    let ran = run(&yaml, ADMIN_TOKEN).await;
    assert_eq!(ran.status, RunStatus::Succeeded, "{}", ran.timeline());

    assert!(
        !u.enabled(PROJECT, "checkout-disable", ENV),
        "Unleash still has it on"
    );
    // Only the named environment changed.
    assert!(!u.enabled(PROJECT, "checkout-disable", "development"));
    let out = ran.output("flag");
    assert_eq!(out["feature"], "checkout-disable");
    assert_eq!(out["environment"], ENV);
    assert_eq!(
        (&out["previous"], &out["current"], &out["changed"]),
        (&true.into(), &false.into(), &true.into()),
        "{out}"
    );
    let timeline = ran.timeline();
    let note = "note: flags-unleash: feature `checkout-disable` in environment `production` \
                (project `default`) disabled (was enabled)";
    assert!(timeline.contains(note), "{timeline}");
    // The admin token went out in a header the journal records: redacted there.
    let journal = ran.journal();
    assert!(
        !journal.contains(ADMIN_TOKEN),
        "token in journal: {journal}"
    );
    assert!(journal.contains("[redacted:UNLEASH_TOKEN]"), "{journal}");
}

#[tokio::test(flavor = "multi_thread")]
async fn enable_turns_the_flag_on() {
    let u = unleash();
    u.create_feature(PROJECT, "checkout-enable");
    assert!(!u.enabled(PROJECT, "checkout-enable", ENV));

    let ran = run(
        &workflow(&u.url, "checkout-enable", "enable", &allow(u)),
        ADMIN_TOKEN,
    )
    .await;
    assert_eq!(ran.status, RunStatus::Succeeded, "{}", ran.timeline());
    assert!(
        u.enabled(PROJECT, "checkout-enable", ENV),
        "Unleash has it off"
    );
    let out = ran.output("flag");
    assert_eq!(out["previous"], false, "{out}");
    assert_eq!(out["current"], true, "{out}");
    assert_eq!(out["changed"], true, "{out}");
    // Read, change, read back.
    let methods: Vec<String> = ran.requests().into_iter().map(|(m, _)| m).collect();
    assert_eq!(methods, ["GET", "POST", "GET"]);
    assert!(ran.requests()[1].1.ends_with(
        "/api/admin/projects/default/features/checkout-enable/environments/production/on"
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn disabling_a_disabled_flag_is_a_no_op_success() {
    let u = unleash();
    u.create_feature(PROJECT, "checkout-noop");
    let ran = run(
        &workflow(&u.url, "checkout-noop", "disable", &allow(u)),
        ADMIN_TOKEN,
    )
    .await;
    assert_eq!(ran.status, RunStatus::Succeeded, "{}", ran.timeline());
    assert!(!u.enabled(PROJECT, "checkout-noop", ENV));
    let out = ran.output("flag");
    assert_eq!(out["previous"], false, "{out}");
    assert_eq!(out["current"], false, "{out}");
    assert_eq!(out["changed"], false, "{out}");
    // Nothing was sent that could change Unleash: one read only.
    let requests = ran.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].0, "GET");
    let timeline = ran.timeline();
    assert!(
        timeline.contains("already disabled; no change"),
        "{timeline}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn get_reads_the_state_without_changing_it() {
    let u = unleash();
    u.create_feature(PROJECT, "checkout-get");
    u.set_enabled(PROJECT, "checkout-get", ENV, true);
    let ran = run(
        &workflow(&u.url, "checkout-get", "get", &allow(u)),
        ADMIN_TOKEN,
    )
    .await;
    assert_eq!(ran.status, RunStatus::Succeeded, "{}", ran.timeline());
    let out = ran.output("flag");
    assert_eq!(out["current"], true, "{out}");
    assert_eq!(out["previous"], true, "{out}");
    assert_eq!(out["changed"], false, "{out}");
    assert!(u.enabled(PROJECT, "checkout-get", ENV));
    assert!(ran.timeline().contains("is enabled"), "{}", ran.timeline());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_feature_is_a_clear_error_and_not_retried() {
    let u = unleash();
    let ran = run(
        &workflow(&u.url, "no-such-flag", "disable", &allow(u)),
        ADMIN_TOKEN,
    )
    .await;
    assert_eq!(ran.status, RunStatus::Failed);
    let step = &ran.state.steps["flag"];
    assert_eq!(step.attempt, 1, "a 404 is not retried: {}", ran.timeline());
    let reason = ran.state.reason.clone().unwrap_or_default();
    assert!(
        reason.contains(
            "feature `no-such-flag` in environment `production` (project `default`) not found"
        ),
        "{reason}"
    );
    // Unleash's own words and status are passed on.
    assert!(reason.contains("404"), "{reason}");
    assert!(
        reason.contains(r#"no feature named \"no-such-flag\""#)
            || reason.contains(r#"no feature named "no-such-flag""#),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_token_is_refused_not_retried_and_never_recorded() {
    let u = unleash();
    u.create_feature(PROJECT, "checkout-badtoken");
    u.set_enabled(PROJECT, "checkout-badtoken", ENV, true);
    let bad = "*:*.not-the-admin-token-9d8c7b6a";
    let ran = run(
        &workflow(&u.url, "checkout-badtoken", "disable", &allow(u)),
        bad,
    )
    .await;
    assert_eq!(ran.status, RunStatus::Failed);
    assert_eq!(ran.state.steps["flag"].attempt, 1, "{}", ran.timeline());
    let reason = ran.state.reason.clone().unwrap_or_default();
    assert!(
        reason.contains("Unleash refused the token in secret `UNLEASH_TOKEN` (401)"),
        "{reason}"
    );
    assert!(reason.contains("You must log in"), "{reason}");
    assert!(
        u.enabled(PROJECT, "checkout-badtoken", ENV),
        "flag changed anyway"
    );
    let journal = ran.journal();
    assert!(!journal.contains(bad), "token in journal: {journal}");
    assert!(!ran.timeline().contains(bad));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ungranted_host_is_denied_and_nothing_changes() {
    let u = unleash();
    u.create_feature(PROJECT, "checkout-denied");
    u.set_enabled(PROJECT, "checkout-denied", ENV, true);
    let ran = run(
        &workflow(&u.url, "checkout-denied", "disable", "flags.internal:4242"),
        ADMIN_TOKEN,
    )
    .await;
    assert_eq!(ran.status, RunStatus::Failed);
    assert_eq!(ran.state.steps["flag"].attempt, 1, "{}", ran.timeline());
    let reason = ran.state.reason.clone().unwrap_or_default();
    // The host reports the violation itself, naming the refused host.
    let host = allow(u);
    assert!(
        reason.contains(&format!("host not allowed: {host}")),
        "{reason}"
    );
    let denied = ran.entries.iter().any(|e| {
        matches!(
            &e.event,
            Event::HostCall {
                call: HostCall::HttpDenied { .. },
                ..
            }
        )
    });
    assert!(denied, "{}", ran.timeline());
    assert!(ran.requests().is_empty(), "a request went out");
    assert!(u.enabled(PROJECT, "checkout-denied", ENV));
}

#[test]
fn the_documented_example_validates_and_the_schema_catches_typos() {
    crate::harness::docs::assert_doc_examples_validate("docs/providers/flags-unleash.md");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("typo.yaml");
    let typo = workflow("http://unleash.internal", "f", "toggle", "unleash.internal").replace(
        "      token_secret:",
        "      enabled: false\n      token_secret:",
    );
    std::fs::write(&file, typo).unwrap();
    let out = crate::support::medic_validate(&dir.path().join("data"), &file);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains("steps[0].with.action: flags-unleash params:"),
        "{stdout}"
    );
    assert!(stdout.contains("enabled"), "{stdout}");
}

/// Nothing listening (Unleash down or restarting) may clear up: the attempt is retried.
#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_unleash_is_retried() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = closed.local_addr().unwrap().to_string();
    drop(closed);
    let url = format!("http://{host}");
    let ran = run(&workflow(&url, "checkout", "disable", &host), ADMIN_TOKEN).await;
    assert_eq!(ran.status, RunStatus::Failed);
    assert_eq!(ran.state.steps["flag"].attempt, 3, "{}", ran.timeline());
    let reason = ran.state.reason.clone().unwrap_or_default();
    let expected = format!("request to {url}/api/admin/projects/default/features/checkout failed");
    assert!(reason.contains(&expected), "{reason}");
}
