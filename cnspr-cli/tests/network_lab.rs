//! Devices whose network changes under them, in a lab of network namespaces with real
//! kernel routing (`support::lab`): a running device renumbered on its link, and one
//! moved from one router to another. The kernel announces the change (netlink); the
//! device renews its sessions from the new address, and its peer moves it there.
//!
//! The time until the peer uses the new address is printed (`CNSPR_LAB_TRIALS` runs the
//! move that many times, for `bench/goals`); the tests assert only that it happens.
//! Needs root: skipped with a message otherwise, a failure under CI.

mod support;

use std::time::{Duration, Instant};

use cnspr_proto::roster::AddressRecord;
use support::lab::{device_in, seen_at, until_active_at, Lab, LISTEN};
use support::{pair, wait_until, Device, Root};

/// Every device of the lab listens on this port of every address it has ([`LISTEN`]).
const PORT: u16 = 3030;

fn trials() -> usize {
    env_or("CNSPR_LAB_TRIALS", 1) as usize
}

/// Prints how long the peer took to use the new address after each move, as a JSON line
/// for `bench/lab`.
fn report(what: &str, moved: &[Duration]) {
    let ms: Vec<f64> = moved
        .iter()
        .map(|d| (d.as_secs_f64() * 1e4).round() / 10.0)
        .collect();
    eprintln!(
        "{}",
        serde_json::json!({"lab": what, "new_address_used_after_ms": ms})
    );
}

/// Desk (198.51.100.1) and laptop (198.51.100.2) on one cable, running and paired;
/// returns the laptop's namespace and both devices.
fn paired_on_a_link(lab: &mut Lab, root: &Root) -> (String, Device, Device) {
    let (desk_ns, laptop_ns) = (lab.namespace("desk"), lab.namespace("laptop"));
    lab.cable(
        (&desk_ns, "eth0", Some("198.51.100.1/24")),
        (&laptop_ns, "eth0", Some("198.51.100.2/24")),
    );
    let desk = device_in(root, "desk", &desk_ns);
    let laptop = device_in(root, "laptop", &laptop_ns);
    pair(&desk, &laptop);
    (laptop_ns, desk, laptop)
}

/// A message from `from` to `to` is delivered (`send` waits for the acknowledgement).
fn delivers(from: &Device, to: &str, text: &str) {
    let sent = from.json(&["send", to, "lab.note", text]);
    assert_eq!(sent["delivered"], true, "{sent}");
}

#[test]
fn a_running_device_renumbered_on_its_link_is_reached_at_its_new_address() {
    let Some(mut lab) = Lab::new("renumbering") else {
        return;
    };
    let root = Root::new();
    let (laptop_ns, desk, _laptop) = paired_on_a_link(&mut lab, &root);
    until_active_at(&desk, "laptop", &format!("198.51.100.2:{PORT}"), Instant::now());
    let mut moved = Vec::new();
    for trial in 0..trials() {
        // The new lease comes, then the old one goes: as DHCP renumbers a link.
        let (old, new) = (2 + (trial % 2) * 100, 102 - (trial % 2) * 100);
        let started = Instant::now();
        lab.renumber(
            &laptop_ns,
            "eth0",
            &format!("198.51.100.{old}/24"),
            &format!("198.51.100.{new}/24"),
        );
        let address = format!("198.51.100.{new}:{PORT}");
        moved.push(until_active_at(&desk, "laptop", &address, started));
        delivers(&desk, "laptop", &format!("after move {trial}"));
    }
    report("renumbered on its link", &moved);
}

#[test]
fn a_device_listening_on_one_address_starts_before_it_comes_and_keeps_it_through_a_loss() {
    let Some(mut lab) = Lab::new("an explicit listen address") else {
        return;
    };
    let root = Root::new();
    let (desk_ns, laptop_ns) = (lab.namespace("desk"), lab.namespace("laptop"));
    // The laptop's link is up, its lease not there yet.
    lab.cable(
        (&desk_ns, "eth0", Some("198.51.100.1/24")),
        (&laptop_ns, "eth0", None),
    );
    let desk = device_in(&root, "desk", &desk_ns);
    let mut laptop = Device::new(&root, "laptop");
    laptop.netns = Some(laptop_ns.clone());
    let address = format!("198.51.100.2:{PORT}");
    laptop.start_on(&[&address]);
    lab.run(
        &laptop_ns,
        &["ip", "address", "add", "198.51.100.2/24", "dev", "eth0"],
    );
    pair(&desk, &laptop);
    until_active_at(&desk, "laptop", &address, Instant::now());
    delivers(&desk, "laptop", "once the address came");
    // The lease goes and comes back (a cable out and in): the same socket serves again.
    lab.run(
        &laptop_ns,
        &["ip", "address", "del", "198.51.100.2/24", "dev", "eth0"],
    );
    wait_until("the laptop offers no address", || {
        laptop.json(&["interfaces"])["addresses"]
            .as_array()
            .is_some_and(|a| a.iter().all(|a| a != address.as_str()))
    });
    lab.run(
        &laptop_ns,
        &["ip", "address", "add", "198.51.100.2/24", "dev", "eth0"],
    );
    delivers(&desk, "laptop", "after the address came back");
    delivers(&laptop, "desk", "and back");
}

#[test]
fn a_path_that_stops_answering_is_replaced_by_another_candidate() {
    let Some(mut lab) = Lab::new("a path stops answering") else {
        return;
    };
    // Two links between desk and laptop (a cable and Wi-Fi, say): each has an address on
    // both, so each is the other's candidate on both.
    let root = Root::new();
    let (desk_ns, laptop_ns) = (lab.namespace("desk"), lab.namespace("laptop"));
    lab.cable(
        (&desk_ns, "eth0", Some("192.168.50.1/24")),
        (&laptop_ns, "eth0", Some("192.168.50.2/24")),
    );
    lab.cable(
        (&desk_ns, "eth1", Some("203.0.113.1/24")),
        (&laptop_ns, "eth1", Some("203.0.113.2/24")),
    );
    let desk = device_in(&root, "desk", &desk_ns);
    let laptop = device_in(&root, "laptop", &laptop_ns);
    pair(&desk, &laptop);
    let (desk_id, laptop_id) = (desk.id(), laptop.id());
    let both_records = || {
        [(&desk, &laptop_id), (&laptop, &desk_id)]
            .iter()
            .all(|(device, other)| {
                let output = device.run(&["kv", "get", &format!("_addr/{other}"), "--raw"]);
                let candidates = AddressRecord::decode(&output.stdout)
                    .map(|r| r.candidates)
                    .unwrap_or_default();
                candidates.len() >= 2
            })
    };
    wait_until("each holds the other's record with both addresses", both_records);
    let mut moved = Vec::new();
    for trial in 0..trials() {
        wait_until("the laptop has the desk active", || {
            seen_at(&laptop, "desk").is_some_and(|(_, state)| state == "active")
        });
        // Each trial is a failure of its own: the one before made both devices' failure
        // detectors slower for a while (Lifeguard's local health: a missed probe and a
        // suspicion refuted), as back-to-back failures should; a link fails afresh.
        wait_until("both devices' failure detectors are healthy again", || {
            [&desk, &laptop]
                .iter()
                .all(|d| d.json(&["status"])["health_multiplier"] == 1)
        });
        let (in_use, _) = seen_at(&laptop, "desk").expect("listed");
        let (cut, other) = if in_use.starts_with("192.168.50.") {
            ("eth0", format!("203.0.113.1:{PORT}"))
        } else {
            ("eth1", format!("192.168.50.1:{PORT}"))
        };
        // The link in use stops carrying anything (unplugged at the far end, a Wi-Fi
        // that hangs): no address changes, no netlink news; only silence.
        let started = Instant::now();
        lab.nft(
            &desk_ns,
            &format!(
                "table inet cut {{ chain i {{ type filter hook input priority 0; iifname {cut} drop; }}; \
                 chain o {{ type filter hook output priority 0; oifname {cut} drop; }}; }}"
            ),
        );
        moved.push(until_active_at(&laptop, "desk", &other, started));
        delivers(&laptop, "desk", &format!("on the other path {trial}"));
        lab.run(&desk_ns, &["nft", "delete", "table", "inet", "cut"]);
    }
    report("a path stops answering: on another candidate", &moved);
}

#[test]
fn a_running_device_moved_to_another_router_is_reached_there() {
    let Some(mut lab) = Lab::new("roaming between routers") else {
        return;
    };
    // The desk behind the router; the laptop on router A's LAN, with a second interface
    // cabled to router B's LAN but down (another Wi-Fi, not joined yet).
    let router = lab.namespace("router");
    let (desk_ns, laptop_ns) = (lab.namespace("desk"), lab.namespace("laptop"));
    lab.router(&router);
    lab.cable(
        (&router, "desk", Some("203.0.113.1/24")),
        (&desk_ns, "eth0", Some("203.0.113.2/24")),
    );
    lab.cable(
        (&router, "lan-a", Some("192.0.2.1/24")),
        (&laptop_ns, "wlan-a", Some("192.0.2.2/24")),
    );
    lab.cable(
        (&router, "lan-b", Some("198.51.100.1/24")),
        (&laptop_ns, "wlan-b", None),
    );
    lab.run(&laptop_ns, &["ip", "link", "set", "wlan-b", "down"]);
    lab.run(&desk_ns, &["ip", "route", "add", "default", "via", "203.0.113.1"]);
    lab.run(&laptop_ns, &["ip", "route", "add", "default", "via", "192.0.2.1"]);
    let root = Root::new();
    let desk = device_in(&root, "desk", &desk_ns);
    let laptop = device_in(&root, "laptop", &laptop_ns);
    pair(&desk, &laptop);
    until_active_at(&desk, "laptop", &format!("192.0.2.2:{PORT}"), Instant::now());
    let mut moved = Vec::new();
    for trial in 0..trials() {
        // Leave one network, join the other: link down, link up, a lease, a default route.
        let (from, to) = if trial % 2 == 0 { ("a", "b") } else { ("b", "a") };
        let (gateway, address) = if to == "b" {
            ("198.51.100.1", "198.51.100.2")
        } else {
            ("192.0.2.1", "192.0.2.2")
        };
        let started = Instant::now();
        lab.run(
            &laptop_ns,
            &["ip", "address", "flush", "dev", &format!("wlan-{from}")],
        );
        lab.run(
            &laptop_ns,
            &["ip", "link", "set", &format!("wlan-{from}"), "down"],
        );
        lab.run(&laptop_ns, &["ip", "link", "set", &format!("wlan-{to}"), "up"]);
        lab.run(
            &laptop_ns,
            &[
                "ip",
                "address",
                "add",
                &format!("{address}/24"),
                "dev",
                &format!("wlan-{to}"),
            ],
        );
        lab.run(&laptop_ns, &["ip", "route", "replace", "default", "via", gateway]);
        moved.push(until_active_at(
            &desk,
            "laptop",
            &format!("{address}:{PORT}"),
            started,
        ));
        delivers(&desk, "laptop", &format!("after move {trial}"));
        delivers(&laptop, "desk", &format!("back after move {trial}"));
    }
    report("moved to another router", &moved);
    // The laptop heard of it from the kernel, not from a poll: it says so in its log.
    let log = std::fs::read_to_string(laptop.home().join("daemon.log")).expect("log");
    let announced = log.matches("network changed (announced by the kernel)").count();
    assert!(
        announced >= trials(),
        "{announced} changes announced for {} moves",
        trials()
    );
    wait_until("the desk still has the laptop active", || {
        seen_at(&desk, "laptop").is_some_and(|(_, state)| state == "active")
    });
}

#[test]
fn devices_on_one_lan_behind_a_nat_paired_through_a_public_host_meet_on_the_lan() {
    let Some(mut lab) = Lab::new("same LAN behind one NAT") else {
        return;
    };
    // A host of the user's on the internet; at home, a router with NAT and a stateful
    // filter (no hairpin: its public address does not lead back inside), desk and laptop
    // on its LAN.
    let (public_ns, home) = (lab.namespace("public"), lab.namespace("home"));
    let (desk_ns, laptop_ns) = (lab.namespace("desk"), lab.namespace("laptop"));
    lab.cable(
        (&home, "wan", Some("203.0.113.21/24")),
        (&public_ns, "eth0", Some("203.0.113.10/24")),
    );
    lab.switch(&home, "lan", "192.0.2.1/24");
    lab.plug((&home, "lan"), (&desk_ns, "eth0", "192.0.2.2/24"));
    lab.plug((&home, "lan"), (&laptop_ns, "eth0", "192.0.2.3/24"));
    lab.home_router(&home, "lan", "wan");
    for ns in [&desk_ns, &laptop_ns] {
        lab.run(ns, &["ip", "route", "add", "default", "via", "192.0.2.1"]);
    }
    let root = Root::new();
    let public = device_in(&root, "public", &public_ns);
    let desk = device_in(&root, "desk", &desk_ns);
    let laptop = device_in(&root, "laptop", &laptop_ns);
    pair(&public, &desk);
    let started = Instant::now();
    pair(&public, &laptop);
    // What the public host saw of each is the router's public address; the LAN address
    // comes in each one's address record.
    let lan_path = until_active_at(&desk, "laptop", &format!("192.0.2.3:{PORT}"), started);
    until_active_at(&laptop, "desk", &format!("192.0.2.2:{PORT}"), started);
    report("same LAN behind one NAT", &[lan_path]);
    delivers(&desk, "laptop", "over the LAN");
    delivers(&laptop, "desk", "and back");
    let seen_by_public = seen_at(&public, "laptop").map(|(address, _)| address);
    assert!(
        seen_by_public
            .as_deref()
            .is_some_and(|a| a.starts_with("203.0.113.21:")),
        "the public host reaches the laptop through the router: {seen_by_public:?}"
    );
}

/// A number from the environment (`bench/lab` sets them), else `default`.
fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Writes `config.toml` in `device`'s home: beacons every `interval` seconds.
fn beacon_every(device: &Device, interval: u64) {
    let config = format!("[discovery]\ninterval_secs = {interval}\n");
    std::fs::write(device.home().join("config.toml"), config).expect("config.toml");
}

#[test]
fn devices_both_renumbered_while_off_find_each_other_by_their_beacons() {
    let Some(mut lab) = Lab::new("both renumbered while off") else {
        return;
    };
    let root = Root::new();
    let (laptop_ns, mut desk, mut laptop) = paired_on_a_link(&mut lab, &root);
    let desk_ns = desk.netns.clone().expect("in the lab");
    until_active_at(&desk, "laptop", &format!("198.51.100.2:{PORT}"), Instant::now());
    for device in [&mut desk, &mut laptop] {
        assert!(device.run(&["stop"]).status.success());
        device.wait_exit();
    }
    // New leases for both while they are off: each only knows the other's old address,
    // and nothing else on the network knows either.
    for (ns, old, new) in [(&desk_ns, "1", "11"), (&laptop_ns, "2", "12")] {
        lab.renumber(
            ns,
            "eth0",
            &format!("198.51.100.{old}/24"),
            &format!("198.51.100.{new}/24"),
        );
    }
    desk.start_on(&[LISTEN]);
    let started = Instant::now();
    laptop.start_on(&[LISTEN]);
    let found = until_active_at(&desk, "laptop", &format!("198.51.100.12:{PORT}"), started);
    until_active_at(&laptop, "desk", &format!("198.51.100.11:{PORT}"), started);
    report("both renumbered while off", &[found]);
    delivers(&desk, "laptop", "found you");
    // The desk found the laptop by its beacon, not by luck: it answered one.
    let answered = desk.json(&["status"])["datagrams"]["beacons_answered"].clone();
    assert!(answered.as_u64().is_some_and(|n| n >= 1), "{answered}");
}

/// Runs a capture of UDP datagrams to port [`PORT`] inside `ns` (IPv4 broadcast and the
/// IPv6 all-nodes group) for `seconds`; returns every datagram.
fn capture(ns: &str, seconds: u64) -> Vec<Vec<u8>> {
    let script = format!(
        r#"
import select, socket, sys, time
four = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
four.bind(("0.0.0.0", {PORT}))
six = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
six.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
six.bind(("::", {PORT}))
end = time.time() + {seconds}
while time.time() < end:
    ready, _, _ = select.select([four, six], [], [], max(0, end - time.time()))
    for s in ready:
        print(s.recv(2048).hex(), flush=True)
"#
    );
    let output = std::process::Command::new("ip")
        .args(["netns", "exec", ns, "python3", "-c", &script])
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            (0..line.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&line[i..i + 2], 16).expect("hex"))
                .collect()
        })
        .collect()
}

#[test]
fn a_stranger_on_the_lan_learns_nothing_from_the_beacons_it_records() {
    let Some(mut lab) = Lab::new("a stranger's capture of beacons") else {
        return;
    };
    let switch = lab.namespace("switch");
    let (desk_ns, laptop_ns, stranger) = (
        lab.namespace("desk"),
        lab.namespace("laptop"),
        lab.namespace("stranger"),
    );
    lab.switch(&switch, "lan", "198.51.100.254/24");
    lab.plug((&switch, "lan"), (&desk_ns, "eth0", "198.51.100.1/24"));
    lab.plug((&switch, "lan"), (&laptop_ns, "eth0", "198.51.100.2/24"));
    lab.plug((&switch, "lan"), (&stranger, "eth0", "198.51.100.66/24"));
    let root = Root::new();
    let desk = device_in(&root, "desk", &desk_ns);
    let laptop = device_in(&root, "laptop", &laptop_ns);
    pair(&desk, &laptop);
    // Beacons every second from now on (the default is every 30 s; `bench/lab` records
    // 70 s at the default), on IPv4 and IPv6 alike.
    let interval = env_or("CNSPR_LAB_BEACON_SECS", 1);
    let seconds = env_or("CNSPR_LAB_CAPTURE_SECS", 8);
    let (mut desk, mut laptop) = (desk, laptop);
    for device in [&mut desk, &mut laptop] {
        beacon_every(device, interval);
        assert!(device.run(&["stop"]).status.success());
        device.wait_exit();
        device.start_on(&[LISTEN, "[::]:3030"]);
    }
    let sent = |devices: [&Device; 2]| -> u64 {
        devices
            .iter()
            .map(|d| d.json(&["status"])["datagrams"]["sent"].as_u64().unwrap_or(0))
            .sum()
    };
    let sent_before = sent([&desk, &laptop]);
    let recorded = capture(&stranger, seconds);
    let per_device_minute = |n: u64| n as f64 * 60.0 / 2.0 / seconds as f64;
    let idle = per_device_minute(sent([&desk, &laptop]) - sent_before);
    let beacons: Vec<&Vec<u8>> = recorded.iter().filter(|d| d.len() == 72).collect();
    eprintln!(
        "{}",
        serde_json::json!({"lab": "beacons on a LAN", "capture_secs": seconds, "beacon_interval_secs": interval,
            "beacons": beacons.len(), "beacons_per_device_per_min": per_device_minute(beacons.len() as u64),
            "datagrams_sent_per_device_per_min": idle})
    );
    let expected = 2 * 2 * (seconds / interval);
    assert!(
        beacons.len() as u64 >= expected.max(4) / 2,
        "{} beacons of {} datagrams",
        beacons.len(),
        recorded.len()
    );
    assert_eq!(
        beacons.len(),
        recorded.len(),
        "the stranger hears nothing but beacons"
    );
    // Nothing of either device: not its ID (as bytes or as text), not its name.
    let mut secrets: Vec<Vec<u8>> = vec![b"desk".to_vec(), b"laptop".to_vec()];
    for device in [&desk, &laptop] {
        let id = device.id();
        let parsed: cnspr_proto::identity::DeviceId = id.parse().expect("a device ID");
        secrets.push(parsed.as_bytes().to_vec());
        secrets.push(id.replace('-', "").into_bytes());
    }
    for beacon in &beacons {
        for secret in &secrets {
            let windows = secret.len().min(8);
            for window in secret.windows(windows) {
                assert!(
                    !beacon.windows(windows).any(|w| w == window),
                    "a beacon holds {:?}",
                    String::from_utf8_lossy(window)
                );
            }
        }
    }
    // No eight bytes in common between any two beacons.
    let mut windows = std::collections::BTreeMap::new();
    for (n, beacon) in beacons.iter().enumerate() {
        for window in beacon.windows(8) {
            if let Some(other) = windows.insert(window.to_vec(), n) {
                assert_eq!(other, n, "beacons {other} and {n} share {window:02x?}");
            }
        }
    }
    // And the mesh works all the while.
    until_active_at(&desk, "laptop", &format!("198.51.100.2:{PORT}"), Instant::now());
}

/// A public host between two homes, each behind its own router with NAT and a stateful
/// filter: the desk's and the laptop's. The desk's router is a carrier NAT (a mapping
/// per destination) when `desk_behind_carrier_nat`. Returns the public host, the desk and
/// the laptop, each paired with the public host and active there, directly.
fn two_homes_and_a_public_host(lab: &mut Lab, root: &Root, desk_behind_carrier_nat: bool) -> [Device; 3] {
    let (public_ns, internet) = (lab.namespace("public"), lab.namespace("internet"));
    lab.switch(&internet, "wan", "203.0.113.1/24");
    lab.plug((&internet, "wan"), (&public_ns, "eth0", "203.0.113.10/24"));
    let mut devices = Vec::new();
    for (name, wan, lan) in [
        ("desk", "203.0.113.21", "192.0.2"),
        ("laptop", "203.0.113.22", "198.51.100"),
    ] {
        let (router, ns) = lab.home(&internet, name, wan, lan);
        if name == "desk" && desk_behind_carrier_nat {
            lab.carrier_nat(&router, "wan");
        }
        devices.push(device_in(root, name, &ns));
    }
    let public = device_in(root, "public", &public_ns);
    for device in &devices {
        pair(&public, device);
    }
    for device in &devices {
        wait_until("the public host has both active, directly", || {
            public.members().into_iter().any(|m| {
                let direct = m["path"] == "direct" || m["path"] == "lan";
                m["name"] == device.name.as_str() && m["state"] == "active" && direct
            })
        });
    }
    let laptop = devices.pop().expect("two homes");
    let desk = devices.pop().expect("two homes");
    [public, desk, laptop]
}

#[test]
fn devices_behind_two_nats_talk_through_their_public_host_and_are_never_shown_active() {
    let Some(mut lab) = Lab::new("behind two NATs") else {
        return;
    };
    // The desk's carrier NAT gives each destination its own port, and the laptop's home
    // router lets in only what answers its own sends: no direct path opens, even with
    // both calling at once. Only the public host reaches either.
    let root = Root::new();
    let started = Instant::now();
    let [public, desk, laptop] = two_homes_and_a_public_host(&mut lab, &root, true);
    let paired = started.elapsed();
    let (desk, laptop) = (&desk, &laptop);
    // Each has a session with the other through the public host, which relays it:
    // `indirect`, via the public host, by name; never `active`, never a direct path.
    for (device, other) in [(desk, laptop), (laptop, desk)] {
        let other_id = other.id();
        wait_until(
            &format!("{} shows {} through the public host", device.name, other.name),
            || {
                let seen = device
                    .members()
                    .into_iter()
                    .find(|m| m["id"] == other_id.as_str());
                seen.is_some_and(|m| {
                    m["state"] == "indirect"
                        && m["path"] == "indirect"
                        && m["via"] == public.id().as_str()
                        && m["name"] == other.name.as_str()
                })
            },
        );
    }
    let met = started.elapsed();
    let table = String::from_utf8_lossy(&desk.run(&["members"]).stdout).into_owned();
    assert!(table.contains("via public"), "{table}");
    delivers(desk, "laptop", "through the public host");
    delivers(laptop, "desk", "and back");
    let relayed = public.json(&["status"]);
    assert!(relayed["relay"]["pairs"].as_u64() >= Some(1), "{relayed}");
    // netcheck says why: the laptop is relayed by the public host.
    let check = desk.json(&["netcheck"]);
    let laptop_id = laptop.id();
    let seen = check["peers"]
        .as_array()
        .and_then(|peers| peers.iter().find(|p| p["id"] == laptop_id.as_str()))
        .cloned()
        .unwrap_or_default();
    assert_eq!(seen["relay"], public.id().as_str(), "{check}");
    assert!(
        seen["why"]
            .as_str()
            .is_some_and(|why| why.starts_with("relayed by public")),
        "{check}"
    );
    let text = String::from_utf8_lossy(&desk.run(&["netcheck"]).stdout).into_owned();
    assert!(text.contains("via public"), "{text}");
    report(
        "two NATs, no direct path: relayed, after pairing",
        &[met.saturating_sub(paired)],
    );
    for device in [desk, laptop] {
        assert!(
            device
                .members()
                .iter()
                .all(|m| m["state"] != "active" || m["name"] == "public" || m["self"] == true),
            "{}",
            serde_json::json!(device.members())
        );
    }
}

#[test]
fn a_device_at_home_is_found_by_its_anchor_after_its_public_address_changed() {
    let Some(mut lab) = Lab::new("static anchors") else {
        return;
    };
    // The desk at home behind a router with NAT, a stateful filter and a port forward to
    // it; its dynamic DNS name is `home.lab.test`. The laptop at a cafe, behind another.
    let internet = lab.namespace("internet");
    lab.switch(&internet, "wan", "203.0.113.1/24");
    let (home_router, desk_ns) = lab.home(&internet, "desk", "203.0.113.21", "192.0.2");
    let (cafe_router, laptop_ns) = lab.home(&internet, "laptop", "203.0.113.22", "198.51.100");
    lab.port_forward(&home_router, "wan", PORT, &format!("192.0.2.2:{PORT}"));
    lab.hosts(&laptop_ns, "203.0.113.21 home.lab.test\n");
    let root = Root::new();
    let mut desk = Device::new(&root, "desk");
    desk.netns = Some(desk_ns);
    std::fs::write(
        desk.home().join("config.toml"),
        "anchors = [\"home.lab.test:3030\"]\n",
    )
    .expect("config.toml");
    desk.start_on(&[LISTEN]);
    let laptop = device_in(&root, "laptop", &laptop_ns);
    // The invite names the desk's LAN address, which the cafe cannot reach, and its
    // anchor, which the laptop looks up: pairing goes through the port forward.
    pair(&desk, &laptop);
    until_active_at(&laptop, "desk", &format!("203.0.113.21:{PORT}"), Instant::now());
    delivers(&laptop, "desk", "hello from the cafe");
    // The home's public address changes (a new lease from the provider), and the dynamic
    // DNS name follows it. Nothing else tells the laptop where the desk went. The old
    // address leads nowhere any more, both ways (the kernels here would otherwise keep
    // the old flow alive from their caches: the cafe's ARP entry, the home's conntrack).
    let started = Instant::now();
    lab.renumber(&home_router, "wan", "203.0.113.21/24", "203.0.113.31/24");
    lab.nft(
        &cafe_router,
        r#"
table ip provider {
    chain inbound { type filter hook prerouting priority -300; ip saddr 203.0.113.21 drop; }
    chain outbound { type filter hook forward priority -300; ip daddr 203.0.113.21 drop; }
}
"#,
    );
    lab.hosts(&laptop_ns, "203.0.113.31 home.lab.test\n");
    let found = until_active_at(&laptop, "desk", &format!("203.0.113.31:{PORT}"), started);
    report("public address changed, found by its anchor", &[found]);
    delivers(&laptop, "desk", "found you by name");
    delivers(&desk, "laptop", "and back");
}

#[test]
fn devices_behind_two_port_keeping_nats_reach_each_other_through_their_mappings() {
    let Some(mut lab) = Lab::new("behind two port-keeping NATs") else {
        return;
    };
    // Both routers keep a LAN device's port for every destination (Linux does, unless the
    // port is taken): each device calls the other where the public host sees it, and
    // the two calls open both NATs' filters for the other's (simultaneous open).
    let root = Root::new();
    let started = Instant::now();
    let [_public, desk, laptop] = two_homes_and_a_public_host(&mut lab, &root, false);
    let paired = started.elapsed();
    let met = until_active_at(&desk, "laptop", &format!("203.0.113.22:{PORT}"), started);
    until_active_at(&laptop, "desk", &format!("203.0.113.21:{PORT}"), started);
    for (device, other) in [(&desk, "laptop"), (&laptop, "desk")] {
        let seen = device
            .members()
            .into_iter()
            .find(|m| m["name"] == other)
            .expect("listed");
        assert_eq!(seen["path"], "direct", "{seen}");
    }
    report(
        "two port-keeping NATs: direct after pairing",
        &[met.saturating_sub(paired)],
    );
    delivers(&desk, "laptop", "through both NATs");
}

/// What `device`'s `status` says of its NAT: the mapping, and the addresses seen.
fn nat_of(device: &Device) -> (String, Vec<String>) {
    let nat = device.json(&["status"])["nat"].clone();
    let seen = nat["translated"].as_array().cloned().unwrap_or_default();
    (
        nat["mapping"].as_str().unwrap_or_default().to_owned(),
        seen.iter()
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect(),
    )
}

#[test]
fn each_device_learns_what_its_nat_does_from_where_its_peers_see_it() {
    let Some(mut lab) = Lab::new("NAT mapping") else {
        return;
    };
    // Two public hosts; a laptop behind a home router (Linux keeps the source port: one
    // mapping for every destination), a phone behind a carrier NAT that picks a random
    // port for each destination (`masquerade random`: a mapping per destination).
    let internet = lab.namespace("internet");
    lab.switch(&internet, "wan", "203.0.113.1/24");
    let root = Root::new();
    let mut public = Vec::new();
    for (name, address) in [("public-a", "203.0.113.10"), ("public-b", "203.0.113.11")] {
        let ns = lab.namespace(name);
        lab.plug((&internet, "wan"), (&ns, "eth0", &format!("{address}/24")));
        public.push(device_in(&root, name, &ns));
    }
    let mut behind = Vec::new();
    for (name, wan, lan, random) in [
        ("laptop", "203.0.113.21", "192.0.2", false),
        ("phone", "203.0.113.22", "198.51.100", true),
    ] {
        let (router, ns) = lab.home(&internet, name, wan, lan);
        if random {
            lab.carrier_nat(&router, "wan");
        }
        behind.push(device_in(&root, name, &ns));
    }
    for device in public.iter().skip(1).chain(&behind) {
        pair(&public[0], device);
    }
    let (laptop, phone) = (&behind[0], &behind[1]);
    wait_until("the laptop knows its NAT keeps one mapping", || {
        nat_of(laptop)
            == (
                "endpoint-independent".to_owned(),
                vec![format!("203.0.113.21:{PORT}")],
            )
    });
    wait_until("the phone knows its NAT makes a mapping per destination", || {
        nat_of(phone).0 == "endpoint-dependent"
    });
    for device in &public {
        assert_eq!(nat_of(device).0, "none", "{}", device.name);
        assert_eq!(
            device.json(&["status"])["nat"]["kept_alive"],
            0,
            "{}",
            device.name
        );
    }
    // The laptop keeps its sessions through its NAT alive (those with its ring
    // neighbours: here every device it reaches).
    let kept = laptop.json(&["status"])["nat"]["kept_alive"]
        .as_u64()
        .unwrap_or(0);
    assert!(kept >= 2, "{kept}");
    // Its idle cost behind the NAT, for `bench/lab` (CNSPR_LAB_IDLE_SECS).
    let idle_secs = env_or("CNSPR_LAB_IDLE_SECS", 0);
    if idle_secs > 0 {
        let sent = || {
            laptop.json(&["status"])["datagrams"]["sent"]
                .as_u64()
                .unwrap_or(0)
        };
        let before = sent();
        std::thread::sleep(Duration::from_secs(idle_secs));
        let per_minute = (sent() - before) as f64 * 60.0 / idle_secs as f64;
        eprintln!(
            "{}",
            serde_json::json!({"lab": "behind a NAT, idle", "idle_secs": idle_secs,
                "datagrams_sent_per_device_per_min": per_minute, "peers": 3})
        );
    }
    // The laptop's one mapping is a candidate the others learn from its address record;
    // the phone's mappings, one per destination, are of no use to anyone else.
    let record_of = |device: &Device| {
        let key = format!("_addr/{}", device.id());
        let output = public[1].run(&["kv", "get", &key, "--raw"]);
        AddressRecord::decode(&output.stdout)
            .map(|r| r.candidates)
            .unwrap_or_default()
    };
    let mapping: std::net::SocketAddr = format!("203.0.113.21:{PORT}").parse().expect("an address");
    wait_until("public-b has the laptop's mapping in its record", || {
        record_of(laptop).contains(&mapping)
    });
    let phone_candidates = record_of(phone);
    assert!(!phone_candidates.is_empty());
    assert!(
        phone_candidates
            .iter()
            .all(|a| a.ip().to_string() != "203.0.113.22"),
        "{phone_candidates:?}"
    );
}

/// The hardware address of `interface` in `ns`.
fn hardware_address(ns: &str, interface: &str) -> String {
    let output = std::process::Command::new("ip")
        .args(["-n", ns, "-br", "link", "show", interface])
        .output()
        .expect("ip runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.split_whitespace()
        .nth(2)
        .expect("a hardware address")
        .to_owned()
}

#[test]
fn a_network_set_off_by_its_gateway_gets_no_beacon() {
    let Some(mut lab) = Lab::new("a network's mode by its gateway") else {
        return;
    };
    // A cafe's LAN: its router (the switch's own address), the laptop, a stranger.
    let (cafe, laptop_ns, stranger) = (
        lab.namespace("cafe"),
        lab.namespace("laptop"),
        lab.namespace("stranger"),
    );
    lab.switch(&cafe, "lan", "192.0.2.1/24");
    lab.plug((&cafe, "lan"), (&laptop_ns, "eth0", "192.0.2.2/24"));
    lab.plug((&cafe, "lan"), (&stranger, "eth0", "192.0.2.66/24"));
    lab.run(&laptop_ns, &["ip", "route", "add", "default", "via", "192.0.2.1"]);
    let router = hardware_address(&cafe, "lan");
    lab.run(
        &laptop_ns,
        &[
            "ip",
            "neigh",
            "replace",
            "192.0.2.1",
            "lladdr",
            &router,
            "dev",
            "eth0",
            "nud",
            "permanent",
        ],
    );
    // A desk there too, only listening (it sends no beacon): beacons need a mesh.
    let desk_ns = lab.namespace("desk");
    lab.plug((&cafe, "lan"), (&desk_ns, "eth0", "192.0.2.3/24"));
    let root = Root::new();
    let mut desk = Device::new(&root, "desk");
    desk.netns = Some(desk_ns);
    std::fs::write(
        desk.home().join("config.toml"),
        "[discovery]\nmode = \"listen\"\n",
    )
    .expect("config.toml");
    desk.start_on(&[LISTEN]);
    let mut laptop = device_in(&root, "laptop", &laptop_ns);
    pair(&desk, &laptop);
    // Beacons are sealed with the mesh's secret: the laptop has it before it stops.
    let has_secret = |device: &Device| {
        device
            .run(&["kv", "get", "--raw", "_roster/mesh-secret"])
            .status
            .success()
    };
    wait_until("the laptop has the mesh's secret", || has_secret(&laptop));
    assert!(laptop.run(&["stop"]).status.success());
    laptop.wait_exit();
    // Beacons every second, but not on the cafe's network, known by its router.
    let config = |networks: &str| format!("[discovery]\ninterval_secs = 1\n[discovery.networks]\n{networks}");
    let home_only = config(&format!("\"{}\" = \"off\"\n", router.to_uppercase()));
    std::fs::write(laptop.home().join("config.toml"), home_only).expect("config.toml");
    laptop.start_on(&[LISTEN, "[::]:3030"]);
    let gateways = laptop.json(&["interfaces"])["gateways"].clone();
    assert_eq!(gateways["eth0"], router.as_str(), "{gateways}");
    let beacons = |ns: &str| capture(ns, 3).iter().filter(|d| d.len() == 72).count();
    assert!(has_secret(&laptop));
    assert_eq!(beacons(&stranger), 0, "a beacon on a network set off");
    // The same laptop without that setting announces itself there.
    assert!(laptop.run(&["stop"]).status.success());
    laptop.wait_exit();
    std::fs::write(laptop.home().join("config.toml"), config("")).expect("config.toml");
    laptop.start_on(&[LISTEN, "[::]:3030"]);
    assert!(beacons(&stranger) >= 2);
}

/// CPU seconds process `pid` has used (user and system), from `/proc`.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // After the command name in parentheses: utime and stime are fields 14 and 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i)?.parse::<u64>().ok())
        .sum();
    ticks as f64 / 100.0
}

/// A stopped device, sent `SIGCONT` when this is dropped.
struct Resumed<'a>(&'a Device);

impl Drop for Resumed<'_> {
    fn drop(&mut self) {
        self.0.signal("CONT");
    }
}

/// Sends `blob` from `from` to `to` and returns how long `send` took (it answers once
/// the receiver recorded the message).
fn send_blob(from: &Device, to: &str, blob: &[u8]) -> Duration {
    let started = Instant::now();
    let sent = from.run_with_stdin(&["send", to, "lab.blob", "-"], blob);
    assert!(
        sent.status.success(),
        "send to {to}: {}",
        String::from_utf8_lossy(&sent.stderr)
    );
    started.elapsed()
}

#[test]
fn a_relayed_megabyte_arrives_and_survives_its_relay_dying_mid_transfer() {
    let Some(mut lab) = Lab::new("relay throughput and failover") else {
        return;
    };
    // Four devices on one switch; the desk's firewall drops everything to and from the
    // laptop, so the two talk only through one of the other two.
    let root = Root::new();
    let switch = lab.namespace("switch");
    lab.switch(&switch, "br0", "198.51.100.254/24");
    let mut devices = Vec::new();
    for (n, name) in ["desk", "laptop", "relay-a", "relay-b"].iter().enumerate() {
        let ns = lab.namespace(name);
        lab.plug(
            (&switch, "br0"),
            (&ns, "eth0", &format!("198.51.100.{}/24", n + 1)),
        );
        if *name == "desk" {
            lab.nft(
                &ns,
                "table inet cut { chain i { type filter hook input priority 0; ip saddr 198.51.100.2 drop; }; \
                 chain o { type filter hook output priority 0; ip daddr 198.51.100.2 drop; }; }",
            );
        }
        devices.push(device_in(&root, name, &ns));
    }
    let [desk, laptop, relay_a, relay_b] = <[Device; 4]>::try_from(devices).ok().expect("four");
    for device in [&desk, &laptop, &relay_b] {
        pair(&relay_a, device);
    }
    let relay_ids = [relay_a.id(), relay_b.id()];
    let laptop_id = laptop.id();
    wait_until("the desk talks to the laptop through a relay", || {
        desk.members().into_iter().any(|m| {
            m["id"] == laptop_id.as_str()
                && m["state"] == "indirect"
                && relay_ids.iter().any(|r| m["via"] == r.as_str())
        })
    });
    // A megabyte, direct (desk to a relay) and relayed (desk to laptop), twice each; the
    // relay's CPU over the relayed ones.
    let blob = vec![0x5a_u8; 1 << 20];
    // Which relay carries is known from their counters: a new handshake may move the
    // session to the other (the failure detector's latest indirect probe names it).
    let relayed_bytes = |d: &Device| d.json(&["status"])["relay"]["bytes"].as_u64().unwrap_or(0);
    let mut relays = [relay_a, relay_b];
    let direct: Vec<Duration> = (0..2).map(|_| send_blob(&desk, &relays[1].name, &blob)).collect();
    let bytes_before = relays.each_ref().map(relayed_bytes);
    let cpu_before = relays.each_ref().map(|d| cpu_secs(d.pid()));
    let relayed: Vec<Duration> = (0..2).map(|_| send_blob(&desk, "laptop", &blob)).collect();
    let carried = [0, 1].map(|i| relayed_bytes(&relays[i]).saturating_sub(bytes_before[i]));
    let carrying = usize::from(carried[1] > carried[0]);
    assert!(
        carried[carrying] >= 1 << 20,
        "the megabytes went through a relay: {carried:?}"
    );
    let cpu_per_mb = (cpu_secs(relays[carrying].pid()) - cpu_before[carrying]) / 2.0;
    let best = |d: &[Duration]| d.iter().min().copied().unwrap_or_default().as_secs_f64() * 1e3;
    eprintln!(
        "{}",
        serde_json::json!({"lab": "a megabyte, relayed against direct", "direct_ms": best(&direct),
            "relayed_ms": best(&relayed), "relay_cpu_ms_per_mb": cpu_per_mb * 1e3})
    );
    // The relay that carries dies (kill -9) in the middle of a megabyte: the laptop is
    // stopped while the send begins, so the megabyte cannot be through when the relay is
    // killed; then it runs again. The megabyte arrives all the same, through the other.
    let before = relays.each_ref().map(relayed_bytes);
    laptop.signal("STOP");
    let (since_kill, carrying) = std::thread::scope(|scope| {
        let sender = scope.spawn(|| send_blob(&desk, "laptop", &blob));
        // Running again on every way out: a failed wait must not leave the sender waiting.
        let stopped = Resumed(&laptop);
        let mut carrying = None;
        wait_until("a relay carries the megabyte", || {
            carrying = (0..2).find(|i| relayed_bytes(&relays[*i]) > before[*i] + (64 << 10));
            carrying.is_some()
        });
        let carrying = carrying.expect("found");
        assert!(!sender.is_finished(), "the megabyte cannot be through yet");
        relays[carrying].signal("KILL");
        let killed = Instant::now();
        drop(stopped);
        sender.join().expect("the sender");
        (killed.elapsed(), carrying)
    });
    relays[carrying].wait_exit();
    eprintln!(
        "{}",
        serde_json::json!({"lab": "relay died mid-transfer: the megabyte arrived after",
            "new_address_used_after_ms": [since_kill.as_secs_f64() * 1e3]})
    );
}
