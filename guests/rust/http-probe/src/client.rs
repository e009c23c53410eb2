//! A minimal wasi:http client for one probe request.
//!
//! Why not `wstd::http::Client::send`: it sends the request body and awaits
//! the response together and fails on whichever errors first. When the host
//! refuses the request (allow-list) or the server answers and closes before
//! reading the body, the body stream is already closed, so the guest gets a
//! bare "connection reset" and loses both the real `ErrorCode` and, for a
//! plain GET, a perfectly good response. Here a body write failure is
//! ignored and the response future alone decides the outcome. `wstd` still
//! provides the async runtime and stream wrappers.

use std::time::Duration;

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};
use wstd::http::{HeaderName, HeaderValue, Uri};
use wstd::io::{AsyncInputStream, AsyncOutputStream, AsyncPollable};

use crate::probe::{Failure, Params};

/// Why a request produced no response.
pub enum SendError {
    /// The params cannot make a valid request (bad URL, header, ...).
    Invalid(Failure),
    /// The host or the network answered with this wasi:http error.
    Http(ErrorCode),
}

/// A response: status and at most `max_body` bytes of the body.
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Sends the request described by `params` (plus `extra_headers`) and reads
/// at most `max_body` bytes of the response body.
pub async fn send(
    params: &Params,
    extra_headers: &[(&str, &str)],
    timeout: Option<Duration>,
    max_body: usize,
) -> Result<Reply, SendError> {
    let request = build(params, extra_headers)?;
    let body = request
        .body()
        .map_err(|()| internal("request body already taken"))?;

    let options = timeout.map(|timeout| {
        let options = RequestOptions::new();
        let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        // A host may not support timeouts; the host's own step timeout still
        // applies, so ignoring the refusal is safe.
        let _ = options.set_connect_timeout(Some(nanos));
        let _ = options.set_first_byte_timeout(Some(nanos));
        options
    });
    let pending = outgoing_handler::handle(request, options).map_err(SendError::Http)?;

    write_body(body, params.body.as_deref().unwrap_or_default()).await;

    AsyncPollable::new(pending.subscribe()).wait_for().await;
    let response = match pending.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(SendError::Http(code)),
        Some(Err(())) | None => return Err(internal("response future was not ready")),
    };
    let status = response.status();

    let incoming = response
        .consume()
        .map_err(|()| internal("response body already taken"))?;
    let stream = incoming
        .stream()
        .map_err(|()| internal("response body stream already taken"))?;
    let reader = AsyncInputStream::new(stream);
    let mut bytes = Vec::new();
    let mut chunk = vec![0; 16 * 1024];
    while bytes.len() < max_body {
        match reader.read(&mut chunk).await {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&chunk[..n.min(max_body - bytes.len())]),
            Err(e) => {
                return Err(SendError::Http(ErrorCode::InternalError(Some(format!(
                    "reading the response body: {e}"
                )))));
            }
        }
    }
    // The stream is a child of the body resource: drop it first.
    drop(reader);
    drop(incoming);
    Ok(Reply {
        status,
        body: bytes,
    })
}

fn internal(message: &str) -> SendError {
    SendError::Http(ErrorCode::InternalError(Some(message.to_owned())))
}

fn build(params: &Params, extra_headers: &[(&str, &str)]) -> Result<OutgoingRequest, SendError> {
    let invalid = |message: String| SendError::Invalid(Failure::param(message));
    let uri: Uri = params.url.parse().map_err(|e| {
        invalid(format!(
            "param `url` is not a valid URL ({e}): {}",
            params.url
        ))
    })?;
    let authority = uri
        .authority()
        .ok_or_else(|| invalid(format!("param `url` has no host: {}", params.url)))?;
    let scheme = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
        Some("https") => Scheme::Https,
        _ => Scheme::Http,
    };
    let method = match params.method.as_str() {
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "PATCH" => Method::Patch,
        "DELETE" => Method::Delete,
        _ => Method::Get,
    };

    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    for (name, value) in &params.headers {
        // Checked here so the error names the header; the host checks again.
        HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| invalid(format!("param `headers.{name}`: bad header name ({e})")))?;
        HeaderValue::from_str(value)
            .map_err(|e| invalid(format!("param `headers.{name}`: bad header value ({e})")))?;
        entries.push((name.to_ascii_lowercase(), value.clone().into_bytes()));
    }
    for (name, value) in extra_headers {
        entries.push((name.to_ascii_lowercase(), value.as_bytes().to_vec()));
    }
    // Without a length the host streams the body chunked, which simple
    // servers ignore (they read an empty body) and some refuse (411).
    let has_length = entries.iter().any(|(name, _)| name == "content-length");
    let sends_body =
        params.body.is_some() || matches!(params.method.as_str(), "POST" | "PUT" | "PATCH");
    if sends_body && !has_length {
        let length = params.body.as_deref().map_or(0, str::len);
        entries.push(("content-length".to_owned(), length.to_string().into_bytes()));
    }
    let fields = Fields::from_list(&entries)
        .map_err(|e| invalid(format!("param `headers` rejected by the host: {e}")))?;

    let request = OutgoingRequest::new(fields);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let set = request
        .set_method(&method)
        .and_then(|()| request.set_scheme(Some(&scheme)))
        .and_then(|()| request.set_authority(Some(authority.as_str())))
        .and_then(|()| request.set_path_with_query(Some(path)));
    set.map_err(|()| invalid(format!("param `url` rejected by the host: {}", params.url)))?;
    Ok(request)
}

/// Writes the request body and finishes it. Failures are ignored on purpose:
/// the response future reports why the request failed (see the module docs).
async fn write_body(body: OutgoingBody, data: &str) {
    if !data.is_empty()
        && let Ok(stream) = body.write()
    {
        let writer = AsyncOutputStream::new(stream);
        let _ = writer.write_all(data.as_bytes()).await;
        let _ = writer.flush().await;
        // The stream is a child of the body resource: drop it before finish.
        drop(writer);
    }
    let _ = OutgoingBody::finish(body, None);
}
