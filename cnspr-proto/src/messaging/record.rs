//! What the messaging layer needs to survive a restart, as writes the daemon applies to its
//! store before it sends anything that follows them: the outbox, the counters, the events
//! kept for devices that were away, and what was handled (so nothing runs twice).
//!
//! Each [`Record`] has a key; a later record with the same key replaces the earlier one,
//! and [`Write::Delete`] removes it. After a restart the node is given every record left.

use serde::{Deserialize, Serialize};

use super::handled::Handled;
use super::tag::Tag;
use crate::identity::DeviceId;
use crate::store::codec::{read_changes, write_block};
use crate::store::sync::Change;
use crate::wire::cbor::CborError;
use crate::wire::compact::{CompactError, Reader, Writer};

/// One durable fact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    /// A direct message not yet delivered.
    Outbox {
        /// To whom.
        to: DeviceId,
        /// Its number in the sequence to `to`.
        seq: u64,
        /// What kind.
        tag: Tag,
        /// The message.
        #[serde(with = "serde_bytes")]
        payload: Vec<u8>,
        /// When it is given up, in Unix seconds.
        expires_unix_secs: u64,
    },
    /// The last number used for messages to `to`.
    DirectSent {
        /// The receiver.
        to: DeviceId,
        /// The number.
        seq: u64,
    },
    /// Messages from `from` were handled up to this number.
    DirectHandled {
        /// The sender.
        from: DeviceId,
        /// The number.
        seq: u64,
    },
    /// An event kept to hand on to devices that were away.
    Event {
        /// Who published it.
        origin: DeviceId,
        /// Its number.
        seq: u64,
        /// What kind.
        tag: Tag,
        /// The event.
        #[serde(with = "serde_bytes")]
        payload: Vec<u8>,
        /// When it is dropped, in Unix seconds.
        expires_unix_secs: u64,
    },
    /// The last number this device used for its events.
    EventPublished {
        /// The number.
        seq: u64,
    },
    /// Which events of `origin` were handled here.
    EventsHandled {
        /// The origin.
        origin: DeviceId,
        /// The numbers.
        handled: Handled,
    },
    /// One key of the replicated store.
    StoreKey {
        /// The key.
        key: String,
        /// Its state.
        register: crate::store::Register,
    },
    /// The store's write counter and version vectors.
    StoreMeta(crate::store::Meta),
}

/// A change to the durable state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Store the record under its key.
    Put(Record),
    /// Remove what is stored under the key.
    Delete(Vec<u8>),
}

/// Why stored bytes are not a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// A CBOR record that does not parse.
    #[error(transparent)]
    Cbor(#[from] CborError),
    /// A store key record that does not parse.
    #[error(transparent)]
    Compact(#[from] CompactError),
}

/// The first byte of a store key record (never the first byte of a CBOR record, which is
/// a map or a text string).
const COMPACT_STORE_KEY: u8 = 0;

const OUTBOX: u8 = 1;
const DIRECT_SENT: u8 = 2;
const DIRECT_HANDLED: u8 = 3;
const EVENT: u8 = 4;
const EVENT_PUBLISHED: u8 = 5;
const EVENTS_HANDLED: u8 = 6;
const STORE_KEY: u8 = 7;
const STORE_META: u8 = 8;

/// The key of a record about `device` and `seq` of some kind.
fn key(kind: u8, device: Option<&DeviceId>, seq: Option<u64>) -> Vec<u8> {
    let mut key = vec![kind];
    if let Some(device) = device {
        key.extend_from_slice(device.as_bytes());
    }
    if let Some(seq) = seq {
        key.extend_from_slice(&seq.to_be_bytes());
    }
    key
}

/// The key of an outbox entry.
pub fn outbox_key(to: &DeviceId, seq: u64) -> Vec<u8> {
    key(OUTBOX, Some(to), Some(seq))
}

/// The key of a kept event.
pub fn event_key(origin: &DeviceId, seq: u64) -> Vec<u8> {
    key(EVENT, Some(origin), Some(seq))
}

impl Record {
    /// The key it is stored under (records with equal keys replace each other).
    pub fn key(&self) -> Vec<u8> {
        match self {
            Record::Outbox { to, seq, .. } => outbox_key(to, *seq),
            Record::DirectSent { to, .. } => key(DIRECT_SENT, Some(to), None),
            Record::DirectHandled { from, .. } => key(DIRECT_HANDLED, Some(from), None),
            Record::Event { origin, seq, .. } => event_key(origin, *seq),
            Record::EventPublished { .. } => key(EVENT_PUBLISHED, None, None),
            Record::EventsHandled { origin, .. } => key(EVENTS_HANDLED, Some(origin), None),
            Record::StoreKey { key: name, .. } => {
                let mut stored = vec![STORE_KEY];
                stored.extend_from_slice(name.as_bytes());
                stored
            }
            Record::StoreMeta(_) => key(STORE_META, None, None),
        }
    }

    /// The record's bytes: a store key in the store's compact layout (it is written on
    /// every put), anything else as CBOR.
    pub fn encode(&self) -> Result<Vec<u8>, RecordError> {
        match self {
            Record::StoreKey { key, register } => {
                let mut out = Writer::new();
                out.u8(COMPACT_STORE_KEY);
                write_block(&mut out, std::iter::once((key.as_str(), register)));
                Ok(out.finish())
            }
            _ => Ok(crate::wire::cbor::encode(self)?),
        }
    }

    /// Parses stored bytes (the store is trusted, but a damaged record must not crash).
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        if let Some((&COMPACT_STORE_KEY, rest)) = bytes.split_first() {
            let mut input = Reader::new(rest);
            let mut changes = read_changes(&mut input)?;
            input.finish()?;
            let change = changes.pop().filter(|_| changes.is_empty());
            let Change { key, register } = change.ok_or(CompactError::Invalid("store key record"))?;
            return Ok(Record::StoreKey { key, register });
        }
        Ok(crate::wire::cbor::decode_bounded(
            bytes,
            super::wire::MAX_UNIT_BYTES + 64 * 1024,
        )?)
    }
}
