//! PagerDuty v3 webhooks: any header and body give a verdict and alerts or a 4xx error,
//! never a panic. The input's first line is the `X-PagerDuty-Signature` header, the rest is
//! the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medic_intake::pagerduty;

fuzz_target!(|input: &[u8]| {
    let (header, body) = match input.iter().position(|&b| b == b'\n') {
        Some(i) => (&input[..i], &input[i + 1..]),
        None => (&input[..0], input),
    };
    let header = String::from_utf8_lossy(header);
    let secrets = ["whsec-old".to_string(), "whsec-new".to_string()];
    if let Err(e) = pagerduty::verify(body, &header, &secrets) {
        assert_eq!(e.http_status(), 401, "{e}");
    }
    match pagerduty::parse(body) {
        Ok(alerts) => {
            assert!(alerts.len() <= 1, "one event, at most one alert");
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
