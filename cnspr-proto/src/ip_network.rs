//! IP networks: whether an address is in a network given by one of its addresses and a
//! prefix length (`192.0.2.7/24`).

use std::net::IpAddr;

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
    use super::contains;

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
}
