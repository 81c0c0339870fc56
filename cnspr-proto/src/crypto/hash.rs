//! BLAKE2s-256 with the HMAC and HKDF constructions of the Noise specification (§4.3).

use blake2::{Blake2s256, Digest};
use zeroize::Zeroize;

/// Output size of the hash in bytes (Noise's `HASHLEN`).
pub const HASH_BYTES: usize = 32;

/// Input block size of BLAKE2s in bytes (Noise's `BLOCKLEN`), used by HMAC.
const BLOCK_BYTES: usize = 64;

/// One hash output.
pub type Hash = [u8; HASH_BYTES];

/// BLAKE2s-256 of the concatenation of `parts`.
pub fn hash(parts: &[&[u8]]) -> Hash {
    let mut hasher = Blake2s256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// HMAC-BLAKE2s (RFC 2104) of the concatenation of `parts` under a `HASH_BYTES` key.
///
/// Noise only ever keys HMAC with a chaining key or an HKDF temporary key, both
/// `HASH_BYTES` long, so the key never needs hashing down to block size.
pub fn hmac(key: &Hash, parts: &[&[u8]]) -> Hash {
    let mut inner_pad = [0x36u8; BLOCK_BYTES];
    let mut outer_pad = [0x5cu8; BLOCK_BYTES];
    for (i, byte) in key.iter().enumerate() {
        inner_pad[i] ^= byte;
        outer_pad[i] ^= byte;
    }
    let mut inner = Blake2s256::new();
    inner.update(inner_pad);
    for part in parts {
        inner.update(part);
    }
    let inner_hash: Hash = inner.finalize().into();
    let mut outer = Blake2s256::new();
    outer.update(outer_pad);
    outer.update(inner_hash);
    inner_pad.zeroize();
    outer_pad.zeroize();
    outer.finalize().into()
}

/// Noise's `HKDF(chaining_key, input_key_material, 2)`.
pub fn hkdf2(chaining_key: &Hash, input_key_material: &[u8]) -> (Hash, Hash) {
    let mut temp_key = hmac(chaining_key, &[input_key_material]);
    let first = hmac(&temp_key, &[&[1]]);
    let second = hmac(&temp_key, &[&first, &[2]]);
    temp_key.zeroize();
    (first, second)
}

/// Noise's `HKDF(chaining_key, input_key_material, 3)`.
pub fn hkdf3(chaining_key: &Hash, input_key_material: &[u8]) -> (Hash, Hash, Hash) {
    let mut temp_key = hmac(chaining_key, &[input_key_material]);
    let first = hmac(&temp_key, &[&[1]]);
    let second = hmac(&temp_key, &[&first, &[2]]);
    let third = hmac(&temp_key, &[&second, &[3]]);
    temp_key.zeroize();
    (first, second, third)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_of_empty_input_matches_the_blake2s_reference() {
        // RFC 7693 Appendix B / the BLAKE2 reference: BLAKE2s-256("").
        let expected = "69217a3079908094e11121d042354a7c1f55b6482ca1a51e1b250dfd1ed0eef9";
        let got: String = hash(&[]).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn parts_hash_like_their_concatenation() {
        assert_eq!(hash(&[b"ab", b"cd"]), hash(&[b"abcd"]));
        assert_eq!(hmac(&[7; 32], &[b"ab", b"cd"]), hmac(&[7; 32], &[b"abcd"]));
    }

    #[test]
    fn hkdf_outputs_differ_from_each_other_and_chain() {
        let (a, b, c) = hkdf3(&[1; 32], b"ikm");
        let (a2, b2) = hkdf2(&[1; 32], b"ikm");
        assert_eq!((a, b), (a2, b2));
        assert!(a != b && b != c && a != c);
    }
}
