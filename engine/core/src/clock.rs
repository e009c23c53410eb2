//! Time and entropy, injected: the two things outside a run that a run sees change. The
//! executor never calls `now()` or `sleep` directly, so timers are durable (deadlines are
//! wall-clock instants in the journal) and tests and drills can run in accelerated time;
//! guests' random bytes come from an [`Entropy`] so tests can pin them.

use async_trait::async_trait;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The time a run sees: wall-clock milliseconds and sleeping until an instant.
#[async_trait]
pub trait Clock: Send + Sync {
    /// Wall-clock milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
    /// Return once `now_ms() >= deadline_ms`.
    async fn sleep_until(&self, deadline_ms: u64);
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    async fn sleep_until(&self, deadline_ms: u64) {
        let now = self.now_ms();
        if deadline_ms > now {
            tokio::time::sleep(Duration::from_millis(deadline_ms - now)).await;
        }
    }
}

/// A clock that only moves when slept on: sleeping jumps straight to the deadline.
/// For tests and accelerated drills.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<u64>,
}

impl ManualClock {
    /// A clock reading `start_ms` (Unix ms).
    pub fn new(start_ms: u64) -> Self {
        ManualClock {
            now: Mutex::new(start_ms),
        }
    }

    /// Moves the clock `ms` milliseconds forward.
    pub fn advance(&self, ms: u64) {
        *self.now.lock().expect("clock lock") += ms;
    }
}

#[async_trait]
impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        *self.now.lock().expect("clock lock")
    }

    async fn sleep_until(&self, deadline_ms: u64) {
        let mut now = self.now.lock().expect("clock lock");
        if deadline_ms > *now {
            *now = deadline_ms;
        }
    }
}

/// Source of random bytes for guests, injected so tests can pin it.
pub trait Entropy: Send + Sync {
    /// Fills `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]);
}

/// The operating system's randomness.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&self, buf: &mut [u8]) {
        // A machine without an entropy source cannot run anything safely anyway.
        getrandom::fill(buf).expect("the OS provides random bytes");
    }
}

/// RFC 3339 (UTC, second precision) for a Unix-millisecond instant
/// ([`medic_model::time::format_secs`], medic's one time module).
pub fn rfc3339(ms: u64) -> String {
    medic_model::time::format_secs(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
    }

    #[tokio::test]
    async fn manual_clock_jumps_to_deadline() {
        let c = ManualClock::new(1_000);
        c.sleep_until(31_000).await;
        assert_eq!(c.now_ms(), 31_000);
        c.sleep_until(5).await;
        assert_eq!(c.now_ms(), 31_000);
    }
}
