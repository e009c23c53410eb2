//! Every error answer of the HTTP API, and the one place that maps it to a status.
//!
//! Handlers return `Result<_, ApiError>` and use `?`; [`ApiError`]'s `IntoResponse` writes
//! the documented shape `{"error": "<what is wrong and what to do>"}` (docs/serve.md).
//! Answers made outside the handlers (no such route, wrong method, a body over the limit,
//! a URI or headers too long) get the same shape from [`json_errors`].

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use medic_core::StoreError;
use medic_core::gates::Refusal;
use medic_intake::IntakeError;
use serde_json::json;

/// Why a request was not served. The `Display` text goes back verbatim as `error`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No bearer token, or not one this endpoint accepts (401).
    #[error("{0}")]
    Unauthorized(&'static str),
    /// Authenticated, but not allowed to do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// No such resource (404).
    #[error("{0}")]
    NotFound(String),
    /// Malformed request: the message names what and where (400).
    #[error("{0}")]
    BadRequest(String),
    /// Well-formed request with a value medic cannot use (422).
    #[error("{0}")]
    Unprocessable(String),
    /// The body is not `application/json` (415).
    #[error("content type must be application/json, got `{0}`")]
    UnsupportedMediaType(String),
    /// The body (declared or read) is over `max_body_bytes` (413).
    #[error("request body is over the limit of {limit} bytes (max_body_bytes)")]
    PayloadTooLarge {
        /// The configured limit, bytes.
        limit: usize,
    },
    /// The body did not arrive within `body_read_timeout` (408).
    #[error("request body not received within {0} ms (body_read_timeout)")]
    BodyTimeout(u64),
    /// A webhook body medic cannot read; the status comes from [`IntakeError::http_status`].
    #[error(transparent)]
    Intake(#[from] IntakeError),
    /// A gate decision refused; the status comes from [`Refusal::http_status`].
    #[error(transparent)]
    Gate(#[from] Refusal),
    /// The store cannot be read or written (disk full, I/O error): 503, so senders retry.
    /// (A missing run converts to [`ApiError::NotFound`] instead.)
    #[error("store: {0}")]
    Store(StoreError),
    /// The service cannot take this now (shutting down, store not writable): 503.
    #[error("{0}")]
    Unavailable(String),
}

impl ApiError {
    /// The HTTP status of this error: the only mapping from errors to statuses.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Intake(e) => {
                StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST)
            }
            ApiError::Gate(r) => {
                StatusCode::from_u16(r.http_status()).unwrap_or(StatusCode::CONFLICT)
            }
            ApiError::Store(_) | ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A config setting that cannot be used (limits, the secrets file).
    #[error("config: {0}")]
    Config(String),
    /// A secret that cannot be used (too short to redact).
    #[error(transparent)]
    Secret(#[from] medic_core::SecretError),
    /// The run drivers' threads could not be started (drivers.rs).
    #[error("cannot start the run drivers' threads: {0}")]
    Threads(#[source] std::io::Error),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NoSuchRun(_) => ApiError::NotFound(e.to_string()),
            other => ApiError::Store(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error_response(self.status(), &self.to_string())
    }
}

/// `{"error": message}` with `status`.
pub(crate) fn error_response(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

/// Middleware: an error answer that is not JSON (axum's 404 and 405, hyper-independent
/// rejections such as the body limit's 413) is rewritten to `{"error": …}`, so a sender
/// never has to parse two shapes.
pub(crate) async fn json_errors(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        // The web view answers its refusals as pages for people: leave HTML alone.
        .is_some_and(|v| {
            v.as_bytes().starts_with(b"application/json") || v.as_bytes().starts_with(b"text/html")
        });
    if is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let message = match status {
        StatusCode::NOT_FOUND => format!("no such endpoint: {path} (see docs/serve.md)"),
        StatusCode::METHOD_NOT_ALLOWED => {
            let allowed = parts
                .headers
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            format!("{path} does not take {method} (it takes: {allowed})")
        }
        _ if !text.trim().is_empty() => text.trim().to_string(),
        _ => status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_string(),
    };
    let body = serde_json::to_vec(&json!({ "error": message })).unwrap_or_default();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}
