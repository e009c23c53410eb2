//! What the server benches share: the bench service (one workflow, one `echo` step), the
//! Alertmanager payload, percentiles, and the baseline every bench prints a ratio to —
//! the disk's bare fsync rate, measured in the same run. Linking it also makes jemalloc
//! the bench's allocator, as it is the `medic` binary's (engine/alloc).

use medic_alloc as _;
use medic_server::{LoadedWorkflow, ServeConfig, Service};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One Alertmanager webhook with one firing alert, unique by `i` (its own group key,
/// label `n` and fingerprint, so every alert is a new incident).
pub fn payload(i: u64) -> String {
    serde_json::json!({
        "version": "4", "groupKey": format!("bench{i}"), "status": "firing", "receiver": "medic",
        "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {}, "externalURL": "http://am",
        "alerts": [{"status": "firing", "labels": {"alertname": "Bench", "n": i.to_string()},
                    "annotations": {}, "startsAt": "2026-11-22T03:00:00Z",
                    "endsAt": "0001-01-01T00:00:00Z", "fingerprint": format!("{i:016x}")}]
    })
    .to_string()
}

/// The service over a store in `dir`: token `t`, `concurrency` step attempts at once, one
/// workflow whose only step (`echo`, the trivial Rust step) every `Bench` alert starts.
pub fn service(dir: &Path, concurrency: usize) -> Arc<Service> {
    service_and_store(dir, concurrency).0
}

/// [`service`] and its store, whose fsyncs a bench counts (`SledStore::flush_count`).
pub fn service_and_store(
    dir: &Path,
    concurrency: usize,
) -> (Arc<Service>, Arc<medic_store::SledStore>) {
    let store = Arc::new(medic_store::SledStore::open(dir.join("store")).unwrap());
    let sandbox =
        Arc::new(medic_sandbox::Sandbox::new(medic_sandbox::SandboxConfig::default()).unwrap());
    let config =
        ServeConfig::parse(&format!("tokens = [\"t\"]\nconcurrency = {concurrency}\n")).unwrap();
    let doc = medic_model::parse_workflow(
        "bench.yaml",
        "apiVersion: medic/v1\nkind: Workflow\nname: bench\ntrigger:\n  matchers: ['alertname=\"Bench\"']\nsteps:\n  - id: first\n    phase: detect\n    uses: echo\n",
    )
    .unwrap();
    let echo = medic_test_programs::path("echo").unwrap();
    sandbox.warm(echo).unwrap();
    let wf = LoadedWorkflow {
        components: [("first".to_string(), echo.to_string())].into(),
        workflow: doc.workflow,
        file: "bench.yaml".into(),
    };
    let svc = Service::new(store.clone(), sandbox, config, vec![wf]).unwrap();
    (svc, store)
}

/// The `p` quantile (0..=1) of sorted samples.
pub fn pct<T: Copy>(sorted: &[T], p: f64) -> T {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// The CPU's floor, measured now on one thread: hashes of a 4 KiB block per second, over
/// a quarter of a second. Taken before and after a load, it tells a slower run caused by
/// a neighbour taking the CPU (both baselines fall with it) from a regression (they stay).
pub fn cpu_baseline() -> f64 {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let block: Vec<u8> = (0..4096u32).map(|i| (i * 31 % 251) as u8).collect();
    let (started, mut hashes, mut sink) = (Instant::now(), 0u64, 0u64);
    while started.elapsed() < Duration::from_millis(250) {
        for _ in 0..64 {
            let mut h = DefaultHasher::new();
            std::hint::black_box(&block).hash(&mut h);
            sink ^= h.finish();
        }
        hashes += 64;
    }
    std::hint::black_box(sink);
    hashes as f64 / started.elapsed().as_secs_f64()
}

/// The disk's floor, measured now in `dir`: 512-byte appends to a file, each followed by
/// `fdatasync`, for about a second. Returns (fsyncs per second, median, p99).
pub fn fsync_baseline(dir: &Path) -> (f64, Duration, Duration) {
    let mut f = std::fs::File::create(dir.join("fsync-baseline")).unwrap();
    let block = [7u8; 512];
    let mut samples = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(1) || samples.len() < 100 {
        let t = Instant::now();
        f.write_all(&block).unwrap();
        f.sync_data().unwrap();
        samples.push(t.elapsed());
    }
    let rate = samples.len() as f64 / started.elapsed().as_secs_f64();
    samples.sort_unstable();
    (rate, pct(&samples, 0.5), pct(&samples, 0.99))
}

/// Microseconds as milliseconds with one decimal.
pub fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

/// CPU time this process has used (user + system), from `/proc/self/stat` fields 14 and
/// 15, in clock ticks of 10 ms (`USER_HZ` is 100 on Linux: proc(5)). A run's CPU per unit
/// of work moves less with a noisy neighbour than its wall-clock rate does (contention
/// still inflates it: compare runs at a similar [`stolen_since`]).
pub fn process_cpu() -> Duration {
    ticks(&std::fs::read_to_string("/proc/self/stat").unwrap())
}

/// CPU time used so far by each of this process's live threads: thread id, name with a
/// trailing number dropped (`sled-io-3` is `sled-io`), time.
pub fn thread_cpu() -> Vec<(u32, String, Duration)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue; // exited since the listing
        };
        let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else {
            continue;
        };
        let name = stat[stat.find('(').unwrap() + 1..stat.rfind(')').unwrap()]
            .trim_end_matches(|c: char| c.is_ascii_digit())
            .trim_end_matches('-')
            .to_string();
        out.push((tid, name, ticks(&stat)));
    }
    out
}

/// CPU time used by this process's live threads since `before` (an earlier
/// [`thread_cpu`]), summed by name, most first. Counted per thread id: sled's I/O threads
/// come and go, and one that exited takes its time with it, which a difference of
/// totals by name would take off the others.
pub fn cpu_by_thread_since(before: &[(u32, String, Duration)]) -> Vec<(String, Duration)> {
    let mut by: std::collections::BTreeMap<String, Duration> = Default::default();
    for (tid, name, now) in thread_cpu() {
        let then = before
            .iter()
            .find(|(t, n, _)| *t == tid && *n == name)
            .map_or(Duration::ZERO, |(_, _, d)| *d);
        *by.entry(name).or_default() += now.saturating_sub(then);
    }
    let mut out: Vec<_> = by.into_iter().collect();
    out.sort_by_key(|(_, cpu)| std::cmp::Reverse(*cpu));
    out
}

/// utime + stime of a `stat` line; the fields after the command name, which may hold
/// spaces and parentheses, are counted from its closing parenthesis.
fn ticks(stat: &str) -> Duration {
    let rest: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    // Fields 14 and 15 of the line are the 12th and 13th after the name (state is 3rd).
    let t: u64 = rest[11].parse::<u64>().unwrap() + rest[12].parse::<u64>().unwrap();
    Duration::from_millis(t * 10)
}

/// The machine's CPU ticks so far, all and stolen, from `/proc/stat`'s first line (steal
/// is the time a hypervisor ran something else while this machine's CPUs had work:
/// proc(5)).
pub fn cpu_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap())
        .collect();
    // user nice system idle iowait irq softirq steal guest guest_nice; guest time is
    // already counted in user.
    (fields.iter().take(8).sum(), fields[7])
}

/// The share of the machine's CPU time stolen by the hypervisor since `from`
/// ([`cpu_ticks`]), in percent: a figure taken while it is high says more about the
/// neighbours than about medic.
pub fn stolen_since(from: (u64, u64)) -> f64 {
    let now = cpu_ticks();
    let total = now.0.saturating_sub(from.0).max(1);
    now.1.saturating_sub(from.1) as f64 * 100.0 / total as f64
}
