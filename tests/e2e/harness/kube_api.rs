//! The Kubernetes API test server (tests/k8s-api/server.py) and the real kubectl against it:
//! each `KubeApi` is a server on a free 127.0.0.1 port with its own kubeconfig and kubectl
//! cache in a temp dir, killed on drop. With [`ServerTls`] the API port serves HTTPS (and
//! the harness talks to a second, plain port); the kubeconfig then names the CA, the token
//! and the client certificate, as a real cluster's does.

use crate::support::repo;
use base64::Engine as _;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

pub struct KubeApi {
    child: Child,
    pub port: u16,
    /// The plain-HTTP port the harness uses (the API port itself without TLS).
    plain_port: u16,
    dir: tempfile::TempDir,
    token: Option<String>,
    tls: Option<ServerTls>,
}

/// HTTPS for the test server: its certificate, the CA kubectl and medic should trust, and
/// optionally client-certificate authentication.
#[derive(Clone)]
pub struct ServerTls {
    /// The server's certificate and key.
    pub server: crate::pki::Leaf,
    /// The CA written into the kubeconfig as `certificate-authority`.
    pub ca_pem: String,
    /// Require client certificates signed by this CA (PEM).
    pub client_ca_pem: Option<String>,
    /// The client certificate the kubeconfig's user presents.
    pub client: Option<crate::pki::Leaf>,
}

/// The real kubectl, or a failure that says how to install it.
fn kubectl_binary() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("kubectl"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "kubectl is not installed: run scripts/deps.d/30-kubectl (or scripts/install-test-deps)"
        )
    })
}

impl KubeApi {
    /// A server whose rollouts become available 200 ms after they start.
    pub fn start() -> KubeApi {
        Self::with(None, 200)
    }

    /// A server requiring `Bearer <token>` when given, with this rollout delay.
    pub fn with(token: Option<&str>, rollout_delay_ms: u64) -> KubeApi {
        Self::spawn(token, rollout_delay_ms, None)
    }

    /// An HTTPS server (token optional), rollouts available after 200 ms.
    pub fn tls(token: Option<&str>, tls: ServerTls) -> KubeApi {
        Self::spawn(token, 200, Some(tls))
    }

    fn spawn(token: Option<&str>, rollout_delay_ms: u64, tls: Option<ServerTls>) -> KubeApi {
        kubectl_binary();
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new("python3");
        cmd.arg(repo().join("tests/k8s-api/server.py"))
            .args(["--port", "0", "--rollout-delay-ms"])
            .arg(rollout_delay_ms.to_string())
            .stdout(Stdio::piped());
        if let Some(token) = token {
            cmd.args(["--token", token]);
        }
        if let Some(t) = &tls {
            let write = |name: &str, pem: &str| {
                let p = dir.path().join(name);
                std::fs::write(&p, pem).unwrap();
                p
            };
            cmd.arg("--tls-cert")
                .arg(write("server.pem", &t.server.cert_pem))
                .arg("--tls-key")
                .arg(write("server-key.pem", &t.server.key_pem));
            if let Some(ca) = &t.client_ca_pem {
                cmd.arg("--client-ca").arg(write("client-ca.pem", ca));
            }
        }
        let mut child = cmd
            .spawn()
            .expect("python3 runs the Kubernetes API test server");
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut read_port = || {
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            line.trim().parse::<u16>().expect("server prints its port")
        };
        let port = read_port();
        let plain_port = if tls.is_some() { read_port() } else { port };
        let api = KubeApi {
            child,
            port,
            plain_port,
            dir,
            token: token.map(str::to_string),
            tls,
        };
        api.write_kubeconfig();
        api
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The kubeconfig kubectl uses (context `test`), for medic's `[kubernetes]` too.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// Over plain HTTP no credentials: kubectl (client-go's clientcmd) sends them only
    /// over TLS, so a plain server started with a token is for medic's step only. Over
    /// HTTPS: the CA as a file, the token, and the client certificate as inline data.
    fn write_kubeconfig(&self) {
        let (mut cluster, mut user) = (String::new(), Vec::new());
        if let Some(t) = &self.tls {
            cluster = format!(
                "\n    certificate-authority: {}",
                self.file("ca.pem", &t.ca_pem).display()
            );
            if let Some(token) = &self.token {
                user.push(format!("token: {token}"));
            }
            if let Some(c) = &t.client {
                let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
                user.push(format!("client-certificate-data: {}", b64(&c.cert_pem)));
                user.push(format!("client-key-data: {}", b64(&c.key_pem)));
            }
        }
        let user = if user.is_empty() {
            "{}".to_string()
        } else {
            format!("\n    {}", user.join("\n    "))
        };
        let config = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {}{cluster}\nusers:\n- name: test\n  user: {user}\ncontexts:\n- name: test\n  context: {{cluster: test, user: test, namespace: default}}\ncurrent-context: test\n",
            self.url()
        );
        std::fs::write(self.kubeconfig(), config).unwrap();
    }

    /// Writes a file into the server's temp dir (manifests for `kubectl create -f`).
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Runs kubectl against this server.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new(kubectl_binary())
            .env("KUBECONFIG", self.dir.path().join("kubeconfig"))
            .arg("--cache-dir")
            .arg(self.dir.path().join("kube-cache"))
            .arg("--request-timeout=20s")
            .args(args)
            .output()
            .unwrap()
    }

    /// Runs kubectl, requires success, returns stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Creates a Deployment `name` of `replicas` pods running `image`, with a change-cause,
    /// and waits for its rollout.
    pub fn create_deployment(&self, name: &str, image: &str, cause: &str) {
        let manifest = format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  annotations:\n    kubernetes.io/change-cause: \"{cause}\"\nspec:\n  replicas: 3\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n      - name: app\n        image: {image}\n"
        );
        let path = self.file(&format!("{name}.yaml"), &manifest);
        self.kubectl_ok(&["create", "--validate=false", "-f", path.to_str().unwrap()]);
        self.wait_rollout(name);
    }

    /// A new release: the image changes, the change-cause is recorded as the docs show
    /// (`kubectl annotate ... kubernetes.io/change-cause=...`), and the rollout completes.
    pub fn release(&self, name: &str, image: &str, cause: &str) {
        self.kubectl_ok(&[
            "set",
            "image",
            &format!("deployment/{name}"),
            &format!("app={image}"),
        ]);
        self.annotate_cause(name, cause);
        self.wait_rollout(name);
    }

    pub fn annotate_cause(&self, name: &str, cause: &str) {
        self.kubectl_ok(&[
            "annotate",
            "--overwrite",
            &format!("deployment/{name}"),
            &format!("kubernetes.io/change-cause={cause}"),
        ]);
    }

    pub fn wait_rollout(&self, name: &str) -> String {
        self.kubectl_ok(&[
            "rollout",
            "status",
            &format!("deployment/{name}"),
            "--timeout=30s",
        ])
    }

    /// `kubectl rollout history` as (revision, change-cause) rows.
    pub fn history(&self, name: &str) -> Vec<(u64, String)> {
        let out = self.kubectl_ok(&["rollout", "history", &format!("deployment/{name}")]);
        out.lines()
            .filter_map(|line| {
                let (rev, cause) = line.trim_end().split_once(char::is_whitespace)?;
                Some((rev.parse().ok()?, cause.trim().to_string()))
            })
            .collect()
    }

    /// `kubectl get deployment NAME -o json`.
    pub fn deployment(&self, name: &str) -> Value {
        let out = self.kubectl_ok(&["get", "deployment", name, "-o", "json"]);
        serde_json::from_str(&out).unwrap()
    }

    /// The image of the deployment's first container, as kubectl reports it.
    pub fn image(&self, name: &str) -> String {
        self.deployment(name)["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// An API call over plain HTTP with this server's token (if any): (status, JSON body).
    pub fn api(&self, method: &str, path: &str, body: &str) -> (u16, Value) {
        self.api_as(method, path, "application/json", body)
    }

    fn api_as(&self, method: &str, path: &str, content_type: &str, body: &str) -> (u16, Value) {
        let auth = match &self.token {
            Some(t) => format!("Authorization: Bearer {t}\r\n"),
            None => String::new(),
        };
        let headers = format!("{auth}Content-Type: {content_type}\r\n");
        let raw = self.http(method, path, &headers, body);
        let status = raw
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }

    /// Deployment `name` through its releases, (image, change-cause) each, with raw API
    /// calls (faster than kubectl, and usable with a token): revision N is release N.
    pub fn seed(&self, name: &str, releases: &[(&str, &str)]) {
        let base = "/apis/apps/v1/namespaces/default/deployments";
        for (i, (image, cause)) in releases.iter().enumerate() {
            let template = serde_json::json!({"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]}});
            let annotations = serde_json::json!({"kubernetes.io/change-cause": cause});
            let (status, body) = if i == 0 {
                let manifest = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": name, "annotations": annotations},
                    "spec": {"replicas": 3, "selector": {"matchLabels": {"app": name}}, "template": template}});
                self.api("POST", base, &manifest.to_string())
            } else {
                let patch = serde_json::json!({"metadata": {"annotations": annotations},
                    "spec": {"template": template}});
                self.api_as(
                    "PATCH",
                    &format!("{base}/{name}"),
                    "application/merge-patch+json",
                    &patch.to_string(),
                )
            };
            assert!(
                status < 300,
                "seeding {name} release {}: {status} {body}",
                i + 1
            );
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            loop {
                let (_, d) = self.api("GET", &format!("{base}/{name}"), "");
                let at = d["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                    .as_str()
                    .and_then(|r| r.parse::<usize>().ok())
                    == Some(i + 1);
                if at
                    && d["status"]["updatedReplicas"] == 3
                    && d["status"]["replicas"] == 3
                    && d["status"]["availableReplicas"] == 3
                {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "{name} did not reach revision {}: {d}",
                    i + 1
                );
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }

    /// Every API request the server received (method, path, content_type, authorized, body).
    pub fn requests(&self) -> Vec<Value> {
        self.test_call("GET", "/_test/requests", "")["requests"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// The next `method` request is applied, then answered with HTTP `status`.
    pub fn fail_next_after_applying(&self, method: &str, status: u16) {
        let body = format!(r#"{{"method": "{method}", "status": {status}, "apply": true}}"#);
        self.test_call("POST", "/_test/fail-next", &body);
    }

    fn test_call(&self, method: &str, path: &str, body: &str) -> Value {
        let raw = self.http(method, path, "", body);
        let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{method} {path}: {e}: {raw}"))
    }

    /// One plain HTTP/1.0 exchange (std only, no client crate): the raw response.
    fn http(&self, method: &str, path: &str, headers: &str, body: &str) -> String {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.plain_port)).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n{headers}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        raw
    }
}

impl Drop for KubeApi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
