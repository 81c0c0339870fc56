//! `cnspr-sim`: runs the simulator and prints its report.

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use cnspr_proto::duration::parse_duration;
use cnspr_sim::faults::FaultPlan;
use cnspr_sim::network::LinkModel;
use cnspr_sim::report::Report;
use cnspr_sim::world::{SimConfig, World};

/// Simulates a mesh of cnspr devices on a virtual network and reports failure detection,
/// traffic and invariants.
#[derive(Debug, Parser)]
#[command(name = "cnspr-sim", version)]
struct Args {
    /// Devices in the mesh.
    #[arg(long, default_value_t = 5)]
    nodes: usize,
    /// First seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Seeds to run (seed, seed+1, ...).
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    /// Virtual time per seed (500ms, 30s, 1.5m, 24h, 2d; a bare number is seconds).
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    duration: std::time::Duration,
    /// Probability that a datagram is lost.
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Probability that a datagram arrives twice.
    #[arg(long, default_value_t = 0.0)]
    duplicate: f64,
    /// Membership profile: responsive or frugal.
    #[arg(long, default_value = "responsive")]
    profile: String,
    /// Faults: standard (idle, crashes, pause, roam, partition), random, or none.
    #[arg(long, default_value = "standard")]
    faults: String,
    /// Skew device clocks (offsets up to a minute, drift up to ±500 ppm).
    #[arg(long)]
    clock_skew: bool,
    /// Print every fault and state change to stderr.
    #[arg(long)]
    trace: bool,
    /// Send direct messages and events all along, and check that none is handled twice,
    /// out of order, or lost.
    #[arg(long)]
    workload: bool,
    /// Messages and events from one device that wait for their handler runs at most
    /// (twice as many from all devices); beyond it they stay with their senders.
    #[arg(long)]
    handler_queue: Option<usize>,
    /// Make the first K devices hostile: every 2 s each tells everyone made-up news of an
    /// honest device's liveness (left, or gone at an incarnation it cannot refute from).
    #[arg(long, default_value_t = 0)]
    byzantine: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let Some(plan) = FaultPlan::from_name(&args.faults) else {
        eprintln!(
            "cnspr-sim: unknown fault plan {:?} (standard, random, none)",
            args.faults
        );
        return ExitCode::from(2);
    };
    if !(0.0..=1.0).contains(&args.loss) || !(0.0..=1.0).contains(&args.duplicate) {
        eprintln!("cnspr-sim: --loss and --duplicate are probabilities between 0 and 1");
        return ExitCode::from(2);
    }
    let config = |seed| SimConfig {
        nodes: args.nodes,
        seed,
        duration: args.duration,
        profile: args.profile.clone(),
        link: LinkModel {
            loss: args.loss,
            duplicate: args.duplicate,
            ..LinkModel::default()
        },
        plan,
        clock_skew: args.clock_skew,
        trace: args.trace,
        workload: args.workload,
        handler_queue: args.handler_queue,
        byzantine: args.byzantine,
    };
    let started = Instant::now();
    let mut runs = Vec::new();
    for seed in args.seed..args.seed.saturating_add(args.seeds) {
        match World::new(config(seed)) {
            Ok(world) => runs.push(world.run()),
            Err(error) => {
                eprintln!("cnspr-sim: {error}");
                return ExitCode::from(2);
            }
        }
    }
    let replay = |seed: u64| {
        format!(
            "cnspr-sim --nodes {} --seed {seed} --duration {}ms --loss {} --duplicate {} --profile {} --faults {}{}{}{}{}",
            args.nodes,
            args.duration.as_millis(),
            args.loss,
            args.duplicate,
            args.profile,
            args.faults,
            if args.clock_skew { " --clock-skew" } else { "" },
            if args.workload { " --workload" } else { "" },
            args.handler_queue
                .map_or_else(String::new, |n| format!(" --handler-queue {n}")),
            if args.byzantine > 0 {
                format!(" --byzantine {}", args.byzantine)
            } else {
                String::new()
            },
        )
    };
    let report = Report::new(
        &runs,
        &args.profile,
        args.loss,
        &args.faults,
        started.elapsed().as_secs_f64(),
        replay,
    );
    if args.json {
        match serde_json::to_string(&report) {
            Ok(json) => println!("{json}"),
            Err(error) => {
                eprintln!("cnspr-sim: cannot write the report: {error}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        println!("{}", report.to_text());
    }
    if report.invariant_violations > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
