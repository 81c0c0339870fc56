//! A network lab for the daemon tests: network namespaces joined by veth pairs, with real
//! kernel routing between them. Every namespace of a run is named `cnl-<pid>-<n>-<name>`,
//! so that a run sweeps what killed runs left behind (their process is gone) and never
//! touches another live run's. Everything is removed on drop, on every exit path a test
//! has (a failed assertion unwinds through it).
//!
//! Namespaces need root: [`Lab::new`] says so and gives `None` otherwise, except under CI
//! (`CI=true`), which runs as root, where that is a failure.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

static NEXT_LAB: AtomicUsize = AtomicUsize::new(0);

/// What namespace names of this project's labs start with.
const PREFIX: &str = "cnl-";

/// The kinds of NAT in front of a device, in RFC 4787's terms (mapping; filtering).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nat {
    /// A public address, no filter.
    None,
    /// Endpoint-independent mapping and filtering.
    FullCone,
    /// Endpoint-independent mapping; address-dependent filtering.
    AddressRestricted,
    /// Endpoint-independent mapping; address-and-port-dependent filtering (a Linux
    /// router's own NAT, which keeps the source port).
    PortRestricted,
    /// A mapping per destination (a random port each); address-and-port-dependent
    /// filtering.
    Symmetric,
}

/// Every device of a lab listens on this port of every address it has.
pub const LISTEN: &str = "0.0.0.0:3030";

/// The same port on every IPv6 address, for the devices of a lab that has IPv6.
pub const LISTEN_V6: &str = "[::]:3030";

/// A device of a lab: initialised, started inside `ns` on [`LISTEN`].
pub fn device_in(root: &super::Root, name: &str, ns: &str) -> super::Device {
    device_listening(root, name, ns, &[LISTEN])
}

/// A device of a lab: initialised, started inside `ns` on `addresses`.
pub fn device_listening(root: &super::Root, name: &str, ns: &str, addresses: &[&str]) -> super::Device {
    let mut device = super::Device::new(root, name);
    device.netns = Some(ns.to_owned());
    device.start_on(addresses);
    device
}

/// Where `observer` last reached the device called `name`, and whether it is active.
pub fn seen_at(observer: &super::Device, name: &str) -> Option<(String, String)> {
    let member = observer.members().into_iter().find(|m| m["name"] == name)?;
    Some((
        member["address"].as_str()?.to_owned(),
        member["state"].as_str()?.to_owned(),
    ))
}

/// Waits until `observer` has the device called `name` active at `address`; returns how
/// long that took from `since`, polling every 10 ms.
pub fn until_active_at(
    observer: &super::Device,
    name: &str,
    address: &str,
    since: std::time::Instant,
) -> std::time::Duration {
    let wanted = Some((address.to_owned(), "active".to_owned()));
    while seen_at(observer, name) != wanted {
        assert!(
            since.elapsed() < super::DEADLINE,
            "{} never saw {name} active at {address}: {:?}",
            observer.name,
            seen_at(observer, name)
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    since.elapsed()
}

/// Namespaces made for one test, removed on drop.
pub struct Lab {
    /// `cnl-<pid>-<n>-`: what this lab's namespace names start with.
    stem: String,
    namespaces: Vec<String>,
    /// Switch ports made so far (each has its own name).
    ports: usize,
}

impl Lab {
    /// A new, empty lab; `None` when not root (outside CI), with a message.
    pub fn new(test: &str) -> Option<Self> {
        if !super::is_root() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{test} needs root (network namespaces), and CI runs as root"
            );
            eprintln!("skipped {test}: network namespaces need root");
            return None;
        }
        install_tools();
        sweep_leftovers();
        let n = NEXT_LAB.fetch_add(1, Ordering::Relaxed);
        Some(Self {
            stem: format!("{PREFIX}{}-{n}-", std::process::id()),
            namespaces: Vec::new(),
            ports: 0,
        })
    }

    /// A new namespace with its loopback up; returns its full name. A secondary address
    /// takes over when the primary one of its subnet goes, as systemd sets every machine
    /// up (the kernel's own default removes it too).
    pub fn namespace(&mut self, name: &str) -> String {
        let full = format!("{}{name}", self.stem);
        ip(&["netns", "add", &full]);
        self.namespaces.push(full.clone());
        self.run(&full, &["ip", "link", "set", "lo", "up"]);
        for scope in ["all", "default"] {
            let key = format!("net.ipv4.conf.{scope}.promote_secondaries=1");
            self.run(&full, &["sysctl", "-qw", &key]);
        }
        full
    }

    /// A cable: a veth pair between two namespaces, each end named `interface` there,
    /// up and with its address (`198.51.100.1/24`; `None`: no address yet).
    pub fn cable(&self, a: (&str, &str, Option<&str>), b: (&str, &str, Option<&str>)) {
        let ((a_ns, a_if, a_address), (b_ns, b_if, b_address)) = (a, b);
        ip(&[
            "-n", a_ns, "link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", b_ns,
        ]);
        for (ns, interface, address) in [(a_ns, a_if, a_address), (b_ns, b_if, b_address)] {
            if let Some(address) = address {
                ip(&["-n", ns, "address", "add", address, "dev", interface]);
            }
            ip(&["-n", ns, "link", "set", interface, "up"]);
        }
    }

    /// A switch: a bridge `name` in `ns`, up, with `address` (the router's side of a LAN).
    pub fn switch(&self, ns: &str, name: &str, address: &str) {
        ip(&["-n", ns, "link", "add", name, "type", "bridge"]);
        ip(&["-n", ns, "address", "add", address, "dev", name]);
        ip(&["-n", ns, "link", "set", name, "up"]);
    }

    /// Plugs a device into the switch `bridge` of `switch_ns`: a cable whose far end is
    /// `interface` in `ns` with `address`, and whose near end is a port of the bridge.
    pub fn plug(&mut self, (switch_ns, bridge): (&str, &str), (ns, interface, address): (&str, &str, &str)) {
        self.ports += 1;
        let port = format!("port{}", self.ports);
        self.cable((switch_ns, &port, None), (ns, interface, Some(address)));
        ip(&["-n", switch_ns, "link", "set", &port, "master", bridge]);
    }

    /// Makes `ns` a home router in front of its `lan` interface: IPv4 forwarding, every
    /// connection from the LAN masqueraded behind the address of `wan`, and a stateful
    /// filter that lets in only what answers a connection from inside (nftables), to the
    /// LAN and to the router itself. (A router that took in a datagram to itself at a
    /// port a LAN device uses would hold that port in its connection table, and the
    /// device's own flow to that sender would get another port.)
    pub fn home_router(&self, ns: &str, lan: &str, wan: &str) {
        self.router(ns);
        let rules = format!(
            r#"
table ip nat {{
    chain postrouting {{
        type nat hook postrouting priority 100
        oifname "{wan}" masquerade
    }}
}}
table inet filter {{
    chain forward {{
        type filter hook forward priority 0; policy drop
        ct state established,related accept
        iifname "{lan}" accept
    }}
    chain input {{
        type filter hook input priority 0; policy accept
        iifname "{wan}" ct state established,related accept
        iifname "{wan}" drop
    }}
}}
"#
        );
        self.nft(ns, &rules);
    }

    /// A home on the switch `wan` of `internet`: a router (namespace `<name>-router`) at
    /// `wan_address` with NAT and a stateful filter ([`Lab::home_router`]) in front of a
    /// LAN `<lan>.0/24`, and one device (namespace `name`) at `<lan>.2` whose default
    /// route is the router at `<lan>.1`. Returns the router's and the device's namespaces.
    pub fn home(&mut self, internet: &str, name: &str, wan_address: &str, lan: &str) -> (String, String) {
        let router = self.namespace(&format!("{name}-router"));
        let ns = self.namespace(name);
        self.plug((internet, "wan"), (&router, "wan", &format!("{wan_address}/24")));
        self.cable(
            (&router, "lan", Some(&format!("{lan}.1/24"))),
            (&ns, "eth0", Some(&format!("{lan}.2/24"))),
        );
        self.home_router(&router, "lan", "wan");
        self.run(
            &ns,
            &["ip", "route", "add", "default", "via", &format!("{lan}.1")],
        );
        (router, ns)
    }

    /// Turns the home router `ns` into a carrier-grade NAT: every flow out of `wan` gets a
    /// random port (`masquerade random`), so each destination sees another mapping
    /// (endpoint-dependent, "symmetric").
    pub fn carrier_nat(&self, ns: &str, wan: &str) {
        let rules = format!("flush chain ip nat postrouting\nadd rule ip nat postrouting oifname \"{wan}\" masquerade random\n");
        self.nft(ns, &rules);
    }

    /// A device's namespace `name` on the switch `wan` of `internet` at `wan_address`:
    /// directly ([`Nat::None`]), or at `<lan>.2` behind a home router of the `nat` kind
    /// at that address ([`Lab::home`]). Returns the router's namespace, if any, and the
    /// device's.
    pub fn behind(
        &mut self,
        internet: &str,
        name: &str,
        wan_address: &str,
        lan: &str,
        nat: Nat,
    ) -> (Option<String>, String) {
        if nat == Nat::None {
            let ns = self.namespace(name);
            self.plug((internet, "wan"), (&ns, "eth0", &format!("{wan_address}/24")));
            return (None, ns);
        }
        let (router, ns) = self.home(internet, name, wan_address, lan);
        let host = format!("{lan}.2");
        match nat {
            Nat::FullCone => self.cone_nat(&router, "wan", &host, false),
            Nat::AddressRestricted => self.cone_nat(&router, "wan", &host, true),
            Nat::Symmetric => self.carrier_nat(&router, "wan"),
            Nat::None | Nat::PortRestricted => {}
        }
        (Some(router), ns)
    }

    /// Makes the home router `ns` (in front of the one device `host` on its LAN) a cone
    /// NAT (RFC 4787): its mapping stays endpoint-independent (Linux keeps the source
    /// port), and a datagram from outside to a port the device has sent from within five
    /// minutes (a mapping) reaches it there, from anyone (`restricted` false: full cone)
    /// or from an address it sent to from that port (address-restricted). The
    /// port-restricted cone is the plain [`Lab::home_router`], the symmetric one
    /// [`Lab::carrier_nat`].
    fn cone_nat(&self, ns: &str, wan: &str, host: &str, restricted: bool) {
        let admit = if restricted {
            "ip saddr . udp dport @contacted"
        } else {
            "udp dport @mapped"
        };
        let rules = format!(
            r#"
table ip cone {{
    set mapped {{ type inet_service; flags dynamic, timeout; timeout 5m; }}
    set contacted {{ type ipv4_addr . inet_service; flags dynamic, timeout; timeout 5m; }}
    chain remember {{
        type filter hook forward priority -10
        oifname "{wan}" meta l4proto udp update @mapped {{ udp sport }}
        oifname "{wan}" meta l4proto udp update @contacted {{ ip daddr . udp sport }}
    }}
    chain prerouting {{
        type nat hook prerouting priority -100
        iifname "{wan}" meta l4proto udp {admit} dnat to {host}
    }}
}}
add rule inet filter forward ct status dnat accept
"#
        );
        self.nft(ns, &rules);
    }

    /// Forgets every mapping and filter opening of the router `ns`, as a NAT reboot does:
    /// its connection table, and a cone NAT's sets.
    pub fn reboot_nat(&self, ns: &str) {
        self.run(ns, &["conntrack", "-F"]);
        let cone = Command::new("ip")
            .args(["netns", "exec", ns, "nft", "list", "table", "ip", "cone"])
            .output()
            .is_ok_and(|o| o.status.success());
        if cone {
            self.run(ns, &["nft", "flush", "set", "ip", "cone", "mapped"]);
            self.run(ns, &["nft", "flush", "set", "ip", "cone", "contacted"]);
        }
    }

    /// Forwards UDP `port` arriving on `wan` of the home router `ns` to `to` (an
    /// `address:port` on its LAN), as a user sets up a port forward for a device at home.
    pub fn port_forward(&self, ns: &str, wan: &str, port: u16, to: &str) {
        let rules = format!(
            r#"
table ip nat {{
    chain prerouting {{
        type nat hook prerouting priority -100
        iifname "{wan}" udp dport {port} dnat to {to}
    }}
}}
add rule inet filter forward ct status dnat accept
"#
        );
        self.nft(ns, &rules);
    }

    /// Writes what `ns` finds in `/etc/hosts` (`ip netns exec` shows `/etc/netns/<ns>/hosts`
    /// there). Written in place, so that a process already running in `ns` reads the new
    /// text at its next lookup; write it once before starting one (the file is bound
    /// over `/etc/hosts` as the process starts).
    pub fn hosts(&self, ns: &str, text: &str) {
        let dir = std::path::Path::new("/etc/netns").join(ns);
        std::fs::create_dir_all(&dir).expect("/etc/netns/<ns>");
        std::fs::write(dir.join("hosts"), text).expect("hosts file");
    }

    /// Loads an nftables ruleset into `ns` (through a file: `nft -f`).
    pub fn nft(&self, ns: &str, rules: &str) {
        let file = std::env::temp_dir().join(format!("{ns}.nft"));
        std::fs::write(&file, rules).expect("ruleset file");
        let path = file.to_string_lossy().into_owned();
        let loaded = Command::new("ip")
            .args(["netns", "exec", ns, "nft", "-f", &path])
            .output();
        let _ = std::fs::remove_file(&file);
        let output = loaded.expect("nft runs");
        assert!(
            output.status.success(),
            "nft -f: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Renumbers `interface` of `ns` as DHCP does: the new lease comes, then the old
    /// one goes.
    pub fn renumber(&self, ns: &str, interface: &str, old: &str, new: &str) {
        self.run(ns, &["ip", "address", "add", new, "dev", interface]);
        self.run(ns, &["ip", "address", "del", old, "dev", interface]);
    }

    /// Makes `ns` a router: it forwards IPv4 and IPv6 between its interfaces.
    pub fn router(&self, ns: &str) {
        self.run(ns, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        self.run(ns, &["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
    }

    /// Gives `interface` of `ns` the IPv6 `address` (`2001:db8::2/64`), usable at once
    /// (no duplicate address detection), and the default route via `gateway`, if any.
    pub fn ipv6(&self, ns: &str, interface: &str, address: &str, gateway: Option<&str>) {
        ip(&["-n", ns, "address", "add", address, "dev", interface, "nodad"]);
        if let Some(gateway) = gateway {
            ip(&["-n", ns, "-6", "route", "add", "default", "via", gateway]);
        }
    }

    /// Gives a home made by [`Lab::home`] (or [`Lab::behind`]) a routed IPv6 prefix, as
    /// ISPs do: the router at `wan_address` on the internet's IPv6 subnet (the internet's
    /// router `internet_router` routes `prefix::/64` to it), the device at `prefix::2`.
    /// The home router's filter is stateful for IPv6 as for IPv4 (only answers to what
    /// the LAN sent get in), with neighbour discovery let in to the router itself.
    pub fn ipv6_home(&self, internet: (&str, &str), router: &str, ns: &str, wan_address: &str, prefix: &str) {
        let (internet, internet_router) = internet;
        self.ipv6(router, "wan", &format!("{wan_address}/64"), Some(internet_router));
        self.ipv6(router, "lan", &format!("{prefix}::1/64"), None);
        self.ipv6(
            ns,
            "eth0",
            &format!("{prefix}::2/64"),
            Some(&format!("{prefix}::1")),
        );
        ip(&[
            "-n",
            internet,
            "-6",
            "route",
            "add",
            &format!("{prefix}::/64"),
            "via",
            wan_address,
        ]);
        let neighbours = "insert rule inet filter input iifname \"wan\" icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept\n";
        self.nft(router, neighbours);
    }

    /// Runs `command` inside `ns`, which must succeed.
    pub fn run(&self, ns: &str, command: &[&str]) {
        let mut args = vec!["netns", "exec", ns];
        args.extend_from_slice(command);
        ip(&args);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.namespaces.drain(..).rev() {
            let _ = Command::new("ip").args(["netns", "delete", &ns]).status();
            let _ = std::fs::remove_dir_all(std::path::Path::new("/etc/netns").join(&ns));
        }
    }
}

/// Installs what the lab needs when some of it is missing (`.ci/install-lab-tools`),
/// once for all the tests of a run (they run in parallel; apt takes one at a time).
fn install_tools() {
    static INSTALLED: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    INSTALLED.get_or_init(|| {
        let missing = |tool: &str| {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output();
            !found.is_ok_and(|o| o.status.success())
        };
        if ["ip", "sysctl", "nft", "python3", "conntrack"]
            .into_iter()
            .any(missing)
        {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../.ci/install-lab-tools");
            let installed = Command::new(script).status().expect("the install script runs");
            assert!(installed.success(), "{script} failed");
        }
    });
}

/// Runs `ip ARGS`, which must succeed.
pub fn ip(args: &[&str]) {
    let output = Command::new("ip")
        .args(args)
        .output()
        .expect("ip runs (iproute2)");
    assert!(
        output.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Deletes the namespaces of runs whose process is gone (killed before their drop ran).
fn sweep_leftovers() {
    let Ok(listed) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&listed.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let pid = name.strip_prefix(PREFIX).and_then(|rest| rest.split('-').next());
        if let Some(pid) = pid {
            if !std::path::Path::new("/proc").join(pid).exists() {
                let _ = Command::new("ip").args(["netns", "delete", name]).status();
            }
        }
    }
    // Their hosts files too ([`Lab::hosts`]).
    let Ok(dirs) = std::fs::read_dir("/etc/netns") else {
        return;
    };
    for dir in dirs.flatten() {
        let name = dir.file_name().to_string_lossy().into_owned();
        let pid = name.strip_prefix(PREFIX).and_then(|rest| rest.split('-').next());
        if pid.is_some_and(|pid| !std::path::Path::new("/proc").join(pid).exists()) {
            let _ = std::fs::remove_dir_all(dir.path());
        }
    }
}
