//! The random bytes a guest sees: a stream from one seed per attempt, so an attempt
//! journals one `random` record however many reads it makes, and a replay that gets the
//! seed back from the journal regenerates the same bytes (see `AttemptHost::random`).

/// Random bytes derived from one seed: SHA-256(seed ‖ counter) blocks, in order.
pub(crate) struct RandomStream {
    seed: [u8; 32],
    counter: u64,
    buffered: Vec<u8>,
}

impl RandomStream {
    pub(crate) fn new(seed: [u8; 32]) -> Self {
        RandomStream {
            seed,
            counter: 0,
            buffered: Vec::new(),
        }
    }

    pub(crate) fn fill(&mut self, out: &mut [u8]) {
        use sha2::{Digest, Sha256};
        while self.buffered.len() < out.len() {
            let mut h = Sha256::new();
            h.update(self.seed);
            h.update(self.counter.to_be_bytes());
            self.buffered.extend_from_slice(&h.finalize());
            self.counter += 1;
        }
        out.copy_from_slice(&self.buffered[..out.len()]);
        self.buffered.drain(..out.len());
    }
}

#[cfg(test)]
mod tests {
    use super::RandomStream;

    #[test]
    fn the_same_seed_gives_the_same_bytes_however_they_are_read() {
        let mut whole = [0u8; 100];
        RandomStream::new([7; 32]).fill(&mut whole);
        let mut pieces = RandomStream::new([7; 32]);
        let mut joined = Vec::new();
        for n in [1, 4, 31, 32, 32] {
            let mut buf = vec![0u8; n];
            pieces.fill(&mut buf);
            joined.extend(buf);
        }
        assert_eq!(joined, whole);
        let mut other = [0u8; 100];
        RandomStream::new([8; 32]).fill(&mut other);
        assert_ne!(other, whole);
    }
}
