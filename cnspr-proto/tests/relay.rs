//! Two devices with no direct path (behind two NATs that let nothing in) talk through a
//! third that reaches both: their own end-to-end session, carried by the relay; shown
//! `indirect` through it; direct again once a direct path works.

mod support;

use std::time::Duration;

use cnspr_proto::membership::MemberState;
use cnspr_proto::messaging::{MessagingEvent, Tag};
use cnspr_proto::node::{Event, NodeConfig, RelayConfig, UPGRADE_INTERVAL};
use support::{address, Mesh};

fn messages_at(mesh: &Mesh, n: u8) -> Vec<Vec<u8>> {
    mesh.events
        .iter()
        .filter(|(at, _)| *at == address(n))
        .filter_map(|(_, event)| match event {
            Event::Messaging(MessagingEvent::Message { payload, .. }) => Some(payload.clone()),
            _ => None,
        })
        .collect()
}

fn send(mesh: &mut Mesh, from: u8, to: cnspr_proto::identity::DeviceId, payload: &[u8]) {
    let now = mesh.now;
    mesh.node_mut(from)
        .send_message(now, to, Tag::new("lab.note").expect("a tag"), payload.to_vec())
        .expect("accepted");
}

#[test]
fn devices_without_a_direct_path_talk_through_a_device_both_reach() {
    let (mut mesh, ids) = Mesh::paired(3);
    mesh.cut(1, 3);
    mesh.run(Duration::from_secs(30));
    // Their session goes through device 2, and that is what people are shown.
    assert_eq!(mesh.node(1).relayed_through(&ids[2]), Some(ids[1]));
    assert_eq!(mesh.node(3).relayed_through(&ids[0]), Some(ids[1]));
    assert_eq!(mesh.node(1).shown_state(&ids[2]), Some(MemberState::Indirect));
    // Alive to the failure detector: its probes go through the relayed session too.
    assert_eq!(mesh.state(1, &ids[2]), Some(MemberState::Active));
    let carried = mesh.node(2).stats().relayed_bytes;
    assert!(carried > 0);
    // A message of several datagrams, and its answer: through the relay, sealed end to end.
    let large = vec![7u8; 5000];
    send(&mut mesh, 1, ids[2], &large);
    mesh.run(Duration::from_secs(2));
    assert_eq!(messages_at(&mesh, 3), std::slice::from_ref(&large));
    send(&mut mesh, 3, ids[0], b"back");
    mesh.run(Duration::from_secs(2));
    assert_eq!(messages_at(&mesh, 1), [b"back".to_vec()]);
    assert!(mesh.node(2).stats().relayed_bytes > carried + large.len() as u64);
    assert_eq!(mesh.node(2).relayed_pairs(mesh.now), 1);
    // The path opens: within the next upgrade round the session is direct again.
    mesh.cuts.clear();
    mesh.run(UPGRADE_INTERVAL + Duration::from_secs(5));
    assert_eq!(mesh.node(1).relayed_through(&ids[2]), None);
    assert_eq!(mesh.node(3).relayed_through(&ids[0]), None);
    assert_eq!(mesh.node(1).shown_state(&ids[2]), Some(MemberState::Active));
}

#[test]
fn a_device_that_relays_for_nobody_carries_nothing() {
    let config = NodeConfig {
        relay: RelayConfig {
            enabled: false,
            ..RelayConfig::default()
        },
        ..NodeConfig::default()
    };
    let (mut mesh, ids) = Mesh::paired_with(3, config);
    mesh.cut(1, 3);
    mesh.run(Duration::from_secs(30));
    assert_eq!(mesh.node(1).relayed_through(&ids[2]), None);
    assert_eq!(mesh.node(2).stats().relayed_bytes, 0);
    assert!(mesh.node(2).stats().relay_refused > 0);
    // Alive as far as device 2 knows, never reached: shown indirect, not active.
    assert_eq!(mesh.node(1).shown_state(&ids[2]), Some(MemberState::Indirect));
    send(&mut mesh, 1, ids[2], b"stays queued");
    mesh.run(Duration::from_secs(5));
    assert!(messages_at(&mesh, 3).is_empty());
}

#[test]
fn a_relay_that_will_not_carry_is_passed_over_for_one_that_will() {
    let (mut mesh, ids) = Mesh::paired(4);
    // Device 2 relays for nobody (a phone on a metered network, say); device 3 does.
    let off = RelayConfig {
        enabled: false,
        ..RelayConfig::default()
    };
    let roster = mesh.roster_of(2);
    mesh.crash(2);
    mesh.config.relay = off;
    mesh.restart(2, roster);
    mesh.config.relay = RelayConfig::default();
    mesh.run(Duration::from_secs(20));
    mesh.cut(1, 4);
    mesh.run(Duration::from_secs(30));
    assert_eq!(mesh.node(1).relayed_through(&ids[3]), Some(ids[2]));
    assert_eq!(mesh.node(4).relayed_through(&ids[0]), Some(ids[2]));
    assert_eq!(mesh.node(2).stats().relayed_bytes, 0);
    // It was asked first, and said no.
    assert!(mesh.node(2).stats().relay_refused > 0);
    send(&mut mesh, 1, ids[3], b"through device 3");
    mesh.run(Duration::from_secs(2));
    assert_eq!(messages_at(&mesh, 4), [b"through device 3".to_vec()]);
}

#[test]
fn a_relay_that_drops_what_it_should_carry_is_routed_around() {
    let (mut mesh, ids) = Mesh::paired(4);
    mesh.cut(1, 4);
    mesh.run(Duration::from_secs(30));
    let first = mesh.node(1).relayed_through(&ids[3]).expect("relayed");
    // The relay turns bad: it stays in the mesh, answers its own probes, and drops
    // everything it should carry (here: it is cut from device 4 alone, so its probe
    // reports fail too; a stolen relay would keep reporting, and its handshakes'
    // silence passes it over the same way).
    let first_n = ids.iter().position(|id| *id == first).expect("a device") as u8 + 1;
    mesh.cut(first_n, 4);
    mesh.run(Duration::from_secs(30));
    let second = mesh.node(1).relayed_through(&ids[3]).expect("relayed again");
    assert_ne!(second, first);
    send(&mut mesh, 1, ids[3], b"around it");
    mesh.run(Duration::from_secs(2));
    assert_eq!(messages_at(&mesh, 4), [b"around it".to_vec()]);
}
