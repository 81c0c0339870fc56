//! A whole device's protocol: the [`Endpoint`] (handshakes and encrypted sessions), the
//! [`Membership`] failure detector and the replicated [`Roster`], behind one sans-IO
//! interface.
//!
//! # Starting and polling order
//!
//! Build the node with [`Node::restore`] from everything the device kept ([`Durable`]).
//! Then feed an input ([`Node::handle_datagram`], [`Node::handle_timeout`], or a command
//! such as [`Node::leave`]) and call [`Node::drive`] with the environment's [`Host`]: it
//! carries out every durable write, datagram and event in order and returns when to call
//! [`Node::handle_timeout`] next (str0m's single-mutation rule). [`Node::poll_output`] is
//! the same, one output at a time. The node never reads a clock: `now` is always the
//! caller's.

mod addresses;
mod anchors;
mod beacons;
mod catch_up_turns;
mod drive;
mod keepalive;
mod mesh_secret;
mod messages;
mod names;
mod nat;
mod queries;
mod relay;
mod restore;
mod roster_sync;
mod shown;
mod store;
mod versions;

pub use anchors::ANCHOR_LOOKUP_INTERVAL;
pub use drive::Host;
pub use keepalive::{MAX_KEEPALIVE, MIN_KEEPALIVE};
pub use nat::{NatMapping, NatReport, OBSERVED_FOR};
pub use queries::QueryFailure;
pub use relay::{RelayConfig, PAIR_IDLE, PUNCH_INTERVAL, UPGRADE_INTERVAL};
pub use restore::Durable;
pub use store::{CatchUpProgress, CATCH_UP_SHOWN_FOR, STORE_SYNC_INTERVAL};

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;

use crate::crypto::hash::hash;
use crate::durable::Write;
use crate::identity::{DeviceId, DeviceKey};
use crate::membership::{Envelope, Member, MemberState, Membership, MembershipConfig, MembershipEvent};
use crate::messaging::{Messaging, MessagingConfig, MessagingEvent};
use crate::payload::Payload;
use crate::rng::Rng;
use crate::roster::Roster;
use crate::runs::{HandlerTree, Job, JobKind, NoHandlers, QueueBounds, RunInterrupted, RunQueue, RunStart};
use crate::store::Store;
use crate::time::Timestamp;
use crate::transport::beacon::{Beacons, BEACON_BYTES};
use crate::transport::relay_path::is_relay_address;
use crate::transport::{
    Endpoint, EndpointConfig, EndpointEvent, InviteSecret, ReceiveError, SendError, Sent, Transmit,
};
use crate::wire::cbor::CborError;
use crate::wire::PacketError;

/// Echo requests (`cnspr ping`) awaiting an answer; the oldest is forgotten beyond it.
const MAX_PENDING_ECHOES: usize = 256;

/// Everything configurable about a node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Failure detection.
    pub membership: MembershipConfig,
    /// Handshakes and sessions.
    pub endpoint: EndpointConfig,
    /// Messages, events and queries.
    pub messaging: MessagingConfig,
    /// How often the store asks one peer in turn for what it lacks and collects deletes
    /// every device has.
    pub store_sync_interval: std::time::Duration,
    /// Handler runs of messages and events at once.
    pub handlers_max: usize,
    /// Messages and events waiting for their handler runs, per origin and in all.
    pub handler_queue: QueueBounds,
    /// How often a session through a NAT is kept alive at first (`node/keepalive.rs`).
    pub nat_keepalive: std::time::Duration,
    /// Whether and how much this device relays for others (`node/relay.rs`).
    pub relay: RelayConfig,
}

impl NodeConfig {
    /// The configuration of a profile: `responsive` (mains power) or `frugal` (battery).
    /// The endpoint gives up on a handshake after a few seconds in both: the probe layer
    /// asks for a new one when it needs it.
    pub fn profile(name: &str) -> Option<Self> {
        let membership = MembershipConfig::profile(name)?;
        let give_up_secs = if name == "frugal" { 5 } else { 3 };
        let endpoint = EndpointConfig {
            handshake_give_up: std::time::Duration::from_secs(give_up_secs),
            ..EndpointConfig::default()
        };
        Some(Self {
            membership,
            endpoint,
            messaging: MessagingConfig::default(),
            store_sync_interval: store::STORE_SYNC_INTERVAL,
            handlers_max: 8,
            handler_queue: QueueBounds::default(),
            nat_keepalive: std::time::Duration::from_secs(25),
            relay: RelayConfig::default(),
        })
    }
}

impl Default for NodeConfig {
    /// The `responsive` profile.
    fn default() -> Self {
        Self::profile("responsive").expect("responsive is a built-in profile")
    }
}

/// What the node reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A membership change: a member's state or address.
    Membership(MembershipEvent),
    /// The roster changed (a device joined, was renamed or removed): persist
    /// [`Node::roster`] before relying on it.
    RosterChanged,
    /// A device joined the mesh with one of our invites.
    Paired {
        /// The new device.
        device: DeviceId,
    },
    /// The state a device is shown in to people changed ([`Node::shown_state`]: the
    /// detector's, `active` only with a working direct session). What `monitor` and the
    /// handlers' `peer` events report; [`Event::Membership`] carries the detector's own.
    PeerState {
        /// The device.
        member: DeviceId,
        /// The state it was shown in.
        previous: MemberState,
        /// The state it is shown in now.
        state: MemberState,
    },
    /// Our [`Node::join`] worked: we are part of the inviter's mesh.
    Joined {
        /// The inviting device.
        inviter: DeviceId,
    },
    /// Our [`Node::join`] failed: the inviter did not answer or refused the token.
    JoinFailed {
        /// The inviting device.
        inviter: DeviceId,
    },
    /// Messages, events, queries, answers and the fate of sent messages (see
    /// [`crate::messaging`]).
    Messaging(MessagingEvent),
    /// A key of the replicated store changed here (a local write, or one from a peer).
    StoreChanged {
        /// The key.
        key: String,
    },
    /// A handler run to start now (marked started durably: the writes before it carry
    /// the mark). Say when it ends with [`Node::finish_run`].
    RunStart(RunStart),
    /// A handler run that was running when this device stopped: it is not run again.
    RunInterrupted(RunInterrupted),
    /// Look up these static anchors of `device` (it cannot be reached) and give what they
    /// name to [`Node::anchors_found`].
    LookUpAnchors {
        /// The device.
        device: DeviceId,
        /// Its anchors.
        anchors: Vec<crate::anchor::Anchor>,
    },
    /// A target of one of our queries will not answer it (it restarted or became
    /// unreachable before its first answer).
    QueryFailed {
        /// The query.
        id: u64,
        /// The target.
        peer: DeviceId,
        /// Why.
        reason: QueryFailure,
    },
    /// A key's state from a peer was refused as one no honest device sends (see
    /// [`crate::store::MergeRefusal`]); nothing changed.
    StoreRefused {
        /// The peer that sent it.
        from: DeviceId,
        /// The key.
        key: String,
        /// Why.
        reason: crate::store::MergeRefusal,
    },
    /// A device of the roster sends datagrams of another protocol version, which this
    /// device cannot read ([`Node::other_version`] until a session works again).
    OtherVersion {
        /// The device (by the address its datagrams come from).
        device: DeviceId,
        /// The version its datagrams carry.
        version: u8,
    },
    /// The answer to [`Node::echo`].
    EchoReply {
        /// Who answered.
        peer: DeviceId,
        /// The request's ID.
        id: u64,
        /// The round trip.
        rtt: std::time::Duration,
    },
}

/// Why a command naming a peer was refused. Nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    /// The device is not (or no longer) on the roster.
    #[error("not a device of the mesh")]
    NotAMember,
    /// That is this device.
    #[error("that is this device")]
    Itself,
    /// No address is known for it yet.
    #[error("no address known for the device")]
    NoAddress,
}

/// One output of the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A change to durable state: apply it before sending any later output's datagram.
    Persist(Write),
    /// A datagram to send.
    Transmit(Transmit),
    /// Something happened.
    Event(Event),
    /// Nothing more now; call [`Node::handle_timeout`] at this time.
    Timeout(Timestamp),
}

/// Counters of what went through the node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Datagrams handed out to send.
    pub datagrams_sent: u64,
    /// Their bytes.
    pub bytes_sent: u64,
    /// Datagrams taken in.
    pub datagrams_received: u64,
    /// Those dropped as malformed, unauthenticated, replayed or unknown.
    pub datagrams_rejected: u64,
    /// Store keys dropped because every device had their deletes.
    pub tombstones_collected: u64,
    /// Handshakes completed (new sessions and rekeys).
    pub sessions_established: u64,
    /// Messages and events from peers refused because the handler run queue was full
    /// (they stay with their senders; each offer counts).
    pub offers_refused: u64,
    /// Handler runs found interrupted at this start (running when the device stopped).
    pub runs_interrupted: u64,
    /// Store keys' states from peers refused as forged (see [`Event::StoreRefused`]).
    pub store_changes_refused: u64,
    /// Events dropped because their origin's signature did not verify.
    pub events_forged: u64,
    /// LAN beacons of roster devices answered with a handshake (fresh, from an address
    /// no session worked at).
    pub beacons_answered: u64,
    /// Bytes of other devices' datagrams this device carried as their relay.
    pub relayed_bytes: u64,
    /// Datagrams it was asked to carry and did not (off, over its bounds, not between two
    /// devices of its roster).
    pub relay_refused: u64,
    /// Datagrams of its own relayed sessions it could not hand to their relay (no keys
    /// with the relay, or its queue full): lost like any datagram, counted here.
    pub relay_unsent: u64,
}

/// One device's protocol state.
pub struct Node {
    /// This device's key: it signs its roster entry (its events are signed by messaging).
    key: DeviceKey,
    /// The roster entry signatures checked so far (each checked once).
    verified_names: crate::roster::stored::VerifiedNames,
    /// LAN beacons: the secrets they are sealed and opened with, the ones heard lately.
    beacons: Beacons,
    /// Whether beacons heard are answered, and the networks whose beacons are not
    /// ([`Node::set_beacons_heard`]).
    beacons_heard: bool,
    beacons_ignored_from: (Vec<(std::net::IpAddr, u8)>, Vec<u32>),
    /// When a beacon of each device was last answered with a handshake (roster devices
    /// only, so bounded by the roster).
    beacons_answered: BTreeMap<DeviceId, Timestamp>,
    /// Static anchors: this device's, and the peers' to look up.
    anchors: anchors::Anchors,
    /// Where peers see this device, and its own addresses.
    nat: nat::NatView,
    /// Which sessions through a NAT are kept alive.
    keepalive: keepalive::Keepalive,
    /// Devices alive whose names are asked for (roster devices only).
    name_asks: names::NameAsks,
    /// What this device carries for others, and its peers reached through relays.
    relaying: relay::Relaying,
    /// The state each device was last shown in.
    shown: shown::ShownStates,
    endpoint: Endpoint,
    membership: Membership,
    messaging: Messaging,
    roster: Roster,
    /// Roster changes not yet pushed to the mesh and reported.
    roster_dirty: bool,
    /// The inviter of a join in progress.
    joining: Option<DeviceId>,
    echoes: BTreeMap<u64, (DeviceId, Timestamp)>,
    store: Store,
    store_writes: VecDeque<Write>,
    replication: store::Replication,
    /// The handler runs this device owes.
    runs: RunQueue,
    /// Our queries' targets that have not answered yet.
    queries: queries::OpenQueries,
    /// Which handlers take what.
    handler_tree: Box<dyn HandlerTree>,
    /// Where new mesh secrets come from.
    rng: Rng,
    /// Devices heard speaking another protocol version.
    other_versions: versions::OtherVersions,
    events: VecDeque<Event>,
    stats: NodeStats,
}

fn sub_seed(seed: &[u8; 32], purpose: &[u8]) -> [u8; 32] {
    hash(&[b"cnspr rng", purpose, seed])
}

/// Why a payload was not handed to the endpoint. Nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum PayloadError {
    /// The payload could not be encoded.
    #[error(transparent)]
    Encode(#[from] CborError),
    /// The endpoint refused it.
    #[error(transparent)]
    Send(#[from] SendError),
}

impl Node {
    /// A node for the device `identity`, whose roster holds `roster` (device IDs with any
    /// known address), before anything durable is restored ([`Node::restore`] is the way
    /// in).
    fn new(
        config: NodeConfig,
        identity: DeviceKey,
        roster: impl IntoIterator<Item = (DeviceId, Option<SocketAddr>)>,
        boot: u32,
        rng_seed: [u8; 32],
        now: Timestamp,
    ) -> Self {
        let own = identity.device_id();
        let roster: Vec<(DeviceId, Option<SocketAddr>)> =
            roster.into_iter().filter(|(id, _)| *id != own).collect();
        let mut devices = Roster::new();
        for id in std::iter::once(own).chain(roster.iter().map(|(id, _)| *id)) {
            devices.admit(id);
        }
        let mut endpoint = Endpoint::new(
            identity.noise().clone(),
            sub_seed(&rng_seed, b"endpoint"),
            config.endpoint,
        );
        for (id, address) in &roster {
            endpoint.add_peer(*id, *address);
        }
        let membership_seed = sub_seed(&rng_seed, b"membership");
        let first_transfer = u64::from_le_bytes(
            sub_seed(&rng_seed, b"transfers")[..8]
                .try_into()
                .unwrap_or([0; 8]),
        );
        let mut messaging = Messaging::new(identity.clone(), config.messaging, [], first_transfer, now);
        for (id, _) in &roster {
            messaging.add_member(*id);
        }
        let membership = Membership::new(
            config.membership,
            identity.clone(),
            roster,
            boot,
            membership_seed,
            now,
        );
        Self {
            key: identity,
            verified_names: Default::default(),
            beacons: Beacons::default(),
            beacons_heard: true,
            beacons_ignored_from: (Vec::new(), Vec::new()),
            beacons_answered: BTreeMap::new(),
            anchors: anchors::Anchors::default(),
            nat: nat::NatView::default(),
            keepalive: keepalive::Keepalive::new(config.nat_keepalive),
            name_asks: names::NameAsks::default(),
            relaying: relay::Relaying::new(config.relay.clone()),
            shown: shown::ShownStates::default(),
            endpoint,
            membership,
            messaging,
            roster: devices,
            roster_dirty: false,
            joining: None,
            echoes: BTreeMap::new(),
            store: Store::new(own, 0),
            store_writes: VecDeque::new(),
            runs: RunQueue::new(config.handlers_max, config.handler_queue),
            queries: queries::OpenQueries::default(),
            handler_tree: Box::new(NoHandlers),
            rng: Rng::from_seed(sub_seed(&rng_seed, b"mesh secret")),
            other_versions: versions::OtherVersions::default(),
            replication: store::Replication::new(
                now,
                config.store_sync_interval,
                u64::from_le_bytes(
                    sub_seed(&rng_seed, b"store streams")[..8]
                        .try_into()
                        .unwrap_or([0; 8]),
                ),
            ),
            events: VecDeque::new(),
            stats: NodeStats::default(),
        }
    }

    // ----- getters -----

    /// This device's ID.
    pub fn own_id(&self) -> DeviceId {
        self.membership.own_id()
    }

    /// Every other device of the roster as this one sees it.
    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.membership.members()
    }

    /// One member.
    pub fn member(&self, id: &DeviceId) -> Option<&Member> {
        self.membership.member(id)
    }

    /// The replicated roster, with names and removed devices.
    pub fn roster(&self) -> &Roster {
        &self.roster
    }

    /// The roster with the address each device was last reached at: what a device keeps
    /// beside its store to start from ([`Durable::roster`]).
    pub fn known_devices(&self) -> Vec<crate::roster::KnownDevice> {
        crate::roster::KnownDevice::all(&self.roster, |id| {
            self.membership.member(id).and_then(|m| m.address)
        })
    }

    /// The failure detector, for its finer getters.
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// Sends `envelope` to `to` over their session exactly as given, past the failure
    /// detector's own rules: a device can say anything over its own sessions, and the
    /// simulator's hostile devices (`cnspr-sim --byzantine`) say it with this. Whether
    /// it went out (or is queued behind a handshake).
    pub fn send_membership(&mut self, now: Timestamp, to: DeviceId, envelope: Envelope) -> bool {
        let sent = self.send_envelope(now, to, envelope).is_some();
        self.route_between_layers(now);
        sent
    }

    /// Sends a messaging `unit` (an event, a summary, a store message) to `to` as given,
    /// past the rules of the layers that make units, as [`Node::send_membership`] does
    /// for the failure detector: no size check of its own, and a store message sent so is
    /// not counted among those in flight. Whether it was queued (`to` is a peer).
    pub fn send_unit_as_is(&mut self, now: Timestamp, to: DeviceId, unit: crate::messaging::Unit) -> bool {
        let queued = self.messaging.send_as_is(now, to, unit).is_ok();
        self.route_between_layers(now);
        queued
    }

    /// Every event of `origin` up to this number was handled here.
    pub fn events_handled_through(&self, origin: &DeviceId) -> u64 {
        self.messaging.events_handled_through(origin)
    }

    /// Devices this node holds usable session keys with.
    pub fn session_peers(&self, now: Timestamp) -> Vec<DeviceId> {
        self.endpoint.peers_with_keys(now).into_iter().collect()
    }

    /// Lifeguard's local health multiplier: 1 while this device's probes are answered as
    /// expected; each probe it missed with nobody to say it was not its own fault, and
    /// each suspicion of itself it had to refute, raises it by one (successful probes
    /// bring it back down); probes wait that many times longer.
    pub fn health_multiplier(&self) -> u32 {
        self.membership.health_multiplier()
    }

    /// Traffic counters.
    pub fn stats(&self) -> NodeStats {
        NodeStats {
            offers_refused: self.messaging.refused(),
            runs_interrupted: self.runs.interrupted_count() as u64,
            events_forged: self.messaging.forged(),
            ..self.stats
        }
    }

    // ----- inputs -----

    /// Takes a datagram that arrived from `from`. An error means it was dropped and
    /// changed nothing.
    pub fn handle_datagram(
        &mut self,
        now: Timestamp,
        from: SocketAddr,
        datagram: &[u8],
    ) -> Result<(), ReceiveError> {
        self.stats.datagrams_received += 1;
        if datagram.len() == BEACON_BYTES && self.take_beacon(now, from, datagram) {
            self.route_between_layers(now);
            return Ok(());
        }
        let result = self.endpoint.handle_datagram(now, from, datagram);
        if result.is_err() {
            self.stats.datagrams_rejected += 1;
        }
        if let Err(ReceiveError::Malformed(PacketError::UnsupportedVersion(version))) = result {
            self.on_other_version(now, from, version);
        }
        self.route_between_layers(now);
        result
    }

    /// Runs the timers that are due.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.endpoint.handle_timeout(now);
        self.membership.handle_timeout(now);
        self.messaging.handle_timeout(now, &mut self.runs);
        self.store_timeout(now);
        self.anchors_timeout(now);
        self.keepalive_timeout(now);
        self.name_asks_timeout(now);
        self.relay_timeout(now);
        self.route_between_layers(now);
    }

    /// This device's network changed (an address came or went: another Wi-Fi, a cable,
    /// a VPN). Sessions may ride on a path that no longer exists (a NAT mapping, a source
    /// address), so they are renewed, and the neighbours hear from us at once: an
    /// authenticated packet from the new address is how they learn it.
    pub fn handle_network_change(&mut self, now: Timestamp) {
        self.renew_sessions(now);
        self.forget_observed();
        self.membership.announce(now);
        self.anchors_after_network_change(now);
        self.route_between_layers(now);
    }

    /// Says goodbye to the mesh (the daemon is stopping).
    pub fn leave(&mut self, now: Timestamp) {
        self.membership.leave(now);
        self.route_between_layers(now);
    }

    /// Opens an invite: a device proving its secret before `expires` joins the mesh
    /// ([`Event::Paired`]), once.
    pub fn invite(&mut self, invite: &InviteSecret, expires: Timestamp) {
        self.endpoint.add_invite(invite, expires);
    }

    /// Joins the mesh of `inviter`, reached at `address`, with its invite's secret; the
    /// outcome comes as [`Event::Joined`] or [`Event::JoinFailed`].
    pub fn join(&mut self, now: Timestamp, inviter: DeviceId, address: SocketAddr, invite: InviteSecret) {
        self.joining = Some(inviter);
        self.endpoint.join(now, inviter, address, invite);
        self.route_between_layers(now);
    }

    /// Sends a round-trip request to `peer`; the answer comes as [`Event::EchoReply`]
    /// with the same `id`.
    pub fn echo(&mut self, now: Timestamp, peer: DeviceId, id: u64) -> Result<(), PeerError> {
        if peer == self.own_id() {
            return Err(PeerError::Itself);
        }
        if !self.roster.is_member(&peer) {
            return Err(PeerError::NotAMember);
        }
        if self.echoes.len() >= MAX_PENDING_ECHOES {
            self.echoes.pop_first();
        }
        self.echoes.insert(id, (peer, now));
        match self.send_payload(now, peer, &Payload::Echo(id)) {
            Err(PayloadError::Send(SendError::NoAddress)) => {
                self.echoes.remove(&id);
                Err(PeerError::NoAddress)
            }
            _ => {
                self.route_between_layers(now);
                Ok(())
            }
        }
    }

    // ----- outputs -----

    /// The next output; [`Output::Timeout`] once there is nothing else.
    pub fn poll_output(&mut self) -> Output {
        // Datagrams that acknowledge nothing durable need not wait for a sync.
        if let Some(transmit) = self.poll_prompt_transmit() {
            return Output::Transmit(transmit);
        }
        // Durable writes first: a datagram that follows may acknowledge what they record.
        if let Some(write) = self.poll_write() {
            return Output::Persist(write);
        }
        if let Some(transmit) = self.endpoint.poll_transmit() {
            self.stats.datagrams_sent += 1;
            self.stats.bytes_sent += transmit.datagram.len() as u64;
            return Output::Transmit(transmit);
        }
        if let Some(event) = self.events.pop_front() {
            return Output::Event(event);
        }
        let timeouts = [
            self.endpoint.poll_timeout(),
            self.membership.poll_timeout(),
            self.messaging.poll_timeout(),
            Some(self.replication.next_deadline()),
            self.anchors.poll_timeout(),
            self.keepalive.poll_timeout(),
            self.name_asks.poll_timeout(),
            self.relaying.poll_timeout(),
        ];
        Output::Timeout(timeouts.into_iter().flatten().min().unwrap_or(Timestamp::MAX))
    }

    /// The next datagram that may leave before the round's writes are durable.
    pub(crate) fn poll_prompt_transmit(&mut self) -> Option<Transmit> {
        let transmit = self.endpoint.poll_prompt_transmit()?;
        self.stats.datagrams_sent += 1;
        self.stats.bytes_sent += transmit.datagram.len() as u64;
        Some(transmit)
    }

    /// The next durable write of any layer.
    fn poll_write(&mut self) -> Option<Write> {
        self.messaging
            .poll_write()
            .or_else(|| self.store_writes.pop_front())
            .or_else(|| self.runs.poll_write())
    }

    /// Drops every session (its path may be gone: a network change, a sleep) and calls
    /// each peer one worked with again at once: the new handshake finds the path, or fails
    /// and the peer is shown as it then is (`shown.rs`), not `active` on keys that are
    /// gone. Peers the failure detector does not probe would otherwise never be called.
    fn renew_sessions(&mut self, now: Timestamp) {
        for peer in self.endpoint.reset_sessions(now) {
            self.endpoint.connect(now, &peer);
        }
    }

    /// Moves messages between the layers until all are quiet.
    fn route_between_layers(&mut self, now: Timestamp) {
        loop {
            let mut progressed = false;
            self.flush_pushes(now);
            // Before anything goes out after a sleep: keys from before it may be dead.
            if self.membership.poll_woke() {
                self.renew_sessions(now);
            }
            while let Some(outgoing) = self.membership.poll_transmit() {
                progressed = true;
                // Every address change the endpoint saw in an authenticated packet flows
                // into membership, so an address there that differs from the endpoint's
                // came from gossip: news of where the peer went that the endpoint missed.
                // (While the session goes through a relay, membership keeps the last direct
                // address: the endpoint tries it at the next call, beside the relay.)
                let known = self.membership.member(&outgoing.to).and_then(|m| m.address);
                let direct = self.endpoint.relayed_through(&outgoing.to).is_none();
                if known.is_some() && known != self.endpoint.peer_address(&outgoing.to) && direct {
                    self.endpoint.add_peer(outgoing.to, known);
                }
                // An envelope that cannot be encoded or sent is a lost message, which the
                // protocol tolerates like any loss.
                if self.send_envelope(now, outgoing.to, outgoing.envelope) == Some(Sent::Queued) {
                    self.membership.discount_rtt(&outgoing.to);
                }
            }
            while let Some(peer) = self.membership.poll_rehandshake() {
                progressed = true;
                self.endpoint.connect(now, &peer);
            }
            while let Some((peer, relay)) = self.membership.poll_reached_through() {
                progressed = true;
                self.relay_reported(now, peer, relay);
            }
            while let Some(event) = self.endpoint.poll_event() {
                progressed = true;
                self.on_endpoint_event(now, event);
            }
            progressed |= self.carry_relayed(now);
            let mut states_changed = false;
            while let Some(event) = self.membership.poll_event() {
                progressed = true;
                if let MembershipEvent::AddressChanged { member, address } = event {
                    // From gossip (what the endpoint sees itself it already knows): every
                    // send to the device, not only membership's, goes there now.
                    if self.endpoint.peer_address(&member) != Some(address) {
                        self.endpoint.add_peer(member, Some(address));
                        self.relay_peer_moved(now, member);
                    }
                }
                if let MembershipEvent::AddressHeard { member, address } = event {
                    self.peer_seen_elsewhere(now, member, address);
                    continue;
                }
                if let MembershipEvent::Restarted { member } = event {
                    self.fail_queries(member, QueryFailure::Restarted);
                    self.keepalive_on_restart(&member);
                }
                if let MembershipEvent::StateChanged { member, state, .. } = event {
                    states_changed = true;
                    let live = matches!(state, MemberState::Active | MemberState::Suspect);
                    if !live {
                        self.fail_queries(member, QueryFailure::Unreachable);
                    }
                    if matches!(state, MemberState::Suspect | MemberState::Unreachable) {
                        self.anchors_on_unreachable(now, &member);
                    }
                    if matches!(state, MemberState::Active | MemberState::Indirect) {
                        self.ask_for_name(now, member);
                    }
                    self.keepalive_on_state(now, member, state);
                    let was_live = self.messaging.is_live(&member);
                    for peer in self.messaging.set_live(now, member, live) {
                        self.store_need(now, peer);
                    }
                    if was_live && !live {
                        self.store_peer_gone(now, member);
                    }
                }
                let changed = match event {
                    MembershipEvent::StateChanged { member, .. } => Some(member),
                    _ => None,
                };
                self.events.push_back(Event::Membership(event));
                if let Some(member) = changed {
                    self.review_shown(now, member);
                }
            }
            if states_changed {
                // Who is live moves the ring neighbourhood, where broadcasts go in a large mesh.
                let neighbours = self.membership.neighbours();
                self.keepalive_neighbours(neighbours.clone());
                for peer in self.messaging.set_neighbours(now, neighbours) {
                    self.store_need(now, peer);
                }
            }
            while let Some((to, packet)) = self.messaging.poll_transmit() {
                progressed = true;
                // A packet to a peer without keys waits for the handshake; one that cannot
                // be sent at all is retransmitted by the messaging layer like a lost one.
                let _ = self.send_payload(now, to, &Payload::Messaging(packet));
            }
            while let Some((from, bytes)) = self.messaging.poll_store_message() {
                progressed = true;
                self.on_store_message(now, from, &bytes);
            }
            while let Some(event) = self.messaging.poll_event() {
                progressed = true;
                if let MessagingEvent::Answer { from, id, .. } = &event {
                    self.queries.answered(from, *id);
                }
                self.owe_runs(&event);
                self.events.push_back(Event::Messaging(event));
            }
            // A place freed in the run queue may be what a refused origin waits for.
            progressed |= self.messaging.offer_again(now, &self.runs);
            while let Some(start) = self.runs.poll_start() {
                progressed = true;
                self.events.push_back(Event::RunStart(start));
            }
            while let Some(interrupted) = self.runs.poll_interrupted() {
                progressed = true;
                self.events.push_back(Event::RunInterrupted(interrupted));
            }
            if self.roster_dirty {
                progressed = true;
                self.roster_dirty = false;
                self.events.push_back(Event::RosterChanged);
            }
            if !progressed {
                return;
            }
        }
    }

    fn on_endpoint_event(&mut self, now: Timestamp, event: EndpointEvent) {
        match event {
            EndpointEvent::Received { peer, payload } => {
                self.membership.observe_direct(now, &peer);
                // A payload this version does not understand is dropped like a lost one.
                if let Ok(payload) = Payload::decode(&payload) {
                    self.on_payload(now, peer, payload);
                }
            }
            EndpointEvent::AddressChanged { peer, address } => {
                // A relayed path's name means nothing to the failure detector, nor to the
                // devices it tells where this one went.
                if !is_relay_address(&address) {
                    self.membership.observe_address(&peer, address);
                }
                self.relay_path_changed(now, peer);
                self.review_shown(now, peer);
            }
            EndpointEvent::Paired { peer } => self.on_paired(now, peer),
            EndpointEvent::Observed { peer, address } => self.on_observed(now, peer, address),
            EndpointEvent::Established { peer, rekey } => {
                self.stats.sessions_established += 1;
                // A handshake just completed with it: the direct path works.
                self.membership.observe_handshake(now, &peer);
                self.review_shown(now, peer);
                self.relay_established(now, peer);
                self.prefer_ipv6(now, peer);
                self.speaks_our_version(&peer);
                if self.joining == Some(peer) {
                    self.joining = None;
                    self.admit(now, peer);
                    self.events.push_back(Event::Joined { inviter: peer });
                }
                // A rekey of a working session changes nothing the store needs to hear of.
                if !rekey {
                    self.store_session_established(now, peer);
                }
            }
            EndpointEvent::SessionEnded { peer } => self.review_shown(now, peer),
            EndpointEvent::HandshakeFailed { peer: inviter } => {
                // Renewed sessions that could not be (`renew_sessions`) end here.
                self.review_shown(now, inviter);
                self.relay_handshake_failed(now, inviter);
                if self.joining == Some(inviter) {
                    self.joining = None;
                    if !self.roster.is_member(&inviter) {
                        self.endpoint.remove_peer(&inviter);
                    }
                    self.events.push_back(Event::JoinFailed { inviter });
                }
            }
        }
    }

    fn on_payload(&mut self, now: Timestamp, from: DeviceId, payload: Payload) {
        match payload {
            Payload::Membership(envelope) => self.membership.handle_envelope(now, from, envelope),
            Payload::Messaging(bytes) => {
                self.peer_used(now, from);
                // A malformed packet from a peer is dropped like a lost one.
                let _ = self.messaging.handle_packet(now, from, &bytes, &mut self.runs);
            }
            Payload::Echo(id) => {
                let _ = self.send_payload(now, from, &Payload::EchoReply(id));
            }
            Payload::EchoReply(id) => {
                if self.echoes.get(&id).is_some_and(|(peer, _)| *peer == from) {
                    if let Some((_, sent)) = self.echoes.remove(&id) {
                        let rtt = now.saturating_since(sent);
                        self.events.push_back(Event::EchoReply { peer: from, id, rtt });
                    }
                }
            }
            Payload::Relay { to, datagram } => self.on_relay(now, from, to, datagram),
            Payload::RelayRefused { to } => self.relay_refused(now, from, to),
            Payload::Relayed { from: far, datagram } => self.on_relayed(now, from, far, &datagram),
        }
    }

    /// Sends a membership envelope, in two where it is too long for one datagram
    /// ([`Envelope::split`]); what happened to its first part.
    fn send_envelope(&mut self, now: Timestamp, to: DeviceId, envelope: Envelope) -> Option<Sent> {
        let payload = Payload::Membership(envelope);
        match self.send_payload(now, to, &payload) {
            Err(PayloadError::Send(SendError::TooLarge(_))) => {
                let Payload::Membership(envelope) = payload else {
                    return None;
                };
                let (first, news) = envelope.split()?;
                let sent = self.send_envelope(now, to, first);
                self.send_envelope(now, to, news);
                sent
            }
            result => result.ok(),
        }
    }

    /// Reports the queries `peer` had not answered as failed for it.
    fn fail_queries(&mut self, peer: DeviceId, reason: QueryFailure) {
        for id in self.queries.lost(&peer) {
            self.events.push_back(Event::QueryFailed { id, peer, reason });
        }
    }

    /// Records the handler runs an accepted message or event is owed, in the same round
    /// of writes as its acceptance.
    fn owe_runs(&mut self, event: &MessagingEvent) {
        let (kind, origin, tag, payload) = match event {
            MessagingEvent::Message { from, tag, payload } => (JobKind::Message, from, tag, payload),
            MessagingEvent::Event {
                origin, tag, payload, ..
            } => (JobKind::Event, origin, tag, payload),
            _ => return,
        };
        // `@NAME` filters see the unique name: a device cannot pass for another by name.
        let name = self.roster.shown_name(origin);
        let handlers = self.handler_tree.handlers_for(kind, tag, origin, name.as_deref());
        self.runs.enqueue(Job {
            kind,
            origin: *origin,
            tag: tag.clone(),
            payload: payload.clone(),
            handlers,
        });
    }

    /// Seals a payload for `peer`.
    fn send_payload(
        &mut self,
        now: Timestamp,
        peer: DeviceId,
        payload: &Payload,
    ) -> Result<Sent, PayloadError> {
        let bytes = payload.encode()?;
        // Failure detection and echoes acknowledge nothing durable: they need not wait for
        // the round's writes to be synced.
        let sent = match payload {
            Payload::Membership(_) | Payload::Echo(_) | Payload::EchoReply(_) => {
                self.endpoint.send_prompt(now, &peer, &bytes)
            }
            Payload::Messaging(_) => {
                self.peer_used(now, peer);
                self.endpoint.send(now, &peer, &bytes)
            }
            // What a relay passes on acknowledges nothing of its own: it goes at once.
            Payload::Relayed { .. } => self.endpoint.send_carried(now, &peer, &bytes, true),
            Payload::RelayRefused { .. } => self.endpoint.send_prompt(now, &peer, &bytes),
            // Ours may acknowledge this round's writes (`carry_relayed` sends the prompt
            // ones itself).
            Payload::Relay { .. } => self.endpoint.send_carried(now, &peer, &bytes, false),
        };
        Ok(sent?)
    }
}
