//! `netcheck`: what this device sees of its network (its addresses, IPv6, what its NAT
//! does as its peers see it, what it relays) and, for each peer, how it is reached and
//! why, in a sentence.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use cnspr_proto::identity::DeviceId;
use cnspr_proto::membership::MemberState;
use cnspr_proto::node::NatMapping;

use super::methods::{nat, relay, snapshot};
use super::Context;
use crate::api::netcheck::{NetcheckPeer, NetcheckResult};
use crate::api::{PeerPath, RpcError};
use crate::driver::MemberView;

pub(super) async fn netcheck(context: &Context) -> Result<NetcheckResult, RpcError> {
    let snapshot = snapshot(context).await?;
    let addresses = context.driver.sockets().reachable();
    let names: BTreeMap<DeviceId, Option<String>> =
        snapshot.members.iter().map(|m| (m.id, m.name.clone())).collect();
    let name_of = |id: &DeviceId| names.get(id).cloned().flatten();
    let mapping = snapshot.nat.mapping;
    let peers = snapshot
        .members
        .iter()
        .map(|member| NetcheckPeer {
            id: member.id,
            name: member.name.clone(),
            state: member.state.into(),
            path: member.path,
            relay: member.relay,
            relay_name: member.relay.and_then(|relay| name_of(&relay)),
            why: why(member, mapping, member.relay.and_then(|relay| name_of(&relay))),
        })
        .collect();
    Ok(NetcheckResult {
        ipv6: addresses.iter().any(is_global_ipv6),
        addresses,
        gateways: crate::gateways::read(),
        nat: nat(&snapshot),
        relay: relay(&snapshot),
        port_mapping: context.port_mapping.get(),
        peers,
    })
}

/// Whether `address` is a global unicast IPv6 address (2000::/3): one a peer elsewhere can
/// reach without a NAT.
fn is_global_ipv6(address: &SocketAddr) -> bool {
    address.is_ipv6() && cnspr_proto::ip_network::is_public(address.ip())
}

/// Why `member` is reached the way it is, given this device's NAT.
fn why(member: &MemberView, mapping: NatMapping, relay_name: Option<String>) -> String {
    if let Some(version) = member.other_version {
        return format!("it speaks protocol version {version}: one of the two must be upgraded");
    }
    match (member.state, member.path) {
        (MemberState::Active, Some(PeerPath::Lan)) => "direct, on a network of this device".into(),
        (MemberState::Active, _) if matches!(mapping, NatMapping::None | NatMapping::Unknown) => {
            "direct".into()
        }
        (MemberState::Active, _) => "direct, through this device's NAT".into(),
        (MemberState::Indirect, _) if member.relay.is_some() => {
            let relay = relay_name.unwrap_or_else(|| "another device".into());
            let nat = match mapping {
                NatMapping::EndpointDependent => {
                    ": this device's NAT maps each destination apart, so only a relay reaches across"
                }
                _ => ": no direct path answered; one is tried again every minute",
            };
            format!("relayed by {relay}{nat}")
        }
        (MemberState::Indirect, _) => {
            "alive as far as other devices know; no session with it now (one is made when needed)".into()
        }
        (MemberState::Suspect, _) => "it missed probes and is being checked".into(),
        (MemberState::Unreachable, _) if mapping == NatMapping::EndpointDependent => {
            "not reached, directly or through any device: this device's NAT maps each destination \
             apart, and no relay reaches both (or it is off)"
                .into()
        }
        (MemberState::Unreachable, _) => {
            "not reached, directly or through any device: its addresses do not answer, and no relay \
             reaches both (or it is off)"
                .into()
        }
        (MemberState::Left, _) => "it said goodbye (stopped or suspended)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_global_ipv6_counts() {
        let global: SocketAddr = "[2001:db8::1]:3030".parse().expect("address");
        assert!(is_global_ipv6(&global));
        for other in ["[fe80::1]:3030", "[fd00::1]:3030", "[::1]:3030", "192.0.2.1:3030"] {
            assert!(!is_global_ipv6(&other.parse().expect("address")), "{other}");
        }
    }
}
