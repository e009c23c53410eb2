//! The environment a command runs in, from `--config medic.toml`: vars, TLS per
//! destination, the kubeconfig context for k8s-rollout steps, and the secret source.
//! Without `--config`: no vars overridden, public TLS roots, `MEDIC_SECRET_*` secrets.

use anyhow::{Context, Result};
use medic_core::SecretSource;
use medic_model::Workflow;
use medic_sandbox::{TlsDestination, TlsSettings};
use medic_server::environment::{EnvironmentConfig, KUBECONFIG_TOKEN_SECRET};
use medic_server::kubeconfig::KubeContext;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Everything `--config` contributes to loading and running workflows.
#[derive(Clone)]
pub struct Environment {
    /// `[vars]`.
    pub vars: BTreeMap<String, String>,
    /// `[kubernetes]`, read.
    pub kube: Option<KubeContext>,
    /// `[[tls]]` plus the kube context's server, for the sandbox.
    pub tls: TlsSettings,
    /// Destinations configured to skip verification, with where it was said.
    pub insecure: Vec<(String, String)>,
    /// Destinations with their own TLS settings and what they use, for `medic validate`.
    pub tls_notes: Vec<String>,
    /// Step secrets (with the kubeconfig token, if any).
    pub secrets: Arc<dyn SecretSource>,
}

impl Default for Environment {
    fn default() -> Self {
        Environment {
            vars: BTreeMap::new(),
            kube: None,
            tls: TlsSettings::default(),
            insecure: Vec::new(),
            tls_notes: Vec::new(),
            secrets: Arc::new(medic_core::EnvSecrets),
        }
    }
}

impl Environment {
    /// The environment of `--config FILE`, or the default one without it.
    pub fn load(path: Option<&Path>) -> Result<Environment> {
        match path {
            None => Ok(Environment::default()),
            Some(p) => Self::from_config(&EnvironmentConfig::load(p)?)
                .with_context(|| format!("config {}", p.display())),
        }
    }

    /// Reads the files and secrets the config names and builds the TLS settings.
    pub fn from_config(c: &EnvironmentConfig) -> Result<Environment> {
        let kube = c.kube_context().map_err(anyhow::Error::msg)?;
        let resolved = c.tls().map_err(anyhow::Error::msg)?;
        let mut insecure = Vec::new();
        let mut tls_notes = Vec::new();
        let mut destinations = Vec::new();
        for t in resolved {
            if t.insecure_skip_verify {
                insecure.push((t.host.clone(), t.origin.clone()));
            }
            let mut uses = Vec::new();
            if t.ca_pem.is_some() {
                uses.push("private CA");
            }
            if t.client_cert_pem.is_some() {
                uses.push("client certificate (mutual TLS)");
            }
            if t.insecure_skip_verify {
                uses.push("NO certificate verification");
            }
            if uses.is_empty() {
                uses.push("public roots");
            }
            tls_notes.push(format!(
                "TLS {}: {} ({})",
                t.host,
                uses.join(", "),
                t.origin
            ));
            destinations.push(TlsDestination {
                host: t.host,
                ca_pem: t.ca_pem,
                client_cert_pem: t.client_cert_pem,
                client_key_pem: t.client_key_pem,
                insecure_skip_verify: t.insecure_skip_verify,
                origin: t.origin,
            });
        }
        let tls = TlsSettings::new(destinations)?;
        Ok(Environment {
            vars: c.vars.clone(),
            kube,
            tls,
            insecure,
            tls_notes,
            secrets: c.secret_source().map_err(anyhow::Error::msg)?,
        })
    }

    /// Gives every k8s-rollout step that names no `server` the kubeconfig context's
    /// server, namespace (when the step names none) and token (as the secret
    /// `KUBECONFIG_TOKEN`, granted to the step), and allows the server's host. Done when
    /// the workflow loads, so the run's snapshot holds every grant. Returns one line per
    /// step changed, for `medic validate`.
    pub fn apply_kube(&self, workflow: &mut Workflow) -> Vec<String> {
        let Some(k) = &self.kube else {
            return Vec::new();
        };
        let mut notes = Vec::new();
        for step in &mut workflow.steps {
            let is_rollout = step.uses == "k8s-rollout"
                || Path::new(&step.uses).file_stem().and_then(|s| s.to_str())
                    == Some("k8s-rollout");
            let Some(with) = step.with.as_object_mut() else {
                continue;
            };
            if !is_rollout || with.contains_key("server") {
                continue;
            }
            let mut got = vec![format!("server {}", k.server)];
            with.insert("server".into(), k.server.clone().into());
            if !medic_core::host_allowed(&step.allow, &k.host, Some(k.port)) {
                step.allow.push(k.host_port());
                got.push(format!("allow {}", k.host_port()));
            }
            if let Some(ns) = &k.namespace
                && !with.contains_key("namespace")
            {
                with.insert("namespace".into(), ns.clone().into());
                got.push(format!("namespace {ns}"));
            }
            if k.token.is_some() && !with.contains_key("token_secret") {
                with.insert("token_secret".into(), KUBECONFIG_TOKEN_SECRET.into());
                if !step.secrets.iter().any(|s| s == KUBECONFIG_TOKEN_SECRET) {
                    step.secrets.push(KUBECONFIG_TOKEN_SECRET.into());
                }
                got.push(format!(
                    "the user's token as secret {KUBECONFIG_TOKEN_SECRET}"
                ));
            }
            if k.client_cert_pem.is_some() {
                got.push("the user's client certificate (mutual TLS)".into());
            }
            if k.ca_pem.is_some() {
                got.push("the cluster's CA".into());
            }
            notes.push(format!(
                "step `{}`: from kubeconfig context `{}`: {}",
                step.id,
                k.context,
                got.join(", ")
            ));
        }
        notes
    }
}
