//! The `MEDIC_CRASH_AT_WRITE` failpoint: a test-only switch that kills the process just
//! before its k-th journal write (a finishing append's meta counts as a write of its
//! own, after its entry), so crash tests can stop medic at every point of a run
//! and check that `medic resume` finishes it correctly.
//!
//! SIGKILL, not a panic or `exit`: nothing may run after the decision — no destructor,
//! no flush — exactly like a power cut as far as this process is concerned (the OS
//! still keeps what was already written to it).

use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable, read once when a store is opened.
pub const CRASH_AT_WRITE: &str = "MEDIC_CRASH_AT_WRITE";

/// Journal writes (`create_run` and `append` calls, a finishing append's meta apart from
/// its entry) made by this process so far, by every store handle with the failpoint
/// armed. Process-wide because the crash point
/// is a property of the process under test, not of one handle.
static WRITES: AtomicU64 = AtomicU64::new(0);

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Failpoint {
    crash_at: Option<u64>,
}

impl Failpoint {
    /// Reads the environment variable. A malformed value is an error rather than
    /// "disarmed", so a crash test with a typo fails instead of passing vacuously.
    pub(crate) fn from_env() -> Result<Failpoint, String> {
        let value = std::env::var_os(CRASH_AT_WRITE);
        let value = value.as_ref().map(|v| v.to_string_lossy());
        Ok(Failpoint {
            crash_at: parse(value.as_deref())?,
        })
    }

    /// Called first thing in every journal write.
    pub(crate) fn before_write(&self) {
        self.before_write_flushed(|| {});
    }

    /// As [`Failpoint::before_write`], for the second half of a write made of two (a
    /// finishing append's meta, after its entry): when it fires it runs `flush` first, so
    /// the crash leaves the first half on disk and the second not, the worst a power cut
    /// can leave there.
    pub(crate) fn before_write_flushed(&self, flush: impl FnOnce()) {
        if self.crash_at.is_none() {
            return;
        }
        let n = WRITES.fetch_add(1, Ordering::SeqCst) + 1;
        if crash_now(self.crash_at, n) {
            flush();
            kill_self();
        }
    }
}

/// `None` (unset or empty): disarmed. Otherwise a write number, 1-based.
pub(crate) fn parse(value: Option<&str>) -> Result<Option<u64>, String> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => match v.parse::<u64>() {
            Ok(k) if k >= 1 => Ok(Some(k)),
            _ => Err(format!(
                "{CRASH_AT_WRITE}={v:?}: expected a write number >= 1 (test-only failpoint)"
            )),
        },
    }
}

/// Whether to crash before write number `n` (1-based) of this process.
pub(crate) fn crash_now(crash_at: Option<u64>, n: u64) -> bool {
    crash_at == Some(n)
}

#[expect(
    unsafe_code,
    reason = "kill(2) on our own pid: no memory is touched; SIGKILL so no cleanup runs"
)]
fn kill_self() -> ! {
    // SAFETY: getpid and kill have no memory-safety preconditions.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    // SIGKILL to ourselves is delivered before kill returns; abort just in case.
    std::process::abort()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_switch() {
        assert_eq!(parse(None), Ok(None));
        assert_eq!(parse(Some("")), Ok(None));
        assert_eq!(parse(Some("3")), Ok(Some(3)));
        assert_eq!(parse(Some(" 12 ")), Ok(Some(12)));
        for bad in ["0", "-1", "two", "1.5"] {
            let err = parse(Some(bad)).unwrap_err();
            assert!(err.contains(CRASH_AT_WRITE), "{err}");
        }
    }

    #[test]
    fn crashes_exactly_before_the_kth_write() {
        let armed = Some(3);
        let decisions: Vec<bool> = (1..=5).map(|n| crash_now(armed, n)).collect();
        assert_eq!(decisions, [false, false, true, false, false]);
        assert!((1..=100).all(|n| !crash_now(None, n)));
    }

    #[test]
    fn a_disarmed_failpoint_does_not_count() {
        let before = WRITES.load(Ordering::SeqCst);
        Failpoint::default().before_write();
        assert_eq!(WRITES.load(Ordering::SeqCst), before);
    }
}
