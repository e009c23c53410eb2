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

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("empty record")]
    Empty,
    #[error("record has format version {found}; this medic reads version {FORMAT_VERSION}")]
    Version { found: u8 },
    #[error("corrupt record: {0}")]
    Json(#[from] serde_json::Error),
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![FORMAT_VERSION];
    // Serialising our own plain data types cannot fail (no maps with non-string keys).
    serde_json::to_writer(&mut out, value).expect("journal records serialise to JSON");
    out
}

pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    match bytes.split_first() {
        None => Err(CodecError::Empty),
        Some((&FORMAT_VERSION, body)) => Ok(serde_json::from_slice(body)?),
        Some((&found, _)) => Err(CodecError::Version { found }),
    }
}

pub fn encode_entry(entry: &Entry) -> Vec<u8> {
    encode(entry)
}

pub fn decode_entry(bytes: &[u8]) -> Result<Entry, CodecError> {
    decode(bytes)
}

pub fn encode_meta(meta: &RunMeta) -> Vec<u8> {
    encode(meta)
}

pub fn decode_meta(bytes: &[u8]) -> Result<RunMeta, CodecError> {
    decode(bytes)
}
