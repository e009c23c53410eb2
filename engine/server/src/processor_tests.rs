//! The processor's tests: batches by lane weights, and inbox records handled across batches.
use super::*;
use crate::inbox::tests::{item, received};
use medic_store::Record;

fn queue(lane: &str, n: usize) -> VecDeque<Record> {
    (0..n)
        .map(|i| (format!("{lane}{i:04}").into_bytes(), Vec::new()))
        .collect()
}

fn names(chunk: &[Record]) -> Vec<String> {
    chunk
        .iter()
        .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
        .collect()
}

#[test]
fn a_critical_item_leads_a_short_batch_and_lower_lanes_keep_their_share() {
    let mut credit = [0; 3];
    let mut q = [queue("c", 1), queue("w", 300), queue("i", 300)];
    let first = names(&next_batch(&mut q, &mut credit, [16, 4, 1]));
    assert_eq!(first.len(), URGENT_BATCH);
    assert_eq!(first[0], "c0000");
    // FIFO within a lane, and info is not shut out by the warnings.
    let warnings: Vec<_> = first.iter().filter(|n| n.starts_with('w')).collect();
    assert_eq!(warnings[0], "w0000");
    assert!(warnings.windows(2).all(|w| w[0] < w[1]), "{first:?}");
    assert!(first.iter().any(|n| n.starts_with('i')), "{first:?}");
    // Without critical items, full batches again.
    let next = next_batch(&mut q, &mut credit, [16, 4, 1]);
    assert_eq!(next.len(), BATCH);
}

#[test]
fn a_steady_critical_stream_does_not_starve_warnings() {
    let mut credit = [0; 3];
    let mut q = [queue("c", 10_000), queue("w", 10_000), VecDeque::new()];
    let mut warnings = 0;
    for _ in 0..10 {
        let chunk = next_batch(&mut q, &mut credit, [16, 4, 1]);
        warnings += chunk.iter().filter(|(k, _)| k[0] == b'w').count();
    }
    // 4 of every 20 places.
    assert_eq!(warnings, 10 * URGENT_BATCH * 4 / 20);
}

/// A service with no workflow (each alert is an incident of its own and starts no run)
/// over a store in `dir`.
fn service(dir: &std::path::Path) -> Arc<Service> {
    let store = Arc::new(medic_store::SledStore::open(dir.join("store")).unwrap());
    let sandbox =
        Arc::new(medic_sandbox::Sandbox::new(medic_sandbox::SandboxConfig::default()).unwrap());
    let config = crate::ServeConfig::parse("tokens = [\"a-long-token\"]\n").unwrap();
    Service::new(store, sandbox, config, Vec::new()).unwrap()
}

#[test]
fn a_batch_that_ends_inside_a_record_leaves_the_rest_for_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path());
    // Three records of 50 warnings each: a batch of 128 takes two and 28 of the third.
    for r in 0..3u64 {
        let items = (0..50).map(|i| (Lane::Warning, item(r * 50 + i))).collect();
        let ops = inbox::record_ops(&svc.store, items).unwrap();
        svc.store.write(ops, Durability::Flush).unwrap();
    }
    let (chunk, mut held) = next_from_inbox(&svc, &mut [0; 3]).unwrap();
    assert_eq!(chunk.len(), BATCH);
    handle_batch(&svc, &chunk, &mut held).unwrap();
    let left = svc.store.scan(&lane_prefix(Some(Lane::Warning))).unwrap();
    assert_eq!(left.len(), 1, "the third record, rewritten under its key");
    let rest = inbox::decode(&left[0].1).unwrap();
    assert_eq!(received(&rest), (128..150).collect::<Vec<_>>());
    assert_eq!(inbox::depth(&svc.store).unwrap(), (22, [0, 22, 0]));

    drain(&svc).unwrap();
    assert_eq!(inbox::depth(&svc.store).unwrap().0, 0);
    // Each alert became its incident, none twice and none lost.
    let incidents = svc.store.scan(IncidentRecord::PREFIX).unwrap();
    assert_eq!(incidents.len(), 150);
}
