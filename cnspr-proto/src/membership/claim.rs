//! A device's signed claim of its own incarnation: what lets news of a device travel
//! through other devices without trusting them.
//!
//! Only a device raises its incarnation, and only it leaves. So news from a third device
//! that names an incarnation the receiver has not heard the device at, or says it left,
//! is believed only with the device's own signature of that incarnation (and of leaving
//! at it). A stolen roster device can still accuse others at the incarnation they are at,
//! which they refute as SWIM has them do; it can no longer declare a device gone for good
//! or push it to an incarnation it can never refute from.

use crate::crypto::hash::{hash, Hash};
use crate::identity::{DeviceId, DeviceKey, Signature};
use crate::membership::message::Status;

/// What a claim's signature covers first, so it can never pass for another signed fact.
const CLAIM_LABEL: &[u8] = b"cnspr membership claim v1";

/// What a device claims of itself at an incarnation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// It runs at this incarnation.
    Running,
    /// It left at this incarnation.
    Left,
}

impl Claim {
    /// The claim that backs news of `status`: a goodbye for `Left`, running for the rest
    /// (a suspicion or a verdict names the incarnation the device ran at).
    pub fn backing(status: Status) -> Self {
        if status == Status::Left {
            Claim::Left
        } else {
            Claim::Running
        }
    }
}

fn digest(member: &DeviceId, incarnation: u64, claim: Claim) -> Hash {
    let kind = [u8::from(claim == Claim::Left)];
    hash(&[CLAIM_LABEL, member.as_bytes(), &incarnation.to_le_bytes(), &kind])
}

/// This device's signature of `claim` at `incarnation`.
pub fn sign(key: &DeviceKey, incarnation: u64, claim: Claim) -> Signature {
    key.sign(&digest(&key.device_id(), incarnation, claim))
}

/// Whether `member` signed `claim` at `incarnation`.
pub fn verifies(member: &DeviceId, incarnation: u64, claim: Claim, signature: &Signature) -> bool {
    member.verifies(&digest(member, incarnation, claim), signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_verifies_only_for_its_device_incarnation_and_kind() {
        let key = DeviceKey::from_seed([1; 32]);
        let other = DeviceKey::from_seed([2; 32]);
        let device = key.device_id();
        let running = sign(&key, 7, Claim::Running);
        assert!(verifies(&device, 7, Claim::Running, &running));
        assert!(!verifies(&device, 8, Claim::Running, &running));
        assert!(!verifies(&device, 7, Claim::Left, &running));
        assert!(!verifies(&other.device_id(), 7, Claim::Running, &running));
        let left = sign(&key, 7, Claim::Left);
        assert!(verifies(&device, 7, Claim::Left, &left));
        assert!(!verifies(&device, 7, Claim::Running, &left));
    }
}
