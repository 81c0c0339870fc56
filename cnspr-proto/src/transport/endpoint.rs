//! The datagram router of one device: it starts, answers and retransmits handshakes, holds a
//! [`Session`] per known peer, and turns incoming datagrams into authenticated payloads.
//!
//! Sans-IO: [`Endpoint::handle_datagram`], [`Endpoint::send`], [`Endpoint::connect`] and
//! [`Endpoint::handle_timeout`] are the inputs; after any of them, drain
//! [`Endpoint::poll_transmit`] and [`Endpoint::poll_event`], then ask
//! [`Endpoint::poll_timeout`] when to call `handle_timeout` next.
//!
//! Handshake flow (`XX`), with the indices each side picks so that later packets find their
//! state without revealing who sent them:
//!
//! ```text
//! initiator                                   responder
//!   HandshakeInit(sender=i, e)           ->     new responder state under index r
//!                                        <-   HandshakeResponse(sender=r, receiver=i, e,ee,s,es)
//!   keys, unconfirmed                         
//!   HandshakeFinish(sender=i, receiver=r, s,se)  ->  peer must be known; keys current
//!                                        <-   Data(receiver=i, empty): confirms the keys
//!   keys current; staged payloads flushed
//! ```
//!
//! Pairing (`XXpsk3`) runs the same flow with a `PairingInit` in place of the
//! `HandshakeInit`: it names an invite the responder registered with
//! [`Endpoint::add_invite`], whose secret is the PSK. The joiner already knows the inviter
//! (from the token) and checks its key in the response; the inviter learns the joiner in
//! the finish, which only verifies under the right PSK. Then, and only then, the invite is
//! used up and the joiner becomes a peer ([`EndpointEvent::Paired`]). A wrong, expired or
//! used token changes nothing.
//!
//! Both initiations end with `mac1` (`stealth.rs`), checked before anything else: without
//! the mesh's secret or an invite's, a sender gets no answer at all.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use crate::bounded::remove_least;
use crate::crypto::aead::TAG_BYTES;
use crate::crypto::hash::{hash, Hash};
use crate::identity::{DeviceId, PublicKey, StaticKeypair};
use crate::noise::{Handshake, HandshakeError, Pattern, Role};
use crate::rng::Rng;
use crate::time::Timestamp;
use crate::timers::Timers;
use crate::transport::cookies::{self, Admission, Cookie, CookieConfig, CookieGate, COOKIE_USE};
use crate::transport::keys::{SealError, TransportKeys};
use crate::transport::observed;
use crate::transport::outbox::Outbox;
use crate::transport::relay_path::{is_relay_address, RelayPaths};
use crate::transport::session::{KeySlot, Session, SessionConfig};
use crate::transport::stealth::{self, MeshSecrets};
use crate::wire::{self, Packet, PacketError};

/// Bound into every handshake: devices speaking another protocol or version never agree on
/// keys.
pub const PROLOGUE: &[u8] = b"cnspr protocol v3";

/// Limits and timers of the endpoint.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// Key lifetimes.
    pub session: SessionConfig,
    /// How long to wait for a handshake answer before trying again.
    pub handshake_retry: Duration,
    /// How long to keep trying before reporting the handshake failed.
    pub handshake_give_up: Duration,
    /// How long a responder keeps a half-finished handshake.
    pub responder_timeout: Duration,
    /// Half-finished responder handshakes kept at once; the oldest is dropped beyond it.
    pub max_pending_responders: usize,
    /// Payloads queued per peer while its keys are being established; the oldest is
    /// dropped beyond it.
    pub max_staged_per_peer: usize,
    /// When initiations need a cookie, and how many one address may make then.
    pub cookies: CookieConfig,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        Self {
            session: SessionConfig::default(),
            handshake_retry: Duration::from_secs(1),
            handshake_give_up: Duration::from_secs(30),
            responder_timeout: Duration::from_secs(5),
            max_pending_responders: 64,
            max_staged_per_peer: 64,
            cookies: CookieConfig::default(),
        }
    }
}

/// A datagram to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// Where to.
    pub destination: SocketAddr,
    /// The whole UDP payload.
    pub datagram: Vec<u8>,
}

/// A datagram for a peer whose path goes through a relay ([`Endpoint::poll_relayed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayedTransmit {
    /// The device that carries it.
    pub relay: DeviceId,
    /// The peer it is for.
    pub to: DeviceId,
    /// The whole datagram, sealed for `to`.
    pub datagram: Vec<u8>,
    /// Whether it acknowledges nothing durable ([`Endpoint::send_prompt`]).
    pub prompt: bool,
}

/// What the endpoint reports to its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndpointEvent {
    /// An authenticated payload from a peer.
    Received {
        /// Who sent it.
        peer: DeviceId,
        /// What it carried.
        payload: Vec<u8>,
    },
    /// New keys with the peer are confirmed by both sides.
    Established {
        /// The peer.
        peer: DeviceId,
        /// They replaced keys that still worked (a rekey), rather than starting a session
        /// after none.
        rekey: bool,
    },
    /// An authenticated packet came from a new address: the peer moved.
    AddressChanged {
        /// The peer.
        peer: DeviceId,
        /// Where it is now.
        address: SocketAddr,
    },
    /// A device proved the secret of one of our invites and is now a peer.
    Paired {
        /// The new peer.
        peer: DeviceId,
    },
    /// The peer says where it sees this device (told in every handshake): behind a NAT,
    /// the NAT's mapping towards that peer.
    Observed {
        /// The peer.
        peer: DeviceId,
        /// Where it sees this device.
        address: SocketAddr,
    },
    /// Our handshake with the peer got no answer within the give-up time.
    HandshakeFailed {
        /// The peer.
        peer: DeviceId,
    },
    /// The last usable keys with the peer expired or were dropped: no session works
    /// until the next handshake.
    SessionEnded {
        /// The peer.
        peer: DeviceId,
    },
}

/// Why [`Endpoint::send`] refused a payload. Nothing was queued or sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The peer is not known to this endpoint.
    #[error("unknown peer")]
    UnknownPeer,
    /// No address is known for the peer yet.
    #[error("no address known for the peer")]
    NoAddress,
    /// The payload does not fit one datagram; larger messages are split above this layer.
    #[error("payload of {0} bytes exceeds the {MAX_PAYLOAD_BYTES}-byte datagram payload")]
    TooLarge(usize),
}

/// What [`Endpoint::send`] did with a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Sealed and handed out to send.
    Now,
    /// Queued until a handshake confirms keys.
    Queued,
}

/// The largest payload one Data packet carries: room is left for the envelope of a
/// relayed path, so that any payload can take one.
pub const MAX_PAYLOAD_BYTES: usize =
    wire::MAX_DATAGRAM_BYTES - wire::DATA_HEADER_BYTES - TAG_BYTES - super::relay_path::RELAY_OVERHEAD_BYTES;

/// The largest payload of a datagram carried for a relayed path: the whole room of a Data
/// packet, which [`MAX_PAYLOAD_BYTES`] leaves the relay's envelope.
pub const MAX_CARRIED_PAYLOAD_BYTES: usize = wire::MAX_DATAGRAM_BYTES - wire::DATA_HEADER_BYTES - TAG_BYTES;

/// Why a datagram was dropped. In every case the endpoint's state is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReceiveError {
    /// The datagram is not a well-formed packet.
    #[error("malformed packet: {0}")]
    Malformed(#[from] PacketError),
    /// No handshake or session uses the index it names.
    #[error("no state for receiver index {0}")]
    UnknownIndex(u32),
    /// The Noise message did not verify.
    #[error("handshake message refused: {0}")]
    Handshake(#[from] HandshakeError),
    /// The handshake proved a key that is not one of our peers.
    #[error("handshake from a device that is not a peer")]
    NotAPeer,
    /// Authentication failed, or the counter was replayed or too old.
    #[error("data packet failed authentication or replay check")]
    Rejected,
    /// A pairing attempt for an invite that is unknown, expired or used.
    #[error("no open invite with that token")]
    UnknownInvite,
    /// An initiation whose `mac1` proves neither a mesh secret this device accepts nor
    /// the invite it names: a stranger's, unanswered.
    #[error("initiation without a valid mac1")]
    Stranger,
    /// An initiation without a valid cookie while this device is under load: it was
    /// answered with a cookie only.
    #[error("under load: initiation answered with a cookie")]
    CookieSent,
    /// An initiation from an address that makes too many while this device is under load.
    #[error("under load: too many initiations from this address")]
    RateLimited,
    /// A cookie reply that answers no initiation of ours.
    #[error("cookie reply to no initiation of ours")]
    StrayCookie,
}

/// Open invites kept at once; the one expiring first is dropped beyond it.
pub const MAX_OPEN_INVITES: usize = 32;

/// The secret of an invite: its public ID and the PSK.
#[derive(Clone)]
pub struct InviteSecret {
    /// Names the invite on the wire.
    pub token_id: [u8; 16],
    /// The pairing handshake's PSK.
    pub psk: [u8; 32],
}

impl Drop for InviteSecret {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.psk);
    }
}

struct OpenInvite {
    psk: [u8; 32],
    expires: Timestamp,
}

impl Drop for OpenInvite {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.psk);
    }
}

/// The shortest silence on a path worth noting as what a NAT may have forgotten it in
/// ([`Endpoint::silence_before_unanswered`]): the shortest keepalive interval.
const LONG_SILENCE: Duration = Duration::from_secs(15);

/// Where a hint of a peer's address came from ([`Endpoint::set_hint`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hint {
    /// A LAN beacon in its name came from there.
    Beacon = 0,
    /// Another device of the roster sees it there (membership news).
    SeenElsewhere = 1,
}

/// How long a hint is tried after it was last heard: a hint that ten minutes of upgrade
/// attempts (one a minute while relayed) did not turn into a direct path is stale, and a
/// true one is heard again (a beacon, or news of an address change).
pub const HINT_LIFETIME: Duration = Duration::from_secs(600);

/// Whether a hint heard at `heard` is still tried at `now`.
fn is_fresh(heard: Timestamp, now: Timestamp) -> bool {
    now.saturating_since(heard) < HINT_LIFETIME
}

/// Most addresses an initiation to one peer goes to besides its own (its candidates).
pub const MAX_CANDIDATES: usize = 8;

struct Peer {
    /// The X25519 form of its device ID: the key its handshakes prove.
    noise: PublicKey,
    address: Option<SocketAddr>,
    /// Other addresses it may be reached at (its address record): each initiation goes to
    /// every one of them as well, and the path that answers becomes its address.
    candidates: Vec<SocketAddr>,
    /// Where a LAN beacon in its name came from last, and where another device last said
    /// it sees it ([`Hint`]): tried too, but believed only once a proven answer comes from
    /// there (anyone with the mesh secret can make a beacon, any roster device a claim),
    /// and only for [`HINT_LIFETIME`] after it was last heard.
    hints: [Option<(SocketAddr, Timestamp)>; 2],
    /// Its last address that is not a relayed path: while its session goes through a
    /// relay, initiations still try it (the direct path may come back).
    direct: Option<SocketAddr>,
    /// The path through the device that relays for it, while it needs one
    /// ([`Endpoint::set_relay`]): initiations go there too, and the path of the first
    /// proven answer wins, the relayed one included.
    relay: Option<SocketAddr>,
    /// When a session datagram last went to it, and last came from it.
    last_sent: Option<Timestamp>,
    last_heard: Option<Timestamp>,
    /// The silence (nothing either way) before the first datagram sent to it that nothing
    /// came back after yet: what a NAT that forgot the path forgot it in.
    silence_before_unanswered: Option<Duration>,
    /// Keep the session's path alive: an empty datagram after this long without sending
    /// ([`Endpoint::set_keepalive`]).
    keepalive: Option<Duration>,
    session: Session,
    // The handshake states below are boxed: most peers hold none of them most of the
    // time, and every device keeps a `Peer` for each device of the mesh (inline they
    // were a third of its 632 bytes).
    initiation: Option<Box<Initiation>>,
    staged: VecDeque<Vec<u8>>,
    last_finish: Option<Box<AcceptedFinish>>,
    /// Set while we are joining this peer's mesh with its invite.
    joining: Option<Box<InviteSecret>>,
    /// Which mesh secret the next initiation to this peer is keyed with
    /// ([`MeshSecrets::for_attempt`]): one more each attempt, back to the one that worked.
    mesh_attempt: u32,
    /// The attempt whose secret the peer last answered.
    answered_attempt: u32,
    /// The cookie the peer gave us under load, and when.
    cookie: Option<(Cookie, Timestamp)>,
}

impl Peer {
    /// Whether this device is the pair's first, which replaces the keys on time (the
    /// other waits a little longer: `transport/session.rs`).
    fn rekeys_first(&self, local: &PublicKey) -> bool {
        *local < self.noise
    }

    /// Where an initiation goes: its address, its last direct one, its hints still
    /// fresh at `now`, its candidates, then the path through its relay, each once, of
    /// those `paths` takes.
    fn destinations(&self, now: Timestamp, paths: Paths) -> Vec<SocketAddr> {
        // Where session datagrams go (`send_queued`).
        let current = self.address.or(self.relay);
        let mut destinations: Vec<SocketAddr> = Vec::new();
        let hints = self.fresh_hints(now);
        let all = self.address.iter().chain(&self.direct).chain(hints);
        for destination in all.chain(&self.candidates).chain(&self.relay) {
            if paths.takes(destination, current) && !destinations.contains(destination) {
                destinations.push(*destination);
            }
        }
        destinations
    }

    /// The hints heard within [`HINT_LIFETIME`] of `now`.
    fn fresh_hints(&self, now: Timestamp) -> impl Iterator<Item = &SocketAddr> {
        self.hints
            .iter()
            .flatten()
            .filter(move |(_, heard)| is_fresh(*heard, now))
            .map(|(address, _)| address)
    }

    /// When the next keepalive is due, if the path is kept alive and a session datagram
    /// ever went there.
    fn keepalive_due(&self) -> Option<Timestamp> {
        Some(self.last_sent? + self.keepalive?)
    }

    /// A session datagram went to it now; `keepalive`: an empty one, which asks for no
    /// answer (but keeps a NAT's mapping as any datagram does). The first that follows a
    /// silence both ways of [`LONG_SILENCE`] or more notes it, until anything comes back
    /// (a shorter one says nothing of a NAT's timeout, which is at least that).
    fn note_sent(&mut self, now: Timestamp, keepalive: bool) {
        let silence = self
            .last_sent
            .max(self.last_heard)
            .map(|last| now.saturating_since(last));
        let long = silence.filter(|silence| *silence >= LONG_SILENCE);
        if self.silence_before_unanswered.is_none() && !keepalive && long.is_some() {
            self.silence_before_unanswered = long;
        }
        self.last_sent = Some(now);
    }

    /// When its timer is due: a handshake retry, keys expiring, or (while it has keys) a
    /// keepalive.
    fn deadline(&self, config: &SessionConfig) -> Option<Timestamp> {
        let retry = self.initiation.as_ref().map(|i| i.retry_at);
        let expiry = self.session.next_expiry(config);
        let keepalive = expiry.and(self.keepalive_due());
        retry.into_iter().chain(expiry).chain(keepalive).min()
    }

    fn new(noise: PublicKey) -> Self {
        Self {
            noise,
            address: None,
            candidates: Vec::new(),
            hints: [None; 2],
            direct: None,
            relay: None,
            last_sent: None,
            last_heard: None,
            silence_before_unanswered: None,
            keepalive: None,
            session: Session::default(),
            initiation: None,
            staged: VecDeque::new(),
            last_finish: None,
            joining: None,
            mesh_attempt: 0,
            answered_attempt: 0,
            cookie: None,
        }
    }
}

struct Initiation {
    local_index: u32,
    started: Timestamp,
    retry_at: Timestamp,
    stage: InitiationStage,
    /// The `mac1` the initiation carried: a cookie reply to it is encrypted under it.
    mac1: [u8; wire::MAC_BYTES],
    /// Whether it carried a cookie (then a cookie reply waits for the next retry).
    with_cookie: bool,
    /// The attempt whose mesh secret keyed it ([`MeshSecrets::for_attempt`]).
    secret_attempt: u32,
    /// The attempts it was made again after (a retry, news of a path, a cookie), newest
    /// last: an answer to one of them may still be on its way, and counts as well.
    earlier: Vec<EarlierAttempt>,
    /// The paths it goes to: all of them, or some only while a session works
    /// ([`Endpoint::call_directly`], [`Endpoint::prefer_ipv6`], a rekey).
    paths: Paths,
}

/// Which of a peer's paths a handshake goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Paths {
    /// Every one: its addresses, hints, candidates and relay.
    All,
    /// Every one but the relay's.
    Direct,
    /// Its global IPv6 addresses only.
    GlobalIpv6,
    /// The path its session works on, only: a rekey (WireGuard's, too, goes to the
    /// current endpoint alone). On every path, a rekey cost a datagram per candidate
    /// every two minutes, and the first answer won: a session moved to IPv6 first could
    /// land back on IPv4 until it was moved again.
    Current,
}

impl Paths {
    /// Whether a call on these paths goes to `destination`, of a peer whose session
    /// datagrams go to `current`.
    fn takes(self, destination: &SocketAddr, current: Option<SocketAddr>) -> bool {
        match self {
            Paths::All => true,
            Paths::Direct => !is_relay_address(destination),
            Paths::GlobalIpv6 => destination.is_ipv6() && crate::ip_network::is_public(destination.ip()),
            Paths::Current => current == Some(*destination),
        }
    }
}

/// Most earlier attempts of one handshake whose answers still count.
const MAX_EARLIER_ATTEMPTS: usize = 3;

/// An attempt of a handshake made again before its answer came
/// ([`Initiation::earlier`]). While two devices punch through their filters, news of
/// paths comes in bursts and every call makes the attempt again: the answers the opened
/// path brought were all to attempts already replaced, and were dropped.
struct EarlierAttempt {
    local_index: u32,
    handshake: Box<Handshake>,
    secret_attempt: u32,
}

/// Forgets the indices of `attempts`: their answers no longer count.
fn forget_attempts(
    indices: &mut BTreeMap<u32, IndexOwner>,
    attempts: impl IntoIterator<Item = EarlierAttempt>,
) {
    for attempt in attempts {
        indices.remove(&attempt.local_index);
    }
}

enum InitiationStage {
    /// `HandshakeInit` sent; waiting for the response.
    AwaitResponse(Box<Handshake>),
    /// `HandshakeFinish` sent; waiting for the first packet under the new keys.
    AwaitConfirmation { finish: Vec<u8>, sent: Timestamp },
}

/// The finish that made our current keys as responder, to recognise its repeats.
struct AcceptedFinish {
    local_index: u32,
    digest: Hash,
    answered: Timestamp,
}

struct Responder {
    handshake: Box<Handshake>,
    initiator_index: u32,
    created: Timestamp,
    /// The invite it pairs with, for a pairing handshake.
    invite: Option<[u8; 16]>,
}

/// Who a local index belongs to.
#[derive(Clone, Copy)]
enum IndexOwner {
    /// A peer's session keys or its in-flight initiation.
    Peer(DeviceId),
    /// A half-finished responder handshake.
    Responder,
}

/// One device's handshakes and sessions with its peers.
pub struct Endpoint {
    local: StaticKeypair,
    rng: Rng,
    config: EndpointConfig,
    peers: BTreeMap<DeviceId, Peer>,
    /// Each peer's next handshake retry or key expiry, kept as its state changes, so that
    /// neither the next deadline nor the due peers take a walk over every peer.
    timers: Timers<DeviceId>,
    indices: BTreeMap<u32, IndexOwner>,
    responders: BTreeMap<u32, Responder>,
    invites: BTreeMap<[u8; 16], OpenInvite>,
    /// The secrets initiations are keyed with and checked against.
    mesh: MeshSecrets,
    /// Load, cookies and per-address rates of initiations.
    gate: CookieGate,
    /// Datagrams ready to go.
    outbox: Outbox,
    /// The names of relayed paths (`relay_path.rs`).
    relay_paths: RelayPaths,
    events: VecDeque<EndpointEvent>,
}

impl Endpoint {
    /// An endpoint for the device with key `local`, with no peers yet. `rng_seed` must be
    /// secret random bytes in the daemon (a fixed seed in the simulator).
    pub fn new(local: StaticKeypair, rng_seed: [u8; 32], config: EndpointConfig) -> Self {
        Self {
            mesh: MeshSecrets::open(local.public()),
            gate: CookieGate::new(config.cookies, Timestamp::from_micros(0)),
            local,
            rng: Rng::from_seed(rng_seed),
            config,
            peers: BTreeMap::new(),
            timers: Timers::new(),
            indices: BTreeMap::new(),
            responders: BTreeMap::new(),
            invites: BTreeMap::new(),
            outbox: Outbox::default(),
            relay_paths: RelayPaths::default(),
            events: VecDeque::new(),
        }
    }

    /// Mixes fresh secret bytes into the randomness ephemeral keys come from (the
    /// daemon gives bytes of the operating system before every step).
    pub fn reseed(&mut self, fresh: &[u8; 32]) {
        self.rng.reseed(fresh);
    }

    // ----- getters -----

    /// This device's public key.
    pub fn local_key(&self) -> &PublicKey {
        self.local.public()
    }

    /// Whether `peer` is known.
    pub fn has_peer(&self, peer: &DeviceId) -> bool {
        self.peers.contains_key(peer)
    }

    /// The address `peer` last sent an authenticated packet from (or was added with).
    pub fn peer_address(&self, peer: &DeviceId) -> Option<SocketAddr> {
        self.peers.get(peer).and_then(|p| p.address)
    }

    /// The current keys with `peer`, if any may be used now.
    pub fn current_keys(&self, now: Timestamp, peer: &DeviceId) -> Option<&TransportKeys> {
        self.peers.get(peer)?.session.current(now, &self.config.session)
    }

    /// Every peer this endpoint holds usable keys with.
    pub fn peers_with_keys(&self, now: Timestamp) -> Vec<DeviceId> {
        let config = &self.config.session;
        let mut busy: Vec<DeviceId> = self.busy_peers().collect();
        busy.sort_unstable();
        busy.dedup();
        busy.into_iter()
            .filter(|key| {
                self.peers
                    .get(key)
                    .is_some_and(|p| p.session.current(now, config).is_some())
            })
            .collect()
    }

    /// How many local indices are in use (handshakes and key sets): bounded by a few per
    /// busy peer, however long the endpoint runs.
    pub fn indices_in_use(&self) -> usize {
        self.indices.len()
    }

    /// Whether a handshake we started with `peer` is in flight.
    pub fn is_handshaking(&self, peer: &DeviceId) -> bool {
        self.peers.get(peer).is_some_and(|p| p.initiation.is_some())
    }

    // ----- commands -----

    /// Makes `peer` known (or updates its address). Only known peers finish handshakes.
    /// An ID that names no device key ([`DeviceId::noise_key`]) is not added: no handshake
    /// could ever prove it.
    pub fn add_peer(&mut self, peer: DeviceId, address: Option<SocketAddr>) {
        // A relayed path's name is this endpoint's own, never news from elsewhere.
        let address = address.filter(|a| !is_relay_address(a));
        let entry = match self.peers.entry(peer) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                let Some(noise) = peer.noise_key() else {
                    return;
                };
                entry.insert(Peer::new(noise))
            }
        };
        if address.is_some() {
            // News of an address does not move a session that goes through a relay: it is
            // tried at the next call, beside the relay.
            if !entry.address.is_some_and(|a| is_relay_address(&a)) {
                entry.address = address;
            }
            entry.direct = address;
        }
    }

    /// Sets the other addresses `peer` may be reached at (its address record, best first,
    /// at most [`MAX_CANDIDATES`]): every initiation goes to each of them too, and the
    /// first path whose answer proves the peer becomes its address.
    pub fn set_candidates(&mut self, peer: &DeviceId, candidates: &[SocketAddr]) {
        if let Some(state) = self.peers.get_mut(peer) {
            let real = candidates.iter().filter(|a| !is_relay_address(a));
            state.candidates = real.take(MAX_CANDIDATES).copied().collect();
        }
    }

    /// Sets the device that relays for `peer` while no direct path works (`None`: none):
    /// initiations go through it as well as to every direct destination, and whichever
    /// path answers first carries the session (`relay_path.rs`).
    pub fn set_relay(&mut self, peer: &DeviceId, relay: Option<DeviceId>) {
        if relay == Some(*peer) || !self.peers.contains_key(peer) {
            return;
        }
        let path = relay.map(|relay| self.name_relay_path(relay, *peer));
        if let Some(state) = self.peers.get_mut(peer) {
            state.relay = path;
        }
    }

    /// Forgets the relayed paths `gone` names; the peers whose session or relay went by
    /// one fall back to their last direct address (the next call finds a path).
    fn forget_relay_paths(&mut self, gone: impl Fn(DeviceId, DeviceId) -> bool) {
        let forgotten = self.relay_paths.forget(gone);
        if forgotten.is_empty() {
            return;
        }
        for state in self.peers.values_mut() {
            if state.address.is_some_and(|a| forgotten.contains(&a)) {
                state.address = state.direct;
            }
            if state.relay.is_some_and(|a| forgotten.contains(&a)) {
                state.relay = None;
            }
        }
    }

    /// The device set to relay for `peer` ([`Endpoint::set_relay`]), if any.
    pub fn relay_of(&self, peer: &DeviceId) -> Option<DeviceId> {
        let path = self.peers.get(peer)?.relay?;
        self.relay_paths.pair_of(&path).map(|(relay, _)| relay)
    }

    /// The device `peer`'s session goes through, when its path is relayed.
    pub fn relayed_through(&self, peer: &DeviceId) -> Option<DeviceId> {
        let address = self.peers.get(peer)?.address?;
        self.relay_paths.pair_of(&address).map(|(relay, _)| relay)
    }

    /// Takes a datagram `relay` carried from `far`: it is handled as one that came by the
    /// relayed path, so only `far`'s keys can open it, and answers go back the same way.
    pub fn handle_relayed(
        &mut self,
        now: Timestamp,
        relay: DeviceId,
        far: DeviceId,
        datagram: &[u8],
    ) -> Result<(), ReceiveError> {
        let from = self.name_relay_path(relay, far);
        self.receive(now, from, datagram)
    }

    /// The address of the path to `far` through `relay`; a path whose name was given up
    /// to make room is forgotten as a removed device's would be.
    fn name_relay_path(&mut self, relay: DeviceId, far: DeviceId) -> SocketAddr {
        let (address, evicted) = self.relay_paths.address_of(relay, far);
        if let Some(evicted) = evicted {
            self.forget_relay_paths(|r, f| (r, f) == evicted);
        }
        address
    }

    /// Keeps the path to `peer` alive (a NAT's mapping on it): an empty session datagram
    /// whenever nothing went to it for `interval`, while a session works; `None` stops.
    pub fn set_keepalive(&mut self, peer: &DeviceId, interval: Option<Duration>) {
        let Some(state) = self.peers.get_mut(peer) else {
            return;
        };
        if state.keepalive != interval {
            state.keepalive = interval;
            self.reschedule(*peer);
        }
    }

    /// If datagrams went to `peer` after a silence both ways of 15 s or more and nothing
    /// came back since: that silence.
    pub fn silence_before_unanswered(&self, peer: &DeviceId) -> Option<Duration> {
        self.peers.get(peer)?.silence_before_unanswered
    }

    /// Notes a hint of where `peer` is, heard at `now`: initiations go there too for
    /// [`HINT_LIFETIME`] (one address of each kind, the latest: it displaces none of the
    /// peer's own candidates), and it becomes the peer's address only if a proven answer
    /// comes from there. Returns whether it is news (not a fresh hint of that kind
    /// already held).
    pub fn set_hint(&mut self, now: Timestamp, peer: &DeviceId, hint: Hint, address: SocketAddr) -> bool {
        if is_relay_address(&address) {
            return false;
        }
        let Some(state) = self.peers.get_mut(peer) else {
            return false;
        };
        let held = &mut state.hints[hint as usize];
        let news = !held.is_some_and(|(at, heard)| at == address && is_fresh(heard, now));
        *held = Some((address, now));
        news
    }

    /// Forgets `peer`: its keys are dropped and its handshakes refused from now on.
    pub fn remove_peer(&mut self, peer: &DeviceId) {
        self.timers.clear(peer);
        self.forget_relay_paths(|relay, far| relay == *peer || far == *peer);
        if let Some(mut removed) = self.peers.remove(peer) {
            for index in removed.session.clear() {
                self.indices.remove(&index);
            }
            if let Some(initiation) = removed.initiation {
                self.indices.remove(&initiation.local_index);
                forget_attempts(&mut self.indices, initiation.earlier);
            }
        }
    }

    /// Sets the mesh secrets: `known`, tried in turn when calling a peer (the current one
    /// first), and `accepted`, the ones this device answers.
    pub fn set_mesh_secrets(&mut self, known: Vec<stealth::MeshSecret>, accepted: Vec<stealth::MeshSecret>) {
        let mesh = MeshSecrets::new(self.local.public(), known, accepted);
        if mesh == self.mesh {
            return;
        }
        self.mesh = mesh;
        for peer in self.peers.values_mut() {
            peer.mesh_attempt = 0;
            peer.answered_attempt = 0;
        }
    }

    /// Accepts pairing handshakes with `invite` until `expires` (once).
    pub fn add_invite(&mut self, invite: &InviteSecret, expires: Timestamp) {
        if self.invites.len() >= MAX_OPEN_INVITES {
            remove_least(&mut self.invites, |invite| invite.expires);
        }
        self.invites.insert(
            invite.token_id,
            OpenInvite {
                psk: invite.psk,
                expires,
            },
        );
    }

    /// Joins the mesh of `inviter` with its invite: makes it a peer and starts the
    /// pairing handshake. [`EndpointEvent::Established`] says it worked,
    /// [`EndpointEvent::HandshakeFailed`] that it did not (then call
    /// [`Endpoint::remove_peer`] unless it was a peer before).
    pub fn join(&mut self, now: Timestamp, inviter: DeviceId, address: SocketAddr, invite: InviteSecret) {
        self.add_peer(inviter, Some(address));
        if let Some(state) = self.peers.get_mut(&inviter) {
            state.joining = Some(Box::new(invite));
            if let Some(initiation) = state.initiation.take() {
                if !state.session.owns_index(initiation.local_index) {
                    self.indices.remove(&initiation.local_index);
                }
                forget_attempts(&mut self.indices, initiation.earlier);
            }
        }
        self.start_initiation(now, inviter, now);
    }

    /// Forgets every session and handshake in flight (after a sleep, when any peer may have
    /// restarted): the next payload to each peer waits for a fresh handshake. Returns the
    /// peers a session worked with.
    pub fn reset_sessions(&mut self, now: Timestamp) -> Vec<DeviceId> {
        let mut had_keys = Vec::new();
        for (peer, state) in &mut self.peers {
            if state.session.current(now, &self.config.session).is_some() {
                had_keys.push(*peer);
            }
            state.session.clear();
            state.initiation = None;
            // Where a beacon or another device placed it was on the network left behind.
            state.hints = [None; 2];
            // An initiation made while the network was changing may never have left (no
            // route yet): the next one calls with the secret that worked, not the next.
            state.mesh_attempt = state.answered_attempt;
        }
        self.timers = Timers::new();
        self.indices
            .retain(|_, owner| matches!(owner, IndexOwner::Responder));
        had_keys
    }

    /// Starts a handshake with `peer`. One already in flight is not restarted, but it is
    /// given its full time again: a handshake asked for just before the one in flight would
    /// have given up (the peer was down, and has just come back) must not be lost.
    pub fn connect(&mut self, now: Timestamp, peer: &DeviceId) {
        let Some(state) = self.peers.get_mut(peer) else {
            return;
        };
        match &mut state.initiation {
            Some(initiation) => {
                initiation.started = initiation.started.max(now);
                // A call on some paths only (a punch, IPv6 first) is not the handshake
                // asked for (a probe failed, the peer restarted): every path, now.
                let waiting = matches!(initiation.stage, InitiationStage::AwaitResponse(_));
                if waiting && initiation.paths != Paths::All {
                    self.remake_initiation(now, *peer, Some(Paths::All), true);
                }
            }
            None => self.start_initiation(now, *peer, now),
        }
    }

    /// Calls `peer` now: an initiation waiting for its answer is made again at once (to
    /// every destination, a new one included, whatever paths it went to), without more
    /// time to live than it had; a finish in flight goes on; with nothing in flight a
    /// handshake starts.
    ///
    /// It is keyed with the mesh secret the peer last answered: this is news of where the
    /// peer is (a record, a beacon, an anchor), and the calls that failed before it failed
    /// for want of a path, not of the secret (taking the next secret in turn sent every
    /// other such call with one the peer does not answer, and its answer a retry later).
    pub fn connect_now(&mut self, now: Timestamp, peer: &DeviceId) {
        let Some(state) = self.peers.get_mut(peer) else {
            return;
        };
        state.mesh_attempt = state.answered_attempt;
        match &state.initiation {
            None => self.start_initiation(now, *peer, now),
            Some(initiation) => {
                if let InitiationStage::AwaitResponse(_) = initiation.stage {
                    self.remake_initiation(now, *peer, Some(Paths::All), true);
                }
            }
        }
    }

    /// Calls `peer` on its direct paths only (its addresses, hints and candidates; none:
    /// no call), while a session through a relay works and no handshake is under way: a
    /// punch. (On every path, the relay's answer came before any path through two filters
    /// opened, since the first datagram each way through them is dropped: the punch ended
    /// relayed again.) Otherwise as [`Endpoint::connect_now`].
    pub fn call_directly(&mut self, now: Timestamp, peer: &DeviceId) {
        let Some(state) = self.peers.get(peer) else {
            return;
        };
        let relayed = state.address.is_some_and(|a| is_relay_address(&a));
        if !relayed || !self.call_on(now, peer, Paths::Direct) {
            self.connect_now(now, peer);
        }
    }

    /// Calls `peer` on its global IPv6 paths only, when a session with it works on a
    /// direct public IPv4 path, no handshake is under way, and it has one: IPv6 first
    /// where it exists (no NAT to keep open, no mapping to lose). Both ends do so as their
    /// keys are made, within about half a round trip of each other, so their calls cross
    /// and open two stateful firewalls. The first authenticated answer moves the session
    /// there.
    pub fn prefer_ipv6(&mut self, now: Timestamp, peer: &DeviceId) {
        // Through a NAT or on the internet (a LAN path stays: it goes nowhere else).
        let on_ipv4 = self
            .peer_address(peer)
            .is_some_and(|a| a.is_ipv4() && crate::ip_network::is_public(a.ip()));
        if on_ipv4 {
            self.call_on(now, peer, Paths::GlobalIpv6);
        }
    }

    /// Calls `peer` on `paths` only (some of them), while a session with it works and no
    /// handshake is under way, keyed with the mesh secret it answered; returns whether
    /// that is so (a call with nowhere to go is none, and made none). Such a call that
    /// gets no answer gives up quietly while the session still carries anything: no
    /// [`EndpointEvent::HandshakeFailed`], and a relay it went beside is not blamed.
    fn call_on(&mut self, now: Timestamp, peer: &DeviceId, paths: Paths) -> bool {
        let Some(state) = self.peers.get_mut(peer) else {
            return false;
        };
        let working = state.session.current(now, &self.config.session).is_some();
        if !working || state.initiation.is_some() {
            return false;
        }
        if !state.destinations(now, paths).is_empty() {
            state.mesh_attempt = state.answered_attempt;
            self.start_call(now, *peer, now, paths);
        }
        true
    }

    /// Sends `payload` to `peer`: at once if keys are confirmed, otherwise after a
    /// handshake (queued, bounded: the oldest queued payload is dropped beyond
    /// [`EndpointConfig::max_staged_per_peer`]).
    pub fn send(&mut self, now: Timestamp, peer: &DeviceId, payload: &[u8]) -> Result<Sent, SendError> {
        self.send_queued(now, peer, payload, false, MAX_PAYLOAD_BYTES)
    }

    /// Like [`Endpoint::send`], for a payload that acknowledges nothing durable (failure
    /// detection, echoes): its datagram comes out of [`Endpoint::poll_prompt_transmit`],
    /// which the node hands out before it waits for the round's writes to be synced, so
    /// that a sync never delays a probe's answer (and passes for network round trip).
    pub fn send_prompt(
        &mut self,
        now: Timestamp,
        peer: &DeviceId,
        payload: &[u8],
    ) -> Result<Sent, SendError> {
        self.send_queued(now, peer, payload, true, MAX_PAYLOAD_BYTES)
    }

    /// Sends a datagram of another session carried for a relayed path (`node/relay.rs`):
    /// it may use the room every other payload leaves for it, up to a whole datagram
    /// ([`MAX_CARRIED_PAYLOAD_BYTES`]), and must go out directly. `prompt` as for
    /// [`Endpoint::send_prompt`].
    pub fn send_carried(
        &mut self,
        now: Timestamp,
        peer: &DeviceId,
        payload: &[u8],
        prompt: bool,
    ) -> Result<Sent, SendError> {
        if self.relayed_through(peer).is_some() || self.peer_address(peer).is_none() {
            return Err(SendError::NoAddress);
        }
        self.send_queued(now, peer, payload, prompt, MAX_CARRIED_PAYLOAD_BYTES)
    }

    fn send_queued(
        &mut self,
        now: Timestamp,
        peer: &DeviceId,
        payload: &[u8],
        prompt: bool,
        limit: usize,
    ) -> Result<Sent, SendError> {
        if payload.len() > limit {
            return Err(SendError::TooLarge(payload.len()));
        }
        let config = &self.config;
        let state = self.peers.get_mut(peer).ok_or(SendError::UnknownPeer)?;
        // A peer found only through a relay has no address of its own yet.
        let destination = state.address.or(state.relay).ok_or(SendError::NoAddress)?;
        let first = state.rekeys_first(self.local.public());
        let needs_rekey =
            state.session.needs_rekey(now, &config.session, first) && state.initiation.is_none();
        // A send moves a kept-alive path's keepalive on.
        let mut rescheduled = false;
        let mut datagram = Vec::new();
        let sent = match state.session.seal(now, &config.session, payload, &mut datagram) {
            Ok(()) => {
                self.outbox.push(
                    Transmit {
                        destination,
                        datagram,
                    },
                    prompt,
                );
                state.note_sent(now, payload.is_empty());
                rescheduled = state.keepalive.is_some();
                Sent::Now
            }
            Err(SealError::NoUsableKeys | SealError::CounterExhausted) => {
                if state.staged.len() >= config.max_staged_per_peer {
                    state.staged.pop_front();
                }
                state.staged.push_back(payload.to_vec());
                Sent::Queued
            }
        };
        if rescheduled {
            self.reschedule(*peer);
        }
        if needs_rekey {
            self.rekey(now, *peer);
        }
        Ok(sent)
    }

    // ----- inputs -----

    /// Takes one datagram received from `from`. Authenticated payloads come out of
    /// [`Endpoint::poll_event`]; answers out of [`Endpoint::poll_transmit`].
    pub fn handle_datagram(
        &mut self,
        now: Timestamp,
        from: SocketAddr,
        datagram: &[u8],
    ) -> Result<(), ReceiveError> {
        // Nothing real lives there: such a source is spoofed.
        if is_relay_address(&from) {
            return Err(ReceiveError::Rejected);
        }
        self.receive(now, from, datagram)
    }

    /// Takes a datagram from `from`, which a relayed path's address may be.
    fn receive(&mut self, now: Timestamp, from: SocketAddr, datagram: &[u8]) -> Result<(), ReceiveError> {
        match wire::decode(datagram)? {
            Packet::HandshakeInit {
                sender_index,
                noise,
                mac1,
                mac2,
            } => {
                if !self.mesh.accepts(wire::mac1_covered(datagram), &mac1) {
                    return Err(ReceiveError::Stranger);
                }
                self.pass_gate(now, from, datagram, sender_index, &mac1, &mac2)?;
                self.on_init(now, from, sender_index, noise)
            }
            Packet::HandshakeResponse {
                sender_index,
                receiver_index,
                noise,
            } => self.on_response(now, from, sender_index, receiver_index, noise),
            Packet::HandshakeFinish {
                sender_index,
                receiver_index,
                noise,
            } => self.on_finish(now, from, sender_index, receiver_index, noise),
            Packet::Data {
                receiver_index,
                counter,
                ciphertext,
            } => self.on_data(now, from, receiver_index, counter, ciphertext),
            Packet::PairingInit {
                sender_index,
                token_id,
                noise,
                mac1,
                mac2,
            } => {
                let psk = self.pairing_psk(now, token_id, wire::mac1_covered(datagram), &mac1)?;
                self.pass_gate(now, from, datagram, sender_index, &mac1, &mac2)?;
                self.respond(now, from, sender_index, noise, Some((token_id, psk)))
            }
            Packet::CookieReply {
                receiver_index,
                cookie,
            } => self.on_cookie_reply(now, receiver_index, cookie),
        }
    }

    /// Retransmits and gives up handshakes, and drops expired keys and responder states.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        let responder_timeout = self.config.responder_timeout;
        let stale: Vec<u32> = self
            .responders
            .iter()
            .filter(|(_, r)| now.saturating_since(r.created) >= responder_timeout)
            .map(|(index, _)| *index)
            .collect();
        for index in stale {
            self.responders.remove(&index);
            self.indices.remove(&index);
        }
        let mut due = self.timers.due(now);
        due.sort_unstable();
        for peer in due {
            self.peer_timeout(now, peer);
            self.reschedule(peer);
        }
    }

    /// Sets `peer`'s deadline from its state: the next handshake retry, or the first of
    /// its keys to expire. Called wherever either changes.
    fn reschedule(&mut self, peer: DeviceId) {
        let deadline = self
            .peers
            .get(&peer)
            .and_then(|state| state.deadline(&self.config.session));
        self.timers.set(peer, deadline);
    }

    /// Peers with keys or a handshake in flight: only they have timers. Found through the
    /// index table, so the cost follows the sessions in use, not the roster size.
    /// A peer appears once per index it owns (at most a handful).
    fn busy_peers(&self) -> impl Iterator<Item = DeviceId> + '_ {
        self.indices.values().filter_map(|owner| match owner {
            IndexOwner::Peer(peer) => Some(*peer),
            IndexOwner::Responder => None,
        })
    }

    /// Sends `peer` an empty session datagram if its keepalive is due (sends since the
    /// timer was set move it on) and a session works.
    fn keepalive_if_due(&mut self, now: Timestamp, peer: DeviceId) {
        let config = &self.config.session;
        let Some(state) = self.peers.get_mut(&peer) else {
            return;
        };
        if state.keepalive_due().is_none_or(|due| now < due) {
            return;
        }
        if state.session.current(now, config).is_some() {
            self.seal_and_queue(now, peer, &[]);
        } else {
            // No session to keep alive: look again an interval later, not at once.
            state.last_sent = Some(now);
            self.reschedule(peer);
        }
    }

    fn peer_timeout(&mut self, now: Timestamp, peer: DeviceId) {
        self.keepalive_if_due(now, peer);
        let config = &self.config;
        let Some(state) = self.peers.get_mut(&peer) else {
            return;
        };
        let freed = state.session.expire(now, &config.session);
        if !freed.is_empty() && state.session.current(now, &config.session).is_none() {
            self.events.push_back(EndpointEvent::SessionEnded { peer });
        }
        for index in freed {
            self.indices.remove(&index);
        }
        let Some(initiation) = &mut state.initiation else {
            return;
        };
        if now < initiation.retry_at {
            return;
        }
        if now.saturating_since(initiation.started) >= config.handshake_give_up {
            let index = initiation.local_index;
            forget_attempts(&mut self.indices, initiation.earlier.drain(..));
            // A call on some paths only, made while a session works, leaves the session as
            // it was, if that still carries anything (otherwise its failure is the news).
            let heard = state
                .last_heard
                .is_some_and(|at| now.saturating_since(at) < config.handshake_give_up);
            let working = state.session.current(now, &config.session).is_some();
            let punch = initiation.paths != Paths::All && working && heard;
            state.initiation = None;
            if !state.session.owns_index(index) {
                self.indices.remove(&index);
            }
            if !punch {
                state.staged.clear();
                self.events.push_back(EndpointEvent::HandshakeFailed { peer });
            }
            return;
        }
        // The responder forgets a half-finished handshake after `responder_timeout`: past
        // that, repeating the finish is pointless and a new handshake is needed.
        let responder_forgot = matches!(&initiation.stage,
            InitiationStage::AwaitConfirmation { sent, .. } if now.saturating_since(*sent) >= config.responder_timeout);
        if responder_forgot {
            let (index, started) = (initiation.local_index, initiation.started);
            let working = state.session.current(now, &config.session).is_some();
            let paths = if working { initiation.paths } else { Paths::All };
            if !state.session.owns_index(index) {
                self.indices.remove(&index);
            }
            self.start_call(now, peer, started, paths);
            return;
        }
        match &initiation.stage {
            InitiationStage::AwaitConfirmation { finish, .. } => {
                initiation.retry_at = now + config.handshake_retry;
                if let Some(destination) = state.address {
                    let datagram = finish.clone();
                    self.outbox.push(
                        Transmit {
                            destination,
                            datagram,
                        },
                        false,
                    );
                }
            }
            InitiationStage::AwaitResponse(_) => {
                // A fresh ephemeral key and index each attempt (the earlier one's answer,
                // late, still counts: it proves the peer as well); on every path once the
                // session a call on some paths was made beside has ended.
                let working = state.session.current(now, &config.session).is_some();
                let paths = (!working).then_some(Paths::All);
                self.remake_initiation(now, peer, paths, true);
            }
        }
    }

    // ----- outputs -----

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox.pop()
    }

    /// The next datagram of [`Endpoint::send_prompt`] only: one that may leave before
    /// the writes of its round are durable.
    pub fn poll_prompt_transmit(&mut self) -> Option<Transmit> {
        self.outbox.pop_prompt()
    }

    /// The next datagram for a peer reached through a relay, for the owner to carry
    /// inside its session with the relay (`node/relay.rs`). A path whose name was
    /// forgotten meanwhile (the relay was removed) loses its datagram.
    pub fn poll_relayed(&mut self) -> Option<RelayedTransmit> {
        while let Some((transmit, prompt)) = self.outbox.pop_relayed() {
            if let Some((relay, to)) = self.relay_paths.pair_of(&transmit.destination) {
                let datagram = transmit.datagram;
                return Some(RelayedTransmit {
                    relay,
                    to,
                    datagram,
                    prompt,
                });
            }
        }
        None
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<EndpointEvent> {
        self.events.pop_front()
    }

    /// When [`Endpoint::handle_timeout`] next has work to do.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        #[cfg(debug_assertions)]
        assert_eq!(
            self.timers.next(),
            self.scanned_peer_deadline(),
            "a peer's timer was not kept"
        );
        // At most `max_pending_responders` of them.
        let responders = self
            .responders
            .values()
            .map(|r| r.created + self.config.responder_timeout);
        self.timers.next().into_iter().chain(responders).min()
    }

    /// The next peer deadline found the slow way, to check the timers in debug builds.
    #[cfg(debug_assertions)]
    fn scanned_peer_deadline(&self) -> Option<Timestamp> {
        let session_config = &self.config.session;
        self.busy_peers()
            .filter_map(|key| self.peers.get(&key))
            .filter_map(|peer| peer.deadline(session_config))
            .min()
    }

    // ----- handshake steps -----

    fn new_index(&mut self, owner: IndexOwner) -> u32 {
        loop {
            let index = self.rng.next_u32();
            if let std::collections::btree_map::Entry::Vacant(slot) = self.indices.entry(index) {
                slot.insert(owner);
                return index;
            }
        }
    }

    /// A fresh handshake with this device's key and a new ephemeral key: `XX`, or
    /// `XXpsk3` when pairing with an invite's PSK.
    fn new_handshake(&mut self, role: Role, psk: Option<[u8; 32]>) -> Handshake {
        let pattern = if psk.is_some() {
            Pattern::XXpsk3
        } else {
            Pattern::XX
        };
        Handshake::new(
            pattern,
            role,
            PROLOGUE,
            self.local.clone(),
            self.rng.bytes32(),
            psk,
        )
    }

    /// Makes `peer`'s initiation waiting for its answer again (a fresh ephemeral key and
    /// index, without more time to live than it had), on `paths` (`None`: the same), and
    /// keeps the replaced attempt among the earlier ones whose answers still count
    /// (`keep_replaced`; not when the responder kept nothing for it).
    fn remake_initiation(
        &mut self,
        now: Timestamp,
        peer: DeviceId,
        paths: Option<Paths>,
        keep_replaced: bool,
    ) {
        let Some(state) = self.peers.get_mut(&peer) else {
            return;
        };
        let Some(mut old) = state.initiation.take() else {
            return;
        };
        let (started, paths) = (old.started, paths.unwrap_or(old.paths));
        let mut earlier = std::mem::take(&mut old.earlier);
        match old.stage {
            InitiationStage::AwaitResponse(handshake) if keep_replaced => earlier.push(EarlierAttempt {
                local_index: old.local_index,
                handshake,
                secret_attempt: old.secret_attempt,
            }),
            _ => {
                if !state.session.owns_index(old.local_index) {
                    self.indices.remove(&old.local_index);
                }
            }
        }
        let oldest = earlier.len().saturating_sub(MAX_EARLIER_ATTEMPTS);
        forget_attempts(&mut self.indices, earlier.drain(..oldest));
        self.start_call(now, peer, started, paths);
        match self
            .peers
            .get_mut(&peer)
            .and_then(|state| state.initiation.as_mut())
        {
            Some(initiation) => initiation.earlier = earlier,
            None => forget_attempts(&mut self.indices, earlier),
        }
    }

    fn start_initiation(&mut self, now: Timestamp, peer: DeviceId, started: Timestamp) {
        self.start_call(now, peer, started, Paths::All);
    }

    /// Replaces the keys with `peer`: on the path they work on while they work (a rekey
    /// that gets no answer there gives up quietly, as any call on some paths does, and
    /// the next send tries again until the keys expire; a failed probe asks for every
    /// path), on every path otherwise.
    fn rekey(&mut self, now: Timestamp, peer: DeviceId) {
        if !self.call_on(now, &peer, Paths::Current) {
            self.start_initiation(now, peer, now);
        }
    }

    /// Starts a handshake with `peer` on `paths`.
    fn start_call(&mut self, now: Timestamp, peer: DeviceId, started: Timestamp, paths: Paths) {
        let local_index = self.new_index(IndexOwner::Peer(peer));
        let joining = self.peers.get(&peer).and_then(|p| p.joining.clone());
        let mut handshake = self.new_handshake(Role::Initiator, joining.as_ref().map(|j| j.psk));
        let padding: &[u8] = match joining {
            Some(_) => &[0; wire::PAIRING_INIT_PADDING_SENT_BYTES],
            None => &[0; wire::INIT_PADDING_SENT_BYTES],
        };
        let mut noise = Vec::new();
        let written = handshake.write_message(padding, &mut noise);
        debug_assert!(
            written.is_ok(),
            "the first message of a new handshake is always ours to write"
        );
        let Some(state) = self.peers.get_mut(&peer) else {
            self.indices.remove(&local_index);
            return;
        };
        let cookie = state
            .cookie
            .filter(|(_, received)| now.saturating_since(*received) < COOKIE_USE)
            .map(|(cookie, _)| cookie);
        let mut mac1 = [0; wire::MAC_BYTES];
        let secret_attempt = state.mesh_attempt;
        let destinations = state.destinations(now, paths);
        let datagram = (!destinations.is_empty()).then(|| {
            let mut datagram = Vec::new();
            let placeholder = [0; wire::MAC_BYTES];
            let key = match &state.joining {
                Some(invite) => {
                    Packet::PairingInit {
                        sender_index: local_index,
                        token_id: invite.token_id,
                        noise: &noise,
                        mac1: placeholder,
                        mac2: placeholder,
                    }
                    .encode(&mut datagram);
                    stealth::pairing_mac1_key(&state.noise, &invite.psk)
                }
                None => {
                    Packet::HandshakeInit {
                        sender_index: local_index,
                        noise: &noise,
                        mac1: placeholder,
                        mac2: placeholder,
                    }
                    .encode(&mut datagram);
                    let secret = self.mesh.for_attempt(secret_attempt);
                    state.mesh_attempt = secret_attempt.wrapping_add(1);
                    stealth::mesh_mac1_key(&state.noise, secret)
                }
            };
            mac1 = stealth::seal_mac1(&key, &mut datagram);
            if let Some(cookie) = &cookie {
                cookies::seal_mac2(cookie, &mut datagram);
            }
            datagram
        });
        state.initiation = Some(Box::new(Initiation {
            local_index,
            started,
            retry_at: now + self.config.handshake_retry,
            stage: InitiationStage::AwaitResponse(Box::new(handshake)),
            mac1,
            with_cookie: cookie.is_some(),
            secret_attempt,
            earlier: Vec::new(),
            paths,
        }));
        self.reschedule(peer);
        if let Some(datagram) = datagram {
            for destination in destinations {
                let datagram = datagram.clone();
                self.outbox.push(
                    Transmit {
                        destination,
                        datagram,
                    },
                    false,
                );
            }
        }
    }

    /// The PSK of the open invite a pairing initiation names, if its `mac1` proves it.
    fn pairing_psk(
        &self,
        now: Timestamp,
        token_id: [u8; 16],
        covered: &[u8],
        mac1: &[u8; wire::MAC_BYTES],
    ) -> Result<[u8; 32], ReceiveError> {
        let psk = self
            .invites
            .get(&token_id)
            .filter(|invite| now < invite.expires)
            .map(|invite| invite.psk)
            .ok_or(ReceiveError::UnknownInvite)?;
        let key = stealth::pairing_mac1_key(self.local.public(), &psk);
        if !stealth::verify_mac16(&key, covered, mac1) {
            return Err(ReceiveError::Stranger);
        }
        Ok(psk)
    }

    /// Under load, an initiation (its `mac1` valid) goes on only with a cookie for its
    /// address, and within its address's rate; one without gets the cookie and nothing
    /// more.
    fn pass_gate(
        &mut self,
        now: Timestamp,
        from: SocketAddr,
        datagram: &[u8],
        sender_index: u32,
        mac1: &[u8; wire::MAC_BYTES],
        mac2: &[u8; wire::MAC_BYTES],
    ) -> Result<(), ReceiveError> {
        let rng = &mut self.rng;
        match self
            .gate
            .admit(now, &from, wire::mac2_covered(datagram), mac2, || rng.bytes32())
        {
            Admission::Admit => Ok(()),
            Admission::Limited => Err(ReceiveError::RateLimited),
            Admission::SendCookie(cookie) => {
                let sealed = cookies::seal_cookie(self.local.public(), mac1, &cookie);
                self.answer(
                    from,
                    Packet::CookieReply {
                        receiver_index: sender_index,
                        cookie: &sealed,
                    },
                );
                Err(ReceiveError::CookieSent)
            }
        }
    }

    /// Sends `packet` back to where an initiation came from.
    fn answer(&mut self, destination: SocketAddr, packet: Packet<'_>) {
        let mut datagram = Vec::new();
        packet.encode(&mut datagram);
        self.outbox.push(
            Transmit {
                destination,
                datagram,
            },
            false,
        );
    }

    /// A responder under load sent us a cookie: keep it, and try again at once unless the
    /// initiation it answers carried one already (then at the next retry, so that a
    /// cookie that keeps failing cannot make a loop).
    fn on_cookie_reply(
        &mut self,
        now: Timestamp,
        receiver_index: u32,
        sealed: &[u8],
    ) -> Result<(), ReceiveError> {
        let Some(IndexOwner::Peer(peer)) = self.indices.get(&receiver_index).copied() else {
            return Err(ReceiveError::StrayCookie);
        };
        let state = self.peers.get_mut(&peer).ok_or(ReceiveError::StrayCookie)?;
        let initiation = state
            .initiation
            .as_ref()
            .filter(|i| i.local_index == receiver_index)
            .filter(|i| matches!(i.stage, InitiationStage::AwaitResponse(_)))
            .ok_or(ReceiveError::StrayCookie)?;
        let cookie =
            cookies::open_cookie(&state.noise, &initiation.mac1, sealed).ok_or(ReceiveError::StrayCookie)?;
        state.cookie = Some((cookie, now));
        // The responder took this attempt's secret (it checks mac1 first): the retry
        // uses it again, and so does the first call after a network change.
        state.mesh_attempt = initiation.secret_attempt;
        state.answered_attempt = initiation.secret_attempt;
        if !initiation.with_cookie {
            // The responder kept nothing for the attempt it sent a cookie for.
            self.remake_initiation(now, peer, None, false);
        }
        Ok(())
    }

    fn on_init(
        &mut self,
        now: Timestamp,
        from: SocketAddr,
        sender_index: u32,
        noise: &[u8],
    ) -> Result<(), ReceiveError> {
        self.respond(now, from, sender_index, noise, None)
    }

    /// Answers the first message of a handshake, keeping a half-finished responder state.
    fn respond(
        &mut self,
        now: Timestamp,
        from: SocketAddr,
        sender_index: u32,
        noise: &[u8],
        invite: Option<([u8; 16], [u8; 32])>,
    ) -> Result<(), ReceiveError> {
        let mut handshake = self.new_handshake(Role::Responder, invite.map(|(_, psk)| psk));
        let padding = handshake.read_message(noise)?;
        // Where the initiation came from, if it carried room for it: a response is never
        // longer than the initiation that asked for it.
        let room = match invite {
            Some(_) => wire::PAIRING_INIT_PADDING_SENT_BYTES,
            None => wire::INIT_PADDING_SENT_BYTES,
        };
        let told = if padding.len() >= room {
            observed::tell(from)
        } else {
            Vec::new()
        };
        let mut response = Vec::new();
        handshake.write_message(&told, &mut response)?;
        if self.responders.len() >= self.config.max_pending_responders {
            if let Some(oldest) = remove_least(&mut self.responders, |r| r.created) {
                self.indices.remove(&oldest);
            }
        }
        let local_index = self.new_index(IndexOwner::Responder);
        self.responders.insert(
            local_index,
            Responder {
                handshake: Box::new(handshake),
                initiator_index: sender_index,
                created: now,
                invite: invite.map(|(token_id, _)| token_id),
            },
        );
        self.answer(
            from,
            Packet::HandshakeResponse {
                sender_index: local_index,
                receiver_index: sender_index,
                noise: &response,
            },
        );
        Ok(())
    }

    fn on_response(
        &mut self,
        now: Timestamp,
        from: SocketAddr,
        sender_index: u32,
        receiver_index: u32,
        noise: &[u8],
    ) -> Result<(), ReceiveError> {
        let Some(IndexOwner::Peer(peer)) = self.indices.get(&receiver_index).copied() else {
            return Err(ReceiveError::UnknownIndex(receiver_index));
        };
        self.check_relayed_from(&from, &peer)?;
        let state = self
            .peers
            .get_mut(&peer)
            .ok_or(ReceiveError::UnknownIndex(receiver_index))?;
        let initiation = state
            .initiation
            .as_mut()
            .ok_or(ReceiveError::UnknownIndex(receiver_index))?;
        let (handshake, secret_attempt) = match &initiation.stage {
            InitiationStage::AwaitResponse(handshake) if initiation.local_index == receiver_index => {
                (handshake, initiation.secret_attempt)
            }
            InitiationStage::AwaitResponse(_) => initiation
                .earlier
                .iter()
                .find(|e| e.local_index == receiver_index)
                .map(|e| (&e.handshake, e.secret_attempt))
                .ok_or(ReceiveError::UnknownIndex(receiver_index))?,
            InitiationStage::AwaitConfirmation { .. } => {
                return Err(ReceiveError::UnknownIndex(receiver_index))
            }
        };
        // Work on a copy: only a response from the very peer we called may advance it.
        let mut handshake = handshake.clone();
        let told = handshake.read_message(noise)?;
        if handshake.remote_static() != Some(state.noise) {
            return Err(ReceiveError::NotAPeer);
        }
        let mut finish_noise = Vec::new();
        handshake.write_message(&observed::tell(from), &mut finish_noise)?;
        let secrets = handshake.into_transport()?;
        let keys = TransportKeys::new(&secrets, receiver_index, sender_index, now);
        state.session.install_unconfirmed(keys);
        // The peer answered the secret of this attempt: the next handshake starts with it.
        state.mesh_attempt = secret_attempt;
        state.answered_attempt = secret_attempt;
        // The attempt answered is the handshake now; the others' answers no longer count.
        if initiation.local_index != receiver_index {
            self.indices.remove(&initiation.local_index);
            initiation.local_index = receiver_index;
        }
        let others = initiation
            .earlier
            .drain(..)
            .filter(|e| e.local_index != receiver_index);
        forget_attempts(&mut self.indices, others);
        let mut finish = Vec::new();
        Packet::HandshakeFinish {
            sender_index: receiver_index,
            receiver_index: sender_index,
            noise: &finish_noise,
        }
        .encode(&mut finish);
        initiation.retry_at = now + self.config.handshake_retry;
        initiation.stage = InitiationStage::AwaitConfirmation {
            finish: finish.clone(),
            sent: now,
        };
        // The initiation went to every candidate: the path this proven answer came by is
        // the peer's address from now on.
        self.outbox.push(
            Transmit {
                destination: from,
                datagram: finish,
            },
            false,
        );
        self.after_session_change(peer, Some(from));
        self.note_observed(peer, observed::decode(&told));
        Ok(())
    }

    /// Reports where `peer` says it sees this device (told in every handshake: the node
    /// keeps how fresh each view is).
    fn note_observed(&mut self, peer: DeviceId, address: Option<SocketAddr>) {
        if let Some(address) = address {
            self.events.push_back(EndpointEvent::Observed { peer, address });
        }
    }

    /// After a session changed: forgets the indices of keys newer ones pushed out, and
    /// follows the peer to the address an authenticated packet just came from.
    fn after_session_change(&mut self, peer: DeviceId, from: Option<SocketAddr>) {
        self.reschedule(peer);
        let Some(state) = self.peers.get_mut(&peer) else {
            return;
        };
        for index in state.session.take_evicted() {
            self.indices.remove(&index);
        }
        if from.is_some_and(|from| !is_relay_address(&from)) {
            // A proven direct path: the hints have served their turn.
            state.hints = [None; 2];
        }
        if let Some(address) = from.filter(|address| state.address != Some(*address)) {
            state.address = Some(address);
            if !is_relay_address(&address) {
                state.direct = Some(address);
            }
            self.events
                .push_back(EndpointEvent::AddressChanged { peer, address });
        }
    }

    fn on_finish(
        &mut self,
        now: Timestamp,
        from: SocketAddr,
        sender_index: u32,
        receiver_index: u32,
        noise: &[u8],
    ) -> Result<(), ReceiveError> {
        match self.indices.get(&receiver_index).copied() {
            Some(IndexOwner::Responder) => {}
            // A repeated finish: our confirmation was lost. Confirm again, to the address
            // we already trust rather than wherever this copy came from.
            Some(IndexOwner::Peer(peer)) => return self.confirm_again(now, peer, receiver_index, noise),
            None => return Err(ReceiveError::UnknownIndex(receiver_index)),
        }
        let responder = self
            .responders
            .get(&receiver_index)
            .filter(|r| r.initiator_index == sender_index)
            .ok_or(ReceiveError::UnknownIndex(receiver_index))?;
        let invite = responder.invite;
        let mut handshake = responder.handshake.clone();
        let told = handshake.read_message(noise)?;
        let secrets = handshake.into_transport()?;
        let peer = secrets.remote_static.device_id().ok_or(ReceiveError::NotAPeer)?;
        self.check_relayed_from(&from, &peer)?;
        if let Some(token_id) = invite {
            // The PSK verified: the joiner holds the token. Use the invite up, if nobody
            // else did meanwhile.
            if self.invites.get(&token_id).is_none_or(|i| now >= i.expires) {
                return Err(ReceiveError::UnknownInvite);
            }
            self.invites.remove(&token_id);
            self.add_peer(peer, Some(from));
            self.events.push_back(EndpointEvent::Paired { peer });
        }
        let state = self.peers.get_mut(&peer).ok_or(ReceiveError::NotAPeer)?;
        self.responders.remove(&receiver_index);
        self.indices.insert(receiver_index, IndexOwner::Peer(peer));
        let keys = TransportKeys::new(&secrets, receiver_index, sender_index, now);
        let rekey = state.session.current(now, &self.config.session).is_some();
        state.session.install_confirmed(keys);
        state.last_finish = Some(Box::new(AcceptedFinish {
            local_index: receiver_index,
            digest: hash(&[noise]),
            answered: now,
        }));
        self.after_session_change(peer, Some(from));
        self.note_observed(peer, observed::decode(&told));
        self.seal_and_queue(now, peer, &[]);
        self.flush_staged(now, peer);
        self.events.push_back(EndpointEvent::Established { peer, rekey });
        Ok(())
    }

    /// A datagram that came by a relayed path must be from the device the relay named:
    /// a relay that labels one device's datagrams as another's is refused before they
    /// change anything (it would otherwise point the named device's path at the wrong
    /// device).
    fn check_relayed_from(&self, from: &SocketAddr, peer: &DeviceId) -> Result<(), ReceiveError> {
        match self.relay_paths.pair_of(from) {
            Some((_, far)) if far != *peer => Err(ReceiveError::Rejected),
            _ => Ok(()),
        }
    }

    /// Answers a repeat of the finish we accepted (our confirmation was lost) with
    /// another confirmation: only a byte-identical copy, at most once per retry interval,
    /// so replayed or forged finishes cannot make us send.
    fn confirm_again(
        &mut self,
        now: Timestamp,
        peer: DeviceId,
        local_index: u32,
        noise: &[u8],
    ) -> Result<(), ReceiveError> {
        let retry = self.config.handshake_retry;
        let state = self
            .peers
            .get_mut(&peer)
            .ok_or(ReceiveError::UnknownIndex(local_index))?;
        let accepted = state
            .last_finish
            .as_mut()
            .filter(|f| f.local_index == local_index);
        let Some(accepted) = accepted.filter(|f| f.digest == hash(&[noise])) else {
            return Err(ReceiveError::UnknownIndex(local_index));
        };
        if now.saturating_since(accepted.answered) < retry / 2 {
            return Ok(());
        }
        accepted.answered = now;
        self.seal_and_queue(now, peer, &[]);
        Ok(())
    }

    fn on_data(
        &mut self,
        now: Timestamp,
        from: SocketAddr,
        receiver_index: u32,
        counter: u64,
        ciphertext: &[u8],
    ) -> Result<(), ReceiveError> {
        let Some(IndexOwner::Peer(peer)) = self.indices.get(&receiver_index).copied() else {
            return Err(ReceiveError::UnknownIndex(receiver_index));
        };
        self.check_relayed_from(&from, &peer)?;
        let config = &self.config.session;
        let state = self
            .peers
            .get_mut(&peer)
            .ok_or(ReceiveError::UnknownIndex(receiver_index))?;
        let mut buffer = ciphertext.to_vec();
        let had_keys = state.session.current(now, config).is_some();
        let (len, slot) = state
            .session
            .open(now, config, receiver_index, counter, &mut buffer)
            .map_err(|_| ReceiveError::Rejected)?;
        buffer.truncate(len);
        state.last_heard = Some(now);
        state.silence_before_unanswered = None;
        // Roaming: an authenticated packet is proof enough of the peer's new address; but
        // not from a direct path to a relayed one (a straggler the relay carried after the
        // session moved: only a handshake, when the direct path failed, moves it back).
        let straggler = is_relay_address(&from) && state.address.is_some_and(|a| !is_relay_address(&a));
        if slot == KeySlot::Confirmed {
            if state
                .initiation
                .as_ref()
                .is_some_and(|i| i.local_index == receiver_index)
            {
                state.initiation = None;
                state.joining = None;
            }
            self.flush_staged(now, peer);
            self.events.push_back(EndpointEvent::Established {
                peer,
                rekey: had_keys,
            });
        }
        self.after_session_change(peer, (!straggler).then_some(from));
        if !buffer.is_empty() {
            self.events.push_back(EndpointEvent::Received {
                peer,
                payload: buffer,
            });
        }
        let config = &self.config.session;
        let local = self.local.public();
        let state = self.peers.get(&peer);
        if state.is_some_and(|s| {
            s.initiation.is_none() && s.session.needs_rekey(now, config, s.rekeys_first(local))
        }) {
            self.rekey(now, peer);
        }
        Ok(())
    }

    fn seal_and_queue(&mut self, now: Timestamp, peer: DeviceId, payload: &[u8]) -> bool {
        let config = &self.config.session;
        let Some(state) = self.peers.get_mut(&peer) else {
            return false;
        };
        let Some(destination) = state.address else {
            return false;
        };
        let mut datagram = Vec::new();
        if state.session.seal(now, config, payload, &mut datagram).is_err() {
            return false;
        }
        state.note_sent(now, payload.is_empty());
        let kept_alive = state.keepalive.is_some();
        self.outbox.push(
            Transmit {
                destination,
                datagram,
            },
            false,
        );
        if kept_alive {
            self.reschedule(peer);
        }
        true
    }

    fn flush_staged(&mut self, now: Timestamp, peer: DeviceId) {
        let staged = match self.peers.get_mut(&peer) {
            Some(state) => std::mem::take(&mut state.staged),
            None => return,
        };
        let mut staged = staged.into_iter();
        while let Some(payload) = staged.next() {
            if !self.seal_and_queue(now, peer, &payload) {
                // Keys ran out mid-flush: keep this payload and the rest for the next keys.
                if let Some(state) = self.peers.get_mut(&peer) {
                    state.staged = std::iter::once(payload).chain(staged).collect();
                }
                return;
            }
        }
    }
}
