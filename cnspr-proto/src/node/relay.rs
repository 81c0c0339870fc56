//! Relaying through the user's own devices: when two devices have no direct path (behind
//! two NATs that do not let each other in), a third that both reach carries their
//! datagrams.
//!
//! What travels is the ordinary datagram of the two ends' own Noise session (handshakes
//! included), inside the relay's session with each end: `Payload::Relay { to }` from the
//! sender to the relay, `Payload::Relayed { from }` from the relay to the receiver. The
//! relay sees ciphertext and lengths, never content, and cannot forge either end: only
//! the far end's keys open what it carries. To each end the relayed path is one more
//! address of the other (`transport/relay_path.rs`), so every layer above works over it
//! as over a direct one.
//!
//! - **Which relay.** The device whose indirect probe reached the peer first: probe
//!   requests go to a few of the peer's monitors at once, and the first to answer has
//!   the lowest round trip through it. A device the failure detector finds reachable
//!   only through relays gets that relay as one more path; initiations go to every
//!   direct path and through the relay at once, and the first proven answer wins.
//! - **Punching.** A device whose handshake through a relay completes calls the other end
//!   on its direct paths only, at once (at most once per [`PUNCH_INTERVAL`]; not through
//!   the relay, whose answer would come before any path through two filters opened; a
//!   call that finds none gives up quietly): both ends then send to each other at about
//!   the same moment, which opens both NATs' filters where their mappings allow (Tailscale's call-me-maybe; the relayed initiation is the
//!   signal, and its trip through the relay is about the half round trip DCUtR waits).
//!   A relayed peer whose address gossip changes is called there at once (at most once
//!   per [`NEW_ADDRESS_PUNCH_INTERVAL`]): the first punch may have gone out before either
//!   end knew where the other's NAT maps it, and the next upgrade is a minute away.
//!   A relay tells the two ends of a pair it starts to carry where it sees each
//!   (membership news to each): behind a NAT a device publishes only the mapping two peers
//!   see alike, so the relay's word may be the only address of the other's NAT an end has.
//! - **Upgrades.** While a peer's session is relayed, a handshake on every path is made
//!   again each [`UPGRADE_INTERVAL`], and its completion through the relay makes both
//!   ends punch: a direct path that starts to work takes over (an authenticated packet
//!   from a direct address moves the peer there); one that stops falls back to the relay
//!   through the failed probe's new handshake.
//! - **Bounds.** A relay carries datagrams only between two devices of its roster, for at
//!   most `max_pairs` pairs at once (a pair idle for [`PAIR_IDLE`] makes room) and
//!   `max_bytes_per_sec` in all (a one-second bucket); `enabled = false` turns it off.
//!   What it refuses is dropped like a lost datagram. A relayed path is never relayed
//!   again.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::identity::DeviceId;
use crate::membership::MemberState;
use crate::payload::Payload;
use crate::time::Timestamp;
use crate::timers::Timers;
use crate::transport::Hint;
use crate::wire::{self, Packet};

use super::Node;

/// How long a pair of devices keeps its place at a relay without a datagram.
pub const PAIR_IDLE: Duration = Duration::from_secs(120);
/// How often a peer reached through a relay is called on every path again.
pub const UPGRADE_INTERVAL: Duration = Duration::from_secs(60);
/// At most one punch towards a peer per this long.
pub const PUNCH_INTERVAL: Duration = Duration::from_secs(10);
/// At most one punch towards a peer per this long when it is for an address just learned.
pub const NEW_ADDRESS_PUNCH_INTERVAL: Duration = Duration::from_secs(1);
/// How long a relay that said it will not carry a peer's handshakes is passed over for it.
pub const REFUSED_PASSED_OVER: Duration = Duration::from_secs(300);
/// How long a relay through which a handshake got no answer is passed over for that peer
/// (it may have dropped what it should carry; or the peer was away, hence not longer).
pub const SILENT_PASSED_OVER: Duration = Duration::from_secs(60);
/// Most (peer, relay) pairs passed over at once.
const MAX_PASSED_OVER: usize = 1024;

/// Pairs that had a datagram within this long share the rate equally.
const SHARE_WINDOW: Duration = Duration::from_secs(1);

/// A bucket of bytes, filled at a rate, holding a second's worth at most.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: u64,
    filled: Timestamp,
}

impl Bucket {
    fn full(rate: u64, now: Timestamp) -> Self {
        Self {
            tokens: rate,
            filled: now,
        }
    }

    /// Fills it at `rate` until `now`; whether `bytes` are there to take.
    fn can_take(&mut self, now: Timestamp, rate: u64, bytes: u64) -> bool {
        let elapsed = now.saturating_since(self.filled).as_micros().min(1_000_000) as u64;
        let added = rate.saturating_mul(elapsed) / 1_000_000;
        self.tokens = self.tokens.saturating_add(added).min(rate);
        self.filled = now;
        self.tokens >= bytes
    }

    fn take(&mut self, bytes: u64) {
        self.tokens = self.tokens.saturating_sub(bytes);
    }
}

/// Whether and how much this device relays for others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayConfig {
    /// Carry other devices' datagrams at all.
    pub enabled: bool,
    /// Pairs of devices carried at once.
    pub max_pairs: usize,
    /// Bytes carried per second, all pairs together; the pairs busy within the last
    /// second share it equally.
    pub max_bytes_per_sec: u64,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_pairs: 16,
            max_bytes_per_sec: 4 << 20,
        }
    }
}

/// What this device carries for others, and its own relayed peers.
#[derive(Debug)]
pub(super) struct Relaying {
    config: RelayConfig,
    /// Pairs carried (the smaller ID first): when each last had a datagram, and its own
    /// bucket (its share of the rate).
    pairs: BTreeMap<(DeviceId, DeviceId), (Timestamp, Bucket)>,
    /// Bytes that may still be carried, all pairs together.
    bucket: Bucket,
    /// Peers whose session goes through a relay: when each is called on every path again.
    upgrades: Timers<DeviceId>,
    /// When each peer was last punched towards: for a relayed handshake, and (apart, so
    /// that neither holds back the other) for news of an address.
    punched: BTreeMap<DeviceId, Timestamp>,
    punched_on_news: BTreeMap<DeviceId, Timestamp>,
    /// Relays passed over for a peer, until when: `(peer, relay)`.
    passed_over: BTreeMap<(DeviceId, DeviceId), Timestamp>,
}

impl Relaying {
    pub(super) fn new(config: RelayConfig) -> Self {
        Self {
            bucket: Bucket::full(config.max_bytes_per_sec, Timestamp::ZERO),
            config,
            pairs: BTreeMap::new(),
            upgrades: Timers::new(),
            punched: BTreeMap::new(),
            punched_on_news: BTreeMap::new(),
            passed_over: BTreeMap::new(),
        }
    }

    fn pass_over(&mut self, now: Timestamp, peer: DeviceId, relay: DeviceId, for_how_long: Duration) {
        if self.passed_over.len() >= MAX_PASSED_OVER {
            self.passed_over.retain(|_, until| now < *until);
            if self.passed_over.len() >= MAX_PASSED_OVER {
                crate::bounded::remove_least(&mut self.passed_over, |until| *until);
            }
        }
        self.passed_over.insert((peer, relay), now + for_how_long);
    }

    fn passed_over(&self, now: Timestamp, peer: DeviceId, relay: DeviceId) -> bool {
        self.passed_over
            .get(&(peer, relay))
            .is_some_and(|until| now < *until)
    }

    /// Whether `a` and `b` are a pair this device has not carried for lately.
    fn new_pair(&self, now: Timestamp, a: DeviceId, b: DeviceId) -> bool {
        let last = self.pairs.get(&(a.min(b), a.max(b)));
        last.is_none_or(|(last, _)| now.saturating_since(*last) >= PAIR_IDLE)
    }

    /// Whether a datagram of `bytes` between `a` and `b` may be carried now; counts it.
    /// Each pair carried within the last second has an equal share of the rate (one pair
    /// cannot starve the others), and all together the rate.
    fn admit(&mut self, now: Timestamp, a: DeviceId, b: DeviceId, bytes: usize) -> bool {
        if !self.config.enabled {
            return false;
        }
        let pair = (a.min(b), a.max(b));
        if !self.pairs.contains_key(&pair) && self.pairs.len() >= self.config.max_pairs {
            self.pairs
                .retain(|_, (last, _)| now.saturating_since(*last) < PAIR_IDLE);
            if self.pairs.len() >= self.config.max_pairs {
                return false;
            }
        }
        let rate = self.config.max_bytes_per_sec;
        // At most `max_pairs` entries: the scan is bounded by the configuration.
        let busy = |(p, (last, _)): (&(DeviceId, DeviceId), &(Timestamp, Bucket))| {
            *p != pair && now.saturating_since(*last) < SHARE_WINDOW
        };
        let others = self.pairs.iter().filter(|entry| busy(*entry)).count() as u64;
        let share = rate / (others + 1);
        let (_, own) = self.pairs.entry(pair).or_insert((now, Bucket::full(share, now)));
        let bytes = bytes as u64;
        if !own.can_take(now, share, bytes) || !self.bucket.can_take(now, rate, bytes) {
            return false;
        }
        own.take(bytes);
        self.bucket.take(bytes);
        if let Some((last, _)) = self.pairs.get_mut(&pair) {
            *last = now;
        }
        true
    }

    pub(super) fn poll_timeout(&self) -> Option<Timestamp> {
        self.upgrades.next()
    }

    pub(super) fn forget(&mut self, device: &DeviceId) {
        self.pairs.retain(|(a, b), _| a != device && b != device);
        self.passed_over.retain(|(a, b), _| a != device && b != device);
        self.upgrades.clear(device);
        self.punched.remove(device);
        self.punched_on_news.remove(device);
    }

    /// Pairs of devices carried in the last [`PAIR_IDLE`].
    pub(super) fn pairs(&self, now: Timestamp) -> usize {
        self.pairs
            .values()
            .filter(|(last, _)| now.saturating_since(*last) < PAIR_IDLE)
            .count()
    }
}

impl Node {
    /// `from` asks this device to carry `datagram` on to `to`. Only between two devices of
    /// the roster, each reached directly (a relayed path is never relayed again), within
    /// the bounds.
    pub(super) fn on_relay(&mut self, now: Timestamp, from: DeviceId, to: DeviceId, datagram: Vec<u8>) {
        let between_peers = from != to && to != self.own_id() && self.is_peer(&from) && self.is_peer(&to);
        let from_direct = self.endpoint.relayed_through(&from).is_none();
        let initiation = matches!(wire::decode(&datagram), Ok(Packet::HandshakeInit { .. }));
        let bytes = datagram.len() as u64;
        let new_pair = self.relaying.new_pair(now, from, to);
        let carried = between_peers
            && from_direct
            && self.relaying.admit(now, from, to, datagram.len())
            && self
                .send_payload(now, to, &Payload::Relayed { from, datagram })
                .is_ok();
        if carried {
            self.stats.relayed_bytes += bytes;
            if new_pair {
                // Each end learns where this device sees the other: a direct path to try.
                self.membership.introduce(to, from);
                self.membership.introduce(from, to);
            }
            return;
        }
        self.stats.relay_refused += 1;
        // Told for an initiation (as often as the sender's handshake retries), so that it
        // picks another relay at once rather than after its handshake gives up.
        if initiation && from_direct && self.is_peer(&from) {
            let _ = self.send_payload(now, from, &Payload::RelayRefused { to });
        }
    }

    /// `relay` will not carry our handshakes to `to`: another relay is picked.
    pub(super) fn relay_refused(&mut self, now: Timestamp, relay: DeviceId, to: DeviceId) {
        if self.endpoint.relay_of(&to) == Some(relay) {
            self.relaying.pass_over(now, to, relay, REFUSED_PASSED_OVER);
            self.pick_relay(now, to);
        }
    }

    /// A handshake with `peer` got no answer: if a relay was one of its paths, that relay
    /// is passed over for a while and another picked.
    pub(super) fn relay_handshake_failed(&mut self, now: Timestamp, peer: DeviceId) {
        if let Some(relay) = self.endpoint.relay_of(&peer) {
            self.relaying.pass_over(now, peer, relay, SILENT_PASSED_OVER);
            self.pick_relay(now, peer);
        }
    }

    /// The failure detector reached `peer` through `relay` (the first to report): it
    /// becomes the peer's relay unless it was passed over for it lately.
    pub(super) fn relay_reported(&mut self, now: Timestamp, peer: DeviceId, relay: DeviceId) {
        if self.relaying.passed_over(now, peer, relay) {
            if self.endpoint.relay_of(&peer).is_none() {
                self.pick_relay(now, peer);
            }
        } else {
            self.endpoint.set_relay(&peer, Some(relay));
        }
    }

    /// Gives `peer` the nearest of its other monitors as its relay that is reached
    /// directly and not passed over (none if there is none).
    fn pick_relay(&mut self, now: Timestamp, peer: DeviceId) {
        let next = self.membership.relay_candidates(&peer).into_iter().find(|relay| {
            *relay != peer
                && !self.relaying.passed_over(now, peer, *relay)
                && self.endpoint.relayed_through(relay).is_none()
        });
        self.endpoint.set_relay(&peer, next);
    }

    /// `relay` carried `datagram` from `from` to this device: handled as a datagram that
    /// came by the relayed path, which only `from`'s keys open.
    pub(super) fn on_relayed(&mut self, now: Timestamp, relay: DeviceId, from: DeviceId, datagram: &[u8]) {
        if from != relay && self.is_peer(&from) {
            let _ = self.endpoint.handle_relayed(now, relay, from, datagram);
        }
    }

    /// A handshake with `peer` completed. Through a relay: both ends call each other on
    /// every path at once (each completes the same handshake within about half a round
    /// trip of the other), at most once per [`PUNCH_INTERVAL`].
    pub(super) fn relay_established(&mut self, now: Timestamp, peer: DeviceId) {
        if self.endpoint.relayed_through(&peer).is_some() {
            self.punch(now, peer, false);
        }
    }

    /// Gossip says `peer` is at a new address: while its session is relayed, it is called
    /// there at once, at most once per [`NEW_ADDRESS_PUNCH_INTERVAL`].
    pub(super) fn relay_peer_moved(&mut self, now: Timestamp, peer: DeviceId) {
        if self.endpoint.relayed_through(&peer).is_some() {
            self.punch(now, peer, true);
        }
    }

    /// Another device sees `peer` at `address`, which this device did not take (it hears
    /// the peer through a relay): it is tried too, and, when it is a new hint, at once
    /// while the peer is alive but not reached directly (a device behind a NAT publishes
    /// only what two peers see alike; a relay tells each end of a new pair where it sees
    /// the other). A roster device's news can thus make this one call an address of its
    /// choosing: once a second per live peer at most, and only what a call sends.
    pub(super) fn peer_seen_elsewhere(&mut self, now: Timestamp, peer: DeviceId, address: SocketAddr) {
        let news = self.endpoint.set_hint(now, &peer, Hint::SeenElsewhere, address);
        let alive = matches!(
            self.membership.member(&peer).map(|m| m.state()),
            Some(MemberState::Active | MemberState::Indirect)
        );
        if news && alive && !self.reached_directly(now, &peer) {
            self.punch(now, peer, true);
        }
    }

    /// Calls `peer` at once, unless it was lately ([`PUNCH_INTERVAL`];
    /// [`NEW_ADDRESS_PUNCH_INTERVAL`] for news of an address, counted apart): on its
    /// direct paths while its session is relayed, on every path otherwise
    /// (`Endpoint::call_directly`). A handshake under way is made again at once to every
    /// destination, the new one included: an answer on its way to the old one still
    /// counts, and the new destination is tried a retry sooner (the simulator's 5-device
    /// crash detection, p50: 1.868 s this way, 2.024 s waiting).
    fn punch(&mut self, now: Timestamp, peer: DeviceId, on_news: bool) {
        let (last, interval) = if on_news {
            (&mut self.relaying.punched_on_news, NEW_ADDRESS_PUNCH_INTERVAL)
        } else {
            (&mut self.relaying.punched, PUNCH_INTERVAL)
        };
        let lately = last
            .get(&peer)
            .is_some_and(|at| now.saturating_since(*at) < interval);
        if !lately {
            last.insert(peer, now);
            self.endpoint.call_directly(now, &peer);
        }
    }

    /// Carries the endpoint's datagrams for relayed paths to their relays, sealed in each
    /// relay's own session: after the round's writes when they may acknowledge one, at
    /// once otherwise, like any datagram. One the relay cannot take (no direct path to
    /// it) is lost like any datagram, and counted (`Stats::relay_unsent`).
    pub(super) fn carry_relayed(&mut self, now: Timestamp) -> bool {
        let mut carried = false;
        while let Some(transmit) = self.endpoint.poll_relayed() {
            carried = true;
            let payload = Payload::Relay {
                to: transmit.to,
                datagram: transmit.datagram,
            };
            let handed = payload.encode().is_ok_and(|bytes| {
                self.endpoint
                    .send_carried(now, &transmit.relay, &bytes, transmit.prompt)
                    .is_ok()
            });
            if !handed {
                self.stats.relay_unsent += 1;
            }
        }
        carried
    }

    /// `peer`'s path changed: while it goes through a relay, a direct one is tried again
    /// every [`UPGRADE_INTERVAL`]; once it is direct, the relay is no longer a path of it
    /// (the failure detector finds one again if the direct path fails).
    pub(super) fn relay_path_changed(&mut self, now: Timestamp, peer: DeviceId) {
        let relayed = self.endpoint.relayed_through(&peer).is_some();
        if !relayed {
            self.relaying.upgrades.clear(&peer);
            self.endpoint.set_relay(&peer, None);
        } else if self.relaying.upgrades.get(&peer).is_none() {
            self.relaying.upgrades.set(peer, Some(now + UPGRADE_INTERVAL));
        }
    }

    pub(super) fn relay_timeout(&mut self, now: Timestamp) {
        for peer in self.relaying.upgrades.due(now) {
            if self.endpoint.relayed_through(&peer).is_some() {
                // A handshake on every path: its completion through the relay makes both
                // ends punch at once (`relay_established`), which one end's call alone
                // would not.
                self.relaying.upgrades.set(peer, Some(now + UPGRADE_INTERVAL));
                self.endpoint.connect_now(now, &peer);
            } else {
                self.relaying.upgrades.clear(&peer);
            }
        }
    }

    /// The device `peer`'s session goes through, while its path is relayed.
    pub fn relayed_through(&self, peer: &DeviceId) -> Option<DeviceId> {
        self.endpoint.relayed_through(peer)
    }

    /// Pairs of other devices this device carried datagrams between lately (in the last
    /// [`PAIR_IDLE`]).
    pub fn relayed_pairs(&self, now: Timestamp) -> usize {
        self.relaying.pairs(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(byte: u8) -> DeviceId {
        DeviceId::from_bytes([byte; 32])
    }

    fn at(secs: u64) -> Timestamp {
        Timestamp::from_micros(secs * 1_000_000)
    }

    #[test]
    fn a_relay_carries_so_many_pairs_and_bytes_and_nothing_when_off() {
        let mut relaying = Relaying::new(RelayConfig {
            enabled: true,
            max_pairs: 2,
            max_bytes_per_sec: 3000,
        });
        assert!(relaying.admit(at(1), id(1), id(2), 1000));
        // The same pair either way round.
        assert!(relaying.admit(at(1), id(2), id(1), 1000));
        assert!(relaying.admit(at(1), id(1), id(3), 1000));
        // A third pair while both others are fresh: refused.
        assert!(!relaying.admit(at(2), id(4), id(5), 10));
        // The bucket: 3000 bytes a second, spent; half a second later, 1500 more.
        assert!(!relaying.admit(at(1), id(1), id(2), 10));
        let half = Timestamp::from_micros(1_500_000);
        assert!(relaying.admit(half, id(1), id(2), 1500));
        assert!(!relaying.admit(half, id(1), id(2), 1));
        // Idle pairs make room.
        assert!(relaying.admit(at(200), id(4), id(5), 10));
        assert_eq!(relaying.pairs(at(200)), 1);
        let mut off = Relaying::new(RelayConfig {
            enabled: false,
            ..RelayConfig::default()
        });
        assert!(!off.admit(at(1), id(1), id(2), 1));
    }

    #[test]
    fn a_busy_pair_leaves_its_share_to_another() {
        let mut relaying = Relaying::new(RelayConfig {
            enabled: true,
            max_pairs: 4,
            max_bytes_per_sec: 3000,
        });
        // Two pairs sending 200 bytes each every 10 ms (60 000 B/s wanted between them),
        // the first always first: over ten seconds each carries about half the rate.
        let mut carried = [0u64; 2];
        for tick in 0..1000u64 {
            let now = Timestamp::from_micros(1_000_000 + tick * 10_000);
            for (i, pair) in [(id(1), id(2)), (id(3), id(4))].into_iter().enumerate() {
                if relaying.admit(now, pair.0, pair.1, 200) {
                    carried[i] += 200;
                }
            }
        }
        for bytes in carried {
            assert!((12_000..=18_000).contains(&bytes), "{carried:?}");
        }
        assert!(carried.iter().sum::<u64>() <= 3000 * 11, "{carried:?}");
    }
}
