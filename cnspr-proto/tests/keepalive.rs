//! NAT keepalive: a device that peers see at an address not its own keeps its sessions
//! with the peers it wants alive, and learns the NAT's timeout from a suspicion after a
//! long silence that heals at once.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use cnspr_proto::membership::MemberState;
use cnspr_proto::node::{NodeConfig, MIN_KEEPALIVE};
use support::{address, Mesh};

/// An address device 1 has behind its NAT (peers see it at `address(1)`).
fn behind_nat() -> SocketAddr {
    SocketAddr::from(([10, 0, 0, 1], 3030))
}

#[test]
fn a_device_behind_a_nat_keeps_its_neighbours_sessions_alive_and_no_other_does() {
    let (mut mesh, ids) = Mesh::paired(2);
    let now = mesh.now;
    mesh.node_mut(1).set_local_addresses(now, &[behind_nat()]);
    mesh.node_mut(2).set_local_addresses(now, &[address(2)]);
    mesh.run(Duration::from_secs(1));
    let (interval, kept) = mesh.node(1).keepalive();
    assert_eq!(interval, Duration::from_secs(25));
    assert_eq!(kept, vec![ids[1]], "its neighbour, through its NAT");
    assert!(mesh.node(2).keepalive().1.is_empty(), "device 2 is behind no NAT");
    assert_eq!(mesh.node(1).nat().translated, vec![address(1)]);
    // The same device with the address its peers see: no NAT, nothing kept.
    let now = mesh.now;
    mesh.node_mut(1).set_local_addresses(now, &[address(1)]);
    assert!(mesh.node(1).keepalive().1.is_empty());
}

#[test]
fn the_keepalive_comes_down_to_the_silence_after_which_the_nat_forgot_the_path() {
    let config = NodeConfig::profile("frugal").expect("a profile");
    let (mut mesh, ids) = Mesh::paired_with(2, config);
    let now = mesh.now;
    mesh.node_mut(1).set_local_addresses(now, &[behind_nat()]);
    mesh.run(Duration::from_secs(1));
    // Frugal devices talk when they have not heard from each other for about 20 s: wait
    // for 16 s of silence, then the NAT drops the path (everything is lost) until device
    // 1 finds device 2 suspect.
    let heard_long_ago = |mesh: &Mesh| {
        let heard = mesh
            .node(1)
            .membership()
            .member(&ids[1])
            .and_then(|m| m.last_heard);
        heard.is_some_and(|at| mesh.now.saturating_since(at) >= Duration::from_secs(16))
    };
    while !heard_long_ago(&mesh) {
        mesh.run(Duration::from_millis(100));
    }
    mesh.loss_percent = 100;
    while mesh.state(1, &ids[1]) != Some(MemberState::Suspect) {
        mesh.run(Duration::from_millis(100));
    }
    mesh.loss_percent = 0;
    mesh.run(Duration::from_secs(10));
    assert_eq!(mesh.state(1, &ids[1]), Some(MemberState::Active));
    let (interval, kept) = mesh.node(1).keepalive();
    assert_eq!(kept, vec![ids[1]]);
    assert!(
        interval >= MIN_KEEPALIVE && interval < Duration::from_secs(20),
        "{interval:?}"
    );
}
