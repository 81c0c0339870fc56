//! What the messaging layer sends: [`Unit`]s (a direct message, an event, a catch-up
//! summary, a query, an answer), each carried as one or more [`Packet::Chunk`]s that the
//! receiver acknowledges one by one ([`Packet::Ack`]).
//!
//! Chunk packets are a fixed binary layout (their bulk is opaque bytes); units are bounded
//! CBOR.

use serde::{Deserialize, Serialize};

use super::tag::Tag;
use crate::identity::{DeviceId, Signature};
use crate::roster::MAX_ROSTER_DEVICES;
use crate::store::sync::MAX_STORE_MESSAGE_BYTES;
use crate::wire::cbor::{self, CborError};

/// Largest message, event, query or answer payload.
pub const MAX_PAYLOAD_BYTES: usize = 1 << 20;
/// Unit bytes one chunk carries (every chunk but the last is full): with the chunk header,
/// the channel byte and the encryption overhead a datagram stays under 1280 bytes, so it
/// crosses any IPv6 path unfragmented.
pub const CHUNK_BYTES: usize = 1200;
/// Largest encoded unit: the largest payload (a store message) plus room for its tag and
/// fields.
pub const MAX_UNIT_BYTES: usize = MAX_STORE_MESSAGE_BYTES + 1024;
/// Most chunks of one unit.
pub const MAX_CHUNKS: u32 = MAX_UNIT_BYTES.div_ceil(CHUNK_BYTES) as u32;
/// Most chunk indices one acknowledgement carries.
pub const MAX_ACKED_PER_PACKET: usize = 64;

const CHUNK: u8 = 0;
const ACK: u8 = 1;
const ACK_COMPLETE: u8 = 2;
const CHUNK_HEADER_BYTES: usize = 1 + 8 + 4 + 4;

/// One messaging packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// Part of a unit.
    Chunk {
        /// The sender's transfer number.
        transfer: u64,
        /// Which part (from 0).
        index: u32,
        /// How many parts the unit has.
        count: u32,
        /// The part's bytes.
        data: Vec<u8>,
    },
    /// Parts received.
    Ack {
        /// The transfer.
        transfer: u64,
        /// The parts' indices (at most [`MAX_ACKED_PER_PACKET`]).
        indices: Vec<u32>,
        /// Whether the receiver has the whole unit and took it. Only this ends a
        /// transfer: every part acknowledged without it means the receiver lost the
        /// parts it had (it restarted), and the sender sends them all again.
        complete: bool,
    },
}

/// Why a messaging packet or unit was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Not a well-formed packet.
    #[error("malformed messaging packet")]
    Malformed,
    /// A unit that does not parse.
    #[error("malformed unit: {0}")]
    Unit(#[from] CborError),
}

impl Packet {
    /// The chunks that carry `unit` as transfer `transfer`, all at once (an empty unit is
    /// one empty chunk): what a peer that sends a unit whole puts on the wire.
    pub fn chunks_of(transfer: u64, unit: &[u8]) -> Vec<Packet> {
        let count = unit.len().div_ceil(CHUNK_BYTES).max(1) as u32;
        let parts: Vec<&[u8]> = if unit.is_empty() {
            vec![unit]
        } else {
            unit.chunks(CHUNK_BYTES).collect()
        };
        parts
            .into_iter()
            .zip(0..)
            .map(|(data, index)| Packet::Chunk {
                transfer,
                index,
                count,
                data: data.to_vec(),
            })
            .collect()
    }

    /// The packet's bytes.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Packet::Chunk {
                transfer,
                index,
                count,
                data,
            } => {
                let mut out = Vec::with_capacity(CHUNK_HEADER_BYTES + data.len());
                out.push(CHUNK);
                out.extend_from_slice(&transfer.to_le_bytes());
                out.extend_from_slice(&index.to_le_bytes());
                out.extend_from_slice(&count.to_le_bytes());
                out.extend_from_slice(data);
                out
            }
            Packet::Ack {
                transfer,
                indices,
                complete,
            } => {
                let mut out = vec![if *complete { ACK_COMPLETE } else { ACK }];
                out.extend_from_slice(&transfer.to_le_bytes());
                for index in indices.iter().take(MAX_ACKED_PER_PACKET) {
                    out.extend_from_slice(&index.to_le_bytes());
                }
                out
            }
        }
    }

    /// Parses a packet; never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let (&kind, rest) = bytes.split_first().ok_or(WireError::Malformed)?;
        let (transfer, rest) = rest.split_at_checked(8).ok_or(WireError::Malformed)?;
        let transfer = u64::from_le_bytes(transfer.try_into().map_err(|_| WireError::Malformed)?);
        let u32_at = |b: &[u8]| {
            b.try_into()
                .map(u32::from_le_bytes)
                .map_err(|_| WireError::Malformed)
        };
        match kind {
            CHUNK => {
                let (index, rest) = rest.split_at_checked(4).ok_or(WireError::Malformed)?;
                let (count, data) = rest.split_at_checked(4).ok_or(WireError::Malformed)?;
                let (index, count) = (u32_at(index)?, u32_at(count)?);
                let sane = (1..=MAX_CHUNKS).contains(&count) && index < count && data.len() <= CHUNK_BYTES;
                if !sane || data.is_empty() {
                    return Err(WireError::Malformed);
                }
                Ok(Packet::Chunk {
                    transfer,
                    index,
                    count,
                    data: data.to_vec(),
                })
            }
            ACK | ACK_COMPLETE => {
                if rest.len() % 4 != 0 || rest.is_empty() || rest.len() / 4 > MAX_ACKED_PER_PACKET {
                    return Err(WireError::Malformed);
                }
                let indices = rest.chunks_exact(4).map(u32_at).collect::<Result<_, _>>()?;
                Ok(Packet::Ack {
                    transfer,
                    indices,
                    complete: kind == ACK_COMPLETE,
                })
            }
            _ => Err(WireError::Malformed),
        }
    }
}

/// What one device delivers to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Unit {
    /// A direct message; `seq` numbers the sender's messages to this receiver.
    Direct {
        /// Order and deduplication.
        seq: u64,
        /// What kind.
        tag: Tag,
        /// The message.
        #[serde(with = "serde_bytes")]
        payload: Vec<u8>,
        /// Seconds of its lifetime left when sent.
        ttl_secs: u64,
    },
    /// An event for every device; `(origin, seq)` names it everywhere.
    Event {
        /// Who published it.
        origin: DeviceId,
        /// The origin's event number.
        seq: u64,
        /// What kind.
        tag: Tag,
        /// The event.
        #[serde(with = "serde_bytes")]
        payload: Vec<u8>,
        /// Seconds of its lifetime left when sent: each device keeps it that long, to hand
        /// it on to devices that were away.
        ttl_secs: u64,
        /// The origin's signature of it: checked by every device before anything else.
        signature: Signature,
    },
    /// Which events the sender has handled: for each origin, every event up to this
    /// number. The receiver sends what is missing.
    Summary {
        /// `(origin, handled up to)`.
        handled: Vec<(DeviceId, u64)>,
        /// Whether the receiver should answer with its own summary if it is ahead.
        reply: bool,
        /// Send the events of these origins only (none named: of every origin). Asked
        /// when events refused for a full run queue are fetched back.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        origins: Vec<DeviceId>,
    },
    /// A question for the receiver's handlers.
    Query {
        /// Matches the answers.
        id: u64,
        /// What kind.
        tag: Tag,
        /// The question.
        #[serde(with = "serde_bytes")]
        payload: Vec<u8>,
    },
    /// One answer to a query.
    Answer {
        /// The query.
        id: u64,
        /// The answer.
        #[serde(with = "serde_bytes")]
        payload: Vec<u8>,
    },
    /// A message of the replicated store (`crate::store::sync`), carried reliably.
    Store(#[serde(with = "serde_bytes")] Vec<u8>),
}

impl Unit {
    /// The unit's bytes.
    pub fn encode(&self) -> Result<Vec<u8>, CborError> {
        cbor::encode(self)
    }

    /// Parses a unit; never panics, refuses anything oversized.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let unit: Unit = cbor::decode_bounded(bytes, MAX_UNIT_BYTES)?;
        let within = match &unit {
            Unit::Direct { payload, .. }
            | Unit::Event { payload, .. }
            | Unit::Query { payload, .. }
            | Unit::Answer { payload, .. } => payload.len() <= MAX_PAYLOAD_BYTES,
            // A store message has its own, larger bound: a key whose siblings each hold a
            // value of the store's largest size.
            Unit::Store(bytes) => bytes.len() <= MAX_STORE_MESSAGE_BYTES,
            Unit::Summary { handled, origins, .. } => {
                handled.len() <= MAX_ROSTER_DEVICES && origins.len() <= MAX_ROSTER_DEVICES
            }
        };
        if !within {
            return Err(WireError::Malformed);
        }
        Ok(unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn packets_round_trip_and_a_full_chunk_fits_a_small_datagram() {
        let chunk = Packet::Chunk {
            transfer: u64::MAX,
            index: MAX_CHUNKS - 1,
            count: MAX_CHUNKS,
            data: vec![7; CHUNK_BYTES],
        };
        let bytes = chunk.encode();
        // Channel byte + chunk, then the 14-byte data header and 16-byte tag: under 1280.
        assert!(1 + bytes.len() + 14 + 16 <= 1280, "{}", bytes.len());
        assert_eq!(Packet::decode(&bytes), Ok(chunk));
        for complete in [false, true] {
            let ack = Packet::Ack {
                transfer: 3,
                indices: vec![0, 5, 9],
                complete,
            };
            assert_eq!(Packet::decode(&ack.encode()), Ok(ack));
        }
    }

    #[test]
    fn insane_chunks_are_refused() {
        let bad = |index: u32, count: u32, len: usize| {
            let mut bytes = vec![CHUNK];
            bytes.extend_from_slice(&1u64.to_le_bytes());
            bytes.extend_from_slice(&index.to_le_bytes());
            bytes.extend_from_slice(&count.to_le_bytes());
            bytes.extend(std::iter::repeat_n(0, len));
            Packet::decode(&bytes)
        };
        assert!(bad(1, 1, 10).is_err(), "index beyond count");
        assert!(bad(0, 0, 10).is_err(), "no chunks");
        assert!(bad(0, MAX_CHUNKS + 1, 10).is_err(), "too many chunks");
        assert!(bad(0, 1, CHUNK_BYTES + 1).is_err(), "oversized chunk");
        assert!(bad(0, 1, 0).is_err(), "empty chunk");
        assert!(bad(0, 1, 1).is_ok());
    }

    #[test]
    fn units_round_trip_and_oversized_payloads_are_refused() {
        let unit = Unit::Event {
            origin: DeviceId::from_bytes([1; 32]),
            seq: 9,
            tag: Tag::new("util.notify").expect("valid"),
            payload: vec![0xab; 1000],
            ttl_secs: 60,
            signature: Signature([7; 64]),
        };
        let bytes = unit.encode().expect("encodes");
        assert!(
            bytes.len() < 1200,
            "payload bytes are a CBOR byte string: {}",
            bytes.len()
        );
        assert_eq!(Unit::decode(&bytes), Ok(unit));
        let huge = Unit::Answer {
            id: 1,
            payload: vec![0; MAX_PAYLOAD_BYTES + 1],
        };
        assert!(Unit::decode(&huge.encode().expect("encodes")).is_err());
    }

    #[test]
    fn store_units_have_the_store_bound_not_the_message_bound() {
        // A value of the store's largest size, with its key and context, is more than
        // a message payload may be, and must still pass.
        let largest = Unit::Store(vec![7; MAX_STORE_MESSAGE_BYTES]);
        assert_eq!(Unit::decode(&largest.encode().expect("encodes")), Ok(largest));
        let over = Unit::Store(vec![7; MAX_STORE_MESSAGE_BYTES + 1]);
        assert!(Unit::decode(&over.encode().expect("encodes")).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1500)) {
            let _ = Packet::decode(&bytes);
            let _ = Unit::decode(&bytes);
        }
    }
}
