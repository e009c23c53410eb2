//! From the durable inbox to incidents and runs.
//!
//! Each inbox alert is handled once: its incidents are updated and matching workflows are
//! started (the rules are in [`crate::incident`]), then the incident records and the
//! alert's leaving the inbox (its record removed, or the record's cursor moved on:
//! [`crate::inbox`]) are written in one batch. Run ids are derived from (incident,
//! occurrence, workflow), so an alert handled again after a crash finds its runs instead
//! of starting new ones.

use crate::inbox::{self, Held, InboxItem};
use crate::incident::{IncidentRecord, Update};
use crate::lanes::lane_prefixes;
use crate::{LoadedWorkflow, Service};
use medic_core::lanes::{self, Lane};
use medic_core::{
    Driven, Durability, Entry, ExecutorError, RunMeta, StoreError, clock::rfc3339, codec,
};
use medic_intake::incident_id;
use medic_model::IncidentStatus;
use medic_store::Op;
use std::collections::{BTreeMap, VecDeque};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Why handling the inbox stopped; the items stay in the inbox and are tried again.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The store could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A run could not be created or told about its incident.
    #[error(transparent)]
    Executor(#[from] ExecutorError),
    /// An incident record that cannot be decoded.
    #[error("incident record {key}: {source}")]
    Corrupt {
        /// The record's key.
        key: String,
        /// What is wrong with it.
        source: codec::CodecError,
    },
    /// A batch took an inbox record's alerts out of their order (a defect in medic):
    /// nothing of it was handled or written.
    #[error("inbox alerts out of order: {0}")]
    OutOfOrder(String),
    /// The blocking worker handling the inbox panicked or was cancelled.
    #[error("inbox worker failed: {0}")]
    Worker(String),
}

/// The processor: resumes unfinished runs, then handles the inbox whenever intake
/// wakes it (and every second, so nothing waits on a lost wake-up), and starts the
/// retention sweep ([`crate::retain`]). Runs forever.
pub async fn process(svc: Arc<Service>) {
    resume_unfinished(&svc);
    tokio::spawn(crate::parked::wake_due(svc.clone()));
    // Retention sweeps in the background for as long as the service runs.
    tokio::spawn(crate::retention::retain(svc.clone()));
    // Filled now rather than by the first runs list asked for, which would wait for it.
    let indexing = svc.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = indexing.index_runs() {
            eprintln!("medic: the runs list's index could not be filled at start: {e}");
        }
    });
    loop {
        if svc.engine.is_shutting_down() {
            // Shutting down: the inbox keeps what is left for the next start.
            return;
        }
        // JournalStore calls block on fsync: keep them off the async workers that serve intake.
        let worker = svc.clone();
        let drained = tokio::task::spawn_blocking(move || {
            if worker.store_failing() {
                // After a failed write (a full disk), try to get the store back first.
                let _ = worker.check_store(false);
            }
            drain(&worker)
        })
        .await
        .unwrap_or_else(|e| Err(ProcessError::Worker(e.to_string())));
        if let Err(e) = drained {
            // The item stays in the inbox and is tried again: never dropped.
            if let ProcessError::Store(e) = &e {
                svc.store_failed(e);
            }
            eprintln!("medic: handling the inbox: {e}");
        }
        if svc.take_redrive() {
            // The store came back: runs whose drivers stopped on its error go on.
            resume_unfinished(&svc);
        }
        tokio::select! {
            _ = svc.wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Inbox items handled per flush. One flush per batch instead of two per item is what
/// keeps alert-to-first-step latency low under load; the bound keeps the first run of a
/// batch from waiting on a long one.
const BATCH: usize = 128;
/// The batch size while critical alerts wait: 16 places, of which the weights give the
/// critical lane most.
const URGENT_BATCH: usize = 16;

/// What handling one batch of inbox items changes, written in one flushing write.
#[derive(Default)]
struct Batch {
    /// Incident records as this batch left them (later items of the same incident see
    /// the earlier ones' changes), by fingerprint.
    records: BTreeMap<String, IncidentRecord>,
    ops: Vec<Op>,
    /// Runs this batch creates (meta and first entry), written with its records:
    /// driven once the batch is on disk.
    created: Vec<(medic_core::RunMeta, medic_core::Entry)>,
    /// Messages for those runs (an incident resolved within the batch), written with it.
    posts: Vec<(String, medic_core::Message)>,
}

/// An alert waiting in its lane's queue: its record (in [`next_from_inbox`]'s list) and
/// its place in the record.
#[derive(Debug, Clone, Copy)]
struct Queued {
    record: usize,
    index: usize,
    lane: Lane,
}

/// Handles the inbox batch by batch until it is empty. Each batch is read afresh, a
/// bounded read per lane, and filled by the lanes' weights (`medic_core::lanes::pick`): a
/// critical alert that arrives while thousands of warnings wait is in the next batch,
/// and the warnings still get their share of every batch.
fn drain(svc: &Arc<Service>) -> Result<(), ProcessError> {
    let mut credit = [0i64; 3];
    loop {
        let (chunk, mut held) = next_from_inbox(svc, &mut credit)?;
        if chunk.is_empty() {
            return Ok(());
        }
        handle_batch(svc, &chunk, &mut held)?;
    }
}

/// The next batch: the alerts to handle, in order, and the records they are in.
fn next_from_inbox(
    svc: &Service,
    credit: &mut [i64; 3],
) -> Result<(Vec<Queued>, Vec<Held>), ProcessError> {
    // Cleared before the read: a critical alert acknowledged from here on may not be in
    // what is read, and cuts the batch short (handle_batch).
    svc.critical_waiting.store(false, Ordering::Release);
    let mut held = Vec::new();
    let mut queues: [VecDeque<Queued>; 3] = Default::default();
    let mut unreadable = Vec::new();
    for lane in Lane::ALL {
        for prefix in lane_prefixes(lane) {
            let queue = &mut queues[lane as usize];
            // Read first: the visit's callback must not call the store.
            let cursors = inbox::cursors(&svc.store, &prefix)?;
            // Records are read one at a time until the lane has a batch's worth: a record
            // can hold 64 alerts, and those a batch does not reach stay unread.
            svc.store.visit(&prefix, |key, value| {
                if queue.len() >= BATCH {
                    return ControlFlow::Break(());
                }
                let cursor = cursors.get(key);
                let items = match inbox::decode(value) {
                    Ok(items) => items,
                    Err(e) => {
                        let done = cursor.copied().flatten().unwrap_or(0);
                        unreadable.push((key.to_vec(), value.to_vec(), done, e));
                        return ControlFlow::Continue(());
                    }
                };
                let start = inbox::resume_at(cursor, items.len());
                let record = held.len();
                queue.extend((start..items.len()).map(|index| Queued {
                    record,
                    index,
                    lane,
                }));
                held.push(Held {
                    key: key.to_vec(),
                    items,
                    start,
                    handled: start,
                    has_cursor: cursor.is_some(),
                });
                ControlFlow::Continue(())
            })?;
        }
    }
    for (key, value, done, e) in unreadable {
        // One atomic write; made durable by the next flush, and done again should medic
        // stop before that.
        svc.store
            .write(inbox::dead(&key, &value), Durability::Lazy)?;
        // How many it held cannot always be told; at least one, the first `done` handled.
        let alerts = inbox::count(&value).saturating_sub(done).max(1);
        svc.metrics.inbox_dead(alerts);
        eprintln!(
            "medic: unreadable inbox record {} moved to dead/ (about {alerts} alerts not yet \
             handled; its first {done} were, if it held more): {e}",
            String::from_utf8_lossy(&key)
        );
    }
    Ok((next_batch(&mut queues, credit, svc.lanes.weights), held))
}

/// The next batch from the lanes' queues (oldest first in each), by the lanes' weights.
fn next_batch<T>(
    queues: &mut [VecDeque<T>; 3],
    credit: &mut [i64; 3],
    weights: [u32; 3],
) -> Vec<T> {
    // With critical alerts waiting behind others, a short batch: the critical runs are
    // written and started sooner, the others still get their share of it.
    let limit = if queues[0].is_empty() || queues[1..].iter().all(VecDeque::is_empty) {
        BATCH
    } else {
        URGENT_BATCH
    };
    let mut chunk = Vec::new();
    while chunk.len() < limit {
        let ready = [0, 1, 2].map(|i| !queues[i].is_empty());
        let Some(lane) = lanes::pick(credit, weights, ready) else {
            break;
        };
        chunk.extend(queues[lane as usize].pop_front());
    }
    chunk
}

fn handle_batch(
    svc: &Arc<Service>,
    chunk: &[Queued],
    held: &mut [Held],
) -> Result<(), ProcessError> {
    let _records = svc
        .inbox_lock
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut batch = Batch::default();
    let mut handled = 0;
    // A batch of 128 warnings takes tens of ms under load: a critical alert that arrives
    // meanwhile is read next, and the rest of this batch stays in the inbox. Only a batch
    // without critical items is cut: in a storm of critical alerts every batch has some,
    // and cutting those would shrink every batch to one item (a flush each) and could
    // keep putting off the warnings the lanes' weights give a share.
    in_order(chunk, held)?;
    let cuttable = !chunk.iter().any(|q| q.lane == Lane::Critical);
    for q in chunk {
        if cuttable && handled > 0 && svc.critical_waiting.load(Ordering::Acquire) {
            break;
        }
        handled += 1;
        let record = &mut held[q.record];
        handle(svc, &mut batch, &record.items[q.index])?;
        record.handled += 1;
    }
    // One flush makes the batch's runs (created lazily), incident records and inbox
    // removals durable together; only then do the runs start. A crash before it
    // leaves the items in the inbox, and handling them again finds the runs by id.
    let Batch {
        records,
        mut ops,
        created,
        posts,
    } = batch;
    for (run, message) in &posts {
        ops.push(svc.store.post_op(run, message)?);
    }
    // What was handled leaves the inbox with the batch: a record whose alerts were all
    // handled is removed, one the batch ended inside gets a cursor.
    for h in held.iter() {
        ops.extend(h.settle());
    }
    for (fingerprint, r) in records {
        ops.push(Op::Put(
            IncidentRecord::key(&fingerprint),
            codec::encode(&r),
        ));
    }
    // Each new run's web index record goes in the same batch: one sled write fewer per
    // run than indexing it when the observer hears of it (`web::Live::observe`).
    for (meta, first) in &created {
        if let medic_core::Event::RunCreated(c) = &first.event {
            ops.push(crate::web::index_op(&meta.id, first.at_ms, c));
        }
    }
    // Claimed before they are written: each run's first driver starts from the records
    // in hand, not from its journal (`Executor::drive_created_or_park`), which holds
    // only while nothing else appended; once written, a post for a run (its id read
    // from the web view) would otherwise start a driver of its own.
    let mut claims = Claims {
        svc,
        ids: created
            .iter()
            .filter(|(m, _)| claim(svc, &m.id))
            .map(|(m, _)| m.id.clone())
            .collect(),
    };
    // On an error (or a panic) from here on, `claims` releases what it still holds.
    svc.store.write_creating(&created, ops, Durability::Flush)?;
    svc.metrics.inbox_handled(handled);
    for (meta, first) in created {
        svc.engine.created(&meta, &first);
        if claims.ids.front() == Some(&meta.id) {
            claims.ids.pop_front();
            start(svc, meta.id.clone(), Some((meta, first)));
        } else {
            // Not claimed: a driver had the id before the write (one that met no run and
            // is ending, in practice never seen). This starts one from the journal if it
            // has left, and does nothing while it is still there.
            spawn_drive(svc, meta.id);
        }
    }
    Ok(())
}

/// Runs claimed by [`handle_batch`] whose drivers have not been started, in the order of the
/// batch's new runs; released when dropped, so an error or a panic between the claim and
/// the start leaves none of them in `driving` with no driver.
struct Claims<'a> {
    svc: &'a Service,
    ids: VecDeque<String>,
}

impl Drop for Claims<'_> {
    fn drop(&mut self) {
        for id in self.ids.drain(..) {
            release(self.svc, &id);
        }
    }
}

/// Checks that `chunk` takes each record's alerts in order from where it stands: a lane's
/// queue holds them so, and a batch takes from the front of each queue, so what a record
/// has handled is always its first alerts, all its cursor can say. Checked before any
/// alert is handled, so that were it ever not so, nothing is handled or written.
fn in_order(chunk: &[Queued], held: &[Held]) -> Result<(), ProcessError> {
    let mut next: Vec<usize> = held.iter().map(|h| h.start).collect();
    for q in chunk {
        if q.index != next[q.record] {
            return Err(ProcessError::OutOfOrder(format!(
                "alert {} of inbox record {} came before alert {}",
                q.index,
                String::from_utf8_lossy(&held[q.record].key),
                next[q.record]
            )));
        }
        next[q.record] += 1;
    }
    Ok(())
}

fn handle(svc: &Arc<Service>, batch: &mut Batch, item: &InboxItem) -> Result<(), ProcessError> {
    let alert = &item.alert;
    // The one conversion `medic run` uses too (medic_intake): same payload, same incidents.
    let incident = alert.to_incident(&rfc3339(item.received_ms));
    // The incidents this alert belongs to, each with the workflows it starts. An alert no
    // workflow matches is still an incident (visible in the API), by fingerprint.
    let mut incidents: BTreeMap<String, Vec<&LoadedWorkflow>> = BTreeMap::new();
    for wf in svc
        .workflows
        .iter()
        .filter(|w| w.workflow.trigger.matches(&incident))
    {
        incidents
            .entry(incident_id(alert, &wf.workflow))
            .or_default()
            .push(wf);
    }
    if incidents.is_empty() {
        incidents.insert(alert.fingerprint.clone(), Vec::new());
    }
    for (ikey, workflows) in incidents {
        let existing = match batch.records.get(&ikey) {
            Some(r) => Some(r.clone()),
            None => match svc.store.get(&IncidentRecord::key(&ikey))? {
                Some(v) => Some(codec::decode(&v).map_err(|source| ProcessError::Corrupt {
                    key: ikey.clone(),
                    source,
                })?),
                None => None,
            },
        };
        let mut incident = incident.clone();
        incident.id = ikey.clone();
        let mut update = Update {
            svc,
            received_ms: item.received_ms,
            created: &mut batch.created,
            posts: &mut batch.posts,
        };
        if let Some(r) = update.apply(existing, alert, incident, &workflows)? {
            batch.records.insert(ikey, r);
        }
    }
    Ok(())
}

impl Service {
    /// Posts a message for a run (a gate decision, an incident update) and drives the
    /// run if no driver here has it: a parked run has none (parked.rs).
    ///
    /// # Errors
    ///
    /// [`ExecutorError::Store`] when the message cannot be written.
    pub(crate) fn post(
        self: &Arc<Self>,
        run: &str,
        message: &medic_core::Message,
    ) -> Result<(), ExecutorError> {
        self.engine.post(run, message)?;
        spawn_drive(self, run.to_string());
        Ok(())
    }

    /// Posts an incident update to each of `runs` still going (finished runs have no
    /// driver to read it).
    pub(crate) fn tell_runs(
        self: &Arc<Self>,
        runs: &[String],
        status: IncidentStatus,
    ) -> Result<(), ProcessError> {
        for id in runs {
            let meta = medic_core::JournalStore::run(self.store.as_ref(), id)?;
            if meta.is_some_and(|m| m.status == medic_core::RunStatus::Running) {
                self.post(id, &medic_core::Message::IncidentUpdate { status })?;
            }
        }
        Ok(())
    }
}

/// Drives a run. The engine bounds how many step attempts run at once, so a run waiting
/// on a gate or a retry timer does not keep others from running; one that would wait a
/// second or more is parked (parked.rs) and its driver ends.
/// At most one driver per run: a run already driven here is left to its driver.
pub(crate) fn spawn_drive(svc: &Arc<Service>, id: String) {
    if claim(svc, &id) {
        start(svc, id, None);
    }
}

/// Puts run `id` in `driving`, out of `parked`; false when a driver has it already.
fn claim(svc: &Service, id: &str) -> bool {
    // Under `driving`'s lock, as the driver's leaving below: a run is in `driving` or
    // in `parked` (or neither, finished), never between the two unseen.
    let mut driving = svc
        .driving
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !driving.insert(id.to_string()) {
        return false;
    }
    svc.parked.unpark(id);
    true
}

/// Takes run `id` out of `driving`: a claim no driver was started for, or a driver that
/// ended without leaving the normal way.
fn release(svc: &Service, id: &str) {
    svc.driving
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(id);
}

/// Starts the driver of run `id`, claimed by [`claim`]: from its journal, or from the
/// records that created it (`created`, just written by this process).
fn start(svc: &Arc<Service>, id: String, created: Option<(RunMeta, Entry)>) {
    // The task holds the engine, not the service: the service owns the drivers' runtime
    // (drivers.rs), and a driver holding the service would keep both alive for good.
    let (engine, weak) = (svc.engine.clone(), Arc::downgrade(svc));
    svc.drivers.spawn(async move {
        // Should the driver panic, the run leaves `driving` all the same, so a later
        // message or redrive can drive it again.
        let mut guard = Leaving(Some((weak.clone(), id.clone())));
        let driven = match created {
            Some((meta, first)) => engine.drive_created_or_park(meta, first).await,
            None => engine.drive_or_park(&id).await,
        };
        drop(engine);
        guard.0 = None;
        let Some(svc) = weak.upgrade() else {
            return;
        };
        let until = match driven {
            Ok(Driven::Parked { until_ms }) => Some(until_ms),
            Ok(Driven::Finished(_) | Driven::Stopped) => None,
            Err(e) => {
                // The run is parked in its journal; it is driven again once the store
                // recovers (health.rs).
                match &e {
                    ExecutorError::Store(e) => svc.store_failed(e),
                    ExecutorError::JournalLost { message, .. } => {
                        svc.store_failed(&StoreError::Io {
                            path: "journal".into(),
                            message: message.clone(),
                        });
                    }
                    ExecutorError::State(_) | ExecutorError::NotStandalone(_) => {}
                }
                eprintln!("medic: run {id} stopped: {e}");
                None
            }
        };
        if until.is_some() {
            // A parked run appends nothing until driven again, whose first append reads
            // the next sequence number from the journal: the store's cache need not hold
            // it while the run waits (memory per parked run, docs/performance.md). Done
            // while the run is still in `driving`, so no other driver has an entry to lose.
            svc.store.forget_next_seq(&id);
        }
        {
            // Parked and out of `driving` in one step: `wake_due` taking the run in between
            // would find it still driven and start nothing, and the run would wait forever.
            let mut driving = svc
                .driving
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(until_ms) = until {
                svc.parked.park(id.clone(), until_ms);
            }
            driving.remove(&id);
        }
        // A message posted after the driver read the mailbox and before it left `driving`
        // started no driver (`Service::post` found this one): look once more, now that
        // a later post would start one. A mailbox that cannot be read counts as holding
        // one: the new driver meets the store's error and the store's recovery redrives.
        if until.is_some()
            && !medic_core::JournalStore::mailbox(svc.store.as_ref(), &id)
                .is_ok_and(|m| m.is_empty())
        {
            spawn_drive(&svc, id);
        }
    });
}

/// Takes a run out of `driving` when its driver's task ends without leaving (a panic).
/// `None` once the driver returned and leaves the normal way.
struct Leaving(Option<(std::sync::Weak<Service>, String)>);

impl Drop for Leaving {
    fn drop(&mut self) {
        if let Some((svc, id)) = self.0.take()
            && let Some(svc) = svc.upgrade()
        {
            release(&svc, &id);
        }
    }
}

/// Drives every unfinished run that has no driver here (at start, and after the store
/// recovered from a failure).
fn resume_unfinished(svc: &Arc<Service>) {
    match svc.engine.unfinished_runs() {
        Ok(ids) => ids.into_iter().for_each(|id| spawn_drive(svc, id)),
        Err(e) => eprintln!("medic: cannot list unfinished runs: {e}"),
    }
}

#[cfg(test)]
#[path = "processor_tests.rs"]
mod tests;
