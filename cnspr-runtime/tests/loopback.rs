//! Three real nodes on real UDP sockets on loopback: they find each other, measure round
//! trips, and see one of them leave.

use std::net::SocketAddr;
use std::time::Duration;

use cnspr_proto::identity::StaticKeypair;
use cnspr_proto::membership::MemberState;
use cnspr_proto::node::NodeConfig;
use cnspr_runtime::driver::{self, DriverHandle};
use tokio::net::UdpSocket;

/// Polls `check` every 50 ms until it holds or `limit` passes.
async fn wait_for(limit: Duration, what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} did not happen within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn all_show(handle: &DriverHandle, count: usize, state: MemberState) -> bool {
    let members = handle.members().await.expect("node running");
    members.len() == count && members.iter().all(|m| m.state == state)
}

#[tokio::test]
async fn three_nodes_find_each_other_measure_rtt_and_see_a_leave() {
    let keys: Vec<StaticKeypair> = (1..=3)
        .map(|i| StaticKeypair::from_secret_bytes([i; 32]))
        .collect();
    let mut sockets = Vec::new();
    for _ in &keys {
        sockets.push(UdpSocket::bind("127.0.0.1:0").await.expect("bind loopback"));
    }
    let addresses: Vec<SocketAddr> = sockets.iter().map(|s| s.local_addr().expect("bound")).collect();
    let roster: Vec<_> = keys
        .iter()
        .zip(&addresses)
        .map(|(k, a)| (k.device_id(), Some(*a)))
        .collect();
    let handles: Vec<DriverHandle> = sockets
        .into_iter()
        .zip(&keys)
        .map(|(socket, key)| {
            driver::spawn(socket, NodeConfig::default(), key.clone(), roster.clone(), 1).expect("spawn")
        })
        .collect();

    for handle in &handles {
        wait_for(Duration::from_secs(10), "all active", async || {
            all_show(handle, 2, MemberState::Active).await
        })
        .await;
    }
    wait_for(Duration::from_secs(15), "round trips measured", async || {
        let members = handles[0].members().await.expect("node running");
        members
            .iter()
            .all(|m| m.rtt.is_some_and(|rtt| rtt < Duration::from_millis(100)))
    })
    .await;

    handles[2].leave().await.expect("leaves");
    let gone = keys[2].device_id();
    for handle in &handles[..2] {
        wait_for(Duration::from_secs(5), "the leave is seen", async || {
            let members = handle.members().await.expect("node running");
            members
                .iter()
                .any(|m| m.id == gone && m.state == MemberState::Left)
        })
        .await;
    }
}
