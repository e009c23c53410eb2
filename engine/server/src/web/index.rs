//! The runs list's index: `x/web/runs/<created ms, u64 BE><run id>` → whether the run is a
//! drill and its incident. The service names runs after their incident (so that handling
//! an alert twice finds its runs), so run ids do not sort by time; this index does, and a
//! page of the list is a bounded reverse scan from a cursor (keyset pagination): it never
//! reads more than [`SCAN_LIMIT`] index records, however many runs the store holds.
//!
//! The engine's observer writes an entry when a run is created; runs created before the
//! web view existed (or by `medic run` while the service was down) are added by a
//! backfill the first time the list is read.

use medic_core::journal::RunCreated;
use medic_core::{Durability, Entry, Event, JournalStore, RunMeta, StoreError, codec};
use medic_store::{Op, SledStore};
use serde::{Deserialize, Serialize};

const PREFIX: &[u8] = b"web/runs/";

/// Index records a page reads at most, filters included: a rare filter over a long
/// history stops there and offers "older" from where it stopped.
pub(crate) const SCAN_LIMIT: usize = 5_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Value {
    drill: bool,
    incident: String,
    /// The workflow's name and the incident's title, as the run's meta has them from its
    /// creation on: a filter on them is decided here, without reading the meta. Absent
    /// in records written before they were added (the meta decides those).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    workflow: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    title: Option<String>,
}

/// A run's index key (retention removes it with the run).
pub(crate) fn key(created_ms: u64, run: &str) -> Vec<u8> {
    let mut k = PREFIX.to_vec();
    k.extend_from_slice(&created_ms.to_be_bytes());
    k.extend_from_slice(run.as_bytes());
    k
}

/// The write that indexes a new run, for a caller that writes it with the run itself:
/// the inbox processor puts it in the batch that creates the run.
pub(crate) fn op(run: &str, created_ms: u64, created: &RunCreated) -> Op {
    let value = Value {
        drill: created.drill,
        incident: created.incident.id.clone(),
        workflow: Some(created.workflow.name.clone()),
        title: Some(created.incident.title.clone()),
    };
    Op::Put(key(created_ms, run), codec::encode(&value))
}

/// Indexes a new run on its own ([`op`] as one write). Lazy: it becomes durable with the
/// run's own next flush, and a lost one is rewritten by the backfill.
pub(crate) fn record(
    store: &SledStore,
    run: &str,
    created_ms: u64,
    created: &RunCreated,
) -> Result<(), StoreError> {
    store.write(vec![op(run, created_ms, created)], Durability::Lazy)
}

/// Adds the runs missing from the index (one look-up per run, one journal read per
/// missing run). Returns how many were added.
pub(crate) fn backfill(store: &SledStore) -> Result<usize, StoreError> {
    let mut added = 0;
    for meta in store.runs()? {
        if store.get(&key(meta.created_ms, &meta.id))?.is_some() {
            continue;
        }
        let entries = store.entries(&meta.id)?;
        if let Some(Entry {
            event: Event::RunCreated(created),
            ..
        }) = entries.first()
        {
            record(store, &meta.id, meta.created_ms, created)?;
            added += 1;
        }
    }
    Ok(added)
}

/// What the runs list shows.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filter {
    pub status: Option<String>,
    pub workflow: Option<String>,
    /// Incident id (fingerprint), exact; or words found in the incident title.
    pub incident: Option<String>,
    /// Created at or after (ms).
    pub from_ms: Option<u64>,
    /// Created before (ms).
    pub to_ms: Option<u64>,
    /// Drills only (true) or real incidents only (false): they are never mixed.
    pub drills: bool,
}

/// A row of the runs list.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub meta: RunMeta,
    pub incident: String,
}

/// One page: rows newest first, and the cursor of the next (older) page if there may be
/// one.
#[derive(Debug, Default)]
pub(crate) struct Page {
    pub rows: Vec<Row>,
    pub older: Option<String>,
    /// The scan stopped at [`SCAN_LIMIT`] before filling the page.
    pub scan_limited: bool,
}

/// A cursor is the index key after the prefix, as hex ms + run id: opaque to people,
/// stable across restarts.
pub(crate) fn cursor(created_ms: u64, run: &str) -> String {
    format!("{created_ms:016x}{run}")
}

fn parse_cursor(c: &str) -> Option<Vec<u8>> {
    let ms = u64::from_str_radix(c.get(..16)?, 16).ok()?;
    Some(key(ms, c.get(16..)?))
}

/// A page of at most `size` runs older than `before`, matching `filter`. A malformed
/// cursor starts from the newest run.
///
/// # Errors
/// A store read failed or a record is corrupt.
pub(crate) fn page(
    store: &SledStore,
    filter: &Filter,
    before: Option<&str>,
    size: usize,
) -> Result<Page, StoreError> {
    let mut start = before.and_then(parse_cursor);
    // A time range's end is a cursor too: skip straight to it.
    if let Some(to) = filter.to_ms {
        let end = key(to, "");
        if start.as_ref().is_none_or(|s| *s > end) {
            start = Some(end);
        }
    }
    let mut page = Page::default();
    let mut scanned = 0;
    for item in store.scan_back(PREFIX, start.as_deref()) {
        let (k, v) = item?;
        scanned += 1;
        let Some((ms, run)) = split(&k) else { continue };
        if filter.from_ms.is_some_and(|from| ms < from) {
            return Ok(page);
        }
        let value: Value = codec::decode(&v).map_err(|e| StoreError::Corrupt {
            path: "web index".into(),
            key: String::from_utf8_lossy(&k).into_owned(),
            source: e,
        })?;
        // Workflow and incident are decided from the index record where it has them:
        // reading each run's meta is most of a filtered page's time.
        if value.drill == filter.drills
            && may_match(filter, &value)
            && let Some(meta) = store.run(run)?
            && matches(filter, &meta, &value)
        {
            page.rows.push(Row {
                meta,
                incident: value.incident,
            });
            if page.rows.len() == size {
                page.older = Some(cursor(ms, run));
                return Ok(page);
            }
        }
        if scanned >= SCAN_LIMIT {
            page.scan_limited = true;
            page.older = Some(cursor(ms, run));
            return Ok(page);
        }
    }
    Ok(page)
}

fn split(k: &[u8]) -> Option<(u64, &str)> {
    let rest = k.strip_prefix(PREFIX)?;
    let ms = u64::from_be_bytes(rest.get(..8)?.try_into().ok()?);
    Some((ms, std::str::from_utf8(&rest[8..]).ok()?))
}

/// False when the index record alone shows the run does not match; true when it may.
fn may_match(f: &Filter, v: &Value) -> bool {
    let workflow = match (&f.workflow, &v.workflow) {
        (Some(want), Some(is)) => want == is,
        _ => true,
    };
    let incident = match (&f.incident, &v.title) {
        (Some(want), Some(title)) => incident_matches(want, &v.incident, title),
        _ => true,
    };
    workflow && incident
}

/// The incident filter: the incident id exactly, or words found in its title (any case).
fn incident_matches(want: &str, id: &str, title: &str) -> bool {
    id == want || title.to_lowercase().contains(&want.to_lowercase())
}

fn matches(f: &Filter, meta: &RunMeta, v: &Value) -> bool {
    f.status
        .as_deref()
        .is_none_or(|s| meta.status.as_str() == s)
        && f.workflow.as_deref().is_none_or(|w| meta.workflow == w)
        && f.incident
            .as_deref()
            .is_none_or(|i| incident_matches(i, &v.incident, &meta.incident_title))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_keys_sort_by_time_then_id() {
        assert!(key(1, "zzz") < key(2, "aaa"));
        let c = cursor(0x1234, "wf-abc");
        assert_eq!(parse_cursor(&c), Some(key(0x1234, "wf-abc")));
        assert_eq!(parse_cursor("nonsense"), None);
        assert_eq!(split(&key(7, "r")), Some((7, "r")));
    }

    /// A run's first record: workflow `w` (one step), incident `incident` titled
    /// `title of <incident>`.
    pub(crate) fn created(drill: bool, incident: &str) -> RunCreated {
        let doc = medic_model::parse_workflow(
            "w.yaml",
            "apiVersion: medic/v1\nkind: Workflow\nname: w\ntrigger:\n  matchers: ['a=\"b\"']\nsteps:\n  - id: s\n    phase: detect\n    uses: echo\n",
        )
        .unwrap();
        RunCreated {
            workflow: doc.workflow,
            workflow_file: "w.yaml".into(),
            incident: medic_model::Incident {
                id: incident.into(),
                title: format!("title of {incident}"),
                severity: "critical".into(),
                status: medic_model::IncidentStatus::Firing,
                labels: Default::default(),
                annotations: Default::default(),
                started_at: "2026-11-30T03:00:00Z".into(),
                source: "test".into(),
                notes: Vec::new(),
            },
            components: Default::default(),
            drill,
        }
    }

    /// Runs created at ms 1..=n with ids that do not sort by time (as the service's).
    fn store_with(n: u64) -> (tempfile::TempDir, SledStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        for ms in 1..=n {
            let id = format!("r{:03}", (ms * 37) % 101);
            let c = created(ms % 10 == 0, if ms % 2 == 0 { "even" } else { "odd" });
            let meta = RunMeta {
                id: id.clone(),
                workflow: "w".into(),
                incident_title: c.incident.title.clone(),
                status: medic_core::RunStatus::Running,
                created_ms: ms,
                updated_ms: ms,
            };
            let first = Entry {
                seq: 0,
                at_ms: ms,
                event: Event::RunCreated(Box::new(c.clone())),
            };
            store.create_run(&meta, &first).unwrap();
            if ms % 3 != 0 {
                // A third of them are left for the backfill.
                record(&store, &id, ms, &c).unwrap();
            }
        }
        (dir, store)
    }

    #[test]
    fn pages_walk_back_in_creation_order_with_filters_and_drills_apart() {
        let (_dir, store) = store_with(60);
        assert_eq!(backfill(&store).unwrap(), 20);
        assert_eq!(backfill(&store).unwrap(), 0);
        let all = Filter::default();
        let mut seen = Vec::new();
        let mut before: Option<String> = None;
        loop {
            let p = page(&store, &all, before.as_deref(), 20).unwrap();
            seen.extend(p.rows.iter().map(|r| r.meta.created_ms));
            match p.older {
                Some(c) => before = Some(c),
                None => break,
            }
        }
        // 54 incident runs (every tenth is a drill), newest first, each once.
        let expected: Vec<u64> = (1..=60).rev().filter(|ms| ms % 10 != 0).collect();
        assert_eq!(seen, expected);
        let drills = Filter {
            drills: true,
            ..Filter::default()
        };
        let p = page(&store, &drills, None, 50).unwrap();
        assert_eq!(
            p.rows.iter().map(|r| r.meta.created_ms).collect::<Vec<_>>(),
            vec![60, 50, 40, 30, 20, 10]
        );
        let even_in_range = Filter {
            incident: Some("even".into()),
            from_ms: Some(20),
            to_ms: Some(30),
            ..Filter::default()
        };
        let p = page(&store, &even_in_range, None, 50).unwrap();
        assert_eq!(
            p.rows.iter().map(|r| r.meta.created_ms).collect::<Vec<_>>(),
            vec![28, 26, 24, 22]
        );
        assert!(p.older.is_none());
    }

    #[test]
    fn the_index_record_decides_workflow_and_incident_filters_and_an_old_one_defers_to_the_meta() {
        let filter = Filter {
            workflow: Some("w".into()),
            incident: Some("ODD".into()),
            ..Filter::default()
        };
        let new = |workflow: &str, title: &str| Value {
            drill: false,
            incident: "fp".into(),
            workflow: Some(workflow.into()),
            title: Some(title.into()),
        };
        assert!(may_match(&filter, &new("w", "title of odd")));
        assert!(!may_match(&filter, &new("other", "title of odd")));
        assert!(!may_match(&filter, &new("w", "title of even")));
        // Written before the fields existed: only the meta can tell.
        let old: Value = codec::decode(&codec::encode(&serde_json::json!(
            {"drill": false, "incident": "fp"}
        )))
        .unwrap();
        assert!(may_match(&filter, &old));
        // And a page over a mix of both answers the same as the meta would.
        let (_dir, store) = store_with(30);
        backfill(&store).unwrap();
        let p = page(&store, &filter, None, 50).unwrap();
        // Runs at odd ms 1..=29 (drills are at multiples of 10, all even).
        assert_eq!(p.rows.len(), 15);
    }
}
