//! Who is calling, as axum extractors: a handler that takes a [`Caller`] (API, gates) or
//! a [`Sender`] (intake) only runs for a request carrying an accepted bearer token; any
//! other request gets the 401 of [`ApiError::Unauthorized`].
//!
//! Two kinds of token (docs/serve.md): `tokens` are for systems (Alertmanager, Grafana,
//! chat bots) and `[users]` are personal. Both read the API and decide gates; only the
//! former send alerts, unless `intake_accepts_user_tokens = true`, because a person's
//! token leaking into an alerting pipeline's config should not be what lets it page.

use crate::Service;
use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use std::sync::Arc;

/// The caller behind the request's bearer token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// One of `tokens`: a system (Alertmanager, a chat bot); it names people itself.
    Service,
    /// A personal token from `[users]`: decisions are recorded under this name.
    User(String),
}

const MISSING: &str =
    "missing or wrong bearer token (Authorization: Bearer <token> from the engine config)";

impl Caller {
    /// The caller whose token `headers` carry, if it is a configured one. Tokens are
    /// compared in full: a prefix or a token with extra characters is no token.
    pub(crate) fn of(svc: &Service, headers: &HeaderMap) -> Option<Caller> {
        let value = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())?;
        let token = value.strip_prefix("Bearer ")?.trim();
        if token.is_empty() {
            return None;
        }
        if let Some((name, _)) = svc.config.users.iter().find(|(_, t)| t.as_str() == token) {
            return Some(Caller::User(name.clone()));
        }
        svc.config
            .tokens
            .iter()
            .any(|t| t == token)
            .then_some(Caller::Service)
    }
}

impl FromRequestParts<Arc<Service>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, svc: &Arc<Service>) -> Result<Self, ApiError> {
        Caller::of(svc, &parts.headers).ok_or(ApiError::Unauthorized(MISSING))
    }
}

/// A caller allowed to send alerts: a system token, or a personal one when the config
/// says `intake_accepts_user_tokens = true`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender(
    /// Who sends.
    pub Caller,
);

impl FromRequestParts<Arc<Service>> for Sender {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, svc: &Arc<Service>) -> Result<Self, ApiError> {
        match Caller::of(svc, &parts.headers) {
            Some(Caller::User(_)) if !svc.config.intake_accepts_user_tokens => {
                Err(ApiError::Forbidden(
                    "personal tokens ([users]) do not send alerts: use one of `tokens` \
                     (or set intake_accepts_user_tokens = true in the engine config)"
                        .into(),
                ))
            }
            Some(caller) => Ok(Sender(caller)),
            None => Err(ApiError::Unauthorized(MISSING)),
        }
    }
}
