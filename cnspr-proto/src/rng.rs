//! The core's only source of randomness: a ChaCha20 stream seeded by the caller.
//!
//! The daemon seeds it from the operating system; the simulator from its run seed, which
//! makes every run reproducible.

// The one place the seeded stream is built; everything else goes through `Rng`.
#![allow(clippy::disallowed_types)]

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

/// A deterministic cryptographically strong random stream.
pub struct Rng(ChaCha20Rng);

impl Rng {
    /// A stream determined entirely by `seed`.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Rng(ChaCha20Rng::from_seed(seed))
    }

    /// 32 fresh random bytes (an ephemeral secret key, a token secret).
    pub fn bytes32(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        self.0.fill_bytes(&mut out);
        out
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
