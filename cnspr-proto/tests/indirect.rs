//! A device reachable only through others (two devices behind NATs that cannot reach each
//! other, both reaching a third): shown indirect, its session relayed, and probed at the
//! usual pace, not at every tick.

mod support;

use std::time::Duration;

use cnspr_proto::identity::DeviceId;
use cnspr_proto::membership::MemberState;
use cnspr_proto::node::NodeConfig;
use support::Mesh;

#[test]
fn a_device_reached_only_through_a_relay_costs_no_more_than_the_usual_probing() {
    let (mut mesh, ids) = Mesh::paired(3);
    let sent = |mesh: &Mesh| mesh.node(1).stats().datagrams_sent;
    let before = sent(&mesh);
    mesh.run(Duration::from_secs(60));
    let idle = sent(&mesh) - before;
    mesh.cut(1, 3);
    mesh.run(Duration::from_secs(20));
    assert_eq!(mesh.node(1).shown_state(&ids[2]), Some(MemberState::Indirect));
    // Through device 2, the only one that reaches it.
    assert_eq!(mesh.node(1).relayed_through(&ids[2]), Some(ids[1]));
    let before = sent(&mesh);
    mesh.run(Duration::from_secs(60));
    let relayed = sent(&mesh) - before;
    assert_eq!(mesh.node(1).shown_state(&ids[2]), Some(MemberState::Indirect));
    // A probe round through the relay every few seconds, with its handshake attempts: a
    // few times the idle cost (3.6), not a round at every half-second tick (22 before).
    assert!(
        relayed <= idle * 5,
        "{relayed} datagrams a minute against {idle} idle"
    );
}

/// Device 3 joins through device 2, and device 1 never reaches it (two NATs): the mesh
/// 20 s later, the first two devices' IDs, and the joiner's.
fn joined_where_device_1_cannot_reach() -> (Mesh, Vec<DeviceId>, DeviceId) {
    let (mut mesh, ids) = Mesh::paired(2);
    let joiner = mesh.add(3, "device-3");
    mesh.cut(1, 3);
    let invite = mesh.invite(2, 33);
    mesh.join(3, 2, invite);
    mesh.run(Duration::from_secs(20));
    (mesh, ids, joiner)
}

#[test]
fn a_device_that_cannot_hear_from_a_new_device_learns_its_name_through_another() {
    let (mesh, ids, joiner) = joined_where_device_1_cannot_reach();
    assert_eq!(mesh.node(1).shown_state(&joiner), Some(MemberState::Indirect));
    assert_eq!(mesh.node(1).relayed_through(&joiner), Some(ids[1]));
    // Its name came from device 2 at once, not from the five-minute repair.
    assert_eq!(
        mesh.node(1).roster().shown_name(&joiner).as_deref(),
        Some("device-3")
    );
}

#[test]
fn a_device_alive_only_as_far_as_others_know_is_never_shown_active() {
    let (mesh, ids, joiner) = joined_where_device_1_cannot_reach();
    let (detected, shown) = mesh.reported_states(1, &joiner);
    // The detector believed device 2's news before its own probe failed...
    assert!(detected.contains(&MemberState::Active), "detected {detected:?}");
    // ...but people were never told `active`: no session with it ever worked.
    assert_eq!(shown, [MemberState::Indirect]);
    assert_eq!(mesh.node(1).shown_state(&joiner), Some(MemberState::Indirect));
    // Device 2, which reaches it, shows it active.
    assert_eq!(mesh.node(2).shown_state(&joiner), Some(MemberState::Active));
    assert_eq!(mesh.node(2).shown_state(&ids[0]), Some(MemberState::Active));
}

#[test]
fn a_device_whose_last_session_expired_is_shown_indirect_until_one_works_again() {
    // One monitor each: device 1 probes only its successor on the ring, and its sessions
    // with the others lapse once nothing else passes.
    let mut config = NodeConfig::default();
    config.membership.monitors = 1;
    let (mut mesh, ids) = Mesh::paired_with(5, config);
    mesh.run(Duration::from_secs(600));
    let lapsed: Vec<_> = ids[1..]
        .iter()
        .filter(|id| mesh.node(1).shown_state(id) == Some(MemberState::Indirect))
        .collect();
    assert!(!lapsed.is_empty(), "every session of device 1 still works");
    for id in &lapsed {
        assert_eq!(
            mesh.state(1, id),
            Some(MemberState::Active),
            "alive to the detector"
        );
        assert!(!mesh.node(1).session_peers(mesh.now).contains(id));
        let (_, shown) = mesh.reported_states(1, id);
        assert_eq!(shown.last(), Some(&MemberState::Indirect));
    }
    // A ping needs a session: the device is active again once it works.
    let id = *lapsed[0];
    let now = mesh.now;
    mesh.node_mut(1).echo(now, id, 1).expect("a peer");
    mesh.run(Duration::from_secs(1));
    assert_eq!(mesh.node(1).shown_state(&id), Some(MemberState::Active));
}

#[test]
fn a_rename_reaches_a_device_that_cannot_hear_from_the_renamed_one() {
    let (mut mesh, _, joiner) = joined_where_device_1_cannot_reach();
    assert_eq!(
        mesh.node(1).roster().shown_name(&joiner).as_deref(),
        Some("device-3")
    );
    let now = mesh.now;
    assert!(mesh.node_mut(3).set_own_name(now, "phone"));
    // Through device 2 at once, not at the five-minute repair.
    mesh.run(Duration::from_secs(2));
    assert_eq!(
        mesh.node(1).roster().shown_name(&joiner).as_deref(),
        Some("phone")
    );
}

#[test]
fn after_a_network_change_a_peer_no_new_session_reaches_is_not_shown_active() {
    // One monitor each: device 1 probes one device only, and holds the others alive on
    // its monitor's word.
    let mut config = NodeConfig::default();
    config.membership.monitors = 1;
    let (mut mesh, ids) = Mesh::paired_with(5, config);
    let active_before: Vec<_> = ids[2..]
        .iter()
        .filter(|id| mesh.node(1).shown_state(id) == Some(MemberState::Active))
        .copied()
        .collect();
    assert!(!active_before.is_empty());
    // Device 1 moves to a network from which only device 2 is reached.
    for n in 3..=5 {
        mesh.cut(1, n);
    }
    let now = mesh.now;
    mesh.node_mut(1).handle_network_change(now);
    mesh.run(Duration::from_secs(10));
    for id in &active_before {
        let shown = mesh.node(1).shown_state(id);
        assert_ne!(
            shown,
            Some(MemberState::Active),
            "{id:?} still shown active with no session"
        );
    }
}
