//! Keyspaces beside the run journals, for the service (`medic serve`): the durable alert
//! inbox, incidents, dedupe marks. Keys live under `x/` so they never collide with
//! journals (`e/`) and run metas (`m/`). Values are whatever the caller encodes
//! (normally `medic_core::codec`).

use crate::SledStore;
use medic_core::{Durability, StoreError};

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
    pub fn write(&self, ops: Vec<Op>, durability: Durability) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for op in ops {
            match op {
                Op::Put(k, v) => batch.insert(key(&k), v),
                Op::Remove(k) => batch.remove(key(&k)),
            }
        }
        self.db.apply_batch(batch).map_err(|e| self.io(e))?;
        let ticket = self.commits.wrote();
        match durability {
            Durability::Flush => self.durable(ticket),
            Durability::Lazy => Ok(()),
        }
    }

    /// The value at key `k` (without the `x/` prefix), if any.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] when sled cannot read it.
    pub fn get(&self, k: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .db
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
        for kv in self.db.scan_prefix(key(prefix)) {
            let (k, v) = kv.map_err(|e| self.io(e))?;
            out.push((k[2..].to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    /// A new id, increasing across restarts: orders the inbox.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] when sled cannot persist the counter.
    pub fn next_id(&self) -> Result<u64, StoreError> {
        self.db.generate_id().map_err(|e| self.io(e))
    }
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
            assert!(medic_core::Store::runs(&s).unwrap().is_empty());
        }
        let s = SledStore::open(dir.path()).unwrap();
        let inbox = s.scan(b"inbox/").unwrap();
        assert_eq!(inbox, vec![(b"inbox/2".to_vec(), b"two".to_vec())]);
        assert_eq!(s.get(b"other").unwrap().as_deref(), Some(&b"x"[..]));
        assert!(s.next_id().unwrap() > 0);
    }
}
