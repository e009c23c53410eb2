//! Where secret values come from, and keeping them out of everything medic writes.

use std::collections::BTreeMap;

/// A source of secret values by name. Engine configuration decides which one is used;
/// workflows only name secrets and grant them to steps.
pub trait SecretSource: Send + Sync {
    /// The value of secret `name`, or `None` when it has none.
    fn get(&self, name: &str) -> Option<String>;
}

/// Secrets from environment variables `MEDIC_SECRET_<NAME>`.
#[derive(Debug, Default, Clone)]
pub struct EnvSecrets;

impl SecretSource for EnvSecrets {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(format!("MEDIC_SECRET_{name}")).ok()
    }
}

/// Fixed secrets, for tests and `medic step test --secret`.
#[derive(Debug, Default, Clone)]
pub struct StaticSecrets(pub BTreeMap<String, String>);

impl SecretSource for StaticSecrets {
    fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

/// Replaces known secret values in text with `[redacted:NAME]`.
#[derive(Debug, Default, Clone)]
pub struct Redactor {
    /// (value, name), longest value first so a secret containing another is redacted whole.
    secrets: Vec<(String, String)>,
}

impl Redactor {
    /// A redactor for these (name, value) pairs; empty values are ignored.
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut secrets: Vec<(String, String)> = pairs
            .into_iter()
            .filter(|(_, value)| !value.is_empty())
            .map(|(name, value)| (value, name))
            .collect();
        secrets.sort_by_key(|(value, _)| std::cmp::Reverse(value.len()));
        Redactor { secrets }
    }

    /// Whether there is nothing to redact.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// `s` with every secret value replaced by `[redacted:NAME]`.
    pub fn text(&self, s: &str) -> String {
        let mut out = s.to_string();
        for (value, name) in &self.secrets {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), &format!("[redacted:{name}]"));
            }
        }
        out
    }

    /// Redacts every string (keys included) in a JSON document.
    pub fn json(&self, v: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        if self.is_empty() {
            return v.clone();
        }
        match v {
            Value::String(s) => Value::String(self.text(s)),
            Value::Array(a) => Value::Array(a.iter().map(|x| self.json(x)).collect()),
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, x)| (self.text(k), self.json(x)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_longest_first_and_in_json() {
        let r = Redactor::new([
            ("A".to_string(), "hunter2".to_string()),
            ("B".to_string(), "hunter2-extra".to_string()),
        ]);
        assert_eq!(
            r.text("x hunter2-extra y hunter2"),
            "x [redacted:B] y [redacted:A]"
        );
        let v = serde_json::json!({"k": ["token hunter2"], "hunter2": 1});
        assert_eq!(
            r.json(&v),
            serde_json::json!({"k": ["token [redacted:A]"], "[redacted:A]": 1})
        );
    }
}
