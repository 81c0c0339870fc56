//! NAT keepalive: a session whose path crosses a NAT (the peer sees this device at an
//! address not its own: `node/nat.rs`) is kept alive by the endpoint
//! ([`crate::transport::Endpoint::set_keepalive`]) while the peer is wanted: a ring
//! neighbour of the failure detector, or a device messages or the store went to or came
//! from within [`WANTED_FOR`]. Others get nothing, so the frugal profile stays frugal.
//!
//! The interval starts at the configuration's (25 s by default) and comes down to what the
//! NAT shows: when a device behind it turns suspect, the first datagram to it that went
//! unanswered having followed a silence (both ways) of at least [`MIN_KEEPALIVE`], and it
//! is back within [`RECOVERY`] without having restarted, the NAT most likely dropped the
//! mapping in that silence. Once two different devices showed it (one device's word, a
//! stolen device's, moves nothing), the keepalive becomes four fifths of the longer
//! silence (never below [`MIN_KEEPALIVE`]). A network change starts again from the
//! configuration's: another network, another NAT.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::Node;
use crate::identity::DeviceId;
use crate::membership::MemberState;
use crate::time::Timestamp;
use crate::timers::Timers;

/// Shortest keepalive interval (and the shortest silence taken for a NAT's timeout).
pub const MIN_KEEPALIVE: Duration = Duration::from_secs(15);
/// Longest keepalive interval.
pub const MAX_KEEPALIVE: Duration = Duration::from_secs(120);
/// How long a device stays wanted after messages or the store last went to or came from it.
pub const WANTED_FOR: Duration = Duration::from_secs(600);
/// How soon a device must be back after its suspicion for the silence before it to count
/// as a NAT's timeout.
pub const RECOVERY: Duration = Duration::from_secs(60);

/// Which sessions are kept alive, and how often.
#[derive(Debug)]
pub(super) struct Keepalive {
    configured: Duration,
    interval: Duration,
    /// A silence after which a NAT forgot a path, as one device showed it (waiting for a
    /// second device to show it too).
    finding: Option<(DeviceId, Duration)>,
    /// Peers with a keepalive on.
    kept: BTreeSet<DeviceId>,
    /// The failure detector's ring neighbours, as last heard.
    neighbours: BTreeSet<DeviceId>,
    /// Peers behind the NAT used lately, until when they are wanted.
    used_until: Timers<DeviceId>,
    /// Peers behind the NAT that turned suspect: when, and the silence before.
    suspected: BTreeMap<DeviceId, (Timestamp, Duration)>,
}

impl Keepalive {
    /// Keepalives every `interval` (bounded to [`MIN_KEEPALIVE`]..=[`MAX_KEEPALIVE`]).
    pub(super) fn new(interval: Duration) -> Self {
        let interval = interval.clamp(MIN_KEEPALIVE, MAX_KEEPALIVE);
        Self {
            configured: interval,
            interval,
            finding: None,
            kept: BTreeSet::new(),
            neighbours: BTreeSet::new(),
            used_until: Timers::new(),
            suspected: BTreeMap::new(),
        }
    }

    /// When [`Node::handle_timeout`] should review the wanted peers.
    pub(super) fn poll_timeout(&self) -> Option<Timestamp> {
        self.used_until.next()
    }
}

impl Node {
    /// The keepalive interval in use, and the peers whose sessions are kept alive.
    pub fn keepalive(&self) -> (Duration, Vec<DeviceId>) {
        (
            self.keepalive.interval,
            self.keepalive.kept.iter().copied().collect(),
        )
    }

    /// Whether this device reaches `peer` through a NAT: the peer sees it at an address
    /// that is not its own.
    fn through_nat(&self, peer: &DeviceId) -> bool {
        self.nat.translated_for(peer)
    }

    /// Turns `peer`'s keepalive on or off as it is wanted and behind the NAT.
    pub(super) fn review_keepalive(&mut self, peer: DeviceId) {
        let state = &self.keepalive;
        let wanted = state.neighbours.contains(&peer) || state.used_until.get(&peer).is_some();
        let keep = wanted && self.is_peer(&peer) && self.through_nat(&peer);
        if keep != self.keepalive.kept.contains(&peer) {
            if keep {
                self.keepalive.kept.insert(peer);
            } else {
                self.keepalive.kept.remove(&peer);
            }
            self.endpoint
                .set_keepalive(&peer, keep.then_some(self.keepalive.interval));
        }
    }

    /// Every peer a NAT view covers, after this device's addresses changed.
    pub(super) fn review_all_keepalives(&mut self) {
        for peer in self.nat.observers() {
            self.review_keepalive(peer);
        }
    }

    /// Messages or the store went to or came from `peer`: if it is behind the NAT, it is
    /// wanted for a while (others are not tracked: this runs for every such packet).
    pub(super) fn peer_used(&mut self, now: Timestamp, peer: DeviceId) {
        if !self.through_nat(&peer) {
            return;
        }
        let fresh = self.keepalive.used_until.get(&peer).is_none();
        self.keepalive.used_until.set(peer, Some(now + WANTED_FOR));
        if fresh {
            self.review_keepalive(peer);
        }
    }

    /// The failure detector's ring neighbours are now `neighbours`.
    pub(super) fn keepalive_neighbours(&mut self, neighbours: BTreeSet<DeviceId>) {
        let changed: Vec<DeviceId> = self
            .keepalive
            .neighbours
            .symmetric_difference(&neighbours)
            .copied()
            .collect();
        self.keepalive.neighbours = neighbours;
        for peer in changed {
            self.review_keepalive(peer);
        }
    }

    /// Peers no longer used lately are let go.
    pub(super) fn keepalive_timeout(&mut self, now: Timestamp) {
        for peer in self.keepalive.used_until.due(now) {
            self.keepalive.used_until.clear(&peer);
            self.review_keepalive(peer);
        }
    }

    /// Learns the NAT's timeout from a peer's state changing: a suspicion after a long
    /// silence, then the peer back soon without a restart.
    pub(super) fn keepalive_on_state(&mut self, now: Timestamp, peer: DeviceId, state: MemberState) {
        match state {
            MemberState::Suspect if self.through_nat(&peer) => {
                if let Some(silence) = self.endpoint.silence_before_unanswered(&peer) {
                    self.keepalive.suspected.insert(peer, (now, silence));
                }
            }
            MemberState::Active => {
                let Some((at, silence)) = self.keepalive.suspected.remove(&peer) else {
                    return;
                };
                let back_soon = now.saturating_since(at) <= RECOVERY;
                if !back_soon || silence < MIN_KEEPALIVE {
                    return;
                }
                match self.keepalive.finding {
                    Some((first, earlier)) if first != peer => {
                        self.keepalive.finding = None;
                        let learned = (silence.max(earlier) * 4 / 5).max(MIN_KEEPALIVE);
                        if learned < self.keepalive.interval {
                            self.set_keepalive_interval(learned);
                        }
                    }
                    _ => self.keepalive.finding = Some((peer, silence)),
                }
            }
            _ => {}
        }
    }

    /// Another network: what was learned of the old one's NAT does not hold.
    pub(super) fn keepalive_after_network_change(&mut self) {
        self.keepalive.suspected.clear();
        self.keepalive.finding = None;
        if self.keepalive.interval != self.keepalive.configured {
            self.set_keepalive_interval(self.keepalive.configured);
        }
    }

    /// `peer` restarted: its suspicion says nothing of the NAT.
    pub(super) fn keepalive_on_restart(&mut self, peer: &DeviceId) {
        self.keepalive.suspected.remove(peer);
    }

    fn set_keepalive_interval(&mut self, interval: Duration) {
        self.keepalive.interval = interval;
        for peer in &self.keepalive.kept {
            self.endpoint.set_keepalive(peer, Some(interval));
        }
    }
}
