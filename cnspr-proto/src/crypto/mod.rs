//! The protocol's primitives, chosen once and forever: BLAKE2s-256 for hashing and key
//! derivation, ChaCha20-Poly1305 for authenticated encryption. X25519 lives in
//! [`crate::identity`], next to the keys it works on.

pub mod aead;
pub mod hash;
