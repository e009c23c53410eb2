//! Compaction by rewrite. sled 0.34 has no compaction call: space freed by removals is
//! reused for later writes, but the files do not shrink (measured in
//! `medic-server`'s `retention` bench). Copying every record into a fresh database and
//! swapping the directories gives the space back.

use crate::SledStore;
use medic_core::StoreError;
use std::path::{Path, PathBuf};

/// Sizes on disk before and after [`SledStore::compact`], bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compacted {
    /// The store's size before.
    pub before: u64,
    /// Its size after the rewrite.
    pub after: u64,
}

fn io(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

impl SledStore {
    /// Rewrites the store at `path` into a fresh database and puts it in its place; the
    /// store must not be open (stop `medic serve` first). Every record is copied and
    /// flushed before the old directory is touched; the old one is then renamed to
    /// `<path>.old` and removed once the new one is in place, so an interruption leaves
    /// either the old store at `path` or both copies to choose from by hand.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] naming the path when a store cannot be opened (in use by
    /// another process), read, written or renamed.
    pub fn compact(path: &Path) -> Result<Compacted, StoreError> {
        let fresh = sibling(path, "compacting");
        let old = sibling(path, "old");
        if fresh.exists() {
            std::fs::remove_dir_all(&fresh).map_err(|e| io(&fresh, e))?;
        }
        let before = {
            let src = SledStore::open(path)?;
            let size = src.size_on_disk()?;
            let dst = sled::Config::new()
                .path(&fresh)
                .open()
                .map_err(|e| io(&fresh, e))?;
            let (db, _) = src.db()?;
            for kv in db.iter() {
                let (k, v) = kv.map_err(|e| src.io(e))?;
                dst.insert(k, v).map_err(|e| io(&fresh, e))?;
            }
            // Ids handed out later must stay above every id already used.
            let next = db.generate_id().map_err(|e| src.io(e))?;
            while dst.generate_id().map_err(|e| io(&fresh, e))? < next {}
            dst.flush().map_err(|e| io(&fresh, e))?;
            size
        };
        std::fs::rename(path, &old).map_err(|e| io(path, e))?;
        std::fs::rename(&fresh, path).map_err(|e| io(&fresh, e))?;
        std::fs::remove_dir_all(&old).map_err(|e| io(&old, e))?;
        let after = SledStore::open(path)?.size_on_disk()?;
        Ok(Compacted { before, after })
    }
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{suffix}"));
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Op;
    use medic_core::Durability;

    #[test]
    fn a_rewrite_keeps_every_record_and_ids_keep_growing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        let last_id = {
            let s = SledStore::open(&path).unwrap();
            let ops = (0..2000u32)
                .map(|i| Op::Put(format!("k/{i}").into_bytes(), vec![7; 512]))
                .collect();
            s.write(ops, Durability::Flush).unwrap();
            let gone = (0..1990u32)
                .map(|i| Op::Remove(format!("k/{i}").into_bytes()))
                .collect();
            s.write(gone, Durability::Flush).unwrap();
            s.next_id().unwrap()
        };
        let c = SledStore::compact(&path).unwrap();
        assert!(c.after < c.before, "{c:?}");
        let s = SledStore::open(&path).unwrap();
        assert_eq!(s.scan(b"k/").unwrap().len(), 10);
        assert!(s.next_id().unwrap() > last_id);
        assert!(!sibling(&path, "old").exists());
    }
}
