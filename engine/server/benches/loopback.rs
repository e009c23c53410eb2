//! `medic serve` loaded from outside as a user would: `wrk` over loopback, 32
//! connections, every alert unique and starting a one-step run (`echo`). Prints the
//! acknowledged alerts per second and the ack latency (p50, p99, from wrk), the time from
//! the end of the load until every run has finished, the ratio to the disk's bare
//! fsync rate measured in the same run, and medic's CPU per alert end to end (its
//! intake and its run), which a noisy neighbour moves less than the rates.
//! Targets on the 2-core reference machine: >= 5,000 ack/s, ack p99 <= 50 ms.
//!
//! One storm is one sample of a machine whose speed moves by a third from minute to
//! minute even with nothing stolen (the hash baseline before and after each storm shows
//! it), so the bench runs [`ROUNDS`] storms, each on a new service and store, prints each
//! as above, and ends with the median and range of their ack rates, ack p99s, drain times,
//! CPU per alert and steal: figures a reader can compare between two builds.
//! `MEDIC_BENCH_ROUNDS=n` sets how many (1 to 20; with 1, no summary).
//!
//! Needs `wrk` on the PATH (Debian: `apt-get install wrk`); without it the bench says so
//! and skips. `cargo bench -p medic-server --bench loopback`

#[expect(
    dead_code,
    reason = "the payload, percentiles and bare service are for the in-process bench"
)]
mod common;

use medic_core::RunStatus;
use std::io::Write;
use std::time::{Duration, Instant};

/// Connections, threads and duration of the load.
const CONNECTIONS: u32 = 32;
const THREADS: u32 = 2;
const SECONDS: u32 = 10;
/// Storms by default; `MEDIC_BENCH_ROUNDS` overrides.
const ROUNDS: usize = 3;

/// wrk's Lua script: each request a new alert (thread id and counter make `n` unique);
/// `done` prints one line this bench parses (latencies in microseconds).
const SCRIPT: &str = r#"
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
local counter = 0
request = function()
  counter = counter + 1
  local n = tid * 100000000 + counter
  local body = string.format('{"version":"4","groupKey":"g%d","status":"firing","receiver":"medic","groupLabels":{},"commonLabels":{},"commonAnnotations":{},"externalURL":"http://am","alerts":[{"status":"firing","labels":{"alertname":"Bench","n":"%d"},"annotations":{},"startsAt":"2026-11-22T03:00:00Z","endsAt":"0001-01-01T00:00:00Z","fingerprint":"%016x"}]}', n, n, n)
  return wrk.format("POST", "/intake/alertmanager", {["Content-Type"] = "application/json", ["Authorization"] = "Bearer t"}, body)
end
done = function(summary, latency, requests)
  io.write(string.format("MEDIC requests=%d non2xx=%d errors=%d p50=%d p99=%d max=%d us=%d\n",
    summary.requests, summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max, summary.duration))
end
"#;

fn field(line: &str, name: &str) -> u64 {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("wrk output has no {name}: {line}"))
}

fn main() {
    if std::process::Command::new("wrk")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("loopback bench skipped: `wrk` is not installed (Debian: apt-get install wrk)");
        return;
    }
    let rounds = match std::env::var_os("MEDIC_BENCH_ROUNDS") {
        None => ROUNDS,
        Some(v) => match v.to_str().and_then(|v| v.parse::<usize>().ok()) {
            Some(n @ 1..=20) => n,
            _ => panic!("MEDIC_BENCH_ROUNDS must be a whole number from 1 to 20, not {v:?}"),
        },
    };
    let results: Vec<Round> = (1..=rounds).map(|i| round(i, rounds)).collect();
    if rounds > 1 {
        summary(&results);
    }
}

/// What one storm measured, for the summary.
struct Round {
    rate: f64,
    /// Whether every acknowledged alert's run finished before the bench's deadline.
    all_finished: bool,
    p99_ms: f64,
    drained_s: f64,
    cpu_per_alert_us: f64,
    stolen: f64,
}

/// The median and the range of `values`, as `median (min–max)` with `digits` decimals.
fn spread(mut values: Vec<f64>, digits: usize) -> String {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = (values[(n - 1) / 2] + values[n / 2]) / 2.0;
    format!(
        "{median:.digits$} ({:.digits$}–{:.digits$})",
        values[0],
        values[values.len() - 1]
    )
}

/// The rounds' medians: what to quote and compare.
fn summary(results: &[Round]) {
    let of = |f: fn(&Round) -> f64| results.iter().map(f).collect::<Vec<_>>();
    let drained = match results.iter().all(|r| r.all_finished) {
        true => "every run finished",
        false => "NOT every run finished (see the storms above); the bench gave up",
    };
    println!(
        "loopback, median (range) of {storms} storms: {rate} acknowledged alerts/s; \
         ack p99 {p99} ms; {drained} {drain} s after the load; medic's CPU {cpu} µs per \
         alert; {stolen} % stolen",
        storms = results.len(),
        rate = spread(of(|r| r.rate), 0),
        p99 = spread(of(|r| r.p99_ms), 1),
        drain = spread(of(|r| r.drained_s), 1),
        cpu = spread(of(|r| r.cpu_per_alert_us), 0),
        stolen = spread(of(|r| r.stolen), 0),
    );
}

/// One storm on a new service and store: prints its figures and returns them.
fn round(i: usize, rounds: usize) -> Round {
    let dir = tempfile::tempdir().unwrap();
    let (fsyncs, fsync_median, _) = common::fsync_baseline(dir.path());
    let cpu_before = common::cpu_baseline();
    let script = dir.path().join("alerts.lua");
    std::fs::File::create(&script)
        .unwrap()
        .write_all(SCRIPT.as_bytes())
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (svc, sled) = common::service_and_store(dir.path(), 64);
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = rt.spawn(medic_server::serve(
        svc.clone(),
        medic_server::router(svc.clone()),
        listener,
        async {
            let _ = stopped.await;
        },
    ));
    rt.spawn(medic_server::process(svc.clone()));
    let (cpu_started, ticks_started) = (common::process_cpu(), common::cpu_ticks());
    // Threads outlive a round (sled's I/O pool is the process's): each round counts
    // what its threads used since it started.
    let threads_started = common::thread_cpu();

    let out = std::process::Command::new("wrk")
        .args([
            &format!("-t{THREADS}"),
            &format!("-c{CONNECTIONS}"),
            &format!("-d{SECONDS}s"),
            "--timeout",
            "10s",
            "-s",
        ])
        .arg(&script)
        .arg(format!("http://127.0.0.1:{port}/"))
        .output()
        .unwrap();
    let load_ended = Instant::now();
    let cpu_load = common::process_cpu() - cpu_started;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("MEDIC "))
        .unwrap_or_else(|| panic!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr)));
    let (requests, non2xx, errors) = (
        field(line, "requests"),
        field(line, "non2xx"),
        field(line, "errors"),
    );
    let acked = requests - non2xx;
    let secs = field(line, "us") as f64 / 1e6;
    let rate = acked as f64 / secs;
    let p99_ms = field(line, "p99") as f64 / 1e3;
    println!(
        "loopback intake, storm {i} of {rounds} (wrk, {CONNECTIONS} connections, {SECONDS} s, unique alerts, one-step runs): \
         {rate:.0} acknowledged alerts/s ({acked} acked, {non2xx} refused, {errors} socket errors); \
         ack p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        field(line, "p50") as f64 / 1e3,
        p99_ms,
        field(line, "max") as f64 / 1e3,
    );
    println!(
        "  baseline (same run): bare 512-byte write+fdatasync {fsyncs:.0}/s (median {} ms); \
         acks per bare fsync {:.2}",
        common::ms(fsync_median),
        rate / fsyncs
    );

    // Every acknowledged alert became a run; wait until all have finished. The store's
    // run list (every run's meta decoded) is read only once no run is in hand: read
    // every 50 ms while tens of thousands of runs drain, it took one of the two cores
    // from the runs it was timing.
    let store = svc.engine().store().clone();
    let deadline = Instant::now() + Duration::from_secs(300);
    let (finished, total, cpu_all, stolen) = loop {
        if svc.runs_in_flight() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        // Before the run list is read: the bench's own reading is not medic's work.
        let cpu_all = common::process_cpu() - cpu_started;
        let stolen = common::stolen_since(ticks_started);
        let runs = store.runs().unwrap();
        let finished = runs
            .iter()
            .filter(|m| m.status != RunStatus::Running)
            .count();
        if (runs.len() as u64 >= acked && finished == runs.len()) || Instant::now() > deadline {
            break (finished, runs.len(), cpu_all, stolen);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let drained_s = load_ended.elapsed().as_secs_f64();
    println!(
        "  {finished} of {total} runs finished {drained_s:.1} s after the load ended ({acked} alerts acknowledged)"
    );
    let per = |d: Duration| d.as_secs_f64() * 1e6 / acked.max(1) as f64;
    println!(
        "  medic's CPU (user + system): {:.0} µs per alert end to end, intake and its run \
         ({:.1} s during the load, {:.1} s after it; {:.2} fsyncs per alert); by thread: {}",
        per(cpu_all),
        cpu_load.as_secs_f64(),
        (cpu_all - cpu_load).as_secs_f64(),
        sled.flush_count() as f64 / acked.max(1) as f64,
        common::cpu_by_thread_since(&threads_started)
            .iter()
            .take(6)
            .map(|(name, d)| format!("{name} {:.1} s", d.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    // After the drain, so a neighbour's load during the run shows in one of the two.
    println!(
        "  CPU baseline (same run, one thread): {:.0}k hashes of 4 KiB/s before the load, \
         {:.0}k after the runs; {:.0} % of the machine's CPU time stolen by the hypervisor \
         during the load and the runs",
        cpu_before / 1e3,
        common::cpu_baseline() / 1e3,
        stolen,
    );
    let _ = stop.send(());
    let _ = rt.block_on(server);
    Round {
        rate,
        all_finished: finished == total && total as u64 >= acked,
        p99_ms,
        drained_s,
        cpu_per_alert_us: per(cpu_all),
        stolen,
    }
}
