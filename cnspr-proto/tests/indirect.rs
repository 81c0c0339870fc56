//! A device reachable only through others (two devices behind NATs that cannot reach each
//! other, both reaching a third): shown indirect, and probed at the usual pace, not at
//! every tick.

mod support;

use std::time::Duration;

use cnspr_proto::membership::MemberState;
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
    assert_eq!(mesh.state(1, &ids[2]), Some(MemberState::Indirect));
    // Through device 2, the only one that reaches it.
    assert_eq!(mesh.node(1).member(&ids[2]).and_then(|m| m.via), Some(ids[1]));
    let before = sent(&mesh);
    mesh.run(Duration::from_secs(60));
    let relayed = sent(&mesh) - before;
    assert_eq!(mesh.state(1, &ids[2]), Some(MemberState::Indirect));
    // A probe round through the relay every few seconds, with its handshake attempts: a
    // few times the idle cost (3.6), not a round at every half-second tick (22 before).
    assert!(
        relayed <= idle * 5,
        "{relayed} datagrams a minute against {idle} idle"
    );
}

#[test]
fn a_device_that_cannot_hear_from_a_new_device_learns_its_name_through_another() {
    let (mut mesh, ids) = Mesh::paired(2);
    // Device 3 joins through device 2, and device 1 never reaches it (two NATs).
    let joiner = mesh.add(3, "device-3");
    mesh.cut(1, 3);
    let invite = mesh.invite(2, 33);
    mesh.join(3, 2, invite);
    mesh.run(Duration::from_secs(20));
    assert_eq!(mesh.state(1, &joiner), Some(MemberState::Indirect));
    assert_eq!(mesh.node(1).member(&joiner).and_then(|m| m.via), Some(ids[1]));
    // Its name came from device 2 at once, not from the five-minute repair.
    assert_eq!(
        mesh.node(1).roster().shown_name(&joiner).as_deref(),
        Some("device-3")
    );
}
