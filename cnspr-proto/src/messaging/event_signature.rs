//! What an event's origin signs, so that a relay can hand an event on but never make one:
//! every device checks the origin's signature before it keeps or runs anything for it.
//!
//! The signature covers a BLAKE2s digest of the origin, the event's number, its tag and its
//! payload, under a label of its own. Not its lifetime: that shrinks on every hop, and every
//! device bounds it by its own `message_ttl`.

use crate::crypto::hash::{hash, Hash};
use crate::identity::{DeviceId, DeviceKey, Signature};

use super::tag::Tag;

const LABEL: &[u8] = b"cnspr event v1";

/// The digest an event's signature is made over.
fn digest(origin: &DeviceId, seq: u64, tag: &Tag, payload: &[u8]) -> Hash {
    let tag = tag.as_str().as_bytes();
    // The tag's length keeps the boundary between tag and payload unambiguous.
    let tag_len = (tag.len() as u64).to_le_bytes();
    hash(&[
        LABEL,
        origin.as_bytes(),
        &seq.to_le_bytes(),
        &tag_len,
        tag,
        payload,
    ])
}

/// The signature of this device's event number `seq`.
pub fn sign(key: &DeviceKey, seq: u64, tag: &Tag, payload: &[u8]) -> Signature {
    key.sign(&digest(&key.device_id(), seq, tag, payload))
}

/// Whether `signature` is `origin`'s over its event number `seq`.
pub fn verifies(origin: &DeviceId, seq: u64, tag: &Tag, payload: &[u8], signature: &Signature) -> bool {
    origin.verifies(&digest(origin, seq, tag, payload), signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_holds_for_its_event_only() {
        let key = DeviceKey::from_seed([4; 32]);
        let origin = key.device_id();
        let tag = Tag::new("note").expect("valid tag");
        let other_tag = Tag::new("notes").expect("valid tag");
        let signature = sign(&key, 7, &tag, b"hello");
        assert!(verifies(&origin, 7, &tag, b"hello", &signature));
        assert!(
            !verifies(&origin, 8, &tag, b"hello", &signature),
            "another number"
        );
        assert!(
            !verifies(&origin, 7, &other_tag, b"hello", &signature),
            "another tag"
        );
        assert!(
            !verifies(&origin, 7, &tag, b"hellO", &signature),
            "another payload"
        );
        let other = DeviceKey::from_seed([5; 32]).device_id();
        assert!(!verifies(&other, 7, &tag, b"hello", &signature), "another origin");
    }

    #[test]
    fn tag_and_payload_cannot_trade_bytes() {
        let key = DeviceKey::from_seed([4; 32]);
        let (short, long) = (Tag::new("a").expect("valid"), Tag::new("ab").expect("valid"));
        let signature = sign(&key, 1, &long, b"c");
        assert!(!verifies(&key.device_id(), 1, &short, b"bc", &signature));
    }
}
