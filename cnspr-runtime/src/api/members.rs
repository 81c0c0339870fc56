//! This device and the devices of its mesh: `id`, `status`, `members`, `ping`, `remove`,
//! `interfaces`, `stop`.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use cnspr_proto::identity::DeviceId;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::peer::{DeviceIdText, PeerPath, PeerState};

/// A device's ID and name (`id`'s answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Identity {
    /// Its device ID.
    #[schemars(with = "DeviceIdText")]
    pub id: DeviceId,
    /// Its name.
    pub name: String,
}

/// `status`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StatusResult {
    /// This start's number (starts counted since `init`).
    pub boot: u32,
    /// Datagram counters since the start.
    pub datagrams: Datagrams,
    /// Devices on the roster, this one included.
    pub devices: usize,
    /// This device's ID.
    #[schemars(with = "DeviceIdText")]
    pub id: DeviceId,
    /// Its name.
    pub name: String,
    /// Peers by state (states with none are left out).
    pub peers: BTreeMap<PeerState, usize>,
    /// Devices removed from the mesh.
    pub removed: usize,
    /// Handler runs of messages and events: owed and not started, and running.
    pub handler_runs: HandlerRuns,
    /// Seconds since the start.
    pub uptime_secs: u64,
    /// The daemon's version.
    pub version: String,
    /// The protocol version it speaks (every device of a mesh must speak the same).
    pub protocol_version: u8,
    /// Whether the database takes writes.
    pub disk: DiskState,
    /// The replicated store's size here.
    pub store: StoreSize,
    /// Catch-ups under way: answers from peers, to what this device missed while apart,
    /// that had a part within the last 30 s and still lack some.
    pub catching_up: Vec<CatchUp>,
    /// What lies between this device and its peers, from where they see it (told in
    /// every handshake): `docs/reachability.md`, "Reflexive addresses".
    pub nat: Nat,
    /// What this device carries for others (`docs/reachability.md`, "Relaying").
    pub relay: RelayStatus,
    /// The failure detector's local health (Lifeguard): 1 while its probes are answered
    /// as expected; a probe missed with nobody to say it was not this device's fault, a
    /// suspicion of itself it had to refute, or a wake from sleep adds one (up to 9); its
    /// probe interval and timeouts are stretched that many times (it accuses more slowly)
    /// until answered probes bring it back down.
    pub health_multiplier: u32,
}

/// What a device relays for others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RelayStatus {
    /// Pairs of devices it carries datagrams between now.
    pub pairs: usize,
    /// Bytes carried since the start.
    pub bytes: u64,
    /// Datagrams it was asked to carry and refused (turned off, over its bounds).
    pub refused: u64,
    /// Datagrams of its own relayed sessions it could not hand to their relay.
    pub unsent: u64,
}

/// This device's NAT, as its peers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Nat {
    /// What its mapping does.
    pub mapping: NatMapping,
    /// Addresses peers see this device at that are not its own (the NAT's mappings).
    pub translated: Vec<std::net::SocketAddr>,
    /// Seconds between keepalives on sessions through the NAT (the configured interval,
    /// or less once the NAT showed it forgets a path sooner).
    pub keepalive_secs: u64,
    /// Peers whose sessions through the NAT are kept alive now (wanted ones only).
    pub kept_alive: usize,
}

/// What a NAT's mapping does (RFC 4787).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NatMapping {
    /// No peer has said yet where it sees this device.
    Unknown,
    /// Every peer sees one of this device's own addresses.
    None,
    /// A NAT whose kind the views do not show yet (no two peers see the same address).
    Translated,
    /// Peers see the same address and port: one mapping for every destination.
    EndpointIndependent,
    /// Peers see the same address with different ports: a mapping per destination.
    EndpointDependent,
}

impl From<cnspr_proto::node::NatMapping> for NatMapping {
    fn from(mapping: cnspr_proto::node::NatMapping) -> Self {
        use cnspr_proto::node::NatMapping as Core;
        match mapping {
            Core::Unknown => Self::Unknown,
            Core::None => Self::None,
            Core::Translated => Self::Translated,
            Core::EndpointIndependent => Self::EndpointIndependent,
            Core::EndpointDependent => Self::EndpointDependent,
        }
    }
}

/// A catch-up under way: how far one peer's answer to what this device missed has come.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CatchUp {
    /// The device answering.
    #[schemars(with = "DeviceIdText")]
    pub peer: DeviceId,
    /// Its name, if known.
    pub name: Option<String>,
    /// The answer's parts arrived so far.
    pub parts_received: u32,
    /// How many parts the answer has (each about 512 KiB).
    pub parts: u32,
    /// The changes the arrived parts carried.
    pub changes: u64,
}

/// The replicated store's size on this device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StoreSize {
    /// Keys held (the roster's and deleted keys whose deletes are not yet collected
    /// included).
    pub keys: usize,
    /// Bytes the database's files take on disk (the store, the change log for
    /// `kv watch`, and the durable records of messages and handler runs).
    pub bytes_on_disk: u64,
}

/// Whether the database takes writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DiskState {
    /// `ok`, or `failed`: nothing that needs the disk is done or acknowledged until it
    /// works again (reads go on; it is tried again every second).
    pub state: DiskHealth,
    /// What failed, when failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Since when (Unix seconds), when failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_unix_secs: Option<u64>,
}

/// The database's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DiskHealth {
    /// It takes writes.
    Ok,
    /// It failed and takes none.
    Failed,
}

/// Handler runs of messages and events (durable: they survive a crash).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HandlerRuns {
    /// Owed and waiting for their turn.
    pub queued: usize,
    /// Running now.
    pub running: usize,
    /// Messages and events from peers refused since the start because the queue was full
    /// (`limits.handler_queue_per_origin`, `limits.handler_queue_max`); each stays with its
    /// sender and is offered again, so a refusal loses nothing. Each offer counts.
    pub refused: u64,
    /// Runs found interrupted at this start: they were running when the daemon stopped,
    /// and are not run again (each is in the log).
    pub interrupted: u64,
}

/// Datagram counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Datagrams {
    /// LAN beacons of devices of the mesh answered with a handshake (fresh, from an
    /// address no session worked at): `docs/reachability.md`.
    pub beacons_answered: u64,
    /// Bytes sent.
    pub bytes_sent: u64,
    /// Datagrams received.
    pub received: u64,
    /// Received ones dropped (malformed, unauthenticated, replayed or unknown).
    pub rejected: u64,
    /// Datagrams sent.
    pub sent: u64,
}

/// `members`' answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct MembersResult {
    /// This device first, then every other device of the roster.
    pub members: Vec<Member>,
}

/// One device as `members` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Member {
    /// Where it was last reached (`null` before it ever was).
    pub address: Option<SocketAddr>,
    /// Its device ID.
    #[schemars(with = "DeviceIdText")]
    pub id: DeviceId,
    /// Seconds since an authenticated packet came from it (`null`: never).
    pub last_seen_secs: Option<u64>,
    /// Its name (`null` until it has told the mesh).
    pub name: Option<String>,
    /// How it is reached: `lan` or `direct` (a direct session), `indirect` (known alive
    /// through others only); `null` when it is not reachable (or is this device).
    pub path: Option<PeerPath>,
    /// With path `indirect`: the device whose probe last reached it for this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<DeviceIdText>")]
    pub via: Option<DeviceId>,
    /// Its name, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via_name: Option<String>,
    /// The smoothed probe round trip in milliseconds (`null` until measured).
    pub rtt_ms: Option<f64>,
    /// Whether it is this device.
    #[serde(rename = "self")]
    pub is_self: bool,
    /// The first 7 characters of its ID.
    pub short_id: String,
    /// Its state.
    pub state: PeerState,
    /// The protocol version its datagrams carry when it is not this device's (it must be
    /// upgraded, or this one): `null` when they speak the same.
    pub protocol_version: Option<u8>,
}

/// `ping`'s parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PingParams {
    /// A device name, device ID or unique prefix of one.
    pub peer: String,
    /// How long to wait for the answer (default 2000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// `ping`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PingResult {
    /// The device that answered.
    #[schemars(with = "DeviceIdText")]
    pub peer: DeviceId,
    /// The round trip in milliseconds.
    pub rtt_ms: f64,
}

/// `remove`'s parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveParams {
    /// A device name, device ID or unique prefix of one.
    pub peer: String,
}

/// `remove`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RemoveResult {
    /// Its name, if it had one.
    pub name: Option<String>,
    /// The device removed.
    #[schemars(with = "DeviceIdText")]
    pub removed: DeviceId,
}

/// `interfaces`' answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InterfacesResult {
    /// Where peers can reach this device (wildcards expanded, loopback last).
    pub addresses: Vec<SocketAddr>,
    /// The addresses the UDP sockets are bound to, wildcards as bound.
    pub listening: Vec<SocketAddr>,
    /// Each interface's default gateway's hardware address (as `discovery.networks`
    /// takes it), when the kernel knows it.
    pub gateways: std::collections::BTreeMap<String, String>,
}

/// `stop`'s answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StopResult {
    /// Always `true`.
    pub stopping: bool,
}
