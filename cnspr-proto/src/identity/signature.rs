//! Ed25519 signatures by device keys, and their check against a device ID.

use core::fmt;

use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};

use super::device_id::DeviceId;

/// Bytes of a signature.
pub const SIGNATURE_BYTES: usize = 64;

/// An Ed25519 signature (64 bytes; a CBOR byte string on the wire).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Signature(#[serde(with = "serde_bytes")] pub [u8; SIGNATURE_BYTES]);

impl DeviceId {
    /// Whether `signature` is this device's over `message`: strict Ed25519 (RFC 8032 with
    /// canonical encodings and no small-order keys), so that a message has no second valid
    /// signature a relay could swap in.
    pub fn verifies(&self, message: &[u8], signature: &Signature) -> bool {
        // A device key's sign bit is clear; decompressing the key (once, here) and the
        // strict check refuse the rest of what names no key.
        if !self.has_clear_sign() {
            return false;
        }
        super::verified::remembered(self, message, signature, || {
            let Ok(key) = VerifyingKey::from_bytes(self.as_bytes()) else {
                return false;
            };
            let signature = ed25519_dalek::Signature::from_bytes(&signature.0);
            key.verify_strict(message, &signature).is_ok()
        })
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Signature(")?;
        for byte in &self.0[..8] {
            write!(f, "{byte:02x}")?;
        }
        f.write_str("…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::DeviceKey;

    #[test]
    fn a_signature_verifies_for_its_message_and_signer_only() {
        let alice = DeviceKey::from_seed([1; 32]);
        let bob = DeviceKey::from_seed([2; 32]);
        let signature = alice.sign(b"roster entry");
        assert!(alice.device_id().verifies(b"roster entry", &signature));
        assert!(!alice.device_id().verifies(b"roster entrx", &signature));
        assert!(!bob.device_id().verifies(b"roster entry", &signature));
        let mut flipped = signature;
        flipped.0[10] ^= 1;
        assert!(!alice.device_id().verifies(b"roster entry", &flipped));
    }

    #[test]
    fn an_id_that_names_no_key_verifies_nothing() {
        let signature = DeviceKey::from_seed([1; 32]).sign(b"x");
        // The identity point (small order) and a sign bit set.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(!DeviceId::from_bytes(identity).verifies(b"x", &signature));
        let mut negated = *DeviceKey::from_seed([1; 32]).device_id().as_bytes();
        negated[31] |= 0x80;
        assert!(!DeviceId::from_bytes(negated).verifies(b"x", &signature));
    }

    #[test]
    fn serde_is_a_64_byte_string() {
        let signature = DeviceKey::from_seed([3; 32]).sign(b"x");
        let mut buf = Vec::new();
        ciborium::into_writer(&signature, &mut buf).expect("writing to a Vec cannot fail");
        assert_eq!(&buf[..2], &[0x58, 64]);
        let back: Signature = ciborium::from_reader(buf.as_slice()).expect("valid encoding");
        assert_eq!(back, signature);
    }
}
