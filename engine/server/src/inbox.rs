//! The durable inbox: its records, and the writer thread that stores accepted alerts for
//! every intake request at once.
//!
//! **Records.** An inbox record is `x/inbox/<lane>/<id>` ([`crate::lanes::inbox_key`]),
//! holding either one [`InboxItem`] (a JSON object after the version byte, as every
//! medic has written) or several, up to 64 alerts of one lane that one flush stored (a
//! JSON array). A PagerDuty delivery with an `X-Webhook-Id` skips the writer thread: its
//! records are written in one transaction with its dedupe mark (`crate::intake`). Under a
//! storm one flush holds the alerts of many requests,
//! and one record for them instead of one each spares sled an insert per alert when it
//! is written and a removal per alert when it is handled, with the leaf splits and
//! merges those bring (docs/performance.md, seventh pass). A lone alert is still written
//! as one item, the form an older medic reads.
//!
//! A record is never rewritten: the processor handles its alerts in order, and when a
//! batch ends inside it, the batch writes how many are handled under
//! `x/inbox-cursor/<record key>` (a few bytes, where writing back the rest would copy up
//! to 63 alerts each time a batch of 16 took one of them); the record and its cursor go
//! together once all its alerts are handled ([`Held::settle`]).
//!
//! **The writer.** Each request hands its items over and waits (asynchronously) for the
//! answer. The thread takes everything queued, writes it as **one** sled batch with one
//! flush, and only then answers each request: an alert is acknowledged only once it is
//! on disk (docs/durability.md), and under load one fsync and one batch serve every
//! request that arrived during the previous flush. Compared with a blocking task per
//! request that each applied its own batch and queued on the flush lock, this keeps the
//! async workers free and spends no thread switches per request; the figures are in
//! docs/performance.md.

use medic_core::codec::{self, CodecError};
use medic_core::lanes::Lane;
use medic_core::{Durability, StoreError};
use medic_intake::Alert;
use medic_store::{Op, SledStore};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::mpsc;
use tokio::sync::oneshot;

/// An accepted alert waiting to be handled.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct InboxItem {
    pub received_ms: u64,
    pub alert: Alert,
}

/// Most alerts in one record: bounds a record's size (about 0.5 KB an alert) and what a
/// batch that needs only a few of its alerts decodes.
const MAX_RECORD_ITEMS: usize = 64;

/// Most alerts written in one batch: bounds the wait of the first request of a burst.
const MAX_BATCH_ITEMS: usize = 4_096;

/// The records that store `items` (each with its lane), in order within each lane: one
/// per lane and up to [`MAX_RECORD_ITEMS`] items, each under a new id from the store.
///
/// # Errors
///
/// [`StoreError::Io`] when the store cannot give an id.
pub(crate) fn record_ops(
    store: &SledStore,
    items: Vec<(Lane, InboxItem)>,
) -> Result<Vec<Op>, StoreError> {
    let mut by_lane: [Vec<InboxItem>; 3] = Default::default();
    for (lane, item) in items {
        by_lane[lane as usize].push(item);
    }
    let mut ops = Vec::new();
    for lane in Lane::ALL {
        for chunk in by_lane[lane as usize].chunks(MAX_RECORD_ITEMS) {
            let key = crate::lanes::inbox_key(lane, store.next_id()?);
            ops.push(Op::Put(key, encode(chunk)));
        }
    }
    Ok(ops)
}

/// A record's value: one item alone (the form every medic reads), several as a list.
fn encode(items: &[InboxItem]) -> Vec<u8> {
    match items {
        [one] => codec::encode(one),
        many => codec::encode(&many),
    }
}

/// The items of a record, in the order they were accepted.
///
/// # Errors
///
/// [`CodecError`] when the value is not a record of either form.
pub(crate) fn decode(value: &[u8]) -> Result<Vec<InboxItem>, CodecError> {
    // `codec::encode` writes compact JSON, so the byte after the version is the
    // value's own first character.
    match value.get(1) {
        Some(b'[') => codec::decode(value),
        _ => codec::decode::<InboxItem>(value).map(|one| vec![one]),
    }
}

/// How many alerts a record holds, without building them (a parse that keeps nothing); an unreadable record counts
/// as one (it waits in the inbox until it is moved aside).
pub(crate) fn count(value: &[u8]) -> usize {
    match value.get(1) {
        Some(b'[') => codec::decode::<Vec<serde::de::IgnoredAny>>(value).map_or(1, |v| v.len()),
        _ => 1,
    }
}

/// Where a record's cursor lives: beside the inbox, not under `inbox/`, so that reading
/// a lane never meets one.
const CURSOR_PREFIX: &[u8] = b"inbox-cursor/";

/// The key of the cursor of the inbox record under `record`.
pub(crate) fn cursor_key(record: &[u8]) -> Vec<u8> {
    [CURSOR_PREFIX, record].concat()
}

/// The cursors of the records under `prefix` (a lane's): record key → how many of its
/// alerts earlier batches handled, `None` for a cursor that cannot be read. Read before
/// the records are visited, as [`SledStore::visit`]'s callback must not call the store;
/// there is at most one live cursor per lane, so this is a short read.
///
/// # Errors
///
/// [`StoreError::Io`] when the store cannot be read.
pub(crate) fn cursors(
    store: &SledStore,
    prefix: &[u8],
) -> Result<HashMap<Vec<u8>, Option<usize>>, StoreError> {
    Ok(store
        .scan(&cursor_key(prefix))?
        .into_iter()
        .map(|(k, v)| {
            let done = codec::decode::<u64>(&v)
                .ok()
                .and_then(|n| usize::try_from(n).ok());
            (k[CURSOR_PREFIX.len()..].to_vec(), done)
        })
        .collect())
}

/// Where handling a record of `len` alerts resumes, given its cursor (from [`cursors`]).
/// A cursor that cannot be read, or at or past the record's end (which no batch writes),
/// is not trusted: the record's alerts are handled again from the first, which finds
/// their incidents and runs by id instead of starting new ones.
pub(crate) fn resume_at(cursor: Option<&Option<usize>>, len: usize) -> usize {
    match cursor {
        Some(&Some(done)) if done < len => done,
        _ => 0,
    }
}

/// One inbox record as the processor read it: its key, its alerts, and how many of them
/// are handled, by earlier batches (`start`, from its cursor) and by the batch being
/// handled (`handled`, always the next ones in order: a lane is handled in order).
pub(crate) struct Held {
    pub key: Vec<u8>,
    pub items: Vec<InboxItem>,
    pub start: usize,
    pub handled: usize,
    /// Whether the record has a cursor, trusted or not: it goes with the record.
    pub has_cursor: bool,
}

impl Held {
    /// The writes that record this batch's progress through the record: none when the
    /// batch handled none of it; the record and its cursor removed once every alert is
    /// handled; else the cursor moved on.
    pub(crate) fn settle(&self) -> Vec<Op> {
        if self.handled == self.start {
            return Vec::new();
        }
        if self.handled >= self.items.len() {
            let mut ops = vec![Op::Remove(self.key.clone())];
            if self.has_cursor {
                ops.push(Op::Remove(cursor_key(&self.key)));
            }
            return ops;
        }
        vec![Op::Put(
            cursor_key(&self.key),
            codec::encode(&(self.handled as u64)),
        )]
    }
}

/// The writes that move a record that cannot be read to `dead/` (kept aside, not
/// deleted: an operator can still read it) and drop its cursor, if any.
pub(crate) fn dead(key: &[u8], value: &[u8]) -> Vec<Op> {
    vec![
        Op::Put([b"dead/".as_slice(), key].concat(), value.to_vec()),
        Op::Remove(key.to_vec()),
        Op::Remove(cursor_key(key)),
    ]
}

/// How many alerts wait in the inbox, in all and by lane (critical, warning, info;
/// records from before lanes count as warnings). Reads the records one at a time and
/// counts their alerts without decoding them; the inbox is short unless a storm is
/// being handled.
///
/// # Errors
///
/// [`StoreError::Io`] when the store cannot be read.
pub(crate) fn depth(store: &SledStore) -> Result<(usize, [usize; 3]), StoreError> {
    let sum = |prefix: &[u8]| -> Result<usize, StoreError> {
        let cursors = cursors(store, prefix)?;
        let mut n = 0;
        store.visit(prefix, |k, v| {
            let alerts = count(v);
            // Less what its cursor says is handled, as the processor reads it.
            n += alerts - resume_at(cursors.get(k), alerts);
            ControlFlow::Continue(())
        })?;
        Ok(n)
    };
    let mut lanes = [0usize; 3];
    for lane in Lane::ALL {
        for prefix in crate::lanes::lane_prefixes(lane) {
            lanes[lane as usize] += sum(&prefix)?;
        }
    }
    Ok((lanes.iter().sum(), lanes))
}

struct Job {
    items: Vec<(Lane, InboxItem)>,
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

    /// Stores `items` (each with its lane) in one atomic batch with the other requests'
    /// queued meanwhile, and returns once they are on disk.
    ///
    /// # Errors
    /// The store's error when the batch could not be applied or flushed: then nothing of
    /// it may be acknowledged. [`StoreError::Io`] if the writer thread is gone.
    pub(crate) async fn write(&self, items: Vec<(Lane, InboxItem)>) -> Result<(), StoreError> {
        let gone = || StoreError::Io {
            path: "inbox".into(),
            message: "the inbox writer stopped".into(),
        };
        let (done, answer) = oneshot::channel();
        self.jobs.send(Job { items, done }).map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

fn run(store: &SledStore, queue: &mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut items = first.items;
        let mut waiting = vec![first.done];
        // Everything that queued while the last batch was being flushed joins this one.
        while items.len() < MAX_BATCH_ITEMS {
            match queue.try_recv() {
                Ok(job) => {
                    items.extend(job.items);
                    waiting.push(job.done);
                }
                Err(_) => break,
            }
        }
        // One batch: applied entirely or not at all, so an error means no request of it
        // was stored, and each of them is told so.
        let result = record_ops(store, items).and_then(|ops| store.write(ops, Durability::Flush));
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An Alertmanager alert with fingerprint `n`, received at `n` ms.
    pub(crate) fn item(n: u64) -> InboxItem {
        let body = format!(
            r#"{{"version":"4","status":"firing","alerts":[{{"status":"firing","labels":{{"alertname":"A","n":"{n}"}},"startsAt":"2026-11-22T03:00:00Z","fingerprint":"{n:016x}"}}]}}"#
        );
        let alert = medic_intake::read(medic_intake::Source::Alertmanager, body.as_bytes(), None)
            .unwrap()
            .items
            .remove(0)
            .unwrap();
        InboxItem {
            received_ms: n,
            alert,
        }
    }

    pub(crate) fn received(items: &[InboxItem]) -> Vec<u64> {
        items.iter().map(|i| i.received_ms).collect()
    }

    #[test]
    fn one_alert_is_written_as_every_medic_reads_it_and_several_as_one_record() {
        let one = encode(&[item(1)]);
        assert_eq!(
            one,
            codec::encode(&item(1)),
            "a lone alert keeps the old form"
        );
        assert_eq!(received(&decode(&one).unwrap()), [1]);
        let many = encode(&[item(1), item(2), item(3)]);
        assert_eq!(many[1], b'[');
        assert_eq!(received(&decode(&many).unwrap()), [1, 2, 3]);
        assert_eq!((count(&one), count(&many)), (1, 3));
        assert!(decode(&[codec::FORMAT_VERSION, b'[', b'{']).is_err());
    }

    #[test]
    fn a_flush_writes_a_record_per_lane_in_order_and_splits_long_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path().join("store")).unwrap();
        let mut items = vec![(Lane::Critical, item(0))];
        items.extend((1..=70).map(|n| (Lane::Warning, item(n))));
        let ops = record_ops(&store, items).unwrap();
        let records: Vec<(Vec<u8>, Vec<InboxItem>)> = ops
            .into_iter()
            .map(|op| match op {
                Op::Put(k, v) => (k, decode(&v).unwrap()),
                Op::Remove(_) => panic!("a new record is a put"),
            })
            .collect();
        assert_eq!(records.len(), 3, "critical, then warnings in 64 and 6");
        assert!(
            records[0]
                .0
                .starts_with(&crate::lanes::lane_prefix(Some(Lane::Critical)))
        );
        assert_eq!(received(&records[0].1), [0]);
        assert_eq!(records[1].1.len(), MAX_RECORD_ITEMS);
        // Arrival order within the lane: across records by key, within each in order.
        assert!(records[1].0 < records[2].0);
        let warnings: Vec<u64> = records[1..].iter().flat_map(|(_, i)| received(i)).collect();
        assert_eq!(warnings, (1..=70).collect::<Vec<_>>());
    }

    #[test]
    fn a_record_partly_handled_keeps_a_cursor_and_goes_with_it_when_done() {
        let held = |start, handled| Held {
            key: b"inbox/1/k".to_vec(),
            items: vec![item(1), item(2), item(3)],
            start,
            handled,
            has_cursor: start > 0,
        };
        assert!(
            held(1, 1).settle().is_empty(),
            "nothing handled, nothing written"
        );
        let written = held(0, 1).settle();
        let [Op::Put(k, v)] = &written[..] else {
            panic!("a cursor is written, not {written:?}")
        };
        assert_eq!(k, &cursor_key(b"inbox/1/k"));
        assert_eq!(codec::decode::<u64>(v).unwrap(), 1);
        let done = held(0, 3).settle();
        assert!(matches!(&done[..], [Op::Remove(k)] if k == b"inbox/1/k"));
        let done = held(1, 3).settle();
        assert!(
            matches!(&done[..], [Op::Remove(_), Op::Remove(c)] if c == &cursor_key(b"inbox/1/k"))
        );
    }

    #[test]
    fn the_depth_counts_alerts_not_records() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path().join("store")).unwrap();
        let mut items: Vec<_> = (0..5).map(|n| (Lane::Warning, item(n))).collect();
        items.push((Lane::Info, item(9)));
        store
            .write(record_ops(&store, items).unwrap(), Durability::Flush)
            .unwrap();
        assert_eq!(depth(&store).unwrap(), (6, [0, 5, 1]));
        // Two of the warnings' record handled: its cursor says so.
        let (key, _) = store
            .scan(&crate::lanes::lane_prefix(Some(Lane::Warning)))
            .unwrap()[0]
            .clone();
        store
            .write(
                vec![Op::Put(cursor_key(&key), codec::encode(&2u64))],
                Durability::Flush,
            )
            .unwrap();
        assert_eq!(depth(&store).unwrap(), (4, [0, 3, 1]));
        // A cursor that cannot be read, or at the record's end, is not trusted.
        for bad in [b"\x01x".to_vec(), codec::encode(&5u64)] {
            store
                .write(vec![Op::Put(cursor_key(&key), bad)], Durability::Flush)
                .unwrap();
            assert_eq!(depth(&store).unwrap(), (6, [0, 5, 1]));
            let c = cursors(&store, &crate::lanes::lane_prefix(Some(Lane::Warning))).unwrap();
            assert_eq!(resume_at(c.get(&key), 5), 0);
        }
    }
}
