//! The one hook drills need in the chokepoint: something that answers a step's outgoing
//! requests instead of the network.

use crate::journal::{HostCall, HttpOutcome};

/// Answers outgoing HTTP requests in place of the network. A drill (`medic-drill`)
/// answers from a recorded incident; a real run has none.
///
/// [`crate::AttemptHost::http_request`] consults it after the request is journalled and
/// before anything is sent, for live requests and for a resumed attempt's request that
/// has no recorded response. An answer is journalled as the request's response (so a
/// resume replays it like any other) and handed to the guest; the request is never sent.
pub trait HttpResponder: Send + Sync {
    /// The answer to `request` (the journalled, redacted `HostCall::HttpRequest`) made by
    /// attempt `attempt` of `step`, or `None` to send it to the network.
    fn respond(&self, step: &str, attempt: u32, request: &HostCall) -> Option<HttpOutcome>;
}
