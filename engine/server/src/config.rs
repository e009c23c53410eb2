//! The engine's runtime configuration (`medic serve --config medic.toml`): how medic runs
//! here — listen address, tokens, secrets, limits — kept apart from workflow files, which
//! say what to do in an incident and live in git.

use medic_core::{ResolvedLimits, SecretSource};
use medic_model::units;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
    #[serde(default)]
    pub secrets: SecretsConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    /// How many step attempts run at once, across runs; more wait for a slot.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Largest intake body accepted, bytes.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    #[serde(default)]
    pub pagerduty: PagerDutyConfig,
    /// Field mapping for `POST /intake/generic`; without it that source is refused.
    #[serde(default)]
    pub generic: Option<medic_intake::generic::Mapping>,
    /// `[[tls]]`, `[kubernetes]`, `[vars]`: see [`crate::environment`].
    #[serde(default)]
    pub tls: Vec<crate::environment::TlsEntry>,
    #[serde(default)]
    pub kubernetes: Option<crate::environment::KubernetesConfig>,
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// The config file's directory (relative paths are read from there).
    #[serde(skip)]
    pub base: PathBuf,
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
    File { path: PathBuf },
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    pub memory: Option<String>,
    pub timeout: Option<String>,
    pub output: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config {path}: {message}")]
    Invalid { path: String, message: String },
}

impl ServeConfig {
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
    pub fn shutdown_grace_ms(&self) -> Result<u64, String> {
        match &self.shutdown_grace {
            None => Ok(30_000),
            Some(text) => units::parse_duration_ms(text).ok_or_else(|| {
                format!("shutdown_grace: `{text}` is not a duration (e.g. `30s`, `2m`)")
            }),
        }
    }

    /// Parses and checks a configuration text.
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
        if c.concurrency == 0 {
            return Err("concurrency must be at least 1".into());
        }
        if let Some(m) = &c.generic {
            m.validate().map_err(|e| format!("generic: {e}"))?;
        }
        c.limits()?;
        c.environment().check()?;
        Ok(c)
    }

    /// Default step limits, from `[limits]` over medic's built-in defaults.
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
    pub fn secret_source(&self) -> Result<std::sync::Arc<dyn SecretSource>, String> {
        if self.kubernetes.is_some() {
            return self.environment().secret_source();
        }
        match &self.secrets {
            SecretsConfig::Env => Ok(std::sync::Arc::new(medic_core::EnvSecrets)),
            SecretsConfig::File { path } => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("secrets file {}: {e}", path.display()))?;
                let map: BTreeMap<String, String> = toml::from_str(&text)
                    .map_err(|e| format!("secrets file {}: {e}", path.display()))?;
                Ok(std::sync::Arc::new(medic_core::StaticSecrets(map)))
            }
        }
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
}
