//! Many seeds of random faults on small meshes: every invariant must hold at every step and
//! every device must see every other again once the faults are over.

use std::time::Duration;

use cnspr_sim::faults::FaultPlan;
use cnspr_sim::network::LinkModel;
use cnspr_sim::world::{SimConfig, World};

const SEEDS: u64 = 50;

fn config(seed: u64) -> SimConfig {
    SimConfig {
        plan: FaultPlan::Random,
        clock_skew: true,
        link: LinkModel {
            loss: (seed % 4) as f64 / 100.0,
            duplicate: 0.01,
            ..LinkModel::default()
        },
        ..SimConfig::new(4 + (seed % 5) as usize, 1000 + seed, Duration::from_secs(240))
    }
}

#[test]
fn random_faults_on_fifty_seeds_break_no_invariant() {
    let mut failures = Vec::new();
    let mut crashes = 0;
    for seed in 0..SEEDS {
        let config = config(seed);
        let replay = format!(
            "cnspr-sim --nodes {} --seed {} --duration 240s --loss {} --duplicate 0.01 --faults random --clock-skew",
            config.nodes, config.seed, config.link.loss
        );
        let result = World::new(config).expect("valid configuration").run();
        crashes += result.detections.len();
        for violation in result.violations {
            failures.push(format!("seed {}: {violation}\n  replay: {replay}", result.seed));
        }
    }
    assert!(
        crashes > SEEDS as usize,
        "the swarm really crashes devices ({crashes} crashes)"
    );
    assert!(
        failures.is_empty(),
        "{} violations:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
