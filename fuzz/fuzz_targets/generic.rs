//! Generic JSON through a field mapping: any bytes give alerts or a 4xx error, never a panic.
//! The input's first line, when it is a valid pointer, is the title pointer, so the fuzzer
//! explores mappings as well as payloads; the other fields use a fixed mapping.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medic_intake::generic::{self, Mapping};

fuzz_target!(|input: &[u8]| {
    let (first, body) = match input.iter().position(|&b| b == b'\n') {
        Some(i) => (&input[..i], &input[i + 1..]),
        None => (&input[..0], input),
    };
    let mut mapping = Mapping {
        title: "/title".into(),
        severity: Some("/severity".into()),
        status: Some("/status".into()),
        fingerprint: Some("/id".into()),
        labels: Some("/labels".into()),
        annotations: Some("/annotations".into()),
        starts_at: Some("/startsAt".into()),
        resolved_values: vec!["resolved".into(), "OK".into()],
    };
    if first.starts_with(b"/") {
        mapping.title = String::from_utf8_lossy(first).into_owned();
    }
    if mapping.validate().is_err() {
        // A broken mapping is a configuration error (500), checked at engine start.
        return;
    }
    match generic::parse(body, &mapping) {
        Ok(alerts) => {
            for alert in &alerts {
                let _ = alert.to_incident("2024-05-01T00:00:00Z");
            }
        }
        Err(e) => {
            let status = e.http_status();
            assert!(matches!(status, 400 | 422), "{status}: {e}");
        }
    }
});
