//! medic's embedded durable store, on sled.
//!
//! One sled tree holds everything, so a journal append and its run-meta update are one
//! atomic batch:
//!
//! | key                          | value                         |
//! |------------------------------|-------------------------------|
//! | `m/<run-id>`                 | [`RunMeta`] (codec-encoded)   |
//! | `e/<run-id>/<seq: u64 BE>`   | journal [`Entry`]             |
//!
//! Big-endian sequence numbers make a prefix scan return a journal in order. Every
//! write is flushed (fsync) before the call returns: that is the executor's
//! write-ahead guarantee.
//!
//! ```no_run
//! let store = medic_store::SledStore::open("/var/lib/medic/store").unwrap();
//! for run in medic_core::Store::runs(&store).unwrap() {
//!     println!("{} {}", run.id, run.status.as_str());
//! }
//! ```

use medic_core::codec::{decode_entry, decode_meta, encode_entry, encode_meta};
use medic_core::{Durability, Entry, RunMeta, Store, StoreError};
use std::path::{Path, PathBuf};

pub struct SledStore {
    db: sled::Db,
    path: PathBuf,
}

impl SledStore {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<SledStore, StoreError> {
        let path = path.as_ref().to_path_buf();
        let db = sled::Config::new()
            .path(&path)
            .open()
            .map_err(|e| open_error(&path, e))?;
        Ok(SledStore { db, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Io {
            path: self.path.display().to_string(),
            message: e.to_string(),
        }
    }

    fn corrupt(&self, key: &[u8], source: medic_core::codec::CodecError) -> StoreError {
        StoreError::Corrupt {
            path: self.path.display().to_string(),
            key: String::from_utf8_lossy(key).into_owned(),
            source,
        }
    }

    fn last_seq(&self, run: &str) -> Result<Option<u64>, StoreError> {
        let prefix = entry_prefix(run);
        match self.db.scan_prefix(&prefix).next_back() {
            None => Ok(None),
            Some(Err(e)) => Err(self.io(e)),
            Some(Ok((k, _))) => Ok(Some(seq_of(&k[prefix.len()..]))),
        }
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(|e| self.io(e))
    }
}

fn open_error(path: &Path, e: sled::Error) -> StoreError {
    let message = match &e {
        // sled reports a second opener as an I/O "would block" on its lock file.
        sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock => {
            "in use by another medic process (the store allows one at a time)".to_string()
        }
        other => format!("cannot open: {other}"),
    };
    StoreError::Io {
        path: path.display().to_string(),
        message,
    }
}

fn meta_key(run: &str) -> Vec<u8> {
    format!("m/{run}").into_bytes()
}

fn entry_prefix(run: &str) -> Vec<u8> {
    format!("e/{run}/").into_bytes()
}

fn entry_key(run: &str, seq: u64) -> Vec<u8> {
    let mut k = entry_prefix(run);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn seq_of(suffix: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&suffix[..8]);
    u64::from_be_bytes(b)
}

impl Store for SledStore {
    fn create_run(&self, meta: &RunMeta, first: &Entry) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        batch.insert(meta_key(&meta.id), encode_meta(meta));
        batch.insert(entry_key(&meta.id, first.seq), encode_entry(first));
        self.db.apply_batch(batch).map_err(|e| self.io(e))?;
        self.flush()
    }

    fn append(
        &self,
        run: &str,
        entry: &Entry,
        meta: Option<&RunMeta>,
        durability: Durability,
    ) -> Result<(), StoreError> {
        let expected = match self.last_seq(run)? {
            Some(last) => last + 1,
            None => return Err(StoreError::NoSuchRun(run.to_string())),
        };
        if entry.seq != expected {
            return Err(StoreError::OutOfOrder {
                run: run.to_string(),
                expected,
                got: entry.seq,
            });
        }
        let mut batch = sled::Batch::default();
        batch.insert(entry_key(run, entry.seq), encode_entry(entry));
        if let Some(m) = meta {
            batch.insert(meta_key(run), encode_meta(m));
        }
        self.db.apply_batch(batch).map_err(|e| self.io(e))?;
        match durability {
            Durability::Flush => self.flush(),
            Durability::Lazy => Ok(()),
        }
    }

    fn entries(&self, run: &str) -> Result<Vec<Entry>, StoreError> {
        let mut out = Vec::new();
        for kv in self.db.scan_prefix(entry_prefix(run)) {
            let (k, v) = kv.map_err(|e| self.io(e))?;
            out.push(decode_entry(&v).map_err(|e| self.corrupt(&k, e))?);
        }
        if out.is_empty() && self.run(run)?.is_none() {
            return Err(StoreError::NoSuchRun(run.to_string()));
        }
        Ok(out)
    }

    fn run(&self, run: &str) -> Result<Option<RunMeta>, StoreError> {
        let key = meta_key(run);
        match self.db.get(&key).map_err(|e| self.io(e))? {
            None => Ok(None),
            Some(v) => decode_meta(&v).map(Some).map_err(|e| self.corrupt(&key, e)),
        }
    }

    fn runs(&self) -> Result<Vec<RunMeta>, StoreError> {
        let mut out = Vec::new();
        for kv in self.db.scan_prefix(b"m/") {
            let (k, v) = kv.map_err(|e| self.io(e))?;
            out.push(decode_meta(&v).map_err(|e| self.corrupt(&k, e))?);
        }
        out.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use medic_core::{Event, RunStatus};

    fn meta(id: &str) -> RunMeta {
        RunMeta {
            id: id.into(),
            workflow: "wf".into(),
            incident_title: "t".into(),
            status: RunStatus::Running,
            created_ms: 1,
            updated_ms: 1,
        }
    }

    fn skip(seq: u64) -> Entry {
        Entry {
            seq,
            at_ms: seq,
            event: Event::StepSkipped {
                step: "s".into(),
                reason: "r".into(),
            },
        }
    }

    #[test]
    fn appends_in_order_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SledStore::open(dir.path()).unwrap();
            s.create_run(&meta("a"), &skip(0)).unwrap();
            s.append("a", &skip(1), None, Durability::Flush).unwrap();
            let err = s.append("a", &skip(5), None, Durability::Flush).unwrap_err();
            assert!(err.to_string().contains("expected seq 2, got 5"), "{err}");
            let mut done = meta("a");
            done.status = RunStatus::Succeeded;
            s.append("a", &skip(2), Some(&done), Durability::Flush).unwrap();
        }
        let s = SledStore::open(dir.path()).unwrap();
        let seqs: Vec<u64> = s.entries("a").unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, vec![0, 1, 2]);
        assert_eq!(s.run("a").unwrap().unwrap().status, RunStatus::Succeeded);
        assert!(matches!(s.entries("b"), Err(StoreError::NoSuchRun(_))));
    }

    #[test]
    fn second_opener_gets_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let _first = SledStore::open(dir.path()).unwrap();
        let err = SledStore::open(dir.path())
            .err()
            .expect("second open must fail");
        let msg = err.to_string();
        assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
    }

    #[test]
    fn corrupt_record_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let s = SledStore::open(dir.path()).unwrap();
        s.create_run(&meta("a"), &skip(0)).unwrap();
        s.db.insert(entry_key("a", 1), vec![9u8, b'{']).unwrap();
        let err = s.entries("a").unwrap_err().to_string();
        assert!(err.contains("format version 9"), "{err}");
        assert!(err.contains("e/a/"), "{err}");
    }
}
