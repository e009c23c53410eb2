//! The key layout of the single sled tree.
//!
//! | key                          | value                         |
//! |------------------------------|-------------------------------|
//! | `m/<run-id>`                 | `RunMeta` (codec-encoded)     |
//! | `e/<run-id>/<seq: u64 BE>`   | journal `Entry`               |
//!
//! Big-endian sequence numbers make a prefix scan return a journal in order.

pub(crate) const META_PREFIX: &[u8] = b"m/";

pub(crate) fn meta_key(run: &str) -> Vec<u8> {
    format!("m/{run}").into_bytes()
}

pub(crate) fn entry_prefix(run: &str) -> Vec<u8> {
    format!("e/{run}/").into_bytes()
}

pub(crate) fn entry_key(run: &str, seq: u64) -> Vec<u8> {
    let mut k = entry_prefix(run);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// A run's mailbox, under the service keyspace (`x/`, added by `records`).
pub(crate) fn mail_prefix(run: &str) -> Vec<u8> {
    format!("mail/{run}/").into_bytes()
}

pub(crate) fn mail_key(run: &str, id: u64) -> Vec<u8> {
    let mut k = mail_prefix(run);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// The sequence number at the end of an entry key, if it has one.
pub(crate) fn seq_of(key: &[u8]) -> Option<u64> {
    let tail: [u8; 8] = key.get(key.len().checked_sub(8)?..)?.try_into().ok()?;
    Some(u64::from_be_bytes(tail))
}

/// A key as people read it in error messages: `e/<run>/<seq>` with the sequence
/// number in decimal rather than as eight raw bytes.
pub(crate) fn display(key: &[u8]) -> String {
    if key.starts_with(b"e/")
        && key.len() > 10
        && let Some(seq) = seq_of(key)
    {
        let head = String::from_utf8_lossy(&key[..key.len() - 8]);
        return format!("{head}{seq}");
    }
    String::from_utf8_lossy(key).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_keys_sort_by_seq_and_display_in_decimal() {
        assert!(entry_key("r", 255) < entry_key("r", 256));
        assert_eq!(seq_of(&entry_key("r", 258)), Some(258));
        assert_eq!(display(&entry_key("run-1", 7)), "e/run-1/7");
        assert_eq!(display(&meta_key("run-1")), "m/run-1");
    }
}
