//! Runs the device's [`Node`]: one Tokio task owns it and feeds it datagrams from every
//! socket, its timers and the daemon's commands, then carries out its outputs (sends,
//! notices, roster writes). Everything else talks to it through [`DriverHandle`].

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cnspr_proto::identity::{DeviceId, DeviceKey};
use cnspr_proto::membership::MemberState;
use cnspr_proto::node::{CatchUpProgress, Durable, Node, NodeConfig, NodeStats, PeerError, QueryFailure};
use cnspr_proto::transport::InviteSecret;
use tokio::sync::{broadcast, mpsc, oneshot};

mod events;
mod shell;

use cnspr_proto::messaging::{MessagingError, Tag};
use cnspr_proto::store::{Read, StoreError};

use crate::api::{Notice, PeerPath};
use crate::beacons;
use crate::clock::{unix_now, Clock};
use crate::config::Discovery;
use crate::durability::{DiskFailure, Durability};
use crate::handlers::Dispatcher;
use crate::network_watch::{self, NetworkState, NetworkWatch};
use crate::sockets::Sockets;
use crate::state::SavedRoster;
use shell::Shell;

/// Largest datagram read; anything longer is not ours (the wire format caps at 1452).
const RECEIVE_BUFFER_BYTES: usize = 2048;
/// Datagrams waiting for the node task; beyond it they are dropped like a full socket
/// buffer would.
const DATAGRAM_BACKLOG: usize = 1024;
/// Notices kept for slow subscribers before the oldest are dropped.
const NOTICE_BACKLOG: usize = 1024;
/// Commands waiting for the node task.
const COMMAND_BACKLOG: usize = 64;
/// How long the `daemon.stop` handlers may hold up a stop.
const STOP_HANDLERS_WAIT: Duration = Duration::from_secs(5);
/// How often a failed database is opened again to see whether it works.
const DISK_RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// How often the network is read again whatever the kernel announced (and the wall clock
/// taken): a change netlink cannot tell (no subscription) is seen within this.
const NETWORK_CHECK_INTERVAL: Duration = Duration::from_secs(5);

/// One roster device as the daemon shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    /// Its device ID.
    pub id: DeviceId,
    /// Its name, once known.
    pub name: Option<String>,
    /// Its state as shown: `Active` only with a working direct session (the failure
    /// detector's `Active` without one is `Indirect`: alive as far as others know).
    pub state: MemberState,
    /// How it is reached (`None`: it is not).
    pub path: Option<PeerPath>,
    /// While it is reached only through others: the device that relays its session, else
    /// the device that last reached it for us.
    pub via: Option<DeviceId>,
    /// The device that relays its session, while one does.
    pub relay: Option<DeviceId>,
    /// Where it is reached.
    pub address: Option<SocketAddr>,
    /// Smoothed round-trip time, once measured.
    pub rtt: Option<Duration>,
    /// How long ago an authenticated packet came from it.
    pub last_seen: Option<Duration>,
    /// The protocol version its datagrams carry, when it is not this device's.
    pub other_version: Option<u8>,
}

/// The node's state at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// This device.
    pub own_id: DeviceId,
    /// Its name.
    pub own_name: String,
    /// Every other device of the roster (removed ones excluded).
    pub members: Vec<MemberView>,
    /// Removed devices.
    pub removed: Vec<DeviceId>,
    /// Traffic counters.
    pub stats: NodeStats,
    /// Handler runs owed and not started, and running.
    pub runs: (usize, usize),
    /// Keys the store holds (deletes not yet collected included).
    pub store_keys: usize,
    /// Catch-up answers being received, with the sender's shown name.
    pub catching_up: Vec<(CatchUpProgress, Option<String>)>,
    /// This device's NAT, as its peers see it.
    pub nat: cnspr_proto::node::NatReport,
    /// The keepalive interval on sessions through it, and how many are kept alive.
    pub keepalive: (Duration, usize),
    /// Pairs of other devices this one relays for now.
    pub relayed_pairs: usize,
    /// The failure detector's local health multiplier (1: healthy).
    pub health_multiplier: u32,
}

/// One key as read from the store.
#[derive(Debug, Clone)]
pub struct KvEntry {
    /// The key.
    pub key: String,
    /// The winner's value (`None`: deleted).
    pub value: Option<Vec<u8>>,
    /// Whether concurrent writes are kept.
    pub conflict: bool,
    /// Every sibling: writer, write time (Unix microseconds), value.
    pub siblings: Vec<(DeviceId, u64, Option<Vec<u8>>)>,
}

/// A query's number and the targets that were not reachable.
pub type QueryStarted = (u64, Vec<DeviceId>);
/// What comes back for a query, as it comes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryReply {
    /// One answer: who answered and what.
    Answer(DeviceId, Vec<u8>),
    /// An asked peer that will not answer, and why.
    Failed(DeviceId, QueryFailure),
}

/// A query's replies as they arrive.
pub type Answers = mpsc::Receiver<QueryReply>;
/// Answers kept for a slow client.
const ANSWER_BACKLOG: usize = 256;

/// Why the node task did not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    /// The node task ended (it left, or every socket failed).
    #[error("the daemon is shutting down")]
    Stopping,
    /// The database failed: nothing that needs it is done until it works again.
    #[error("the database failed ({}); nothing that needs the disk is done until it works again", .0.error)]
    DiskFailed(DiskFailure),
}

/// Why a ping got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PingError {
    /// The peer cannot be asked.
    #[error("{0}")]
    Peer(#[from] PeerError),
    /// No answer in time.
    #[error("no answer within {} ms", .0.as_millis())]
    Timeout(Duration),
    /// The daemon is stopping.
    #[error("{0}")]
    Unavailable(#[from] Unavailable),
}

enum Command {
    Snapshot(oneshot::Sender<Snapshot>),
    Invite(InviteSecret, Duration),
    Join(DeviceId, SocketAddr, InviteSecret, oneshot::Sender<bool>),
    Remove(DeviceId, oneshot::Sender<Result<(), PeerError>>),
    Echo(DeviceId, oneshot::Sender<Result<Duration, PeerError>>),
    Rename(String),
    Leave(oneshot::Sender<()>),
    Send {
        to: DeviceId,
        tag: Tag,
        payload: Vec<u8>,
        reply: oneshot::Sender<Result<u64, MessagingError>>,
        delivered: Option<oneshot::Sender<bool>>,
    },
    Publish(Tag, Vec<u8>, oneshot::Sender<Result<u64, MessagingError>>),
    Query {
        targets: Option<Vec<DeviceId>>,
        tag: Tag,
        payload: Vec<u8>,
        answers: mpsc::Sender<QueryReply>,
        reply: oneshot::Sender<Result<QueryStarted, MessagingError>>,
    },
    QueryDone(u64),
    DeliveryProgress(DeviceId, u64, oneshot::Sender<Option<(u64, u64)>>),
    /// A durable handler run ended.
    RunFinished(u64, u32),
    /// A device's static anchors were looked up.
    AnchorsFound(DeviceId, Vec<SocketAddr>),
    /// The router's port mapping gives this public address (`None`: no mapping now).
    PortMapped(Option<SocketAddr>),
    Answer(DeviceId, u64, Vec<u8>),
    KvWrite(String, Option<Vec<u8>>, oneshot::Sender<Result<u64, StoreError>>),
    KvRead(String, oneshot::Sender<Option<KvEntry>>),
    KvList(String, oneshot::Sender<Vec<KvEntry>>),
}

impl Command {
    /// Whether carrying it out writes to the database or sends what must follow a
    /// durable write: refused while the database is failed. Reads, and the ends of what
    /// is already running, go on.
    fn needs_disk(&self) -> bool {
        !matches!(
            self,
            Command::Snapshot(_)
                | Command::KvRead(..)
                | Command::KvList(..)
                | Command::QueryDone(_)
                | Command::DeliveryProgress(..)
                | Command::RunFinished(..)
                | Command::Answer(..)
                | Command::Leave(_)
        )
    }
}

/// Talks to the running node task.
#[derive(Debug, Clone)]
pub struct DriverHandle {
    commands: mpsc::Sender<Command>,
    durability: Arc<Durability>,
    notices: broadcast::Sender<Notice>,
    sockets: Sockets,
}

impl DriverHandle {
    async fn ask<T>(&self, command: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Unavailable> {
        let (reply, answer) = oneshot::channel();
        self.tell(command(reply)).await?;
        // The node task drops a reply it cannot give: it stopped, or what was asked
        // needs the failed disk.
        answer.await.map_err(|_| self.why_unavailable())
    }

    async fn tell(&self, command: Command) -> Result<(), Unavailable> {
        if let Some(failure) = command.needs_disk().then(|| self.durability.failure()).flatten() {
            return Err(Unavailable::DiskFailed(failure));
        }
        self.commands
            .send(command)
            .await
            .map_err(|_| Unavailable::Stopping)
    }

    fn why_unavailable(&self) -> Unavailable {
        match self.durability.failure() {
            Some(failure) => Unavailable::DiskFailed(failure),
            None => Unavailable::Stopping,
        }
    }

    /// The node's state now.
    pub async fn snapshot(&self) -> Result<Snapshot, Unavailable> {
        self.ask(Command::Snapshot).await
    }

    /// Opens an invite for `ttl`.
    pub async fn invite(&self, secret: InviteSecret, ttl: Duration) -> Result<(), Unavailable> {
        self.tell(Command::Invite(secret, ttl)).await
    }

    /// Joins `inviter`'s mesh at `address`; `false` if it did not work.
    pub async fn join(
        &self,
        inviter: DeviceId,
        address: SocketAddr,
        secret: InviteSecret,
    ) -> Result<bool, Unavailable> {
        self.ask(|reply| Command::Join(inviter, address, secret, reply))
            .await
    }

    /// Revokes `device` everywhere.
    pub async fn remove(&self, device: DeviceId) -> Result<Result<(), PeerError>, Unavailable> {
        self.ask(|reply| Command::Remove(device, reply)).await
    }

    /// One round trip to `peer`, waiting at most `timeout`.
    pub async fn ping(&self, peer: DeviceId, timeout: Duration) -> Result<Duration, PingError> {
        let answer = self.ask(|reply| Command::Echo(peer, reply));
        match tokio::time::timeout(timeout, answer).await {
            Ok(result) => Ok(result??),
            Err(_) => Err(PingError::Timeout(timeout)),
        }
    }

    /// Sends a direct message; returns its number, and with `wait` a receiver that says
    /// whether it was delivered (`false`: it expired).
    pub async fn send(
        &self,
        to: DeviceId,
        tag: Tag,
        payload: Vec<u8>,
        wait: bool,
    ) -> Result<Result<(u64, Option<oneshot::Receiver<bool>>), MessagingError>, Unavailable> {
        let (delivered, outcome) = if wait {
            let (sender, receiver) = oneshot::channel();
            (Some(sender), Some(receiver))
        } else {
            (None, None)
        };
        let seq = self
            .ask(|reply| Command::Send {
                to,
                tag,
                payload,
                reply,
                delivered,
            })
            .await?;
        Ok(seq.map(|seq| (seq, outcome)))
    }

    /// Publishes an event to every device, this one included.
    pub async fn publish(
        &self,
        tag: Tag,
        payload: Vec<u8>,
    ) -> Result<Result<u64, MessagingError>, Unavailable> {
        self.ask(|reply| Command::Publish(tag, payload, reply)).await
    }

    /// Asks the handlers of `targets` (every peer if `None`); answers arrive on the
    /// returned receiver. Call [`DriverHandle::query_done`] when no more are wanted.
    pub async fn query(
        &self,
        targets: Option<Vec<DeviceId>>,
        tag: Tag,
        payload: Vec<u8>,
    ) -> Result<Result<(QueryStarted, Answers), MessagingError>, Unavailable> {
        let (answers, receiver) = mpsc::channel(ANSWER_BACKLOG);
        let started = self
            .ask(|reply| Command::Query {
                targets,
                tag,
                payload,
                answers,
                reply,
            })
            .await?;
        Ok(started.map(|started| (started, receiver)))
    }

    /// Writes `value` to `key` (`None` deletes); answers once the write is durable.
    pub async fn kv_write(
        &self,
        key: String,
        value: Option<Vec<u8>>,
    ) -> Result<Result<u64, StoreError>, Unavailable> {
        self.ask(|reply| Command::KvWrite(key, value, reply)).await
    }

    /// Reads `key`.
    pub async fn kv_read(&self, key: String) -> Result<Option<KvEntry>, Unavailable> {
        self.ask(|reply| Command::KvRead(key, reply)).await
    }

    /// The keys under `prefix` that are not deleted.
    pub async fn kv_list(&self, prefix: String) -> Result<Vec<KvEntry>, Unavailable> {
        self.ask(|reply| Command::KvList(prefix, reply)).await
    }

    /// How far direct message `seq` to `peer` is: bytes acknowledged, of its bytes
    /// (`None` while it waits its turn, and once delivered).
    pub async fn delivery_progress(
        &self,
        peer: DeviceId,
        seq: u64,
    ) -> Result<Option<(u64, u64)>, Unavailable> {
        self.ask(|reply| Command::DeliveryProgress(peer, seq, reply))
            .await
    }

    /// Stops collecting answers to query `id`.
    pub async fn query_done(&self, id: u64) {
        let _ = self.commands.send(Command::QueryDone(id)).await;
    }

    /// Renames this device.
    pub async fn rename(&self, name: String) -> Result<(), Unavailable> {
        self.tell(Command::Rename(name)).await
    }

    /// The router's port mapping gives this device `external` (`None`: none now): it
    /// goes into this device's address record.
    pub async fn set_port_mapping(&self, external: Option<SocketAddr>) -> Result<(), Unavailable> {
        self.tell(Command::PortMapped(external)).await
    }

    /// Says goodbye to the mesh and ends the task once the goodbyes are sent.
    pub async fn leave(&self) -> Result<(), Unavailable> {
        self.ask(Command::Leave).await
    }

    /// Tells every `monitor` subscriber.
    pub fn notify(&self, notice: Notice) {
        let _ = self.notices.send(notice);
    }

    /// A stream of notices from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.notices.subscribe()
    }

    /// The sockets.
    pub fn sockets(&self) -> &Sockets {
        &self.sockets
    }
}

/// Fresh secret randomness.
pub fn os_random<const N: usize>() -> io::Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).map_err(|error| io::Error::other(error.to_string()))?;
    Ok(bytes)
}

/// What the node starts from.
pub struct NodeSetup {
    /// Protocol settings.
    pub config: NodeConfig,
    /// This device's keys.
    pub identity: DeviceKey,
    /// This device's name.
    pub name: String,
    /// The roster as last saved.
    pub roster: SavedRoster,
    /// The database.
    pub durability: Arc<Durability>,
    /// Runs handlers.
    pub dispatcher: Dispatcher,
    /// This start's number, already persisted.
    pub boot: u32,
    /// Where the roster is saved.
    pub data_dir: PathBuf,
    /// LAN discovery: where beacons go and which are answered.
    pub discovery: Discovery,
    /// This device's static anchors, for its address record.
    pub anchors: Vec<cnspr_proto::anchor::Anchor>,
}

/// Starts the node task on `sockets`. It runs until the node leaves or every socket
/// failed.
pub fn spawn(sockets: Sockets, setup: NodeSetup) -> io::Result<DriverHandle> {
    let clock = Clock::start();
    let now = clock.now();
    let NodeSetup {
        config,
        identity,
        name,
        roster,
        boot,
        data_dir,
        durability,
        dispatcher,
        discovery,
        anchors,
    } = setup;
    let durable = Durable {
        identity,
        boot,
        name: Some(name),
        roster: roster.devices,
        records: durability
            .disk()
            .ok_or_else(|| io::Error::other("the database is not open"))?
            .records()
            .map_err(io::Error::other)?,
    };
    let mut node = Node::restore(config, durable, os_random()?, now, unix_now());
    node.set_handler_tree(Box::new(dispatcher.tree()));
    node.set_own_anchors(anchors);
    follow_network(&mut node, now, &sockets, &discovery);
    let (commands, command_receiver) = mpsc::channel(COMMAND_BACKLOG);
    let (datagrams, datagram_receiver) = mpsc::channel(DATAGRAM_BACKLOG);
    for socket in sockets.all() {
        tokio::spawn(receive(socket.clone(), datagrams.clone()));
    }
    let (notices, _) = broadcast::channel(NOTICE_BACKLOG);
    let task = Task {
        node,
        clock,
        shell: Shell {
            sockets: sockets.clone(),
            notices: notices.clone(),
            data_dir,
            joins: Vec::new(),
            echoes: BTreeMap::new(),
            durability: durability.clone(),
            unwritten: Vec::new(),
            dispatcher,
            commands: commands.clone(),
            sends: BTreeMap::new(),
            queries: BTreeMap::new(),
            active_peers: 0,
            unnamed: Vec::new(),
            durable_acks: Vec::new(),
            outgoing: Vec::new(),
        },
        next_echo: 0,
        next_recovery: now,
        discovery,
        networks: local_networks(),
    };
    task.shell.daemon_event(&task.node, "start", None);
    tokio::spawn(task.run(command_receiver, datagram_receiver));
    Ok(DriverHandle {
        commands,
        durability,
        notices,
        sockets,
    })
}

fn kv_entry(key: &str, read: &Read<'_>) -> KvEntry {
    KvEntry {
        key: key.to_owned(),
        value: read.value.map(<[u8]>::to_vec),
        conflict: read.conflict,
        siblings: read
            .register
            .siblings()
            .iter()
            .map(|s| (s.device, s.hlc.micros, s.value.clone()))
            .collect(),
    }
}

/// Tells the node what of this machine's network it uses: where it can be reached (its
/// address record), and where beacons are heard.
fn follow_network(
    node: &mut Node,
    now: cnspr_proto::time::Timestamp,
    sockets: &Sockets,
    discovery: &Discovery,
) {
    node.set_local_addresses(now, &sockets.reachable());
    let discovery = discovery.on_networks(&crate::gateways::read());
    let (networks, links) = beacons::ignored(&network_interfaces(), &beacons::read_ipv6_links(), &discovery);
    node.set_beacons_heard(discovery.heard_anywhere(), networks, links);
}

/// The networks (an address and its prefix length) of this machine's interfaces.
fn local_networks() -> Vec<(std::net::IpAddr, u8)> {
    network_interfaces().iter().map(beacons::network_of).collect()
}

/// A device's path as shown, from the state it is shown in (see
/// [`Node::shown_state`]: `active` only with a working direct session), where it is
/// reached and this machine's `networks`: `lan` when its address is on one of them.
fn shown_path(
    state: MemberState,
    address: Option<SocketAddr>,
    networks: &[(std::net::IpAddr, u8)],
) -> Option<PeerPath> {
    let on_lan = address.is_some_and(|a| {
        networks
            .iter()
            .any(|n| cnspr_proto::ip_network::contains(*n, a.ip()))
    });
    match state {
        MemberState::Active if on_lan => Some(PeerPath::Lan),
        MemberState::Active => Some(PeerPath::Direct),
        MemberState::Indirect => Some(PeerPath::Indirect),
        _ => None,
    }
}

/// This machine's interfaces with their addresses (none if they cannot be read).
fn network_interfaces() -> Vec<if_addrs::Interface> {
    if_addrs::get_if_addrs().unwrap_or_default()
}

/// Reads one socket and hands its datagrams to the node task.
async fn receive(
    socket: std::sync::Arc<tokio::net::UdpSocket>,
    datagrams: mpsc::Sender<(SocketAddr, Vec<u8>)>,
) {
    let mut buffer = vec![0u8; RECEIVE_BUFFER_BYTES];
    loop {
        match socket.recv_from(&mut buffer).await {
            Ok((len, from)) => match datagrams.try_send((from, buffer[..len].to_vec())) {
                Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => {}
                Err(mpsc::error::TrySendError::Closed(_)) => return,
            },
            // ICMP errors from earlier sends surface here on some systems: not fatal.
            Err(error) => tracing::trace!(%error, "receive failed"),
        }
    }
}

/// The task that owns the node: the node, and the [`Shell`] that carries its outputs out.
struct Task {
    node: Node,
    clock: Clock,
    shell: Shell,
    next_echo: u64,
    /// While the database is failed: the earliest time to try to bring it back. Not at
    /// every command: each try reopens the database (replaying its journal), and a try
    /// right after the failure only finds what the failed write just left.
    next_recovery: cnspr_proto::time::Timestamp,
    /// LAN discovery: where beacons go and which are answered.
    discovery: Discovery,
    /// This machine's networks as last read (at start and at every network change): what
    /// `members` calls `lan`, without reading the interfaces at every snapshot.
    networks: Vec<(std::net::IpAddr, u8)>,
}

impl Task {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut datagrams: mpsc::Receiver<(SocketAddr, Vec<u8>)>,
    ) {
        let mut network_check = tokio::time::interval(NETWORK_CHECK_INTERVAL);
        network_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is at once: a beacon as the daemon starts.
        let mut beacon_tick = tokio::time::interval(Duration::from_secs(self.discovery.interval_secs.max(1)));
        beacon_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut network = NetworkState::read();
        let mut watch = NetworkWatch::open();
        // Once the kernel announced a change: when to read the network (it settled).
        let mut read_network_at: Option<tokio::time::Instant> = None;
        loop {
            let deadline = self.flush().await;
            // Every ephemeral key made in this step depends on the OS's fresh bytes, not
            // only on the seed the node started from.
            match os_random::<32>() {
                Ok(fresh) => self.node.reseed(&fresh),
                Err(error) => tracing::warn!(%error, "no fresh randomness from the system this step"),
            }
            // While the database is failed the node stands still: what it would do next
            // may follow writes that are not durable. Peers keep what they would send
            // it (it does not acknowledge) until it works again.
            let paused = self.shell.disk_failed();
            tokio::select! {
                received = datagrams.recv() => {
                    let Some((from, datagram)) = received else { return };
                    if paused {
                        continue;
                    }
                    if let Err(error) = self.node.handle_datagram(self.clock.now(), from, &datagram) {
                        tracing::debug!(%from, %error, "datagram dropped");
                    }
                }
                () = tokio::time::sleep_until(self.clock.instant(deadline)) => {
                    if !paused {
                        self.node.handle_timeout(self.clock.now());
                    }
                }
                () = watch.announced() => {
                    read_network_at.get_or_insert_with(|| tokio::time::Instant::now() + network_watch::SETTLE);
                }
                () = tokio::time::sleep_until(read_network_at.unwrap_or_else(tokio::time::Instant::now)), if read_network_at.is_some() => {
                    read_network_at = None;
                    self.check_network(&mut network, paused, "announced by the kernel");
                }
                _ = beacon_tick.tick() => {
                    if !paused {
                        self.send_beacons();
                    }
                }
                _ = network_check.tick() => {
                    self.node.set_wall_clock(self.clock.now(), unix_now());
                    self.check_network(&mut network, paused, "seen by the periodic check");
                }
                command = commands.recv() => match command {
                    Some(Command::Leave(reply)) => {
                        let (done, stopped) = oneshot::channel();
                        self.shell.daemon_event(&self.node, "stop", Some(done));
                        let _ = tokio::time::timeout(STOP_HANDLERS_WAIT, stopped).await;
                        self.node.leave(self.clock.now());
                        self.flush().await;
                        let _ = reply.send(());
                        return;
                    }
                    // Refused (its reply dropped: the client hears the disk failed).
                    Some(command) if paused && command.needs_disk() => drop(command),
                    Some(command) => self.on_command(command),
                    None => return,
                },
            }
        }
    }

    /// Reads the network and, when it is not `known` (and the node is not paused by a
    /// failed disk), tells the node: it renews its sessions and announces itself. `how`
    /// says in the log what noticed it.
    fn check_network(&mut self, known: &mut NetworkState, paused: bool, how: &str) {
        let now_state = NetworkState::read();
        if now_state != *known && !paused {
            tracing::info!(addresses = ?now_state.addresses, routes = ?now_state.default_routes, "network changed ({how})");
            *known = now_state;
            let now = self.clock.now();
            self.node.handle_network_change(now);
            follow_network(&mut self.node, now, &self.shell.sockets, &self.discovery);
            self.networks = local_networks();
            self.send_beacons();
        }
    }

    /// Broadcasts a beacon on every network this device announces on (none while the
    /// mesh has no secret): a beacon of its own for each, so that nothing links this
    /// device's IPv4 and IPv6 presence or two of its networks. A send that fails (a
    /// network going away, an IPv6 link-local address still being checked) is only logged.
    fn send_beacons(&mut self) {
        let destinations = beacons::destinations(
            &self.shell.sockets.bound(),
            &network_interfaces(),
            &beacons::read_ipv6_links(),
            &self.discovery.on_networks(&crate::gateways::read()),
        );
        tracing::debug!(?destinations, "beacons");
        for (from, destination) in destinations {
            let Some(beacon) = self.node.seal_beacon(self.clock.now()) else {
                return;
            };
            let sent = match self.shell.sockets.bound_to(&from) {
                Some(socket) => socket.try_send_to(&beacon, destination).map(drop),
                None => continue,
            };
            if let Err(error) = sent {
                tracing::debug!(%destination, %error, "beacon not sent");
            }
        }
    }

    fn on_command(&mut self, command: Command) {
        let now = self.clock.now();
        match command {
            Command::Snapshot(reply) => {
                let _ = reply.send(self.snapshot());
            }
            Command::Invite(secret, ttl) => self.node.invite(&secret, now + ttl),
            Command::Join(inviter, address, secret, reply) => {
                self.shell.joins.retain(|(_, waiting)| !waiting.is_closed());
                self.shell.joins.push((inviter, reply));
                self.node.join(now, inviter, address, secret);
            }
            Command::Remove(device, reply) => {
                let _ = reply.send(self.node.remove(now, device));
            }
            Command::Echo(peer, reply) => {
                self.shell.echoes.retain(|_, waiting| !waiting.is_closed());
                self.next_echo += 1;
                match self.node.echo(now, peer, self.next_echo) {
                    Ok(()) => {
                        self.shell.echoes.insert(self.next_echo, reply);
                    }
                    Err(error) => {
                        let _ = reply.send(Err(error));
                    }
                }
            }
            Command::Rename(name) => {
                self.node.set_own_name(now, &name);
            }
            Command::PortMapped(external) => self.node.set_port_mapping(now, external),
            Command::Send {
                to,
                tag,
                payload,
                reply,
                delivered,
            } => {
                let result = self.node.send_message(now, to, tag, payload);
                if let (Ok(seq), Some(delivered)) = (&result, delivered) {
                    self.shell.sends.retain(|_, waiting| !waiting.is_closed());
                    self.shell.sends.insert((to, *seq), delivered);
                }
                // Taken once it is durable: a crash after the answer cannot lose it.
                self.shell.after_durable(move || drop(reply.send(result)));
            }
            Command::Publish(tag, payload, reply) => {
                let result = self.node.publish_event(now, tag, payload);
                self.shell.after_durable(move || drop(reply.send(result)));
            }
            Command::Query {
                targets,
                tag,
                payload,
                answers,
                reply,
            } => {
                let result = self.node.query(now, targets, tag, payload);
                if let Ok((id, _)) = &result {
                    let abandoned: Vec<u64> = self
                        .shell
                        .queries
                        .iter()
                        .filter(|(_, waiting)| waiting.is_closed())
                        .map(|(id, _)| *id)
                        .collect();
                    for id in abandoned {
                        self.shell.queries.remove(&id);
                        self.node.query_done(id);
                    }
                    self.shell.queries.insert(*id, answers);
                }
                let _ = reply.send(result);
            }
            Command::QueryDone(id) => {
                self.shell.queries.remove(&id);
                self.node.query_done(id);
            }
            Command::DeliveryProgress(peer, seq, reply) => {
                let _ = reply.send(self.node.delivery_progress(&peer, seq));
            }
            Command::RunFinished(job, index) => self.node.finish_run(now, job, index),
            Command::AnchorsFound(device, mut addresses) => {
                addresses.retain(|a| self.shell.sockets.for_destination(a).is_some());
                tracing::debug!(peer = %device.short(), ?addresses, "anchors looked up");
                self.node.anchors_found(now, device, &addresses);
            }
            Command::KvWrite(key, value, reply) => {
                let result = self.node.kv_write(now, &key, value);
                self.shell.after_durable(move || drop(reply.send(result)));
            }
            Command::KvRead(key, reply) => {
                let entry = self.node.store().read(&key).map(|read| kv_entry(&key, &read));
                let _ = reply.send(entry);
            }
            Command::KvList(prefix, reply) => {
                let entries = self
                    .node
                    .store()
                    .list(&prefix)
                    .map(|(key, read)| kv_entry(key, &read))
                    .collect();
                let _ = reply.send(entries);
            }
            Command::Answer(to, id, payload) => {
                if let Err(error) = self.node.answer(now, to, id, payload) {
                    tracing::debug!(%error, "query answer not sent");
                }
            }
            Command::Leave(_) => {}
        }
    }

    /// Carries out everything the node has to do (durable writes, then datagrams and
    /// events), then answers the requests whose writes are durable; returns the node's
    /// next timer. With the database failed, tries to bring it back first, and returns
    /// when to try again if that did not work.
    async fn flush(&mut self) -> cnspr_proto::time::Timestamp {
        let now = self.clock.now();
        if self.shell.disk_failed() {
            if now < self.next_recovery {
                return self.next_recovery;
            }
            if !self.shell.recover_disk() {
                self.next_recovery = now + DISK_RETRY_INTERVAL;
                return self.next_recovery;
            }
        }
        let driven = self.node.drive(&mut self.shell);
        self.shell.send_outgoing().await;
        match driven {
            Ok(deadline) => {
                for acknowledge in self.shell.durable_acks.drain(..) {
                    acknowledge();
                }
                deadline
            }
            Err(_) => {
                self.next_recovery = now + DISK_RETRY_INTERVAL;
                self.next_recovery
            }
        }
    }

    fn snapshot(&self) -> Snapshot {
        let now = self.clock.now();
        let roster = self.node.roster();
        let own_id = self.node.own_id();
        let networks = &self.networks;
        let members = self
            .node
            .members()
            .map(|member| {
                let state = self
                    .node
                    .shown_state(&member.id)
                    .unwrap_or(MemberState::Unreachable);
                (member, state, shown_path(state, member.address, networks))
            })
            .map(|(member, state, path)| MemberView {
                id: member.id,
                name: roster.shown_name(&member.id),
                state,
                path,
                // The relay its session goes through, else the device whose probe
                // last reached it.
                via: self
                    .node
                    .relayed_through(&member.id)
                    .or(member.via)
                    .filter(|_| path == Some(PeerPath::Indirect)),
                relay: self
                    .node
                    .relayed_through(&member.id)
                    .filter(|_| path == Some(PeerPath::Indirect)),
                address: member.address,
                rtt: member.rtt.typical(),
                last_seen: member.last_heard.map(|at| now.saturating_since(at)),
                other_version: self.node.other_version(&member.id),
            })
            .collect();
        let removed = roster
            .entries()
            .filter(|(_, e)| e.removed)
            .map(|(id, _)| *id)
            .collect();
        Snapshot {
            own_id,
            own_name: roster.shown_name(&own_id).unwrap_or_default(),
            members,
            removed,
            stats: self.node.stats(),
            runs: self.node.queued_runs(),
            store_keys: self.node.store().key_count(),
            catching_up: self
                .node
                .catching_up(now)
                .into_iter()
                .map(|progress| (progress, roster.shown_name(&progress.from)))
                .collect(),
            nat: self.node.nat(now),
            keepalive: {
                let (interval, kept) = self.node.keepalive();
                (interval, kept.len())
            },
            relayed_pairs: self.node.relayed_pairs(now),
            health_multiplier: self.node.health_multiplier(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_shown_follows_the_state_and_the_address() {
        let lan = [("192.0.2.5".parse().expect("ip"), 24)];
        let near = Some("192.0.2.9:3030".parse().expect("address"));
        let far = Some("203.0.113.9:3030".parse().expect("address"));
        let path = |state, address| shown_path(state, address, &lan);
        assert_eq!(path(MemberState::Active, near), Some(PeerPath::Lan));
        assert_eq!(path(MemberState::Active, far), Some(PeerPath::Direct));
        assert_eq!(path(MemberState::Indirect, near), Some(PeerPath::Indirect));
        assert_eq!(path(MemberState::Unreachable, near), None);
        assert_eq!(path(MemberState::Suspect, near), None);
    }
}
