//! Where secret values come from, and keeping them out of everything medic writes.
//!
//! A [`Redactor`] replaces each granted secret with `[redacted:NAME]` wherever a body, a
//! header, a URL, a message or an output is recorded, in the forms a secret travels in:
//! as is, percent-encoded (`%2F`, `+` for a space), hex (either case) and base64
//! (standard and URL-safe, at any offset inside a longer base64 text). A secret that is a
//! URL (a Slack or Teams webhook) is also redacted by its meaningful parts — userinfo,
//! password, path and query — because an error page that quotes only the path leaks the
//! credential just as well. Binary bodies are redacted as bytes ([`Redactor::bytes`]),
//! before they are base64-encoded for the journal.
//!
//! Secrets shorter than [`MIN_SECRET_CHARS`] cannot be redacted safely (`"ab"` would
//! blank every `ab` in a journal and still leak by elimination): [`check_secret`]
//! refuses them when they are loaded.
//!
//! ```
//! use medic_core::Redactor;
//! let r = Redactor::new([("TOKEN".to_string(), "hunter22".to_string())]);
//! assert_eq!(r.text("auth=hunter22"), "auth=[redacted:TOKEN]");
//! // base64 of "hunter22", as in a Basic authorization header or a JSON echo
//! assert!(r.text("Basic aHVudGVyMjI=").starts_with("Basic [redacted:TOKEN]"));
//! ```

use crate::journal::Body;
use base64::Engine as _;
use std::collections::{BTreeMap, BTreeSet};

/// Shortest secret accepted, in characters.
pub const MIN_SECRET_CHARS: usize = 4;

/// Shortest URL part (path, query, userinfo) redacted on its own, in characters: shorter
/// parts (`/`, `/v1`) say nothing about the credential and would blank ordinary text.
const MIN_URL_PART: usize = 6;

/// Shortest base64 fragment looked for: shorter ones would match unrelated base64 text.
const MIN_BASE64_CORE: usize = 5;

/// A source of secret values by name. Executor configuration decides which one is used;
/// workflows only name secrets and grant them to steps.
pub trait SecretSource: Send + Sync {
    /// The value of secret `name`, or `None` if this source does not have it.
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

impl StaticSecrets {
    /// Fixed secrets, each checked with [`check_secret`].
    ///
    /// # Errors
    ///
    /// [`SecretError::TooShort`] for the first value shorter than [`MIN_SECRET_CHARS`].
    pub fn checked(map: BTreeMap<String, String>) -> Result<StaticSecrets, SecretError> {
        for (name, value) in &map {
            check_secret(name, value)?;
        }
        Ok(StaticSecrets(map))
    }
}

impl SecretSource for StaticSecrets {
    fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

/// A secret medic refuses to use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// Too short to redact safely; the value itself is never shown.
    #[error(
        "secret {name} is {chars} characters long: secrets must have at least {MIN_SECRET_CHARS} \
         so they can be redacted from journals and logs"
    )]
    TooShort {
        /// The secret's name.
        name: String,
        /// Its length in characters.
        chars: usize,
    },
}

/// Checks that secret `name`'s `value` can be redacted safely.
///
/// # Errors
///
/// [`SecretError::TooShort`] when `value` has 1 to 3 characters (empty values are "not
/// set" and pass; the step that needs them fails on its own).
pub fn check_secret(name: &str, value: &str) -> Result<(), SecretError> {
    let chars = value.chars().count();
    if chars > 0 && chars < MIN_SECRET_CHARS {
        return Err(SecretError::TooShort {
            name: name.to_string(),
            chars,
        });
    }
    Ok(())
}

/// Checks every secret in `names` that `source` has (see [`check_secret`]): run at load,
/// so a workflow granting a 2-character secret stops start-up instead of leaking it.
///
/// # Errors
///
/// The first [`SecretError`] found.
pub fn check_granted<'a>(
    source: &dyn SecretSource,
    names: impl IntoIterator<Item = &'a str>,
) -> Result<(), SecretError> {
    for name in names {
        if let Some(value) = source.get(name) {
            check_secret(name, &value)?;
        }
    }
    Ok(())
}

/// Replaces known secret values, in every form they are recorded in, with
/// `[redacted:NAME]`.
#[derive(Debug, Default, Clone)]
pub struct Redactor {
    /// (form, name), longest form first so a secret containing another is redacted whole.
    forms: Vec<(String, String)>,
}

impl Redactor {
    /// A redactor for `(name, value)` pairs; empty values are ignored.
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut seen = BTreeSet::new();
        let mut forms = Vec::new();
        for (name, value) in pairs {
            if value.is_empty() {
                continue;
            }
            for form in forms_of(&value) {
                if seen.insert(form.clone()) {
                    forms.push((form, name.clone()));
                }
            }
        }
        forms.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        Redactor { forms }
    }

    /// True when there is nothing to redact.
    pub fn is_empty(&self) -> bool {
        self.forms.is_empty()
    }

    /// `s` with every form of every secret replaced.
    pub fn text(&self, s: &str) -> String {
        let mut out = s.to_string();
        for (form, name) in &self.forms {
            if out.contains(form.as_str()) {
                out = out.replace(form.as_str(), &format!("[redacted:{name}]"));
            }
        }
        out
    }

    /// `bytes` with every form of every secret replaced, for bodies that are not UTF-8.
    pub fn bytes(&self, bytes: &[u8]) -> Vec<u8> {
        let mut out = bytes.to_vec();
        for (form, name) in &self.forms {
            let finder = memchr::memmem::Finder::new(form.as_bytes());
            if finder.find(&out).is_none() {
                continue;
            }
            let mark = format!("[redacted:{name}]");
            let mut next = Vec::with_capacity(out.len());
            let mut at = 0;
            for hit in finder.find_iter(&out) {
                if hit < at {
                    continue;
                }
                next.extend_from_slice(&out[at..hit]);
                next.extend_from_slice(mark.as_bytes());
                at = hit + form.len();
            }
            next.extend_from_slice(&out[at..]);
            out = next;
        }
        out
    }

    /// A journalled body with secrets replaced: text as text, binary as bytes (then
    /// encoded again).
    pub fn body(&self, body: &Body) -> Body {
        match body {
            Body::Empty => Body::Empty,
            Body::Text(t) => Body::Text(self.text(t)),
            Body::Base64(_) if self.is_empty() => body.clone(),
            Body::Base64(b) => match base64::engine::general_purpose::STANDARD.decode(b) {
                Ok(bytes) => Body::from_bytes(&self.bytes(&bytes)),
                // Not decodable: redact the text as it stands (its base64 forms included).
                Err(_) => Body::Base64(self.text(b)),
            },
        }
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

/// Every form of `value` to redact: the value and, for a URL, its meaningful parts, each
/// as is and encoded.
fn forms_of(value: &str) -> Vec<String> {
    let mut plain = vec![value.to_string()];
    plain.extend(url_parts(value));
    let mut out = Vec::new();
    for p in plain {
        out.extend(encodings(&p));
        out.push(p);
    }
    out
}

/// The parts of a URL secret that carry the credential: userinfo, password, path (with
/// and without its leading `/`), query, and query values; each at least
/// [`MIN_URL_PART`] characters. Not a URL: nothing.
fn url_parts(value: &str) -> Vec<String> {
    let Some((_scheme, rest)) = value.split_once("://") else {
        return Vec::new();
    };
    let rest = rest.split('#').next().unwrap_or("");
    let (authority, path_query) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => match rest.find('?') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        },
    };
    let mut parts = Vec::new();
    if let Some((userinfo, _host)) = authority.rsplit_once('@') {
        parts.push(userinfo.to_string());
        if let Some((_user, password)) = userinfo.split_once(':') {
            parts.push(password.to_string());
        }
    }
    let (path, query) = match path_query.split_once('?') {
        Some((p, q)) => (p, q),
        None => (path_query, ""),
    };
    parts.push(path.to_string());
    parts.push(path.trim_start_matches('/').to_string());
    parts.push(query.to_string());
    for pair in query.split('&') {
        parts.push(pair.split_once('=').map_or(pair, |(_, v)| v).to_string());
    }
    parts.retain(|p| p.chars().count() >= MIN_URL_PART);
    parts
}

/// `plain` percent-encoded, form-encoded, hex (both cases) and base64 (standard and
/// URL-safe; the part of the encoding that is the same at each of the three byte offsets
/// the value can start at inside a longer base64 text). Forms equal to `plain` are left
/// out.
fn encodings(plain: &str) -> Vec<String> {
    let bytes = plain.as_bytes();
    let mut out = vec![
        percent(bytes, Percent::Reserved, true),
        percent(bytes, Percent::Reserved, false),
        percent(bytes, Percent::Form, true),
        percent(bytes, Percent::AllButAlphanumeric, true),
        percent(bytes, Percent::AllButAlphanumeric, false),
        hex::encode(bytes),
        hex::encode_upper(bytes),
    ];
    for engine in [
        &base64::engine::general_purpose::STANDARD_NO_PAD,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ] {
        for offset in 0..3usize {
            let mut shifted = vec![0u8; offset];
            shifted.extend_from_slice(bytes);
            let encoded = engine.encode(&shifted);
            // Characters whose 6 bits all come from the value: from bit 8·offset to
            // bit 8·(offset + len).
            let first = (8 * offset).div_ceil(6);
            let end = 8 * (offset + bytes.len()) / 6;
            if end > first && end - first >= MIN_BASE64_CORE {
                out.push(encoded[first..end].to_string());
            }
        }
    }
    out.retain(|f| f != plain);
    out
}

/// Which bytes a percent-encoder escapes: encoders differ, so each form is redacted.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Percent {
    /// Everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`).
    Reserved,
    /// As `Reserved`, with a space as `+` (application/x-www-form-urlencoded).
    Form,
    /// Everything but letters and digits (some encoders escape `-` `.` `_` `~` too).
    AllButAlphanumeric,
}

/// `bytes` percent-encoded as `how` says, with upper- or lower-case hex digits.
fn percent(bytes: &[u8], how: Percent, upper: bool) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        let unreserved =
            matches!(b, b'-' | b'.' | b'_' | b'~') && how != Percent::AllButAlphanumeric;
        match b {
            _ if b.is_ascii_alphanumeric() || unreserved => out.push(b as char),
            b' ' if how == Percent::Form => out.push('+'),
            _ if upper => out.push_str(&format!("%{b:02X}")),
            _ => out.push_str(&format!("%{b:02x}")),
        }
    }
    out
}

#[cfg(test)]
#[path = "secrets_tests.rs"]
mod tests;
