//! What devices say to each other about the roster.
//!
//! Anti-entropy in two steps: a device sends its roster [`RosterMessage::Digest`] whenever
//! a session with a peer is (re)established; a peer whose digest differs answers with all
//! of its entries and asks for the other side's, so one exchange leaves both equal. A
//! change made here is pushed at once to every live member.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::RosterEntry;
use crate::identity::DeviceId;
use crate::transport::MAX_PAYLOAD_BYTES;
use crate::wire::cbor::{self, CborError};

/// Entries per message: six of the largest fit one datagram (checked by a test).
pub const ENTRIES_PER_MESSAGE: usize = 6;

/// One roster entry as sent, with where the sender last reached the device: a peer that
/// has no address for it yet can try that one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedEntry(pub DeviceId, pub RosterEntry, pub Option<SocketAddr>);

/// A roster message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RosterMessage {
    /// The sender's roster fingerprint.
    Digest(u64),
    /// Some of the sender's entries.
    Entries {
        /// The entries (at most [`ENTRIES_PER_MESSAGE`]).
        entries: Vec<SharedEntry>,
        /// Whether the receiver should answer with all of its own entries.
        reply: bool,
    },
}

impl RosterMessage {
    /// The CBOR bytes of this message.
    pub fn encode(&self) -> Result<Vec<u8>, CborError> {
        cbor::encode(self)
    }

    /// Parses a message; never panics, refuses anything over one datagram or with too
    /// many entries.
    pub fn decode(bytes: &[u8]) -> Result<Self, CborError> {
        let message: Self = cbor::decode_bounded(bytes, MAX_PAYLOAD_BYTES)?;
        match &message {
            RosterMessage::Entries { entries, .. } if entries.len() > ENTRIES_PER_MESSAGE => {
                Err(CborError::Semantic {
                    offset: None,
                    message: format!("more than {ENTRIES_PER_MESSAGE} roster entries"),
                })
            }
            _ => Ok(message),
        }
    }

    /// `entries` cut into messages that each fit one datagram.
    pub fn split(entries: Vec<SharedEntry>, reply: bool) -> Vec<RosterMessage> {
        entries
            .chunks(ENTRIES_PER_MESSAGE)
            .map(|chunk| RosterMessage::Entries {
                entries: chunk.to_vec(),
                reply,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roster::MAX_NAME_BYTES;
    use proptest::prelude::*;

    #[test]
    fn the_largest_entries_fit_one_datagram_with_room_for_the_channel_byte() {
        let entry = SharedEntry(
            DeviceId::from_bytes([0xff; 32]),
            RosterEntry {
                // Multi-byte characters: the longest name in bytes.
                name: "é".repeat(MAX_NAME_BYTES / 2),
                version: u64::MAX,
                removed: true,
            },
            Some(
                "[2001:db8:ffff:ffff:ffff:ffff:ffff:ffff]:65535"
                    .parse()
                    .expect("valid"),
            ),
        );
        let message = RosterMessage::Entries {
            entries: vec![entry; ENTRIES_PER_MESSAGE],
            reply: true,
        };
        let bytes = message.encode().expect("encodes");
        assert!(bytes.len() < MAX_PAYLOAD_BYTES, "{} bytes", bytes.len());
        assert_eq!(RosterMessage::decode(&bytes), Ok(message));
    }

    #[test]
    fn too_many_entries_are_refused() {
        let entry = SharedEntry(
            DeviceId::from_bytes([1; 32]),
            RosterEntry {
                name: "a".into(),
                version: 1,
                removed: false,
            },
            None,
        );
        let message = RosterMessage::Entries {
            entries: vec![entry; ENTRIES_PER_MESSAGE + 1],
            reply: false,
        };
        let bytes = message.encode().expect("encodes");
        assert!(RosterMessage::decode(&bytes).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1500)) {
            let _ = RosterMessage::decode(&bytes);
        }
    }
}
