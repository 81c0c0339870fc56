//! LAN beacons (`transport/beacon.rs`) in the node: sealing this device's, and answering
//! a fresh beacon of a device of the roster with a handshake to where it came from.

use std::net::{IpAddr, SocketAddr};

use super::Node;
use crate::identity::DeviceId;
use crate::time::Timestamp;

impl Node {
    /// A beacon to broadcast on the LAN now; `None` while the mesh has no secret (its
    /// first pairing makes one). The host sends it on every network this device announces
    /// on, at start, after every network change and now and then.
    pub fn seal_beacon(&mut self, now: Timestamp) -> Option<Vec<u8>> {
        let mut salt = [0u8; 16];
        salt.copy_from_slice(&self.rng.bytes32()[..16]);
        let unix_secs = self.messaging.unix_micros_at(now) / 1_000_000;
        self.beacons.seal(salt, &self.own_id(), unix_secs)
    }

    /// Whether beacons heard are answered (the host's discovery setting: `off` ignores
    /// them; `listen` and `announce` answer), and the networks (address and prefix
    /// length) whose beacons are ignored all the same (interfaces set `off`).
    pub fn set_beacons_heard(&mut self, heard: bool, except_from: Vec<(IpAddr, u8)>) {
        self.beacons_heard = heard;
        self.beacons_ignored_from = except_from;
    }

    /// Takes `datagram` from `from` if it is a fresh beacon of this mesh not heard before;
    /// whether it was one (taken or not, it is nothing else then).
    pub(super) fn take_beacon(&mut self, now: Timestamp, from: SocketAddr, datagram: &[u8]) -> bool {
        let ignored = self
            .beacons_ignored_from
            .iter()
            .any(|network| within(from.ip(), *network));
        if !self.beacons_heard || ignored {
            return false;
        }
        let unix_secs = self.messaging.unix_micros_at(now) / 1_000_000;
        let Some(device) = self.beacons.hear(datagram, unix_secs) else {
            return false;
        };
        self.answer_beacon(now, device, from);
        true
    }

    /// `device` says it is at `from`: unless a session already works there, that address
    /// becomes a candidate tried first, and a handshake starts.
    fn answer_beacon(&mut self, now: Timestamp, device: DeviceId, from: SocketAddr) {
        let on_roster = self.roster.get(&device).is_some_and(|entry| !entry.removed);
        if device == self.own_id() || !on_roster {
            return;
        }
        let working = self.endpoint.peer_address(&device) == Some(from)
            && self.endpoint.current_keys(now, &device).is_some();
        if working {
            return;
        }
        self.stats.beacons_answered += 1;
        self.endpoint.add_candidate(&device, from);
        if self
            .membership
            .member(&device)
            .is_some_and(|m| m.address.is_none())
        {
            self.membership.add_member(now, device, Some(from));
        }
        self.endpoint.connect(now, &device);
    }
}

/// Whether `ip` is in the network `(address, prefix length)`.
fn within(ip: IpAddr, (network, prefix): (IpAddr, u8)) -> bool {
    fn masked(bytes: &[u8], prefix: u8) -> Vec<u8> {
        bytes
            .iter()
            .enumerate()
            .map(|(i, byte)| {
                let bits = (usize::from(prefix)).saturating_sub(i * 8).min(8);
                byte & (0xffu16 << (8 - bits)) as u8
            })
            .collect()
    }
    match (ip, network) {
        (IpAddr::V4(a), IpAddr::V4(n)) => masked(&a.octets(), prefix) == masked(&n.octets(), prefix),
        (IpAddr::V6(a), IpAddr::V6(n)) => masked(&a.octets(), prefix) == masked(&n.octets(), prefix),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::within;

    #[test]
    fn an_address_is_within_its_network_only() {
        let ip = |text: &str| text.parse().expect("an address");
        assert!(within(ip("192.0.2.77"), (ip("192.0.2.1"), 24)));
        assert!(!within(ip("192.0.3.77"), (ip("192.0.2.1"), 24)));
        assert!(within(ip("192.0.2.77"), (ip("192.0.2.64"), 26)));
        assert!(!within(ip("192.0.2.7"), (ip("192.0.2.64"), 26)));
        assert!(within(ip("10.1.2.3"), (ip("0.0.0.0"), 0)));
        assert!(within(ip("fe80::1"), (ip("fe80::99"), 64)));
        assert!(!within(ip("fe80::1"), (ip("192.0.2.1"), 24)));
    }
}
