//! Faults injected into a drill's provider exchanges: what WireMock calls a fault
//! vocabulary (status, delay, reset, malformed body), aimed at a step or a request.

use crate::format::Offset;
use serde::{Deserialize, Serialize};

/// A fault on the requests it targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// Requests made by this step (its id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// Requests with this method and URL text (`POST /apis/apps/v1`), or URL text alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// Only the first N requests it targets; every one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
    /// What happens to them.
    pub fault: FaultKind,
}

/// What a faulted request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FaultKind {
    /// A response with this status and an empty body.
    Status(u16),
    /// No answer: the request fails after the step's whole timeout (virtual time).
    Timeout,
    /// The recorded answer, this much later (virtual time).
    Latency(Offset),
    /// The connection is refused: the request fails at once.
    Refused,
    /// The recorded status with a body cut short (not valid JSON).
    Malformed,
}

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FaultKind::Status(s) => write!(f, "HTTP {s}"),
            FaultKind::Timeout => f.write_str("no answer (timeout)"),
            FaultKind::Latency(d) => write!(f, "{d} added latency"),
            FaultKind::Refused => f.write_str("connection refused"),
            FaultKind::Malformed => f.write_str("malformed body"),
        }
    }
}

impl Fault {
    /// Whether this fault targets a `method` `url` request of `step`. A request pattern
    /// `METHOD TEXT` needs that method and TEXT in the URL; a pattern without a space
    /// needs it in the URL.
    pub fn targets(&self, step: &str, method: &str, url: &str) -> bool {
        let request = match self.request.as_deref().map(str::trim) {
            None => true,
            Some(r) => match r.split_once(' ') {
                Some((m, text)) => m.eq_ignore_ascii_case(method) && url.contains(text.trim()),
                None => url.contains(r),
            },
        };
        self.step.as_deref().is_none_or(|s| s == step) && request
    }

    /// Parses the command line's `TARGET=KIND[xN]`: TARGET is a step id, or request text
    /// (anything with a space or a `/`, e.g. `POST /apis`); KIND is a status (`503`),
    /// `timeout`, `refused`, `malformed` or `latency:DURATION`; `xN` limits it to the first
    /// N requests. Examples: `undo=503x3`, `flag=timeout`, `GET /health=latency:20s`.
    ///
    /// # Errors
    /// A sentence saying what is wrong with `spec`.
    pub fn parse(spec: &str) -> Result<Fault, String> {
        let (target, kind) = spec.rsplit_once('=').ok_or_else(|| {
            format!("--fault {spec}: write TARGET=KIND, e.g. undo=503x3 or flag=timeout")
        })?;
        let target = target.trim();
        if target.is_empty() {
            return Err(format!(
                "--fault {spec}: no target (a step id or request text)"
            ));
        }
        let (kind, times) = match kind.rsplit_once('x') {
            Some((k, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => (
                k,
                Some(
                    n.parse::<u32>()
                        .map_err(|e| format!("--fault {spec}: {e}"))?,
                ),
            ),
            _ => (kind, None),
        };
        let fault = parse_kind(kind).ok_or_else(|| {
            format!(
                "--fault {spec}: `{kind}` is not a fault (a status like 503, timeout, refused, malformed, latency:5s)"
            )
        })?;
        let is_request = target.contains(' ') || target.contains('/');
        Ok(Fault {
            step: (!is_request).then(|| target.to_string()),
            request: is_request.then(|| target.to_string()),
            times,
            fault,
        })
    }
}

/// `503`, `timeout`, `refused`, `malformed`, `latency:5s`.
pub fn parse_kind(s: &str) -> Option<FaultKind> {
    match s.trim() {
        "timeout" => Some(FaultKind::Timeout),
        "refused" => Some(FaultKind::Refused),
        "malformed" => Some(FaultKind::Malformed),
        other => {
            if let Some(d) = other.strip_prefix("latency:") {
                return Offset::parse(d).map(FaultKind::Latency);
            }
            match other.parse::<u16>() {
                Ok(code) if (100..=599).contains(&code) => Some(FaultKind::Status(code)),
                _ => None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_command_line_faults() {
        let f = Fault::parse("undo=503x3").unwrap();
        assert_eq!(f.step.as_deref(), Some("undo"));
        assert_eq!(f.times, Some(3));
        assert_eq!(f.fault, FaultKind::Status(503));
        let f = Fault::parse("GET /health=latency:20s").unwrap();
        assert_eq!(f.request.as_deref(), Some("GET /health"));
        assert_eq!(f.fault, FaultKind::Latency(Offset(20_000)));
        assert!(f.targets("any", "GET", "http://h:1/health"));
        assert!(!f.targets("any", "POST", "http://h:1/health"));
        assert!(Fault::parse("undo=teapot").unwrap_err().contains("teapot"));
        assert!(Fault::parse("undo").is_err());
        assert_eq!(Fault::parse("x=refused").unwrap().fault, FaultKind::Refused);
    }
}
