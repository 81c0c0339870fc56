//! The core's only source of randomness: a ChaCha20 stream seeded by the caller.
//!
//! The daemon seeds it from the operating system and mixes fresh bytes from it in before
//! every step ([`Rng::reseed`]); the simulator seeds it from its run seed alone, which
//! makes every run reproducible.
//!
//! Secrets are drawn with fast key erasure: the stream's key is replaced right after each
//! secret is drawn, so a copy of this device's memory taken later does not give back the
//! ephemeral keys of sessions already made.

// The one place the seeded stream is built; everything else goes through `Rng`.
#![allow(clippy::disallowed_types)]

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use zeroize::Zeroizing;

/// A deterministic cryptographically strong random stream.
pub struct Rng(ChaCha20Rng);

impl Rng {
    /// A stream determined entirely by `seed`.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Rng(ChaCha20Rng::from_seed(seed))
    }

    /// 32 fresh random bytes (an ephemeral secret key, a token secret); the stream that
    /// gave them is gone once they are returned.
    pub fn bytes32(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        self.0.fill_bytes(&mut out);
        self.rekey(&[]);
        out
    }

    /// Mixes `fresh` bytes (from the operating system) into the stream: what it gives
    /// from now on depends on them and on everything before.
    pub fn reseed(&mut self, fresh: &[u8; 32]) {
        self.rekey(fresh);
    }

    /// Replaces the stream (its key and its unread output) by one keyed from its next
    /// bytes and `fresh`.
    fn rekey(&mut self, fresh: &[u8]) {
        let mut next = Zeroizing::new([0u8; 32]);
        self.0.fill_bytes(next.as_mut());
        let seed = Zeroizing::new(crate::crypto::hash::hash(&[
            b"cnspr rng rekey",
            next.as_ref(),
            fresh,
        ]));
        self.0 = ChaCha20Rng::from_seed(*seed);
    }

    /// A random `u32`.
    pub fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }

    /// A random `u64`.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
}

impl std::fmt::Debug for Rng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rng(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_stream_and_fresh_bytes_change_it() {
        let (mut a, mut b) = (Rng::from_seed([5; 32]), Rng::from_seed([5; 32]));
        assert_eq!(a.bytes32(), b.bytes32());
        assert_eq!(a.next_u64(), b.next_u64());
        a.reseed(&[1; 32]);
        b.reseed(&[2; 32]);
        assert_ne!(a.bytes32(), b.bytes32());
    }

    #[test]
    fn a_secret_is_not_what_the_plain_stream_would_give_next() {
        // After a secret, the stream is rekeyed: its later output is not the plain
        // ChaCha20 continuation, which a copy of the old state would predict.
        let mut rng = Rng::from_seed([9; 32]);
        let mut plain = ChaCha20Rng::from_seed([9; 32]);
        let mut expected = [0u8; 32];
        plain.fill_bytes(&mut expected);
        assert_eq!(rng.bytes32(), expected);
        let mut continuation = [0u8; 32];
        plain.fill_bytes(&mut continuation);
        assert_ne!(rng.bytes32(), continuation);
    }
}
