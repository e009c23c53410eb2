//! One workflow file, two environments: `vars:` in the workflow, `[vars]` in each
//! environment's medic.toml. Run against two configs, the same file reaches two different
//! Kubernetes API servers; an `allow` built from a var that is not set is an error at load.

use crate::k8s_tls::Medic;
use crate::kube_api::KubeApi;

/// The server and its host come from vars; neither has a default, so each environment
/// must set them.
const WORKFLOW: &str = "apiVersion: medic/v1
kind: Workflow
name: web-history
vars:
  k8s_server: ~
  k8s_host: ~
  namespace: default
steps:
  - id: history
    phase: detect
    uses: k8s-rollout
    with: { server: \"{{ vars.k8s_server }}\", namespace: \"{{ vars.namespace }}\", deployment: web, action: history }
    allow: [\"{{ vars.k8s_host }}\"]
";

fn environment(m: &Medic, name: &str, k: &KubeApi) -> std::path::PathBuf {
    m.file(
        &format!("{name}.toml"),
        &format!(
            "tokens = [\"api\"]\n[vars]\nk8s_server = \"{}\"\nk8s_host = \"127.0.0.1:{}\"\n",
            k.url(),
            k.port
        ),
    )
}

/// The step's requests a server received (kubectl's carry its user agent).
fn step_requests(k: &KubeApi) -> usize {
    k.requests()
        .iter()
        .filter(|r| {
            !r["user_agent"]
                .as_str()
                .unwrap_or("")
                .starts_with("kubectl")
        })
        .filter(|r| r["method"] == "GET")
        .count()
}

#[test]
fn one_workflow_reaches_the_service_of_each_environment() {
    let staging = KubeApi::start();
    let production = KubeApi::start();
    staging.seed("web", &[("registry.local/web:1", "staging 1")]);
    production.seed(
        "web",
        &[
            ("registry.local/web:1", "production 1"),
            ("registry.local/web:2", "production 2"),
        ],
    );
    let seeded = (step_requests(&staging), step_requests(&production));
    let m = Medic::new();
    let workflow = m.file("history.yaml", WORKFLOW);

    let (ok, out) = m.run(&workflow, Some(&environment(&m, "staging", &staging)));
    assert!(ok, "{out}");
    assert!(step_requests(&staging) > seeded.0, "staging not reached");
    assert_eq!(
        step_requests(&production),
        seeded.1,
        "production reached from staging"
    );

    let (ok, out) = m.run(&workflow, Some(&environment(&m, "production", &production)));
    assert!(ok, "{out}");
    assert!(
        step_requests(&production) > seeded.1,
        "production not reached"
    );
    // Each run's snapshot holds its environment's grant and values.
    let journals = m.journals();
    for k in [&staging, &production] {
        assert!(
            journals.contains(&format!("127.0.0.1:{}", k.port)),
            "{journals}"
        );
    }
    assert!(journals.contains("production 2"), "production's history");
}

#[test]
fn an_allow_built_from_an_unset_var_is_an_error_at_load_with_its_position() {
    let m = Medic::new();
    let workflow = m.file("history.yaml", WORKFLOW);
    // No config: k8s_server and k8s_host have no value.
    let (ok, out) = m.run(&workflow, None);
    assert!(!ok, "{out}");
    let at = format!("{}:13:17", workflow.display());
    let line = out
        .lines()
        .find(|l| l.contains("allow"))
        .unwrap_or_else(|| panic!("no allow error in:\n{out}"));
    assert!(line.starts_with(&at), "expected {at}: {line}");
    assert!(line.contains("`vars.k8s_host` is not set"), "{line}");
    // Nothing ran: the error came at load.
    assert!(m.journals().is_empty() || !m.journals().contains("attempt_started"));
    let (ok, out) = {
        let o = m.cmd().arg("validate").arg(&workflow).output().unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    assert!(!ok && out.contains("`vars.k8s_host` is not set"), "{out}");
}
