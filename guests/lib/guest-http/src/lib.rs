//! The minimal wasi:http client the provider steps share: one request, the status, the
//! `Retry-After` header and a bounded body.
//!
//! Why not `wstd::http::Client::send`: it writes the request body and awaits the response
//! together and fails on whichever errors first. When the host refuses the request (the
//! workflow's `allow:` list) or the server answers and closes at once, the body stream is
//! already closed, so the guest gets a bare "connection reset" instead of the real `ErrorCode`
//! (`HttpRequestDenied`). Here a body write failure is ignored and the response future alone
//! decides the outcome (as in http-probe). `wstd` provides the async runtime and streams.
//!
//! Errors never contain the URL: for some steps it is a credential (a webhook URL), so each
//! caller decides whether to name it, its host, or a param.
//!
//! This crate lives in `guests/lib/`, not `guests/rust/`: every crate under `rust/` is built
//! into a component by `engine/test-programs`.

mod failure;

pub use failure::{Failure, retry_after_ms, retryable_status};

use std::time::Duration;

use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, OutgoingBody, OutgoingRequest, RequestOptions, Scheme};
use wstd::http::Uri;
use wstd::io::{AsyncInputStream, AsyncOutputStream, AsyncPollable};

pub use wasip2::http::types::{ErrorCode, Method};

/// Why a request produced no response.
#[derive(Debug)]
pub enum SendError {
    /// The URL or a header cannot make a request. Never contains the URL (see the module docs).
    Invalid(String),
    /// The host or the network answered with this wasi:http error.
    Http(ErrorCode),
}

/// One request. `headers` must not include `content-length`: it is set from `body`.
pub struct Request<'a> {
    pub method: Method,
    pub url: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    /// `None` sends neither a body nor a `content-length`; `Some(b"")` sends
    /// `content-length: 0`, which some servers require on a POST (411 otherwise).
    pub body: Option<&'a [u8]>,
}

/// How much a request may take: response bytes kept, and time.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Most response body bytes kept; the rest is not read ([`Reply::truncated`]). Bounds
    /// guest memory when a wrong URL serves something huge.
    pub max_body: usize,
    /// Connect and first-byte timeout asked of the host. `None` leaves only the host's own
    /// step timeout, which applies in any case.
    pub timeout: Option<Duration>,
}

impl Limits {
    /// At most `max_body` bytes of body, no timeout of our own.
    pub const fn body(max_body: usize) -> Self {
        Self {
            max_body,
            timeout: None,
        }
    }

    /// The same limits with a connect and first-byte timeout.
    pub const fn with_timeout(self, timeout: Duration) -> Self {
        Self {
            timeout: Some(timeout),
            ..self
        }
    }
}

/// A response: status, the headers callers look at, at most `max_body` bytes of body.
pub struct Reply {
    pub status: u16,
    /// `Retry-After`, when the server sent one (seconds or a date, as text).
    pub retry_after: Option<String>,
    pub body: Vec<u8>,
    /// The body was longer than `max_body` and was cut there.
    pub truncated: bool,
}

impl Reply {
    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `request` and reads its response within `limits`.
pub async fn send(request: &Request<'_>, limits: Limits) -> Result<Reply, SendError> {
    let outgoing = build(request)?;
    let body = outgoing
        .body()
        .map_err(|()| internal("request body already taken"))?;

    let options = limits.timeout.map(|timeout| {
        let options = RequestOptions::new();
        let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
        // A host may not support these; its own step timeout still applies.
        let _ = options.set_connect_timeout(Some(nanos));
        let _ = options.set_first_byte_timeout(Some(nanos));
        options
    });
    let pending = outgoing_handler::handle(outgoing, options).map_err(SendError::Http)?;

    write_body(body, request.body.unwrap_or_default()).await;

    AsyncPollable::new(pending.subscribe()).wait_for().await;
    let response = match pending.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(SendError::Http(code)),
        Some(Err(())) | None => return Err(internal("response future was not ready")),
    };
    let status = response.status();
    let retry_after = {
        let headers = response.headers();
        let value = headers.get("retry-after").into_iter().next();
        value.map(|v| String::from_utf8_lossy(&v).into_owned())
    };

    let incoming = response
        .consume()
        .map_err(|()| internal("response body already taken"))?;
    let stream = incoming
        .stream()
        .map_err(|()| internal("response body stream already taken"))?;
    let reader = AsyncInputStream::new(stream);
    let mut bytes = Vec::new();
    let mut chunk = vec![0; 64 * 1024];
    let truncated = loop {
        match reader.read(&mut chunk).await {
            Ok(0) => break false,
            Ok(n) => {
                if append_capped(&mut bytes, &chunk[..n], limits.max_body) {
                    break true;
                }
            }
            Err(e) => return Err(internal(&format!("reading the response body: {e}"))),
        }
    };
    // The stream is a child of the body resource: drop it first.
    drop(reader);
    drop(incoming);
    Ok(Reply {
        status,
        retry_after,
        body: bytes,
        truncated,
    })
}

/// Appends what fits of `chunk` under `max` bytes; true when some of it did not fit.
fn append_capped(body: &mut Vec<u8>, chunk: &[u8], max: usize) -> bool {
    let room = max.saturating_sub(body.len());
    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
    chunk.len() > room
}

fn internal(message: &str) -> SendError {
    SendError::Http(ErrorCode::InternalError(Some(message.to_owned())))
}

/// Where a URL points: scheme, authority, path with query. Errors do not repeat the URL.
fn target(url: &str) -> Result<(Scheme, String, String), SendError> {
    let uri: Uri = url
        .parse()
        .map_err(|e| SendError::Invalid(format!("not a valid URL ({e})")))?;
    let authority = uri
        .authority()
        .ok_or_else(|| SendError::Invalid("the URL has no host".into()))?;
    let scheme = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
        Some("https") => Scheme::Https,
        Some("http") => Scheme::Http,
        _ => {
            return Err(SendError::Invalid(
                "the URL is not http:// or https://".into(),
            ));
        }
    };
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    Ok((scheme, authority.as_str().to_owned(), path.to_owned()))
}

/// The header list sent: names lowercased, plus `content-length` when there is a body
/// (without one the host streams the body chunked, which some servers refuse).
fn header_entries(headers: &[(&str, &str)], body: Option<&[u8]>) -> Vec<(String, Vec<u8>)> {
    let mut entries: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.as_bytes().to_vec()))
        .collect();
    if let Some(body) = body {
        entries.push(("content-length".into(), body.len().to_string().into_bytes()));
    }
    entries
}

fn build(request: &Request<'_>) -> Result<OutgoingRequest, SendError> {
    let (scheme, authority, path) = target(request.url)?;
    let fields = Fields::from_list(&header_entries(request.headers, request.body))
        .map_err(|e| SendError::Invalid(format!("request headers rejected by the host: {e}")))?;
    let outgoing = OutgoingRequest::new(fields);
    let set = outgoing
        .set_method(&request.method)
        .and_then(|()| outgoing.set_scheme(Some(&scheme)))
        .and_then(|()| outgoing.set_authority(Some(&authority)))
        .and_then(|()| outgoing.set_path_with_query(Some(&path)));
    set.map_err(|()| SendError::Invalid("the URL was rejected by the host".into()))?;
    Ok(outgoing)
}

/// Writes the request body and finishes it. Failures are ignored on purpose: the response
/// future reports why the request failed (see the module docs).
async fn write_body(body: OutgoingBody, data: &[u8]) {
    if !data.is_empty()
        && let Ok(stream) = body.write()
    {
        let writer = AsyncOutputStream::new(stream);
        let _ = writer.write_all(data).await;
        let _ = writer.flush().await;
        // The stream is a child of the body resource: drop it before finish.
        drop(writer);
    }
    let _ = OutgoingBody::finish(body, None);
}

/// The wasi:http method for an upper-case HTTP method name; others pass through as given.
pub fn method(name: &str) -> Method {
    match name {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "PATCH" => Method::Patch,
        "DELETE" => Method::Delete,
        "OPTIONS" => Method::Options,
        other => Method::Other(other.to_owned()),
    }
}

/// Percent-encodes one URL path segment or query value (RFC 3986 unreserved characters stay
/// as they are), so names from params cannot change the path.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests;
