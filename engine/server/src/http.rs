//! The HTTP server around [`crate::router`]: hyper's HTTP/1 connections with a header
//! read timeout, a cap on open connections, and a shutdown bounded by `shutdown_grace`.
//!
//! `axum::serve` has none of these: a client that sends half its headers, or declares a
//! body it never sends, would hold its connection (and, after SIGTERM, the process)
//! forever. Here the headers must arrive within `header_read_timeout` (hyper closes the
//! connection otherwise), the body within `body_read_timeout` ([`crate::limits`]), at
//! most `max_connections` are open at once (more get a 503 and are closed), and at
//! shutdown connections still open after the grace period are dropped.

use crate::Service;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// hyper's read buffer, bytes: the most a request head may take before hyper itself
/// refuses it (a bare 431, no body). Above [`crate::limits::MAX_URI_BYTES`] and
/// [`crate::limits::MAX_HEADER_BYTES`] so that the usual refusals are medic's JSON ones.
const HEAD_BUFFER_BYTES: usize = 64 * 1024;

/// How a [`serve`] call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    /// Every step attempt in flight finished (and was journalled) within the grace period.
    pub attempts_finished: bool,
    /// Every connection closed by itself within the grace period; when false, the
    /// remaining ones were dropped.
    pub connections_closed: bool,
}

/// Serves `app` on `listener` until `signal` completes, then shuts down within the
/// service's `shutdown_grace`: intake closes (503), no new step attempt starts, open
/// connections finish their request and close, and whatever is still running at the end
/// of the grace period is abandoned (attempts resume by replay at the next start).
///
/// `app` is normally [`crate::router`]`(svc.clone())`, possibly with more routes merged in.
///
/// # Errors
///
/// Never fails once listening: accept errors (out of file descriptors) are logged and
/// retried after a pause. The `io::Result` is for callers that add fallible setup.
pub async fn serve(
    svc: Arc<Service>,
    app: Router,
    listener: TcpListener,
    signal: impl Future<Output = ()>,
) -> std::io::Result<Stopped> {
    let config = &svc.config;
    let header_timeout = Duration::from_millis(config.header_read_timeout_ms());
    let grace = Duration::from_millis(config.shutdown_grace_ms().unwrap_or(30_000));
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(HEAD_BUFFER_BYTES)
        // More than medic accepts, so the refusal is medic's JSON 431 (`limits`).
        .max_headers(crate::limits::MAX_HEADERS * 2);
    let mut signal = std::pin::pin!(signal);
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    eprintln!("medic: accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut signal => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tokio::spawn(refuse(stream, config.max_connections));
            continue;
        };
        let conn =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            // A connection error (client went away, header timeout) ends only that connection.
            let _ = conn.await;
            drop(slot);
        });
    }
    drop(listener);
    let connections = async {
        tokio::time::timeout(grace, graceful.shutdown())
            .await
            .is_ok()
    };
    let (attempts_finished, connections_closed) = tokio::join!(svc.shut_down(grace), connections);
    Ok(Stopped {
        attempts_finished,
        connections_closed,
    })
}

/// Over `max_connections`: a 503 in the documented JSON shape, then close. Written
/// directly, without hyper, so a flood costs no request parsing.
async fn refuse(mut stream: TcpStream, max: usize) {
    let body = serde_json::json!({
        "error": format!("too many open connections (max_connections = {max}); retry shortly")
    })
    .to_string();
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let write = async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}
