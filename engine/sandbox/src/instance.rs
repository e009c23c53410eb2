//! Per-instance store data: the WASI context (granting nothing), the HTTP gate, the
//! resource limiter, and the `medic:step/host` functions, which all delegate to the
//! core's journaling chokepoint ([`AttemptHost`]).

use crate::bindings::newest::medic::step::{host, types};
use crate::tls::{TlsProblem, TlsSettings};
use http_body_util::BodyExt;
use medic_core::{AttemptHost, Body, HttpOutcome, HttpPlan, Level, host_allowed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{HostMonotonicClock, HostWallClock};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{
    Error as HttpError, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks,
    WasiHttpView,
};

pub(crate) struct InstanceState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    gate: HttpGate,
    pub(crate) limiter: Limiter,
    /// `None` while calling `describe()`, which must not use the host.
    host: Option<AttemptHost>,
    pub(crate) deadline: Instant,
}

impl InstanceState {
    pub(crate) fn new(
        host: Option<AttemptHost>,
        allow: Vec<String>,
        tls: TlsSettings,
        memory_bytes: u64,
        timeout: Duration,
        seed: u128,
    ) -> Self {
        // No filesystem, environment, arguments, sockets or stdin: a step talks to the
        // world only through the host functions and the HTTP gate below. Clocks and
        // randomness go through the journal so a resumed attempt replays identically.
        let mut wasi = WasiCtx::builder();
        wasi.allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .insecure_random_seed(seed);
        if let Some(h) = &host {
            wasi.wall_clock(JournalClock(h.clone()))
                .monotonic_clock(JournalClock(h.clone()))
                .secure_random(JournalRng(h.clone()))
                .insecure_random(JournalRng(h.clone()));
        }
        let wasi = wasi.build();
        let deadline = Instant::now() + timeout;
        InstanceState {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            gate: HttpGate {
                host: host.clone(),
                allow,
                deadline,
                tls,
                problem: Arc::new(Mutex::new(None)),
            },
            limiter: Limiter {
                memory_bytes: usize::try_from(memory_bytes).unwrap_or(usize::MAX),
                hit: None,
            },
            host,
            deadline,
        }
    }

    /// The first certificate problem a request of this attempt ran into, in words that
    /// name the host and the reason.
    pub(crate) fn tls_problem(&self) -> Option<String> {
        self.gate
            .problem
            .lock()
            .expect("tls problem lock")
            .as_ref()
            .map(|p| p.0.clone())
    }

    fn host(&self) -> wasmtime::Result<&AttemptHost> {
        self.host
            .as_ref()
            .ok_or_else(|| wasmtime::format_err!("describe() must not call host functions"))
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for InstanceState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.gate,
        }
    }
}

/// Linear-memory limit. Records the refused size so a resulting trap is reported as
/// "memory limit" rather than a bare trap.
pub(crate) struct Limiter {
    memory_bytes: usize,
    pub(crate) hit: Option<usize>,
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.hit = Some(desired);
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// The only way out of the sandbox: wasi:http requests pass the allow list, are
/// journalled before they are sent, and their responses are journalled on arrival.
struct HttpGate {
    host: Option<AttemptHost>,
    allow: Vec<String>,
    deadline: Instant,
    /// Per-destination TLS: private CAs, client certificates.
    tls: TlsSettings,
    /// Set by the first request that fails on a certificate problem.
    problem: Arc<Mutex<Option<TlsProblem>>>,
}

/// A recorded error message that starts like this is a certificate problem: a replayed
/// attempt reports it the same way as the live one.
const TLS_PREFIX: &str = "TLS to ";

type SendResult = wasmtime_wasi_http::Result<(
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
)>;

/// Bodies are journalled whole, so they are bounded.
const MAX_BODY_BYTES: usize = 16 << 20;

fn full(bytes: bytes::Bytes) -> WasiBody {
    http_body_util::Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn header_pairs(h: &http::HeaderMap) -> Vec<(String, String)> {
    h.iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

async fn collect(body: WasiBody) -> Result<bytes::Bytes, HttpError> {
    let limited = http_body_util::Limited::new(body, MAX_BODY_BYTES);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(_) => Err(HttpError::HttpRequestBodySize(Some(MAX_BODY_BYTES as u64))),
    }
}

/// A recorded response, rebuilt for the guest.
fn replayed(outcome: HttpOutcome) -> SendResult {
    match outcome {
        HttpOutcome::Response {
            status,
            headers,
            body,
        } => {
            let mut b = http::Response::builder().status(status);
            for (k, v) in headers {
                b = b.header(k, v);
            }
            let response = b
                .body(full(body.to_bytes().into()))
                .map_err(|_| HttpError::HttpProtocolError)?;
            Ok((response, Box::new(async { Ok(()) })))
        }
        HttpOutcome::Error { .. } => Err(HttpError::ConnectionTerminated),
    }
}

impl WasiHttpHooks for HttpGate {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let _ = fut;
        let host = self.host.clone();
        let uri = request.uri();
        let authority_host = uri.host().unwrap_or("").to_string();
        let port = uri.port_u16().or(match uri.scheme_str() {
            Some("https") => Some(443),
            Some("http") => Some(80),
            _ => None,
        });
        let allowed = host_allowed(&self.allow, &authority_host, port);
        let deadline = self.deadline;
        let tls = self.tls.clone();
        let problem = self.problem.clone();
        let note = move |p: TlsProblem| {
            problem.lock().expect("tls problem lock").get_or_insert(p);
        };
        Box::new(async move {
            let Some(host) = host else {
                return Err(HttpError::HttpRequestDenied);
            };
            let method = request.method().to_string();
            let url = request.uri().to_string();
            if !allowed {
                let shown = match port {
                    Some(p) => format!("{authority_host}:{p}"),
                    None => authority_host.clone(),
                };
                host.http_denied(&method, &url, &shown)
                    .map_err(|_| HttpError::HttpRequestDenied)?;
                return Err(HttpError::HttpRequestDenied);
            }
            let (parts, body) = request.into_parts();
            let body = collect(body).await?;
            // Write-ahead: the request is in the journal (flushed) before a byte leaves;
            // on a resumed attempt it may instead be answered from the journal.
            let plan = host
                .http_request(&method, &url, &header_pairs(&parts.headers), &body)
                .map_err(|_| HttpError::HttpRequestDenied)?;
            let id = match plan {
                HttpPlan::Replay { response, .. } => {
                    if let HttpOutcome::Error { message } = &response
                        && message.starts_with(TLS_PREFIX)
                    {
                        note(TlsProblem(message.clone()));
                    }
                    return replayed(response);
                }
                HttpPlan::Send { id } => id,
            };
            let request = http::Request::from_parts(parts, full(body));
            let started = Instant::now();
            // The epoch deadline cannot interrupt a guest parked in this host call, so
            // the attempt's remaining time bounds the whole exchange here.
            let remaining = deadline.saturating_duration_since(Instant::now());
            let exchange = async {
                let response = crate::tls::send(&tls, request, options).await?;
                let (parts, body) = response.into_parts();
                Ok::<_, crate::tls::SendFailure>((parts, collect(body).await?))
            };
            let result = match tokio::time::timeout(remaining, exchange).await {
                Err(_) => Err(HttpError::ConnectionTimeout.into()),
                Ok(r) => r,
            };
            let ms = started.elapsed().as_millis() as u64;
            match result {
                Ok((parts, body)) => {
                    let outcome = HttpOutcome::Response {
                        status: parts.status.as_u16(),
                        headers: header_pairs(&parts.headers),
                        body: Body::from_bytes(&body),
                    };
                    // The response is durable before the guest sees it, so a replay
                    // never sends an answered request again.
                    host.http_response(id, outcome, ms)
                        .map_err(|_| HttpError::HttpRequestDenied)?;
                    let response = http::Response::from_parts(parts, full(body));
                    Ok((
                        response,
                        Box::new(async { Ok(()) })
                            as Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                    ))
                }
                Err(failure) => {
                    let message = match &failure.problem {
                        Some(p) => p.0.clone(),
                        None => format!("{:?}", failure.error),
                    };
                    host.http_response(id, HttpOutcome::Error { message }, ms)
                        .map_err(|_| HttpError::HttpRequestDenied)?;
                    if let Some(p) = failure.problem {
                        note(p);
                    }
                    Err(failure.error)
                }
            }
        })
    }
}

/// `wasi:clocks` through the journal. A journal failure cannot be reported through
/// these infallible interfaces; the host remembers it and the attempt fails on return.
struct JournalClock(AttemptHost);

impl HostWallClock for JournalClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        let live = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        self.0.wall_clock(live).unwrap_or(live)
    }
}

impl HostMonotonicClock for JournalClock {
    fn resolution(&self) -> u64 {
        1
    }

    fn now(&self) -> u64 {
        self.0.monotonic_clock().unwrap_or(0)
    }
}

/// `wasi:random` through the journal.
struct JournalRng(AttemptHost);

impl rand_core::TryRng for JournalRng {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        // On a journal failure the bytes are still random; the attempt fails on return.
        let _ = self.0.random(dst);
        Ok(())
    }
}

fn level(l: types::Level) -> Level {
    match l {
        types::Level::Trace => Level::Trace,
        types::Level::Debug => Level::Debug,
        types::Level::Info => Level::Info,
        types::Level::Warn => Level::Warn,
        types::Level::Error => Level::Error,
    }
}

// A failed journal write traps the guest: carrying on would run effects the journal
// does not know about.
impl host::Host for InstanceState {
    fn log(&mut self, l: types::Level, message: String) -> wasmtime::Result<()> {
        Ok(self.host()?.log(level(l), &message)?)
    }

    fn secret(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        Ok(self.host()?.secret(&name)?)
    }

    fn annotate(&mut self, message: String) -> wasmtime::Result<()> {
        Ok(self.host()?.annotate(&message)?)
    }

    fn state_get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.host()?.state_get(&key))
    }

    fn state_set(&mut self, key: String, value: String) -> wasmtime::Result<()> {
        Ok(self.host()?.state_set(&key, &value)?)
    }
}

impl types::Host for InstanceState {}
