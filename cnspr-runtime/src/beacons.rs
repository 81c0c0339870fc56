//! Where this device's LAN beacons go (the core seals them: `Node::seal_beacon`): the
//! broadcast address of every IPv4 network and the all-nodes group of every IPv6 link
//! this device announces on, at the port of the socket that listens there. IPv6 links
//! are those with a link-local address in `/proc/net/if_inet6` (`getifaddrs` as the
//! `if-addrs` crate reads it leaves link-local addresses out).
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

/// The socket bound to `ip`'s interface (its bound address): to `ip` itself, else to a
/// wildcard of its family.
fn serving(bound: &[SocketAddr], ip: IpAddr) -> Option<SocketAddr> {
    let own = bound.iter().find(|socket| socket.ip() == ip);
    let wildcard = bound
        .iter()
        .find(|socket| socket.is_ipv4() == ip.is_ipv4() && socket.ip().is_unspecified());
    own.or(wildcard).copied()
}

/// The broadcast address of `ip`'s network of `prefix` bits (none for /31 and /32, which
/// have none).
fn network_broadcast(ip: Ipv4Addr, prefix: u8) -> Option<Ipv4Addr> {
    let host_bits = 32u32.checked_sub(u32::from(prefix)).filter(|bits| *bits >= 2)?;
    let host_mask = u32::MAX.checked_shr(32 - host_bits).unwrap_or(0);
    Some(Ipv4Addr::from(u32::from(ip) | host_mask))
}

/// A link with IPv6: its interface's name and index (it has a link-local address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv6Link {
    /// The interface's name.
    pub name: String,
    /// Its index: the scope of its link-local addresses.
    pub index: u32,
}

/// The IPv6 links of `/proc/net/if_inet6` (`address index prefix scope flags name`, hex;
/// scope 0x20 is link-local), loopback left out.
pub fn ipv6_links(if_inet6: &str) -> Vec<Ipv6Link> {
    let mut links: Vec<Ipv6Link> = Vec::new();
    for line in if_inet6.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, index, _, "20", _, name] = fields[..] else {
            continue;
        };
        let Ok(index) = u32::from_str_radix(index, 16) else {
            continue;
        };
        if name != "lo" && !links.iter().any(|link| link.index == index) {
            links.push(Ipv6Link {
                name: name.to_owned(),
                index,
            });
        }
    }
    links
}

/// This machine's IPv6 links (none without IPv6).
pub fn read_ipv6_links() -> Vec<Ipv6Link> {
    std::fs::read_to_string("/proc/net/if_inet6")
        .map(|table| ipv6_links(&table))
        .unwrap_or_default()
}

/// Every address a beacon goes to, each with the socket (its bound address) it leaves
/// from and whose port it goes to, for sockets `bound`, this machine's `interfaces` and
/// its IPv6 `links`.
pub fn destinations(
    bound: &[SocketAddr],
    interfaces: &[Interface],
    links: &[Ipv6Link],
    discovery: &Discovery,
) -> Vec<(SocketAddr, SocketAddr)> {
    let mut destinations = Vec::new();
    for interface in interfaces {
        if interface.is_loopback() || discovery.mode_on(&interface.name) != DiscoveryMode::Announce {
            continue;
        }
        let IfAddr::V4(v4) = &interface.addr else {
            continue;
        };
        let Some(socket) = serving(bound, IpAddr::V4(v4.ip)) else {
            continue;
        };
        // An address added without `brd` has no broadcast address set (the system then
        // gives none, or the address itself): the network's own is the same thing.
        let broadcast = v4
            .broadcast
            .filter(|broadcast| *broadcast != v4.ip && !broadcast.is_unspecified())
            .or_else(|| network_broadcast(v4.ip, v4.prefixlen));
        if let Some(destination) = broadcast.map(|b| (socket, SocketAddr::from((b, socket.port())))) {
            if !destinations.contains(&destination) {
                destinations.push(destination);
            }
        }
    }
    // A link-local address cannot be bound without its scope: only a wildcard serves it.
    let wildcard = bound
        .iter()
        .find(|socket| socket.is_ipv6() && socket.ip().is_unspecified());
    if let Some(socket) = wildcard {
        for link in links {
            if discovery.mode_on(&link.name) == DiscoveryMode::Announce {
                let group = SocketAddrV6::new(ALL_NODES, socket.port(), 0, link.index);
                destinations.push((*socket, SocketAddr::V6(group)));
            }
        }
    }
    destinations
}

/// The network of an interface address: the address and its prefix length.
pub fn network_of(interface: &Interface) -> (IpAddr, u8) {
    match &interface.addr {
        IfAddr::V4(v4) => (IpAddr::V4(v4.ip), v4.prefixlen),
        IfAddr::V6(v6) => (IpAddr::V6(v6.ip), v6.prefixlen),
    }
}

/// What of the interfaces set `off` beacons are not answered from: their networks
/// (address, prefix length), and their IPv6 links (by index: a link-local source carries
/// it as its scope).
pub fn ignored(
    interfaces: &[Interface],
    links: &[Ipv6Link],
    discovery: &Discovery,
) -> (Vec<(IpAddr, u8)>, Vec<u32>) {
    let off = |name: &str| discovery.mode_on(name) == DiscoveryMode::Off;
    let networks = interfaces
        .iter()
        .filter(|interface| off(&interface.name))
        .map(network_of)
        .collect();
    let scopes = links
        .iter()
        .filter(|link| off(&link.name))
        .map(|link| link.index)
        .collect();
    (networks, scopes)
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
            v6("eth0", "2001:db8::5".parse().expect("ip"), 2),
        ]
    }

    /// `/proc/net/if_inet6` of the same machine: eth0's link-local and global addresses,
    /// loopback's.
    const IF_INET6: &str = "fe800000000000000000000000000005 02 40 20 80     eth0\n\
                            20010db8000000000000000000000005 02 40 00 00     eth0\n\
                            00000000000000000000000000000001 01 80 10 80       lo\n";

    fn links() -> Vec<Ipv6Link> {
        ipv6_links(IF_INET6)
    }

    fn at(text: &str) -> SocketAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn beacons_go_to_every_network_a_wildcard_socket_serves_and_never_to_loopback() {
        let wildcard = [at("0.0.0.0:3030"), at("[::]:3030")];
        assert_eq!(
            links(),
            vec![Ipv6Link {
                name: "eth0".into(),
                index: 2
            }]
        );
        let all = destinations(&wildcard, &machine(), &links(), &Discovery::default());
        assert_eq!(
            all,
            vec![
                (wildcard[0], at("192.0.2.255:3030")),
                (wildcard[0], at("198.51.100.255:3030")),
                (wildcard[1], at("[ff02::1%2]:3030"))
            ]
        );
        // Bound to one address: that network only. Bound to loopback: nothing at all.
        assert_eq!(
            destinations(
                &[at("198.51.100.5:4000")],
                &machine(),
                &links(),
                &Discovery::default()
            ),
            vec![(at("198.51.100.5:4000"), at("198.51.100.255:4000"))]
        );
        assert_eq!(
            destinations(
                &[at("127.0.0.1:0"), at("[::1]:0")],
                &machine(),
                &links(),
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
            destinations(&wildcard, &bare, &[], &Discovery::default()),
            vec![(wildcard[0], at("198.51.100.255:3030"))]
        );
        let itself = [v4("eth0", [198, 51, 100, 1], Some([198, 51, 100, 1]))];
        assert_eq!(
            destinations(&wildcard, &itself, &[], &Discovery::default()),
            vec![(wildcard[0], at("198.51.100.255:3030"))]
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
        assert_eq!(destinations(&wildcard, &machine(), &links(), &discovery), vec![]);
        let (networks, scopes) = ignored(&machine(), &links(), &discovery);
        assert_eq!(networks.len(), 2, "{networks:?}");
        assert!(networks.contains(&("192.0.2.5".parse().expect("ip"), 24)));
        assert_eq!(scopes, vec![2]);
        let quiet = Discovery {
            mode: DiscoveryMode::Listen,
            ..Discovery::default()
        };
        assert_eq!(destinations(&wildcard, &machine(), &links(), &quiet), vec![]);
    }
}
