//! A seed decides everything: the same seed gives the same run, bit for bit.

use std::time::Duration;

use cnspr_sim::faults::FaultPlan;
use cnspr_sim::world::{SimConfig, World};

fn run(seed: u64) -> String {
    let config = SimConfig {
        plan: FaultPlan::Random,
        clock_skew: true,
        ..SimConfig::new(6, seed, Duration::from_secs(120))
    };
    let result = World::new(config).expect("valid configuration").run();
    assert!(
        result.datagrams > 1000,
        "the run did something ({} datagrams)",
        result.datagrams
    );
    result.digest
}

#[test]
fn the_same_seed_gives_the_same_digest_and_another_seed_another() {
    let first = run(7);
    assert_eq!(
        first,
        run(7),
        "replaying seed 7 must reproduce every datagram and event"
    );
    assert_ne!(first, run(8));
}
