//! The router's port mapping (which the host asks for) in the address record: peers get
//! it as a candidate, and lose it when the mapping goes.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use support::{address, Mesh};

#[test]
fn a_mapped_address_joins_the_record_the_peers_get_and_leaves_it_with_the_mapping() {
    let (mut mesh, ids) = Mesh::paired(2);
    let mapped: SocketAddr = "203.0.113.21:3030".parse().expect("an address");
    let now = mesh.now;
    let node = mesh.node_mut(1);
    node.set_local_addresses(now, &[address(1)]);
    node.set_port_mapping(now, Some(mapped));
    mesh.run(Duration::from_secs(5));
    let record = mesh.node(2).address_record(&ids[0]).expect("the record arrived");
    assert!(record.candidates.contains(&mapped), "{:?}", record.candidates);
    assert!(record.candidates.contains(&address(1)), "{:?}", record.candidates);
    let version = record.version;
    // The same mapping again writes nothing new; its loss does.
    let now = mesh.now;
    mesh.node_mut(1).set_port_mapping(now, Some(mapped));
    mesh.run(Duration::from_secs(5));
    assert_eq!(
        mesh.node(2).address_record(&ids[0]).map(|r| r.version),
        Some(version)
    );
    let now = mesh.now;
    mesh.node_mut(1).set_port_mapping(now, None);
    mesh.run(Duration::from_secs(5));
    let record = mesh.node(2).address_record(&ids[0]).expect("a record");
    assert_eq!(record.candidates, vec![address(1)]);
}
