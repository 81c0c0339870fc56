//! The NAT matrix: two devices, each directly on the internet or behind one of four kinds
//! of NAT (RFC 4787: full cone, address-restricted, port-restricted, symmetric; nftables
//! recipes in `support::lab`), every unordered pair of the five, both paired with a public
//! host that both reach.
//!
//! Each pair delivers a message by the path its NATs allow: direct, or relayed by the
//! public host when one side maps each destination apart and the other filters by port
//! too (port prediction is not built). Then the public host dies and both NATs reboot
//! (their connection tables flushed, mid-session): the pairs that had a direct path keep
//! talking with no third device (each calls the other where it last saw it, which opens
//! its own filter for the other's call); the others are not reached, and `netcheck` says
//! why.
//!
//! Each pair prints a JSON line for `bench/lab`: from pairing to the first delivery, and
//! to the direct path. Needs root: skipped with a message otherwise, a failure under CI.

mod support;

use std::time::{Duration, Instant};

use support::lab::{device_in, Lab, Nat};
use support::{pair, wait_until, Device, Root};

/// Whether devices behind `a` and `b` make a direct path: unless one side maps each
/// destination apart (its port for the other is unknown) and the other lets in only the
/// exact address and port it sent to.
fn direct_between(a: Nat, b: Nat) -> bool {
    !matches!(
        (a, b),
        (Nat::Symmetric, Nat::Symmetric | Nat::PortRestricted) | (Nat::PortRestricted, Nat::Symmetric)
    )
}

/// Sends a note from `from` to `to`, retrying until `to` is in `from`'s roster; returns
/// once it is delivered (`send` waits for the acknowledgement).
fn deliver(from: &Device, to: &Device, text: &str) {
    wait_until(&format!("{} knows {}", from.name, to.name), || {
        from.member_view(to)["name"] == to.name.as_str()
    });
    let sent = from.json(&["send", &to.name, "lab.note", text]);
    assert_eq!(sent["delivered"], true, "{sent}");
}

/// Whether `a` and `b` show each other on `path` (`direct` or `indirect`). Devices with
/// public addresses share the internet's subnet here: `lan` is direct too.
fn both_on(a: &Device, b: &Device, path: &str) -> bool {
    let on = |p: &serde_json::Value| p == path || (path == "direct" && p == "lan");
    on(&a.member_view(b)["path"]) && on(&b.member_view(a)["path"])
}

/// Why `observer`'s `netcheck` says `other` is reached the way it is.
fn why(observer: &Device, other: &Device) -> String {
    let check = observer.json(&["netcheck"]);
    let id = other.id();
    check["peers"]
        .as_array()
        .and_then(|peers| peers.iter().find(|p| p["id"] == id.as_str()))
        .and_then(|peer| peer["why"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e4).round() / 10.0
}

/// One pair of the matrix: `a` behind `nat_a`, `b` behind `nat_b`.
fn nat_pair(nat_a: Nat, nat_b: Nat) {
    let Some(mut lab) = Lab::new(&format!("NAT matrix {nat_a:?} and {nat_b:?}")) else {
        return;
    };
    let (public_ns, internet) = (lab.namespace("public"), lab.namespace("internet"));
    lab.switch(&internet, "wan", "203.0.113.1/24");
    lab.plug((&internet, "wan"), (&public_ns, "eth0", "203.0.113.10/24"));
    let (router_a, a_ns) = lab.behind(&internet, "a", "203.0.113.21", "192.0.2", nat_a);
    let (router_b, b_ns) = lab.behind(&internet, "b", "203.0.113.22", "198.51.100", nat_b);
    let root = Root::new();
    let mut public = device_in(&root, "public", &public_ns);
    let (a, b) = (device_in(&root, "a", &a_ns), device_in(&root, "b", &b_ns));
    pair(&public, &a);
    pair(&public, &b);
    let paired = Instant::now();
    deliver(&a, &b, "first");
    let first = paired.elapsed();
    let direct = direct_between(nat_a, nat_b);
    let path = if direct { "direct" } else { "indirect" };
    let deadline = Instant::now() + support::DEADLINE;
    while !both_on(&a, &b, path) {
        let views = (a.member_view(&b), b.member_view(&a));
        assert!(Instant::now() < deadline, "a and b never {path}: {views:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let settled = paired.elapsed();
    if !direct {
        assert_eq!(a.member_view(&b)["via"], public.id().as_str());
        deliver(&b, &a, "back through the public host");
    }
    // No third device any more, and both NATs forget every mapping.
    public.signal("KILL");
    public.wait_exit();
    let rebooted = Instant::now();
    for router in [&router_a, &router_b].into_iter().flatten() {
        lab.reboot_nat(router);
    }
    if direct {
        deliver(&a, &b, "after the NAT reboot");
        deliver(&b, &a, "and back");
        assert!(
            both_on(&a, &b, "direct"),
            "{} {}",
            a.member_view(&b),
            b.member_view(&a)
        );
    } else {
        wait_until("a and b not reached", || {
            a.member_view(&b)["state"] == "unreachable" && b.member_view(&a)["state"] == "unreachable"
        });
        // Neither knows the other's NAT (a mapping per destination shows only to two
        // peers reached directly): each says what it tried.
        for (observer, other) in [(&a, &b), (&b, &a)] {
            let why = why(observer, other);
            assert!(
                why.starts_with("not reached, directly or through any device: "),
                "{why}"
            );
        }
    }
    eprintln!(
        "{}",
        serde_json::json!({"lab": "NAT matrix", "pair": [format!("{nat_a:?}"), format!("{nat_b:?}")],
            "path": path, "first_delivery_ms": millis(first), "path_settled_ms": millis(settled),
            "after_nat_reboot_ms": millis(rebooted.elapsed())})
    );
}

/// A test per unordered pair of the five kinds.
macro_rules! matrix {
    ($($test:ident: $a:ident and $b:ident,)*) => {
        $(
            #[test]
            fn $test() {
                nat_pair(Nat::$a, Nat::$b);
            }
        )*
    };
}

matrix! {
    none_and_none: None and None,
    none_and_full_cone: None and FullCone,
    none_and_address_restricted: None and AddressRestricted,
    none_and_port_restricted: None and PortRestricted,
    none_and_symmetric: None and Symmetric,
    full_cone_and_full_cone: FullCone and FullCone,
    full_cone_and_address_restricted: FullCone and AddressRestricted,
    full_cone_and_port_restricted: FullCone and PortRestricted,
    full_cone_and_symmetric: FullCone and Symmetric,
    address_restricted_and_address_restricted: AddressRestricted and AddressRestricted,
    address_restricted_and_port_restricted: AddressRestricted and PortRestricted,
    address_restricted_and_symmetric: AddressRestricted and Symmetric,
    port_restricted_and_port_restricted: PortRestricted and PortRestricted,
    port_restricted_and_symmetric: PortRestricted and Symmetric,
    symmetric_and_symmetric: Symmetric and Symmetric,
}
