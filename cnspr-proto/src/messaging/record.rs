//! What the messaging layer needs to survive a restart, as writes the daemon applies to its
//! store before it sends anything that follows them: the outbox, the counters, the events
//! kept for devices that were away, and what was handled (so nothing runs twice). See
//! [`crate::durable`] for how records are written and given back.

use serde::{Deserialize, Serialize};

use super::handled::Handled;
use super::tag::Tag;
use crate::identity::{DeviceId, Signature};
use crate::wire::cbor::CborError;

/// One durable fact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessagingRecord {
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
        /// Its origin's signature, to hand on with it.
        signature: Signature,
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
}

const OUTBOX: u8 = 1;
const DIRECT_SENT: u8 = 2;
const DIRECT_HANDLED: u8 = 3;
const EVENT: u8 = 4;
const EVENT_PUBLISHED: u8 = 5;
const EVENTS_HANDLED: u8 = 6;

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

impl MessagingRecord {
    /// The key it is stored under (records with equal keys replace each other).
    pub fn key(&self) -> Vec<u8> {
        match self {
            MessagingRecord::Outbox { to, seq, .. } => outbox_key(to, *seq),
            MessagingRecord::DirectSent { to, .. } => key(DIRECT_SENT, Some(to), None),
            MessagingRecord::DirectHandled { from, .. } => key(DIRECT_HANDLED, Some(from), None),
            MessagingRecord::Event { origin, seq, .. } => event_key(origin, *seq),
            MessagingRecord::EventPublished { .. } => key(EVENT_PUBLISHED, None, None),
            MessagingRecord::EventsHandled { origin, .. } => key(EVENTS_HANDLED, Some(origin), None),
        }
    }

    /// The record's bytes (CBOR).
    pub fn encode(&self) -> Result<Vec<u8>, CborError> {
        crate::wire::cbor::encode(self)
    }

    /// Parses stored bytes (the disk is trusted, but a damaged record must not crash).
    pub fn decode(bytes: &[u8]) -> Result<Self, CborError> {
        crate::wire::cbor::decode_bounded(bytes, super::wire::MAX_UNIT_BYTES + 64 * 1024)
    }
}
