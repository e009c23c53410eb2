//! The persisted record format: one version byte, then JSON.
//!
//! Every record medic persists goes through here, so a format change is one deliberate
//! edit plus new golden files (tests/golden/). JSON keeps journals readable with `medic
//! runs show --journal` and debuggable with standard tools.

use crate::{Entry, RunMeta};
use serde::{Serialize, de::DeserializeOwned};

/// The format version written by this build. Bump it when a record's meaning changes,
/// and teach [`decode`] to read the old one.
pub const FORMAT_VERSION: u8 = 1;

/// Why a record could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// No bytes at all.
    #[error("empty record")]
    Empty,
    /// Another format version than [`FORMAT_VERSION`]: written by another medic.
    #[error("record has format version {found}; this medic reads version {FORMAT_VERSION}")]
    Version {
        /// The version byte found.
        found: u8,
    },
    /// The JSON after the version byte does not decode as the expected type.
    #[error("corrupt record: {0}")]
    Json(#[from] serde_json::Error),
}

/// `value` as a record: [`FORMAT_VERSION`], then its JSON.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![FORMAT_VERSION];
    // Serialising our own plain data types cannot fail (no maps with non-string keys).
    serde_json::to_writer(&mut out, value).expect("journal records serialise to JSON");
    out
}

/// A record written by [`encode`], decoded as `T`.
///
/// # Errors
///
/// [`CodecError`] when `bytes` is empty, has another version byte, or is not `T`'s JSON.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    match bytes.split_first() {
        None => Err(CodecError::Empty),
        Some((&FORMAT_VERSION, body)) => Ok(serde_json::from_slice(body)?),
        Some((&found, _)) => Err(CodecError::Version { found }),
    }
}

/// A journal entry as a record.
pub fn encode_entry(entry: &Entry) -> Vec<u8> {
    encode(entry)
}

/// A journal entry from a record.
///
/// # Errors
///
/// As [`decode`].
pub fn decode_entry(bytes: &[u8]) -> Result<Entry, CodecError> {
    decode(bytes)
}

/// A run's index record as a record.
pub fn encode_meta(meta: &RunMeta) -> Vec<u8> {
    encode(meta)
}

/// A run's index record from a record.
///
/// # Errors
///
/// As [`decode`].
pub fn decode_meta(bytes: &[u8]) -> Result<RunMeta, CodecError> {
    decode(bytes)
}
