//! Wire formats: the datagram layout and bounded CBOR for structured bodies.

pub mod cbor;
pub mod compact;
mod packet;

pub use packet::{
    data_header, decode, Packet, PacketError, PacketType, DATA_HEADER_BYTES, INIT_PADDING_BYTES,
    MAX_DATAGRAM_BYTES, MAX_HANDSHAKE_PAYLOAD_BYTES, PAIRING_INIT_PADDING_BYTES, PROTOCOL_VERSION,
};
