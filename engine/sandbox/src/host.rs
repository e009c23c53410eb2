//! Per-instance store data: the WASI context (granting nothing), the HTTP gate, the
//! resource limiter, and the `medic:step/host` functions, which all delegate to the
//! core's journaling chokepoint ([`AttemptHost`]).

use crate::bindings::v0_1_0::medic::step::{host, types};
use http_body_util::BodyExt;
use medic_core::{AttemptHost, HttpOutcome, Level, host_allowed};
use std::time::{Duration, Instant};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{
    Error as HttpError, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks,
    WasiHttpView,
};

pub(crate) struct StepData {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    gate: HttpGate,
    pub(crate) limiter: Limiter,
    /// `None` while calling `describe()`, which must not use the host.
    host: Option<AttemptHost>,
    pub(crate) deadline: Instant,
}

impl StepData {
    pub(crate) fn new(
        host: Option<AttemptHost>,
        allow: Vec<String>,
        memory_bytes: u64,
        timeout: Duration,
    ) -> Self {
        // No filesystem, environment, arguments, sockets or stdin: a step talks to the
        // world only through the host functions and the HTTP gate below.
        let wasi = WasiCtx::builder()
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let deadline = Instant::now() + timeout;
        StepData {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            gate: HttpGate {
                host: host.clone(),
                allow,
                deadline,
            },
            limiter: Limiter {
                memory_bytes: usize::try_from(memory_bytes).unwrap_or(usize::MAX),
                hit: None,
            },
            host,
            deadline,
        }
    }

    fn host(&self) -> wasmtime::Result<&AttemptHost> {
        self.host
            .as_ref()
            .ok_or_else(|| wasmtime::format_err!("describe() must not call host functions"))
    }
}

impl WasiView for StepData {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for StepData {
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
}

type SendResult = wasmtime_wasi_http::Result<(
    http::Response<WasiBody>,
    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
)>;

impl WasiHttpHooks for HttpGate {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        let _ = fut;
        let host = self.host.clone();
        let method = request.method().to_string();
        let url = request.uri().to_string();
        let authority_host = request.uri().host().unwrap_or("").to_string();
        let port = request
            .uri()
            .port_u16()
            .or(match request.uri().scheme_str() {
                Some("https") => Some(443),
                Some("http") => Some(80),
                _ => None,
            });
        let allowed = host_allowed(&self.allow, &authority_host, port);
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        let headers: Vec<(String, String)> = request
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        Box::new(async move {
            let Some(host) = host else {
                return Err(HttpError::HttpRequestDenied);
            };
            if !allowed {
                let shown = match port {
                    Some(p) => format!("{authority_host}:{p}"),
                    None => authority_host.clone(),
                };
                host.http_denied(&method, &url, &shown)
                    .map_err(|_| HttpError::HttpRequestDenied)?;
                return Err(HttpError::HttpRequestDenied);
            }
            // Write-ahead: the request is in the journal before a byte leaves.
            let id = host
                .http_request(&method, &url, &headers)
                .map_err(|_| HttpError::HttpRequestDenied)?;
            let started = Instant::now();
            // The epoch deadline cannot interrupt a guest parked in this host call, so
            // the attempt's remaining time bounds the request here too.
            let sent = tokio::time::timeout(
                remaining,
                wasmtime_wasi_http::default_send_request(request, options),
            )
            .await;
            let ms = started.elapsed().as_millis() as u64;
            let result = match sent {
                Err(_) => Err(HttpError::ConnectionTimeout),
                Ok(r) => r,
            };
            match result {
                Ok((response, io)) => {
                    let outcome = HttpOutcome::Response {
                        status: response.status().as_u16(),
                        headers: response
                            .headers()
                            .iter()
                            .map(|(k, v)| {
                                (
                                    k.to_string(),
                                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                                )
                            })
                            .collect(),
                    };
                    host.http_response(id, outcome, ms)
                        .map_err(|_| HttpError::HttpRequestDenied)?;
                    let response = response.map(|b| b.map_err(Into::into).boxed_unsync());
                    Ok((
                        response,
                        Box::new(io) as Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                    ))
                }
                Err(e) => {
                    let outcome = HttpOutcome::Error {
                        message: format!("{e:?}"),
                    };
                    host.http_response(id, outcome, ms)
                        .map_err(|_| HttpError::HttpRequestDenied)?;
                    Err(e)
                }
            }
        })
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
impl host::Host for StepData {
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

impl types::Host for StepData {}
