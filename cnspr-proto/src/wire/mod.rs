//! Wire formats: the datagram layout and bounded CBOR for structured bodies.

pub mod cbor;
pub mod compact;
pub mod ip;
mod packet;

pub use packet::{
    data_header, decode, mac1_covered, mac2_covered, Packet, PacketError, PacketType, DATA_HEADER_BYTES,
    ENCRYPTED_COOKIE_BYTES, INIT_PADDING_BYTES, INIT_PADDING_SENT_BYTES, MAC_BYTES, MAX_DATAGRAM_BYTES,
    MAX_HANDSHAKE_PAYLOAD_BYTES, PAIRING_INIT_PADDING_BYTES, PAIRING_INIT_PADDING_SENT_BYTES,
    PROTOCOL_VERSION,
};
