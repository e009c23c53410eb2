//! The processor's tests: batches by lane weights, and inbox records handled across batches.
use super::*;
use crate::inbox::tests::{item, received};
use crate::lanes::lane_prefix;
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

/// Writes a record of `lane` per entry of `records`, holding the alerts numbered by it.
fn store_records(svc: &Service, records: &[(Lane, std::ops::Range<u64>)]) {
    for (lane, alerts) in records {
        let items = alerts.clone().map(|n| (*lane, item(n))).collect();
        let ops = inbox::record_ops(&svc.store, items).unwrap();
        svc.store.write(ops, Durability::Flush).unwrap();
    }
}

/// Every incident record, checked to have been counted from one alert: an alert handled
/// twice would count two.
fn incidents_each_from_one_alert(svc: &Service) -> usize {
    let records = svc.store.scan(IncidentRecord::PREFIX).unwrap();
    for (k, v) in &records {
        let r: IncidentRecord = codec::decode(v).unwrap();
        assert_eq!(
            r.alerts,
            1,
            "{} was handled more than once",
            String::from_utf8_lossy(k)
        );
    }
    records.len()
}

/// How many of the record under `key` its cursor says are handled.
fn cursor(svc: &Service, key: &[u8]) -> usize {
    let cursors = inbox::cursors(&svc.store, key).unwrap();
    cursors.get(key).copied().flatten().unwrap()
}

/// The key of the first inbox record of `lane`.
fn first_record(svc: &Service, lane: Lane) -> Vec<u8> {
    svc.store.scan(&lane_prefix(Some(lane))).unwrap()[0]
        .0
        .clone()
}

/// Writes `value` under `key` (without `x/`), as something other than the inbox writer.
fn put(svc: &Service, key: Vec<u8>, value: Vec<u8>) {
    svc.store
        .write(vec![Op::Put(key, value)], Durability::Flush)
        .unwrap();
}

/// Keys left under a prefix.
fn keys(svc: &Service, prefix: &[u8]) -> usize {
    svc.store.scan(prefix).unwrap().len()
}

#[test]
fn a_batch_that_ends_inside_a_record_leaves_a_cursor_for_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path());
    // Three records of 50 warnings each: a batch of 128 takes two and 28 of the third.
    store_records(
        &svc,
        &[
            (Lane::Warning, 0..50),
            (Lane::Warning, 50..100),
            (Lane::Warning, 100..150),
        ],
    );
    let (chunk, mut held) = next_from_inbox(&svc, &mut [0; 3]).unwrap();
    assert_eq!(chunk.len(), BATCH);
    handle_batch(&svc, &chunk, &mut held).unwrap();
    let left = svc.store.scan(&lane_prefix(Some(Lane::Warning))).unwrap();
    assert_eq!(left.len(), 1, "the third record, as it was written");
    assert_eq!(
        received(&inbox::decode(&left[0].1).unwrap()),
        (100..150).collect::<Vec<_>>()
    );
    assert_eq!(cursor(&svc, &left[0].0), 28);
    assert_eq!(inbox::depth(&svc.store).unwrap(), (22, [0, 22, 0]));

    // The next batch starts at the cursor, and the record goes with its cursor.
    let (chunk, _) = next_from_inbox(&svc, &mut [0; 3]).unwrap();
    assert_eq!(chunk.len(), 22);
    drain(&svc).unwrap();
    assert_eq!(inbox::depth(&svc.store).unwrap().0, 0);
    assert_eq!(keys(&svc, b"inbox"), 0, "no record and no cursor left");
    assert_eq!(incidents_each_from_one_alert(&svc), 150);
}

#[test]
fn batches_that_end_inside_records_of_two_lanes_keep_each_lanes_place() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path());
    store_records(&svc, &[(Lane::Warning, 0..40), (Lane::Info, 1000..1040)]);
    let (chunk, mut held) = next_from_inbox(&svc, &mut [0; 3]).unwrap();
    assert_eq!(chunk.len(), 80, "both lanes, interleaved by weight");
    // A critical alert acknowledged while the batch is handled cuts it after one alert.
    svc.critical_waiting.store(true, Ordering::Release);
    handle_batch(&svc, &chunk, &mut held).unwrap();
    assert_eq!(inbox::depth(&svc.store).unwrap(), (79, [0, 39, 40]));

    // A batch that ends inside both records: each gets a cursor of its own.
    let (chunk, mut held) = next_from_inbox(&svc, &mut [0; 3]).unwrap();
    assert_eq!(chunk.len(), 79);
    let first_info = chunk.iter().position(|q| q.lane == Lane::Info).unwrap();
    handle_batch(&svc, &chunk[..=first_info], &mut held).unwrap();
    let warnings = 1 + first_info;
    assert_eq!(cursor(&svc, &first_record(&svc, Lane::Warning)), warnings);
    assert_eq!(cursor(&svc, &first_record(&svc, Lane::Info)), 1);
    assert_eq!(
        inbox::depth(&svc.store).unwrap(),
        (79 - warnings, [0, 40 - warnings, 39])
    );

    drain(&svc).unwrap();
    assert_eq!(keys(&svc, b"inbox"), 0, "no record and no cursor left");
    assert_eq!(incidents_each_from_one_alert(&svc), 80);
}

#[test]
fn an_unreadable_record_is_moved_aside_and_the_others_are_handled() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path());
    let bad_key = crate::lanes::inbox_key(Lane::Warning, svc.store.next_id().unwrap());
    let bad = vec![codec::FORMAT_VERSION, b'[', b'{'];
    put(&svc, bad_key.clone(), bad.clone());
    store_records(&svc, &[(Lane::Warning, 0..3)]);
    drain(&svc).unwrap();
    assert_eq!(keys(&svc, b"inbox"), 0);
    let dead = svc.store.scan(b"dead/").unwrap();
    assert_eq!(dead, vec![([b"dead/".as_slice(), &bad_key].concat(), bad)]);
    assert_eq!(incidents_each_from_one_alert(&svc), 3);
    let metrics = svc.metrics.render(&[], &crate::metrics::Queues::default());
    assert!(
        metrics.contains("medic_inbox_items_total{state=\"dead\"} 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("medic_inbox_items_total{state=\"handled\"} 3\n"),
        "{metrics}"
    );
}

#[test]
fn an_untrusted_cursor_is_handled_from_the_start_and_removed_with_its_record() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path());
    store_records(&svc, &[(Lane::Warning, 0..3)]);
    let key = first_record(&svc, Lane::Warning);
    // A cursor at the record's end, which no batch writes.
    put(&svc, inbox::cursor_key(&key), codec::encode(&3u64));
    assert_eq!(inbox::depth(&svc.store).unwrap().0, 3);
    drain(&svc).unwrap();
    assert_eq!(keys(&svc, b"inbox"), 0, "no record and no cursor left");
    assert_eq!(incidents_each_from_one_alert(&svc), 3);
}

#[test]
fn a_batch_out_of_a_records_order_is_refused_before_anything_is_handled() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path());
    store_records(&svc, &[(Lane::Warning, 0..3)]);
    let (mut chunk, mut held) = next_from_inbox(&svc, &mut [0; 3]).unwrap();
    chunk.swap(0, 1);
    let e = handle_batch(&svc, &chunk, &mut held).unwrap_err();
    assert!(matches!(e, ProcessError::OutOfOrder(_)), "{e}");
    assert_eq!(inbox::depth(&svc.store).unwrap().0, 3);
    assert_eq!(incidents_each_from_one_alert(&svc), 0);
}
