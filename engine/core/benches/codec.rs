//! Journal entry codec: how long one entry takes to decode, beside the JSON parser's own
//! floor for the same bytes (parsed and thrown away), measured in the same run.
//!
//! The mix is the web bench's long run: logs, HTTP requests and responses of one step.
//! Run with `cargo bench -p medic-core --bench codec`.

use medic_core::codec::{decode_entry, encode_entry};
use medic_core::{Body, Entry, Event, HostCall, HttpOutcome, Level};
use std::hint::black_box;
use std::time::Instant;

fn entries() -> Vec<Vec<u8>> {
    (0..10_000u64)
        .map(|seq| {
            let call = match seq % 3 {
                0 => HostCall::Log {
                    level: Level::Info,
                    message: format!("checked shard {seq}: error ratio 7.{seq}%"),
                },
                1 => HostCall::HttpRequest {
                    id: seq as u32,
                    method: "GET".into(),
                    url: format!("http://prometheus:9090/api/v1/query?q=shard{seq}"),
                    headers: vec![("accept".into(), "application/json".into())],
                    body: Body::Empty,
                },
                _ => HostCall::HttpResponse {
                    id: seq as u32 - 1,
                    duration_ms: 12,
                    outcome: HttpOutcome::Response {
                        status: 200,
                        headers: vec![],
                        body: Body::Text(
                            "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[]}}"
                                .repeat(4),
                        ),
                    },
                },
            };
            let event = Event::HostCall {
                step: "first".into(),
                attempt: 1,
                call,
            };
            encode_entry(&Entry {
                seq,
                at_ms: 1_796_000_000_000 + seq,
                event,
            })
        })
        .collect()
}

/// Median and p99 of `rounds` timings of `f` over every record, µs per entry.
fn per_entry(records: &[Vec<u8>], rounds: usize, f: impl Fn(&[u8])) -> (f64, f64) {
    let mut t: Vec<f64> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for r in records {
                f(r);
            }
            start.elapsed().as_secs_f64() * 1e6 / records.len() as f64
        })
        .collect();
    t.sort_by(f64::total_cmp);
    (t[t.len() / 2], t[t.len() * 99 / 100])
}

fn main() {
    let records = entries();
    let bytes: usize = records.iter().map(Vec::len).sum();
    println!(
        "10,000 journal entries (host calls: logs, HTTP requests and responses), {:.0} bytes each on average",
        bytes as f64 / records.len() as f64
    );
    let (floor, floor99) = per_entry(&records, 50, |r| {
        black_box(serde_json::from_slice::<serde::de::IgnoredAny>(&r[1..]).unwrap());
    });
    let (value, _) = per_entry(&records, 50, |r| {
        black_box(serde_json::from_slice::<serde_json::Value>(&r[1..]).unwrap());
    });
    let (median, p99) = per_entry(&records, 50, |r| {
        black_box(decode_entry(r).unwrap());
    });
    println!(
        "  baseline: JSON parse only (bytes checked, nothing kept): median {floor:.2} µs, p99 {floor99:.2} µs per entry"
    );
    println!("  baseline: JSON parse into serde_json::Value: median {value:.2} µs per entry");
    println!(
        "decode_entry: median {median:.2} µs, p99 {p99:.2} µs per entry ({:.1}× the parse-only floor; 10,000 entries in {:.1} ms)",
        median / floor,
        median * 10.0
    );
}
