//! Where this device's LAN beacons go (the core seals them: `Node::seal_beacon`): the
//! broadcast address of every IPv4 network and the all-nodes group of every IPv6 link
//! this device announces on, at the port of the socket that listens there.
//!
//! A beacon leaves only through an interface a socket is bound to (a wildcard, or that
//! interface's own address), never through loopback: a daemon listening on 127.0.0.1
//! sends none, whatever its configuration.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};

use if_addrs::{IfAddr, Interface};

use crate::config::{Discovery, DiscoveryMode};

/// IPv6's link-local all-nodes group: every device on the link hears it, with no group
/// to join.
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// The port of the socket bound to `ip`'s interface: to a wildcard of its family or to
/// `ip` itself.
fn listening_port(bound: &[SocketAddr], ip: IpAddr) -> Option<u16> {
    bound
        .iter()
        .find(|socket| {
            socket.is_ipv4() == ip.is_ipv4() && (socket.ip().is_unspecified() || socket.ip() == ip)
        })
        .map(SocketAddr::port)
}

/// The broadcast address of `ip`'s network of `prefix` bits (none for /31 and /32, which
/// have none).
fn network_broadcast(ip: Ipv4Addr, prefix: u8) -> Option<Ipv4Addr> {
    let host_bits = 32u32.checked_sub(u32::from(prefix)).filter(|bits| *bits >= 2)?;
    let host_mask = u32::MAX.checked_shr(32 - host_bits).unwrap_or(0);
    Some(Ipv4Addr::from(u32::from(ip) | host_mask))
}

/// Every address a beacon goes to, for sockets `bound` and this machine's `interfaces`.
pub fn destinations(
    bound: &[SocketAddr],
    interfaces: &[Interface],
    discovery: &Discovery,
) -> Vec<SocketAddr> {
    let mut destinations = Vec::new();
    for interface in interfaces {
        if interface.is_loopback() || discovery.mode_on(&interface.name) != DiscoveryMode::Announce {
            continue;
        }
        let Some(port) = listening_port(bound, interface.ip()) else {
            continue;
        };
        let destination = match &interface.addr {
            // An address added without `brd` has no broadcast address set (the system then
            // gives none, or the address itself): the network's own is the same thing.
            IfAddr::V4(v4) => v4
                .broadcast
                .filter(|broadcast| *broadcast != v4.ip && !broadcast.is_unspecified())
                .or_else(|| network_broadcast(v4.ip, v4.prefixlen))
                .map(|broadcast| SocketAddr::from((broadcast, port))),
            // One per link: its link-local address stands for it.
            IfAddr::V6(v6) if v6.ip.is_unicast_link_local() => interface
                .index
                .map(|index| SocketAddr::V6(SocketAddrV6::new(ALL_NODES, port, 0, index))),
            IfAddr::V6(_) => None,
        };
        if let Some(destination) = destination.filter(|d| !destinations.contains(d)) {
            destinations.push(destination);
        }
    }
    destinations
}

/// The networks (address, prefix length) of the interfaces set `off`: beacons from them
/// are not answered.
pub fn ignored_networks(interfaces: &[Interface], discovery: &Discovery) -> Vec<(IpAddr, u8)> {
    interfaces
        .iter()
        .filter(|interface| discovery.mode_on(&interface.name) == DiscoveryMode::Off)
        .map(|interface| match &interface.addr {
            IfAddr::V4(v4) => (IpAddr::V4(v4.ip), v4.prefixlen),
            IfAddr::V6(v6) => (IpAddr::V6(v6.ip), v6.prefixlen),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use if_addrs::{Ifv4Addr, Ifv6Addr};

    fn v4(name: &str, ip: [u8; 4], broadcast: Option<[u8; 4]>) -> Interface {
        Interface {
            name: name.into(),
            addr: IfAddr::V4(Ifv4Addr {
                ip: ip.into(),
                netmask: [255, 255, 255, 0].into(),
                prefixlen: 24,
                broadcast: broadcast.map(Into::into),
            }),
            index: Some(2),
        }
    }

    fn v6(name: &str, ip: Ipv6Addr, index: u32) -> Interface {
        Interface {
            name: name.into(),
            addr: IfAddr::V6(Ifv6Addr {
                ip,
                netmask: Ipv6Addr::new(0xffff, 0xffff, 0xffff, 0xffff, 0, 0, 0, 0),
                prefixlen: 64,
                broadcast: None,
            }),
            index: Some(index),
        }
    }

    fn machine() -> Vec<Interface> {
        vec![
            v4("lo", [127, 0, 0, 1], None),
            v4("eth0", [192, 0, 2, 5], Some([192, 0, 2, 255])),
            v4("wlan0", [198, 51, 100, 5], Some([198, 51, 100, 255])),
            v6("eth0", "fe80::5".parse().expect("ip"), 2),
            v6("eth0", "2001:db8::5".parse().expect("ip"), 2),
        ]
    }

    fn at(text: &str) -> SocketAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn beacons_go_to_every_network_a_wildcard_socket_serves_and_never_to_loopback() {
        let wildcard = [at("0.0.0.0:3030"), at("[::]:3030")];
        let all = destinations(&wildcard, &machine(), &Discovery::default());
        assert_eq!(
            all,
            vec![
                at("192.0.2.255:3030"),
                at("198.51.100.255:3030"),
                at("[ff02::1%2]:3030")
            ]
        );
        // Bound to one address: that network only. Bound to loopback: nothing at all.
        assert_eq!(
            destinations(&[at("198.51.100.5:4000")], &machine(), &Discovery::default()),
            vec![at("198.51.100.255:4000")]
        );
        assert_eq!(
            destinations(
                &[at("127.0.0.1:0"), at("[::1]:0")],
                &machine(),
                &Discovery::default()
            ),
            vec![]
        );
    }

    #[test]
    fn an_address_without_a_broadcast_address_gets_its_networks() {
        let wildcard = [at("0.0.0.0:3030")];
        let bare = [v4("eth0", [198, 51, 100, 1], None)];
        assert_eq!(
            destinations(&wildcard, &bare, &Discovery::default()),
            vec![at("198.51.100.255:3030")]
        );
        let itself = [v4("eth0", [198, 51, 100, 1], Some([198, 51, 100, 1]))];
        assert_eq!(
            destinations(&wildcard, &itself, &Discovery::default()),
            vec![at("198.51.100.255:3030")]
        );
        assert_eq!(
            network_broadcast([10, 1, 2, 3].into(), 8),
            Some([10, 255, 255, 255].into())
        );
        assert_eq!(network_broadcast([192, 0, 2, 1].into(), 31), None);
        assert_eq!(
            network_broadcast([192, 0, 2, 1].into(), 0),
            Some([255, 255, 255, 255].into())
        );
    }

    #[test]
    fn an_interface_set_listen_or_off_gets_no_beacon_and_off_ignores_them() {
        let mut discovery = Discovery::default();
        discovery.interfaces.insert("wlan0".into(), DiscoveryMode::Listen);
        discovery.interfaces.insert("eth0".into(), DiscoveryMode::Off);
        let wildcard = [at("0.0.0.0:3030"), at("[::]:3030")];
        assert_eq!(destinations(&wildcard, &machine(), &discovery), vec![]);
        let ignored = ignored_networks(&machine(), &discovery);
        assert_eq!(ignored.len(), 3, "{ignored:?}");
        assert!(ignored.contains(&("192.0.2.5".parse().expect("ip"), 24)));
        let quiet = Discovery {
            mode: DiscoveryMode::Listen,
            ..Discovery::default()
        };
        assert_eq!(destinations(&wildcard, &machine(), &quiet), vec![]);
    }
}
