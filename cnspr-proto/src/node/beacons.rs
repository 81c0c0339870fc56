//! LAN beacons (`transport/beacon.rs`) in the node: sealing this device's, and answering
//! a fresh beacon of a device of the roster with a handshake to where it came from.

use std::net::{IpAddr, SocketAddr};

use super::Node;
use crate::identity::DeviceId;
use crate::ip_network::contains;
use crate::time::Timestamp;
use crate::transport::Hint;

/// The least time between two handshakes started for beacons of one device.
pub const BEACON_ANSWER_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

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
    /// them; `listen` and `announce` answer), and where beacons are ignored all the same
    /// (interfaces set `off`): networks (address and prefix length), and IPv6 links by
    /// the scope a link-local source carries.
    pub fn set_beacons_heard(&mut self, heard: bool, networks: Vec<(IpAddr, u8)>, links: Vec<u32>) {
        self.beacons_heard = heard;
        self.beacons_ignored_from = (networks, links);
    }

    /// Takes `datagram` from `from` if it is a fresh beacon of this mesh not heard before;
    /// whether it was one (taken or not, it is nothing else then).
    pub(super) fn take_beacon(&mut self, now: Timestamp, from: SocketAddr, datagram: &[u8]) -> bool {
        let (networks, links) = &self.beacons_ignored_from;
        let scope = match from {
            SocketAddr::V6(v6) => v6.scope_id(),
            SocketAddr::V4(_) => 0,
        };
        let on_ignored_link = scope != 0 && links.contains(&scope);
        let ignored = on_ignored_link || networks.iter().any(|network| contains(*network, from.ip()));
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

    /// `device` says it is at `from`: unless it is active with a working session (by
    /// whatever path: a device heard on IPv4 and IPv6 alike is not called again at every
    /// beacon), a handshake starts that tries `from` too, at most once per
    /// [`BEACON_ANSWER_INTERVAL`] for each device (a beacon is only as trustworthy as the
    /// mesh secret: the handshake's proven answer is what moves the device).
    fn answer_beacon(&mut self, now: Timestamp, device: DeviceId, from: SocketAddr) {
        if device == self.own_id() || !self.is_peer(&device) {
            return;
        }
        if self.reached_directly(now, &device) {
            return;
        }
        let answered_lately = self
            .beacons_answered
            .get(&device)
            .is_some_and(|at| now.saturating_since(*at) < BEACON_ANSWER_INTERVAL);
        if answered_lately {
            return;
        }
        self.beacons_answered.insert(device, now);
        self.stats.beacons_answered += 1;
        let _ = self.endpoint.set_hint(now, &device, Hint::Beacon, from);
        self.endpoint.connect_now(now, &device);
    }
}
