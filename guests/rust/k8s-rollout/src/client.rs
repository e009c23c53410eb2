//! A minimal wasi:http client for JSON API calls.
//!
//! Why not `wstd::http::Client::send`: as in `http-probe` (see its `client.rs`), it fails
//! with a bare "connection reset" when the host refuses a request (allow list), hiding the
//! real `ErrorCode`. Here a body write failure is ignored and the response future alone
//! decides the outcome; `wstd` provides the async runtime and stream wrappers.

use wasip2::http::outgoing_handler;
use wasip2::http::types::{ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, Scheme};
use wstd::http::Uri;
use wstd::io::{AsyncInputStream, AsyncOutputStream, AsyncPollable};

/// Kubernetes objects and lists of a few ReplicaSets are small; this bounds guest memory if
/// a server sends something huge.
const MAX_BODY: usize = 8 * 1024 * 1024;

/// Why a request produced no response.
pub enum SendError {
    /// The URL or a header cannot make a valid request.
    Invalid(String),
    /// The host or the network answered with this wasi:http error.
    Http(ErrorCode),
}

/// A response: status and body.
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

/// One request. `headers` are lowercase names; a body gets its `content-length`.
pub async fn send(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Result<Reply, SendError> {
    let request = build(method, url, headers, body)?;
    let outgoing = request
        .body()
        .map_err(|()| internal("request body already taken"))?;
    let pending = outgoing_handler::handle(request, None).map_err(SendError::Http)?;
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
    let mut chunk = vec![0; 64 * 1024];
    loop {
        match reader.read(&mut chunk).await {
            Ok(0) => break,
            Ok(n) if bytes.len() + n <= MAX_BODY => bytes.extend_from_slice(&chunk[..n]),
            Ok(_) => {
                return Err(internal(&format!(
                    "response body larger than {MAX_BODY} bytes"
                )));
            }
            Err(e) => return Err(internal(&format!("reading the response body: {e}"))),
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
    method: &str,
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
    let method = match method {
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "PATCH" => Method::Patch,
        "DELETE" => Method::Delete,
        _ => Method::Get,
    };
    let mut entries: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(n, v)| ((*n).to_owned(), v.as_bytes().to_vec()))
        .collect();
    if let Some(body) = body {
        // Without a length the host streams the body chunked, which some servers refuse.
        entries.push(("content-length".into(), body.len().to_string().into_bytes()));
    }
    let fields = Fields::from_list(&entries)
        .map_err(|e| SendError::Invalid(format!("headers rejected by the host: {e}")))?;
    let request = OutgoingRequest::new(fields);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    request
        .set_method(&method)
        .and_then(|()| request.set_scheme(Some(&scheme)))
        .and_then(|()| request.set_authority(Some(authority.as_str())))
        .and_then(|()| request.set_path_with_query(Some(path)))
        .map_err(|()| SendError::Invalid(format!("URL rejected by the host: {url}")))?;
    Ok(request)
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
