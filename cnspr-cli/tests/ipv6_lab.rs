//! IPv6 where it exists: two homes with a routed IPv6 prefix each behind a stateful
//! firewall (only answers to what the LAN sent get in), their IPv4 behind NATs, both
//! paired with a public host on IPv4 and IPv6. The firewalls are punched as NATs are:
//! each side calls the other's global address, which opens its own filter for the
//! other's call. Where IPv4 has no direct path (NATs that map each destination apart),
//! that is the only one; where it has (full-cone NATs), IPv6 is taken first.
//!
//! Each case prints a JSON line for `bench/lab`. Needs root: skipped with a message
//! otherwise, a failure under CI.

mod support;

use std::time::{Duration, Instant};

use support::lab::{device_listening, Lab, Nat, LISTEN, LISTEN_V6};
use support::{pair, wait_until, Device, Root};

/// Whether `observer` reaches `other` directly at one of the other's global IPv6
/// addresses (`2001:db8:…`).
fn direct_over_ipv6(observer: &Device, other: &Device) -> bool {
    let view = observer.member_view(other);
    let path = &view["path"];
    let on_ipv6 = view["address"]
        .as_str()
        .is_some_and(|a| a.starts_with("[2001:db8:"));
    (path == "direct" || path == "lan") && on_ipv6
}

/// Two dual-stack homes whose IPv4 goes through `nat` each, and a public host: returns
/// once messages went both ways, and both see each other directly over IPv6.
fn dual_stack_homes(nat: Nat) {
    let Some(mut lab) = Lab::new(&format!("IPv6 behind stateful firewalls, IPv4 {nat:?}")) else {
        return;
    };
    let (public_ns, internet) = (lab.namespace("public"), lab.namespace("internet"));
    lab.router(&internet);
    lab.switch(&internet, "wan", "203.0.113.1/24");
    lab.ipv6(&internet, "wan", "2001:db8:0:1::1/64", None);
    lab.plug((&internet, "wan"), (&public_ns, "eth0", "203.0.113.10/24"));
    lab.ipv6(&public_ns, "eth0", "2001:db8:0:1::10/64", Some("2001:db8:0:1::1"));
    let (router_a, a_ns) = lab.behind(&internet, "a", "203.0.113.21", "192.0.2", nat);
    let (router_b, b_ns) = lab.behind(&internet, "b", "203.0.113.22", "198.51.100", nat);
    let (router_a, router_b) = (router_a.expect("a router"), router_b.expect("a router"));
    let gateway = (internet.as_str(), "2001:db8:0:1::1");
    lab.ipv6_home(gateway, &router_a, &a_ns, "2001:db8:0:1::21", "2001:db8:a");
    lab.ipv6_home(gateway, &router_b, &b_ns, "2001:db8:0:1::22", "2001:db8:b");
    let root = Root::new();
    let both = [LISTEN, LISTEN_V6];
    let public = device_listening(&root, "public", &public_ns, &both);
    let a = device_listening(&root, "a", &a_ns, &both);
    let b = device_listening(&root, "b", &b_ns, &both);
    pair(&public, &a);
    pair(&public, &b);
    let paired = Instant::now();
    wait_until("a knows b by name", || a.member_view(&b)["name"] == "b");
    let sent = a.json(&["send", "b", "lab.note", "over IPv6"]);
    assert_eq!(sent["delivered"], true, "{sent}");
    let first = paired.elapsed();
    let deadline = Instant::now() + support::DEADLINE;
    while !(direct_over_ipv6(&a, &b) && direct_over_ipv6(&b, &a)) {
        let views = (a.member_view(&b), b.member_view(&a));
        assert!(
            Instant::now() < deadline,
            "a and b never direct over IPv6: {views:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let settled = paired.elapsed();
    let back = b.json(&["send", "a", "lab.note", "and back"]);
    assert_eq!(back["delivered"], true, "{back}");
    assert!(direct_over_ipv6(&a, &b), "{}", a.member_view(&b));
    eprintln!(
        "{}",
        serde_json::json!({"lab": "IPv6", "ipv4_nat": format!("{nat:?}"),
            "first_delivery_ms": (first.as_secs_f64() * 1e4).round() / 10.0,
            "direct_over_ipv6_ms": (settled.as_secs_f64() * 1e4).round() / 10.0})
    );
}

/// IPv4 has no direct path (a mapping per destination on both sides): the only one is
/// through the two IPv6 firewalls.
#[test]
fn two_stateful_ipv6_firewalls_are_punched_where_ipv4_only_relays() {
    dual_stack_homes(Nat::Symmetric);
}

/// IPv4 would go direct too (full-cone NATs): IPv6 is taken first.
#[test]
fn ipv6_is_the_path_where_ipv4_works_as_well() {
    dual_stack_homes(Nat::FullCone);
}
