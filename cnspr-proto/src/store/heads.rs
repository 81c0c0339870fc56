//! Signed heads: every device signs its latest write number, and every store message that
//! names writes carries the heads of their authors. A receiver takes a write, or a context
//! claiming to have seen one, only if it names a write its author has signed for, so a
//! stolen device can no longer claim to have seen another device's future writes: neither
//! freeze a key against them nor make a device believe it has them and never ask.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::crypto::hash::{hash, Hash};
use crate::identity::{DeviceId, DeviceKey, Signature};

const LABEL: &[u8] = b"cnspr head v1";

/// A device's signed statement "my writes are numbered up to `seq`".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedHead {
    /// The author.
    pub device: DeviceId,
    /// Its latest write number when it signed.
    pub seq: u64,
    /// Its signature.
    pub signature: Signature,
}

/// What a head's signature is over, framed as every signed fact is (a labelled BLAKE2s).
fn digest(device: &DeviceId, seq: u64) -> Hash {
    hash(&[LABEL, device.as_bytes(), &seq.to_le_bytes()])
}

impl SignedHead {
    /// The head of the device of `key` at write `seq`.
    pub fn sign(key: &DeviceKey, seq: u64) -> Self {
        let device = key.device_id();
        Self {
            device,
            seq,
            signature: key.sign(&digest(&device, seq)),
        }
    }

    /// Whether its author signed it.
    pub fn verifies(&self) -> bool {
        self.device
            .verifies(&digest(&self.device, self.seq), &self.signature)
    }
}

/// The highest head known of each author.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Heads {
    best: BTreeMap<DeviceId, SignedHead>,
}

impl Heads {
    /// Takes in `head` if it is above the one known of its author and verifies (only then
    /// is a signature checked, so repeats cost nothing). Returns whether it was new.
    pub fn absorb(&mut self, head: &SignedHead) -> bool {
        if self.bound(&head.device) >= head.seq || !head.verifies() {
            return false;
        }
        self.best.insert(head.device, *head);
        true
    }

    /// The highest write number `device` is known to have signed for (0: none).
    pub fn bound(&self, device: &DeviceId) -> u64 {
        self.best.get(device).map_or(0, |head| head.seq)
    }

    /// The known heads of `devices` (each once).
    pub fn of(&self, devices: impl IntoIterator<Item = DeviceId>) -> Vec<SignedHead> {
        let mut heads: Vec<SignedHead> = devices
            .into_iter()
            .filter_map(|d| self.best.get(&d).copied())
            .collect();
        heads.sort_unstable_by_key(|head| head.device);
        heads.dedup_by_key(|head| head.device);
        heads
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_higher_head_its_author_signed_is_taken() {
        let key = DeviceKey::from_seed([1; 32]);
        let other = DeviceKey::from_seed([2; 32]);
        let mut heads = Heads::default();
        assert!(heads.absorb(&SignedHead::sign(&key, 5)));
        assert_eq!(heads.bound(&key.device_id()), 5);
        assert!(!heads.absorb(&SignedHead::sign(&key, 4)), "lower");
        let mut forged = SignedHead::sign(&key, 5);
        forged.seq = u64::MAX;
        assert!(!heads.absorb(&forged), "a number its author did not sign");
        let by_other = SignedHead {
            device: key.device_id(),
            ..SignedHead::sign(&other, u64::MAX)
        };
        assert!(!heads.absorb(&by_other), "another device's signature");
        assert_eq!(heads.bound(&key.device_id()), 5);
        assert_eq!(heads.bound(&other.device_id()), 0);
        assert_eq!(
            heads
                .of([key.device_id(), other.device_id(), key.device_id()])
                .len(),
            1
        );
    }
}
