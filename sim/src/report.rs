//! The report of one or more runs: the figures of the issue, as a table or as JSON.

use serde::Serialize;

use crate::world::RunResult;

/// Aggregate figures over every seed of a report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Devices per run.
    pub nodes: usize,
    /// Runs (seeds).
    pub seeds: usize,
    /// Membership profile.
    pub profile: String,
    /// Loss probability per datagram.
    pub loss: f64,
    /// Fault plan.
    pub faults: String,
    /// Virtual seconds per run.
    pub virtual_s: f64,
    /// Wall-clock seconds for all runs.
    pub wall_s: f64,
    /// Median seconds until every live device marked a crashed one unreachable.
    pub detect_p50_s: Option<f64>,
    /// 99th percentile of the same.
    pub detect_p99_s: Option<f64>,
    /// Crashes measured.
    pub crashes: usize,
    /// Crashes restarted before every device had noticed.
    pub undetected: usize,
    /// False `unreachable` marks per device-hour.
    pub false_unreachable_per_node_hour: f64,
    /// False `unreachable` marks in total.
    pub false_unreachable: u64,
    /// Datagrams each device sends per minute when nothing happens.
    pub idle_packets_per_node_min: Option<f64>,
    /// Their bytes.
    pub idle_bytes_per_node_min: Option<f64>,
    /// 99th percentile of seconds from a heal until all live devices see each other active.
    pub heal_converge_p99_s: Option<f64>,
    /// With `--workload`: direct messages sent, events published, handler runs (one per
    /// message and receiving device) in all runs.
    pub messages: (usize, usize, usize),
    /// With `--workload`: store writes acknowledged in all runs.
    pub store_writes: usize,
    /// With `--workload`: keys whose deletes were collected (on devices running at the end).
    pub tombstones_collected: u64,
    /// With `--workload`: handler runs a crash interrupted (reported, not repeated).
    pub runs_interrupted: usize,
    /// Handler runs waiting their turn on devices as they crashed.
    pub runs_queued_at_crash: usize,
    /// Messages and events refused for a full run queue.
    pub offers_refused: u64,
    /// Store changes refused and events dropped as forged (the hostile devices' lies, and
    /// any honest change refused).
    pub refused_as_forged: u64,
    /// Invariant violations in all runs.
    pub invariant_violations: usize,
    /// The first violations, each with the seed that replays it.
    pub violation_examples: Vec<String>,
    /// Digest of the first run (equal for equal seeds).
    pub digest: String,
}

/// The `p`-th percentile (0–100) by nearest rank.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

impl Report {
    /// Aggregates `runs`; `replay` turns a seed into the command that replays it.
    pub fn new(
        runs: &[RunResult],
        profile: &str,
        loss: f64,
        faults: &str,
        wall_s: f64,
        replay: impl Fn(u64) -> String,
    ) -> Self {
        let detections: Vec<f64> = runs.iter().flat_map(|r| r.detections.iter().copied()).collect();
        let convergence: Vec<f64> = runs.iter().flat_map(|r| r.convergence.iter().copied()).collect();
        let node_hours: f64 = runs.iter().map(|r| r.node_hours).sum();
        let false_unreachable: u64 = runs.iter().map(|r| r.false_unreachable).sum();
        let idle_node_minutes: f64 = runs.iter().map(|r| r.idle_minutes * r.nodes as f64).sum();
        let idle = |total: u64| (idle_node_minutes > 0.0).then(|| total as f64 / idle_node_minutes);
        let violation_examples = runs
            .iter()
            .flat_map(|r| r.violations.iter().map(move |v| (r.seed, v)))
            .take(10)
            .map(|(seed, v)| format!("seed {seed}: {v}\n  replay: {}", replay(seed)))
            .collect();
        Report {
            nodes: runs.first().map_or(0, |r| r.nodes),
            seeds: runs.len(),
            profile: profile.to_string(),
            loss,
            faults: faults.to_string(),
            virtual_s: runs.first().map_or(0.0, |r| r.virtual_s),
            wall_s,
            detect_p50_s: percentile(&detections, 50.0),
            detect_p99_s: percentile(&detections, 99.0),
            crashes: detections.len(),
            undetected: runs.iter().map(|r| r.undetected).sum(),
            false_unreachable_per_node_hour: if node_hours > 0.0 {
                false_unreachable as f64 / node_hours
            } else {
                0.0
            },
            false_unreachable,
            idle_packets_per_node_min: idle(runs.iter().map(|r| r.idle_packets).sum()),
            idle_bytes_per_node_min: idle(runs.iter().map(|r| r.idle_bytes).sum()),
            heal_converge_p99_s: percentile(&convergence, 99.0),
            messages: runs.iter().fold((0, 0, 0), |(d, e, h), r| {
                (d + r.messages.0, e + r.messages.1, h + r.messages.2)
            }),
            store_writes: runs.iter().map(|r| r.store_writes).sum(),
            tombstones_collected: runs.iter().map(|r| r.tombstones_collected).sum(),
            runs_interrupted: runs.iter().map(|r| r.runs_interrupted).sum(),
            runs_queued_at_crash: runs.iter().map(|r| r.runs_queued_at_crash).sum(),
            offers_refused: runs.iter().map(|r| r.offers_refused).sum(),
            refused_as_forged: runs.iter().map(|r| r.refused_as_forged).sum(),
            invariant_violations: runs.iter().map(|r| r.violations.len()).sum(),
            violation_examples,
            digest: runs.first().map_or_else(String::new, |r| r.digest.clone()),
        }
    }

    /// The report as aligned lines for people.
    pub fn to_text(&self) -> String {
        let opt = |v: Option<f64>, unit: &str| v.map_or("-".to_string(), |v| format!("{v:.2}{unit}"));
        let mut lines = vec![
            format!("nodes                    {}", self.nodes),
            format!("seeds                    {}", self.seeds),
            format!("profile                  {}", self.profile),
            format!(
                "faults                   {} (loss {:.1}%)",
                self.faults,
                self.loss * 100.0
            ),
            format!("virtual time             {:.0}s per seed", self.virtual_s),
            format!("wall time                {:.2}s", self.wall_s),
            format!(
                "crash detected by all    p50 {}  p99 {}  ({} crashes, {} undetected)",
                opt(self.detect_p50_s, "s"),
                opt(self.detect_p99_s, "s"),
                self.crashes,
                self.undetected
            ),
            format!(
                "false unreachable        {:.4} per node-hour ({} in total)",
                self.false_unreachable_per_node_hour, self.false_unreachable
            ),
            format!(
                "idle traffic per node    {} packets/min, {} bytes/min",
                opt(self.idle_packets_per_node_min, ""),
                opt(self.idle_bytes_per_node_min, "")
            ),
            format!(
                "heal convergence         p99 {}",
                opt(self.heal_converge_p99_s, "s")
            ),
            format!(
                "workload                 {} messages, {} events, {} handler runs ({} interrupted by crashes, {} queued at a crash, {} offers refused for a full queue), {} store writes, {} deleted keys collected",
                self.messages.0,
                self.messages.1,
                self.messages.2,
                self.runs_interrupted,
                self.runs_queued_at_crash,
                self.offers_refused,
                self.store_writes,
                self.tombstones_collected
            ),
            format!("invariant violations     {}", self.invariant_violations),
        ];
        if self.refused_as_forged > 0 {
            lines.push(format!("refused as forged        {}", self.refused_as_forged));
        }
        lines.extend(self.violation_examples.iter().cloned());
        lines.join("\n")
    }
}
