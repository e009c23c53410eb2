//! Group commit and lazy appends: nothing acknowledged is lost, order is kept.

use medic_core::{Durability, Entry, Event, HostCall, JournalStore, Level, RunMeta, RunStatus};
use medic_store::SledStore;
use std::sync::Arc;

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

fn log(seq: u64, message: &str) -> Entry {
    Entry {
        seq,
        at_ms: 1_000 + seq,
        event: Event::HostCall {
            step: "s".into(),
            attempt: 1,
            call: HostCall::Log {
                level: Level::Info,
                message: message.into(),
            },
        },
    }
}

fn messages(store: &SledStore, run: &str) -> Vec<String> {
    store
        .entries(run)
        .unwrap()
        .into_iter()
        .map(|e| match e.event {
            Event::HostCall {
                call: HostCall::Log { message, .. },
                ..
            } => message,
            other => panic!("unexpected event {other:?}"),
        })
        .collect()
}

#[test]
fn concurrent_flush_appends_all_survive_a_reopen() {
    const THREADS: usize = 8;
    const APPENDS: u64 = 40;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path()).unwrap());
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = store.clone();
            std::thread::spawn(move || {
                let run = format!("run-{t}");
                store.create_run(&meta(&run), &log(0, "0")).unwrap();
                for seq in 1..=APPENDS {
                    let entry = log(seq, &seq.to_string());
                    store.append(&run, &entry, None, Durability::Flush).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let flushing_writes = THREADS as u64 * (APPENDS + 1);
    let flushes = store.flush_count();
    assert!(
        (1..=flushing_writes).contains(&flushes),
        "{flushes} fsyncs for {flushing_writes} flushing writes"
    );
    drop(store);

    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.runs().unwrap().len(), THREADS);
    let expected: Vec<String> = (0..=APPENDS).map(|s| s.to_string()).collect();
    for t in 0..THREADS {
        assert_eq!(messages(&store, &format!("run-{t}")), expected, "run-{t}");
    }
}

#[test]
fn a_flush_append_makes_earlier_lazy_appends_durable_in_order() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        store.create_run(&meta("a"), &log(0, "created a")).unwrap();
        store.create_run(&meta("b"), &log(0, "created b")).unwrap();
        for seq in 1..=5 {
            let e = log(seq, &format!("lazy {seq}"));
            store.append("a", &e, None, Durability::Lazy).unwrap();
        }
        // A flush of another run covers run a's lazy entries too.
        let flushes = store.flush_count();
        store
            .append("b", &log(1, "flushed b"), None, Durability::Flush)
            .unwrap();
        assert_eq!(store.flush_count(), flushes + 1);
        // Lazy appends never flush by themselves.
        store
            .append("a", &log(6, "lazy 6"), None, Durability::Lazy)
            .unwrap();
        assert_eq!(store.flush_count(), flushes + 1);
        // A lazy entry is readable at once, before any flush.
        assert_eq!(store.entries("a").unwrap().len(), 7);
    }
    let store = SledStore::open(dir.path()).unwrap();
    let mut expected = vec!["created a".to_string()];
    expected.extend((1..=5).map(|s| format!("lazy {s}")));
    let got = messages(&store, "a");
    // Entry 6 was never flushed: sled may or may not have persisted it on drop, but
    // everything before the flush must be there, in order.
    assert!(got.len() == 6 || got.len() == 7, "{got:?}");
    assert_eq!(got[..6], expected[..]);
    assert_eq!(messages(&store, "b"), ["created b", "flushed b"]);
}

#[test]
fn lazy_appends_keep_sequence_checks() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    store.create_run(&meta("a"), &log(0, "0")).unwrap();
    store
        .append("a", &log(1, "1"), None, Durability::Lazy)
        .unwrap();
    let err = store
        .append("a", &log(1, "again"), None, Durability::Lazy)
        .unwrap_err();
    assert!(err.to_string().contains("expected seq 2, got 1"), "{err:#}");
    assert_eq!(messages(&store, "a"), ["0", "1"]);
}

/// Run drivers' appends (`append_durable`): many tasks at once on two worker threads,
/// each told "durable" only by the store's flusher, every entry there after a reopen,
/// and fewer flushes than appends (the flusher's flushes are shared).
#[test]
fn async_durable_appends_all_survive_a_reopen_and_share_flushes() {
    const RUNS: usize = 32;
    const APPENDS: u64 = 20;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path()).unwrap());
    for r in 0..RUNS {
        store
            .create_run(&meta(&format!("run-{r}")), &log(0, "0"))
            .unwrap();
    }
    let before = store.flush_count();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    rt.block_on(async {
        let tasks: Vec<_> = (0..RUNS)
            .map(|r| {
                let store = store.clone();
                tokio::spawn(async move {
                    let run = format!("run-{r}");
                    for seq in 1..=APPENDS {
                        let entry = log(seq, &seq.to_string());
                        let pending = store.append_durable(&run, &entry, None).unwrap();
                        pending.await.unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    let flushes = store.flush_count() - before;
    let appends = RUNS as u64 * APPENDS;
    assert!(
        (1..appends).contains(&flushes),
        "{flushes} flushes for {appends} durable appends: none was shared"
    );
    drop(rt);
    // Dropped, the store's flusher thread is stopped and the database closed at once:
    // the reopen does not find it still locked.
    drop(store);
    let store = SledStore::open(dir.path()).unwrap();
    let expected: Vec<String> = (0..=APPENDS).map(|s| s.to_string()).collect();
    for r in 0..RUNS {
        assert_eq!(messages(&store, &format!("run-{r}")), expected, "run-{r}");
    }
}

/// An async durable append refused (out of order) writes nothing and leaves the journal
/// as it was: the check happens before the future is returned.
#[test]
fn an_async_append_out_of_order_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    store.create_run(&meta("a"), &log(0, "0")).unwrap();
    let err = match store.append_durable("a", &log(3, "3"), None) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("an append out of order was accepted"),
    };
    assert!(err.contains("expected seq 1, got 3"), "{err}");
    assert_eq!(messages(&store, "a"), ["0"]);
}

/// The service's inbox batches: runs created with other records in one write, all of
/// them or (a run that already exists) none of them.
#[test]
fn runs_created_with_records_land_together_or_not_at_all() {
    use medic_store::Op;
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        let runs = vec![
            (meta("a"), log(0, "created a")),
            (meta("b"), log(0, "created b")),
        ];
        let ops = vec![Op::Put(b"rec/1".to_vec(), b"one".to_vec())];
        store.write_creating(&runs, ops, Durability::Flush).unwrap();
        // Run b exists: a second batch creating c and b again writes nothing.
        let again = vec![
            (meta("c"), log(0, "created c")),
            (meta("b"), log(0, "created b twice")),
        ];
        let ops = vec![Op::Put(b"rec/2".to_vec(), b"two".to_vec())];
        let err = store
            .write_creating(&again, ops, Durability::Flush)
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("run b: journal append out of order"),
            "{err}"
        );
        // The created runs take appends at the next sequence number.
        store
            .append("a", &log(1, "next"), None, Durability::Flush)
            .unwrap();
    }
    let store = SledStore::open(dir.path()).unwrap();
    let ids: Vec<String> = store.runs().unwrap().into_iter().map(|m| m.id).collect();
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(messages(&store, "a"), ["created a", "next"]);
    assert_eq!(messages(&store, "b"), ["created b"]);
    assert_eq!(store.get(b"rec/1").unwrap().as_deref(), Some(&b"one"[..]));
    assert_eq!(store.get(b"rec/2").unwrap(), None);
}

/// A flush awaited after its store was dropped is answered with an error, not a wait
/// without end (the flusher is gone).
#[test]
fn a_durable_append_awaited_after_the_store_is_dropped_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    store.create_run(&meta("a"), &log(0, "0")).unwrap();
    let pending = store.append_durable("a", &log(1, "1"), None).unwrap();
    drop(store);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let got = rt.block_on(async {
        tokio::time::timeout(std::time::Duration::from_secs(10), pending).await
    });
    let err = got.expect("answered, not left waiting").unwrap_err();
    assert!(err.to_string().contains("store was closed"), "{err}");
}
