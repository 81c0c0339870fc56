//! Lifeguard's local health comes back once the trouble is over, on both devices of a
//! pair, including the one whose monitored device keeps talking to it (and so never
//! needed to probe).

mod support;

use std::time::Duration;

use support::Mesh;

#[test]
fn both_devices_are_healthy_again_a_minute_after_their_path_came_back() {
    let (mut mesh, _) = Mesh::paired(2);
    assert_eq!(
        (mesh.node(1).health_multiplier(), mesh.node(2).health_multiplier()),
        (1, 1)
    );
    // The path between them is gone for a while: each misses probes and has to refute
    // the other's suspicion of itself.
    mesh.cut(1, 2);
    mesh.run(Duration::from_secs(8));
    mesh.cuts.clear();
    mesh.run(Duration::from_secs(5));
    let hurt = (mesh.node(1).health_multiplier(), mesh.node(2).health_multiplier());
    assert!(hurt.0 > 1 || hurt.1 > 1, "no health lost: {hurt:?}");
    mesh.run(Duration::from_secs(60));
    assert_eq!(
        (mesh.node(1).health_multiplier(), mesh.node(2).health_multiplier()),
        (1, 1)
    );
}
