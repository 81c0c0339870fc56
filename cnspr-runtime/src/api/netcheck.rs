//! `netcheck`: what this device sees of its network and why each peer is reached the way
//! it is (Tailscale's `netcheck` is the model).

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};

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
    /// The home router's port mapping (PCP or NAT-PMP), as last asked.
    pub port_mapping: PortMappingView,
    /// Every other device of the roster: how it is reached, and why.
    pub peers: Vec<NetcheckPeer>,
}

/// Where this device's port mapping on its router stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PortMappingState {
    /// `port_mapping = false` in `config.toml`.
    Off,
    /// Asked, no answer yet.
    Trying,
    /// The router maps a public address and port to this device.
    Mapped,
    /// No mapping: no default gateway, or it answered neither PCP nor NAT-PMP, or refused
    /// (`detail` says which); asked again every minute.
    Unavailable,
}

/// The port mapping on this device's router (`docs/reachability.md`, "Port mapping").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PortMappingView {
    /// Where it stands.
    pub state: PortMappingState,
    /// The default gateway asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Ipv4Addr>,
    /// `pcp` or `nat-pmp`, once mapped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// The public address and port the router maps to this device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<SocketAddr>,
    /// Seconds the router granted (renewed at half).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifetime_secs: Option<u32>,
    /// Why there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl PortMappingView {
    /// Only a state.
    pub fn new(state: PortMappingState) -> Self {
        Self {
            state,
            gateway: None,
            protocol: None,
            external: None,
            lifetime_secs: None,
            detail: None,
        }
    }

    /// Mapped at `external` by `gateway`.
    pub fn mapped(
        gateway: Option<Ipv4Addr>,
        protocol: &str,
        external: SocketAddr,
        lifetime_secs: u32,
    ) -> Self {
        Self {
            gateway,
            protocol: Some(protocol.to_owned()),
            external: Some(external),
            lifetime_secs: Some(lifetime_secs),
            ..Self::new(PortMappingState::Mapped)
        }
    }

    /// None, and why.
    pub fn unavailable(gateway: Option<Ipv4Addr>, why: String) -> Self {
        Self {
            gateway,
            detail: Some(why),
            ..Self::new(PortMappingState::Unavailable)
        }
    }
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
