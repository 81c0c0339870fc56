//! What an authenticated data packet carries: one channel byte, then that channel's
//! message. Each layer of the node parses only its own channel.

use crate::identity::DeviceId;
use crate::membership::Envelope;
use crate::transport::relay_path::MAX_RELAYED_DATAGRAM_BYTES;
use crate::wire::cbor::CborError;

const MEMBERSHIP: u8 = 0;
// 1 carried the roster's own replication; the roster now travels in the store.
const ECHO: u8 = 2;
const ECHO_REPLY: u8 = 3;
const MESSAGING: u8 = 4;
const RELAY: u8 = 5;
const RELAYED: u8 = 6;
const RELAY_REFUSED: u8 = 7;

/// One decoded payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// Failure detection.
    Membership(Envelope),
    /// A round-trip request (`cnspr ping`), answered at once.
    Echo(u64),
    /// The answer to an echo.
    EchoReply(u64),
    /// Messages, events and queries: a [`crate::messaging::Packet`], parsed by that layer.
    Messaging(Vec<u8>),
    /// To the relay: carry `datagram` (of our session with `to`) on to `to`.
    Relay {
        /// The device at the far end.
        to: DeviceId,
        /// The datagram, sealed for `to`: the relay cannot read it.
        datagram: Vec<u8>,
    },
    /// From the relay: `datagram` came from `from`, for us.
    Relayed {
        /// The device it came from, as the relay says (only `from`'s keys open it).
        from: DeviceId,
        /// The datagram.
        datagram: Vec<u8>,
    },
    /// From the relay: it will not carry our handshakes to `to` (relaying off, over its
    /// bounds, or no direct path to `to`).
    RelayRefused {
        /// The device it will not carry to.
        to: DeviceId,
    },
}

/// Why a payload was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// Empty, or a channel this version does not know.
    #[error("unknown payload channel")]
    UnknownChannel,
    /// An echo is exactly eight bytes.
    #[error("malformed echo")]
    MalformedEcho,
    /// A relayed datagram needs a device ID and at most one relayed datagram's bytes.
    #[error("malformed relayed datagram")]
    MalformedRelay,
    /// The channel's message did not parse.
    #[error("malformed message: {0}")]
    Cbor(#[from] CborError),
}

impl Payload {
    /// The bytes to send.
    pub fn encode(&self) -> Result<Vec<u8>, CborError> {
        let (channel, body) = match self {
            Payload::Membership(envelope) => (MEMBERSHIP, envelope.encode()?),
            Payload::Echo(id) => (ECHO, id.to_le_bytes().to_vec()),
            Payload::EchoReply(id) => (ECHO_REPLY, id.to_le_bytes().to_vec()),
            Payload::Messaging(bytes) => (MESSAGING, bytes.clone()),
            Payload::RelayRefused { to } => (RELAY_REFUSED, to.as_bytes().to_vec()),
            Payload::Relay { to: device, datagram }
            | Payload::Relayed {
                from: device,
                datagram,
            } => {
                let channel = if matches!(self, Payload::Relay { .. }) {
                    RELAY
                } else {
                    RELAYED
                };
                (channel, [device.as_bytes().as_slice(), datagram].concat())
            }
        };
        let mut bytes = Vec::with_capacity(1 + body.len());
        bytes.push(channel);
        bytes.extend_from_slice(&body);
        Ok(bytes)
    }

    /// Parses received bytes; never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self, PayloadError> {
        let (&channel, body) = bytes.split_first().ok_or(PayloadError::UnknownChannel)?;
        let echo_id = || {
            <[u8; 8]>::try_from(body)
                .map(u64::from_le_bytes)
                .map_err(|_| PayloadError::MalformedEcho)
        };
        match channel {
            MEMBERSHIP => Ok(Payload::Membership(Envelope::decode(body)?)),
            ECHO => Ok(Payload::Echo(echo_id()?)),
            ECHO_REPLY => Ok(Payload::EchoReply(echo_id()?)),
            MESSAGING => Ok(Payload::Messaging(body.to_vec())),
            RELAY_REFUSED => {
                let to = <[u8; 32]>::try_from(body).map_err(|_| PayloadError::MalformedRelay)?;
                Ok(Payload::RelayRefused {
                    to: DeviceId::from_bytes(to),
                })
            }
            RELAY | RELAYED => {
                let (device, datagram) = body
                    .split_first_chunk::<32>()
                    .ok_or(PayloadError::MalformedRelay)?;
                if datagram.is_empty() || datagram.len() > MAX_RELAYED_DATAGRAM_BYTES {
                    return Err(PayloadError::MalformedRelay);
                }
                let (device, datagram) = (DeviceId::from_bytes(*device), datagram.to_vec());
                Ok(if channel == RELAY {
                    Payload::Relay { to: device, datagram }
                } else {
                    Payload::Relayed {
                        from: device,
                        datagram,
                    }
                })
            }
            _ => Err(PayloadError::UnknownChannel),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn each_channel_round_trips() {
        for payload in [
            Payload::Echo(7),
            Payload::EchoReply(u64::MAX),
            Payload::Messaging(vec![1, 2, 3]),
            Payload::Relay {
                to: DeviceId::from_bytes([7; 32]),
                datagram: vec![4; MAX_RELAYED_DATAGRAM_BYTES],
            },
            Payload::Relayed {
                from: DeviceId::from_bytes([8; 32]),
                datagram: vec![5],
            },
            Payload::RelayRefused {
                to: DeviceId::from_bytes([9; 32]),
            },
        ] {
            let bytes = payload.encode().expect("encodes");
            assert_eq!(Payload::decode(&bytes), Ok(payload));
        }
        assert_eq!(Payload::decode(&[]), Err(PayloadError::UnknownChannel));
        assert_eq!(Payload::decode(&[9, 1]), Err(PayloadError::UnknownChannel));
        assert_eq!(Payload::decode(&[ECHO, 1]), Err(PayloadError::MalformedEcho));
        // A relayed datagram needs its device, some bytes, and no more than a datagram.
        let mut short = vec![RELAY];
        short.extend_from_slice(&[7; 32]);
        assert_eq!(Payload::decode(&short), Err(PayloadError::MalformedRelay));
        assert_eq!(Payload::decode(&short[..20]), Err(PayloadError::MalformedRelay));
        assert_eq!(
            Payload::decode(&[RELAY_REFUSED, 1]),
            Err(PayloadError::MalformedRelay)
        );
        short.extend_from_slice(&[0; MAX_RELAYED_DATAGRAM_BYTES + 1]);
        assert_eq!(Payload::decode(&short), Err(PayloadError::MalformedRelay));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1500)) {
            let _ = Payload::decode(&bytes);
        }
    }
}
