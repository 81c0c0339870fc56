//! A node fed arbitrary datagrams (split on 0xff bytes) between timer runs: it never
//! panics and always ends its outputs with a timeout.
#![no_main]

use std::net::SocketAddr;

use cnspr_proto::identity::DeviceKey;
use cnspr_proto::node::{Durable, Node, NodeConfig, Output};
use cnspr_proto::time::Timestamp;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let own = DeviceKey::from_seed([1; 32]);
    let peer = DeviceKey::from_seed([2; 32]);
    let from: SocketAddr = "192.0.2.2:3030".parse().expect("valid address");
    let roster = [(peer.device_id(), Some(from))];
    let mut now = Timestamp::from_micros(1_000_000);
    let durable = Durable::fresh(own, 1, roster);
    let mut node = Node::restore(NodeConfig::default(), durable, [7; 32], now, 0);
    for datagram in data.split(|byte| *byte == 0xff) {
        let _ = node.handle_datagram(now, from, datagram);
        now = now + std::time::Duration::from_millis(100);
        node.handle_timeout(now);
        while !matches!(node.poll_output(), Output::Timeout(_)) {}
    }
});
