//! Membership and failure detection: SWIM with Lifeguard's refinements, over the encrypted
//! sessions of [`crate::transport`].
//!
//! - Each device monitors its successors on the monitoring ring (`overlay.rs`); every
//!   probe interval it probes the one heard from longest ago, unless even that one proved
//!   itself alive recently (while this device's own health is poor it probes anyway,
//!   accusing nobody: answered probes restore its health).
//! - A probe that gets no answer asks the target's other monitors to probe it
//!   ([`Body::ProbeRequest`]); if one reaches it, the target is `indirect`.
//! - If nobody reaches it, it becomes `suspect`. The news floods the ring; its monitors
//!   probe it at once and confirm, and every confirmation shortens the suspicion timeout
//!   ([`suspicion`]). The target, hearing it is suspected, refutes with a higher
//!   incarnation. When the timeout ends it is `unreachable`.
//! - A device that misses answers or sleeps slows down and waits longer before accusing
//!   anyone ([`health`]).
//! - Every direct message carries the sender's incarnation, so a device that restarts or
//!   wakes up is taken back at once.
//!
//! Sans-IO like the rest of the core: inputs are [`Membership::handle_envelope`],
//! [`Membership::handle_timeout`] and the commands; outputs are drained with
//! [`Membership::poll_transmit`] and [`Membership::poll_event`], and
//! [`Membership::poll_timeout`] says when to call `handle_timeout` next.

mod broadcast;
mod claim;
mod config;
mod health;
mod member;
mod message;
mod news;
mod overlay;
mod probe;
mod rtt;
mod suspicion;
mod view;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;

pub use claim::{sign as sign_claim, Claim};
pub use config::MembershipConfig;
pub use member::{Member, MemberState};
pub use message::{Body, Envelope, Status, Update, ViewCheck};
pub use rtt::RttEstimate;

use crate::identity::{DeviceId, DeviceKey, Signature};
use crate::rng::Rng;
use crate::time::Timestamp;
use crate::timers::Timers;
use broadcast::Broadcasts;
use health::LocalHealth;
use overlay::Ring;
use probe::{Probe, RelayedProbe};
use view::ViewDigest;

/// Round-trip figures known of a device before hearing from it lets its probes wait.
const RTT_FIGURES_WANTED: u64 = 3;

/// A message for the node to seal and send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// To whom.
    pub to: DeviceId,
    /// What.
    pub envelope: Envelope,
}

/// What membership reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipEvent {
    /// A member's shown state changed.
    StateChanged {
        /// Who.
        member: DeviceId,
        /// Its state before.
        previous: MemberState,
        /// Its state now.
        state: MemberState,
    },
    /// A member was reached at a new address.
    AddressChanged {
        /// Who.
        member: DeviceId,
        /// Where it is now.
        address: SocketAddr,
    },
    /// Another device says a member it finds alive is at an address this device does not
    /// have for it (and did not take: it heard from the member lately, or the news was not
    /// newer). Worth a call there for a device reached only through a relay. The node acts
    /// on it and does not pass it on.
    AddressHeard {
        /// Who.
        member: DeviceId,
        /// Where the other device sees it.
        address: SocketAddr,
    },
    /// A member started again since it was last heard of (a later boot's incarnation):
    /// whatever it held only in memory is gone.
    Restarted {
        /// Who.
        member: DeviceId,
    },
}

/// How many messages to each device carry this device's claim of a new incarnation:
/// enough that losses rarely keep it from the device, which otherwise learns the claim
/// only from news.
const CLAIM_SENDS: u8 = 3;

/// Most probes (our own and confirmations) in flight at once.
const MAX_PROBES: usize = 8;
/// Most probes made on others' request in flight at once.
const MAX_RELAYED: usize = 32;

/// One device's view of the mesh and its failure detector.
pub struct Membership {
    config: MembershipConfig,
    own: DeviceId,
    /// Signs this device's claims of its incarnation.
    key: DeviceKey,
    incarnation: u64,
    /// This device's signed claim of running at `incarnation`.
    proof: Signature,
    leaving: bool,
    members: BTreeMap<DeviceId, Member>,
    /// Members under suspicion, by when their suspicion runs out (a partition makes half
    /// the mesh suspect: looking at each of them at every poll was a seventh of a
    /// 300-device simulation's time while it lasted).
    suspicions: Timers<DeviceId>,
    ring: Ring,
    health: LocalHealth,
    broadcasts: Broadcasts,
    flood: BTreeMap<DeviceId, Vec<Update>>,
    probes: BTreeMap<u32, Probe>,
    relayed: BTreeMap<u32, RelayedProbe>,
    next_seq: u32,
    next_probe: Timestamp,
    next_reconnect: Timestamp,
    last_input: Timestamp,
    rng: Rng,
    outgoing: VecDeque<Outgoing>,
    events: VecDeque<MembershipEvent>,
    rehandshakes: VecDeque<DeviceId>,
    /// Devices an indirect probe reached, each with the relay whose report came first.
    reached_through: VecDeque<(DeviceId, DeviceId)>,
    woke: bool,
    /// This device's view, as a digest neighbours compare.
    view: ViewDigest,
    /// When the next probe carries the view digest.
    next_view_check: Timestamp,
}

impl Membership {
    /// The membership of the device of `key` (which signs its incarnation claims) with
    /// the given roster (other devices and any known address). `boot` counts this
    /// device's starts and must grow with each one (the daemon persists it), so that
    /// incarnations of a restarted device supersede all of its earlier ones.
    pub fn new(
        config: MembershipConfig,
        key: DeviceKey,
        roster: impl IntoIterator<Item = (DeviceId, Option<SocketAddr>)>,
        boot: u32,
        rng_seed: [u8; 32],
        now: Timestamp,
    ) -> Self {
        let own = key.device_id();
        let members: BTreeMap<DeviceId, Member> = roster
            .into_iter()
            .filter(|(id, _)| *id != own)
            .map(|(id, address)| (id, Member::unheard(id, address, now)))
            .collect();
        let ring = Ring::new(own, members.keys().copied());
        let incarnation = (u64::from(boot) << 32).max(1);
        let proof = claim::sign(&key, incarnation, Claim::Running);
        let mut view = ViewDigest::default();
        view.toggle(&own, incarnation, Status::Alive);
        for member in members.values() {
            view.toggle(&member.id, member.incarnation, member.status);
        }
        let mut rng = Rng::from_seed(rng_seed);
        let phase_micros = u64::try_from(config.probe_interval.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let first_probe = now + std::time::Duration::from_micros(rng.next_u64() % phase_micros);
        let next_view_check = now + config.reconnect_interval;
        let mut membership = Self {
            health: LocalHealth::new(config.health_max),
            config,
            own,
            key,
            incarnation,
            proof,
            leaving: false,
            members,
            suspicions: Timers::new(),
            ring,
            broadcasts: Broadcasts::default(),
            flood: BTreeMap::new(),
            probes: BTreeMap::new(),
            relayed: BTreeMap::new(),
            next_seq: 0,
            // A random phase, so that devices started together do not probe in lockstep.
            next_probe: first_probe,
            next_reconnect: now,
            last_input: now,
            rng,
            outgoing: VecDeque::new(),
            events: VecDeque::new(),
            rehandshakes: VecDeque::new(),
            reached_through: VecDeque::new(),
            woke: false,
            view,
            next_view_check,
        };
        membership.spread_own_claim();
        membership
    }

    // ----- getters -----

    /// This device's ID.
    pub fn own_id(&self) -> DeviceId {
        self.own
    }

    /// This device's current incarnation.
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// Every other member of the roster.
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    /// One member.
    pub fn member(&self, id: &DeviceId) -> Option<&Member> {
        self.members.get(id)
    }

    /// The local health multiplier (1 = healthy).
    pub fn health_multiplier(&self) -> u32 {
        self.health.multiplier()
    }

    /// The live devices beside this one on the monitoring ring, both ways: the
    /// neighbours membership keeps sessions with, and where broadcasts go in a large mesh.
    pub fn neighbours(&self) -> std::collections::BTreeSet<DeviceId> {
        let own = self.own;
        self.neighbourhood(&own)
            .into_iter()
            .filter(|id| *id != own)
            .collect()
    }

    /// Whether this device has said goodbye.
    pub fn is_leaving(&self) -> bool {
        self.leaving
    }

    // ----- commands -----

    /// Announces this device to its ring neighbours (whatever their state), so a device
    /// that starts (or wakes) is taken back at once rather than at the next probe round;
    /// the news floods on from them.
    pub fn announce(&mut self, now: Timestamp) {
        self.last_input = self.last_input.max(now);
        let reachable = |id: &DeviceId| self.members.get(id).is_some_and(|m| m.address.is_some());
        for target in self
            .ring
            .neighbourhood_of(&self.own, self.config.monitors, reachable)
        {
            self.send(
                target,
                Body::Ping {
                    seq: 0,
                    your_rtt_micros: None,
                },
                Vec::new(),
            );
        }
    }

    /// Says goodbye: every live member hears that this device left, and probing stops.
    pub fn leave(&mut self, now: Timestamp) {
        if self.leaving {
            return;
        }
        self.leaving = true;
        self.probes.clear();
        self.relayed.clear();
        let update = self.own_update(Status::Left);
        let live: Vec<DeviceId> = self
            .members
            .values()
            .filter(|m| m.is_live())
            .map(|m| m.id)
            .collect();
        for to in live {
            self.send(to, Body::News, vec![update.clone()]);
        }
        self.last_input = self.last_input.max(now);
    }

    /// Adds a device that joined the roster and greets it at once if its address is
    /// known. A member already known keeps its state (and gains the address if it had
    /// none).
    pub fn add_member(&mut self, now: Timestamp, id: DeviceId, address: Option<SocketAddr>) {
        if id == self.own {
            return;
        }
        if let Some(member) = self.members.get(&id) {
            if let Some(address) = address.filter(|_| member.address.is_none()) {
                self.set_address(id, address);
            }
            return;
        }
        let member = Member::unheard(id, address, now);
        self.view.toggle(&id, member.incarnation, member.status);
        self.members.insert(id, member);
        self.ring = Ring::new(self.own, self.members.keys().copied());
        if address.is_some() && !self.leaving {
            self.start_probe(now, id, false);
        }
    }

    /// Forgets a device revoked from the roster: no more probes, news or suspicion.
    pub fn remove_member(&mut self, id: &DeviceId) {
        let Some(removed) = self.members.remove(id) else {
            return;
        };
        self.view.toggle(id, removed.incarnation, removed.status);
        self.suspicions.clear(id);
        self.flood.remove(id);
        self.probes.retain(|_, probe| probe.target != *id);
        self.relayed
            .retain(|_, relayed| relayed.target != *id && relayed.requester != *id);
        self.ring = Ring::new(self.own, self.members.keys().copied());
    }

    /// The node saw an authenticated packet from `member` arrive from `address`.
    pub fn observe_address(&mut self, member: &DeviceId, address: SocketAddr) {
        let Some(m) = self.members.get(member) else {
            return;
        };
        if m.address == Some(address) {
            return;
        }
        let roamed = m.address.is_some();
        let (incarnation, status) = (m.incarnation, m.status);
        self.set_address(*member, address);
        // Tell the others where it went, piggybacked: those that cannot reach it at the
        // old address adopt the new one.
        if roamed && status == Status::Alive {
            let news = self.finding(*member, incarnation, status, Some(address));
            self.broadcasts.push(news);
        }
    }

    /// An authenticated packet of any layer came straight from `member`: the direct path
    /// works, so a member shown `indirect` is `active` again (whatever the packet carried:
    /// a store catch-up proves the path as well as a ping does).
    pub fn observe_direct(&mut self, now: Timestamp, member: &DeviceId) {
        if !self.leaving {
            self.mark_reached(now, *member, false);
        }
    }

    /// A handshake with `member` just completed: the direct path works now. An
    /// unreachable member is probed at once (its answer, with its incarnation, brings it
    /// back) rather than at the next reconnect round: a path found from news (an address
    /// record, a beacon, an anchor) otherwise waited up to `reconnect_interval` to count.
    /// At most once a `reconnect_interval` per member: a device that completes handshakes
    /// but answers no ping costs no more than the reconnect rounds.
    pub fn observe_handshake(&mut self, now: Timestamp, member: &DeviceId) {
        self.observe_direct(now, member);
        let interval = self.config.reconnect_interval;
        let Some(found) = self.members.get_mut(member) else {
            return;
        };
        let due = found
            .probed_on_handshake
            .is_none_or(|at| now.saturating_since(at) >= interval);
        if found.status == Status::Unreachable && found.address.is_some() && due && !self.leaving {
            found.probed_on_handshake = Some(now);
            self.start_probe(now, *member, false);
        }
    }

    // ----- inputs -----

    /// Takes a message that arrived, authenticated, from `from`.
    pub fn handle_envelope(&mut self, now: Timestamp, from: DeviceId, envelope: Envelope) {
        self.note_wake(now);
        if self.leaving || !self.members.contains_key(&from) {
            return;
        }
        let probe_due = now + self.jittered(self.config.recently_heard);
        if let Some(member) = self.members.get_mut(&from) {
            member.last_heard = Some(now);
            // A device new to this one is probed all the same until the round trip
            // shown rests on a few figures (measured here or reported by it): the first
            // ones come while both are busy meeting.
            let measured = member.rtt.figures() >= RTT_FIGURES_WANTED;
            member.probe_due = Some(if measured { probe_due } else { now });
            member.fresh = true;
        }
        // A direct message proves the direct path works again.
        self.mark_reached(now, from, false);
        self.handle_incarnation(now, from, envelope.incarnation, envelope.claim);
        for update in envelope.updates {
            self.apply_update(now, update, Some(from));
        }
        self.handle_body(now, from, envelope.body);
        if let Some(check) = envelope.view {
            self.compare_view(from, check);
        }
        self.flush_flood();
    }

    /// Runs every timer that is due.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.note_wake(now);
        if self.leaving {
            return;
        }
        self.expire_probes(now);
        self.expire_suspicions(now);
        if now >= self.next_probe {
            self.probe_next(now);
            self.next_probe = now + self.config.probe_interval * self.health.multiplier();
        }
        if now >= self.next_reconnect {
            self.reconnect(now);
            self.next_reconnect = now + self.config.reconnect_interval;
        }
        self.flush_flood();
    }

    // ----- outputs -----

    /// The next message to send.
    pub fn poll_transmit(&mut self) -> Option<Outgoing> {
        self.outgoing.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<MembershipEvent> {
        self.events.pop_front()
    }

    /// Whether this device just woke from a sleep (reported once). Its sessions may be
    /// stale: any peer may have restarted meanwhile and lost the keys.
    pub fn poll_woke(&mut self) -> bool {
        std::mem::take(&mut self.woke)
    }

    /// The next device whose session should be renewed with a fresh handshake: it did
    /// not answer a direct probe, and the usual reason is that it restarted and lost the
    /// keys we still seal with (WireGuard renews keys for the same reason).
    pub fn poll_rehandshake(&mut self) -> Option<DeviceId> {
        self.rehandshakes.pop_front()
    }

    /// The next device our own probe could not reach and a relay's did: `(device, relay)`,
    /// the relay whose report came first (the least round trip through a relay of those
    /// asked). The node gives the device a path through it (`node/relay.rs`).
    pub fn poll_reached_through(&mut self) -> Option<(DeviceId, DeviceId)> {
        self.reached_through.pop_front()
    }

    /// When [`Membership::handle_timeout`] next has work; `None` once this device left.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        if self.leaving {
            return None;
        }
        let probes = self.probes.values().map(|p| p.deadline);
        let relayed = self.relayed.values().map(|r| r.deadline);
        [
            Some(self.next_probe),
            Some(self.next_reconnect),
            self.suspicions.next(),
        ]
        .into_iter()
        .flatten()
        .chain(probes)
        .chain(relayed)
        .min()
    }

    // ----- shared helpers -----

    /// Wakes from sleep: a timer that fires far later than asked means this device was
    /// suspended. Its suspicions could not have heard refutations, and others have
    /// probably declared it unreachable: restart the former, refute the latter.
    fn note_wake(&mut self, now: Timestamp) {
        // Overdue is at most the time since the last input: too short for a sleep, so the
        // timers need no look (this runs on every input).
        if now.saturating_since(self.last_input) < self.config.sleep_threshold {
            self.last_input = self.last_input.max(now);
            return;
        }
        let overdue = self
            .poll_timeout()
            .map(|due| now.saturating_since(due.max(self.last_input)));
        self.last_input = self.last_input.max(now);
        if self.leaving || overdue.is_none_or(|late| late < self.config.sleep_threshold) {
            return;
        }
        self.health.worse();
        self.probes.clear();
        self.relayed.clear();
        // News queued before the sleep is stale; so is everything we knew.
        self.broadcasts = Broadcasts::default();
        for member in self.members.values_mut() {
            member.fresh = false;
            if let Some(suspicion) = &mut member.suspicion {
                suspicion.restart(now);
            }
        }
        let suspects: Vec<DeviceId> = self.suspicions.keys().collect();
        for suspect in suspects {
            self.time_suspicion(&suspect);
        }
        self.raise_incarnation();
        self.woke = true;
        self.next_probe = now + self.config.probe_interval;
        self.announce(now);
    }

    /// Sends the news gathered while handling one input, batched per neighbour.
    fn flush_flood(&mut self) {
        let flood = std::mem::take(&mut self.flood);
        for (to, updates) in flood {
            for chunk in updates.chunks(self.config.piggyback_max.max(1)) {
                self.send(to, Body::News, chunk.to_vec());
            }
        }
    }

    fn send(&mut self, to: DeviceId, body: Body, updates: Vec<Update>) {
        self.send_with_view(to, body, updates, None);
    }

    fn send_with_view(
        &mut self,
        to: DeviceId,
        body: Body,
        mut updates: Vec<Update>,
        view: Option<ViewCheck>,
    ) {
        // A view digest takes the room of one update, so that any envelope fits a datagram.
        let room = self
            .config
            .piggyback_max
            .saturating_sub(updates.len() + usize::from(view.is_some()));
        updates.extend(self.broadcasts.take(room, self.retransmit_limit()));
        let envelope = self.envelope(to, body, updates, view);
        self.outgoing.push_back(Outgoing { to, envelope });
    }

    /// An envelope to `to`, with our claim of our incarnation in the first few to it
    /// since it changed.
    fn envelope(
        &mut self,
        to: DeviceId,
        body: Body,
        updates: Vec<Update>,
        view: Option<ViewCheck>,
    ) -> Envelope {
        let incarnation = self.incarnation;
        let claim = self.members.get_mut(&to).and_then(|member| {
            if member.claim_sent.0 != incarnation {
                member.claim_sent = (incarnation, 0);
            }
            let (_, sent) = &mut member.claim_sent;
            (*sent < CLAIM_SENDS).then(|| {
                *sent += 1;
                self.proof
            })
        });
        Envelope {
            incarnation,
            body,
            updates,
            view,
            claim,
        }
    }

    /// This device's view digest, to compare: due on the next probe once per
    /// reconnect interval.
    fn view_check(&mut self, now: Timestamp) -> Option<ViewCheck> {
        if now < self.next_view_check {
            return None;
        }
        self.next_view_check = now + self.config.reconnect_interval;
        Some(ViewCheck {
            digest: self.view.bytes(),
            reply: true,
        })
    }

    /// A neighbour's view digest: if ours differs, it gets our whole view (and, if it
    /// asks, our digest, so that it sends its own view back).
    fn compare_view(&mut self, from: DeviceId, check: ViewCheck) {
        if check.digest == self.view.bytes() {
            return;
        }
        let ours = check.reply.then(|| ViewCheck {
            digest: self.view.bytes(),
            reply: false,
        });
        self.send_state_with(from, ours);
    }

    /// Raises this device's incarnation (a refutation, a wake-up).
    fn raise_incarnation(&mut self) {
        let own = self.own;
        self.view.toggle(&own, self.incarnation, Status::Alive);
        self.incarnation = self.incarnation.saturating_add(1);
        self.view.toggle(&own, self.incarnation, Status::Alive);
        self.proof = claim::sign(&self.key, self.incarnation, Claim::Running);
        self.spread_own_claim();
    }

    /// Queues this device's signed claim of its incarnation for piggybacking: how
    /// devices it does not talk to learn that it started, woke or refuted (news of it
    /// from others, without the claim, is not believed at an incarnation they have not
    /// heard it at).
    fn spread_own_claim(&mut self) {
        let alive = self.own_update(Status::Alive);
        self.broadcasts.push(alive);
    }

    fn retransmit_limit(&self) -> u32 {
        let devices = u32::try_from(self.members.len() + 1).unwrap_or(u32::MAX);
        self.config.retransmit_mult * (u32::BITS - devices.leading_zeros()).max(1)
    }

    fn own_update(&self, status: Status) -> Update {
        let proof = match Claim::backing(status) {
            Claim::Left => claim::sign(&self.key, self.incarnation, Claim::Left),
            Claim::Running => self.proof,
        };
        Update {
            proof: Some(proof),
            ..self.finding(self.own, self.incarnation, status, None)
        }
    }

    /// News that this device reports about `member`.
    fn finding(
        &self,
        member: DeviceId,
        incarnation: u64,
        status: Status,
        address: Option<SocketAddr>,
    ) -> Update {
        // The member's own claim goes along when it covers this news.
        let proof = self
            .members
            .get(&member)
            .filter(|m| m.incarnation == incarnation && Claim::backing(m.status) == Claim::backing(status))
            .and_then(|m| m.proof);
        Update {
            member,
            incarnation,
            status,
            reporter: self.own,
            address,
            proof,
        }
    }

    fn next_seq(&mut self) -> u32 {
        self.next_seq = self.next_seq.wrapping_add(1);
        self.next_seq
    }

    /// The devices that may reach `target` for this one: its other monitors on the ring,
    /// nearest first, alive and reached directly. Indirect probes ask them; a device whose
    /// path to `target` goes through a relay picks one of them.
    pub fn relay_candidates(&self, target: &DeviceId) -> Vec<DeviceId> {
        let own = self.own;
        self.ring.monitors_of(target, self.config.monitors, |id| {
            *id != own
                && self
                    .members
                    .get(id)
                    .is_some_and(|m| m.status == Status::Alive && !m.indirect)
        })
    }

    /// Live members this device monitors (its ring successors).
    fn monitored(&self) -> Vec<DeviceId> {
        self.ring.successors(self.config.monitors, |id| {
            self.members.get(id).is_some_and(Member::is_live)
        })
    }

    /// Live ring neighbours of `of` both ways: where news from it floods.
    fn neighbourhood(&self, of: &DeviceId) -> Vec<DeviceId> {
        let own = self.own;
        let live = |id: &DeviceId| *id == own || self.members.get(id).is_some_and(Member::is_live);
        self.ring.neighbourhood_of(of, self.config.monitors, live)
    }

    /// Changes a member's address and reports it (the daemon persists addresses). A
    /// relayed path's name (`transport/relay_path.rs`) is never a member's address, from
    /// whoever it comes.
    fn set_address(&mut self, id: DeviceId, address: SocketAddr) {
        if crate::transport::relay_path::is_relay_address(&address) {
            return;
        }
        let Some(member) = self.members.get_mut(&id) else {
            return;
        };
        if member.address != Some(address) {
            member.address = Some(address);
            self.events
                .push_back(MembershipEvent::AddressChanged { member: id, address });
        }
    }

    /// Changes a member's state and reports what people would see change.
    fn set_status(&mut self, now: Timestamp, id: DeviceId, incarnation: u64, status: Status, indirect: bool) {
        let Some(member) = self.members.get_mut(&id) else {
            return;
        };
        let previous = member.state();
        if member.incarnation != incarnation || Claim::backing(member.status) != Claim::backing(status) {
            // Its claim covered what it was.
            member.proof = None;
        }
        self.view.toggle(&id, member.incarnation, member.status);
        self.view.toggle(&id, incarnation, status);
        member.incarnation = incarnation;
        member.status = status;
        member.fresh = true;
        member.indirect = indirect && status == Status::Alive;
        if status != Status::Suspect {
            member.suspicion = None;
        }
        let state = member.state();
        if state != previous {
            member.since = now;
            self.events.push_back(MembershipEvent::StateChanged {
                member: id,
                previous,
                state,
            });
        }
        self.time_suspicion(&id);
    }

    /// Sets when `id`'s suspicion runs out, as its state and confirmations now say (none
    /// unless suspect).
    fn time_suspicion(&mut self, id: &DeviceId) {
        let deadline = self
            .members
            .get(id)
            .filter(|member| member.status == Status::Suspect)
            .and_then(|member| self.suspicion_deadline(member));
        self.suspicions.set(*id, deadline);
    }
}
