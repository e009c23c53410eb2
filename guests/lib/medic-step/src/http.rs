//! The wasi:http client of medic's steps: one request, the status, the `Retry-After` header
//! and a bounded body, with per-call limits.
//!
//! Why not `wstd::http::Client::send`: it writes the request body and awaits the response
//! together and fails on whichever errors first. When the host refuses the request (the
//! workflow's `allow:` list) or the server answers and closes at once, the body stream is
//! already closed, so the step gets a bare "connection reset" instead of the real `ErrorCode`
//! (`HttpRequestDenied`). Here a body write failure is ignored and the response future alone
//! decides the outcome. `wstd` provides the async runtime and streams.
//!
//! Errors never contain the URL: for some steps it is a credential (a webhook URL), so each
//! caller decides whether to name it, its host, or a param ([`send_failure`] names what it is
//! given).

use std::time::Duration;

use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, OutgoingBody, OutgoingRequest, RequestOptions, Scheme};
use wstd::http::Uri;
use wstd::io::{AsyncInputStream, AsyncOutputStream, AsyncPollable};

pub use wasip2::http::types::{ErrorCode, Method};

use crate::Failure;

/// Why a request produced no response.
#[derive(Debug)]
pub enum SendError {
    /// The URL or a header cannot make a request. Never contains the URL (see the module docs).
    Invalid(String),
    /// The host or the network answered with this wasi:http error.
    Http(ErrorCode),
}

/// One request. `content-length` is set from `body` unless `headers` has one.
pub struct Request<'a> {
    /// The HTTP method ([`method`] maps a name to it).
    pub method: Method,
    /// The absolute `http://` or `https://` URL.
    pub url: &'a str,
    /// (name, value) pairs; names are sent lowercased.
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
    /// The HTTP status code.
    pub status: u16,
    /// `Retry-After`, when the server sent one (seconds or a date, as text).
    pub retry_after: Option<String>,
    /// At most `Limits::max_body` bytes of the body.
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
///
/// # Errors
///
/// [`SendError::Invalid`] when the URL or a header cannot make a request;
/// [`SendError::Http`] when the host refused the request (`HttpRequestDenied`: the host is
/// not in the step's `allow:`) or the network failed (DNS, refused, reset, timeout).
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

/// The header list sent: names lowercased, plus `content-length` when there is a body and
/// the caller gave none (without one the host streams the body chunked, which some servers
/// refuse).
fn header_entries(headers: &[(&str, &str)], body: Option<&[u8]>) -> Vec<(String, Vec<u8>)> {
    let mut entries: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.as_bytes().to_vec()))
        .collect();
    let given = entries.iter().any(|(name, _)| name == "content-length");
    if let Some(body) = body
        && !given
    {
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

/// A request that got no response, as a [`Failure`] naming `shown` (the URL, or only its host
/// when the URL is a credential) and the param it came from. Denial by the host's `allow:`
/// list and an unusable URL are final; anything else (refused, reset, DNS, timeout) may clear
/// up on a later attempt.
pub fn send_failure(error: SendError, param: &str, shown: &str) -> Failure {
    match error {
        SendError::Invalid(why) => Failure::fatal(format!("param `{param}`: {why}: {shown}")),
        SendError::Http(ErrorCode::HttpRequestDenied) => Failure::fatal(format!(
            "request to {shown} denied: host not allowed for this step (add its host to the step's `allow:`)"
        )),
        SendError::Http(code) => Failure::transient(format!("request to {shown} failed: {code}")),
    }
}

/// The start of a response body on one line (white space folded), at most 200 characters,
/// for an error message that quotes what a service answered.
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut cut: String = line.chars().take(200).collect();
    if cut.len() < line.len() {
        cut.push('…');
    }
    cut
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
