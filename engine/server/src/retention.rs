//! Retention (`[retention]` in medic.toml): finished runs, their journals and mailboxes,
//! resolved incidents and PagerDuty dedupe marks older than `keep` are removed in the
//! background, each run and incident written first to a JSON Lines archive when
//! `archive` is set. After a sweep the store is compacted while serving when its size on
//! disk is far above its live records ([`compact_if_due`]).
//!
//! Never removed: a run still going (waiting on a gate or a retry timer included), a
//! finished run of an incident that is still firing, an incident that is still firing or
//! still has a run in the store, and alerts not yet handled (the inbox). Drill files and
//! postmortems live outside the store and are never touched.
//!
//! A dedupe mark's value is when it was written (ms since the epoch, codec-encoded,
//! [`crate::intake`]). A mark written by an older medic has an empty value: the first
//! sweep stamps it with its own time, so it goes `keep` later like any other (removing
//! it at once could let a late re-delivery through; keeping it forever is the growth
//! this fixes).
//!
//! An archive line is one of
//! `{"removed_at": MS, "run": RunMeta, "journal": [Entry...]}` or
//! `{"removed_at": MS, "incident": IncidentRecord}`; the file is appended to and synced
//! before anything it holds is removed from the store.

use crate::Service;
use crate::incident::IncidentRecord;
use crate::processor::ProcessError;
use medic_core::{Durability, JournalStore, RunStatus, codec};
use medic_model::{IncidentStatus, units};
use medic_store::Compacted;
use serde::Deserialize;
use serde_json::json;
use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// `[retention]`: how long finished work is kept.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// How long a finished run (or resolved incident) is kept after it ended, a duration
    /// such as `90d` (the default) or `1s`.
    #[serde(default)]
    pub keep: Option<String>,
    /// How often the background sweep runs (default: half of `keep`, at most `1h`).
    #[serde(default)]
    pub every: Option<String>,
    /// A JSON Lines file removed records are appended to first; relative to the config
    /// file's directory. Without it, removed records are gone.
    #[serde(default)]
    pub archive: Option<PathBuf>,
    /// Whether the store is rewritten while serving when a sweep leaves it far bigger on
    /// disk than its live records (default `true`; see [`compact_if_due`]).
    #[serde(default)]
    pub compact: Option<bool>,
    /// Compact only when the size on disk is at least this many times the live records'
    /// bytes (default 4, at least 1).
    #[serde(default)]
    pub compact_ratio: Option<f64>,
    /// Compact only a store at least this big on disk, a size such as `64MiB` (the
    /// default) or `0`.
    #[serde(default)]
    pub compact_min_size: Option<String>,
}

/// The resolved settings.
#[derive(Debug, Clone)]
pub(crate) struct Retention {
    pub(crate) keep_ms: u64,
    pub(crate) every_ms: u64,
    pub(crate) archive: Option<PathBuf>,
    /// When to compact after a sweep; `None`: never (`compact = false`).
    pub(crate) compact: Option<CompactRule>,
}

/// Compact when the store is at least `min_bytes` on disk and `ratio` times its live
/// records.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CompactRule {
    pub(crate) ratio: f64,
    pub(crate) min_bytes: u64,
}

const DEFAULT_KEEP_MS: u64 = 90 * 24 * 3600 * 1000;
const DEFAULT_COMPACT_RATIO: f64 = 4.0;
const DEFAULT_COMPACT_MIN_BYTES: u64 = 64 << 20;

impl RetentionConfig {
    /// The settings, with `base` the config file's directory.
    ///
    /// # Errors
    ///
    /// A message naming `keep` or `every` when it is not a positive duration.
    pub(crate) fn resolve(&self, base: &std::path::Path) -> Result<Retention, String> {
        let dur = |what: &str, v: &Option<String>| -> Result<Option<u64>, String> {
            match v {
                None => Ok(None),
                Some(t) => match units::parse_duration_ms(t) {
                    Some(ms) if ms > 0 => Ok(Some(ms)),
                    _ => Err(format!(
                        "retention.{what}: `{t}` is not a positive duration (e.g. `90d`, `12h`)"
                    )),
                },
            }
        };
        let keep_ms = dur("keep", &self.keep)?.unwrap_or(DEFAULT_KEEP_MS);
        let every_ms = dur("every", &self.every)?.unwrap_or((keep_ms / 2).clamp(100, 3_600_000));
        let ratio = self.compact_ratio.unwrap_or(DEFAULT_COMPACT_RATIO);
        if !(ratio >= 1.0 && ratio.is_finite()) {
            return Err(format!(
                "retention.compact_ratio: `{ratio}` must be a number >= 1 (size on disk / live records)"
            ));
        }
        let min_bytes = match &self.compact_min_size {
            None => DEFAULT_COMPACT_MIN_BYTES,
            Some(t) => units::parse_size_bytes(t).ok_or(format!(
                "retention.compact_min_size: `{t}` is not a size (e.g. `64MiB`, `0`)"
            ))?,
        };
        Ok(Retention {
            keep_ms,
            every_ms,
            archive: self.archive.as_ref().map(|p| base.join(p)),
            compact: self
                .compact
                .unwrap_or(true)
                .then_some(CompactRule { ratio, min_bytes }),
        })
    }
}

/// What one sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Runs removed (meta, journal, mailbox, web index entry).
    pub runs: usize,
    /// Incident records removed.
    pub incidents: usize,
    /// PagerDuty dedupe marks removed.
    pub dedupe_marks: usize,
}

/// Runs the sweep every `every` until shutdown. Errors are reported and the sweep tried
/// again next time: nothing is removed that was not archived first.
pub async fn retain(svc: Arc<Service>) {
    let every = Duration::from_millis(svc.retention.every_ms);
    loop {
        tokio::time::sleep(every).await;
        if svc.engine.is_shutting_down() {
            return;
        }
        let worker = svc.clone();
        let swept = tokio::task::spawn_blocking(move || {
            sweep(&worker)?;
            compact_if_due(&worker)
        })
        .await
        .unwrap_or_else(|e| Err(ProcessError::Worker(e.to_string())));
        if let Err(e) = swept {
            eprintln!("medic: retention: {e}; tried again in {every:?}");
        }
    }
}

/// One sweep at the service's clock: see the module docs for what goes.
///
/// # Errors
///
/// [`ProcessError`] when the store cannot be read or written, or the archive cannot be
/// written (then nothing more is removed).
pub fn sweep(svc: &Service) -> Result<Swept, ProcessError> {
    // The inbox's handling reads and writes incident records: removing one in between
    // would lose what it wrote.
    let _inbox = svc
        .inbox_lock
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let now = svc.clock.now_ms();
    let cutoff = now.saturating_sub(svc.retention.keep_ms);
    let mut incidents = Vec::new();
    for (key, v) in svc.store.scan(IncidentRecord::PREFIX)? {
        let r: IncidentRecord = codec::decode(&v).map_err(|source| ProcessError::Corrupt {
            key: String::from_utf8_lossy(&key).into_owned(),
            source,
        })?;
        incidents.push(r);
    }
    let protected: HashSet<&String> = incidents
        .iter()
        .filter(|r| r.incident.status == IncidentStatus::Firing)
        .flat_map(|r| r.runs.iter())
        .collect();
    let old: Vec<_> = svc
        .store
        .runs()?
        .into_iter()
        .filter(|m| m.status != RunStatus::Running && m.updated_ms <= cutoff)
        .filter(|m| !protected.contains(&m.id))
        .collect();
    let mut archive = Archive::open(svc.retention.archive.as_ref())?;
    let mut removed = HashSet::new();
    for chunk in old.chunks(256) {
        let mut journals = Vec::new();
        for meta in chunk {
            let entries = svc.store.entries(&meta.id)?;
            archive.line(&json!({"removed_at": now, "run": meta, "journal": entries}))?;
            journals.push((meta, entries.first().map(|e| e.at_ms)));
        }
        // On disk in the archive before it leaves the store.
        archive.sync()?;
        for (meta, first_at) in journals {
            let mut also = vec![crate::web::index_key(meta.created_ms, &meta.id)];
            if let Some(at) = first_at.filter(|&at| at != meta.created_ms) {
                also.push(crate::web::index_key(at, &meta.id));
            }
            svc.store.remove_run(&meta.id, also)?;
            removed.insert(meta.id.clone());
        }
    }
    let mut gone = 0;
    for r in &incidents {
        let ended = r.incident.status == IncidentStatus::Resolved
            && r.resolved_ms.unwrap_or(r.last_seen_ms) <= cutoff
            && r.last_seen_ms <= cutoff;
        if !ended {
            continue;
        }
        let mut kept = false;
        for id in &r.runs {
            kept |= !removed.contains(id) && svc.store.run(id)?.is_some();
        }
        if kept {
            continue;
        }
        archive.line(&json!({"removed_at": now, "incident": r}))?;
        archive.sync()?;
        svc.store.write(
            vec![medic_store::Op::Remove(IncidentRecord::key(&r.fingerprint))],
            Durability::Lazy,
        )?;
        gone += 1;
    }
    let dedupe_marks = sweep_marks(svc, now, cutoff)?;
    // One flush for the whole sweep.
    svc.store.write(Vec::new(), Durability::Flush)?;
    let swept = Swept {
        runs: removed.len(),
        incidents: gone,
        dedupe_marks,
    };
    svc.metrics.removed(swept);
    Ok(swept)
}

/// Removes the PagerDuty dedupe marks written at or before `cutoff` and stamps marks
/// without a time (an older medic's) with `now`; returns how many went. Not flushed.
fn sweep_marks(svc: &Service, now: u64, cutoff: u64) -> Result<usize, ProcessError> {
    let mut ops = Vec::new();
    let mut gone = 0;
    for (key, v) in svc.store.scan(crate::intake::SEEN_PAGERDUTY)? {
        match crate::intake::mark_time(&v) {
            Some(at) if at <= cutoff => {
                ops.push(medic_store::Op::Remove(key));
                gone += 1;
            }
            Some(_) => {}
            None => ops.push(medic_store::Op::Put(key, crate::intake::mark(now))),
        }
    }
    for chunk in ops.chunks(1024) {
        svc.store.write(chunk.to_vec(), Durability::Lazy)?;
    }
    Ok(gone)
}

/// Rewrites the store while serving ([`medic_store::SledStore::compact_online`]) when it
/// pays: `compact` on, the store at least `compact_min_size` on disk and at least
/// `compact_ratio` times its live records' bytes. Every store operation waits while the
/// live records are copied, so this runs only when most of the file is space sled keeps
/// but no longer uses. Logs the sizes and the pause; returns what was done.
///
/// # Errors
///
/// [`ProcessError`] when the store cannot be read, or the compaction failed (the store is
/// then as it was, or reopened as `SledStore::compact_online` says).
pub fn compact_if_due(svc: &Service) -> Result<Option<Compacted>, ProcessError> {
    let Some(rule) = svc.retention.compact else {
        return Ok(None);
    };
    let size = svc.store.size_on_disk()?;
    if size < rule.min_bytes {
        return Ok(None);
    }
    let live = svc.store.live_bytes()?;
    if (size as f64) < rule.ratio * live as f64 {
        return Ok(None);
    }
    let c = svc.store.compact_online()?;
    svc.metrics.compacted(c.pause);
    let mib = |b: u64| b as f64 / 1048576.0;
    eprintln!(
        "medic: store compacted while serving: {:.1} MiB -> {:.1} MiB on disk ({:.1} MiB live in {} records, {} written during the copy); store operations waited {} ms",
        mib(c.before),
        mib(c.after),
        mib(live),
        c.records,
        c.recopied,
        c.pause.as_millis()
    );
    Ok(Some(c))
}

/// The JSON Lines archive, opened for appending (or nothing when none is configured).
struct Archive {
    file: Option<(std::fs::File, PathBuf)>,
}

impl Archive {
    fn open(path: Option<&PathBuf>) -> Result<Archive, ProcessError> {
        let Some(path) = path else {
            return Ok(Archive { file: None });
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| archive_error(path, &e))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| archive_error(path, &e))?;
        Ok(Archive {
            file: Some((file, path.clone())),
        })
    }

    fn line(&mut self, v: &serde_json::Value) -> Result<(), ProcessError> {
        if let Some((f, path)) = &mut self.file {
            let mut text = v.to_string();
            text.push('\n');
            f.write_all(text.as_bytes())
                .map_err(|e| archive_error(path, &e))?;
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), ProcessError> {
        if let Some((f, path)) = &mut self.file {
            f.sync_data().map_err(|e| archive_error(path, &e))?;
        }
        Ok(())
    }
}

fn archive_error(path: &std::path::Path, e: &std::io::Error) -> ProcessError {
    ProcessError::Store(medic_core::StoreError::Io {
        path: path.display().to_string(),
        message: format!("retention archive: {e}; nothing more removed"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(toml: &str) -> Result<Retention, String> {
        let c: RetentionConfig = toml::from_str(toml).map_err(|e| e.to_string())?;
        c.resolve(std::path::Path::new(""))
    }

    #[test]
    fn compaction_is_on_by_default_and_its_knobs_are_checked() {
        let r = resolve("").unwrap();
        let rule = r.compact.expect("on by default");
        assert_eq!((rule.ratio, rule.min_bytes), (4.0, 64 << 20));
        assert!(resolve("compact = false").unwrap().compact.is_none());
        let rule = resolve("compact_ratio = 1.5\ncompact_min_size = \"0\"")
            .unwrap()
            .compact
            .unwrap();
        assert_eq!((rule.ratio, rule.min_bytes), (1.5, 0));
        for (bad, needle) in [
            ("compact_ratio = 0.5", "retention.compact_ratio: `0.5`"),
            (
                "compact_min_size = \"lots\"",
                "retention.compact_min_size: `lots`",
            ),
        ] {
            let e = resolve(bad).unwrap_err();
            assert!(e.contains(needle), "{bad}: {e}");
        }
    }

    #[test]
    fn a_dedupe_mark_holds_when_it_was_written() {
        let now = 1_764_460_800_000;
        assert_eq!(
            crate::intake::mark_time(&crate::intake::mark(now)),
            Some(now)
        );
        // An older medic's mark has no time.
        assert_eq!(crate::intake::mark_time(b""), None);
    }
}
