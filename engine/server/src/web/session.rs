//! Signing in with a personal token, sessions and CSRF tokens.
//!
//! A person pastes their personal token from `[users]` once; medic answers with a random
//! session id in a cookie (HttpOnly, SameSite=Strict, Secure behind HTTPS, expiring after
//! [`SESSION_TTL_MS`]). Sessions are stored (`x/web/session/<sha256 of the id>`), so a
//! restart of medic does not sign everybody out, and only the hash is kept, so a copy of
//! the store holds no usable session. Each session has its own CSRF token, which every
//! form carries and every POST checks. A session ends at sign-out, at expiry, or when the
//! person's token in medic.toml changes.

use crate::Service;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use medic_core::{Durability, Entropy, OsEntropy, codec};
use medic_store::Op;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// How long a session lasts: a long on-call night, not a week.
pub(crate) const SESSION_TTL_MS: u64 = 12 * 3600 * 1000;
pub(crate) const COOKIE: &str = "medic_session";
/// The sign-in form's own CSRF token (double-submit: cookie and field must match),
/// since there is no session yet to keep it in.
pub(crate) const SIGNIN_COOKIE: &str = "medic_signin";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    user: String,
    /// SHA-256 of the personal token signed in with: a changed token ends the session.
    token_sha256: String,
    csrf: String,
    expires_ms: u64,
}

/// A signed-in person: the extractor every page but sign-in takes. Without a valid
/// session, a page request is redirected to sign-in.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub user: String,
    pub csrf: String,
    id_hash: String,
}

pub(crate) fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    OsEntropy.fill(&mut buf);
    hex::encode(buf)
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn store_key(id_hash: &str) -> Vec<u8> {
    format!("web/session/{id_hash}").into_bytes()
}

/// Equal-time comparison of two secrets, so a guess learns nothing from timing.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A cookie's value from the request.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Served over HTTPS (directly, or behind a proxy that says so): cookies get `Secure`.
fn https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value scoped to the web view.
pub(crate) fn set_cookie(
    headers: &HeaderMap,
    name: &str,
    value: &str,
    max_age_s: u64,
) -> HeaderValue {
    let secure = if https(headers) { "; Secure" } else { "" };
    let v =
        format!("{name}={value}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}");
    HeaderValue::from_str(&v).expect("cookie values are hex")
}

impl Session {
    /// Looks up the request's session: `None` when absent, expired, or its person's token
    /// changed.
    pub(crate) fn find(svc: &Service, headers: &HeaderMap) -> Option<Session> {
        let id = cookie(headers, COOKIE)?;
        let id_hash = sha256_hex(id);
        let raw = svc.store.get(&store_key(&id_hash)).ok()??;
        let r: Record = codec::decode(&raw).ok()?;
        let token = svc.config.users.get(&r.user)?;
        if r.expires_ms <= svc.clock.now_ms() || !same_secret(&sha256_hex(token), &r.token_sha256) {
            return None;
        }
        Some(Session {
            user: r.user,
            csrf: r.csrf,
            id_hash,
        })
    }

    /// Starts a session for the person whose personal token this is; returns the cookie
    /// value to set. `Ok(None)`: not a personal token.
    pub(crate) fn start(
        svc: &Service,
        token: &str,
    ) -> Result<Option<String>, medic_core::StoreError> {
        let token = token.trim();
        let Some((user, _)) = svc
            .config
            .users
            .iter()
            .find(|(_, t)| !token.is_empty() && same_secret(t, token))
        else {
            return Ok(None);
        };
        let id = random_hex(32);
        let now = svc.clock.now_ms();
        let record = Record {
            user: user.clone(),
            token_sha256: sha256_hex(token),
            csrf: random_hex(32),
            expires_ms: now + SESSION_TTL_MS,
        };
        let mut ops = vec![Op::Put(store_key(&sha256_hex(&id)), codec::encode(&record))];
        // Expired sessions go when someone signs in: there are few, and no timer needed.
        for (k, v) in svc.store.scan(b"web/session/")? {
            if codec::decode::<Record>(&v).is_ok_and(|r| r.expires_ms <= now) {
                ops.push(Op::Remove(k));
            }
        }
        svc.store.write(ops, Durability::Flush)?;
        Ok(Some(id))
    }

    /// Ends this session.
    pub(crate) fn end(&self, svc: &Service) -> Result<(), medic_core::StoreError> {
        svc.store.write(
            vec![Op::Remove(store_key(&self.id_hash))],
            Durability::Flush,
        )
    }

    /// Whether a submitted form carries this session's CSRF token.
    pub(crate) fn csrf_ok(&self, submitted: Option<&str>) -> bool {
        submitted.is_some_and(|s| same_secret(s, &self.csrf))
    }
}

/// Where to send someone without a session: sign-in, then back to what they asked for.
fn to_signin(parts: &Parts) -> Response {
    // Nested under /ui, the router sees the path without its prefix.
    let asked = parts.uri.path_and_query().map_or("/runs", |p| p.as_str());
    let full = if asked.starts_with("/ui/") {
        asked.to_string()
    } else {
        format!("/ui{asked}")
    };
    let next = if full.starts_with("/ui/signin") || full.ends_with("/events") {
        "/ui/runs"
    } else {
        full.as_str()
    };
    let target = format!("/ui/signin?next={}", urlencode(next));
    Redirect::to(&target).into_response()
}

/// Percent-encodes a query value (everything but unreserved characters).
pub(crate) fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl FromRequestParts<Arc<Service>> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, svc: &Arc<Service>) -> Result<Self, Response> {
        let worker = svc.clone();
        let headers = parts.headers.clone();
        let found = tokio::task::spawn_blocking(move || Session::find(&worker, &headers))
            .await
            .ok()
            .flatten();
        found.ok_or_else(|| to_signin(parts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_and_secrets() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; medic_session=abc; b=2"),
        );
        assert_eq!(cookie(&h, COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
        assert_eq!(
            urlencode("/ui/runs?status=failed&x=a b"),
            "/ui/runs%3Fstatus%3Dfailed%26x%3Da%20b"
        );
        let plain = set_cookie(&h, COOKIE, "v", 60);
        assert!(!plain.to_str().unwrap().contains("Secure"));
        h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        let secure = set_cookie(&h, COOKIE, "v", 60)
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            secure.contains("HttpOnly; SameSite=Strict; Max-Age=60; Secure"),
            "{secure}"
        );
    }
}
