//! k8s-rollout against the Kubernetes API test server over HTTPS with a private CA made
//! fresh by the test: the real kubectl and `medic run` both roll back, with the CA from
//! medic.toml's `[[tls]]` or from a kubeconfig context; certificate problems (unknown
//! issuer, expired, wrong name, no client certificate) fail the step naming the host and
//! the reason; no token or client key reaches the journal or the output.

use crate::kube_api::{KubeApi, ServerTls};
use crate::pki::{Ca, Leaf};
use crate::support::{medic, steps_dir};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const TOKEN: &str = "k8s-token-d41d8cd98f00b204e9800998ecf8427e";

/// A data directory, config files and `medic` commands for one test.
pub struct Medic {
    pub dir: tempfile::TempDir,
}

impl Medic {
    pub fn new() -> Medic {
        Medic {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    pub fn cmd(&self) -> Command {
        let mut c = medic();
        c.arg("--data")
            .arg(self.dir.path().join("data"))
            .arg("--cache")
            .arg(std::env::temp_dir().join("medic-e2e-cli-cache"))
            .arg("--steps")
            .arg(steps_dir())
            .env_remove("MEDIC_STEPS");
        c
    }

    /// `medic run WORKFLOW [--config CONFIG]`: (succeeded, stdout + stderr).
    pub fn run(&self, workflow: &Path, config: Option<&Path>) -> (bool, String) {
        let alert = self.file(
            "alert.json",
            r#"{"title": "WebErrors", "labels": {"alertname": "WebErrors"}}"#,
        );
        let mut c = self.cmd();
        c.arg("run").arg(workflow).arg("--alert").arg(alert);
        if let Some(config) = config {
            c.arg("--config").arg(config);
        }
        text(c.output().unwrap())
    }

    /// Every run's journal as `medic runs show --journal --json` prints it.
    pub fn journals(&self) -> String {
        let out = self.cmd().args(["runs", "--json"]).output().unwrap();
        let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut all = String::new();
        for r in runs.as_array().unwrap() {
            let id = r["id"].as_str().unwrap();
            let out = self
                .cmd()
                .args(["runs", "show", id, "--journal", "--json"])
                .output()
                .unwrap();
            all.push_str(&String::from_utf8_lossy(&out.stdout));
        }
        all
    }

    /// Fails if `secret` appears in the journals, the store's files or `output`.
    pub fn assert_never_seen(&self, secret: &str, output: &str) {
        assert!(!output.contains(secret), "secret in the output:\n{output}");
        assert!(!self.journals().contains(secret), "secret in a journal");
        let mut stack = vec![self.dir.path().join("data")];
        while let Some(p) = stack.pop() {
            if p.is_dir() {
                stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            } else {
                let bytes = std::fs::read(&p).unwrap();
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                    "secret in {}",
                    p.display()
                );
            }
        }
    }
}

fn text(out: Output) -> (bool, String) {
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn seed(k: &KubeApi) {
    k.seed(
        "web",
        &[
            ("registry.local/web:1", "release 1"),
            ("registry.local/web:2", "release 2"),
            ("registry.local/web:3", "release 3 (bad)"),
        ],
    );
}

/// A workflow rolling `web` back; `with` and `extra` are the step's YAML.
fn rollback(m: &Medic, with: &str, extra: &str) -> PathBuf {
    m.file(
        "rollback.yaml",
        &format!(
            "apiVersion: medic/v1\nkind: Workflow\nname: web-rollback\nsteps:\n  - id: undo\n    phase: restore\n    uses: k8s-rollout\n    with: {{ deployment: web, action: undo{with} }}\n{extra}"
        ),
    )
}

/// The step's explicit server, token and grants.
fn explicit(m: &Medic, k: &KubeApi) -> PathBuf {
    rollback(
        m,
        &format!(", server: \"{}\", token_secret: K8S_TOKEN", k.url()),
        &format!(
            "    secrets: [K8S_TOKEN]\n    allow: [\"127.0.0.1:{}\"]\n",
            k.port
        ),
    )
}

/// medic.toml with a secrets file (the token, and `extra_secrets`) and `rest`.
fn config(m: &Medic, extra_secrets: &str, rest: &str) -> PathBuf {
    let secrets = m.file(
        "secrets.toml",
        &format!("K8S_TOKEN = \"{TOKEN}\"\n{extra_secrets}"),
    );
    m.file(
        "medic.toml",
        &format!(
            "tokens = [\"api\"]\n[secrets]\nfrom = \"file\"\npath = \"{}\"\n{rest}",
            secrets.display()
        ),
    )
}

fn server_tls(ca: &Ca, client_ca: Option<&Ca>, client: Option<Leaf>) -> ServerTls {
    ServerTls {
        server: ca.server(&["127.0.0.1", "localhost"]),
        ca_pem: ca.pem(),
        client_ca_pem: client_ca.map(Ca::pem),
        client,
    }
}

fn rolled_back(k: &KubeApi) {
    k.wait_rollout("web");
    assert_eq!(k.image("web"), "registry.local/web:2");
}

/// The step's own requests (kubectl's carry its user agent): all over TLS.
fn step_requests(k: &KubeApi) -> Vec<serde_json::Value> {
    let reqs: Vec<_> = k
        .requests()
        .into_iter()
        .filter(|r| {
            !r["user_agent"]
                .as_str()
                .unwrap_or("")
                .starts_with("kubectl")
        })
        .filter(|r| r["tls"] == true)
        .collect();
    assert!(!reqs.is_empty(), "the step made no HTTPS request");
    reqs
}

#[test]
fn kubectl_and_the_step_roll_back_over_https_with_the_ca_from_medic_toml() {
    let ca = Ca::new("medic test cluster CA");
    let k = KubeApi::tls(Some(TOKEN), server_tls(&ca, None, None));
    seed(&k);
    // The real kubectl, trusting the CA from its kubeconfig, reads the history over HTTPS.
    assert_eq!(k.history("web").len(), 3);
    let m = Medic::new();
    let ca_file = m.file("k8s-ca.pem", &ca.pem());
    let cfg = config(
        &m,
        "",
        &format!(
            "[[tls]]\nhost = \"127.0.0.1:{}\"\nca = \"{}\"\n",
            k.port,
            ca_file.display()
        ),
    );
    let (ok, out) = m.run(&explicit(&m, &k), Some(&cfg));
    assert!(ok, "{out}");
    rolled_back(&k);
    assert!(step_requests(&k).iter().all(|r| r["authorized"] == true));
    m.assert_never_seen(TOKEN, &out);
}

#[test]
fn a_kubeconfig_context_gives_the_step_server_ca_token_and_client_certificate() {
    let ca = Ca::new("medic test cluster CA");
    let client = ca.client("medic-bot");
    let k = KubeApi::tls(
        Some(TOKEN),
        server_tls(&ca, Some(&ca), Some(client.clone())),
    );
    seed(&k);
    // kubectl with the client certificate from the kubeconfig.
    assert_eq!(k.history("web").len(), 3);
    let m = Medic::new();
    // Nothing about the cluster in the workflow: no server, token or allow.
    let workflow = rollback(&m, "", "");
    let cfg = config(
        &m,
        "",
        &format!(
            "[kubernetes]\nkubeconfig = \"{}\"\ncontext = \"test\"\n",
            k.kubeconfig().display()
        ),
    );
    let (ok, out) = text(
        m.cmd()
            .arg("validate")
            .arg(&workflow)
            .arg("--config")
            .arg(&cfg)
            .output()
            .unwrap(),
    );
    assert!(ok, "{out}");
    for used in [
        "context `test`",
        "clusters[test].server",
        "clusters[test].certificate-authority",
        "users[test].client-certificate-data",
        "users[test].client-key-data",
        "users[test].token",
        "secret KUBECONFIG_TOKEN",
        &format!("allow 127.0.0.1:{}", k.port),
    ] {
        assert!(out.contains(used), "validate does not say {used:?}:\n{out}");
    }
    let (ok, out) = m.run(&workflow, Some(&cfg));
    assert!(ok, "{out}");
    rolled_back(&k);
    for r in step_requests(&k) {
        assert_eq!(r["client_cn"], "medic-bot", "{r}");
        assert_eq!(r["authorized"], true, "{r}");
    }
    m.assert_never_seen(TOKEN, &out);
    let key_body: String = client.key_pem.lines().nth(1).unwrap().to_string();
    m.assert_never_seen(&key_body, &out);

    // A context that is not in the file is named, with those that are.
    let bad = m.file(
        "bad.toml",
        &format!(
            "[kubernetes]\nkubeconfig = \"{}\"\ncontext = \"prod\"\n",
            k.kubeconfig().display()
        ),
    );
    let (ok, out) = text(
        m.cmd()
            .arg("validate")
            .arg(&workflow)
            .arg("--config")
            .arg(&bad)
            .output()
            .unwrap(),
    );
    assert!(!ok);
    assert!(out.contains("no context `prod` (contexts: test)"), "{out}");
}

#[test]
fn without_the_ca_the_step_fails_naming_unknown_issuer_and_the_host() {
    let ca = Ca::new("medic test cluster CA");
    let k = KubeApi::tls(Some(TOKEN), server_tls(&ca, None, None));
    seed(&k);
    let m = Medic::new();
    let (ok, out) = m.run(&explicit(&m, &k), Some(&config(&m, "", "")));
    assert!(!ok, "{out}");
    let host = format!("127.0.0.1:{}", k.port);
    let line = out
        .lines()
        .find(|l| l.contains("unknown issuer"))
        .unwrap_or_else(|| panic!("no `unknown issuer` in:\n{out}"));
    assert!(line.contains(&format!("TLS to {host}")), "{line}");
    assert!(!out.to_lowercase().contains("connection error"), "{out}");
    assert_eq!(k.image("web"), "registry.local/web:3", "nothing changed");
}

#[test]
fn expired_and_wrongly_named_certificates_are_named_as_such() {
    let ca = Ca::new("medic test cluster CA");
    let cases = [
        (ca.expired_server(), "has expired"),
        (ca.server(&["k8s.other.example"]), "wrong name"),
    ];
    for (server, reason) in cases {
        let tls = ServerTls {
            server,
            ..server_tls(&ca, None, None)
        };
        let k = KubeApi::tls(Some(TOKEN), tls);
        seed(&k);
        let m = Medic::new();
        let ca_file = m.file("ca.pem", &ca.pem());
        let cfg = config(
            &m,
            "",
            &format!(
                "[[tls]]\nhost = \"127.0.0.1:{}\"\nca = \"{}\"\n",
                k.port,
                ca_file.display()
            ),
        );
        let (ok, out) = m.run(&explicit(&m, &k), Some(&cfg));
        assert!(!ok, "{out}");
        let host = format!("TLS to 127.0.0.1:{}", k.port);
        assert!(
            out.lines().any(|l| l.contains(reason) && l.contains(&host)),
            "no `{reason}` naming {host} in:\n{out}"
        );
    }
}

#[test]
fn with_client_certificates_required_the_right_one_works_and_none_is_refused() {
    let ca = Ca::new("medic test cluster CA");
    let client_ca = Ca::new("medic test client CA");
    let client = client_ca.client("medic");
    // The harness's own kubectl needs a certificate too, or it could not read the result.
    let kubectl_user = client_ca.client("kubectl");
    let k = KubeApi::tls(None, server_tls(&ca, Some(&client_ca), Some(kubectl_user)));
    seed(&k);
    let m = Medic::new();
    let ca_file = m.file("ca.pem", &ca.pem());
    let cert_file = m.file("client.pem", &client.cert_pem);
    let workflow = rollback(
        &m,
        &format!(", server: \"{}\"", k.url()),
        &format!("    allow: [\"127.0.0.1:{}\"]\n", k.port),
    );
    let tls = format!(
        "[[tls]]\nhost = \"127.0.0.1:{}\"\nca = \"{}\"\n",
        k.port,
        ca_file.display()
    );
    // No client certificate: the server refuses the handshake.
    let (ok, out) = m.run(&workflow, Some(&config(&m, "", &tls)));
    assert!(!ok, "{out}");
    let host = format!("TLS to 127.0.0.1:{}", k.port);
    assert!(
        out.lines()
            .any(|l| l.contains(&host) && l.contains("client certificate")),
        "{out}"
    );
    assert_eq!(k.image("web"), "registry.local/web:3");

    // The right one: the key comes from the secrets source, never from a file in git.
    let m = Medic::new();
    let key = toml_string(&client.key_pem);
    let cfg = config(
        &m,
        &format!("K8S_CLIENT_KEY = {key}\n"),
        &format!(
            "{tls}client_cert = \"{}\"\nclient_key_secret = \"K8S_CLIENT_KEY\"\n",
            cert_file.display()
        ),
    );
    let (ok, out) = m.run(&workflow, Some(&cfg));
    assert!(ok, "{out}");
    rolled_back(&k);
    assert!(step_requests(&k).iter().all(|r| r["client_cn"] == "medic"));
    let key_body = client.key_pem.lines().nth(1).unwrap().to_string();
    m.assert_never_seen(&key_body, &out);
}

#[test]
fn skipping_verification_is_warned_on_every_use_and_refused_by_strict_validation() {
    let ca = Ca::new("medic test cluster CA");
    let k = KubeApi::tls(Some(TOKEN), server_tls(&ca, None, None));
    seed(&k);
    let m = Medic::new();
    let cfg = config(
        &m,
        "",
        &format!(
            "[[tls]]\nhost = \"127.0.0.1:{}\"\ninsecure_skip_verify = true\n",
            k.port
        ),
    );
    let workflow = explicit(&m, &k);
    let validate = |strict: bool| {
        let mut c = m.cmd();
        c.arg("validate").arg(&workflow).arg("--config").arg(&cfg);
        if strict {
            c.arg("--strict");
        }
        text(c.output().unwrap())
    };
    let (ok, out) = validate(false);
    assert!(
        ok && out.contains("warning: TLS certificate verification is off"),
        "{out}"
    );
    let (ok, out) = validate(true);
    assert!(!ok && out.contains("--strict refuses it"), "{out}");
    let (ok, out) = m.run(&workflow, Some(&cfg));
    assert!(ok, "{out}");
    let warnings = out
        .matches("WARNING: TLS certificate verification is OFF for 127.0.0.1")
        .count();
    let requests = step_requests(&k).len();
    assert_eq!(warnings, requests, "one warning per connection:\n{out}");
    rolled_back(&k);
}

/// A TOML basic string holding `s` (newlines escaped).
fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\n', "\\n"))
}

/// TLS on the step itself (no `[[tls]]` in medic.toml): the workflow's own CA and client
/// certificate, with the key from a secret the step is granted; a host missing from
/// `allow` and a missing file are refused when the workflow loads, with their positions;
/// `--strict` refuses a step that skips verification.
#[test]
fn tls_on_the_step_itself_gives_the_ca_and_the_client_certificate() {
    let ca = Ca::new("medic test cluster CA");
    let client_ca = Ca::new("medic test client CA");
    let client = client_ca.client("medic-step");
    let k = KubeApi::tls(
        None,
        server_tls(&ca, Some(&client_ca), Some(client_ca.client("kubectl"))),
    );
    seed(&k);
    let m = Medic::new();
    std::fs::create_dir(m.dir.path().join("certs")).unwrap();
    m.file("certs/ca.pem", &ca.pem());
    m.file("certs/client.pem", &client.cert_pem);
    let key = toml_string(&client.key_pem);
    let cfg = config(&m, &format!("K8S_CLIENT_KEY = {key}\n"), "");
    let step = |host: &str, ca: &str| {
        rollback(
            &m,
            &format!(", server: \"{}\"", k.url()),
            &format!(
                "    secrets: [K8S_CLIENT_KEY]\n    allow: [\"127.0.0.1:{port}\"]\n    tls:\n      - host: \"{host}\"\n        ca: {ca}\n        client-cert: certs/client.pem\n        client-key-secret: K8S_CLIENT_KEY\n",
                port = k.port
            ),
        )
    };
    let right_host = format!("127.0.0.1:{}", k.port);

    // Refused at load, before anything runs: a host the step may not call, a missing file.
    let (ok, out) = m.run(&step("127.0.0.1:1", "certs/ca.pem"), Some(&cfg));
    assert!(!ok, "{out}");
    assert!(
        out.contains("rollback.yaml:12:")
            && out.contains("steps[0].tls[0].host")
            && out.contains("not in the step's `allow` list"),
        "{out}"
    );
    let (ok, out) = m.run(&step(&right_host, "certs/nope.pem"), Some(&cfg));
    assert!(!ok, "{out}");
    assert!(
        out.contains("steps[0].tls[0].ca") && out.contains("nope.pem"),
        "{out}"
    );
    assert_eq!(k.image("web"), "registry.local/web:3");

    // The step's CA and client certificate (paths relative to the workflow file) work.
    let workflow = step(&right_host, "certs/ca.pem");
    let (ok, out) = m.run(&workflow, Some(&cfg));
    assert!(ok, "{out}");
    rolled_back(&k);
    assert!(
        step_requests(&k)
            .iter()
            .all(|r| r["client_cn"] == "medic-step")
    );
    let key_body = client.key_pem.lines().nth(1).unwrap().to_string();
    m.assert_never_seen(&key_body, &out);

    // Skipping verification on the step: a warning, refused by --strict.
    let insecure = m.file(
        "insecure.yaml",
        &format!(
            "apiVersion: medic/v1\nkind: Workflow\nname: insecure\nsteps:\n  - id: undo\n    phase: restore\n    uses: k8s-rollout\n    with: {{ deployment: web, action: undo, server: \"{}\" }}\n    allow: [\"{right_host}\"]\n    tls:\n      - host: \"{right_host}\"\n        insecure-skip-verify: true\n",
            k.url()
        ),
    );
    let validate = |strict: bool| {
        let mut c = m.cmd();
        c.arg("validate").arg(&insecure).arg("--config").arg(&cfg);
        if strict {
            c.arg("--strict");
        }
        text(c.output().unwrap())
    };
    let (ok, out) = validate(false);
    assert!(
        ok && out.contains("TLS certificate verification is off")
            && out.contains("step undo tls[0]"),
        "{out}"
    );
    let (ok, out) = validate(true);
    assert!(!ok && out.contains("--strict refuses it"), "{out}");
}
