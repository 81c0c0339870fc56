//! Pairing and revocation with real processes: the roster reaches every device, wrong,
//! used and expired invites change nothing, and a removed device is refused everywhere.

mod support;

use cnspr_proto::invite::InviteToken;
use support::{mesh, pair, stderr, wait_until, Device, Root};

#[test]
fn the_roster_reaches_devices_that_never_met_the_inviter() {
    let root = Root::new();
    let devices: Vec<Device> = ["desk", "laptop", "phone"]
        .iter()
        .map(|n| Device::started(&root, n))
        .collect();
    // A chain: laptop joins desk, phone joins laptop. Desk learns of phone from laptop.
    pair(&devices[0], &devices[1]);
    pair(&devices[1], &devices[2]);
    support::wait_all_active(&devices);
}

#[test]
fn wrong_used_and_expired_invites_change_nothing() {
    let root = Root::new();
    let desk = Device::started(&root, "desk");
    let laptop = Device::started(&root, "laptop");
    let stranger = Device::started(&root, "stranger");

    let token_text = desk.json(&["invite"])["token"]
        .as_str()
        .expect("token")
        .to_owned();
    // Wrong: the real inviter and address with a guessed secret.
    let mut forged = InviteToken::decode(&token_text).expect("valid token");
    forged.secret = [7; 32];
    let refused = stranger.run(&["join", &forged.encode()]);
    assert_eq!(refused.status.code(), Some(1), "a wrong secret is refused");
    assert!(!stderr(&refused).is_empty());

    // The failed attempt did not use the invite up.
    let joined = laptop.run(&["join", &token_text]);
    assert!(joined.status.success(), "{}", stderr(&joined));
    // Used.
    let reused = stranger.run(&["join", &token_text]);
    assert_eq!(reused.status.code(), Some(1), "a used invite is refused");

    // Expired.
    let short = desk.json(&["invite", "--ttl", "1s"])["token"]
        .as_str()
        .expect("token")
        .to_owned();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let expired = stranger.run(&["join", &short]);
    assert_eq!(expired.status.code(), Some(1), "an expired invite is refused");

    // Damaged (a typo) is caught before anything is sent.
    let mut typo = token_text.clone().into_bytes();
    typo[20] = if typo[20] == b'A' { b'B' } else { b'A' };
    let typo = stranger.run(&["join", &String::from_utf8(typo).expect("ASCII")]);
    assert_eq!(typo.status.code(), Some(1));
    assert!(stderr(&typo).contains("typo"), "{}", stderr(&typo));

    // Only laptop joined; the stranger was never let in.
    let paired = [desk, laptop];
    support::wait_all_active(&paired);
    assert_eq!(paired[0].members().len(), 2);
    assert_eq!(paired[0].state_of("stranger"), None);
}

#[test]
fn an_unpaired_device_is_not_seen_and_cannot_reach_the_mesh() {
    let root = Root::new();
    let devices = mesh(&root, &["desk", "laptop"]);
    let stranger = Device::started(&root, "stranger");
    let ping = stranger.run(&["ping", "desk", "--count", "1"]);
    assert_eq!(ping.status.code(), Some(1));
    for device in &devices {
        let names: Vec<String> = device
            .members()
            .iter()
            .filter_map(|m| m["name"].as_str().map(str::to_owned))
            .collect();
        assert!(!names.contains(&"stranger".to_owned()), "{names:?}");
    }
}

#[test]
fn remove_takes_effect_on_every_device() {
    let root = Root::new();
    let devices = mesh(&root, &["desk", "laptop", "phone"]);
    let removed = devices[0].run(&["remove", "phone"]);
    assert!(removed.status.success(), "{}", stderr(&removed));
    for device in &devices[..2] {
        wait_until(&format!("{} no longer lists phone", device.name), || {
            device.state_of("phone").is_none()
        });
    }
    // The removed device's handshakes are refused: it sees nobody active.
    wait_until("phone sees nobody active", || {
        devices[2]
            .members()
            .iter()
            .filter(|m| m["self"] == false)
            .all(|m| m["state"] != "active")
    });
    let ping = devices[2].run(&["ping", "desk", "--count", "1"]);
    assert_eq!(ping.status.code(), Some(1));
    // And it stays out: the others never list it again.
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert!(devices[1].state_of("phone").is_none());
}
