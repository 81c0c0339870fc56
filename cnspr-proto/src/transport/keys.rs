//! One direction pair of transport keys from one finished handshake, with the send counter
//! and the receive replay window that belong to them.

use crate::crypto::aead::{CipherKey, OpenError};
use crate::crypto::hash::Hash;
use crate::noise::TransportSecrets;
use crate::time::Timestamp;
use crate::transport::replay::ReplayWindow;
use crate::wire::{data_header, DATA_HEADER_BYTES};

/// No key ever sends more messages than this, whatever the configuration, so the counter
/// stays far from 2^64-1 (which Noise reserves) and from wrapping. WireGuard's bound.
pub const HARD_REJECT_AFTER_MESSAGES: u64 = u64::MAX - (1 << 13);

/// Why a payload could not be sealed. Nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The key has sent as many messages as it may.
    #[error("transport key exhausted its message counter")]
    CounterExhausted,
    /// No handshake has produced keys that may still be used.
    #[error("no usable transport keys for this peer")]
    NoUsableKeys,
}

/// Keys and counters of one handshake's transport session.
pub struct TransportKeys {
    send: CipherKey,
    receive: CipherKey,
    local_index: u32,
    remote_index: u32,
    next_send_counter: u64,
    replay: ReplayWindow,
    created: Timestamp,
    handshake_hash: Hash,
}

impl std::fmt::Debug for TransportKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransportKeys")
            .field("local_index", &self.local_index)
            .field("remote_index", &self.remote_index)
            .field("next_send_counter", &self.next_send_counter)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

impl TransportKeys {
    /// Keys from a finished handshake. `local_index` is what the peer writes in the data
    /// packets it sends us; `remote_index` what we write in ours.
    pub fn new(secrets: &TransportSecrets, local_index: u32, remote_index: u32, created: Timestamp) -> Self {
        Self {
            send: CipherKey::new(&secrets.send_key),
            receive: CipherKey::new(&secrets.receive_key),
            local_index,
            remote_index,
            next_send_counter: 0,
            replay: ReplayWindow::default(),
            created,
            handshake_hash: secrets.handshake_hash,
        }
    }

    /// Appends a whole Data packet carrying `payload` to `out`.
    pub fn seal(&mut self, payload: &[u8], out: &mut Vec<u8>, max_messages: u64) -> Result<(), SealError> {
        let counter = self.next_send_counter;
        if counter >= max_messages.min(HARD_REJECT_AFTER_MESSAGES) {
            return Err(SealError::CounterExhausted);
        }
        self.next_send_counter += 1;
        let header = data_header(self.remote_index, counter);
        out.reserve(DATA_HEADER_BYTES + payload.len() + crate::crypto::aead::TAG_BYTES);
        out.extend_from_slice(&header);
        let start = out.len();
        out.extend_from_slice(payload);
        self.send.seal_in_place(counter, &header, out, start);
        Ok(())
    }

    /// Authenticates and decrypts a Data packet's `ciphertext` in place, given its header
    /// fields; returns the plaintext length. Replays, counters outside the window and
    /// forgeries are refused, and a refused packet changes nothing.
    pub fn open(&mut self, counter: u64, ciphertext: &mut [u8]) -> Result<usize, OpenError> {
        if counter >= HARD_REJECT_AFTER_MESSAGES || !self.replay.would_accept(counter) {
            return Err(OpenError);
        }
        let header = data_header(self.local_index, counter);
        let len = self.receive.open_in_place(counter, &header, ciphertext)?;
        self.replay.record(counter);
        Ok(len)
    }

    /// The index the peer addresses these keys by.
    pub fn local_index(&self) -> u32 {
        self.local_index
    }

    /// The index we address the peer's keys by.
    pub fn remote_index(&self) -> u32 {
        self.remote_index
    }

    /// When the handshake that made these keys finished.
    pub fn created(&self) -> Timestamp {
        self.created
    }

    /// Messages sent so far.
    pub fn sent(&self) -> u64 {
        self.next_send_counter
    }

    /// The handshake hash, which names these keys uniquely.
    pub fn handshake_hash(&self) -> &Hash {
        &self.handshake_hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (TransportKeys, TransportKeys) {
        let secrets = |send: u8, receive: u8| TransportSecrets {
            send_key: [send; 32],
            receive_key: [receive; 32],
            handshake_hash: [0; 32],
            remote_static: crate::identity::PublicKey([0; 32]),
        };
        let now = Timestamp::ZERO;
        (
            TransportKeys::new(&secrets(1, 2), 10, 20, now),
            TransportKeys::new(&secrets(2, 1), 20, 10, now),
        )
    }

    fn open_packet(keys: &mut TransportKeys, packet: &[u8]) -> Result<Vec<u8>, OpenError> {
        let counter = u64::from_le_bytes(packet[6..14].try_into().expect("8 counter bytes"));
        let mut body = packet[DATA_HEADER_BYTES..].to_vec();
        let len = keys.open(counter, &mut body)?;
        body.truncate(len);
        Ok(body)
    }

    #[test]
    fn counters_are_explicit_and_increase() {
        let (mut alice, mut bob) = pair();
        for expected in 0..3u64 {
            let mut packet = Vec::new();
            alice.seal(b"x", &mut packet, u64::MAX).expect("seals");
            assert_eq!(packet[6..14], expected.to_le_bytes());
            assert_eq!(open_packet(&mut bob, &packet).as_deref(), Ok(&b"x"[..]));
        }
    }

    #[test]
    fn the_reserved_nonce_is_never_used_whatever_the_configuration() {
        let (mut alice, _) = pair();
        alice.next_send_counter = HARD_REJECT_AFTER_MESSAGES - 1;
        let mut packet = Vec::new();
        assert_eq!(alice.seal(b"last", &mut packet, u64::MAX), Ok(()));
        assert_eq!(
            alice.seal(b"one too many", &mut packet, u64::MAX),
            Err(SealError::CounterExhausted)
        );
        const { assert!(HARD_REJECT_AFTER_MESSAGES < u64::MAX) };
    }

    #[test]
    fn a_configured_message_limit_is_honoured() {
        let (mut alice, _) = pair();
        let mut packet = Vec::new();
        for _ in 0..3 {
            alice.seal(b"", &mut packet, 3).expect("within the limit");
        }
        assert_eq!(alice.seal(b"", &mut packet, 3), Err(SealError::CounterExhausted));
    }

    #[test]
    fn the_receiver_refuses_the_reserved_counters() {
        let (mut alice, mut bob) = pair();
        alice.next_send_counter = u64::MAX;
        let mut packet = Vec::new();
        // Seal by hand past the limit to prove the receiver checks too.
        let header = data_header(alice.remote_index, u64::MAX);
        packet.extend_from_slice(&header);
        alice.send.seal(u64::MAX, &header, b"evil", &mut packet);
        assert_eq!(open_packet(&mut bob, &packet), Err(OpenError));
    }
}
