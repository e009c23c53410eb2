//! medic end to end. Each module is one capability, exercised the way a user would:
//! through the `medic` binary or the engine crates with the real sandbox and sled store.

mod harness;
// The harness modules every test names (`crate::support::…`), at the crate root.
use harness::{kube_api, support, synapse, unleash};

/// One payload, one reading: an Alertmanager group through `medic run` and `medic serve`
/// gives the same incidents, ids and alerts.
mod alert_intake;
/// Two Alertmanager replicas in a cluster both notify `medic serve`: an alert that fires
/// and resolves runs its workflow once.
mod alertmanager_ha;
/// chat-matrix against a real Synapse: war rooms and posts read back as a human would.
mod chat_matrix;
/// chat-webhook against a Slack-like receiver: the payload shape, clear refusals, no URL leaks.
mod chat_webhook;
/// The command line itself: schema output, clear errors for unusable stores and unknown runs.
mod cli;
/// Killed at every journal write and at random instants: runs resume, effects never repeat.
mod crash;
/// `medic drill` on the hand-written scenarios: the suite, faults, fork, crash, divergence.
mod drills;
/// Drills recorded from real runs of the restore examples, replayed with every service down.
mod drills_record;
/// One workflow file with `vars`, run against two environments' configs, reaches two
/// services; an `allow` from an unset var is an error at load.
mod environments;
/// The checkout-flag example runs end to end with `medic run` against a local service.
mod example_run;
/// The restore examples (bad-flag, bad-deploy) run through their scripts against real
/// services; the outcome is read back from Unleash, Synapse, kubectl and Prometheus.
mod examples_restore;
/// The guarded-rollout example: real Unleash moves 5% → 25% and back to 0% when the real
/// Prometheus sees the regression.
mod examples_rollout;
/// flags-unleash `set_rollout` against a real Unleash: the flexible-rollout percentage,
/// read back from Unleash; the strategy's other settings kept; unsafe setups refused.
mod flags_rollout;
/// The flags-unleash step against a real Unleash: enable, disable, no-op, refusals, grants.
mod flags_unleash;
/// Human gates (API, CLI, deadline default, restarts) and resolution reaching running runs.
mod gates;
/// Every hostile guest fails only its own step, with a clear reason; the engine carries on.
mod hostile_guests;
/// `k8s-rollout`'s roll-forward actions (set_image, restart, scale) through the engine,
/// checked with the real kubectl; a retried attempt never restarts twice.
mod k8s_roll_forward;
/// The `k8s-rollout` step through the engine against the Kubernetes API test server,
/// checked with the real kubectl; an interrupted undo does not flip back.
mod k8s_rollout;
/// k8s-rollout over HTTPS with a private CA (medic.toml, kubeconfig), mutual TLS, and
/// certificate problems named with the host and the reason.
mod k8s_tls;
/// The Kubernetes API test server is faithful: the real kubectl's rollout commands on it.
mod kube;
/// `medic run` of a rollback killed at every journal write: resumed, it lands once, on the
/// revision chosen before the kill.
mod kube_crash;
/// A fresh private CA and certificates per TLS test (rcgen).
mod pki;
/// Python and JavaScript steps run like Rust ones: HTTP, secrets, notes, state, grants, limits.
mod polyglot;
/// Postmortem drafts of real runs on the API and the CLI; journals recorded for the goldens.
mod postmortem;
/// The prom-check step against a real Prometheus: thresholds, consecutive checks, empty results.
mod prom_check;
/// Real Prometheus and Alertmanager deliver the notifications `medic serve` is tested
/// against, proven with a plain receiver.
mod prom_stack;
/// A resumed attempt replays its host calls; a different call is a nondeterminism error.
mod replay;
/// Unfinished runs resume from the journal; retry timers survive a restart.
mod resume;
/// `medic serve`: alerts over HTTP start runs; a kill -9 after acknowledging loses nothing.
mod serve;
/// `medic step new|build|test`: scaffold a step in Rust, Python or JS, build it, try it out.
mod step_tool;
/// Alert storms and a long life: severity lanes put a critical alert ahead of a backlog,
/// storm control caps runs per workflow, retention removes finished runs.
mod storms;
/// `medic validate` checks components and their params schemas.
mod validate_components;
/// The web view in a real headless Chromium: sign-in, live runs, gates, CSRF, "not live".
mod web;
/// Components built against every released `medic:step` WIT version run; unknown ones are named.
mod wit_versions;
/// Retries, conditions, templating, durable step state and secrets through real components.
mod workflow_semantics;
