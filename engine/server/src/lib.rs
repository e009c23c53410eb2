//! `medic serve`: the engine as a service that alerts trigger.
//!
//! Alerts arrive on `POST /intake/{source}` (Alertmanager, Grafana, PagerDuty, generic
//! JSON), are authenticated, parsed, and written to a durable inbox before medic answers
//! 2xx. A processor turns inbox items into incidents (deduplicated by fingerprint), starts
//! the workflows whose trigger matches, and drives runs on a bounded pool. Runs, incidents
//! and the queue are visible on the token-protected API and `/metrics`.
//!
//! The HTTP layer is written as axum applications are: [`router`] is a plain `Router`
//! (testable with `tower::ServiceExt::oneshot`, and open to more routes), handlers take
//! an authenticated caller as an extractor and return `Result<_, ApiError>`, and
//! [`serve`] runs it on hyper with read timeouts, a connection cap and a bounded
//! shutdown. Limits, timeouts and the error shape are in docs/serve.md.
//!
//! ```no_run
//! # async fn demo(svc: std::sync::Arc<medic_server::Service>) -> std::io::Result<()> {
//! let app = medic_server::router(svc.clone());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8730").await?;
//! tokio::spawn(medic_server::process(svc.clone()));
//! let stopped = medic_server::serve(svc, app, listener, async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await?;
//! println!("attempts finished in time: {}", stopped.attempts_finished);
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod api;
mod auth;
pub mod config;
mod drivers;
pub mod environment;
mod error;
mod gates;
mod health;
mod http;
mod inbox;
mod incident;
mod intake;
pub mod kubeconfig;
mod lanes;
pub mod limits;
mod metrics;
mod parked;
mod postmortem;
mod processor;
mod retention;
mod storm;
mod strict;
mod web;

pub use auth::{Caller, Sender};
pub use config::ServeConfig;
pub use error::{ApiError, StartError};
pub use http::{Stopped, serve};
pub use incident::IncidentRecord;
pub use lanes::{LaneWeights, LanesConfig};
pub use postmortem::incident_journals;
pub use processor::{ProcessError, process};
pub use retention::{RetentionConfig, Swept, compact_if_due, retain, sweep};
pub use storm::{StormConfig, StormLimit, Suppressed};

use axum::Router;
use axum::routing::{get, post};
use medic_core::lanes::LanePool;
use medic_core::{Clock, Executor, StepRunner, SystemClock};
use medic_store::SledStore;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// A workflow the service can start, with its components resolved (medic-core's type).
pub use medic_core::LoadedWorkflow;

/// Shared state of the service.
pub struct Service {
    pub(crate) store: Arc<SledStore>,
    pub(crate) engine: Arc<Executor>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: ServeConfig,
    pub(crate) workflows: Vec<LoadedWorkflow>,
    pub(crate) metrics: Arc<metrics::Metrics>,
    /// Writes accepted alerts to the inbox, many requests per batch and flush.
    pub(crate) inbox: inbox::InboxWriter,
    /// Wakes the processor when the inbox got something.
    pub(crate) wake: Notify,
    /// Set when a critical alert is acknowledged; the processor clears it when it reads
    /// the inbox, and ends a batch early when it is set meanwhile (processor.rs).
    pub(crate) critical_waiting: AtomicBool,
    /// Step attempts running at once (`concurrency`, plus `[lanes] critical_reserve` for
    /// critical incidents), served by severity lane; shared with the engine.
    pub(crate) pool: LanePool,
    /// Severity → lane (`[lanes]`).
    pub(crate) lanes: lanes::LaneMap,
    /// Caps on runs started per workflow (`[storm]`).
    pub(crate) storm: storm::StormControl,
    /// What is kept how long (`[retention]`).
    pub(crate) retention: retention::Retention,
    /// Held while a batch of the inbox is handled and while retention removes incident
    /// records, so neither undoes the other's write.
    pub(crate) inbox_lock: Mutex<()>,
    /// Whether the store's last write failed, and why (health.rs).
    pub(crate) health: health::StoreHealth,
    /// Runs driven by this process now: never two drivers for one run.
    pub(crate) driving: Mutex<HashSet<String>>,
    /// Runs waiting at a gate or a retry with no driver in memory (parked.rs).
    pub(crate) parked: parked::Parked,
    /// Where run drivers run: threads of their own, apart from intake's (drivers.rs).
    pub(crate) drivers: drivers::Drivers,
    /// The web view's live state (`/ui`): appends for its pages, waiting gates.
    pub(crate) web: Arc<web::Live>,
    /// Runs step attempts; the engine's, kept for drills replayed from the web view
    /// (each on its own engine, virtual clock and in-memory journal).
    pub(crate) runner: Arc<dyn StepRunner>,
    accepting: AtomicBool,
}

impl Service {
    /// The service over `store`, running steps with `runner`.
    ///
    /// # Errors
    ///
    /// [`StartError`] when the config's limits or secret source cannot be used, or a
    /// secret some workflow grants is too short to redact safely.
    pub fn new(
        store: Arc<SledStore>,
        runner: Arc<dyn StepRunner>,
        config: ServeConfig,
        workflows: Vec<LoadedWorkflow>,
    ) -> Result<Arc<Service>, StartError> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let metrics = Arc::new(metrics::Metrics::new(&workflows));
        let web = Arc::new(web::Live::new());
        let observer = {
            let (metrics, web) = (metrics.observer(), web.clone());
            let both: medic_core::Observer = Arc::new(move |meta, entry| {
                metrics(meta, entry);
                web.observe(meta, entry);
            });
            both
        };
        let drive_hook = {
            let (metrics, web) = (metrics.drive_hook(), web.clone());
            let both: medic_core::DriveHook = Arc::new(move |state| {
                metrics(state);
                web.resumed(state);
            });
            both
        };
        let lanes = config.lanes.resolve().map_err(StartError::Config)?;
        let storm = config.storm.resolve().map_err(StartError::Config)?;
        let retention = config
            .retention
            .resolve(&config.base)
            .map_err(StartError::Config)?;
        let pool =
            LanePool::with_reserve(config.concurrency, lanes.critical_reserve, lanes.weights);
        let lane_of: medic_core::LaneOf = {
            let lanes = lanes.clone();
            Arc::new(move |incident| lanes.lane(&incident.severity))
        };
        let secrets = config.secret_source()?;
        // Refused at load, not at the first attempt: a 2-character secret cannot be
        // redacted from journals without blanking ordinary text.
        medic_core::check_granted(
            secrets.as_ref(),
            workflows
                .iter()
                .flat_map(|w| w.workflow.steps.iter())
                .flat_map(|s| s.secrets.iter().map(String::as_str)),
        )?;
        let limits = config.limits().map_err(StartError::Config)?;
        let engine = Executor::new(store.clone(), runner.clone(), clock.clone(), secrets)
            .with_defaults(limits)
            .with_observer(observer)
            .with_drive_hook(drive_hook)
            .with_run_context(postmortem::run_context(config.external_url.clone()))
            .with_slots(pool.clone(), lane_of);
        Ok(Arc::new(Service {
            inbox: inbox::InboxWriter::start(store.clone()),
            store,
            engine: Arc::new(engine),
            clock,
            pool,
            lanes,
            storm,
            retention,
            inbox_lock: Mutex::new(()),
            config,
            workflows,
            metrics,
            web,
            runner,
            wake: Notify::new(),
            critical_waiting: AtomicBool::new(false),
            health: health::StoreHealth::default(),
            driving: Mutex::new(HashSet::new()),
            parked: parked::Parked::default(),
            drivers: drivers::Drivers::start().map_err(StartError::Threads)?,
            accepting: AtomicBool::new(true),
        }))
    }

    /// Stop taking alerts (SIGTERM): intake answers 503 so senders retry elsewhere or later.
    pub fn stop_intake(&self) {
        self.accepting.store(false, Ordering::SeqCst);
    }

    /// Whether intake is open.
    pub fn accepting(&self) -> bool {
        self.accepting.load(Ordering::SeqCst)
    }

    /// SIGTERM: stop intake, stop starting step attempts, and wait up to `grace` for the
    /// attempts in flight to finish and be journalled. Returns false when some were still
    /// running at the end of the grace period (they resume by replay at the next start).
    pub async fn shut_down(&self, grace: std::time::Duration) -> bool {
        self.stop_intake();
        self.engine.shut_down();
        self.wake.notify_one();
        // Every slot free again means no attempt is running. Drivers waiting for a slot
        // stop waiting at shutdown, so only attempts in flight hold slots now.
        tokio::time::timeout(grace, self.pool.idle()).await.is_ok()
    }

    /// Adds the runs missing from the runs list's index (created by `medic run`, or whose
    /// lazily written index record a crash lost): one look-up per run, about 5 µs each.
    /// [`process`] runs it once at start, in the background, so the first list shown does
    /// not wait for it; a list asked for before it ends waits for it.
    ///
    /// # Errors
    /// [`StoreError`] when the store cannot be read or the index written.
    pub fn index_runs(&self) -> Result<(), medic_core::StoreError> {
        self.web.ensure_indexed(&self.store)
    }

    /// Runs not finished that this process has in hand: driven now (including those
    /// waiting for a step slot) or parked at a gate or a retry. Read without touching the
    /// store, so a caller can poll it while a storm drains (the loopback bench does);
    /// runs still in the inbox as alerts are not counted.
    pub fn runs_in_flight(&self) -> usize {
        let driving = self
            .driving
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len();
        driving + self.parked.len()
    }

    /// The executor driving this service's runs.
    pub fn engine(&self) -> &Arc<Executor> {
        &self.engine
    }

    /// The configuration the service runs with.
    pub fn config(&self) -> &ServeConfig {
        &self.config
    }
}

/// The HTTP API: intake, runs, incidents, gates, health and metrics; and the web view
/// under `/ui` (`/` redirects there).
///
/// Every answer that is not a success is `{"error": "..."}` (see [`ApiError`]); request
/// limits ([`limits`]) apply to every route, including routes merged in later (`/ui`).
/// Add routes with `router(svc).merge(...)` or `.nest(...)`: the layers applied here
/// cover only the routes defined here, so a merged router should add
/// [`layers`] itself, or be merged before calling [`layers`] on the whole.
pub fn router(svc: Arc<Service>) -> Router {
    let routes = Router::new()
        .route(
            "/",
            get(|| async { axum::response::Redirect::to("/ui/runs") }),
        )
        .nest("/ui", web::router())
        .route("/intake/{source}", post(intake::intake))
        .route("/api/runs", get(api::runs))
        .route("/api/runs/{id}", get(api::run))
        .route("/api/runs/{id}/gates/{step}", post(gates::decide))
        .route("/api/incidents", get(api::incidents))
        .route("/api/runs/{id}/postmortem", get(postmortem::run_postmortem))
        .route(
            "/api/incidents/{id}/postmortem",
            get(postmortem::incident_postmortem),
        )
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .route("/metrics", get(api::metrics))
        .fallback(api::no_such_route)
        .with_state(svc.clone());
    layers(svc, routes)
}

/// The request limits and the JSON error shape, as layers over `routes`: what
/// [`router`] applies to its own routes, for a caller that builds a bigger router.
pub fn layers(svc: Arc<Service>, routes: Router) -> Router {
    routes
        // Inner: reads the body within the limits; outer: gives every refusal,
        // including the router's own 404 and 405, the JSON shape.
        .layer(axum::middleware::from_fn_with_state(svc, limits::enforce))
        .layer(axum::middleware::from_fn(error::json_errors))
}
