//! Names of devices this one cannot hear from. A device's name is its own write of its
//! roster key, pushed to the devices it reaches; one that cannot reach it (behind another
//! NAT) would show it as `?` until the periodic repair, five minutes on. So a device that
//! finds a device alive (directly, or as others tell) without knowing its name asks a
//! device that reaches it (the one whose probe last did, else a live peer) for what its
//! replica lacks (a question, not a digest: the peer may have asked this device just
//! before, at the join, and would not ask again so soon): [`FIRST_NAME_ASK`] later (the name may still be on its way to that
//! device: a joiner's reaches its inviter just after the joiner itself), then every
//! [`NAME_ASKED_EVERY`] until it is known. Where every device reaches every other, every
//! name is known first and nothing is asked.

use std::time::Duration;

use super::Node;
use crate::identity::DeviceId;
use crate::time::Timestamp;
use crate::timers::Timers;

/// How long after a nameless device is found alive its name is first asked for.
pub const FIRST_NAME_ASK: Duration = Duration::from_secs(2);
/// How often the name of one device is asked for again while it is not known.
pub const NAME_ASKED_EVERY: Duration = Duration::from_secs(60);

/// The devices whose names are asked for, and when next.
#[derive(Debug, Default)]
pub(super) struct NameAsks {
    due: Timers<DeviceId>,
}

impl NameAsks {
    /// When [`Node::handle_timeout`] should ask next.
    pub(super) fn poll_timeout(&self) -> Option<Timestamp> {
        self.due.next()
    }

    /// `device` left the roster.
    pub(super) fn forget(&mut self, device: &DeviceId) {
        self.due.clear(device);
    }
}

impl Node {
    /// `device` is alive: its name is asked for soon if this device has none for it.
    pub(super) fn ask_for_name(&mut self, now: Timestamp, device: DeviceId) {
        let asked = self.name_asks.due.get(&device).is_some();
        if !asked && self.roster.shown_name(&device).is_none() && self.is_peer(&device) {
            self.name_asks.due.set(device, Some(now + FIRST_NAME_ASK));
        }
    }

    /// Asks for the names that are due, and forgets the ones now known.
    pub(super) fn name_asks_timeout(&mut self, now: Timestamp) {
        for device in self.name_asks.due.due(now) {
            if self.roster.shown_name(&device).is_some() || !self.is_peer(&device) {
                self.name_asks.due.clear(&device);
                continue;
            }
            self.name_asks.due.set(device, Some(now + NAME_ASKED_EVERY));
            let via = self.membership.member(&device).and_then(|m| m.via);
            let peer = via.or_else(|| self.messaging.spread_peers().into_iter().find(|p| *p != device));
            if let Some(peer) = peer {
                self.ask(now, peer, false);
            }
        }
    }
}
