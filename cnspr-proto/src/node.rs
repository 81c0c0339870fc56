//! A whole device's protocol: the [`Endpoint`] (handshakes and encrypted sessions) and the
//! [`Membership`] failure detector, behind one sans-IO interface.
//!
//! # Polling order
//!
//! Feed an input ([`Node::handle_datagram`], [`Node::handle_timeout`], or a command such as
//! [`Node::leave`]), then call [`Node::poll_output`] until it returns
//! [`Output::Timeout`]: every datagram to send and every event come out first, and the
//! timeout says when to call [`Node::handle_timeout`] next (str0m's single-mutation rule).
//! The node never reads a clock: `now` is always the caller's.

use std::collections::VecDeque;
use std::net::SocketAddr;

use crate::crypto::hash::hash;
use crate::identity::{DeviceId, StaticKeypair};
use crate::membership::{Envelope, Member, Membership, MembershipConfig, MembershipEvent};
use crate::time::Timestamp;
use crate::transport::{Endpoint, EndpointConfig, EndpointEvent, ReceiveError, Sent, Transmit};

/// Everything configurable about a node.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Failure detection.
    pub membership: MembershipConfig,
    /// Handshakes and sessions.
    pub endpoint: EndpointConfig,
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
        Some(Self { membership, endpoint })
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
}

/// One output of the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
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
}

/// One device's protocol state.
pub struct Node {
    endpoint: Endpoint,
    membership: Membership,
    events: VecDeque<Event>,
    stats: NodeStats,
}

fn sub_seed(seed: &[u8; 32], purpose: &[u8]) -> [u8; 32] {
    hash(&[b"cnspr rng", purpose, seed])
}

impl Node {
    /// A node for the device `identity`, whose roster holds `roster` (device IDs with any
    /// known address). `boot` must grow with every start of this device (persisted by
    /// the daemon); `rng_seed` must be secret randomness in the daemon.
    pub fn new(
        config: NodeConfig,
        identity: StaticKeypair,
        roster: impl IntoIterator<Item = (DeviceId, Option<SocketAddr>)>,
        boot: u32,
        rng_seed: [u8; 32],
        now: Timestamp,
    ) -> Self {
        let own = identity.device_id();
        let roster: Vec<(DeviceId, Option<SocketAddr>)> =
            roster.into_iter().filter(|(id, _)| *id != own).collect();
        let mut endpoint = Endpoint::new(identity, sub_seed(&rng_seed, b"endpoint"), config.endpoint);
        for (id, address) in &roster {
            endpoint.add_peer(id.public_key(), *address);
        }
        let membership_seed = sub_seed(&rng_seed, b"membership");
        let membership = Membership::new(config.membership, own, roster, boot, membership_seed, now);
        let mut node = Self {
            endpoint,
            membership,
            events: VecDeque::new(),
            stats: NodeStats::default(),
        };
        node.membership.announce(now);
        node.pump(now);
        node
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

    /// The failure detector, for its finer getters.
    pub fn membership(&self) -> &Membership {
        &self.membership
    }

    /// Devices this node holds usable session keys with.
    pub fn session_peers(&self, now: Timestamp) -> Vec<DeviceId> {
        self.endpoint
            .peers_with_keys(now)
            .into_iter()
            .map(|key| key.device_id())
            .collect()
    }

    /// Traffic counters.
    pub fn stats(&self) -> NodeStats {
        self.stats
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
        let result = self.endpoint.handle_datagram(now, from, datagram);
        if result.is_err() {
            self.stats.datagrams_rejected += 1;
        }
        self.pump(now);
        result
    }

    /// Runs the timers that are due.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.endpoint.handle_timeout(now);
        self.membership.handle_timeout(now);
        self.pump(now);
    }

    /// Says goodbye to the mesh (the daemon is stopping).
    pub fn leave(&mut self, now: Timestamp) {
        self.membership.leave(now);
        self.pump(now);
    }

    // ----- outputs -----

    /// The next output; [`Output::Timeout`] once there is nothing else.
    pub fn poll_output(&mut self) -> Output {
        if let Some(transmit) = self.endpoint.poll_transmit() {
            self.stats.datagrams_sent += 1;
            self.stats.bytes_sent += transmit.datagram.len() as u64;
            return Output::Transmit(transmit);
        }
        if let Some(event) = self.events.pop_front() {
            return Output::Event(event);
        }
        let timeouts = [self.endpoint.poll_timeout(), self.membership.poll_timeout()];
        Output::Timeout(timeouts.into_iter().flatten().min().unwrap_or(Timestamp::MAX))
    }

    /// Moves messages between membership and endpoint until both are quiet.
    fn pump(&mut self, now: Timestamp) {
        loop {
            let mut progressed = false;
            // Before anything goes out after a sleep: keys from before it may be dead.
            if self.membership.take_woke() {
                self.endpoint.reset_sessions();
            }
            while let Some(outgoing) = self.membership.poll_outgoing() {
                progressed = true;
                let key = outgoing.to.public_key();
                // Every address change the endpoint saw in an authenticated packet flows
                // into membership, so an address there that differs from the endpoint's
                // came from gossip: news of where the peer went that the endpoint missed.
                let known = self.membership.member(&outgoing.to).and_then(|m| m.address);
                if known.is_some() && known != self.endpoint.peer_address(&key) {
                    self.endpoint.add_peer(key, known);
                }
                // An envelope that cannot be encoded or sent is a lost message, which the
                // protocol tolerates like any loss (piggybacked news is bounded to fit).
                if let Ok(bytes) = outgoing.envelope.encode() {
                    if self.endpoint.send(now, &key, &bytes) == Ok(Sent::Queued) {
                        self.membership.discount_rtt(&outgoing.to);
                    }
                }
            }
            while let Some(peer) = self.membership.poll_rehandshake() {
                progressed = true;
                self.endpoint.connect(now, &peer.public_key());
            }
            while let Some(event) = self.endpoint.poll_event() {
                progressed = true;
                match event {
                    EndpointEvent::Received { peer, payload } => {
                        if let Ok(envelope) = Envelope::decode(&payload) {
                            self.membership.handle_envelope(now, peer.device_id(), envelope);
                        }
                    }
                    EndpointEvent::AddressChanged { peer, address } => {
                        self.membership.observe_address(&peer.device_id(), address);
                    }
                    EndpointEvent::Established { .. } | EndpointEvent::HandshakeFailed { .. } => {}
                }
            }
            while let Some(event) = self.membership.poll_event() {
                progressed = true;
                self.events.push_back(Event::Membership(event));
            }
            if !progressed {
                return;
            }
        }
    }
}
