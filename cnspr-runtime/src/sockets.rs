//! The UDP sockets of the daemon: one per listen address, IPv6 ones v6-only so that an
//! IPv4 and an IPv6 socket can share a port and peers' addresses never appear as
//! IPv4-mapped IPv6.
//!
//! A socket bound to one address (not a wildcard) is bound with `IP_FREEBIND`: the daemon
//! starts when that address is not there yet (Wi-Fi still joining, a DHCP lease to come)
//! and uses it once it comes. Linux keeps such a binding through the address going away
//! and coming back (a socket is found by address and port, not by interface), so nothing
//! is bound again on a network change; while the address is away it is left out of
//! [`Sockets::reachable`].

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

/// Kernel receive buffer asked for: bursts of handshakes and news fit in it.
const RECEIVE_BUFFER_BYTES: usize = 1 << 20;

/// The daemon's bound sockets.
#[derive(Debug, Clone)]
pub struct Sockets {
    sockets: Vec<Arc<UdpSocket>>,
}

impl Sockets {
    /// Binds every address. An IPv6 address on a machine without IPv6 is skipped with a
    /// warning when another address was bound; any other failure is an error.
    pub fn bind(addresses: &[SocketAddr]) -> io::Result<Self> {
        let mut sockets = Vec::new();
        let mut skipped = Vec::new();
        for address in addresses {
            match bind_one(*address) {
                Ok(socket) => sockets.push(Arc::new(socket)),
                Err(error) if address.is_ipv6() && error.kind() == io::ErrorKind::AddrNotAvailable => {
                    skipped.push((*address, error));
                }
                Err(error) if address.is_ipv6() && error.raw_os_error() == Some(97) => {
                    // EAFNOSUPPORT: this kernel has no IPv6.
                    skipped.push((*address, error));
                }
                Err(error) => {
                    return Err(io::Error::new(
                        error.kind(),
                        format!("cannot listen on {address}: {error}"),
                    ))
                }
            }
        }
        if sockets.is_empty() {
            return Err(io::Error::other("no address to listen on could be bound"));
        }
        for (address, error) in skipped {
            tracing::warn!(%address, %error, "not listening on an IPv6 address");
        }
        Ok(Self { sockets })
    }

    /// Every socket.
    pub fn all(&self) -> &[Arc<UdpSocket>] {
        &self.sockets
    }

    /// The socket to send to `destination` from: the first of the same address family.
    pub fn for_destination(&self, destination: &SocketAddr) -> Option<&UdpSocket> {
        self.sockets
            .iter()
            .find(|s| s.local_addr().is_ok_and(|l| l.is_ipv4() == destination.is_ipv4()))
            .map(Arc::as_ref)
    }

    /// The socket bound to `address`.
    pub fn bound_to(&self, address: &SocketAddr) -> Option<&UdpSocket> {
        self.sockets
            .iter()
            .find(|s| s.local_addr().is_ok_and(|l| l == *address))
            .map(Arc::as_ref)
    }

    /// The addresses the sockets are bound to (wildcards as bound).
    pub fn bound(&self) -> Vec<SocketAddr> {
        self.sockets.iter().filter_map(|s| s.local_addr().ok()).collect()
    }

    /// Concrete addresses peers can reach: wildcard binds expanded to this machine's
    /// interface addresses, an explicit bind only while its address is on an interface,
    /// loopback last.
    pub fn reachable(&self) -> Vec<SocketAddr> {
        let interfaces = interface_addresses();
        let mut addresses = Vec::new();
        for bound in self.bound() {
            if bound.ip().is_unspecified() {
                let same_family = interfaces.iter().filter(|ip| ip.is_ipv4() == bound.is_ipv4());
                // Link-local IPv6 needs a scope to be usable; leave it out.
                let usable =
                    same_family.filter(|ip| !matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local()));
                addresses.extend(usable.map(|ip| SocketAddr::new(*ip, bound.port())));
            } else if interfaces.is_empty() || interfaces.contains(&bound.ip()) {
                // (Interfaces that cannot be read say nothing against it.)
                addresses.push(bound);
            }
        }
        addresses.sort_by_key(|a| (a.ip().is_loopback(), a.is_ipv6()));
        addresses.dedup();
        addresses
    }
}

/// The addresses of this machine's interfaces (none if they cannot be read).
fn interface_addresses() -> Vec<IpAddr> {
    if_addrs::get_if_addrs()
        .map(|list| list.into_iter().map(|i| i.ip()).collect())
        .unwrap_or_default()
}

fn bind_one(address: SocketAddr) -> io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(address), Type::DGRAM, Some(Protocol::UDP))?;
    let explicit = !address.ip().is_unspecified();
    if address.is_ipv6() {
        socket.set_only_v6(true)?;
        if explicit {
            socket.set_freebind_ipv6(true)?;
        }
    } else {
        // LAN beacons go to broadcast addresses (`crate::beacons`).
        socket.set_broadcast(true)?;
        if explicit {
            socket.set_freebind(true)?;
        }
    }
    if explicit && !interface_addresses().contains(&address.ip()) {
        tracing::info!(%address, "listening on an address this machine does not have yet: used once it comes");
    }
    // Best effort: a smaller buffer only means more loss under bursts.
    let _ = socket.set_recv_buffer_size(RECEIVE_BUFFER_BYTES);
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    UdpSocket::from_std(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_address_the_machine_does_not_have_yet_is_bound_and_not_offered() {
        // 192.0.2.0/24 is for documentation: no interface of a test machine has it.
        let absent: SocketAddr = "192.0.2.77:0".parse().expect("address");
        let sockets = Sockets::bind(&[absent, "127.0.0.1:0".parse().expect("address")]).expect("bound");
        let bound = sockets.bound();
        assert_eq!(bound.len(), 2);
        assert_eq!(bound[0].ip(), absent.ip());
        let reachable = sockets.reachable();
        assert_eq!(reachable, [bound[1]], "only the loopback address is there");
    }
}
