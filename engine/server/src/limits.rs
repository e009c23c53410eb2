//! Request limits checked before any handler runs: URI length, header size and count,
//! declared and actual body size, and how long the body may take to arrive.
//!
//! The declared size is checked from `Content-Length` alone, so a request announcing
//! 2 MB against a 1 MiB limit gets its 413 at once instead of after the bytes (or never,
//! if they never come). The body is then read whole, within `body_read_timeout`, and
//! handed on buffered: handlers take `Bytes` and never wait on a socket themselves.

use crate::Service;
use crate::error::ApiError;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use std::time::Duration;

/// Longest request target (path and query) accepted, bytes; longer gets 414.
pub const MAX_URI_BYTES: usize = 8 * 1024;
/// Most header bytes (names and values) accepted; more gets 431.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Most header lines accepted; more gets 431.
pub const MAX_HEADERS: usize = 100;

/// Middleware enforcing the limits above and `max_body_bytes` / `body_read_timeout`.
pub(crate) async fn enforce(
    State(svc): State<Arc<Service>>,
    request: Request,
    next: Next,
) -> Response {
    let uri_len = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if uri_len > MAX_URI_BYTES {
        return close(crate::error::error_response(
            StatusCode::URI_TOO_LONG,
            &format!("request target is {uri_len} bytes: at most {MAX_URI_BYTES}"),
        ));
    }
    let headers = request.headers();
    let header_bytes: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.as_bytes().len())
        .sum();
    if headers.len() > MAX_HEADERS || header_bytes > MAX_HEADER_BYTES {
        return close(crate::error::error_response(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            &format!(
                "{} header lines, {header_bytes} bytes: at most {MAX_HEADERS} lines and {MAX_HEADER_BYTES} bytes",
                headers.len()
            ),
        ));
    }
    let limit = svc.config.max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        // Answered from the headers: the body is never read, so the connection closes.
        return close(ApiError::PayloadTooLarge { limit }.into_response());
    }
    let timeout = Duration::from_millis(svc.config.body_read_timeout_ms());
    let (parts, body) = request.into_parts();
    let bytes = match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => {
            // `to_bytes` fails on the limit (a chunked body that grew too big) or on a
            // connection that broke mid-body.
            let over = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            return close(if over {
                ApiError::PayloadTooLarge { limit }.into_response()
            } else {
                ApiError::BadRequest(format!("cannot read the request body: {e}")).into_response()
            });
        }
        Err(_) => {
            return close(ApiError::BodyTimeout(timeout.as_millis() as u64).into_response());
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Asks the client to close: after a refusal mid-request the connection's framing
/// cannot be trusted (an unread body would be parsed as the next request).
fn close(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
