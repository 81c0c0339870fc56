//! `netcheck`: what this device sees of its network and why each peer is reached the way
//! it is (Tailscale's `netcheck` is the model).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use cnspr_proto::identity::DeviceId;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::members::{Nat, RelayStatus};
use super::peer::{DeviceIdText, PeerPath, PeerState};

/// `netcheck`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NetcheckResult {
    /// Where peers can reach this device (its own addresses, loopback last).
    pub addresses: Vec<SocketAddr>,
    /// Each interface's default gateway's hardware address, when the kernel knows it.
    pub gateways: BTreeMap<String, String>,
    /// Whether this device has a global IPv6 address peers can reach.
    pub ipv6: bool,
    /// What lies between this device and its peers, from where they see it.
    pub nat: Nat,
    /// What this device carries for others.
    pub relay: RelayStatus,
    /// Every other device of the roster: how it is reached, and why.
    pub peers: Vec<NetcheckPeer>,
}

/// One peer in `netcheck`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NetcheckPeer {
    /// Its device ID.
    #[schemars(with = "DeviceIdText")]
    pub id: DeviceId,
    /// Its name, once known.
    pub name: Option<String>,
    /// Its state, as `members` shows it.
    pub state: PeerState,
    /// How it is reached, as `members` shows it.
    pub path: Option<PeerPath>,
    /// The device that relays its session, while one does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<DeviceIdText>")]
    pub relay: Option<DeviceId>,
    /// The relay's name, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_name: Option<String>,
    /// Why, in a sentence.
    pub why: String,
}
