//! Static anchors (`anchor.rs`): this device's own, which its address record carries, and
//! the other devices', which the host looks up ([`Event::LookUpAnchors`]) whenever such a
//! device cannot be reached: at once when its record arrives or it becomes suspect or
//! unreachable, after every network change, and every [`ANCHOR_LOOKUP_INTERVAL`] while it stays
//! unreachable. The addresses found join the device's candidates, after its own.
//!
//! Only devices that list anchors are kept here, each with its next lookup in a timer
//! table: nothing walks the roster or the devices with anchors.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use super::{Event, Node};
use crate::anchor::{Anchor, MAX_ANCHORS};
use crate::identity::DeviceId;
use crate::time::Timestamp;
use crate::timers::Timers;
use crate::transport::MAX_CANDIDATES;

/// How often the anchors of a device that stays unreachable are looked up again.
pub const ANCHOR_LOOKUP_INTERVAL: Duration = Duration::from_secs(30);
/// Addresses kept from one device's lookups (its own candidates keep the rest of the room).
const MAX_ANCHOR_ADDRESSES: usize = MAX_CANDIDATES / 2;

/// Anchors: this device's and its peers'.
#[derive(Debug, Default)]
pub(super) struct Anchors {
    /// This device's own, for its address record.
    pub(super) own: Vec<Anchor>,
    /// Peers that list anchors.
    peers: BTreeMap<DeviceId, PeerAnchors>,
    /// When each one's anchors are to be looked up, if it still cannot be reached then.
    lookups: Timers<DeviceId>,
}

#[derive(Debug)]
struct PeerAnchors {
    anchors: Vec<Anchor>,
    /// What the last lookup found.
    found: Vec<SocketAddr>,
    /// When they were last asked for (none: never, or a network change since).
    asked: Option<Timestamp>,
}

impl Anchors {
    /// When [`Node::handle_timeout`] should look again.
    pub(super) fn poll_timeout(&self) -> Option<Timestamp> {
        self.lookups.next()
    }
}

impl Node {
    /// This device's static anchors: its next address record ([`Node::set_local_addresses`])
    /// carries them (the first [`MAX_ANCHORS`]).
    pub fn set_own_anchors(&mut self, mut anchors: Vec<Anchor>) {
        anchors.truncate(MAX_ANCHORS);
        self.anchors.own = anchors;
    }

    /// What a lookup of `device`'s anchors found ([`Event::LookUpAnchors`]): they become
    /// candidates of its handshakes, and it is called on them at once if it still cannot
    /// be reached.
    pub fn anchors_found(&mut self, now: Timestamp, device: DeviceId, addresses: &[SocketAddr]) {
        let Some(peer) = self.anchors.peers.get_mut(&device) else {
            return;
        };
        peer.found = addresses.iter().copied().take(MAX_ANCHOR_ADDRESSES).collect();
        self.apply_address_record(now, device);
        self.route_between_layers(now);
    }

    /// The addresses `device`'s anchors were last found at.
    pub(super) fn anchor_addresses(&self, device: &DeviceId) -> &[SocketAddr] {
        self.anchors.peers.get(device).map_or(&[], |peer| &peer.found)
    }

    /// `device`'s record lists `anchors` (perhaps none): kept, and looked up at once if the
    /// device cannot be reached and they are new.
    pub(super) fn note_anchors(&mut self, now: Timestamp, device: DeviceId, anchors: &[Anchor]) {
        if anchors.is_empty() {
            self.anchors.peers.remove(&device);
            self.anchors.lookups.clear(&device);
            return;
        }
        let peer = self.anchors.peers.entry(device).or_insert_with(|| PeerAnchors {
            anchors: Vec::new(),
            found: Vec::new(),
            asked: None,
        });
        if peer.anchors != anchors {
            peer.anchors = anchors.to_vec();
            peer.asked = None;
            self.anchors.lookups.set(device, Some(now));
        }
    }

    /// After a network change every anchor may lead elsewhere (another resolver, another
    /// route): each unreachable device's are looked up again.
    pub(super) fn anchors_after_network_change(&mut self, now: Timestamp) {
        for (device, peer) in &mut self.anchors.peers {
            peer.asked = None;
            self.anchors.lookups.set(*device, Some(now));
        }
    }

    /// `device` was just found suspect or unreachable: its anchors are looked up now,
    /// unless they were less than [`ANCHOR_LOOKUP_INTERVAL`] ago.
    pub(super) fn anchors_on_unreachable(&mut self, now: Timestamp, device: &DeviceId) {
        let Some(peer) = self.anchors.peers.get(device) else {
            return;
        };
        let due = peer
            .asked
            .map_or(now, |at| (at + ANCHOR_LOOKUP_INTERVAL).max(now));
        let due = self.anchors.lookups.get(device).map_or(due, |set| set.min(due));
        self.anchors.lookups.set(*device, Some(due));
    }

    /// Asks the host to look up the anchors that are due, of devices that cannot be
    /// reached, and looks again [`ANCHOR_LOOKUP_INTERVAL`] later; a device reached is let
    /// be until it is found suspect again.
    pub(super) fn anchors_timeout(&mut self, now: Timestamp) {
        for device in self.anchors.lookups.due(now) {
            if self.reached_directly(now, &device) {
                self.anchors.lookups.clear(&device);
                continue;
            }
            let Some(peer) = self.anchors.peers.get_mut(&device) else {
                self.anchors.lookups.clear(&device);
                continue;
            };
            peer.asked = Some(now);
            self.events.push_back(Event::LookUpAnchors {
                device,
                anchors: peer.anchors.clone(),
            });
            self.anchors
                .lookups
                .set(device, Some(now + ANCHOR_LOOKUP_INTERVAL));
        }
    }
}
