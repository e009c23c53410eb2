//! Whether the store can take writes, and getting it back after a full disk.
//!
//! sled refuses every write after its first I/O error (ENOSPC included) until it is
//! reopened, so freeing space is not enough by itself. When a write fails, the next
//! health or readiness probe (and the processor, every second) tries a durable write;
//! if that fails too, it reopens the store and tries again. Once space is free the
//! service goes ready again by itself, and the runs whose drivers stopped on the error
//! are driven again. While writes fail, reads (`/api/runs`, `/api/incidents`) keep
//! working, intake answers 503 (never a false 202) and `/readyz` 503; `/healthz` turns
//! 503 only if the store cannot even be reopened, so a supervisor restarts medic.

use crate::Service;
use crate::error::ApiError;
use medic_core::{Durability, StoreError};
use medic_store::Op;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Shortest time between two reopens of a failing store: a reopen reads the whole log.
const REOPEN_EVERY: Duration = Duration::from_secs(2);

/// The store's last known state: `Some(why)` after a failed write, until a probe succeeds.
#[derive(Debug, Default)]
pub(crate) struct StoreHealth {
    failed: Mutex<Option<Failure>>,
    last_reopen: Mutex<Option<Instant>>,
    /// Set by a recovery: the processor drives unfinished runs that have no driver.
    redrive: AtomicBool,
}

#[derive(Debug, Clone)]
struct Failure {
    /// The write error.
    message: String,
    /// Whether the last reopen failed as well: nothing short of a restart may help.
    reopen_failed: bool,
}

impl StoreHealth {
    fn get(&self) -> Option<Failure> {
        self.failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, f: Option<Failure>) {
        *self.failed.lock().unwrap_or_else(PoisonError::into_inner) = f;
    }
}

impl Service {
    /// Records a failed store write (I/O errors only: a missing run is no store failure).
    pub(crate) fn store_failed(&self, e: &StoreError) {
        if matches!(e, StoreError::Io { .. }) && self.health.get().is_none() {
            eprintln!("medic: store write failed, refusing writes until it recovers: {e}");
            self.health.set(Some(Failure {
                message: e.to_string(),
                reopen_failed: false,
            }));
        }
    }

    /// Records a successful durable write.
    pub(crate) fn store_ok(&self) {
        if self.health.get().is_some() {
            self.health.set(None);
        }
    }

    /// Whether the store takes a durable write, recovering it if it does not. With
    /// `liveness`, a store with no failure on record is not probed (no write per
    /// `/healthz`), and only a store that could not be reopened is an error.
    ///
    /// Blocking (fsync): call off the async workers.
    pub(crate) fn check_store(&self, liveness: bool) -> Result<(), ApiError> {
        let known = self.health.get();
        if liveness && known.is_none() {
            return Ok(());
        }
        match self.recover() {
            Ok(()) => Ok(()),
            Err(f) if liveness && !f.reopen_failed => Ok(()),
            Err(f) if liveness => Err(ApiError::Unavailable(format!(
                "store failed and cannot be reopened ({}): restart medic once the disk has space",
                f.message
            ))),
            Err(f) => Err(ApiError::Unavailable(format!(
                "store not writable: {}",
                f.message
            ))),
        }
    }

    /// Probes the store with a durable write; on failure reopens it (at most every
    /// [`REOPEN_EVERY`]) and probes again. A recovery re-drives the runs that stopped on
    /// the error.
    fn recover(&self) -> Result<(), Failure> {
        let first = match self.probe() {
            Ok(()) => {
                self.store_ok();
                return Ok(());
            }
            Err(e) => e,
        };
        self.store_failed(&first);
        {
            let mut last = self
                .health
                .last_reopen
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if last.is_some_and(|t| t.elapsed() < REOPEN_EVERY) {
                return Err(self.health.get().unwrap_or(Failure {
                    message: first.to_string(),
                    reopen_failed: false,
                }));
            }
            *last = Some(Instant::now());
        }
        let result = match self.store.reopen() {
            Err(e) => Err((e, true)),
            // No room yet: the store stays open (reads work); try again later.
            Ok(false) => Err((first, false)),
            Ok(true) => self.probe().map_err(|e| (e, false)),
        };
        match result {
            Ok(()) => {
                eprintln!("medic: store writable again (reopened)");
                self.store_ok();
                self.health.redrive.store(true, Ordering::SeqCst);
                self.wake.notify_one();
                Ok(())
            }
            Err((e, reopen_failed)) => {
                let f = Failure {
                    message: e.to_string(),
                    reopen_failed,
                };
                self.health.set(Some(f.clone()));
                Err(f)
            }
        }
    }

    /// Whether runs need drivers again after a recovery (cleared by reading it).
    pub(crate) fn take_redrive(&self) -> bool {
        self.health.redrive.swap(false, Ordering::SeqCst)
    }

    fn probe(&self) -> Result<(), StoreError> {
        let probe = vec![Op::Put(
            b"readyz".to_vec(),
            self.clock.now_ms().to_be_bytes().to_vec(),
        )];
        self.store.write(probe, Durability::Flush)
    }

    /// True while the store has a failed write on record.
    pub(crate) fn store_failing(&self) -> bool {
        self.health.get().is_some()
    }
}
