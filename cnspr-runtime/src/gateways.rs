//! The networks this device is on, told apart by their default gateway's hardware address
//! (the router's MAC stays when DHCP hands out other addresses, and differs between the
//! home's router and a cafe's even when both use 192.168.1.0/24): read from the kernel's
//! IPv4 routing table (`/proc/net/route`) and neighbour table (`/proc/net/arp`). A
//! gateway not in the neighbour table yet (nothing sent to it so far) is not known: its
//! interface takes its own mode until the next read.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// Default routes: interface name and gateway, from `/proc/net/route`'s text.
pub fn default_routes(route: &str) -> Vec<(String, Ipv4Addr)> {
    route
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (name, destination, gateway, mask) =
                (fields.first()?, fields.get(1)?, fields.get(2)?, fields.get(7)?);
            let default = *destination == "00000000" && *mask == "00000000";
            // The kernel prints the address as the hexadecimal of its in-memory (network
            // order) bytes read as a number in the host's byte order.
            let gateway = u32::from_str_radix(gateway, 16).ok()?.to_ne_bytes();
            (default && gateway != [0; 4]).then(|| (name.to_string(), Ipv4Addr::from(gateway)))
        })
        .collect()
}

/// Neighbours: address, interface and hardware address (lower case), from
/// `/proc/net/arp`'s text; incomplete entries left out.
pub fn neighbours(arp: &str) -> Vec<(Ipv4Addr, String, String)> {
    arp.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (ip, flags, mac, device) = (fields.first()?, fields.get(2)?, fields.get(3)?, fields.get(5)?);
            let complete = u32::from_str_radix(flags.trim_start_matches("0x"), 16).ok()? & 0x2 != 0;
            let ip: Ipv4Addr = ip.parse().ok()?;
            (complete && is_hardware_address(mac)).then(|| (ip, device.to_string(), mac.to_ascii_lowercase()))
        })
        .collect()
}

/// Whether `text` is a hardware address as `ip neigh` prints it (`aa:bb:cc:dd:ee:ff`).
pub fn is_hardware_address(text: &str) -> bool {
    let parts: Vec<&str> = text.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|part| part.len() == 2 && part.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Each interface's default gateway's hardware address, from the two tables' texts.
pub fn gateway_addresses(route: &str, arp: &str) -> BTreeMap<String, String> {
    let neighbours = neighbours(arp);
    default_routes(route)
        .into_iter()
        .filter_map(|(name, gateway)| {
            let (_, _, mac) = neighbours
                .iter()
                .find(|(ip, device, _)| *ip == gateway && *device == name)?;
            Some((name, mac.clone()))
        })
        .collect()
}

/// Each interface's default gateway's hardware address now (none if the tables cannot be
/// read).
pub fn read() -> BTreeMap<String, String> {
    let route = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    let arp = std::fs::read_to_string("/proc/net/arp").unwrap_or_default();
    gateway_addresses(&route, &arp)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTE: &str = "\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
wlan0\t00000000\t0101A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0
wlan0\t0001A8C0\t00000000\t0001\t0\t0\t600\t00FFFFFF\t0\t0\t0
eth1\t00000000\t010011AC\t0003\t0\t0\t100\t00000000\t0\t0\t0
";
    const ARP: &str = "\
IP address       HW type     Flags       HW address            Mask     Device
192.168.1.1      0x1         0x2         AA:BB:CC:00:11:22     *        wlan0
172.17.0.1       0x1         0x0         00:00:00:00:00:00     *        eth1
192.168.1.9      0x1         0x2         aa:bb:cc:00:11:99     *        wlan0
";

    #[test]
    fn each_interfaces_gateway_is_found_by_its_hardware_address() {
        assert_eq!(
            default_routes(ROUTE),
            vec![
                ("wlan0".to_owned(), Ipv4Addr::new(192, 168, 1, 1)),
                ("eth1".to_owned(), Ipv4Addr::new(172, 17, 0, 1)),
            ]
        );
        // eth1's gateway has not answered yet (incomplete): not known.
        let found = gateway_addresses(ROUTE, ARP);
        assert_eq!(found.len(), 1);
        assert_eq!(found["wlan0"], "aa:bb:cc:00:11:22");
        assert!(gateway_addresses("garbage", "more garbage\n1 2").is_empty());
    }

    #[test]
    fn hardware_addresses_are_six_hex_pairs() {
        assert!(is_hardware_address("aa:BB:cc:00:11:22"));
        for text in ["aa:bb:cc:00:11", "aa:bb:cc:00:11:2g", "aabbcc001122", ""] {
            assert!(!is_hardware_address(text), "{text}");
        }
    }
}
