//! The address a peer sees a device at (its reflexive address, as STUN would say), told
//! inside the handshake: the responder writes where the initiation came from into its
//! response, the initiator where the response came from into its finish. Both are Noise
//! payloads, so encrypted; the finish's is authenticated by the initiator's key, the
//! response's by the responder's.
//!
//! Behind a NAT that address is the NAT's mapping, which the device cannot see any other
//! way: it becomes a candidate others may try, and what the device's NAT does is read from
//! several peers' views (`node/nat.rs`).
//!
//! Layout: family (4 or 6), the address's bytes, the port (big-endian); empty when nothing
//! is told (an older peer, or an initiation too short to answer with more bytes than it
//! carried). Bytes after the address are ignored, for what later versions add.

use std::net::SocketAddr;

use crate::wire::ip::{put_ip, take_ip};

/// The longest observed address: an IPv6 one.
pub const MAX_OBSERVED_BYTES: usize = 1 + 16 + 2;

/// The payload telling a peer it was seen at `address`.
pub fn encode(address: SocketAddr) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(MAX_OBSERVED_BYTES);
    put_ip(&mut bytes, address.ip());
    bytes.extend_from_slice(&address.port().to_be_bytes());
    bytes
}

/// What a handshake tells a peer seen at `address`: nothing when it came by a relayed
/// path, whose name means nothing outside this device (`relay_path.rs`).
pub fn tell(address: SocketAddr) -> Vec<u8> {
    if crate::transport::relay_path::is_relay_address(&address) {
        Vec::new()
    } else {
        encode(address)
    }
}

/// Where a handshake payload says this device was seen; `None` for an empty or malformed
/// one (never a panic).
pub fn decode(payload: &[u8]) -> Option<SocketAddr> {
    let (ip, rest) = take_ip(payload)?;
    let (port, _) = rest.split_first_chunk::<2>()?;
    Some(SocketAddr::new(ip, u16::from_be_bytes(*port)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_and_anything_else_is_none() {
        for text in ["203.0.113.21:27089", "[2001:db8::7]:3030", "[fe80::1]:1"] {
            let address: SocketAddr = text.parse().expect("an address");
            let encoded = encode(address);
            assert!(encoded.len() <= MAX_OBSERVED_BYTES);
            assert_eq!(decode(&encoded), Some(address));
            let mut extended = encoded.clone();
            extended.extend_from_slice(b"later");
            assert_eq!(decode(&extended), Some(address));
            assert_eq!(decode(&encoded[..encoded.len() - 1]), None);
        }
        assert_eq!(decode(&[]), None);
        assert_eq!(decode(&[5, 1, 2, 3, 4, 0, 1]), None);
    }
}
