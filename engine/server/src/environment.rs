//! What differs between environments, from medic.toml: TLS per destination (`[[tls]]`),
//! the Kubernetes context k8s-rollout steps use (`[kubernetes]`), and the values of the
//! workflows' vars (`[vars]`). `medic serve --config` and `medic run --config` read the
//! same sections, so a workflow runs the same way under both.
//!
//! ```toml
//! [vars]
//! k8s_namespace = "shop"
//!
//! [[tls]]
//! host = "k8s.prod.example:6443"
//! ca = "/etc/medic/k8s-ca.pem"
//! client_cert = "/etc/medic/medic-client.pem"
//! client_key_secret = "K8S_CLIENT_KEY"
//!
//! [kubernetes]
//! kubeconfig = "/etc/medic/kubeconfig"
//! context = "prod"
//! ```

use crate::config::{ConfigError, SecretsConfig};
use crate::kubeconfig::{self, KubeContext};
use medic_core::SecretSource;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The secret name under which a kubeconfig user's token reaches k8s-rollout steps.
pub const KUBECONFIG_TOKEN_SECRET: &str = "KUBECONFIG_TOKEN";

/// One `[[tls]]` entry: how to talk TLS to one `host:port`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsEntry {
    /// `host:port` (port 443 when left out), as in a step's `allow:`.
    pub host: String,
    /// PEM bundle of the CAs to trust for this host instead of the public roots.
    #[serde(default)]
    pub ca: Option<PathBuf>,
    /// PEM client certificate (chain) file, for mutual TLS.
    #[serde(default)]
    pub client_cert: Option<PathBuf>,
    /// The secret holding the PEM client certificate, instead of `client_cert`.
    #[serde(default)]
    pub client_cert_secret: Option<String>,
    /// The secret holding the client certificate's PEM private key.
    #[serde(default)]
    pub client_key_secret: Option<String>,
    /// Accept any certificate from this host. Warned about on every connection and
    /// refused by `medic validate --strict`.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// `[kubernetes]`: the kubeconfig context whose server, CA and credentials k8s-rollout
/// steps use when their `with:` names no `server`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesConfig {
    /// The kubeconfig file.
    pub kubeconfig: PathBuf,
    /// The context; default: the file's `current-context`.
    #[serde(default)]
    pub context: Option<String>,
}

/// The environment sections of medic.toml (the rest of the file is `medic serve`'s).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EnvironmentConfig {
    /// `[[tls]]` entries, one per destination.
    #[serde(default)]
    pub tls: Vec<TlsEntry>,
    /// `[kubernetes]`.
    #[serde(default)]
    pub kubernetes: Option<KubernetesConfig>,
    /// `[vars]`: values for the vars workflows declare.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// `[secrets]`: where step secrets (and TLS client keys) come from.
    #[serde(default)]
    pub secrets: SecretsConfig,
    /// The directory of the config file: relative paths are read from there.
    #[serde(skip)]
    pub base: PathBuf,
}

/// A `[[tls]]` entry with its files and secrets read: PEM bytes ready for the sandbox.
#[derive(Clone)]
pub struct ResolvedTls {
    /// `host:port`.
    pub host: String,
    /// CA bundle, PEM.
    pub ca_pem: Option<Vec<u8>>,
    /// Client certificate chain, PEM.
    pub client_cert_pem: Option<Vec<u8>>,
    /// Client key, PEM. A secret.
    pub client_key_pem: Option<Vec<u8>>,
    /// Skip verification.
    pub insecure_skip_verify: bool,
    /// Where it came from, e.g. `medic.toml [[tls]] k8s:6443`.
    pub origin: String,
}

impl EnvironmentConfig {
    /// Reads the environment sections of a medic.toml; other sections are left to
    /// `medic serve`. Relative paths in it are resolved from the file's directory.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] when the file cannot be read or these sections are
    /// malformed (unknown keys included).
    pub fn load(path: &Path) -> Result<EnvironmentConfig, ConfigError> {
        let err = |message: String| ConfigError::Invalid {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
        let mut c: EnvironmentConfig = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
        c.base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        c.check().map_err(err)?;
        Ok(c)
    }

    /// Checks what can be checked without reading files.
    ///
    /// # Errors
    /// A message naming the entry: an empty host, a key without a certificate, two
    /// sources for one certificate.
    pub fn check(&self) -> Result<(), String> {
        for (i, t) in self.tls.iter().enumerate() {
            let at = format!("tls[{i}] (host {:?})", t.host);
            if t.host.trim().is_empty() || t.host.contains('/') {
                return Err(format!(
                    "{at}: `host` must be host:port, e.g. \"k8s.prod.example:6443\""
                ));
            }
            if t.client_cert.is_some() && t.client_cert_secret.is_some() {
                return Err(format!(
                    "{at}: give the client certificate once: `client_cert` (a file) or `client_cert_secret`"
                ));
            }
            let cert = t.client_cert.is_some() || t.client_cert_secret.is_some();
            if cert != t.client_key_secret.is_some() {
                return Err(format!(
                    "{at}: mutual TLS needs both a client certificate (`client_cert` or `client_cert_secret`) and `client_key_secret`"
                ));
            }
            if t.insecure_skip_verify && t.ca.is_some() {
                return Err(format!(
                    "{at}: `insecure_skip_verify` ignores `ca`; keep one (preferably `ca`)"
                ));
            }
        }
        Ok(())
    }

    fn path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    /// The configured secret source (without the kubeconfig token).
    ///
    /// # Errors
    /// The secrets file cannot be read or parsed.
    fn base_secrets(&self) -> Result<Arc<dyn SecretSource>, String> {
        match &self.secrets {
            SecretsConfig::Env => Ok(Arc::new(medic_core::EnvSecrets)),
            // As `medic serve` has always read it: the path as given.
            SecretsConfig::File { path } => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("secrets file {}: {e}", path.display()))?;
                let map: BTreeMap<String, String> = toml::from_str(&text)
                    .map_err(|e| format!("secrets file {}: {e}", path.display()))?;
                // Too short to redact safely: refused at load (secrets.rs).
                Ok(Arc::new(
                    medic_core::StaticSecrets::checked(map).map_err(|e| e.to_string())?,
                ))
            }
        }
    }

    /// The secret source for steps: `[secrets]`, plus the kubeconfig context's token
    /// as [`KUBECONFIG_TOKEN_SECRET`] when `[kubernetes]` names one.
    ///
    /// # Errors
    /// The secrets file or the kubeconfig cannot be read.
    pub fn secret_source(&self) -> Result<Arc<dyn SecretSource>, String> {
        let base = self.base_secrets()?;
        match self.kube_context()?.and_then(|k| k.token) {
            Some(token) => Ok(Arc::new(WithToken { base, token })),
            None => Ok(base),
        }
    }

    /// The `[kubernetes]` context, read from its kubeconfig; `None` without the section.
    ///
    /// # Errors
    /// The kubeconfig cannot be read, the context does not exist, or it needs what medic
    /// does not support (exec credential plugins, auth providers).
    pub fn kube_context(&self) -> Result<Option<KubeContext>, String> {
        let Some(k) = &self.kubernetes else {
            return Ok(None);
        };
        kubeconfig::load(&self.path(&k.kubeconfig), k.context.as_deref()).map(Some)
    }

    /// Every `[[tls]]` entry with files and secrets read, then the kubeconfig context's
    /// server (unless a `[[tls]]` entry names the same host: that one wins).
    ///
    /// # Errors
    /// A file or secret that cannot be read, naming the entry.
    pub fn tls(&self) -> Result<Vec<ResolvedTls>, String> {
        let secrets = self.base_secrets()?;
        let mut out = Vec::new();
        for (i, t) in self.tls.iter().enumerate() {
            let at = format!("tls[{i}] (host {})", t.host);
            let read = |p: &Path, what: &str| {
                let p = self.path(p);
                std::fs::read(&p).map_err(|e| format!("{at}: {what} {}: {e}", p.display()))
            };
            let secret = |name: &str, what: &str| {
                secrets.get(name).map(String::into_bytes).ok_or_else(|| {
                    format!("{at}: {what}: secret {name} is not set in the secrets source")
                })
            };
            out.push(ResolvedTls {
                host: t.host.clone(),
                ca_pem: t.ca.as_deref().map(|p| read(p, "ca")).transpose()?,
                client_cert_pem: match (&t.client_cert, &t.client_cert_secret) {
                    (Some(p), _) => Some(read(p, "client_cert")?),
                    (None, Some(name)) => Some(secret(name, "client_cert_secret")?),
                    (None, None) => None,
                },
                client_key_pem: t
                    .client_key_secret
                    .as_deref()
                    .map(|n| secret(n, "client_key_secret"))
                    .transpose()?,
                insecure_skip_verify: t.insecure_skip_verify,
                origin: format!("medic.toml [[tls]] {}", t.host),
            });
        }
        if let Some(k) = self.kube_context()? {
            let host = k.host_port();
            let taken = out.iter().any(|t| {
                medic_core::host_allowed(
                    std::slice::from_ref(&normal(&t.host)),
                    &k.host,
                    Some(k.port),
                )
            });
            if !taken && k.scheme == "https" {
                out.push(ResolvedTls {
                    host,
                    ca_pem: k.ca_pem.clone(),
                    client_cert_pem: k.client_cert_pem.clone(),
                    client_key_pem: k.client_key_pem.clone(),
                    insecure_skip_verify: k.insecure_skip_verify,
                    origin: format!("kubeconfig context {}", k.context),
                });
            }
        }
        Ok(out)
    }
}

/// `host` with port 443 when it has none, for comparing with a server's `host:port`.
fn normal(host: &str) -> String {
    let h = host.trim();
    match h.rsplit_once(':') {
        Some((_, p)) if p.parse::<u16>().is_ok() => h.to_string(),
        _ => format!("{h}:443"),
    }
}

/// A secret source with the kubeconfig token added.
struct WithToken {
    base: Arc<dyn SecretSource>,
    token: String,
}

impl SecretSource for WithToken {
    fn get(&self, name: &str) -> Option<String> {
        if name == KUBECONFIG_TOKEN_SECRET {
            return Some(self.token.clone());
        }
        self.base.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_parse_and_are_checked() {
        let c: EnvironmentConfig = toml::from_str(
            "tokens = [\"t\"]\n[vars]\nk8s_server = \"https://k8s:6443\"\n[[tls]]\nhost = \"k8s:6443\"\nca = \"ca.pem\"\n",
        )
        .unwrap();
        assert_eq!(c.vars["k8s_server"], "https://k8s:6443");
        assert_eq!(c.tls[0].ca.as_deref(), Some(Path::new("ca.pem")));
        c.check().unwrap();
        let bad: EnvironmentConfig =
            toml::from_str("[[tls]]\nhost = \"k8s:6443\"\nclient_key_secret = \"K\"\n").unwrap();
        assert!(bad.check().unwrap_err().contains("needs both"));
        let typo = toml::from_str::<EnvironmentConfig>("[[tls]]\nhost = \"k\"\ncacert = \"x\"\n");
        assert!(
            typo.unwrap_err()
                .to_string()
                .contains("unknown field `cacert`")
        );
    }
}
