//! The Noise Protocol Framework (revision 34), just the part cnspr uses: the `XX` pattern
//! for devices that already trust each other and `XXpsk3` for pairing with an invite
//! token's secret, over X25519, ChaCha20-Poly1305 and BLAKE2s.
//!
//! This module knows nothing about datagrams or peers; [`crate::transport`] carries its
//! messages and takes over its keys.

mod handshake;
mod symmetric;

pub use handshake::{Handshake, HandshakeError, Pattern, Role, TransportSecrets};

/// Bytes of an X25519 public key on the wire (Noise's `DHLEN`).
pub const DH_BYTES: usize = 32;
