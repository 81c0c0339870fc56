//! A device's life with real processes: pairing, failure, graceful stop, sleep and
//! restart, as the other devices see it through `cnspr members`.

mod support;

use support::{mesh, stderr, wait_until, Device, Root};

#[test]
fn crash_restart_and_stop_are_seen_by_the_others() {
    let root = Root::new();
    let mut devices = mesh(&root, &["desk", "laptop", "phone"]);
    let phone_id = devices[2].id();

    // kill -9: no goodbye, so the others must detect it.
    devices[2].signal("KILL");
    devices[2].wait_exit();
    for observer in &devices[..2] {
        wait_until(&format!("{} shows phone unreachable", observer.name), || {
            observer.state_of("phone").as_deref() == Some("unreachable")
        });
    }

    // Restarted from the same files: same identity, taken back.
    devices[2].start();
    assert_eq!(devices[2].id(), phone_id, "a restart keeps the identity");
    support::wait_all_active(&devices);

    // cnspr stop: a goodbye, so the others show `left`, not `unreachable`.
    let stopped = devices[1].run(&["stop"]);
    assert!(stopped.status.success(), "{}", support::stderr(&stopped));
    devices[1].wait_exit();
    for observer in [&devices[0], &devices[2]] {
        wait_until(&format!("{} shows laptop left", observer.name), || {
            observer.state_of("laptop").as_deref() == Some("left")
        });
    }
    // The stopped daemon removed its socket: the CLI says plainly that none runs.
    let members = devices[1].run(&["members"]);
    assert_eq!(members.status.code(), Some(1));
    assert!(
        support::stderr(&members).contains("not running"),
        "{}",
        support::stderr(&members)
    );
}

#[test]
fn a_device_asleep_is_suspected_then_taken_back_when_it_wakes() {
    let root = Root::new();
    let devices = mesh(&root, &["desk", "laptop"]);
    devices[1].signal("STOP");
    wait_until("desk no longer shows the sleeping laptop active", || {
        matches!(
            devices[0].state_of("laptop").as_deref(),
            Some("suspect" | "unreachable")
        )
    });
    devices[1].signal("CONT");
    wait_until("desk shows laptop active again", || {
        devices[0].state_of("laptop").as_deref() == Some("active")
    });
    wait_until("laptop shows desk active again", || {
        devices[1].state_of("desk").as_deref() == Some("active")
    });
}

#[test]
fn sigterm_is_a_graceful_leave() {
    let root = Root::new();
    let mut devices = mesh(&root, &["desk", "laptop"]);
    devices[1].signal("TERM");
    devices[1].wait_exit();
    wait_until("desk shows laptop left", || {
        devices[0].state_of("laptop").as_deref() == Some("left")
    });
    assert!(
        !devices[1].socket().exists(),
        "the socket file is removed on exit"
    );
}

#[test]
fn ping_measures_round_trips_through_the_mesh() {
    let root = Root::new();
    let devices = mesh(&root, &["desk", "laptop"]);
    let output = devices[0].run(&["--json", "ping", "laptop", "--count", "2"]);
    assert!(output.status.success(), "{}", support::stderr(&output));
    let answers: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON answer per line"))
        .collect();
    assert_eq!(answers.len(), 2);
    assert!(answers
        .iter()
        .all(|a| a["rtt_ms"].as_f64().is_some_and(|ms| ms > 0.0)));
    let unknown = devices[0].run(&["ping", "nobody", "--count", "1"]);
    assert_eq!(unknown.status.code(), Some(1));
}

#[test]
fn a_lone_device_lists_itself() {
    let root = Root::new();
    let device = Device::started(&root, "desk");
    let members = device.members();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0]["self"], true);
    assert_eq!(members[0]["name"], "desk");
}

#[test]
fn sighup_reloads_the_name_and_the_mesh_learns_it() {
    let root = Root::new();
    let devices = mesh(&root, &["desk", "laptop"]);
    std::fs::write(devices[0].home.join("config.toml"), "name = \"study\"\n").expect("config");
    devices[0].signal("HUP");
    wait_until("desk calls itself study", || {
        devices[0].json(&["status"])["name"] == "study"
    });
    wait_until("laptop knows desk as study", || {
        devices[1].state_of("study").as_deref() == Some("active")
    });
}

#[test]
fn a_name_taken_twice_is_shown_unique_everywhere() {
    let root = Root::new();
    let devices = mesh(&root, &["desk", "laptop", "phone"]);
    // The phone takes the laptop's name: the laptop claimed it first (fewer renames).
    std::fs::write(devices[2].home.join("config.toml"), "name = \"laptop\"\n").expect("config");
    devices[2].signal("HUP");
    let phone_as_shown = format!("laptop#{}", &devices[2].id()[..7]);
    for device in &devices {
        wait_until(
            &format!("{} shows the phone as {phone_as_shown}", device.name),
            || {
                let names: Vec<String> = device
                    .members()
                    .iter()
                    .filter_map(|m| m["name"].as_str().map(str::to_owned))
                    .collect();
                names.contains(&phone_as_shown) && names.iter().filter(|n| *n == "laptop").count() == 1
            },
        );
    }
    // A name reaches one device; the shown one reaches the other.
    let pinged = |given: &str| -> String {
        let output = devices[0].json(&["ping", given, "--count", "1"]);
        output["peer"].as_str().unwrap_or_default().to_owned()
    };
    assert_eq!(pinged("laptop"), devices[1].id());
    assert_eq!(pinged(&phone_as_shown), devices[2].id());
    // A name that reads as a device ID is refused at start.
    std::fs::write(
        devices[2].home.join("config.toml"),
        format!("name = \"{}\"\n", devices[1].id()),
    )
    .expect("config");
    let refused = devices[2].run(&["config"]);
    assert!(
        stderr(&refused).contains("not a device ID"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn ipv6_and_ipv4_sockets_side_by_side() {
    if std::net::UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("skipped: this machine has no IPv6 loopback");
        return;
    }
    let root = Root::new();
    let mut desk = Device::new(&root, "desk");
    desk.start_on(&["127.0.0.1:0", "[::1]:0"]);
    let listening = desk.json(&["interfaces"])["listening"].clone();
    assert_eq!(listening.as_array().map(Vec::len), Some(2), "{listening}");
    let mut laptop = Device::new(&root, "laptop");
    laptop.start_on(&["[::1]:0"]);
    support::pair(&desk, &laptop);
    let devices = [desk, laptop];
    support::wait_all_active(&devices);
    let laptop_seen = devices[0]
        .members()
        .into_iter()
        .find(|m| m["name"] == "laptop")
        .expect("listed");
    assert!(
        laptop_seen["address"]
            .as_str()
            .is_some_and(|a| a.starts_with("[::1]")),
        "{laptop_seen}"
    );
}

#[test]
fn invite_can_draw_a_qr_code() {
    let root = Root::new();
    let device = Device::started(&root, "desk");
    let output = device.run(&["invite", "--qr"]);
    assert!(output.status.success());
    let token = String::from_utf8_lossy(&output.stdout);
    assert!(
        token.trim().starts_with("CNSPR1") && token.lines().count() == 1,
        "{token}"
    );
    let drawing = support::stderr(&output);
    assert!(drawing.contains('█') || drawing.contains('▀'), "{drawing}");
}
