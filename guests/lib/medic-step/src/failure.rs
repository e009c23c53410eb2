//! What a step reports when an attempt fails, and which remote answers are worth another
//! attempt. One definition, so every step retries the same answers.

/// A failed attempt. [`crate::export_step!`] turns it into the WIT `step-error`, or, when it
/// is retryable and carries [`Failure::retry_after_ms`], into a `retry-after` outcome that
/// waits exactly as long as the remote asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// What went wrong, for the person on call: name the param, the remote status and the
    /// remote's own message. Never a secret (a token, a webhook URL).
    pub message: String,
    /// True when a later attempt may succeed (timeouts, 5xx, 429).
    pub retryable: bool,
    /// The remote asked to wait this long, in milliseconds, before trying again (HTTP 429).
    pub retry_after_ms: Option<u64>,
}

impl Failure {
    /// Bad params, refusals and missing things: retrying cannot help.
    pub fn fatal(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            retryable: false,
            retry_after_ms: None,
        }
    }

    /// Overload, outages and network trouble: a later attempt may succeed.
    pub fn transient(message: impl Into<String>) -> Self {
        Failure {
            retryable: true,
            ..Failure::fatal(message)
        }
    }

    /// A remote answer that is not a success, retryable when [`retryable_status`] says so.
    pub fn remote(status: u16, message: impl Into<String>) -> Self {
        Failure {
            retryable: retryable_status(status),
            ..Failure::fatal(message)
        }
    }

    /// The same failure, waiting `ms` milliseconds before the next attempt when `Some`.
    pub fn with_retry_after(mut self, ms: Option<u64>) -> Self {
        self.retry_after_ms = ms;
        self
    }

    /// The same failure with `what: ` in front of its message (e.g. `posting to #ops`).
    pub fn context(mut self, what: &str) -> Self {
        self.message = format!("{what}: {}", self.message);
        self
    }
}

/// Whether an HTTP status may be different next time: the server was overloaded (429) or
/// failed (5xx). Any other refusal will be the same on a retry.
pub fn retryable_status(status: u16) -> bool {
    status == 429 || status >= 500
}

/// A `Retry-After` header in seconds, as milliseconds (the HTTP-date form is not used by the
/// services the providers talk to, and is ignored).
pub fn retry_after_ms(header: Option<&str>) -> Option<u64> {
    header
        .and_then(|h| h.trim().parse::<u64>().ok())
        .map(|s| s.saturating_mul(1000))
}
