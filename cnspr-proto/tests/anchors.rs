//! Static anchors: a device's names travel in its address record, and a device that
//! cannot reach it asks its host to look them up: when it is found unreachable, then every
//! 30 s while it stays so, at once after a network change, and never while it is reached.

mod support;

use std::time::Duration;

use cnspr_proto::anchor::Anchor;
use cnspr_proto::identity::DeviceId;
use cnspr_proto::node::{Event, ANCHOR_LOOKUP_INTERVAL};
use cnspr_proto::time::Timestamp;
use support::{address, Mesh};

fn anchors() -> Vec<Anchor> {
    vec!["home.example.org:3030".parse().expect("an anchor")]
}

/// The times device `observer` asked for `device`'s anchors to be looked up, and the
/// anchors asked for.
fn lookups(mesh: &Mesh, observer: u8, device: &DeviceId) -> Vec<Vec<Anchor>> {
    mesh.events
        .iter()
        .filter(|(at, _)| *at == address(observer))
        .filter_map(|(_, event)| match event {
            Event::LookUpAnchors { device: d, anchors } if d == device => Some(anchors.clone()),
            _ => None,
        })
        .collect()
}

/// Runs `mesh` for `duration` in one-second steps; returns when each lookup of `device`'s
/// anchors by `observer` was asked for.
fn lookup_times(mesh: &mut Mesh, observer: u8, device: &DeviceId, duration: Duration) -> Vec<Timestamp> {
    let mut times = Vec::new();
    let end = mesh.now + duration;
    while mesh.now < end {
        mesh.events.clear();
        mesh.run(Duration::from_secs(1));
        for anchors_asked in lookups(mesh, observer, device) {
            assert_eq!(anchors_asked, anchors());
            times.push(mesh.now);
        }
    }
    times
}

#[test]
fn a_devices_anchors_are_looked_up_while_it_cannot_be_reached_and_only_then() {
    let (mut mesh, ids) = Mesh::paired(2);
    let now = mesh.now;
    let node = mesh.node_mut(1);
    node.set_own_anchors(anchors());
    node.set_local_addresses(now, &[address(1)]);
    let times = lookup_times(&mut mesh, 2, &ids[0], Duration::from_secs(40));
    let record = mesh.node(2).address_record(&ids[0]).expect("the record arrived");
    assert_eq!(record.anchors, anchors());
    assert_eq!(record.candidates, vec![address(1)]);
    assert!(times.is_empty(), "looked up while reached: {times:?}");

    // Gone: looked up once it is found unreachable, then every 30 s.
    mesh.crash(1);
    let times = lookup_times(&mut mesh, 2, &ids[0], Duration::from_secs(100));
    assert!((3..=4).contains(&times.len()), "{times:?}");
    for pair in times.windows(2) {
        let apart = pair[1].saturating_since(pair[0]);
        assert!(
            apart >= ANCHOR_LOOKUP_INTERVAL && apart <= ANCHOR_LOOKUP_INTERVAL + Duration::from_secs(1),
            "{times:?}"
        );
    }

    // A network change: at once, whatever the last lookup was.
    let now = mesh.now;
    mesh.node_mut(2).handle_network_change(now);
    let times = lookup_times(&mut mesh, 2, &ids[0], Duration::from_secs(2));
    assert_eq!(times.len(), 1, "{times:?}");

    // Back: not looked up any more.
    mesh.restart(1, mesh.roster_of(2));
    mesh.run(Duration::from_secs(10));
    let times = lookup_times(&mut mesh, 2, &ids[0], Duration::from_secs(70));
    assert!(times.is_empty(), "looked up while reached: {times:?}");
}

#[test]
fn a_record_without_anchors_stops_the_lookups() {
    let (mut mesh, ids) = Mesh::paired(2);
    let now = mesh.now;
    let node = mesh.node_mut(1);
    node.set_own_anchors(anchors());
    node.set_local_addresses(now, &[address(1)]);
    mesh.run(Duration::from_secs(5));
    let now = mesh.now;
    let node = mesh.node_mut(1);
    node.set_own_anchors(Vec::new());
    node.set_local_addresses(now, &[address(1)]);
    mesh.run(Duration::from_secs(5));
    assert!(mesh
        .node(2)
        .address_record(&ids[0])
        .expect("a record")
        .anchors
        .is_empty());
    mesh.crash(1);
    let times = lookup_times(&mut mesh, 2, &ids[0], Duration::from_secs(60));
    assert!(times.is_empty(), "{times:?}");
}
