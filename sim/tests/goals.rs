//! The simulator's standing goals, asserted from fixed seeds: its figures are virtual time
//! and deterministic for a seed, so a change that makes detection slower, idle traffic
//! heavier or a larger mesh break fails here rather than going unnoticed
//! (`docs/simulator.md`, "Standing goals"; `bench/goals` prints the same figures beside
//! the wall-clock ones).

use std::time::Duration;

use cnspr_sim::faults::FaultPlan;
use cnspr_sim::network::LinkModel;
use cnspr_sim::report::Report;
use cnspr_sim::world::{RunResult, SimConfig, World};

/// Runs `seeds` seeds from `first` of `config` and aggregates them as `cnspr-sim` does.
fn report(first: u64, seeds: u64, config: impl Fn(u64) -> SimConfig) -> Report {
    let runs: Vec<RunResult> = (first..first + seeds)
        .map(|seed| World::new(config(seed)).expect("valid configuration").run())
        .collect();
    Report::new(&runs, "responsive", 0.0, "", 0.0, |seed| format!("seed {seed}"))
}

fn assert_no_violations(report: &Report, what: &str) {
    assert_eq!(
        report.invariant_violations, 0,
        "{what}: {:#?}",
        report.violation_examples
    );
}

/// Five devices, the standard faults (crashes, a pause, a move, a partition), seeds 1–20:
/// every crash is seen by every device within 3 s at the median and 5 s at the 99th
/// percentile, at about one packet a second per device when nothing happens.
#[test]
fn five_devices_detect_crashes_in_seconds_at_a_packet_a_second() {
    let report = report(1, 20, |seed| SimConfig::new(5, seed, Duration::from_secs(600)));
    assert_no_violations(&report, "standard faults");
    assert!(report.crashes >= 40, "{} crashes measured", report.crashes);
    assert_eq!(report.undetected, 0);
    let p50 = report.detect_p50_s.expect("crashes measured");
    let p99 = report.detect_p99_s.expect("crashes measured");
    assert!(p50 <= 3.0, "detection p50 {p50:.2} s");
    assert!(p99 <= 5.0, "detection p99 {p99:.2} s");
    let packets = report.idle_packets_per_node_min.expect("an idle window");
    assert!(packets <= 50.0, "{packets:.1} idle packets per device per minute");
    let heal = report.heal_converge_p99_s.expect("a partition healed");
    assert!(heal <= 10.0, "heal p99 {heal:.2} s");
}

/// Five devices for an hour at 5 % loss and no faults: nobody is ever marked unreachable.
#[test]
fn five_percent_loss_raises_no_false_alarm() {
    let report = report(1, 5, |seed| SimConfig {
        plan: FaultPlan::None,
        link: LinkModel {
            loss: 0.05,
            ..LinkModel::default()
        },
        ..SimConfig::new(5, seed, Duration::from_secs(3600))
    });
    assert_no_violations(&report, "5 % loss");
    assert_eq!(report.false_unreachable, 0);
}

/// Idle cost per device does not grow with the mesh: 50 devices, past the direct fanout,
/// send no more per device than a small mesh does plus the ring's share, in packets and
/// in bytes (catch-ups open with a digest, broadcasts go through the ring).
#[test]
fn idle_cost_per_device_is_flat_with_the_mesh_size() {
    let idle = |nodes: usize| {
        report(7, 1, |seed| SimConfig {
            plan: FaultPlan::None,
            ..SimConfig::new(nodes, seed, Duration::from_secs(600))
        })
    };
    let (twenty, fifty) = (idle(20), idle(50));
    assert_no_violations(&fifty, "50 idle devices");
    let bytes = fifty.idle_bytes_per_node_min.expect("an idle window");
    assert!(
        bytes <= 10_000.0,
        "{bytes:.0} idle bytes per device per minute at 50 devices"
    );
    let packets = fifty.idle_packets_per_node_min.expect("an idle window");
    let small = twenty.idle_packets_per_node_min.expect("an idle window");
    assert!(
        packets <= small * 1.2,
        "{packets:.1} idle packets per device per minute at 50 devices, {small:.1} at 20"
    );
}

/// A mesh beyond the direct fanout spreads through the ring: 24 devices through the
/// standard faults with messages, events and store writes all along, and every invariant
/// holds (once, order, nothing lost, replicas converge).
#[test]
fn a_mesh_spread_through_the_ring_keeps_every_guarantee() {
    let report = report(7, 1, |seed| SimConfig {
        workload: true,
        ..SimConfig::new(24, seed, Duration::from_secs(400))
    });
    assert_no_violations(&report, "24 devices with the workload");
    assert!(report.messages.2 > 1000, "handler runs: {:?}", report.messages);
    assert!(report.store_writes > 100);
}
