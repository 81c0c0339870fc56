//! Devices of the roster that speak another protocol version. Their datagrams cannot be
//! read (the first byte says so, `wire::decode`), and nothing is answered to them, but a
//! datagram of another version from the address a device of the roster was reached at
//! says which device it is: `members` shows it, so that a person upgrades one of the two
//! rather than wondering why it is unreachable.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::{Event, Node};
use crate::identity::DeviceId;
use crate::time::Timestamp;

/// Least time between two looks for the device behind a datagram of another version:
/// each walks the roster, and anyone can send such datagrams.
const LOOK_INTERVAL: Duration = Duration::from_millis(100);

/// What each device of the roster last sent in another version than this one's.
#[derive(Debug, Default)]
pub(super) struct OtherVersions {
    versions: BTreeMap<DeviceId, u8>,
    last_look: Option<Timestamp>,
}

impl Node {
    /// A datagram of protocol `version`, not ours, came from `from`.
    pub(super) fn on_other_version(&mut self, now: Timestamp, from: SocketAddr, version: u8) {
        let looked = self.other_versions.last_look;
        if looked.is_some_and(|at| now.saturating_since(at) < LOOK_INTERVAL) {
            return;
        }
        self.other_versions.last_look = Some(now);
        let sender = self.roster.members().copied().find(|id| {
            *id != self.own_id()
                && (self.endpoint.peer_address(id) == Some(from)
                    || self.membership.member(id).and_then(|m| m.address) == Some(from))
        });
        let Some(device) = sender else {
            return;
        };
        if self.other_versions.versions.insert(device, version) != Some(version) {
            self.events.push_back(Event::OtherVersion { device, version });
        }
    }

    /// A session with `device` works: it speaks this version now.
    pub(super) fn speaks_our_version(&mut self, device: &DeviceId) {
        self.other_versions.versions.remove(device);
    }

    /// The protocol version `device` was last heard speaking, if not this one's.
    pub fn other_version(&self, device: &DeviceId) -> Option<u8> {
        self.other_versions.versions.get(device).copied()
    }
}
