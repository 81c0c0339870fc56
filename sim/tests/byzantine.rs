//! Hostile roster devices (`--byzantine`): six devices, one or two of them lying about the
//! others' liveness every 2 s, random faults. The honest devices still all reach each
//! other at the end and find every crash, and no honest device is marked unreachable
//! while it is up and undisturbed.

use std::time::Duration;

use cnspr_sim::faults::FaultPlan;
use cnspr_sim::report::Report;
use cnspr_sim::world::{RunResult, SimConfig, World};

fn report(byzantine: usize, seeds: u64) -> Report {
    let runs: Vec<RunResult> = (1..=seeds)
        .map(|seed| {
            let config = SimConfig {
                plan: FaultPlan::Random,
                byzantine,
                ..SimConfig::new(6, seed, Duration::from_secs(600))
            };
            World::new(config).expect("valid configuration").run()
        })
        .collect();
    Report::new(&runs, "responsive", 0.0, "random", 0.0, |seed| {
        format!("cnspr-sim --nodes 6 --seed {seed} --faults random --byzantine {byzantine}")
    })
}

#[test]
fn lies_about_liveness_from_one_or_two_of_six_devices_change_nothing() {
    for byzantine in [1, 2] {
        let report = report(byzantine, 50);
        assert_eq!(
            report.invariant_violations, 0,
            "{byzantine} hostile: {:#?}",
            report.violation_examples
        );
        assert_eq!(report.false_unreachable, 0, "{byzantine} hostile");
        assert!(report.crashes >= 100, "{} crashes", report.crashes);
    }
}
