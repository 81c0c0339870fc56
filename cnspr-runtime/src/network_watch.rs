//! Network changes as they happen: the kernel's route netlink announces every address,
//! link and route change to a subscribed socket, so a new address or a lost link is seen
//! at once rather than at the next poll. What changed is then read off the system as a
//! whole ([`NetworkState`]), never pieced together from the announcements: an
//! announcement the kernel dropped (its buffer full) costs nothing, and one that changes
//! nothing the daemon cares about (an IPv6 route's lifetime renewed) renews no session.

use std::io;
use std::net::IpAddr;
use std::time::Duration;

use netlink_sys::protocols::NETLINK_ROUTE;
use netlink_sys::{AsyncSocket, AsyncSocketExt, SocketAddr, TokioSocket};

/// The route netlink groups listened to (`linux/rtnetlink.h`, stable kernel ABI): links
/// up or down, IPv4 and IPv6 addresses, IPv4 and IPv6 routes.
const GROUPS: u32 =
    RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_IFADDR | RTMGRP_IPV6_ROUTE;
const RTMGRP_LINK: u32 = 0x1;
const RTMGRP_IPV4_IFADDR: u32 = 0x10;
const RTMGRP_IPV4_ROUTE: u32 = 0x40;
const RTMGRP_IPV6_IFADDR: u32 = 0x100;
const RTMGRP_IPV6_ROUTE: u32 = 0x400;

/// How long announcements may keep coming before the state is read: a renumbering is a
/// burst (the old address and its routes go, the new ones come), read once it settled.
pub const SETTLE: Duration = Duration::from_millis(30);

/// A subscription to the kernel's network announcements (none where netlink cannot be
/// opened: then only the periodic check sees changes).
pub struct NetworkWatch {
    socket: Option<TokioSocket>,
}

impl NetworkWatch {
    /// Subscribes; on failure says why in the log and watches nothing.
    pub fn open() -> Self {
        match subscribe() {
            Ok(socket) => Self { socket: Some(socket) },
            Err(error) => {
                tracing::warn!(%error, "no netlink subscription: network changes are seen by polling only");
                Self { socket: None }
            }
        }
    }

    /// Waits for the next announcement (forever without a subscription). A failed read
    /// (the kernel dropped announcements: `ENOBUFS`) counts as one: something changed.
    pub async fn announced(&mut self) {
        match &mut self.socket {
            Some(socket) => {
                if let Err(error) = socket.recv_from_full().await {
                    tracing::debug!(%error, "netlink read failed; reading the network afresh");
                }
            }
            None => std::future::pending().await,
        }
    }
}

fn subscribe() -> io::Result<TokioSocket> {
    let mut socket = TokioSocket::new(NETLINK_ROUTE)?;
    socket.socket_mut().bind(&SocketAddr::new(0, GROUPS))?;
    Ok(socket)
}

/// What of this machine's network decides how peers reach it and how it reaches them:
/// every interface address, and the default routes (another router behind the same
/// address is another path).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetworkState {
    /// Interface addresses, sorted.
    pub addresses: Vec<IpAddr>,
    /// Default routes as the kernel lists them (interface and gateway), sorted.
    pub default_routes: Vec<String>,
}

impl NetworkState {
    /// Reads it now.
    pub fn read() -> Self {
        let mut addresses: Vec<IpAddr> = if_addrs::get_if_addrs()
            .map(|list| list.into_iter().map(|i| i.ip()).collect())
            .unwrap_or_default();
        addresses.sort_unstable();
        let mut default_routes = Vec::new();
        if let Ok(table) = std::fs::read_to_string("/proc/net/route") {
            default_routes.extend(ipv4_default_routes(&table));
        }
        if let Ok(table) = std::fs::read_to_string("/proc/net/ipv6_route") {
            default_routes.extend(ipv6_default_routes(&table));
        }
        default_routes.sort_unstable();
        Self {
            addresses,
            default_routes,
        }
    }
}

/// `/proc/net/route`: a header, then `Iface Destination Gateway Flags … Mask …` in hex;
/// a default route has destination and mask 0.
fn ipv4_default_routes(table: &str) -> impl Iterator<Item = String> + '_ {
    table.lines().skip(1).filter_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields[..] {
            [interface, "00000000", gateway, _, _, _, _, "00000000", ..] => {
                Some(format!("{interface} via {gateway}"))
            }
            _ => None,
        }
    })
}

/// `/proc/net/ipv6_route`: `destination prefix-length source source-length next-hop
/// metric refcount use flags interface`; a default route is `::/0`.
fn ipv6_default_routes(table: &str) -> impl Iterator<Item = String> + '_ {
    table.lines().filter_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields[..] {
            [destination, "00", _, _, next_hop, _, _, _, _, interface]
                if destination.bytes().all(|b| b == b'0') && interface != "lo" =>
            {
                Some(format!("{interface} via {next_hop}"))
            }
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_routes_are_read_off_the_kernels_tables() {
        let ipv4 = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                    eth0\t00000000\t0102A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
                    eth0\t0002A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n";
        assert_eq!(
            ipv4_default_routes(ipv4).collect::<Vec<_>>(),
            vec!["eth0 via 0102A8C0"]
        );
        let ipv6 = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 fe800000000000000000000000000001 00000400 00000001 00000000 00000003     eth0\n\
                    fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n\
                    00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo\n";
        assert_eq!(
            ipv6_default_routes(ipv6).collect::<Vec<_>>(),
            vec!["eth0 via fe800000000000000000000000000001"]
        );
        assert_eq!(ipv4_default_routes("garbage\n\n1 2").count(), 0);
    }
}
