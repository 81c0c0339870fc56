//! Untrusted bytes at the front door: a node fed arbitrary datagrams (and mangled genuine
//! ones) never panics, rejects what it cannot authenticate, and keeps working.

use std::net::SocketAddr;
use std::time::Duration;

use cnspr_proto::identity::DeviceKey;
use cnspr_proto::node::{Durable, Node, NodeConfig, Output};
use cnspr_proto::time::Timestamp;
use proptest::prelude::*;

fn address(last: u8) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, last], 3030))
}

fn pair(now: Timestamp) -> (Node, Node) {
    let a = DeviceKey::from_seed([1; 32]);
    let b = DeviceKey::from_seed([2; 32]);
    let roster = [
        (a.device_id(), Some(address(1))),
        (b.device_id(), Some(address(2))),
    ];
    let node_a = Node::restore(
        NodeConfig::default(),
        Durable::fresh(a, 1, roster),
        [11; 32],
        now,
        0,
    );
    let node_b = Node::restore(
        NodeConfig::default(),
        Durable::fresh(b, 1, roster),
        [12; 32],
        now,
        0,
    );
    (node_a, node_b)
}

/// Drains a node's outputs; returns its datagrams.
fn drain(node: &mut Node) -> Vec<Vec<u8>> {
    let mut datagrams = Vec::new();
    loop {
        match node.poll_output() {
            Output::Transmit(transmit) => datagrams.push(transmit.datagram),
            Output::Event(_) | Output::Persist(_) => {}
            Output::Timeout(_) => return datagrams,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_datagrams_never_panic_and_are_rejected(datagrams in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..1600), 1..20)) {
        let now = Timestamp::from_micros(1_000_000);
        let (mut node, _) = pair(now);
        drain(&mut node);
        for datagram in &datagrams {
            // A random datagram can be a well-formed handshake initiation (unauthenticated
            // by design); anything else must be refused.
            let result = node.handle_datagram(now, address(9), datagram);
            if datagram.get(1) != Some(&1) {
                prop_assert!(result.is_err());
            }
            drain(&mut node);
        }
        let stats = node.stats();
        prop_assert_eq!(stats.datagrams_received, datagrams.len() as u64);
    }

    #[test]
    fn mangled_genuine_traffic_never_panics(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut now = Timestamp::from_micros(1_000_000);
        let (mut a, mut b) = pair(now);
        let mut to_b = drain(&mut a);
        let mut to_a = drain(&mut b);
        for round in 0..30 {
            for (i, datagram) in to_b.iter_mut().enumerate() {
                if round % 3 == 0 {
                    let (position, mask) = flips[i % flips.len()];
                    if !datagram.is_empty() {
                        let position = position % datagram.len();
                        datagram[position] ^= mask;
                    }
                }
                let _ = b.handle_datagram(now, address(1), datagram);
            }
            for datagram in &to_a {
                let _ = a.handle_datagram(now, address(2), datagram);
            }
            now = now + Duration::from_millis(250);
            a.handle_timeout(now);
            b.handle_timeout(now);
            to_b = drain(&mut a);
            to_a = drain(&mut b);
        }
    }
}
