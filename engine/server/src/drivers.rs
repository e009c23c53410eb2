//! The runtime runs' drivers live on, apart from the one serving HTTP.
//!
//! On one runtime, an intake request's task queued behind every runnable driver (each
//! poll folds a journal, instantiates a step or appends), so under a storm the ack waited
//! tens of ms for drivers while the CPU still had room: over loopback, 850 acks/s with
//! ack p99 221 ms on one runtime, 4,400 acks/s with p99 23 ms on two
//! (docs/performance.md). Here the drivers have worker threads of their own, and the OS,
//! not one task queue, shares the cores between intake and runs.
//!
//! A lower OS priority for the drivers' threads was measured too: it changed nothing for
//! intake and slowed runs (alert → first step at 2,000/s), so they keep the process's.

use std::future::Future;

/// Worker threads of their own for run drivers.
pub(crate) struct Drivers {
    /// `None` only while `Drop` shuts it down.
    rt: Option<tokio::runtime::Runtime>,
}

impl Drivers {
    /// Starts the runtime: one worker per two cores (at least one). Since a driver's
    /// own flushing appends no longer block a worker (the store's flusher thread flushes
    /// for them; host calls and gate decisions still block, rarely), one worker on the 2-core machine
    /// finishes as many runs as two (1.83k against 1.89k one-step runs/s over loopback)
    /// while intake, the processor, the store's flusher and sled's I/O threads get the
    /// other core: acknowledged alerts 4.6–7.3k/s against 3.9–5.7k/s
    /// (docs/performance.md).
    ///
    /// # Errors
    ///
    /// The I/O error when the threads cannot be started.
    pub(crate) fn start() -> std::io::Result<Drivers> {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads((cores / 2).max(1))
            .thread_name("medic-run")
            .enable_all()
            .build()?;
        Ok(Drivers { rt: Some(rt) })
    }

    /// Runs `task` on a driver thread.
    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let rt = self
            .rt
            .as_ref()
            .expect("the drivers' runtime lives until drop");
        drop(rt.spawn(task));
    }
}

impl Drop for Drivers {
    fn drop(&mut self) {
        // Not a blocking shutdown: the service can be dropped on an async worker. Drivers
        // still running stop at their next await; their runs are in the journal.
        // The last handle on the service can go on a driver thread itself: the runtime
        // is then shut down from a thread of its own, not from one of its workers.
        let Some(rt) = self.rt.take() else { return };
        let inside =
            tokio::runtime::Handle::try_current().is_ok_and(|h| h.id() == rt.handle().id());
        if inside {
            std::thread::spawn(move || rt.shutdown_background());
        } else {
            rt.shutdown_background();
        }
    }
}
