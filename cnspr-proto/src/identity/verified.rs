//! Signatures already found valid, remembered per thread.
//!
//! The same signed facts (roster entries, signed heads, membership claims) reach a device
//! from every peer that passes them on, and the simulator runs hundreds of devices on one
//! thread that each check the same facts. A check is a pure function of the key, the
//! message and the signature, so a triple found valid once is valid again: remembering it
//! saves the curve arithmetic (about 60 µs) for the cost of one BLAKE2s. Only valid
//! triples are kept, since anyone can make invalid ones in any number.

use std::cell::RefCell;
use std::collections::BTreeSet;

use super::{DeviceId, Signature};
use crate::crypto::hash::{hash, Hash};

/// Most triples remembered (about 400 KiB); past it the memory starts over. A device
/// that signs many facts can so empty it, which costs checks, never a wrong answer.
const CAPACITY: usize = 1 << 13;

thread_local! {
    static VALID: RefCell<BTreeSet<Hash>> = const { RefCell::new(BTreeSet::new()) };
}

/// What names one (key, signature, message) triple: key and signature are fixed-length,
/// so their concatenation with the message is unambiguous.
fn triple(device: &DeviceId, message: &[u8], signature: &Signature) -> Hash {
    hash(&[device.as_bytes(), &signature.0, message])
}

/// `verify`'s answer for the triple, taken from memory if it was found valid before.
pub(super) fn remembered(
    device: &DeviceId,
    message: &[u8],
    signature: &Signature,
    verify: impl FnOnce() -> bool,
) -> bool {
    let triple = triple(device, message, signature);
    if VALID.with(|valid| valid.borrow().contains(&triple)) {
        return true;
    }
    let valid = verify();
    if valid {
        VALID.with(|remembered| {
            let mut remembered = remembered.borrow_mut();
            if remembered.len() >= CAPACITY {
                remembered.clear();
            }
            remembered.insert(triple);
        });
    }
    valid
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn a_valid_triple_is_checked_once_and_an_invalid_one_every_time() {
        let device = DeviceId::from_bytes([3; 32]);
        let signature = Signature([5; 64]);
        let checks = Cell::new(0);
        let check = |answer: bool| {
            remembered(&device, b"fact", &signature, || {
                checks.set(checks.get() + 1);
                answer
            })
        };
        assert!(!check(false));
        assert!(!check(false));
        assert_eq!(checks.get(), 2, "an invalid triple is never remembered");
        assert!(check(true));
        assert!(check(false), "found valid before, so not checked again");
        assert_eq!(checks.get(), 3);
        let other = remembered(&device, b"other fact", &signature, || false);
        assert!(!other, "another message is another triple");
    }
}
