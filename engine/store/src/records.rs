//! Keyspaces beside the run journals, for the service (`medic serve`): the durable alert
//! inbox, incidents, dedupe marks. Keys live under `x/` so they never collide with
//! journals (`e/`) and run metas (`m/`). Values are whatever the caller encodes
//! (normally `medic_core::codec`).

use crate::SledStore;
use crate::keys::{entry_key, meta_key};
use medic_core::codec::{encode_entry, encode_meta};
use medic_core::{Durability, Entry, RunMeta, StoreError};
use std::ops::ControlFlow;

/// One change in an atomic [`SledStore::write`].
#[derive(Debug, Clone)]
pub enum Op {
    /// Set key (without the `x/` prefix) to value.
    Put(Vec<u8>, Vec<u8>),
    /// Remove key (without the `x/` prefix); removing a missing key is no error.
    Remove(Vec<u8>),
}

/// A (key, value) pair from [`SledStore::scan`].
pub type Record = (Vec<u8>, Vec<u8>);

/// Adds `ops` (keys without the `x/` prefix) to `batch`.
fn add_ops(batch: &mut sled::Batch, ops: Vec<Op>) {
    for op in ops {
        match op {
            Op::Put(k, v) => batch.insert(key(&k), v),
            Op::Remove(k) => batch.remove(key(&k)),
        }
    }
}

fn key(k: &[u8]) -> Vec<u8> {
    let mut out = b"x/".to_vec();
    out.extend_from_slice(k);
    out
}

impl SledStore {
    /// Applies `ops` atomically; with [`Durability::Flush`] they (and every earlier
    /// write) are on disk when this returns.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] when sled cannot apply the batch or flush it.
    pub fn write(&self, mut ops: Vec<Op>, durability: Durability) -> Result<(), StoreError> {
        let write = match ops.len() {
            1 => match ops.pop().expect("one op") {
                Op::Put(k, v) => crate::Write::Put(key(&k), v),
                Op::Remove(k) => crate::Write::Remove(key(&k)),
            },
            _ => {
                let mut batch = sled::Batch::default();
                add_ops(&mut batch, ops);
                crate::Write::Batch(batch)
            }
        };
        let written = self.apply_write(write)?;
        match durability {
            Durability::Flush => self.durable(written),
            Durability::Lazy => Ok(()),
        }
    }

    /// Creates `runs` (each a run's meta and first journal entry, `Executor::run_records`)
    /// and applies `ops`, all in one atomic batch; with [`Durability::Flush`] on disk when
    /// this returns. One batch for a whole inbox batch's runs, incident records and inbox
    /// removals, where a batch per run cost sled two log-buffer writes each
    /// (`crate::Write`).
    ///
    /// # Errors
    ///
    /// [`StoreError::OutOfOrder`] when one of `runs` already has a journal (nothing is
    /// written); [`StoreError::Io`] when sled cannot apply the batch or flush it.
    pub fn write_creating(
        &self,
        runs: &[(RunMeta, Entry)],
        ops: Vec<Op>,
        durability: Durability,
    ) -> Result<(), StoreError> {
        let written = self.apply_creating(runs, ops)?;
        match durability {
            Durability::Flush => self.durable(written),
            Durability::Lazy => Ok(()),
        }
    }

    /// Checks and applies [`SledStore::write_creating`]'s batch (also `create_run`'s, with
    /// one run and no ops); returns its ticket to make durable. Each run counts as one
    /// journal write for the `MEDIC_CRASH_AT_WRITE` failpoint, all counted before the batch.
    pub(crate) fn apply_creating(
        &self,
        runs: &[(RunMeta, Entry)],
        ops: Vec<Op>,
    ) -> Result<crate::Written, StoreError> {
        for _ in runs {
            self.failpoint.before_write();
        }
        let mut cache = self.writer();
        let mut batch = sled::Batch::default();
        let mut ids = std::collections::HashSet::new();
        for (meta, first) in runs {
            // Creating over an existing run (or twice in one batch) would overwrite its
            // first entry. Whether that entry is there is one point lookup: the journal's
            // end (a reverse prefix scan, sled's slowest read) is looked for only to name
            // it in the error.
            let twice = !ids.insert(meta.id.as_str());
            if first.seq != 0 || twice || self.has_journal(&cache, &meta.id)? {
                let expected = match twice {
                    true => 1,
                    false => self.expected_seq(&cache, &meta.id)?.unwrap_or(0),
                };
                return Err(StoreError::OutOfOrder {
                    run: meta.id.clone(),
                    expected,
                    got: first.seq,
                });
            }
            batch.insert(meta_key(&meta.id), encode_meta(meta));
            batch.insert(entry_key(&meta.id, first.seq), encode_entry(first));
        }
        add_ops(&mut batch, ops);
        let written = self.apply_write(crate::Write::Batch(batch))?;
        for (meta, first) in runs {
            cache.insert(meta.id.clone(), first.seq + 1);
        }
        Ok(written)
    }

    /// Applies `ops` and puts `marker` (with value `mark`, e.g. when it was written)
    /// atomically, unless `marker` is already there; returns whether it wrote. The check
    /// and the write are one sled transaction, so of any number of concurrent callers
    /// with one marker exactly one writes: what makes a dedupe key (a webhook id) count a
    /// delivery once. With [`Durability::Flush`] a `true` is on disk when this returns.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] when the store cannot be read or written (nothing was written).
    pub fn write_unless_marked(
        &self,
        marker: &[u8],
        mark: &[u8],
        ops: Vec<Op>,
        durability: Durability,
    ) -> Result<bool, StoreError> {
        use sled::transaction::ConflictableTransactionError as Tx;
        let marker = key(marker);
        let ops: Vec<Op> = ops
            .into_iter()
            .map(|op| match op {
                Op::Put(k, v) => Op::Put(key(&k), v),
                Op::Remove(k) => Op::Remove(key(&k)),
            })
            .collect();
        let written = {
            // Scoped: the handle is dropped before `durable` asks for one again.
            let (db, epoch) = self.db()?;
            let wrote = db.transaction(|tx| {
                if tx.get(&marker)?.is_some() {
                    return Err(Tx::Abort(()));
                }
                tx.insert(marker.as_slice(), mark)?;
                for op in &ops {
                    match op {
                        Op::Put(k, v) => tx.insert(k.as_slice(), v.as_slice())?,
                        Op::Remove(k) => tx.remove(k.as_slice())?,
                    };
                }
                Ok(())
            });
            match wrote {
                Ok(()) => {}
                Err(sled::transaction::TransactionError::Abort(())) => return Ok(false),
                Err(sled::transaction::TransactionError::Storage(e)) => return Err(self.io(e)),
            }
            crate::Written {
                ticket: self.commits.wrote(),
                epoch,
            }
        };
        match durability {
            Durability::Flush => self.durable(written)?,
            Durability::Lazy => {}
        }
        Ok(true)
    }

    /// The value at `k` (without the `x/` prefix), if any.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] when the store cannot be read.
    pub fn get(&self, k: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .db()?
            .0
            .get(key(k))
            .map_err(|e| self.io(e))?
            .map(|v| v.to_vec()))
    }

    /// Every (key without `x/`, value) under `prefix`, in key order.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] when sled cannot read them.
    pub fn scan(&self, prefix: &[u8]) -> Result<Vec<Record>, StoreError> {
        let mut out = Vec::new();
        for kv in self.db()?.0.scan_prefix(key(prefix)) {
            let (k, v) = kv.map_err(|e| self.io(e))?;
            out.push((k[2..].to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    /// Calls `f` with each record under `prefix` (key without the `x/` prefix, value), in
    /// key order, until it returns [`ControlFlow::Break`]: a queue read one record at a
    /// time, without copying out the records it does not need.
    ///
    /// `f` must not call this store: the database handle is held until the visit ends, and
    /// an online compaction swapping databases takes the handle's lock and then waits for
    /// every holder to let go (`compact`), so a store call from `f` would stall both until
    /// the compaction gives up.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] when sled cannot read them.
    pub fn visit(
        &self,
        prefix: &[u8],
        mut f: impl FnMut(&[u8], &[u8]) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        for kv in self.db()?.0.scan_prefix(key(prefix)) {
            let (k, v) = kv.map_err(|e| self.io(e))?;
            if f(&k[2..], &v).is_break() {
                break;
            }
        }
        Ok(())
    }

    /// Removes a run: its meta, its whole journal, its mailbox, and `also` (service
    /// records about it, keys without `x/`), in one atomic batch, not flushed: the caller
    /// flushes once after removing many. A run that does not exist removes nothing.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] when the store cannot be read or written.
    pub fn remove_run(&self, run: &str, also: Vec<Vec<u8>>) -> Result<(), StoreError> {
        let mut cache = self.writer();
        let mut batch = sled::Batch::default();
        batch.remove(crate::keys::meta_key(run));
        {
            // Scoped: the handle is dropped before `apply_batch` asks for one again.
            let db = self.db()?.0;
            for prefix in [
                crate::keys::entry_prefix(run),
                key(&crate::keys::mail_prefix(run)),
            ] {
                for k in db.scan_prefix(prefix).keys() {
                    batch.remove(k.map_err(|e| self.io(e))?);
                }
            }
        }
        for k in also {
            batch.remove(key(&k));
        }
        self.apply_batch(batch)?;
        cache.remove(run);
        Ok(())
    }

    /// Bytes the store takes on disk (sled's own count of its files).
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] when sled cannot tell.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.db()?.0.size_on_disk().map_err(|e| self.io(e))
    }

    /// Bytes of the live records (keys and values; sled's own overhead not counted):
    /// what a compaction would copy, to set against [`SledStore::size_on_disk`]. Reads
    /// every record.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] when sled cannot read them.
    pub fn live_bytes(&self) -> Result<u64, StoreError> {
        let mut n = 0;
        for kv in self.db()?.0.iter() {
            let (k, v) = kv.map_err(|e| self.io(e))?;
            n += (k.len() + v.len()) as u64;
        }
        Ok(n)
    }

    /// Records under `prefix`, newest key first, strictly below `before` (a whole key
    /// without `x/`) when given. Lazy: a keyset page reads only the records it takes
    /// (64 at a time), however many the prefix holds.
    ///
    /// Each chunk is read with a handle of its own, dropped before the chunk is handed
    /// out: a caller may use the store while it walks the iterator (the web index reads
    /// each run's meta), and nothing holds the database between two chunks, which online
    /// compaction relies on (`compact.rs`).
    pub fn scan_back(
        &self,
        prefix: &[u8],
        before: Option<&[u8]>,
    ) -> impl Iterator<Item = Result<Record, StoreError>> + '_ {
        let low = key(prefix);
        let mut high = Some(match before {
            Some(b) => key(b),
            None => successor(&low),
        });
        let mut chunk = std::collections::VecDeque::new();
        std::iter::from_fn(move || {
            if chunk.is_empty() {
                let below = high.take()?;
                let read: Result<Vec<_>, _> = self.db().and_then(|(db, _)| {
                    db.range(low.clone()..below)
                        .rev()
                        .take(SCAN_BACK_CHUNK)
                        .map(|kv| kv.map_err(|e| self.io(e)))
                        .collect()
                });
                match read {
                    Err(e) => return Some(Err(e)),
                    Ok(read) => {
                        // A full chunk may have more below its last key; a short one ends it.
                        if read.len() == SCAN_BACK_CHUNK {
                            high = read.last().map(|(k, _)| k.to_vec());
                        }
                        chunk.extend(read);
                    }
                }
            }
            let (k, v) = chunk.pop_front()?;
            Some(Ok((k[2..].to_vec(), v.to_vec())))
        })
    }

    /// A new id, increasing across restarts: orders the inbox.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] when sled cannot persist the counter.
    pub fn next_id(&self) -> Result<u64, StoreError> {
        self.db()?.0.generate_id().map_err(|e| self.io(e))
    }
}

/// Records [`SledStore::scan_back`] reads at a time.
const SCAN_BACK_CHUNK: usize = 64;

/// The smallest key above every key that starts with `prefix`.
fn successor(prefix: &[u8]) -> Vec<u8> {
    let mut out = prefix.to_vec();
    while let Some(last) = out.pop() {
        if last < u8::MAX {
            out.push(last + 1);
            return out;
        }
    }
    // A prefix of all 0xFF bytes: nothing sorts above it but longer keys; the tree's
    // keys here always start with `x/`, so this is unreachable in practice.
    vec![u8::MAX; prefix.len() + 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_atomic_scoped_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SledStore::open(dir.path()).unwrap();
            let a = s.next_id().unwrap();
            let b = s.next_id().unwrap();
            assert!(b > a);
            s.write(
                vec![
                    Op::Put(b"inbox/1".to_vec(), b"one".to_vec()),
                    Op::Put(b"inbox/2".to_vec(), b"two".to_vec()),
                    Op::Put(b"other".to_vec(), b"x".to_vec()),
                ],
                Durability::Flush,
            )
            .unwrap();
            s.write(vec![Op::Remove(b"inbox/1".to_vec())], Durability::Flush)
                .unwrap();
            assert!(medic_core::JournalStore::runs(&s).unwrap().is_empty());
        }
        let s = SledStore::open(dir.path()).unwrap();
        let inbox = s.scan(b"inbox/").unwrap();
        assert_eq!(inbox, vec![(b"inbox/2".to_vec(), b"two".to_vec())]);
        assert_eq!(s.get(b"other").unwrap().as_deref(), Some(&b"x"[..]));
        assert!(s.next_id().unwrap() > 0);
    }

    #[test]
    fn a_visit_reads_in_key_order_within_its_prefix_until_told_to_stop() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(dir.path()).unwrap();
        let put = |k: &str| Op::Put(k.as_bytes().to_vec(), k.as_bytes().to_vec());
        s.write(
            vec![put("q/2"), put("q/1"), put("q/3"), put("qq"), put("r/1")],
            Durability::Lazy,
        )
        .unwrap();
        let mut seen = Vec::new();
        s.visit(b"q/", |k, v| {
            assert_eq!(k, v, "the key without x/, and its value");
            seen.push(String::from_utf8(k.to_vec()).unwrap());
            match seen.len() {
                2 => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            }
        })
        .unwrap();
        assert_eq!(seen, ["q/1", "q/2"]);
    }

    #[test]
    fn of_concurrent_writers_with_one_marker_exactly_one_writes() {
        let dir = tempfile::tempdir().unwrap();
        let s = std::sync::Arc::new(SledStore::open(dir.path()).unwrap());
        for round in 0..20u32 {
            let marker = format!("seen/{round}").into_bytes();
            let threads: Vec<_> = (0..8u32)
                .map(|i| {
                    let (s, marker) = (s.clone(), marker.clone());
                    std::thread::spawn(move || {
                        let item = format!("inbox/{round}/{i}").into_bytes();
                        s.write_unless_marked(
                            &marker,
                            b"1",
                            vec![Op::Put(item, vec![1])],
                            Durability::Lazy,
                        )
                        .unwrap()
                    })
                })
                .collect();
            let wrote = threads
                .into_iter()
                .map(|t| t.join().unwrap())
                .filter(|w| *w)
                .count();
            assert_eq!(wrote, 1, "round {round}");
            let items = s.scan(format!("inbox/{round}/").as_bytes()).unwrap();
            assert_eq!(items.len(), 1, "round {round}");
        }
    }

    #[test]
    fn scan_back_walks_a_prefix_newest_first_from_a_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(dir.path()).unwrap();
        let ops = ["p/1", "p/2", "p/3", "q/1", "o/9"]
            .iter()
            .map(|k| Op::Put(k.as_bytes().to_vec(), b"v".to_vec()))
            .collect();
        s.write(ops, Durability::Lazy).unwrap();
        let keys = |before: Option<&[u8]>| -> Vec<Vec<u8>> {
            s.scan_back(b"p/", before).map(|r| r.unwrap().0).collect()
        };
        assert_eq!(
            keys(None),
            vec![b"p/3".to_vec(), b"p/2".to_vec(), b"p/1".to_vec()]
        );
        assert_eq!(keys(Some(b"p/3")), vec![b"p/2".to_vec(), b"p/1".to_vec()]);
        assert!(keys(Some(b"p/1")).is_empty());
    }
}
