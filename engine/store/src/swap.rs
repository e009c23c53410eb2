//! Putting a compacted copy in the store's place, and finishing or undoing a swap an
//! interruption (a crash, a power cut, a full disk) cut short.
//!
//! A compaction writes the copy to `<path>.compacting`, flushes and closes it, syncs it
//! and only then writes the marker file [`COMPLETE`] inside it (synced too). The swap
//! is then two renames, each made durable by syncing the parent directory:
//!
//! 1. `<path>` → `<path>.old`
//! 2. `<path>.compacting` → `<path>`
//!
//! after which the marker and `<path>.old` are removed. Every state an interruption can
//! leave has exactly one complete store to keep, which [`recover`] finds:
//!
//! | `<path>` | `<path>.compacting` | `<path>.old` | what it is | recovery |
//! |---|---|---|---|---|
//! | yes | any | no | copy not finished, or finished but not swapped | remove `.compacting` (`<path>` has every record) |
//! | no | with marker | yes | between the renames | rename `.compacting` to `<path>`, remove `.old` |
//! | no | without marker / none | yes | impossible in this order; an older medic's leftover | rename `.old` back |
//! | yes | none | yes | swapped, `.old` not yet removed | remove `.old` |
//! | yes (with marker inside) | none | no | swapped, marker not yet removed | remove the marker |
//!
//! sled writes its snapshot files by the path it was opened with, so an open database
//! is never renamed: the copy is closed before step 2 and the old database fully
//! dropped before step 1 (the caller's duty).

use medic_core::StoreError;
use std::path::{Path, PathBuf};

/// The marker written into `<path>.compacting` once the copy in it is complete and on
/// disk. Its presence is what makes the copy worth keeping after an interruption.
pub(crate) const COMPLETE: &str = "medic-compaction-complete";

/// `<path>.<suffix>`, beside the store.
pub(crate) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{suffix}"));
    path.with_file_name(name)
}

/// Where a compaction writes its copy.
pub(crate) fn compacting(path: &Path) -> PathBuf {
    sibling(path, "compacting")
}

fn old(path: &Path) -> PathBuf {
    sibling(path, "old")
}

pub(crate) fn io(path: &Path, e: impl std::fmt::Display) -> StoreError {
    StoreError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// fsyncs a directory, so the renames and new files in it survive a power cut.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, format!("cannot sync the directory: {e}")))
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Marks the closed copy at `fresh` complete: its directory synced (sled's files are
/// in it), then the marker written and synced.
pub(crate) fn mark_complete(fresh: &Path) -> Result<(), StoreError> {
    sync_dir(fresh)?;
    let marker = fresh.join(COMPLETE);
    std::fs::File::create(&marker)
        .and_then(|f| f.sync_all())
        .map_err(|e| io(&marker, e))?;
    sync_dir(fresh)
}

/// Puts the complete, closed copy at `<path>.compacting` in place of the store at
/// `path`, which nothing may hold open; [`tidy`] then removes what is left of the old
/// one (apart, so an online compaction does it after the pause). On an error part-way,
/// [`recover`] knows what to do with what is left.
///
/// # Errors
///
/// [`StoreError::Io`] naming the directory that could not be renamed, removed or synced.
pub(crate) fn swap_in(path: &Path) -> Result<(), StoreError> {
    let (fresh, old) = (compacting(path), old(path));
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| io(&old, e))?;
    }
    std::fs::rename(path, &old).map_err(|e| io(path, e))?;
    std::fs::rename(&fresh, path).map_err(|e| io(&fresh, e))?;
    sync_dir(parent(path))
}

/// The copy is in place: what is left of the swap (the marker, the old store) goes.
///
/// # Errors
///
/// [`StoreError::Io`] naming what could not be removed (it is removed at the next open).
pub(crate) fn tidy(path: &Path) -> Result<(), StoreError> {
    let marker = path.join(COMPLETE);
    if marker.exists() {
        std::fs::remove_file(&marker).map_err(|e| io(&marker, e))?;
    }
    let old = old(path);
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| io(&old, e))?;
    }
    Ok(())
}

/// Finishes or undoes a swap an interruption cut short (see the module docs for each
/// state); does nothing when there is nothing left over. Called before the store is
/// opened.
///
/// # Errors
///
/// [`StoreError::Io`] naming the directory that could not be renamed or removed.
pub(crate) fn recover(path: &Path) -> Result<(), StoreError> {
    let (fresh, old) = (compacting(path), old(path));
    if !path.exists() {
        let from = if fresh.join(COMPLETE).exists() {
            Some(&fresh)
        } else if old.exists() {
            Some(&old)
        } else {
            None
        };
        if let Some(from) = from {
            std::fs::rename(from, path).map_err(|e| io(from, e))?;
            sync_dir(parent(path))?;
            eprintln!(
                "medic: store {}: finished a compaction that was interrupted (kept {})",
                path.display(),
                if from == &fresh {
                    "the compacted copy"
                } else {
                    "the store as it was before"
                }
            );
        }
    }
    // `path` now holds every record: a leftover copy, complete or not, is not needed.
    if fresh.exists() {
        std::fs::remove_dir_all(&fresh).map_err(|e| io(&fresh, e))?;
    }
    if path.exists() {
        tidy(path)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Op, SledStore};
    use medic_core::Durability;

    /// A store at `<dir>/store` holding `value` under `k`, closed.
    fn store(dir: &Path, name: &str, value: &[u8]) -> PathBuf {
        let path = dir.join(name);
        let s = SledStore::open(&path).unwrap();
        s.write(
            vec![Op::Put(b"k".to_vec(), value.to_vec())],
            Durability::Flush,
        )
        .unwrap();
        path
    }

    fn value(path: &Path) -> Vec<u8> {
        SledStore::open(path).unwrap().get(b"k").unwrap().unwrap()
    }

    /// Moves a closed store to `to` (as the interrupted swap would have).
    fn moved(from: &Path, to: &Path) {
        std::fs::rename(from, to).unwrap();
    }

    fn leftovers(path: &Path) -> Vec<bool> {
        vec![
            compacting(path).exists(),
            old(path).exists(),
            path.join(COMPLETE).exists(),
        ]
    }

    #[test]
    fn an_unfinished_copy_is_dropped_and_the_store_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = store(dir.path(), "store", b"live");
        let copy = store(dir.path(), "copy", b"half");
        moved(&copy, &compacting(&path));
        assert_eq!(value(&path), b"live");
        assert_eq!(leftovers(&path), [false, false, false]);
    }

    #[test]
    fn a_complete_copy_not_yet_swapped_is_dropped_and_the_store_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = store(dir.path(), "store", b"live");
        let copy = store(dir.path(), "copy", b"same");
        mark_complete(&copy).unwrap();
        moved(&copy, &compacting(&path));
        assert_eq!(value(&path), b"live");
        assert_eq!(leftovers(&path), [false, false, false]);
    }

    #[test]
    fn between_the_renames_the_complete_copy_is_put_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = store(dir.path(), "store", b"before");
        let copy = store(dir.path(), "copy", b"compacted");
        mark_complete(&copy).unwrap();
        moved(&copy, &compacting(&path));
        moved(&path, &old(&path));
        assert_eq!(value(&path), b"compacted");
        assert_eq!(leftovers(&path), [false, false, false]);
    }

    #[test]
    fn without_a_complete_copy_the_old_store_is_put_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = store(dir.path(), "store", b"before");
        let copy = store(dir.path(), "copy", b"half");
        moved(&copy, &compacting(&path));
        moved(&path, &old(&path));
        assert_eq!(value(&path), b"before");
        assert_eq!(leftovers(&path), [false, false, false]);
        // And with no copy at all.
        moved(&path, &old(&path));
        assert_eq!(value(&path), b"before");
        assert_eq!(leftovers(&path), [false, false, false]);
    }

    #[test]
    fn after_the_renames_the_old_store_and_the_marker_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = store(dir.path(), "store", b"compacted");
        mark_complete(&path).unwrap();
        let before = store(dir.path(), "before", b"before");
        moved(&before, &old(&path));
        assert_eq!(value(&path), b"compacted");
        assert_eq!(leftovers(&path), [false, false, false]);
    }

    #[test]
    fn a_store_never_compacted_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        recover(&path).unwrap();
        assert!(!path.exists(), "recovery created a store");
        let path = store(dir.path(), "store", b"v");
        recover(&path).unwrap();
        assert_eq!(value(&path), b"v");
    }
}
