//! What devices say to each other about membership, inside encrypted data packets.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::identity::{DeviceId, Signature};
use crate::wire::cbor::{self, CborError};

/// One membership message with the sender's own incarnation and piggybacked updates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The sender's incarnation: every direct message proves the sender alive at it.
    pub incarnation: u64,
    /// The message proper.
    pub body: Body,
    /// Recent membership changes, gossiped along.
    pub updates: Vec<Update>,
    /// Now and then, the sender's view digest, for the receiver to compare with its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<ViewCheck>,
    /// The sender's signed claim of `incarnation`, in its first messages to each device
    /// after it changed: what the receiver's news of the new incarnation carries, so
    /// that devices the sender does not talk to believe it (`claim.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<Signature>,
}

/// A view digest to compare (see `view.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewCheck {
    /// The sender's view digest.
    pub digest: [u8; crate::membership::view::VIEW_DIGEST_BYTES],
    /// Whether a receiver whose view differs should send its digest back, so that the
    /// sender sends its view too.
    pub reply: bool,
}

/// The kinds of membership message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// Are you there?
    Ping {
        /// Matches the answer to the question.
        seq: u32,
        /// The round trip the sender last measured to the receiver: paths are symmetric
        /// enough that the side that rarely probes learns the RTT for free.
        your_rtt_micros: Option<u32>,
    },
    /// Yes.
    Ack {
        /// The ping's sequence number.
        seq: u32,
    },
    /// Please probe `target` for me; I could not reach it directly.
    ProbeRequest {
        /// The requester's sequence number, echoed in the report.
        seq: u32,
        /// Whom to probe.
        target: DeviceId,
    },
    /// What came of a probe made on request.
    ProbeReport {
        /// The requester's sequence number.
        seq: u32,
        /// Whom it was about.
        target: DeviceId,
        /// Whether the target answered.
        reachable: bool,
        /// Where the relay reached it: a requester that could not has a stale address.
        address: Option<SocketAddr>,
    },
    /// Nothing but the piggybacked updates (a flood of news).
    News,
}

/// The state of one device as some device reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Status {
    /// Running and answering.
    Alive,
    /// Failed a probe; being checked.
    Suspect,
    /// Declared failed.
    Unreachable,
    /// Said goodbye.
    Left,
}

/// One piece of membership news.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Update {
    /// Whom it is about.
    pub member: DeviceId,
    /// That device's incarnation the news is about; higher news wins.
    pub incarnation: u64,
    /// Its state.
    pub status: Status,
    /// Who says so (for suspicions: the accuser, so confirmations can be counted).
    pub reporter: DeviceId,
    /// An address the reporter reached it at.
    pub address: Option<SocketAddr>,
    /// The member's own signature of this incarnation (of leaving at it, for
    /// [`Status::Left`]): what makes a device that has not heard the member at this
    /// incarnation believe the news (`claim.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<Signature>,
}

impl Envelope {
    /// The CBOR bytes of this message.
    pub fn encode(&self) -> Result<Vec<u8>, CborError> {
        cbor::encode(self)
    }

    /// Parses a message; never panics, refuses anything over one datagram.
    pub fn decode(bytes: &[u8]) -> Result<Self, CborError> {
        cbor::decode_bounded(bytes, crate::wire::MAX_DATAGRAM_BYTES)
    }

    /// Splits an envelope too long for one datagram's payload (eight updates with IPv6
    /// addresses can be, once room is left for a relay's envelope) in two: this one's
    /// body and view digest with the first half of the updates, and news with the rest.
    /// `None` when it has no update to move.
    pub fn split(mut self) -> Option<(Envelope, Envelope)> {
        if self.updates.is_empty() {
            return None;
        }
        let rest = self.updates.split_off(self.updates.len() / 2);
        let news = Envelope {
            incarnation: self.incarnation,
            body: Body::News,
            updates: rest,
            view: None,
            claim: None,
        };
        Some((self, news))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::MAX_PAYLOAD_BYTES;
    use proptest::prelude::*;

    fn id(byte: u8) -> DeviceId {
        DeviceId::from_bytes([byte; 32])
    }

    #[test]
    fn round_trips_and_a_full_piggyback_fits_one_datagram_or_two() {
        let update = Update {
            member: id(1),
            incarnation: u64::MAX,
            status: Status::Suspect,
            reporter: id(2),
            address: Some("[2001:db8::1]:3030".parse().expect("valid address")),
            proof: Some(Signature([0xff; crate::identity::SIGNATURE_BYTES])),
        };
        let body = Body::ProbeReport {
            seq: u32::MAX,
            target: id(3),
            reachable: true,
            address: Some("[2001:db8::2]:3030".parse().expect("valid address")),
        };
        let view = ViewCheck {
            digest: [0xff; crate::membership::view::VIEW_DIGEST_BYTES],
            reply: true,
        };
        // The most a sender puts in one envelope: a full piggyback, or one update less
        // and the view digest.
        for (updates, view) in [(8, None), (7, Some(view))] {
            let envelope = Envelope {
                incarnation: u64::MAX,
                body: body.clone(),
                updates: vec![update.clone(); updates],
                view,
                claim: update.proof,
            };
            // One byte of the datagram payload goes to the channel (`payload.rs`). With
            // signed claims the worst case does not fit (beside a relay's envelope):
            // split, each half does.
            let bytes = envelope.encode().expect("encodes");
            assert!(bytes.len() >= MAX_PAYLOAD_BYTES, "{} bytes", bytes.len());
            let (first, news) = envelope.clone().split().expect("updates to move");
            assert_eq!(first.body, envelope.body);
            assert_eq!(first.view, envelope.view);
            assert_eq!(first.claim, envelope.claim);
            assert_eq!(news.body, Body::News);
            assert_eq!(
                [first.updates.clone(), news.updates.clone()].concat(),
                envelope.updates
            );
            for half in [first, news] {
                let bytes = half.encode().expect("encodes");
                assert!(bytes.len() < MAX_PAYLOAD_BYTES, "{} bytes", bytes.len());
                assert_eq!(Envelope::decode(&bytes), Ok(half));
            }
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1500)) {
            let _ = Envelope::decode(&bytes);
        }
    }
}
