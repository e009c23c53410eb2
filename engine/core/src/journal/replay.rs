//! The replay buffer: what the journal recorded for an attempt that was in flight at a
//! crash, so the resumed attempt is answered from it (docs/durability.md, section 5).

use super::{HostCall, HttpOutcome};
use std::collections::HashMap;

/// What the journal recorded for the attempt being resumed.
#[derive(Debug, Default, Clone)]
pub struct Recorded {
    /// Guest-initiated calls in order (HTTP responses excluded: they can arrive in any order).
    pub calls: Vec<HostCall>,
    /// HTTP responses by request id.
    pub responses: HashMap<u32, HttpOutcome>,
}

impl Recorded {
    /// Adds a call read back from the journal, in journal order: a response goes to
    /// [`Recorded::responses`], every other call to the end of [`Recorded::calls`].
    pub fn push(&mut self, call: HostCall) {
        match call {
            HostCall::HttpResponse { id, outcome, .. } => {
                self.responses.insert(id, outcome);
            }
            other => self.calls.push(other),
        }
    }
}
