//! Relayed paths, addressed like any other path.
//!
//! When two devices reach each other only through a third, their datagrams travel inside
//! the third's sessions (`node/relay.rs`): the ordinary end-to-end datagram of their own
//! session, which the relay cannot read. To the endpoint such a path is one more address
//! of the peer, so that everything it does with addresses (initiations to every
//! destination at once, the path of the first proven answer becoming the peer's address,
//! roaming, cookies) works on it unchanged. Those addresses come from the discard-only
//! prefix `100::/64` (RFC 6666), where nothing real lives: each names one pair of the
//! relay and the device at the far end, in this endpoint only. Nothing is ever sent to
//! one; the endpoint hands such datagrams to its owner instead
//! ([`crate::transport::Endpoint::poll_relayed`]). (Tailscale's magicsock addresses its
//! relays the same way, with a "magic" IP address.)

use std::collections::BTreeMap;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};

use crate::identity::DeviceId;

/// The first 64 bits of `100::/64`.
const PREFIX: u64 = 0x0100_0000_0000_0000;

/// What carrying a datagram through a relay adds to it: a channel byte and a device ID
/// (`Payload::Relay`), inside the relay's session (its header and tag). Every payload
/// leaves this much room in a datagram ([`crate::transport::MAX_PAYLOAD_BYTES`]), so a
/// relayed one is never fragmented.
pub const RELAY_OVERHEAD_BYTES: usize =
    1 + 32 + crate::wire::DATA_HEADER_BYTES + crate::crypto::aead::TAG_BYTES;

/// The longest datagram a relayed path carries: what is left of a datagram beside the
/// relay's envelope, which every session's payload leaves room for.
pub const MAX_RELAYED_DATAGRAM_BYTES: usize = crate::wire::MAX_DATAGRAM_BYTES - RELAY_OVERHEAD_BYTES;

/// Most relayed paths one endpoint names: past it, the oldest name is reused.
pub const MAX_RELAY_PATHS: usize = 4096;

/// Whether `address` names a relayed path (no real peer is ever there).
pub fn is_relay_address(address: &SocketAddr) -> bool {
    match address {
        SocketAddr::V6(v6) => u128::from(*v6.ip()) >> 64 == u128::from(PREFIX),
        SocketAddr::V4(_) => false,
    }
}

/// A pair of devices: the relay, and the device at the far end of the path.
pub type RelayPair = (DeviceId, DeviceId);

/// The addresses this endpoint gave relayed paths.
#[derive(Debug, Default)]
pub struct RelayPaths {
    by_pair: BTreeMap<RelayPair, u64>,
    by_serial: BTreeMap<u64, RelayPair>,
    next: u64,
}

impl RelayPaths {
    /// The address of the path to `far` through `relay`, named now if it has no name yet;
    /// with the pair whose name was given up to make room, if one was.
    pub fn address_of(&mut self, relay: DeviceId, far: DeviceId) -> (SocketAddr, Option<RelayPair>) {
        if let Some(serial) = self.by_pair.get(&(relay, far)) {
            return (address(*serial), None);
        }
        let mut evicted = None;
        if self.by_serial.len() >= MAX_RELAY_PATHS {
            if let Some((_, oldest)) = self.by_serial.pop_first() {
                self.by_pair.remove(&oldest);
                evicted = Some(oldest);
            }
        }
        let serial = self.next;
        self.next += 1;
        self.by_pair.insert((relay, far), serial);
        self.by_serial.insert(serial, (relay, far));
        (address(serial), evicted)
    }

    /// The relay and far device `address` names, if it names a path of this endpoint.
    pub fn pair_of(&self, address: &SocketAddr) -> Option<RelayPair> {
        if !is_relay_address(address) {
            return None;
        }
        let SocketAddr::V6(v6) = address else {
            return None;
        };
        let serial = u128::from(*v6.ip()) as u64;
        self.by_serial.get(&serial).copied()
    }

    /// Forgets the paths whose pair `gone` names (a device removed: every path through or
    /// to it); returns their addresses.
    pub fn forget(&mut self, gone: impl Fn(DeviceId, DeviceId) -> bool) -> Vec<SocketAddr> {
        let serials: Vec<u64> = self
            .by_serial
            .iter()
            .filter(|(_, (relay, far))| gone(*relay, *far))
            .map(|(serial, _)| *serial)
            .collect();
        for serial in &serials {
            if let Some(pair) = self.by_serial.remove(serial) {
                self.by_pair.remove(&pair);
            }
        }
        serials.into_iter().map(address).collect()
    }
}

/// The address of the path named `serial`.
fn address(serial: u64) -> SocketAddr {
    let ip = Ipv6Addr::from((u128::from(PREFIX) << 64) | u128::from(serial));
    SocketAddr::V6(SocketAddrV6::new(ip, 1, 0, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(byte: u8) -> DeviceId {
        DeviceId::from_bytes([byte; 32])
    }

    #[test]
    fn a_pair_keeps_its_address_and_each_address_names_its_pair() {
        let mut paths = RelayPaths::default();
        let (first, _) = paths.address_of(id(1), id(2));
        let (second, _) = paths.address_of(id(1), id(3));
        assert_ne!(first, second);
        assert_eq!(paths.address_of(id(1), id(2)), (first, None));
        assert!(is_relay_address(&first));
        assert_eq!(paths.pair_of(&first), Some((id(1), id(2))));
        assert_eq!(paths.pair_of(&second), Some((id(1), id(3))));
        assert_eq!(paths.forget(|_, far| far == id(3)), [second]);
        assert_eq!(paths.pair_of(&second), None);
        assert_eq!(paths.pair_of(&first), Some((id(1), id(2))));
    }

    #[test]
    fn real_addresses_are_never_relay_addresses() {
        for real in [
            "192.0.2.1:3030",
            "[2001:db8::1]:3030",
            "[fe80::1]:3030",
            "[::1]:3030",
            "[100:0:0:1::1]:3030",
        ] {
            let address: SocketAddr = real.parse().expect("an address");
            assert!(!is_relay_address(&address), "{real}");
            assert_eq!(RelayPaths::default().pair_of(&address), None);
        }
    }

    #[test]
    fn the_names_are_bounded_and_the_oldest_goes_first() {
        let mut paths = RelayPaths::default();
        let (oldest, _) = paths.address_of(id(0), id(0));
        for n in 1..MAX_RELAY_PATHS {
            let far = DeviceId::from_bytes({
                let mut bytes = [0u8; 32];
                bytes[..8].copy_from_slice(&(n as u64).to_le_bytes());
                bytes
            });
            paths.address_of(id(1), far);
        }
        assert_eq!(paths.pair_of(&oldest), Some((id(0), id(0))));
        assert_eq!(paths.address_of(id(2), id(2)).1, Some((id(0), id(0))));
        assert_eq!(paths.pair_of(&oldest), None);
        assert_eq!(paths.by_pair.len(), MAX_RELAY_PATHS);
    }
}
