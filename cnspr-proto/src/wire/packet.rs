//! The datagram layout: a 2-byte header (version, type) and per-type fields.
//!
//! All integers are little-endian. Decoding borrows from the datagram, never
//! allocates and never panics. Initiations end with two MACs, each over every byte
//! before it: `mac1`, which the responder checks before any public-key work
//! (`transport/stealth.rs`), and `mac2`, a cookie's, which it asks for under load
//! (`transport/cookies.rs`).

/// Protocol version carried in byte 0 of every datagram. Version 2: initiations carry
/// `mac1` and `mac2`, and a responder under load answers with a `CookieReply`. Version 3:
/// the same packets, between devices whose ID is an Ed25519 key (a version 2 device's ID
/// is its X25519 key, which names another device here).
pub const PROTOCOL_VERSION: u8 = 3;
/// Largest datagram we send or accept (fits a 1500-byte MTU over IPv6/UDP with room to spare).
pub const MAX_DATAGRAM_BYTES: usize = 1452;
/// Largest Noise handshake payload (beyond the mandatory keys and tags) we accept.
pub const MAX_HANDSHAKE_PAYLOAD_BYTES: usize = 256;
/// The smallest `HandshakeResponse` datagram. Initiations are padded to at least this
/// size, so a forged source address never gets back more bytes than were sent to us
/// (no amplification, as WireGuard pads its initiation).
const RESPONSE_MIN_DATAGRAM_BYTES: usize =
    HEADER_BYTES + 2 * INDEX_BYTES + DH_BYTES + (DH_BYTES + TAG_BYTES) + TAG_BYTES;
/// Payload bytes a `HandshakeInit` carries at least (padding; the responder ignores it).
pub const INIT_PADDING_BYTES: usize =
    RESPONSE_MIN_DATAGRAM_BYTES - HEADER_BYTES - INDEX_BYTES - DH_BYTES - 2 * MAC_BYTES;
/// Padding bytes a device sends in its initiations: room for the address the response
/// tells (`transport/observed.rs`), which a responder adds only to an initiation that
/// long (older devices send [`INIT_PADDING_BYTES`], and are still answered).
pub const INIT_PADDING_SENT_BYTES: usize =
    INIT_PADDING_BYTES + crate::transport::observed::MAX_OBSERVED_BYTES;
/// Payload bytes a `PairingInit` carries at least (padding).
pub const PAIRING_INIT_PADDING_BYTES: usize = RESPONSE_MIN_DATAGRAM_BYTES
    - HEADER_BYTES
    - INDEX_BYTES
    - TOKEN_ID_BYTES
    - DH_BYTES
    - TAG_BYTES
    - 2 * MAC_BYTES;
/// Padding bytes a device sends in its pairing initiations (as [`INIT_PADDING_SENT_BYTES`]).
pub const PAIRING_INIT_PADDING_SENT_BYTES: usize =
    PAIRING_INIT_PADDING_BYTES + crate::transport::observed::MAX_OBSERVED_BYTES;
/// Length of each of the two MACs that end every initiation.
pub const MAC_BYTES: usize = 16;
/// Length of a `CookieReply`'s encrypted cookie: the cookie and its tag.
pub const ENCRYPTED_COOKIE_BYTES: usize = MAC_BYTES + TAG_BYTES;
/// Length of a `Data` packet's header, which is also the AEAD associated data.
pub const DATA_HEADER_BYTES: usize = 14;

const HEADER_BYTES: usize = 2;
const INDEX_BYTES: usize = 4;
const TOKEN_ID_BYTES: usize = 16;
const DH_BYTES: usize = 32;
const TAG_BYTES: usize = 16;

/// The packet type carried in byte 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    /// Noise XX message 1.
    HandshakeInit = 1,
    /// Noise XX message 2.
    HandshakeResponse = 2,
    /// Noise XX message 3.
    HandshakeFinish = 3,
    /// Noise XXpsk3 message 1, for pairing with an invite token.
    PairingInit = 4,
    /// Transport data.
    Data = 5,
    /// A responder under load asks the initiator to prove its address first.
    CookieReply = 6,
}

impl PacketType {
    /// Parses the type byte.
    pub fn from_u8(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Self::HandshakeInit),
            2 => Some(Self::HandshakeResponse),
            3 => Some(Self::HandshakeFinish),
            4 => Some(Self::PairingInit),
            5 => Some(Self::Data),
            6 => Some(Self::CookieReply),
            _ => None,
        }
    }

    /// Human-readable name, for errors and logs.
    pub fn name(self) -> &'static str {
        match self {
            Self::HandshakeInit => "HandshakeInit",
            Self::HandshakeResponse => "HandshakeResponse",
            Self::HandshakeFinish => "HandshakeFinish",
            Self::PairingInit => "PairingInit",
            Self::Data => "Data",
            Self::CookieReply => "CookieReply",
        }
    }

    /// Bytes before the variable-length tail (header and fixed fields).
    pub fn fixed_len(self) -> usize {
        match self {
            Self::HandshakeInit => HEADER_BYTES + INDEX_BYTES,
            Self::HandshakeResponse | Self::HandshakeFinish => HEADER_BYTES + 2 * INDEX_BYTES,
            Self::PairingInit => HEADER_BYTES + INDEX_BYTES + TOKEN_ID_BYTES,
            Self::Data => DATA_HEADER_BYTES,
            Self::CookieReply => HEADER_BYTES + INDEX_BYTES,
        }
    }

    /// Bytes of the MACs that end the datagram: initiations carry two (`mac1`, `mac2`).
    pub fn mac_len(self) -> usize {
        match self {
            Self::HandshakeInit | Self::PairingInit => 2 * MAC_BYTES,
            _ => 0,
        }
    }

    /// Smallest valid tail: the Noise message with an empty payload (padded, for
    /// initiations), or one AEAD tag.
    pub fn min_tail(self) -> usize {
        match self {
            // e; payload is plaintext (no key yet), padded.
            Self::HandshakeInit => DH_BYTES + INIT_PADDING_BYTES,
            // e, ee, s (encrypted), es, payload tag.
            Self::HandshakeResponse => DH_BYTES + (DH_BYTES + TAG_BYTES) + TAG_BYTES,
            // s (encrypted), se, payload tag.
            Self::HandshakeFinish => (DH_BYTES + TAG_BYTES) + TAG_BYTES,
            // e; in psk handshakes `e` also runs MixKey, so the payload carries a tag.
            Self::PairingInit => DH_BYTES + TAG_BYTES + PAIRING_INIT_PADDING_BYTES,
            Self::Data => TAG_BYTES,
            Self::CookieReply => ENCRYPTED_COOKIE_BYTES,
        }
    }

    /// Largest valid tail.
    pub fn max_tail(self) -> usize {
        match self {
            Self::Data => MAX_DATAGRAM_BYTES - DATA_HEADER_BYTES,
            Self::CookieReply => ENCRYPTED_COOKIE_BYTES,
            _ => self.min_tail() + MAX_HANDSHAKE_PAYLOAD_BYTES,
        }
    }

    fn tail_name(self) -> &'static str {
        match self {
            Self::Data => "ciphertext",
            Self::CookieReply => "encrypted cookie",
            _ => "noise",
        }
    }
}

/// A decoded datagram, borrowing its variable-length tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet<'a> {
    /// Noise XX message 1.
    HandshakeInit {
        /// The initiator's session index.
        sender_index: u32,
        /// The Noise message.
        noise: &'a [u8],
        /// Proves the sender holds the mesh's secret.
        mac1: [u8; MAC_BYTES],
        /// Proves the sender's address with a cookie the responder gave it (zeros if it
        /// has none); the last bytes of the datagram.
        mac2: [u8; MAC_BYTES],
    },
    /// Noise XX message 2.
    HandshakeResponse {
        /// The responder's session index.
        sender_index: u32,
        /// The initiator's index, echoed back.
        receiver_index: u32,
        /// The Noise message.
        noise: &'a [u8],
    },
    /// Noise XX message 3.
    HandshakeFinish {
        /// The initiator's session index.
        sender_index: u32,
        /// The responder's index, echoed back.
        receiver_index: u32,
        /// The Noise message.
        noise: &'a [u8],
    },
    /// Noise XXpsk3 message 1, naming the invite token whose PSK to use.
    PairingInit {
        /// The initiator's session index.
        sender_index: u32,
        /// Identifies the invite token (public; the PSK stays secret).
        token_id: [u8; 16],
        /// The Noise message.
        noise: &'a [u8],
        /// Proves the sender holds the invite's secret.
        mac1: [u8; MAC_BYTES],
        /// As in `HandshakeInit`.
        mac2: [u8; MAC_BYTES],
    },
    /// Transport data.
    Data {
        /// The receiver's session index.
        receiver_index: u32,
        /// The AEAD nonce counter.
        counter: u64,
        /// Ciphertext including the 16-byte AEAD tag.
        ciphertext: &'a [u8],
    },
    /// The answer of a responder under load to an initiation without a valid `mac2`.
    CookieReply {
        /// The initiation's `sender_index`, echoed back.
        receiver_index: u32,
        /// The cookie for the initiator's address, encrypted ([`ENCRYPTED_COOKIE_BYTES`]).
        cookie: &'a [u8],
    },
}

/// Why a datagram was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Zero-length datagram.
    #[error("empty datagram")]
    Empty,
    /// Shorter than the fixed part of its type.
    #[error("datagram too short for {what}: need at least {expected} bytes, got {actual}")]
    TooShort {
        /// What was being read.
        what: &'static str,
        /// Bytes needed.
        expected: usize,
        /// Bytes present.
        actual: usize,
    },
    /// Version byte is not [`PROTOCOL_VERSION`].
    #[error("unsupported protocol version {0} (this build speaks version {PROTOCOL_VERSION})")]
    UnsupportedVersion(u8),
    /// Unknown type byte.
    #[error("unknown packet type {0}")]
    UnknownType(u8),
    /// Longer than [`MAX_DATAGRAM_BYTES`].
    #[error("datagram is {0} bytes, more than the maximum {MAX_DATAGRAM_BYTES}")]
    TooLarge(usize),
    /// A variable-length field is outside its allowed range.
    #[error("{packet} {field} is {len} bytes, allowed {min}..={max}")]
    FieldLength {
        /// Packet type name.
        packet: &'static str,
        /// Field name.
        field: &'static str,
        /// Actual length.
        len: usize,
        /// Minimum allowed.
        min: usize,
        /// Maximum allowed.
        max: usize,
    },
}

/// The header of a `Data` packet; the transport layer uses it as AEAD associated data.
pub fn data_header(receiver_index: u32, counter: u64) -> [u8; DATA_HEADER_BYTES] {
    let mut header = [0u8; DATA_HEADER_BYTES];
    let (prefix, rest) = header.split_at_mut(HEADER_BYTES);
    prefix.copy_from_slice(&[PROTOCOL_VERSION, PacketType::Data as u8]);
    let (index, count) = rest.split_at_mut(INDEX_BYTES);
    index.copy_from_slice(&receiver_index.to_le_bytes());
    count.copy_from_slice(&counter.to_le_bytes());
    header
}

/// Decodes and bounds-checks a datagram.
pub fn decode(datagram: &[u8]) -> Result<Packet<'_>, PacketError> {
    let (&version, rest) = datagram.split_first().ok_or(PacketError::Empty)?;
    if datagram.len() > MAX_DATAGRAM_BYTES {
        return Err(PacketError::TooLarge(datagram.len()));
    }
    if version != PROTOCOL_VERSION {
        return Err(PacketError::UnsupportedVersion(version));
    }
    let (&type_byte, rest) = rest.split_first().ok_or(PacketError::TooShort {
        what: "packet header",
        expected: HEADER_BYTES,
        actual: datagram.len(),
    })?;
    let kind = PacketType::from_u8(type_byte).ok_or(PacketError::UnknownType(type_byte))?;

    let mut reader = Reader {
        rest,
        kind,
        total: datagram.len(),
    };
    let packet = match kind {
        PacketType::HandshakeInit => {
            let sender_index = reader.u32()?;
            let (noise, mac1, mac2) = reader.tail_and_macs()?;
            Packet::HandshakeInit {
                sender_index,
                noise,
                mac1,
                mac2,
            }
        }
        PacketType::HandshakeResponse => Packet::HandshakeResponse {
            sender_index: reader.u32()?,
            receiver_index: reader.u32()?,
            noise: reader.tail()?,
        },
        PacketType::HandshakeFinish => Packet::HandshakeFinish {
            sender_index: reader.u32()?,
            receiver_index: reader.u32()?,
            noise: reader.tail()?,
        },
        PacketType::PairingInit => {
            let sender_index = reader.u32()?;
            let token_id = reader.array()?;
            let (noise, mac1, mac2) = reader.tail_and_macs()?;
            Packet::PairingInit {
                sender_index,
                token_id,
                noise,
                mac1,
                mac2,
            }
        }
        PacketType::Data => Packet::Data {
            receiver_index: reader.u32()?,
            counter: u64::from_le_bytes(reader.array()?),
            ciphertext: reader.tail()?,
        },
        PacketType::CookieReply => Packet::CookieReply {
            receiver_index: reader.u32()?,
            cookie: reader.tail()?,
        },
    };
    Ok(packet)
}

/// Reads fixed fields in order, then the bounds-checked tail.
struct Reader<'a> {
    rest: &'a [u8],
    kind: PacketType,
    total: usize,
}

impl<'a> Reader<'a> {
    fn array<const N: usize>(&mut self) -> Result<[u8; N], PacketError> {
        let (head, rest) = self.rest.split_first_chunk::<N>().ok_or(PacketError::TooShort {
            what: self.kind.name(),
            expected: self.kind.fixed_len(),
            actual: self.total,
        })?;
        self.rest = rest;
        Ok(*head)
    }

    fn u32(&mut self) -> Result<u32, PacketError> {
        self.array().map(u32::from_le_bytes)
    }

    /// The tail of an initiation: the Noise message, then `mac1` and `mac2`.
    #[allow(clippy::type_complexity)]
    fn tail_and_macs(mut self) -> Result<(&'a [u8], [u8; MAC_BYTES], [u8; MAC_BYTES]), PacketError> {
        let too_short = PacketError::TooShort {
            what: self.kind.name(),
            expected: self.kind.fixed_len() + self.kind.min_tail() + self.kind.mac_len(),
            actual: self.total,
        };
        let (rest, mac2) = self.rest.split_last_chunk::<MAC_BYTES>().ok_or(too_short)?;
        let (noise, mac1) = rest.split_last_chunk::<MAC_BYTES>().ok_or(too_short)?;
        self.rest = noise;
        Ok((self.tail()?, *mac1, *mac2))
    }

    fn tail(self) -> Result<&'a [u8], PacketError> {
        let (min, max) = (self.kind.min_tail(), self.kind.max_tail());
        if (min..=max).contains(&self.rest.len()) {
            Ok(self.rest)
        } else {
            Err(PacketError::FieldLength {
                packet: self.kind.name(),
                field: self.kind.tail_name(),
                len: self.rest.len(),
                min,
                max,
            })
        }
    }
}

impl Packet<'_> {
    /// This packet's type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Self::HandshakeInit { .. } => PacketType::HandshakeInit,
            Self::HandshakeResponse { .. } => PacketType::HandshakeResponse,
            Self::HandshakeFinish { .. } => PacketType::HandshakeFinish,
            Self::PairingInit { .. } => PacketType::PairingInit,
            Self::Data { .. } => PacketType::Data,
            Self::CookieReply { .. } => PacketType::CookieReply,
        }
    }

    fn tail(&self) -> &[u8] {
        match self {
            Self::HandshakeInit { noise, .. }
            | Self::HandshakeResponse { noise, .. }
            | Self::HandshakeFinish { noise, .. }
            | Self::PairingInit { noise, .. } => noise,
            Self::Data { ciphertext, .. } => ciphertext,
            Self::CookieReply { cookie, .. } => cookie,
        }
    }

    /// Length of the encoded datagram.
    pub fn encoded_len(&self) -> usize {
        let kind = self.packet_type();
        kind.fixed_len() + self.tail().len() + kind.mac_len()
    }

    /// Appends the encoded datagram to `out`.
    ///
    /// Does not check lengths: a packet whose tail is out of range encodes
    /// but will not decode. Senders build tails from Noise/AEAD output, whose
    /// sizes they control.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        match self {
            Self::Data {
                receiver_index,
                counter,
                ..
            } => {
                out.extend_from_slice(&data_header(*receiver_index, *counter));
            }
            Self::HandshakeInit { sender_index, .. } => {
                out.extend_from_slice(&[PROTOCOL_VERSION, PacketType::HandshakeInit as u8]);
                out.extend_from_slice(&sender_index.to_le_bytes());
            }
            Self::HandshakeResponse {
                sender_index,
                receiver_index,
                ..
            }
            | Self::HandshakeFinish {
                sender_index,
                receiver_index,
                ..
            } => {
                out.extend_from_slice(&[PROTOCOL_VERSION, self.packet_type() as u8]);
                out.extend_from_slice(&sender_index.to_le_bytes());
                out.extend_from_slice(&receiver_index.to_le_bytes());
            }
            Self::PairingInit {
                sender_index,
                token_id,
                ..
            } => {
                out.extend_from_slice(&[PROTOCOL_VERSION, PacketType::PairingInit as u8]);
                out.extend_from_slice(&sender_index.to_le_bytes());
                out.extend_from_slice(token_id);
            }
            Self::CookieReply { receiver_index, .. } => {
                out.extend_from_slice(&[PROTOCOL_VERSION, PacketType::CookieReply as u8]);
                out.extend_from_slice(&receiver_index.to_le_bytes());
            }
        }
        out.extend_from_slice(self.tail());
        if let Self::HandshakeInit { mac1, mac2, .. } | Self::PairingInit { mac1, mac2, .. } = self {
            out.extend_from_slice(mac1);
            out.extend_from_slice(mac2);
        }
    }
}

/// The bytes an initiation's `mac1` covers: all of the datagram before it.
pub fn mac1_covered(datagram: &[u8]) -> &[u8] {
    &datagram[..datagram.len().saturating_sub(2 * MAC_BYTES)]
}

/// The bytes an initiation's `mac2` covers: all of the datagram before it, `mac1` too.
pub fn mac2_covered(datagram: &[u8]) -> &[u8] {
    &datagram[..datagram.len().saturating_sub(MAC_BYTES)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TYPES: [PacketType; 6] = [
        PacketType::HandshakeInit,
        PacketType::HandshakeResponse,
        PacketType::HandshakeFinish,
        PacketType::PairingInit,
        PacketType::Data,
        PacketType::CookieReply,
    ];

    fn build(kind: PacketType, tail: &[u8]) -> Packet<'_> {
        match kind {
            PacketType::HandshakeInit => Packet::HandshakeInit {
                sender_index: 0x0102_0304,
                noise: tail,
                mac1: [0x5a; MAC_BYTES],
                mac2: [0x6b; MAC_BYTES],
            },
            PacketType::HandshakeResponse => Packet::HandshakeResponse {
                sender_index: 7,
                receiver_index: u32::MAX,
                noise: tail,
            },
            PacketType::HandshakeFinish => Packet::HandshakeFinish {
                sender_index: 0,
                receiver_index: 9,
                noise: tail,
            },
            PacketType::PairingInit => Packet::PairingInit {
                sender_index: 3,
                token_id: [0xa5; 16],
                noise: tail,
                mac1: [0x3c; MAC_BYTES],
                mac2: [0; MAC_BYTES],
            },
            PacketType::Data => Packet::Data {
                receiver_index: 11,
                counter: u64::MAX - 1,
                ciphertext: tail,
            },
            PacketType::CookieReply => Packet::CookieReply {
                receiver_index: 12,
                cookie: tail,
            },
        }
    }

    fn encoded(packet: &Packet<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        packet.encode(&mut out);
        out
    }

    #[test]
    fn each_type_round_trips() {
        for kind in TYPES {
            let tail = vec![0x5a; (kind.min_tail() + 3).min(kind.max_tail())];
            let packet = build(kind, &tail);
            let bytes = encoded(&packet);
            assert_eq!(bytes.len(), packet.encoded_len());
            assert_eq!(bytes.first(), Some(&PROTOCOL_VERSION));
            assert_eq!(bytes.get(1), Some(&(kind as u8)));
            assert_eq!(decode(&bytes), Ok(packet), "{kind:?}");
        }
    }

    #[test]
    fn encode_appends() {
        let tail = [1u8; 16];
        let packet = build(PacketType::Data, &tail);
        let mut out = vec![0xee];
        packet.encode(&mut out);
        assert_eq!(out.first(), Some(&0xee));
        assert_eq!(out.len(), 1 + packet.encoded_len());
    }

    #[test]
    fn data_exact_layout() {
        let ciphertext: Vec<u8> = (0..16).collect();
        let packet = Packet::Data {
            receiver_index: 0x1122_3344,
            counter: 0x0102_0304_0506_0708,
            ciphertext: &ciphertext,
        };
        let expected: &[u8] = &[
            0x03, 0x05, // version, type
            0x44, 0x33, 0x22, 0x11, // receiver_index LE
            0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, // counter LE
            0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, // ciphertext
            0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
        ];
        assert_eq!(encoded(&packet), expected);
        assert_eq!(
            data_header(0x1122_3344, 0x0102_0304_0506_0708),
            expected[..DATA_HEADER_BYTES]
        );
        assert_eq!(decode(expected), Ok(packet));
    }

    #[test]
    fn initiations_are_never_smaller_than_the_response_they_ask_for() {
        let total = |kind: PacketType| kind.fixed_len() + kind.min_tail() + kind.mac_len();
        assert_eq!(total(PacketType::HandshakeResponse), RESPONSE_MIN_DATAGRAM_BYTES);
        assert_eq!(total(PacketType::HandshakeInit), RESPONSE_MIN_DATAGRAM_BYTES);
        assert_eq!(total(PacketType::PairingInit), RESPONSE_MIN_DATAGRAM_BYTES);
        // What is sent: room for the address a response tells.
        let told = crate::transport::observed::MAX_OBSERVED_BYTES;
        assert_eq!(
            total(PacketType::HandshakeInit) - INIT_PADDING_BYTES + INIT_PADDING_SENT_BYTES,
            RESPONSE_MIN_DATAGRAM_BYTES + told
        );
        assert_eq!(
            total(PacketType::PairingInit) - PAIRING_INIT_PADDING_BYTES + PAIRING_INIT_PADDING_SENT_BYTES,
            RESPONSE_MIN_DATAGRAM_BYTES + told
        );
    }

    #[test]
    fn tail_bounds_are_exact() {
        let expected = [
            (PacketType::HandshakeInit, 68, 324),
            (PacketType::HandshakeResponse, 96, 352),
            (PacketType::HandshakeFinish, 64, 320),
            (PacketType::PairingInit, 52, 308),
            (PacketType::Data, 16, 1438),
            (PacketType::CookieReply, 32, 32),
        ];
        for (kind, min, max) in expected {
            assert_eq!((kind.min_tail(), kind.max_tail()), (min, max), "{kind:?}");
            let buf = vec![0u8; max + 1];
            for len in [min, max] {
                assert!(
                    decode(&encoded(&build(kind, &buf[..len]))).is_ok(),
                    "{kind:?} {len}"
                );
            }
            for len in [min - 1, max + 1] {
                let bytes = encoded(&build(kind, &buf[..len]));
                let err = decode(&bytes);
                if bytes.len() > MAX_DATAGRAM_BYTES {
                    assert_eq!(err, Err(PacketError::TooLarge(bytes.len())));
                } else {
                    assert_eq!(
                        err,
                        Err(PacketError::FieldLength {
                            packet: kind.name(),
                            field: kind.tail_name(),
                            len,
                            min,
                            max
                        }),
                        "{kind:?} {len}"
                    );
                }
            }
        }
    }

    #[test]
    fn datagram_size_limit() {
        let tail = vec![0u8; MAX_DATAGRAM_BYTES];
        let at_limit = encoded(&build(
            PacketType::Data,
            &tail[..MAX_DATAGRAM_BYTES - DATA_HEADER_BYTES],
        ));
        assert_eq!(at_limit.len(), MAX_DATAGRAM_BYTES);
        assert!(decode(&at_limit).is_ok());
        let mut over = at_limit;
        over.push(0);
        assert_eq!(decode(&over), Err(PacketError::TooLarge(MAX_DATAGRAM_BYTES + 1)));
    }

    #[test]
    fn fixed_fields_truncated() {
        assert_eq!(decode(&[]), Err(PacketError::Empty));
        assert_eq!(
            decode(&[PROTOCOL_VERSION]),
            Err(PacketError::TooShort {
                what: "packet header",
                expected: 2,
                actual: 1
            })
        );
        for kind in TYPES {
            let full = encoded(&build(kind, &[0u8; 64][..kind.min_tail().min(64)]));
            let cut = &full[..kind.fixed_len() - 1];
            assert_eq!(
                decode(cut),
                Err(PacketError::TooShort {
                    what: kind.name(),
                    expected: kind.fixed_len(),
                    actual: cut.len()
                })
            );
        }
    }

    #[test]
    fn version_and_type_rejected() {
        // Version 1 is what devices sent before initiations carried a MAC, version 2
        // before device IDs were signing keys.
        assert_eq!(decode(&[1, 5]), Err(PacketError::UnsupportedVersion(1)));
        assert_eq!(decode(&[2, 5]), Err(PacketError::UnsupportedVersion(2)));
        assert_eq!(decode(&[0]), Err(PacketError::UnsupportedVersion(0)));
        assert_eq!(decode(&[3, 0]), Err(PacketError::UnknownType(0)));
        assert_eq!(decode(&[3, 7, 0, 0]), Err(PacketError::UnknownType(7)));
        let msg = PacketError::UnsupportedVersion(2).to_string();
        assert!(msg.contains("version 2") && msg.contains("version 3"), "{msg}");
    }

    fn arb_packet() -> impl Strategy<Value = (PacketType, u32, u32, u64, [u8; 16], Vec<u8>)> {
        prop::sample::select(TYPES.to_vec()).prop_flat_map(|kind| {
            (
                Just(kind),
                any::<u32>(),
                any::<u32>(),
                any::<u64>(),
                any::<[u8; 16]>(),
                prop::collection::vec(any::<u8>(), kind.min_tail()..=kind.max_tail()),
            )
        })
    }

    proptest! {
        #[test]
        fn arbitrary_packets_round_trip((kind, a, b, counter, token_id, tail) in arb_packet()) {
            let packet = match kind {
                PacketType::HandshakeInit => Packet::HandshakeInit { sender_index: a, noise: &tail, mac1: token_id, mac2: [b as u8; MAC_BYTES] },
                PacketType::HandshakeResponse => Packet::HandshakeResponse { sender_index: a, receiver_index: b, noise: &tail },
                PacketType::HandshakeFinish => Packet::HandshakeFinish { sender_index: a, receiver_index: b, noise: &tail },
                PacketType::PairingInit => Packet::PairingInit { sender_index: a, token_id, noise: &tail, mac1: [b as u8; MAC_BYTES], mac2: [a as u8; MAC_BYTES] },
                PacketType::CookieReply => Packet::CookieReply { receiver_index: a, cookie: &tail },
                PacketType::Data => Packet::Data { receiver_index: a, counter, ciphertext: &tail },
            };
            let bytes = encoded(&packet);
            prop_assert_eq!(bytes.len(), packet.encoded_len());
            prop_assert_eq!(decode(&bytes), Ok(packet));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2000)) {
            if let Ok(packet) = decode(&bytes) {
                // Whatever decodes re-encodes to the same bytes.
                prop_assert_eq!(encoded(&packet), bytes);
            }
        }

        #[test]
        fn plausible_headers_never_panic(kind in 1u8..=6, rest in prop::collection::vec(any::<u8>(), 0..400)) {
            let mut bytes = vec![PROTOCOL_VERSION, kind];
            bytes.extend_from_slice(&rest);
            if let Ok(packet) = decode(&bytes) {
                prop_assert_eq!(encoded(&packet), bytes);
            }
        }
    }
}
