//! The MEDIC_CRASH_AT_WRITE failpoint, for real: the test re-runs its own binary as a
//! child with the variable set, and checks the child died by SIGKILL exactly before
//! the k-th write, with every earlier flushed write on disk.

use medic_core::{Durability, Entry, Event, JournalStore, RunMeta, RunStatus};
use medic_store::{CRASH_AT_WRITE, SledStore};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output};

/// Set only in the child: the store directory to write to.
const CHILD_DIR: &str = "MEDIC_STORE_CRASH_CHILD_DIR";

fn skip(seq: u64) -> Entry {
    Entry {
        seq,
        at_ms: seq,
        event: Event::StepSkipped {
            step: "s".into(),
            reason: format!("write {}", seq + 1),
        },
    }
}

/// The child's run as it is created.
fn running() -> RunMeta {
    RunMeta {
        id: "r".into(),
        workflow: "wf".into(),
        incident_title: "t".into(),
        status: RunStatus::Running,
        created_ms: 1,
        updated_ms: 1,
    }
}

/// The `run_finished` entry the child ends its journal with, and the meta it implies.
fn finished(meta: &RunMeta) -> (Entry, RunMeta) {
    let entry = Entry {
        seq: 5,
        at_ms: 50,
        event: Event::RunFinished {
            status: RunStatus::Succeeded,
            reason: None,
        },
    };
    let meta = RunMeta {
        status: RunStatus::Succeeded,
        updated_ms: 50,
        ..meta.clone()
    };
    (entry, meta)
}

/// The child's body: seven journal writes (one create, four flushed appends, then a
/// finishing append: its entry and its meta, counted apart). In a normal test run (no
/// CHILD_DIR) it does nothing.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let store = match SledStore::open(&dir) {
        Ok(s) => s,
        Err(e) => {
            println!("OPEN-ERROR: {e:#}");
            return;
        }
    };
    let meta = running();
    store.create_run(&meta, &skip(0)).unwrap();
    for seq in 1..5 {
        store
            .append("r", &skip(seq), None, Durability::Flush)
            .unwrap();
    }
    let (last, done) = finished(&meta);
    store
        .append("r", &last, Some(&done), Durability::Flush)
        .unwrap();
    println!("CHILD-DONE");
}

fn run_child(dir: &std::path::Path, crash_at: &str) -> Output {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir)
        .env(CRASH_AT_WRITE, crash_at)
        .output()
        .unwrap()
}

#[test]
fn the_process_dies_right_before_the_kth_write() {
    for k in 1..=6u64 {
        let dir = tempfile::tempdir().unwrap();
        let out = run_child(dir.path(), &k.to_string());
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.signal(), Some(libc::SIGKILL), "k={k}: {stdout}");
        assert!(!stdout.contains("CHILD-DONE"), "k={k}: {stdout}");
        let store = SledStore::open(dir.path()).unwrap();
        let written = match store.entries("r") {
            Ok(entries) => entries.iter().map(|e| e.seq).collect(),
            Err(_) => Vec::new(),
        };
        // Writes 1..k-1 were flushed; write k never happened.
        let expected: Vec<u64> = (0..k - 1).collect();
        assert_eq!(written, expected, "k={k}");
        if k > 1 {
            let listed = store.run("r").unwrap().unwrap();
            assert_eq!(listed.status, RunStatus::Running, "k={k}");
        }
    }
}

#[test]
fn a_crash_between_a_finished_entry_and_its_meta_is_repaired_at_open() {
    let dir = tempfile::tempdir().unwrap();
    // Write 7 is the finishing append's meta: the failpoint flushes the entry first.
    let out = run_child(dir.path(), "7");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.signal(), Some(libc::SIGKILL), "{stdout}");
    let store = SledStore::open(dir.path()).unwrap();
    let entries = store.entries("r").unwrap();
    assert_eq!(entries.len(), 6, "the run_finished entry is on disk");
    let meta = running();
    let (last, done) = finished(&meta);
    assert_eq!(entries[5], last);
    // The meta was written by the open, from the journal, not by the child.
    assert_eq!(store.run("r").unwrap(), Some(done.clone()));
    assert_eq!(store.runs().unwrap(), vec![done]);
}

#[test]
fn a_crash_point_past_the_last_write_never_fires() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_child(dir.path(), "8");
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("CHILD-DONE"));
    let store = SledStore::open(dir.path()).unwrap();
    let listed = store.run("r").unwrap().unwrap();
    assert_eq!(
        (listed.status, listed.updated_ms),
        (RunStatus::Succeeded, 50)
    );
}

#[test]
fn a_malformed_crash_point_is_an_open_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_child(dir.path(), "zero");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("OPEN-ERROR"), "{stdout}");
    assert!(stdout.contains(CRASH_AT_WRITE), "{stdout}");
}
