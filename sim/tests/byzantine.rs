//! Hostile roster devices (`--byzantine`): six devices, one or two of them lying every 2 s
//! about the others' liveness, and making up events and store states in their names,
//! under random faults and the workload. The honest devices still all reach each other at
//! the end and find every crash, no honest device is marked unreachable while it is up and
//! undisturbed, no handler runs for a made-up event, no replica holds a made-up key, and
//! the workload's own invariants hold (nothing lost, nothing twice, replicas converge).

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
                workload: true,
                ..SimConfig::new(6, seed, Duration::from_secs(600))
            };
            World::new(config).expect("valid configuration").run()
        })
        .collect();
    Report::new(&runs, "responsive", 0.0, "random", 0.0, |seed| {
        format!("cnspr-sim --nodes 6 --seed {seed} --faults random --workload --byzantine {byzantine}")
    })
}

/// Runs 50 seeds with `byzantine` hostile devices and holds them to every invariant.
fn lies_change_nothing(byzantine: usize) {
    let report = report(byzantine, 50);
    assert_eq!(
        report.invariant_violations, 0,
        "{byzantine} hostile: {:#?}",
        report.violation_examples
    );
    assert_eq!(report.false_unreachable, 0, "{byzantine} hostile");
    assert!(report.crashes >= 100, "{} crashes", report.crashes);
    // Made-up events and store states reached the honest devices and were refused there
    // (counted by the devices running at the end).
    assert!(
        report.refused_as_forged >= 1000,
        "{} refused as forged",
        report.refused_as_forged
    );
    assert!(report.messages.1 >= 1000, "{} events", report.messages.1);
}

// Two tests, so that they run side by side.
#[test]
fn lies_from_one_of_six_devices_change_nothing() {
    lies_change_nothing(1);
}

#[test]
fn lies_from_two_of_six_devices_change_nothing() {
    lies_change_nothing(2);
}
