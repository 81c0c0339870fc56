//! How replicas of the store reach each other: local writes are pushed at once to every
//! reachable device, and whenever a device becomes reachable each side says what it has
//! (a version vector: for each device, every write up to this number is reflected here)
//! and gets back only the keys holding writes beyond it, in parts of bounded size. Once
//! all parts of such a catch-up arrived, the receiver has everything the sender had.

use serde::{Deserialize, Serialize};

use super::Register;
use crate::identity::DeviceId;
use crate::wire::cbor::{self, CborError};

/// Encoded bytes of changes per catch-up part (well under the messaging layer's 1 MiB).
pub const PART_BYTES_MAX: usize = 512 << 10;

/// One key's state, as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// The key.
    pub key: String,
    /// Its state at the sender.
    pub register: Register,
}

/// A store message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StoreMessage {
    /// Keys just written on the sender.
    Push {
        /// Their states.
        changes: Vec<Change>,
    },
    /// What the sender has; answer with what it lacks.
    Need {
        /// The sender's version vector.
        have: Vec<(DeviceId, u64)>,
        /// Whether the receiver should also say what it has (the sender may have missed
        /// that the receiver was away, and so hold writes it never pushed).
        reply: bool,
    },
    /// Part of the answer to a `Need`.
    CatchUp {
        /// Names this answer (per sender).
        stream: u64,
        /// Which part, from 0.
        part: u32,
        /// How many parts.
        parts: u32,
        /// Keys with writes the receiver lacks.
        changes: Vec<Change>,
        /// The sender's version vector: the receiver has it all once every part arrived.
        have: Vec<(DeviceId, u64)>,
    },
}

impl StoreMessage {
    /// The message's bytes.
    pub fn encode(&self) -> Result<Vec<u8>, CborError> {
        cbor::encode(self)
    }

    /// Parses a message; never panics, refuses anything over the messaging unit size.
    pub fn decode(bytes: &[u8]) -> Result<Self, CborError> {
        cbor::decode_bounded(bytes, crate::messaging::MAX_PAYLOAD_BYTES)
    }

    /// Cuts `changes` into catch-up parts of at most [`PART_BYTES_MAX`] encoded bytes.
    pub fn catch_up(stream: u64, changes: Vec<Change>, have: Vec<(DeviceId, u64)>) -> Vec<StoreMessage> {
        let mut batches: Vec<Vec<Change>> = vec![Vec::new()];
        let mut size = 0;
        for change in changes {
            let bytes = cbor::encode(&change).map_or(0, |b| b.len());
            if size + bytes > PART_BYTES_MAX && batches.last().is_some_and(|b| !b.is_empty()) {
                batches.push(Vec::new());
                size = 0;
            }
            size += bytes;
            if let Some(batch) = batches.last_mut() {
                batch.push(change);
            }
        }
        let parts = batches.len() as u32;
        batches
            .into_iter()
            .enumerate()
            .map(|(part, changes)| StoreMessage::CatchUp {
                stream,
                part: part as u32,
                parts,
                changes,
                have: have.clone(),
            })
            .collect()
    }
}
