//! `medic serve`: the engine as a service that alerts trigger.
//!
//! Alerts arrive on `POST /intake/{source}` (Alertmanager, Grafana, PagerDuty, generic
//! JSON), are authenticated, parsed, and written to a durable inbox before medic answers
//! 2xx. A processor turns inbox items into incidents (deduplicated by fingerprint), starts
//! the workflows whose trigger matches, and drives runs on a bounded pool. Runs, incidents
//! and the queue are visible on the token-protected API and `/metrics`.
//!
//! ```no_run
//! # async fn demo(svc: std::sync::Arc<medic_server::Service>) {
//! let app = medic_server::router(svc.clone());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8730").await.unwrap();
//! tokio::spawn(medic_server::process(svc));
//! axum::serve(listener, app).await.unwrap();
//! # }
//! ```

mod api;
pub mod config;
pub mod environment;
mod gates;
mod incident;
mod intake;
pub mod kubeconfig;
mod metrics;
mod processor;

pub use config::ServeConfig;
pub use incident::IncidentRecord;
pub use processor::process;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use medic_core::{Clock, Engine, StepRunner, SystemClock};
use medic_store::SledStore;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::{Notify, Semaphore};

/// A workflow the service can start, with its components resolved (medic-core's type).
pub use medic_core::LoadedWorkflow;

/// Shared state of the service.
pub struct Service {
    pub(crate) store: Arc<SledStore>,
    pub(crate) engine: Arc<Engine>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: ServeConfig,
    pub(crate) workflows: Vec<LoadedWorkflow>,
    pub(crate) metrics: Arc<metrics::Metrics>,
    /// Wakes the processor when the inbox got something.
    pub(crate) wake: Notify,
    /// Step attempts running at once (`concurrency`); shared with the engine.
    pub(crate) pool: Arc<Semaphore>,
    accepting: AtomicBool,
}

impl Service {
    pub fn new(
        store: Arc<SledStore>,
        runner: Arc<dyn StepRunner>,
        config: ServeConfig,
        workflows: Vec<LoadedWorkflow>,
    ) -> Result<Arc<Service>, String> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let metrics = Arc::new(metrics::Metrics::new(&workflows));
        let observer = metrics.observer(store.clone());
        let pool = Arc::new(Semaphore::new(config.concurrency));
        let engine = Engine::new(
            store.clone(),
            runner,
            clock.clone(),
            config.secret_source()?,
        )
        .with_defaults(config.limits()?)
        .with_observer(observer)
        .with_drive_hook(metrics.drive_hook())
        .with_slots(pool.clone());
        Ok(Arc::new(Service {
            store,
            engine: Arc::new(engine),
            clock,
            pool,
            config,
            workflows,
            metrics,
            wake: Notify::new(),
            accepting: AtomicBool::new(true),
        }))
    }

    /// Stop taking alerts (SIGTERM): intake answers 503 so senders retry elsewhere or later.
    pub fn stop_intake(&self) {
        self.accepting.store(false, Ordering::SeqCst);
    }

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
        let all = u32::try_from(self.config.concurrency).unwrap_or(u32::MAX);
        tokio::time::timeout(grace, self.pool.acquire_many(all))
            .await
            .is_ok()
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }
}

/// The HTTP API: intake, runs, incidents, health and metrics.
pub fn router(svc: Arc<Service>) -> Router {
    let limit = svc.config.max_body_bytes;
    Router::new()
        .route("/intake/{source}", post(intake::intake))
        .route("/api/runs", get(api::runs))
        .route("/api/runs/{id}", get(api::run))
        .route("/api/runs/{id}/gates/{step}", post(gates::decide))
        .route("/api/incidents", get(api::incidents))
        .route("/healthz", get(api::healthz))
        .route("/readyz", get(api::readyz))
        .route("/metrics", get(api::metrics))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(svc)
}
