//! NAT keepalive: a device that peers see at an address not its own keeps its sessions
//! with the peers it wants alive, and learns the NAT's timeout from a suspicion after a
//! long silence that heals at once.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use cnspr_proto::membership::MemberState;
use cnspr_proto::node::{NodeConfig, MAX_KEEPALIVE, MIN_KEEPALIVE};
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
    assert_eq!(mesh.node(1).nat(mesh.now).translated, vec![address(1)]);
    // The same device with the address its peers see: no NAT, nothing kept.
    let now = mesh.now;
    mesh.node_mut(1).set_local_addresses(now, &[address(1)]);
    assert!(mesh.node(1).keepalive().1.is_empty());
}

#[test]
fn the_keepalive_comes_down_to_the_silence_after_which_the_nat_forgot_the_path() {
    // Frugal, and keepalives at the longest interval at first: what the NAT shows is all
    // that brings it down.
    let mut config = NodeConfig::profile("frugal").expect("a profile");
    config.nat_keepalive = MAX_KEEPALIVE;
    let (mut mesh, ids) = Mesh::paired_with(3, config);
    let now = mesh.now;
    mesh.node_mut(1).set_local_addresses(now, &[behind_nat()]);
    mesh.run(Duration::from_secs(1));
    // Frugal devices talk when they have not heard from each other for about 20 s: wait
    // for 16 s of silence from both peers, then the NAT drops every path (everything is
    // lost) until device 1 finds them suspect.
    let silent = |mesh: &Mesh, peer: usize| {
        let heard = mesh
            .node(1)
            .membership()
            .member(&ids[peer])
            .and_then(|m| m.last_heard);
        heard.is_some_and(|at| mesh.now.saturating_since(at) >= Duration::from_secs(16))
    };
    let suspect = |mesh: &Mesh, peer: usize| mesh.state(1, &ids[peer]) == Some(MemberState::Suspect);
    let forgets_once = |mesh: &mut Mesh| {
        while !(silent(mesh, 1) && silent(mesh, 2)) {
            mesh.run(Duration::from_millis(100));
        }
        mesh.loss_percent = 100;
        let mut found = [false; 2];
        while found != [true; 2] {
            mesh.run(Duration::from_millis(100));
            for (i, peer) in [1, 2].into_iter().enumerate() {
                found[i] |= suspect(mesh, peer);
            }
        }
        mesh.loss_percent = 0;
        mesh.run(Duration::from_secs(10));
        for peer in [1, 2] {
            assert_eq!(mesh.state(1, &ids[peer]), Some(MemberState::Active));
        }
        mesh.node(1).keepalive()
    };
    let (learned, kept) = forgets_once(&mut mesh);
    assert_eq!(kept.len(), 2);
    // Four fifths of a silence of 16 to 26 s (a frugal device's silence before it probes).
    assert!(
        learned >= MIN_KEEPALIVE && learned < Duration::from_secs(21),
        "{learned:?}"
    );
    // Another network: back to the configured interval.
    let now = mesh.now;
    mesh.node_mut(1).handle_network_change(now);
    assert_eq!(mesh.node(1).keepalive().0, MAX_KEEPALIVE);
}
