//! The inbox writer: one thread that writes accepted alerts to the durable inbox for
//! every intake request at once.
//!
//! Each request hands its inbox records over and waits (asynchronously) for the answer.
//! The thread takes everything queued, writes it as **one** sled batch with one flush,
//! and only then answers each request: an alert is acknowledged only once it is on disk
//! (docs/durability.md), and under load one fsync and one batch serve every request that
//! arrived during the previous flush. Compared with a blocking task per request that
//! each applied its own batch and queued on the flush lock, this keeps the async workers
//! free and spends no thread switches per request; the figures are in
//! docs/performance.md.

use medic_core::{Durability, StoreError};
use medic_store::{Op, SledStore};
use std::sync::Arc;
use std::sync::mpsc;
use tokio::sync::oneshot;

/// Most records written in one batch: bounds the wait of the first request of a burst.
const MAX_BATCH_OPS: usize = 4_096;

struct Job {
    ops: Vec<Op>,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// The sending side; the thread ends when this is dropped (with the service).
pub(crate) struct InboxWriter {
    jobs: mpsc::Sender<Job>,
}

impl InboxWriter {
    /// Starts the writer thread over `store`.
    pub(crate) fn start(store: Arc<SledStore>) -> InboxWriter {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("medic-inbox".into())
            .spawn(move || run(&store, &queue))
            .expect("spawn the inbox writer thread");
        InboxWriter { jobs }
    }

    /// Writes `ops` in one atomic batch and returns once they are on disk.
    ///
    /// # Errors
    /// The store's error when the batch could not be applied or flushed: then nothing of
    /// it may be acknowledged. [`StoreError::Io`] if the writer thread is gone.
    pub(crate) async fn write(&self, ops: Vec<Op>) -> Result<(), StoreError> {
        let gone = || StoreError::Io {
            path: "inbox".into(),
            message: "the inbox writer stopped".into(),
        };
        let (done, answer) = oneshot::channel();
        self.jobs.send(Job { ops, done }).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

fn run(store: &SledStore, queue: &mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut ops = first.ops;
        let mut waiting = vec![first.done];
        // Everything that queued while the last batch was being flushed joins this one.
        while ops.len() < MAX_BATCH_OPS {
            match queue.try_recv() {
                Ok(job) => {
                    ops.extend(job.ops);
                    waiting.push(job.done);
                }
                Err(_) => break,
            }
        }
        // One batch: applied entirely or not at all, so an error means no request of it
        // was stored, and each of them is told so.
        let result = store.write(ops, Durability::Flush);
        for done in waiting {
            // A request whose client went away no longer waits for its answer.
            let _ = done.send(result.as_ref().map(|_| ()).map_err(copy));
        }
    }
}

/// The same error for each request of a failed batch (`StoreError` is not `Clone`).
fn copy(e: &StoreError) -> StoreError {
    match e {
        StoreError::Io { path, message } => StoreError::Io {
            path: path.clone(),
            message: message.clone(),
        },
        other => StoreError::Io {
            path: "store".into(),
            message: other.to_string(),
        },
    }
}
