//! A minimal wasi:http client: one request with a body, one bounded response.
//!
//! The same file as chat-webhook's `client.rs` (guest crates are components, so they cannot
//! share a library crate under `rust/` without it being built as a component too).
//!
//! Why not `wstd::http::Client::send`: it writes the request body and awaits the response
//! together and fails on whichever errors first. When the host refuses the request (the
//! workflow's `allow:` list) the body stream is already closed, so the guest would get a bare
//! "connection reset" instead of `HttpRequestDenied`. Here a body write failure is ignored and
//! the response future alone decides the outcome (as in http-probe). `wstd` provides the async
//! runtime and stream wrappers.

use wasip2::http::outgoing_handler;
use wasip2::http::types::{ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, Scheme};
use wstd::http::Uri;
use wstd::io::{AsyncInputStream, AsyncOutputStream, AsyncPollable};

/// Why a request produced no response.
pub enum SendError {
    /// The URL cannot make a request (no host, ...). Never contains the URL: callers decide
    /// whether it may be shown (a webhook URL is a credential).
    Invalid(String),
    /// The host or the network answered with this wasi:http error.
    Http(ErrorCode),
}

/// A response: status, the headers the callers look at, at most `max_body` bytes of body.
pub struct Reply {
    pub status: u16,
    /// `Retry-After`, when the server sent one (seconds, as text).
    pub retry_after: Option<String>,
    pub body: Vec<u8>,
}

/// One request. `headers` must not include `content-length`: it is set from `body`.
pub struct Request<'a> {
    pub method: Method,
    pub url: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

/// Sends `request` and reads at most `max_body` bytes of the response body.
pub async fn send(request: &Request<'_>, max_body: usize) -> Result<Reply, SendError> {
    let outgoing = build(request)?;
    let body = outgoing
        .body()
        .map_err(|()| internal("request body already taken"))?;
    let pending = outgoing_handler::handle(outgoing, None).map_err(SendError::Http)?;

    write_body(body, request.body).await;

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
    let mut chunk = vec![0; 16 * 1024];
    while bytes.len() < max_body {
        match reader.read(&mut chunk).await {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&chunk[..n.min(max_body - bytes.len())]),
            Err(e) => return Err(internal(&format!("reading the response body: {e}"))),
        }
    }
    // The stream is a child of the body resource: drop it first.
    drop(reader);
    drop(incoming);
    Ok(Reply {
        status,
        retry_after,
        body: bytes,
    })
}

fn internal(message: &str) -> SendError {
    SendError::Http(ErrorCode::InternalError(Some(message.to_owned())))
}

fn build(request: &Request<'_>) -> Result<OutgoingRequest, SendError> {
    let uri: Uri = request
        .url
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

    let mut entries: Vec<(String, Vec<u8>)> = request
        .headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.as_bytes().to_vec()))
        .collect();
    // Without a length the host streams the body chunked, which some servers refuse (411).
    let sends_body = !request.body.is_empty() || !matches!(request.method, Method::Get);
    if sends_body {
        let length = request.body.len().to_string().into_bytes();
        entries.push(("content-length".to_owned(), length));
    }
    let fields = Fields::from_list(&entries)
        .map_err(|e| SendError::Invalid(format!("request headers rejected by the host: {e}")))?;

    let outgoing = OutgoingRequest::new(fields);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let set = outgoing
        .set_method(&request.method)
        .and_then(|()| outgoing.set_scheme(Some(&scheme)))
        .and_then(|()| outgoing.set_authority(Some(authority.as_str())))
        .and_then(|()| outgoing.set_path_with_query(Some(path)));
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
