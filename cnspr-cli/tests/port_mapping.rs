//! Port mapping on a home router: the desk at home asks its router (NAT-PMP here, after a
//! PCP request the router leaves unanswered; `support/nat_pmp_gateway.py`, which installs
//! each mapping as a real nftables `dnat`) for a public port, and its invites and address
//! record carry the address. A laptop at a cafe, behind a NAT of its own, pairs with it
//! and reaches it with no third device, and again when it arrives anew through the
//! mapping alone; the mapping is renewed, and deleted when the desk stops. Needs root:
//! skipped with a message otherwise.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Instant;

use support::lab::{device_in, until_active_at, Lab, LISTEN};
use support::{pair, wait_until, Device, Root};

/// The home router's NAT-PMP server, killed on drop.
struct Gateway(Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the NAT-PMP server in the router `ns` (LAN 192.0.2.1, WAN `wan` at
/// 203.0.113.21, lifetimes of a minute at most) and waits until it listens.
fn gateway_in(ns: &str, root: &Root) -> Gateway {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/nat_pmp_gateway.py");
    let log_path = root.0.join("gateway.log");
    let log = std::fs::File::create(&log_path).expect("gateway log");
    let child = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "python3",
            script,
            "192.0.2.1",
            "wan",
            "203.0.113.21",
            "60",
        ])
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .stdin(Stdio::null())
        .spawn()
        .expect("the gateway starts");
    let gateway = Gateway(child);
    wait_until("the gateway listens", || {
        std::fs::read_to_string(&log_path).is_ok_and(|text| text.starts_with("ready"))
    });
    gateway
}

/// The router's port-mapping rules, as nftables lists them.
fn mappings(ns: &str) -> String {
    let listed = Command::new("ip")
        .args([
            "netns",
            "exec",
            ns,
            "nft",
            "list",
            "chain",
            "ip",
            "portmap",
            "prerouting",
        ])
        .output()
        .expect("nft runs");
    String::from_utf8_lossy(&listed.stdout).into_owned()
}

/// What `device`'s `netcheck` says of its port mapping.
fn port_mapping(device: &Device) -> serde_json::Value {
    device.json(&["netcheck"])["port_mapping"].clone()
}

/// The requests the lab's gateway logged, in order, in hex.
fn requests(root: &Root) -> Vec<String> {
    let log = std::fs::read_to_string(root.0.join("gateway.log")).unwrap_or_default();
    log.lines()
        .filter_map(|l| l.split_once(' ').map(|(_, hex)| hex.to_owned()))
        .collect()
}

#[test]
fn a_laptop_at_a_cafe_reaches_the_desk_at_home_through_its_routers_port_mapping() {
    let Some(mut lab) = Lab::new("port mapping") else {
        return;
    };
    let internet = lab.namespace("internet");
    lab.switch(&internet, "wan", "203.0.113.1/24");
    let (home, desk_ns) = lab.home(&internet, "desk", "203.0.113.21", "192.0.2");
    let (_cafe, laptop_ns) = lab.home(&internet, "laptop", "203.0.113.22", "198.51.100");
    let root = Root::new();
    let _gateway = gateway_in(&home, &root);
    let started = Instant::now();
    let mut desk = device_in(&root, "desk", &desk_ns);
    wait_until("the desk's port is mapped", || {
        let view = port_mapping(&desk);
        view["state"] == "mapped" && view["external"] == "203.0.113.21:3030"
    });
    let mapped = started.elapsed();
    assert_eq!(port_mapping(&desk)["protocol"], "nat-pmp");
    assert!(
        mappings(&home).contains("dnat to 192.0.2.2:3030"),
        "{}",
        mappings(&home)
    );
    let text = String::from_utf8_lossy(&desk.run(&["netcheck"]).stdout).into_owned();
    assert!(
        text.contains("203.0.113.21:3030 by gateway 192.0.2.1 (nat-pmp"),
        "{text}"
    );
    // No third device: the invite names the mapping, which the cafe reaches.
    let mut laptop = device_in(&root, "laptop", &laptop_ns);
    pair(&desk, &laptop);
    until_active_at(&laptop, "desk", "203.0.113.21:3030", Instant::now());
    let sent = laptop.json(&["send", "desk", "lab.note", "from the cafe"]);
    assert_eq!(sent["delivered"], true, "{sent}");
    let sent = desk.json(&["send", "laptop", "lab.note", "from home"]);
    assert_eq!(sent["delivered"], true, "{sent}");
    // The laptop arrives anew (stopped, started again, as after a sleep): it finds the
    // desk at the mapping from its address record. The home router has forgotten every
    // flow meanwhile: only the mapping lets the laptop in.
    assert!(laptop.run(&["stop"]).status.success());
    laptop.wait_exit();
    lab.reboot_nat(&home);
    let arrived = Instant::now();
    laptop.start_on(&[LISTEN]);
    let reached = until_active_at(&laptop, "desk", "203.0.113.21:3030", arrived);
    eprintln!(
        "{}",
        serde_json::json!({"lab": "port mapping: the laptop at the cafe reaches the desk, after arriving",
            "new_address_used_after_ms": [reached.as_secs_f64() * 1e3], "mapped_after_start_ms": mapped.as_secs_f64() * 1e3})
    );
    // Granted a minute, the mapping is renewed after half of it.
    let maps = || {
        let requests = requests(&root);
        requests
            .iter()
            .filter(|r| r.starts_with("0001") && !r.ends_with("00000000"))
            .count()
    };
    wait_until("the mapping is renewed", || maps() >= 2);
    assert_eq!(port_mapping(&desk)["external"], "203.0.113.21:3030");
    // The desk stops: the router's mapping goes with it.
    assert!(desk.run(&["stop"]).status.success());
    desk.wait_exit();
    assert!(!mappings(&home).contains("192.0.2.2"), "{}", mappings(&home));
    // What the router was asked, in order: PCP's MAP first (version 2, opcode 1), then
    // NAT-PMP's UDP mapping (version 0, opcode 1), and its delete (lifetime 0) last.
    let requests = requests(&root);
    let log = requests.join("\n");
    let first_nat_pmp = requests.iter().position(|r| r.starts_with("0001"));
    let first_pcp = requests.iter().position(|r| r.starts_with("0201"));
    assert!(first_pcp.is_some() && first_pcp < first_nat_pmp, "{log}");
    assert!(
        requests
            .last()
            .is_some_and(|r| r.starts_with("0001") && r.ends_with("00000000")),
        "{log}"
    );
}
