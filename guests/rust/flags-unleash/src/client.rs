//! A minimal wasi:http client: one request, the status and a bounded body.
//!
//! The same design as `http-probe`'s client, for the same reason: `wstd`'s
//! `Client::send` turns a host denial (allow-list) or an early close into a
//! bare "connection reset". Here a body write failure is ignored and the
//! response future alone decides the outcome, so the real `ErrorCode`
//! reaches the step error. `wstd` provides the async runtime and streams.

use std::time::Duration;

use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};
use wstd::http::Uri;
use wstd::io::{AsyncInputStream, AsyncOutputStream, AsyncPollable};

/// Largest response body kept: Unleash answers are small; this bounds guest
/// memory if a wrong URL serves something huge.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Why a request produced no response.
pub enum SendError {
    /// The URL cannot make a valid request.
    Invalid(String),
    /// The host or the network answered with this wasi:http error.
    Http(ErrorCode),
}

/// A response: status and at most [`MAX_BODY_BYTES`] of the body.
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `method url` with `headers` and `body`, and reads the response.
pub async fn send(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    timeout: Duration,
) -> Result<Reply, SendError> {
    let request = build(&method, url, headers, body)?;
    let outgoing = request
        .body()
        .map_err(|()| internal("request body already taken"))?;

    let options = RequestOptions::new();
    let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
    // A host may not support these; its own step timeout still applies.
    let _ = options.set_connect_timeout(Some(nanos));
    let _ = options.set_first_byte_timeout(Some(nanos));
    let pending = outgoing_handler::handle(request, Some(options)).map_err(SendError::Http)?;

    write_body(outgoing, body.unwrap_or_default()).await;

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
    while bytes.len() < MAX_BODY_BYTES {
        match reader.read(&mut chunk).await {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&chunk[..n.min(MAX_BODY_BYTES - bytes.len())]),
            Err(e) => {
                return Err(internal(&format!("reading the response body: {e}")));
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

fn build(
    method: &Method,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<OutgoingRequest, SendError> {
    let uri: Uri = url
        .parse()
        .map_err(|e| SendError::Invalid(format!("not a valid URL ({e}): {url}")))?;
    let authority = uri
        .authority()
        .ok_or_else(|| SendError::Invalid(format!("URL has no host: {url}")))?;
    let scheme = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
        Some("https") => Scheme::Https,
        _ => Scheme::Http,
    };
    let mut entries: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.as_bytes().to_vec()))
        .collect();
    // Without a length the host streams the body chunked, which some servers
    // refuse (411) on a POST.
    if let Some(body) = body {
        entries.push(("content-length".into(), body.len().to_string().into_bytes()));
    }
    let fields = Fields::from_list(&entries)
        .map_err(|e| SendError::Invalid(format!("request headers rejected by the host: {e}")))?;
    let request = OutgoingRequest::new(fields);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let set = request
        .set_method(method)
        .and_then(|()| request.set_scheme(Some(&scheme)))
        .and_then(|()| request.set_authority(Some(authority.as_str())))
        .and_then(|()| request.set_path_with_query(Some(path)));
    set.map_err(|()| SendError::Invalid(format!("URL rejected by the host: {url}")))?;
    Ok(request)
}

/// Writes the request body and finishes it. Failures are ignored on purpose:
/// the response future reports why the request failed (see the module docs).
async fn write_body(body: OutgoingBody, data: &[u8]) {
    if !data.is_empty()
        && let Ok(stream) = body.write()
    {
        let writer = AsyncOutputStream::new(stream);
        let _ = writer.write_all(data).await;
        let _ = writer.flush().await;
        drop(writer);
    }
    let _ = OutgoingBody::finish(body, None);
}

/// Percent-encodes one URL path segment or query value (RFC 3986 unreserved
/// characters stay as they are), so names from params cannot change the path.
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
