//! JournalStore failures are clear errors naming the store and the cause; nothing is lost or
//! half-written silently.

use medic_core::{Durability, Entry, Event, JournalStore, RunMeta, RunStatus, StoreError};
use medic_store::SledStore;

fn meta(id: &str, status: RunStatus) -> RunMeta {
    RunMeta {
        id: id.into(),
        workflow: "wf".into(),
        incident_title: "t".into(),
        status,
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

/// The store's sled database opened directly, as a tool would. sled's I/O threads can
/// keep the lock for a moment after the store in this process is dropped (the store's
/// own open waits that out too, `open_sled`), so a bare `sled::open` right after a drop
/// fails now and then with "could not acquire lock": retry for up to a second.
fn raw_sled(path: &std::path::Path) -> sled::Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        match sled::open(path) {
            Ok(db) => return db,
            Err(e) if std::time::Instant::now() < deadline => {
                assert!(e.to_string().contains("could not acquire lock"), "{e}");
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(e) => panic!("opening {} directly: {e}", path.display()),
        }
    }
}

fn open_err(path: &std::path::Path) -> String {
    match SledStore::open(path) {
        Ok(_) => panic!("opening {} must fail", path.display()),
        Err(e @ StoreError::Io { .. }) => format!("{e:#}"),
        Err(other) => panic!("expected an I/O error, got {other:#}"),
    }
}

#[test]
fn opening_under_a_regular_file_names_the_path_and_cause() {
    // Tests run as root, which ignores permission bits: a file where a directory must
    // be fails for everyone.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let path = file.join("store");
    let msg = open_err(&path);
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.to_lowercase().contains("not a directory"), "{msg}");
}

#[test]
fn opening_under_proc_is_an_error_not_a_panic() {
    let path = std::path::Path::new("/proc/medic-store-test/store");
    let msg = open_err(path);
    assert!(msg.contains("/proc/medic-store-test/store"), "{msg}");
    assert!(msg.contains("cannot open"), "{msg}");
}

#[test]
fn a_corrupt_meta_record_is_named_by_path_and_key() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        store
            .create_run(&meta("a", RunStatus::Running), &skip(0))
            .unwrap();
    }
    {
        // Damage the record behind the store's back, as a bad disk or a bad tool would.
        let db = raw_sled(dir.path());
        db.insert(b"m/a", &b"\x01{\"id\":"[..]).unwrap();
        db.flush().unwrap();
    }
    let store = SledStore::open(dir.path()).unwrap();
    for err in [store.runs().unwrap_err(), store.run("a").unwrap_err()] {
        let msg = format!("{err:#}");
        assert!(matches!(err, StoreError::Corrupt { .. }), "{msg}");
        assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
        assert!(msg.contains("corrupt record m/a"), "{msg}");
    }
    // The journal itself is intact and still readable.
    assert_eq!(store.entries("a").unwrap(), vec![skip(0)]);
}

#[test]
fn a_refused_append_writes_neither_entry_nor_meta() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    store
        .create_run(&meta("a", RunStatus::Running), &skip(0))
        .unwrap();
    let done = meta("a", RunStatus::Succeeded);
    let err = store
        .append("a", &skip(3), Some(&done), Durability::Flush)
        .unwrap_err();
    assert!(matches!(err, StoreError::OutOfOrder { .. }), "{err:#}");
    assert_eq!(store.entries("a").unwrap(), vec![skip(0)]);
    assert_eq!(store.run("a").unwrap().unwrap().status, RunStatus::Running);

    let err = store
        .append("nope", &skip(1), Some(&done), Durability::Flush)
        .unwrap_err();
    assert!(matches!(err, StoreError::NoSuchRun(_)), "{err:#}");
    assert!(store.run("nope").unwrap().is_none());
}

#[test]
fn entry_and_meta_land_together() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        store
            .create_run(&meta("a", RunStatus::Running), &skip(0))
            .unwrap();
        let done = meta("a", RunStatus::Failed);
        store
            .append("a", &skip(1), Some(&done), Durability::Flush)
            .unwrap();
    }
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.entries("a").unwrap().len(), 2);
    assert_eq!(store.run("a").unwrap().unwrap().status, RunStatus::Failed);
}
