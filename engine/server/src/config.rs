//! The engine's runtime configuration (`medic serve --config medic.toml`): how medic runs
//! here — listen address, tokens, secrets, limits — kept apart from workflow files, which
//! say what to do in an incident and live in git.
//!
//! ```
//! let c = medic_server::ServeConfig::parse("tokens = [\"a-long-token\"]\nmax_connections = 64\n").unwrap();
//! assert_eq!((c.max_connections, c.header_read_timeout_ms()), (64, 10_000));
//! ```

use crate::error::StartError;
use medic_core::{ResolvedLimits, SecretSource};
use medic_model::units;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The engine configuration file, as read. Unknown keys are refused (a typo must not
/// silently leave a default in place). See examples/serve/medic.toml and docs/serve.md.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// `host:port`; default 127.0.0.1:8730.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Bearer tokens accepted on intake and API requests (systems: Alertmanager, bots).
    #[serde(default)]
    pub tokens: Vec<String>,
    /// Personal tokens, by person: a gate decided with one is recorded under that name,
    /// and only that name.
    #[serde(default)]
    pub users: BTreeMap<String, String>,
    /// How long SIGTERM waits for step attempts in flight before exiting anyway (they
    /// resume by replay at the next start).
    #[serde(default)]
    pub shutdown_grace: Option<String>,
    /// Where step secrets come from (`[secrets]`).
    #[serde(default)]
    pub secrets: SecretsConfig,
    /// Default step limits (`[limits]`).
    #[serde(default)]
    pub limits: LimitsConfig,
    /// How many step attempts run at once, across runs; more wait for a slot (critical
    /// incidents' attempts may also take the `[lanes] critical_reserve` slots).
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Largest request body accepted, bytes (default 1 MiB). A larger `Content-Length`
    /// gets 413 at once, from the headers.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// How long a client may take to send a request's headers (default `10s`); the
    /// connection is closed after that. Also how long an idle keep-alive connection stays.
    #[serde(default)]
    pub header_read_timeout: Option<String>,
    /// How long a client may take to send a request's body once its headers are in
    /// (default `30s`); it gets 408 after that.
    #[serde(default)]
    pub body_read_timeout: Option<String>,
    /// Most connections open at once (default 256); more get 503 and are closed.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Whether personal tokens (`[users]`) may send alerts to `/intake` (default false:
    /// intake takes only `tokens`, the ones meant for senders).
    #[serde(default)]
    pub intake_accepts_user_tokens: bool,
    /// PagerDuty webhook verification (`[pagerduty]`).
    #[serde(default)]
    pub pagerduty: PagerDutyConfig,
    /// Field mapping for `POST /intake/generic`; without it that source is refused.
    #[serde(default)]
    pub generic: Option<medic_intake::generic::Mapping>,
    /// `[[tls]]`: TLS per destination; see [`crate::environment`].
    #[serde(default)]
    pub tls: Vec<crate::environment::TlsEntry>,
    /// `[kubernetes]`: the kubeconfig context for k8s-rollout steps.
    #[serde(default)]
    pub kubernetes: Option<crate::environment::KubernetesConfig>,
    /// `[vars]`: workflow vars overridden for this environment.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// The config file's directory (relative paths are read from there).
    #[serde(skip)]
    pub base: PathBuf,
    /// The address people reach this medic at, e.g. `https://medic.example.com`: links
    /// in postmortems and `run.url` / `run.postmortem_url` in workflow templates.
    #[serde(default)]
    pub external_url: Option<String>,
    /// `[postmortem]`: how drafts are written.
    #[serde(default)]
    pub postmortem: PostmortemConfig,
    /// `[lanes]`: severity lanes for the inbox and step attempts.
    #[serde(default)]
    pub lanes: crate::lanes::LanesConfig,
    /// `[storm]`: caps on runs started per workflow per interval.
    #[serde(default)]
    pub storm: crate::storm::StormConfig,
    /// `[retention]`: how long finished runs and resolved incidents are kept.
    #[serde(default)]
    pub retention: crate::retention::RetentionConfig,
}

/// `[postmortem]`: how drafts are written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostmortemConfig {
    /// A team's Markdown template (minijinja) used instead of the built-in one; see
    /// docs/postmortems.md for its variables. Relative paths are from the config's
    /// directory.
    #[serde(default)]
    pub template: Option<PathBuf>,
}

fn default_listen() -> String {
    "127.0.0.1:8730".into()
}
fn default_concurrency() -> usize {
    8
}
fn default_max_body() -> usize {
    1 << 20
}
fn default_max_connections() -> usize {
    256
}

/// A duration setting in milliseconds: `default_ms` when unset.
fn duration_ms(what: &str, value: &Option<String>, default_ms: u64) -> Result<u64, String> {
    match value {
        None => Ok(default_ms),
        Some(text) => match units::parse_duration_ms(text) {
            Some(ms) if ms > 0 => Ok(ms),
            _ => Err(format!(
                "{what}: `{text}` is not a positive duration (e.g. `30s`, `2m`)"
            )),
        },
    }
}

/// `[pagerduty]`: how PagerDuty webhooks are authenticated.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyConfig {
    /// Webhook signing secrets; several during a rotation.
    #[serde(default)]
    pub secrets: Vec<String>,
}

/// Where step secrets come from.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "lowercase", tag = "from")]
pub enum SecretsConfig {
    /// `MEDIC_SECRET_<NAME>` environment variables.
    #[default]
    Env,
    /// A TOML file of `NAME = "value"` lines (keep it out of git, mode 0600).
    File {
        /// The file.
        path: PathBuf,
    },
}

/// `[limits]`: default step limits, as written (sizes like `64MiB`, durations like `30s`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Memory a step may use (default 64 MiB).
    pub memory: Option<String>,
    /// How long one attempt may run (default 30 s).
    pub timeout: Option<String>,
    /// Largest output a step may return (default 1 MiB).
    pub output: Option<String>,
}

/// A configuration file medic cannot use.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Unreadable or invalid; `message` says which setting and why.
    #[error("config {path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl ServeConfig {
    /// Reads and checks the file at `path`.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] when it cannot be read or [`ServeConfig::parse`] refuses it.
    pub fn load(path: &Path) -> Result<ServeConfig, ConfigError> {
        let err = |message: String| ConfigError::Invalid {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
        let mut c = Self::parse(&text).map_err(err)?;
        c.base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        Ok(c)
    }

    /// `shutdown_grace` in milliseconds (default 30 s).
    ///
    /// # Errors
    ///
    /// The setting is not a duration (`parse` has already refused such a config).
    pub fn shutdown_grace_ms(&self) -> Result<u64, String> {
        match &self.shutdown_grace {
            None => Ok(30_000),
            Some(text) => units::parse_duration_ms(text).ok_or_else(|| {
                format!("shutdown_grace: `{text}` is not a duration (e.g. `30s`, `2m`)")
            }),
        }
    }

    /// `header_read_timeout` in milliseconds (default 10 s; checked by `parse`).
    pub fn header_read_timeout_ms(&self) -> u64 {
        duration_ms("header_read_timeout", &self.header_read_timeout, 10_000).unwrap_or(10_000)
    }

    /// `body_read_timeout` in milliseconds (default 30 s; checked by `parse`).
    pub fn body_read_timeout_ms(&self) -> u64 {
        duration_ms("body_read_timeout", &self.body_read_timeout, 30_000).unwrap_or(30_000)
    }

    /// Parses and checks a configuration text.
    ///
    /// # Errors
    ///
    /// A message naming the setting: TOML syntax, unknown keys, no token at all, an empty
    /// personal token, a duration or size that does not parse, a zero `concurrency` or
    /// `max_connections`, an invalid `[generic]` mapping.
    pub fn parse(text: &str) -> Result<ServeConfig, String> {
        let c: ServeConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        if c.tokens
            .iter()
            .chain(c.users.values())
            .all(|t| t.trim().is_empty())
        {
            return Err("no API tokens: add `tokens = [\"...\"]` (intake and API requests must be authenticated)".into());
        }
        if let Some((name, _)) = c.users.iter().find(|(_, t)| t.trim().is_empty()) {
            return Err(format!("users.{name}: empty token"));
        }
        c.shutdown_grace_ms()?;
        duration_ms("header_read_timeout", &c.header_read_timeout, 0)?;
        duration_ms("body_read_timeout", &c.body_read_timeout, 0)?;
        if c.concurrency == 0 {
            return Err("concurrency must be at least 1".into());
        }
        if c.max_connections == 0 {
            return Err("max_connections must be at least 1".into());
        }
        if let Some(u) = &c.external_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            return Err(format!(
                "external_url: `{u}` is not an http:// or https:// URL"
            ));
        }
        if let Some(m) = &c.generic {
            m.validate().map_err(|e| format!("generic: {e}"))?;
        }
        c.limits()?;
        c.lanes.resolve()?;
        c.storm.resolve()?;
        c.retention.resolve(Path::new(""))?;
        c.environment().check()?;
        Ok(c)
    }

    /// Default step limits, from `[limits]` over medic's built-in defaults.
    ///
    /// # Errors
    ///
    /// A message naming the `[limits]` value that is not a size or a duration.
    pub fn limits(&self) -> Result<ResolvedLimits, String> {
        let d = ResolvedLimits::default();
        let size = |v: &Option<String>, what: &str, default: u64| match v {
            None => Ok(default),
            Some(s) => units::parse_size_bytes(s)
                .ok_or(format!("limits.{what}: `{s}` is not a size (e.g. 64MiB)")),
        };
        let timeout_ms = match &self.limits.timeout {
            None => d.timeout_ms,
            Some(s) => units::parse_duration_ms(s).ok_or(format!(
                "limits.timeout: `{s}` is not a duration (e.g. 30s)"
            ))?,
        };
        Ok(ResolvedLimits {
            memory_bytes: size(&self.limits.memory, "memory", d.memory_bytes)?,
            timeout_ms,
            output_bytes: size(&self.limits.output, "output", d.output_bytes)?,
        })
    }

    /// The environment sections (`[[tls]]`, `[kubernetes]`, `[vars]`, `[secrets]`).
    pub fn environment(&self) -> crate::environment::EnvironmentConfig {
        crate::environment::EnvironmentConfig {
            tls: self.tls.clone(),
            kubernetes: self.kubernetes.clone(),
            vars: self.vars.clone(),
            secrets: self.secrets.clone(),
            base: self.base.clone(),
        }
    }

    /// The configured secret source, with the `[kubernetes]` context's token.
    ///
    /// # Errors
    ///
    /// [`StartError::Config`] when the secrets file or the kubeconfig cannot be read, or
    /// a secret in the file is too short to redact (1–3 characters).
    pub fn secret_source(&self) -> Result<std::sync::Arc<dyn SecretSource>, StartError> {
        self.environment()
            .secret_source()
            .map_err(StartError::Config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks() {
        let c = ServeConfig::parse(
            "tokens = [\"t\"]\nconcurrency = 2\n[limits]\nmemory = \"32MiB\"\ntimeout = \"5s\"\n",
        )
        .unwrap();
        assert_eq!(c.listen, "127.0.0.1:8730");
        let l = c.limits().unwrap();
        assert_eq!((l.memory_bytes, l.timeout_ms), (32 << 20, 5_000));
        assert!(
            ServeConfig::parse("")
                .unwrap_err()
                .contains("no API tokens")
        );
        assert!(
            ServeConfig::parse("tokens = [\"t\"]\nlisten_on = 1\n")
                .unwrap_err()
                .contains("unknown field `listen_on`")
        );
        assert!(
            ServeConfig::parse("tokens = [\"t\"]\n[limits]\ntimeout = \"soon\"\n")
                .unwrap_err()
                .contains("limits.timeout")
        );
    }

    #[test]
    fn http_limits_have_defaults_and_are_checked() {
        let c = ServeConfig::parse("tokens = [\"t\"]\n").unwrap();
        assert_eq!(
            (
                c.header_read_timeout_ms(),
                c.body_read_timeout_ms(),
                c.max_connections
            ),
            (10_000, 30_000, 256)
        );
        assert!(!c.intake_accepts_user_tokens);
        let c = ServeConfig::parse(
            "tokens = [\"t\"]\nheader_read_timeout = \"2s\"\nbody_read_timeout = \"500ms\"\nintake_accepts_user_tokens = true\n",
        )
        .unwrap();
        assert_eq!(
            (c.header_read_timeout_ms(), c.body_read_timeout_ms()),
            (2_000, 500)
        );
        assert!(c.intake_accepts_user_tokens);
        for (bad, needle) in [
            (
                "header_read_timeout = \"soon\"",
                "header_read_timeout: `soon`",
            ),
            ("body_read_timeout = \"0s\"", "body_read_timeout: `0s`"),
            ("max_connections = 0", "max_connections must be at least 1"),
        ] {
            let e = ServeConfig::parse(&format!("tokens = [\"t\"]\n{bad}\n")).unwrap_err();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }

    #[test]
    fn a_secrets_file_with_a_short_secret_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secrets.toml");
        std::fs::write(&file, "GOOD = \"long-enough\"\nPIN = \"42\"\n").unwrap();
        let c = ServeConfig::parse(&format!(
            "tokens = [\"t\"]\n[secrets]\nfrom = \"file\"\npath = \"{}\"\n",
            file.display()
        ))
        .unwrap();
        let e = c.secret_source().err().expect("refused").to_string();
        assert!(e.contains("secret PIN is 2 characters long"), "{e}");
        assert!(!e.contains("42"), "{e}");
    }
}
