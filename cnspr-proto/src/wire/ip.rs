//! An IP address as the wire writes it: its family (4 or 6), then its bytes. Invites,
//! the addresses told in handshakes and address records' signatures lay addresses out so
//! (each with its port after it, in its own byte order).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Appends `ip`'s family and bytes to `out`.
pub fn put_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            out.push(4);
            out.extend_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            out.push(6);
            out.extend_from_slice(&v6.octets());
        }
    }
}

/// The address at the start of `bytes`, and what follows it; `None` if they do not start
/// with one (never a panic).
pub fn take_ip(bytes: &[u8]) -> Option<(IpAddr, &[u8])> {
    let (family, rest) = bytes.split_first()?;
    match family {
        4 => {
            let (octets, rest) = rest.split_first_chunk::<4>()?;
            Some((Ipv4Addr::from(*octets).into(), rest))
        }
        6 => {
            let (octets, rest) = rest.split_first_chunk::<16>()?;
            Some((Ipv6Addr::from(*octets).into(), rest))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_and_anything_else_is_none() {
        for ip in ["192.0.2.7", "2001:db8::7"] {
            let ip: IpAddr = ip.parse().expect("an address");
            let mut bytes = Vec::new();
            put_ip(&mut bytes, ip);
            bytes.push(0xaa);
            assert_eq!(take_ip(&bytes), Some((ip, &[0xaa][..])));
            assert_eq!(take_ip(&bytes[..bytes.len() - 2]), None);
        }
        assert_eq!(take_ip(&[5, 1, 2, 3, 4]), None);
        assert_eq!(take_ip(&[]), None);
    }
}
