//! Why a webhook request could not become alerts, and the HTTP status that says so.

use crate::Source;

/// Why a webhook body (or its signature) was refused. Every message names the source and
/// says what is wrong and where, because it goes back verbatim in the 4xx response and is
/// often the only thing the person setting up the webhook gets to see.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntakeError {
    /// The body is not JSON (or not UTF-8). `line` and `column` are 1-based, as serde_json
    /// reports them.
    #[error("{origin} payload: invalid JSON at line {line} column {column}: {message}")]
    Json {
        /// The format the body was read as.
        origin: Source,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// serde_json's message, without its position.
        message: String,
    },
    /// Valid JSON of the wrong shape. `path` says where (`alerts[2].labels`, `event.data.id`,
    /// or a JSON pointer for generic payloads); empty for the document itself.
    #[error("{origin} payload: {}{message}", at(path))]
    Shape {
        /// The format the body was read as.
        origin: Source,
        /// Where in the payload.
        path: String,
        /// What is wrong there.
        message: String,
    },
    /// A payload version this build does not read. `found` is the `version` field as sent.
    #[error("unsupported {} webhook version {found:?} (medic reads version {expected})", vendor(*origin))]
    Version {
        /// The format the body was read as.
        origin: Source,
        /// The version the payload says it has.
        found: String,
        /// The version medic reads.
        expected: &'static str,
    },
    /// No `X-PagerDuty-Signature` header, or an empty one.
    #[error(
        "pagerduty signature: the X-PagerDuty-Signature header is missing or empty \
         (PagerDuty signs every v3 webhook)"
    )]
    MissingSignature,
    /// The header holds no `v1=` signature.
    #[error("pagerduty signature: no v1 signature in header")]
    NoV1Signature,
    /// No signature matches any configured secret.
    #[error("pagerduty signature: does not match any configured secret")]
    SignatureMismatch,
    /// Nothing to verify against: the server was started without a PagerDuty secret.
    #[error("pagerduty signature: no webhook secret is configured, so no request can be verified")]
    NoSecrets,
    /// The generic source's field mapping (engine configuration, not the request) is wrong.
    #[error("generic mapping: {field}: {message}")]
    Mapping {
        /// The mapping's field (`title`, `starts_at`, ...).
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
}

impl IntakeError {
    /// HTTP status a server should answer: 400 for malformed payloads, 401 for bad or
    /// missing signatures, 422 for valid JSON of the wrong shape or version.
    ///
    /// A wrong generic mapping answers 500: it is the server's configuration that is
    /// broken, not the request, and a 5xx makes the sender retry the alert once the
    /// configuration is fixed instead of dropping it.
    pub fn http_status(&self) -> u16 {
        match self {
            IntakeError::Json { .. } => 400,
            IntakeError::Shape { .. } | IntakeError::Version { .. } => 422,
            IntakeError::MissingSignature
            | IntakeError::NoV1Signature
            | IntakeError::SignatureMismatch
            | IntakeError::NoSecrets => 401,
            IntakeError::Mapping { .. } => 500,
        }
    }
}

/// `path: ` before the message, or nothing for the document itself.
fn at(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    }
}

/// The vendor's own spelling, for messages about its payload format.
fn vendor(origin: Source) -> &'static str {
    match origin {
        Source::Alertmanager => "Alertmanager",
        Source::Grafana => "Grafana",
        Source::PagerDuty => "PagerDuty",
        Source::Generic => "generic",
        Source::Cli => "medic alert document",
    }
}
