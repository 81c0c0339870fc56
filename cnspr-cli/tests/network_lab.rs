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

use support::lab::Lab;
use support::{pair, wait_until, Device, Root};

/// Every device of the lab listens on this port of every address it has.
const PORT: u16 = 3030;
const LISTEN: &str = "0.0.0.0:3030";

fn trials() -> usize {
    std::env::var("CNSPR_LAB_TRIALS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// A device of the lab: initialised, started inside `ns` on [`LISTEN`].
fn device_in(root: &Root, name: &str, ns: &str) -> Device {
    let mut device = Device::new(root, name);
    device.netns = Some(ns.to_owned());
    device.start_on(&[LISTEN]);
    device
}

/// Where `observer` last reached the device called `name`, and whether it is active.
fn seen_at(observer: &Device, name: &str) -> Option<(String, String)> {
    let member = observer.members().into_iter().find(|m| m["name"] == name)?;
    Some((
        member["address"].as_str()?.to_owned(),
        member["state"].as_str()?.to_owned(),
    ))
}

/// Waits until `observer` has the device called `name` active at `address`; returns how
/// long that took from `since`, polling every 10 ms.
fn until_active_at(observer: &Device, name: &str, address: &str, since: Instant) -> Duration {
    let wanted = Some((address.to_owned(), "active".to_owned()));
    while seen_at(observer, name) != wanted {
        assert!(
            since.elapsed() < support::DEADLINE,
            "{} never saw {name} active at {address}: {:?}",
            observer.name,
            seen_at(observer, name)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    since.elapsed()
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
    let (desk_ns, laptop_ns) = (lab.namespace("desk"), lab.namespace("laptop"));
    lab.cable(
        (&desk_ns, "eth0", Some("198.51.100.1/24")),
        (&laptop_ns, "eth0", Some("198.51.100.2/24")),
    );
    let root = Root::new();
    let desk = device_in(&root, "desk", &desk_ns);
    let laptop = device_in(&root, "laptop", &laptop_ns);
    pair(&desk, &laptop);
    until_active_at(&desk, "laptop", &format!("198.51.100.2:{PORT}"), Instant::now());
    let mut moved = Vec::new();
    for trial in 0..trials() {
        // The new lease comes, then the old one goes: as DHCP renumbers a link.
        let (old, new) = (2 + (trial % 2) * 100, 102 - (trial % 2) * 100);
        let started = Instant::now();
        lab.run(
            &laptop_ns,
            &[
                "ip",
                "address",
                "add",
                &format!("198.51.100.{new}/24"),
                "dev",
                "eth0",
            ],
        );
        lab.run(
            &laptop_ns,
            &[
                "ip",
                "address",
                "del",
                &format!("198.51.100.{old}/24"),
                "dev",
                "eth0",
            ],
        );
        let address = format!("198.51.100.{new}:{PORT}");
        moved.push(until_active_at(&desk, "laptop", &address, started));
        delivers(&desk, "laptop", &format!("after move {trial}"));
    }
    report("renumbered on its link", &moved);
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
    assert!(
        log.contains("network changed"),
        "the laptop saw no network change"
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
