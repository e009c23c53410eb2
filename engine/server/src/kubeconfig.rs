//! Reading one context of a kubeconfig file: the server, its CA and the user's
//! credentials (a token or a client certificate), following client-go's clientcmd rules
//! (`k8s.io/client-go/tools/clientcmd/api/v1/types.go`): `*-data` fields are base64 PEM
//! and win over the file fields; relative file paths are relative to the kubeconfig's own
//! directory; the context defaults to `current-context`.
//!
//! Exec credential plugins (`user.exec`) and auth providers (`user.auth-provider`) run
//! programs on the host to get a token; medic does not run them, and says so.

use base64::Engine as _;
use marked_yaml::types::{MarkedMappingNode, Node};
use std::path::{Path, PathBuf};

/// What a k8s-rollout step gets from a kubeconfig context.
#[derive(Clone)]
pub struct KubeContext {
    /// The context's name.
    pub context: String,
    /// The cluster's name.
    pub cluster: String,
    /// The user's name.
    pub user: String,
    /// The API server's base URL, as in the kubeconfig (`https://k8s.prod.example:6443`).
    pub server: String,
    /// `http` or `https`.
    pub scheme: String,
    /// The server's host (no brackets for IPv6).
    pub host: String,
    /// The server's port (443/80 when the URL has none).
    pub port: u16,
    /// The context's namespace, if it names one.
    pub namespace: Option<String>,
    /// The cluster's CA bundle, PEM.
    pub ca_pem: Option<Vec<u8>>,
    /// `insecure-skip-tls-verify: true` on the cluster.
    pub insecure_skip_verify: bool,
    /// The user's bearer token. A secret.
    pub token: Option<String>,
    /// The user's client certificate, PEM.
    pub client_cert_pem: Option<Vec<u8>>,
    /// The user's client key, PEM. A secret.
    pub client_key_pem: Option<Vec<u8>>,
    /// Which kubeconfig fields are used, for `medic validate` (never a value).
    pub fields: Vec<String>,
}

impl std::fmt::Debug for KubeContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Token and key are secrets: only the fields used are shown.
        f.debug_struct("KubeContext")
            .field("context", &self.context)
            .field("server", &self.server)
            .field("fields", &self.fields)
            .finish()
    }
}

impl KubeContext {
    /// `host:port` of the server, as an `allow:` entry (`[v6]:port` for IPv6).
    pub fn host_port(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

fn map<'n>(node: &'n Node, what: &str) -> Result<&'n MarkedMappingNode, String> {
    node.as_mapping()
        .ok_or_else(|| format!("{what} is not a mapping"))
}

fn get<'n>(m: &'n MarkedMappingNode, key: &str) -> Option<&'n Node> {
    m.iter().find(|(k, _)| k.as_str() == key).map(|(_, v)| v)
}

fn text(m: &MarkedMappingNode, key: &str) -> Option<String> {
    get(m, key)
        .and_then(Node::as_scalar)
        .map(|s| s.as_str().to_string())
        .filter(|s| !s.is_empty())
}

/// The entry named `name` in the list `key` (`clusters`, `users`, `contexts`), and its
/// inner mapping (`cluster`, `user`, `context`).
fn named<'n>(
    root: &'n MarkedMappingNode,
    key: &str,
    inner: &str,
    name: &str,
) -> Result<Option<&'n MarkedMappingNode>, String> {
    let Some(list) = get(root, key) else {
        return Ok(None);
    };
    let Node::Sequence(items) = list else {
        return Err(format!("`{key}` is not a list"));
    };
    for item in items.iter() {
        let m = map(item, &format!("an entry of `{key}`"))?;
        if text(m, "name").as_deref() == Some(name) {
            return match get(m, inner) {
                Some(n) => map(n, &format!("{key}[{name}].{inner}")).map(Some),
                // `user: {}` and a missing `user` mean the same: nothing set.
                None => Ok(None),
            };
        }
    }
    Ok(None)
}

fn names(root: &MarkedMappingNode, key: &str) -> Vec<String> {
    match get(root, key) {
        Some(Node::Sequence(items)) => items
            .iter()
            .filter_map(|i| i.as_mapping().and_then(|m| text(m, "name")))
            .collect(),
        _ => Vec::new(),
    }
}

/// Reads `context` (default: `current-context`) of the kubeconfig at `path`.
///
/// # Errors
/// A message that names the file and the problem: unreadable, not YAML, no such context
/// (listing those that exist), a missing cluster or server, unreadable CA or certificate
/// files, bad base64, or credentials medic cannot use (exec plugins, auth providers).
pub fn load(path: &Path, context: Option<&str>) -> Result<KubeContext, String> {
    let shown = path.display().to_string();
    let err = |m: String| format!("kubeconfig {shown}: {m}");
    let text_of = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let root = marked_yaml::parse_yaml(0, &text_of).map_err(|e| err(format!("not YAML: {e}")))?;
    let root = root
        .as_mapping()
        .ok_or_else(|| err("not a mapping".into()))?;
    let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    resolve(root, &dir, context).map_err(err)
}

fn resolve(
    root: &MarkedMappingNode,
    dir: &Path,
    context: Option<&str>,
) -> Result<KubeContext, String> {
    let name = match context {
        Some(c) => c.to_string(),
        None => text(root, "current-context").ok_or(
            "no `context` in medic.toml's [kubernetes] and no `current-context` in the file; name the context to use",
        )?,
    };
    let contexts = names(root, "contexts");
    let ctx = match named(root, "contexts", "context", &name)? {
        Some(c) => c,
        None if contexts.contains(&name) => {
            return Err(format!("context `{name}` names no cluster"));
        }
        None => {
            return Err(format!(
                "no context `{name}` (contexts: {})",
                if contexts.is_empty() {
                    "none".to_string()
                } else {
                    contexts.join(", ")
                }
            ));
        }
    };
    let mut fields = vec![format!("context `{name}`")];
    let cluster_name = text(ctx, "cluster").ok_or(format!("context `{name}` names no cluster"))?;
    let cluster = named(root, "clusters", "cluster", &cluster_name)?.ok_or(format!(
        "context `{name}`: no cluster `{cluster_name}` in `clusters`"
    ))?;
    let server =
        text(cluster, "server").ok_or(format!("cluster `{cluster_name}` has no `server`"))?;
    fields.push(format!("clusters[{cluster_name}].server"));
    let (scheme, host, port) = split_server(&server)
        .map_err(|m| format!("cluster `{cluster_name}`: server {server:?}: {m}"))?;
    let user_name = text(ctx, "user").unwrap_or_default();
    let user = if user_name.is_empty() {
        None
    } else {
        named(root, "users", "user", &user_name)?
    };
    let read_file = |p: String, what: &str| -> Result<Vec<u8>, String> {
        let p = PathBuf::from(p);
        let p = if p.is_absolute() { p } else { dir.join(p) };
        std::fs::read(&p).map_err(|e| format!("{what} {}: {e}", p.display()))
    };
    let decode = |b64: String, what: &str| -> Result<Vec<u8>, String> {
        base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|_| format!("{what} is not base64"))
    };
    // `*-data` wins over the file form, as in client-go.
    let mut pem = |m: &MarkedMappingNode, key: &str, at: &str| -> Result<Option<Vec<u8>>, String> {
        if let Some(d) = text(m, &format!("{key}-data")) {
            fields.push(format!("{at}.{key}-data"));
            return decode(d, &format!("{at}.{key}-data")).map(Some);
        }
        if let Some(f) = text(m, key) {
            fields.push(format!("{at}.{key}"));
            return read_file(f, &format!("{at}.{key}")).map(Some);
        }
        Ok(None)
    };
    let cluster_at = format!("clusters[{cluster_name}]");
    let ca_pem = pem(cluster, "certificate-authority", &cluster_at)?;
    let insecure_skip_verify = text(cluster, "insecure-skip-tls-verify").as_deref() == Some("true");
    let (mut token, mut client_cert_pem, mut client_key_pem) = (None, None, None);
    if let Some(u) = user {
        let at = format!("users[{user_name}]");
        for unsupported in ["exec", "auth-provider"] {
            if get(u, unsupported).is_some() {
                return Err(format!(
                    "{at}.{unsupported}: exec credential plugins and auth providers are not supported (medic does not run programs to get credentials; that is out of scope); give this user a `token`, `tokenFile` or `client-certificate` and `client-key`"
                ));
            }
        }
        if get(u, "username").is_some() || get(u, "password").is_some() {
            return Err(format!(
                "{at}: basic authentication (username/password) is not supported; use a token or a client certificate"
            ));
        }
        client_cert_pem = pem(u, "client-certificate", &at)?;
        client_key_pem = pem(u, "client-key", &at)?;
        if client_cert_pem.is_some() != client_key_pem.is_some() {
            return Err(format!(
                "{at}: a client certificate needs its key (client-certificate and client-key go together)"
            ));
        }
        if let Some(t) = text(u, "token") {
            fields.push(format!("{at}.token"));
            token = Some(t);
        } else if let Some(f) = text(u, "tokenFile") {
            fields.push(format!("{at}.tokenFile"));
            let t = read_file(f, &format!("{at}.tokenFile"))?;
            token = Some(String::from_utf8_lossy(&t).trim().to_string());
        }
    }
    if insecure_skip_verify {
        fields.push(format!("{cluster_at}.insecure-skip-tls-verify"));
    }
    let namespace = text(ctx, "namespace");
    if namespace.is_some() {
        fields.push(format!("contexts[{name}].namespace"));
    }
    Ok(KubeContext {
        context: name,
        cluster: cluster_name,
        user: user_name,
        server,
        scheme,
        host,
        port,
        namespace,
        ca_pem,
        insecure_skip_verify,
        token,
        client_cert_pem,
        client_key_pem,
        fields,
    })
}

/// `https://host:port` → (scheme, host, port); no path beyond `/`.
fn split_server(server: &str) -> Result<(String, String, u16), String> {
    let (scheme, rest) = server
        .split_once("://")
        .ok_or("expected a URL such as https://k8s.example.com:6443")?;
    let scheme = scheme.to_ascii_lowercase();
    let default = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return Err("the scheme must be https or http".into()),
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains('/') || authority.contains('@') {
        return Err("a server is scheme://host:port, with no path or user".into());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or("missing `]`")?;
        (h.to_string(), after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    let port = match port {
        Some(p) => p.parse().map_err(|_| format!("bad port {p:?}"))?,
        None => default,
    };
    Ok((scheme, host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("kubeconfig");
        std::fs::write(&p, text).unwrap();
        p
    }

    const CONFIG: &str = "apiVersion: v1\nkind: Config\ncurrent-context: staging\nclusters:\n- name: prod\n  cluster:\n    server: https://k8s.prod.example:6443\n    certificate-authority-data: LS0tLS1CRUdJTg==\n- name: staging\n  cluster:\n    server: https://10.0.0.1\n    certificate-authority: ca.pem\nusers:\n- name: bot\n  user:\n    token: s3cr3t\n- name: sso\n  user:\n    exec:\n      command: aws\ncontexts:\n- name: prod\n  context: {cluster: prod, user: bot, namespace: shop}\n- name: staging\n  context: {cluster: staging, user: bot}\n- name: sso\n  context: {cluster: prod, user: sso}\n";

    #[test]
    fn a_context_gives_server_ca_and_token() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), CONFIG);
        std::fs::write(dir.path().join("ca.pem"), "CA").unwrap();
        let k = load(&path, Some("prod")).unwrap();
        assert_eq!((k.host.as_str(), k.port), ("k8s.prod.example", 6443));
        assert_eq!(k.ca_pem.as_deref(), Some(&b"-----BEGIN"[..]));
        assert_eq!(k.token.as_deref(), Some("s3cr3t"));
        assert_eq!(k.namespace.as_deref(), Some("shop"));
        assert!(
            k.fields.contains(&"users[bot].token".to_string()),
            "{:?}",
            k.fields
        );
        assert!(!format!("{k:?}").contains("s3cr3t"));
        // current-context, a CA file relative to the kubeconfig, port 443 by default.
        let s = load(&path, None).unwrap();
        assert_eq!(
            (s.context.as_str(), s.host_port().as_str()),
            ("staging", "10.0.0.1:443")
        );
        assert_eq!(s.ca_pem.as_deref(), Some(&b"CA"[..]));
    }

    #[test]
    fn missing_contexts_and_exec_plugins_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), CONFIG);
        let e = load(&path, Some("prd")).unwrap_err();
        assert!(
            e.contains("no context `prd` (contexts: prod, staging, sso)"),
            "{e}"
        );
        let e = load(&path, Some("sso")).unwrap_err();
        assert!(
            e.contains("users[sso].exec") && e.contains("not supported"),
            "{e}"
        );
    }
}
