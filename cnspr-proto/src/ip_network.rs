//! IP networks: whether an address is in a network given by one of its addresses and a
//! prefix length (`192.0.2.7/24`), and whether it is public.

use std::net::IpAddr;

/// Whether `ip` can be reached from the internet: not private, shared (carrier NAT,
/// 100.64.0.0/10), loopback, link-local, unspecified, broadcast or multicast; for IPv6,
/// global unicast (2000::/3).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let shared = v4.octets()[0] == 100 && (64..128).contains(&v4.octets()[1]);
            !(v4.is_private()
                || shared
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast())
        }
        IpAddr::V6(v6) => v6.segments()[0] & 0xe000 == 0x2000,
    }
}

/// Whether `ip` is in the network of `address` with `prefix` bits (of the same family).
pub fn contains((address, prefix): (IpAddr, u8), ip: IpAddr) -> bool {
    fn masked(bytes: &[u8], prefix: u8) -> Vec<u8> {
        bytes
            .iter()
            .enumerate()
            .map(|(i, byte)| {
                let bits = usize::from(prefix).saturating_sub(i * 8).min(8);
                byte & (0xffu16 << (8 - bits)) as u8
            })
            .collect()
    }
    match (ip, address) {
        (IpAddr::V4(a), IpAddr::V4(n)) => masked(&a.octets(), prefix) == masked(&n.octets(), prefix),
        (IpAddr::V6(a), IpAddr::V6(n)) => masked(&a.octets(), prefix) == masked(&n.octets(), prefix),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::{contains, is_public};

    #[test]
    fn an_address_is_in_its_network_only() {
        let ip = |text: &str| text.parse().expect("an address");
        assert!(contains((ip("192.0.2.1"), 24), ip("192.0.2.77")));
        assert!(!contains((ip("192.0.2.1"), 24), ip("192.0.3.77")));
        assert!(contains((ip("192.0.2.64"), 26), ip("192.0.2.77")));
        assert!(!contains((ip("192.0.2.64"), 26), ip("192.0.2.7")));
        assert!(contains((ip("0.0.0.0"), 0), ip("10.1.2.3")));
        assert!(contains((ip("fe80::99"), 64), ip("fe80::1")));
        assert!(!contains((ip("192.0.2.1"), 24), ip("fe80::1")));
    }

    #[test]
    fn only_a_public_address_is_public() {
        for public in ["203.0.113.21", "8.8.8.8", "2001:db8::1"] {
            assert!(is_public(public.parse().expect("an address")), "{public}");
        }
        let not = [
            "192.168.1.1",
            "10.0.0.1",
            "100.64.0.1",
            "127.0.0.1",
            "169.254.1.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "fd00::1",
            "fe80::1",
            "::1",
        ];
        for ip in not {
            assert!(!is_public(ip.parse().expect("an address")), "{ip}");
        }
    }
}
