//! A device of the roster that speaks another protocol version is named, not just
//! unreachable, until a session with it works again.

mod support;

use std::time::Duration;

use cnspr_proto::node::Event;
use support::{address, Mesh};

#[test]
fn a_device_of_another_version_is_named_until_it_speaks_ours_again() {
    let (mut mesh, ids) = Mesh::paired(3);
    let now = mesh.now;
    // What a device of version 1 sends first: its version byte, then a handshake start.
    let version_1 = [1u8, 1, 0, 0, 0, 0];
    assert!(mesh
        .node_mut(1)
        .handle_datagram(now, address(2), &version_1)
        .is_err());
    // From an address no device of the roster was reached at, it names nobody (the node
    // looks at most every 100 ms: anyone can send such datagrams).
    mesh.run(Duration::from_millis(100));
    let now = mesh.now;
    assert!(mesh
        .node_mut(1)
        .handle_datagram(now, address(9), &[3, 1])
        .is_err());
    mesh.run(Duration::from_millis(1));
    assert_eq!(mesh.node(1).other_version(&ids[1]), Some(1));
    assert_eq!(mesh.node(1).other_version(&ids[2]), None);
    let reported: Vec<_> = mesh
        .events
        .iter()
        .filter_map(|(at, event)| match event {
            Event::OtherVersion { device, version } => Some((*at, *device, *version)),
            _ => None,
        })
        .collect();
    assert_eq!(reported, vec![(address(1), ids[1], 1)], "reported once");
    // Device 2 speaks this version again (it was upgraded): the next session clears it.
    for n in [1, 2] {
        let now = mesh.now;
        mesh.node_mut(n).handle_network_change(now);
    }
    mesh.run(Duration::from_secs(10));
    assert_eq!(mesh.node(1).other_version(&ids[1]), None);
}
