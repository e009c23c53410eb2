//! Reading a journal: one range scan, split across the cores when the journal is long.
//!
//! A run page opened on a long run reads its whole journal once (about 1.3 µs to decode
//! an entry and 0.6 µs to walk sled's tree to it, measured in `medic-core`'s `codec`
//! bench and `medic-server`'s `web` bench), so 10,000 entries take about 20 ms on one
//! core. Sequence numbers are the key's tail, so the journal splits into equal ranges
//! that are read and decoded side by side, then joined in order.

use crate::SledStore;
use crate::keys::{entry_key, entry_prefix, seq_of};
use medic_core::codec::decode_entry;
use medic_core::{Entry, StoreError};

/// Journals shorter than this are read on the calling thread: below it, starting
/// threads costs more than it saves.
const SPLIT_FROM: u64 = 2_048;
/// At most this many ranges, however many cores there are.
const MAX_PARTS: u64 = 4;

impl SledStore {
    /// The entries of `run`'s journal from `from` on, in order (empty when there are none).
    pub(crate) fn read_journal(
        &self,
        db: &sled::Db,
        run: &str,
        from: u64,
    ) -> Result<Vec<Entry>, StoreError> {
        // Every key of the run's journal is below the prefix with its last byte raised.
        let mut end = entry_prefix(run);
        if let Some(last) = end.last_mut() {
            *last += 1;
        }
        let start = entry_key(run, from);
        let last = match db.range(start.as_slice()..end.as_slice()).next_back() {
            None => return Ok(Vec::new()),
            Some(kv) => seq_of(&kv.map_err(|e| self.io(e))?.0).unwrap_or(from),
        };
        let span = last.saturating_sub(from) + 1;
        // Asked only for a long journal: `available_parallelism` reads the cgroup's files
        // under /proc on every call, which cost 3 % of all CPU when every run's driver
        // opening its short journal asked (the loopback bench's profile).
        let parts = if span < SPLIT_FROM {
            1
        } else {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
            cores.clamp(1, MAX_PARTS)
        };
        if parts == 1 {
            return self.decode_range(db, &start, &end);
        }
        let bounds: Vec<Vec<u8>> = (0..parts)
            .map(|i| entry_key(run, from + span * i / parts))
            .chain(std::iter::once(end))
            .collect();
        let read: Vec<Result<Vec<Entry>, StoreError>> = std::thread::scope(|s| {
            let handles: Vec<_> = bounds
                .windows(2)
                .map(|w| s.spawn(move || self.decode_range(db, &w[0], &w[1])))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        });
        let mut out = Vec::with_capacity(span as usize);
        for part in read {
            out.extend(part?);
        }
        Ok(out)
    }

    fn decode_range(
        &self,
        db: &sled::Db,
        start: &[u8],
        end: &[u8],
    ) -> Result<Vec<Entry>, StoreError> {
        let mut out = Vec::new();
        for kv in db.range(start..end) {
            let (k, v) = kv.map_err(|e| self.io(e))?;
            out.push(decode_entry(&v).map_err(|e| self.corrupt(&k, e))?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use crate::SledStore;
    use medic_core::{Entry, Event, JournalStore};
    use medic_model::IncidentStatus;

    #[test]
    fn a_long_journal_read_in_parts_comes_back_whole_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path().join("store")).unwrap();
        let db = store.db().unwrap().0;
        let n = super::SPLIT_FROM * 2 + 7;
        for seq in 0..n {
            let status = if seq % 2 == 0 {
                IncidentStatus::Firing
            } else {
                IncidentStatus::Resolved
            };
            let entry = Entry {
                seq,
                at_ms: seq,
                event: Event::IncidentUpdated { status },
            };
            db.insert(
                crate::keys::entry_key("r", seq),
                medic_core::codec::encode_entry(&entry),
            )
            .unwrap();
        }
        // A neighbour whose id extends this one must not leak into the read.
        db.insert(crate::keys::entry_key("r2", 0), b"not an entry".to_vec())
            .unwrap();
        for from in [0, 5, n - 3, n, n + 10] {
            let got = store.read_journal(&db, "r", from).unwrap();
            let seqs: Vec<u64> = got.iter().map(|e| e.seq).collect();
            assert_eq!(seqs, (from..n).collect::<Vec<_>>(), "from {from}");
        }
        assert_eq!(store.entries("r").unwrap().len() as u64, n);
    }
}
