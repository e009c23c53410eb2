//! Grafana webhook bodies: any bytes give alerts or a 4xx error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    match medic_intake::grafana::parse(body) {
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
