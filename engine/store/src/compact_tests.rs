//! Tests of offline and online compaction (the swap's recovery states are in `swap.rs`).

use super::*;
use crate::Op;
use crate::tests::skip as entry;
use medic_core::{Durability, JournalStore, RunMeta, RunStatus};
use std::sync::atomic::{AtomicBool, Ordering};

fn fill_and_empty(s: &SledStore) {
    let ops = (0..2000u32)
        .map(|i| Op::Put(format!("k/{i}").into_bytes(), vec![7; 512]))
        .collect();
    s.write(ops, Durability::Flush).unwrap();
    let gone = (0..1990u32)
        .map(|i| Op::Remove(format!("k/{i}").into_bytes()))
        .collect();
    s.write(gone, Durability::Flush).unwrap();
}

fn meta(id: &str, status: RunStatus) -> RunMeta {
    RunMeta {
        status,
        ..crate::tests::meta(id)
    }
}

#[test]
fn a_rewrite_keeps_every_record_and_ids_keep_growing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let last_id = {
        let s = SledStore::open(&path).unwrap();
        fill_and_empty(&s);
        s.next_id().unwrap()
    };
    let c = SledStore::compact(&path).unwrap();
    assert!(c.after < c.before, "{c:?}");
    let s = SledStore::open(&path).unwrap();
    assert_eq!(s.scan(b"k/").unwrap().len(), 10);
    assert!(s.next_id().unwrap() > last_id);
    assert!(!swap::sibling(&path, "old").exists());
    assert!(!swap::compacting(&path).exists());
}

#[test]
fn online_compaction_shrinks_the_store_it_serves_and_keeps_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let s = SledStore::open(&path).unwrap();
    fill_and_empty(&s);
    s.create_run(&meta("r", RunStatus::Running), &entry(0))
        .unwrap();
    let gate = medic_core::Message::GateDecision {
        step: "ask".into(),
        decision: medic_model::Decision::Approve,
        by: "alice".into(),
        comment: None,
    };
    s.post("r", &gate).unwrap();
    let last_id = s.next_id().unwrap();
    let c = s.compact_online().unwrap();
    assert!(c.after < c.before, "{c:?}");
    assert!(c.records >= 13, "{c:?}");
    assert_eq!(s.path(), path, "the store is served from where it was");
    assert!(!swap::compacting(&path).exists());
    assert!(!swap::sibling(&path, "old").exists());
    // The same handle keeps serving: reads, ids, and appends that follow the journal
    // cache (no epoch change: a write applied before is not turned into an error).
    assert_eq!(s.scan(b"k/").unwrap().len(), 10);
    assert!(s.next_id().unwrap() > last_id);
    assert_eq!(s.mailbox("r").unwrap().len(), 1);
    s.append("r", &entry(1), None, Durability::Flush).unwrap();
    let err = s
        .append("r", &entry(5), None, Durability::Flush)
        .unwrap_err();
    assert!(err.to_string().contains("expected seq 2"), "{err}");
    let size = s.size_on_disk().unwrap();
    assert!(size < c.before, "{size} after, {} before", c.before);
    drop(s);
    let s = SledStore::open(&path).unwrap();
    assert_eq!(s.entries("r").unwrap(), vec![entry(0), entry(1)]);
    assert_eq!(s.scan(b"k/").unwrap().len(), 10);
}

#[test]
fn writes_acknowledged_around_online_compactions_all_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let s = Arc::new(SledStore::open(&path).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    // Journal writers (each its own run, flushed appends, finishing the run at the end)
    // and record writers, acknowledging what returned Ok.
    let journals: Vec<_> = (0..3)
        .map(|w| {
            let (s, stop) = (s.clone(), stop.clone());
            std::thread::spawn(move || {
                let run = format!("run-{w}");
                s.create_run(&meta(&run, RunStatus::Running), &entry(0))
                    .unwrap();
                let mut seq = 1;
                while !stop.load(Ordering::SeqCst) {
                    s.append(&run, &entry(seq), None, Durability::Flush)
                        .unwrap();
                    seq += 1;
                }
                let done = meta(&run, RunStatus::Succeeded);
                s.append(&run, &entry(seq), Some(&done), Durability::Flush)
                    .unwrap();
                (run, seq)
            })
        })
        .collect();
    let records: Vec<_> = (0..2)
        .map(|w| {
            let (s, stop) = (s.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                let mut i = 0u32;
                while !stop.load(Ordering::SeqCst) {
                    let k = format!("acked/{w}/{i:06}").into_bytes();
                    let garbage = Op::Put(format!("tmp/{w}/{i}").into_bytes(), vec![1; 256]);
                    s.write(
                        vec![Op::Put(k.clone(), b"v".to_vec()), garbage],
                        Durability::Flush,
                    )
                    .unwrap();
                    s.write(
                        vec![Op::Remove(format!("tmp/{w}/{i}").into_bytes())],
                        Durability::Lazy,
                    )
                    .unwrap();
                    acked.push(k);
                    i += 1;
                }
                acked
            })
        })
        .collect();
    // Writes that change nothing (removing a missing key, as acknowledging a message
    // twice does): sled notifies them as dropped notices, which must not stop the
    // noting of the writes after them.
    let noop = {
        let (s, stop) = (s.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                s.write(vec![Op::Remove(b"never/there".to_vec())], Durability::Lazy)
                    .unwrap();
                std::thread::sleep(Duration::from_micros(200));
            }
        })
    };
    let mut pauses = Vec::new();
    let mut recopied = 0;
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(150));
        let c = s.compact_online().unwrap();
        pauses.push(c.pause);
        recopied += c.recopied;
    }
    // Writes landed while the copies were made, and were copied again in the pauses.
    assert!(
        recopied > 0,
        "no write during a copy: the test shows nothing"
    );
    stop.store(true, Ordering::SeqCst);
    noop.join().unwrap();
    let runs: Vec<(String, u64)> = journals.into_iter().map(|t| t.join().unwrap()).collect();
    let acked: Vec<Vec<u8>> = records
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert!(acked.len() > 20, "the writers barely ran: {}", acked.len());
    drop(s);
    let s = SledStore::open(&path).unwrap();
    for (run, last) in runs {
        let seqs: Vec<u64> = s.entries(&run).unwrap().iter().map(|e| e.seq).collect();
        assert_eq!(seqs, (0..=last).collect::<Vec<_>>(), "{run}");
        assert_eq!(s.run(&run).unwrap().unwrap().status, RunStatus::Succeeded);
    }
    let stored: std::collections::HashSet<Vec<u8>> = s
        .scan(b"acked/")
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(stored.len(), acked.len(), "pauses {pauses:?}");
    assert!(acked.iter().all(|k| stored.contains(k)));
    // Removed while a copy was made (after the copy had read them): removed in it too.
    assert_eq!(s.scan(b"tmp/").unwrap(), Vec::new());
}

#[test]
fn a_scan_walked_across_an_online_compaction_sees_every_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(SledStore::open(dir.path().join("store")).unwrap());
    let ops = (0..300u32)
        .map(|i| Op::Put(format!("p/{i:04}").into_bytes(), b"v".to_vec()))
        .collect();
    s.write(ops, Durability::Flush).unwrap();
    let mut walk = s.scan_back(b"p/", None);
    let mut keys: Vec<Vec<u8>> = walk.by_ref().take(10).map(|r| r.unwrap().0).collect();
    // The walk holds no handle between chunks: compaction does not wait for it, and
    // using the store meanwhile (as the web index does) does not deadlock.
    let other = s.clone();
    std::thread::spawn(move || other.compact_online().unwrap())
        .join()
        .unwrap();
    assert!(s.get(b"p/0001").unwrap().is_some());
    keys.extend(walk.map(|r| r.unwrap().0));
    let want: Vec<Vec<u8>> = (0..300u32)
        .rev()
        .map(|i| format!("p/{i:04}").into_bytes())
        .collect();
    assert_eq!(keys, want);
}

#[test]
fn a_failed_compaction_leaves_the_store_serving_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    let s = SledStore::open(&path).unwrap();
    s.write(
        vec![Op::Put(b"k".to_vec(), b"v".to_vec())],
        Durability::Flush,
    )
    .unwrap();
    // A file where the copy's directory goes: it can be neither removed as a directory
    // nor opened as a database.
    std::fs::write(swap::compacting(&path), b"in the way").unwrap();
    let err = s.compact_online().unwrap_err().to_string();
    assert!(err.contains(".compacting"), "{err}");
    assert_eq!(s.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    s.write(
        vec![Op::Put(b"k2".to_vec(), b"v".to_vec())],
        Durability::Flush,
    )
    .unwrap();
    drop(s);
    std::fs::remove_file(swap::compacting(&path)).unwrap();
    let s = SledStore::open(&path).unwrap();
    assert_eq!(s.scan(b"k").unwrap().len(), 2);
}
