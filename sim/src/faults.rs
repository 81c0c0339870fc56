//! What goes wrong, and when: fault plans for a run.

use std::time::Duration;

use cnspr_proto::rng::Rng;

/// One fault (or its end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The device's process dies; only its durable state survives.
    Crash(usize),
    /// The crashed device starts again from its durable state.
    Restart(usize),
    /// The device stops (lid closed): no timers, nothing received.
    Pause(usize),
    /// It wakes up.
    Resume(usize),
    /// Datagrams from the first group to the second are dropped (both ways if `both`).
    Partition {
        /// Senders cut off.
        from: Vec<usize>,
        /// Receivers cut off.
        to: Vec<usize>,
        /// Also the reverse direction.
        both: bool,
    },
    /// Every partition ends.
    Heal,
    /// The device moves to a new address.
    Roam(usize),
}

/// Which faults a run has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultPlan {
    /// None at all: for idle traffic and false-positive measurements.
    None,
    /// Measured phases: idle, crashes, a pause, a roam, a partition, calm.
    Standard,
    /// Random faults of every kind, then calm: for the swarm.
    Random,
}

impl FaultPlan {
    /// By name: `none`, `standard`, `random`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "none" => Some(FaultPlan::None),
            "standard" => Some(FaultPlan::Standard),
            "random" => Some(FaultPlan::Random),
            _ => None,
        }
    }
}

/// The phases of a run that the report measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phases {
    /// Idle traffic is counted from here...
    pub idle_start: Duration,
    /// ...to here.
    pub idle_end: Duration,
    /// No fault is in force from here to the end: every live device must then see every
    /// other `active`.
    pub calm_from: Duration,
}

/// A schedule of faults and the phases around them.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Faults at their times since the start.
    pub faults: Vec<(Duration, Fault)>,
    /// The measured phases.
    pub phases: Phases,
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

fn pick(rng: &mut Rng, n: usize) -> usize {
    (rng.next_u64() % n.max(1) as u64) as usize
}

fn random_split(rng: &mut Rng, nodes: usize) -> (Vec<usize>, Vec<usize>) {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for node in 0..nodes {
        if rng.next_u32() % 2 == 0 {
            a.push(node);
        } else {
            b.push(node);
        }
    }
    if a.is_empty() {
        a.push(b.pop().unwrap_or(0));
    }
    if b.is_empty() {
        b.push(a.pop().unwrap_or(0));
    }
    (a, b)
}

impl Schedule {
    /// The schedule of `plan` for `nodes` devices over `duration`; `calm` is how long the
    /// network must be quiet at the end for liveness to be checked.
    pub fn new(plan: FaultPlan, nodes: usize, duration: Duration, calm: Duration, rng: &mut Rng) -> Self {
        let total = duration.as_secs_f64();
        let warmup = (total * 0.1).clamp(5.0, 60.0);
        match plan {
            FaultPlan::None => Schedule {
                faults: Vec::new(),
                phases: Phases {
                    idle_start: secs(warmup),
                    idle_end: duration,
                    calm_from: Duration::ZERO,
                },
            },
            FaultPlan::Standard => Self::standard(nodes, total, warmup, calm.as_secs_f64(), rng),
            FaultPlan::Random => Self::random(nodes, total, warmup, calm.as_secs_f64(), rng),
        }
    }

    /// Idle until 30 %, then one crash a minute (each down 40 s), a pause and a roam
    /// among them, then a partition into two halves for 45 s, then calm.
    fn standard(nodes: usize, total: f64, warmup: f64, calm: f64, rng: &mut Rng) -> Self {
        let idle_end = (total * 0.3).max(warmup);
        let partition_at = (total - calm - 45.0).max(idle_end);
        let mut faults = Vec::new();
        let mut t = idle_end;
        let mut cycle = 0;
        while t + 60.0 <= partition_at && nodes > 1 {
            let node = pick(rng, nodes);
            // Anywhere in the first ten seconds of the minute: faults never align with
            // the devices' timers by construction.
            let at = t + f64::from(rng.next_u32() % 10_000) / 1000.0;
            match cycle % 4 {
                2 => {
                    faults.push((secs(at), Fault::Pause(node)));
                    faults.push((secs(at + 40.0), Fault::Resume(node)));
                }
                3 => faults.push((secs(at), Fault::Roam(node))),
                _ => {
                    faults.push((secs(at), Fault::Crash(node)));
                    faults.push((secs(at + 40.0), Fault::Restart(node)));
                }
            }
            cycle += 1;
            t += 60.0;
        }
        if nodes > 1 && partition_at + 45.0 <= total {
            let (a, b) = random_split(rng, nodes);
            faults.push((
                secs(partition_at),
                Fault::Partition {
                    from: a,
                    to: b,
                    both: true,
                },
            ));
            faults.push((secs(partition_at + 45.0), Fault::Heal));
        }
        let calm_from = faults.last().map(|(t, _)| t.as_secs_f64()).unwrap_or(0.0);
        Schedule {
            faults,
            phases: Phases {
                idle_start: secs(warmup),
                idle_end: secs(idle_end),
                calm_from: secs(calm_from),
            },
        }
    }

    /// A random fault every 10–40 s until the calm period, each undone after 5–90 s.
    fn random(nodes: usize, total: f64, warmup: f64, calm: f64, rng: &mut Rng) -> Self {
        let end = (total - calm).max(warmup);
        let mut faults = Vec::new();
        let mut t = warmup;
        loop {
            t += 10.0 + f64::from(rng.next_u32() % 30);
            if t >= end || nodes < 2 {
                break;
            }
            let length = (5.0 + f64::from(rng.next_u32() % 85)).min(end - t);
            let node = pick(rng, nodes);
            let (undo_at, fault, undo) = match rng.next_u32() % 6 {
                0 => (t + length, Fault::Crash(node), Some(Fault::Restart(node))),
                1 => (t + length, Fault::Pause(node), Some(Fault::Resume(node))),
                2 => {
                    let (a, b) = random_split(rng, nodes);
                    (
                        t + length,
                        Fault::Partition {
                            from: a,
                            to: b,
                            both: true,
                        },
                        Some(Fault::Heal),
                    )
                }
                3 => {
                    let (a, b) = random_split(rng, nodes);
                    (
                        t + length,
                        Fault::Partition {
                            from: a,
                            to: b,
                            both: false,
                        },
                        Some(Fault::Heal),
                    )
                }
                4 => (t, Fault::Roam(node), None),
                _ => (t + length, Fault::Crash(node), Some(Fault::Restart(node))),
            };
            faults.push((secs(t), fault));
            if let Some(undo) = undo {
                faults.push((secs(undo_at), undo));
            }
        }
        // Whatever is still in force ends when the calm begins.
        for node in 0..nodes {
            faults.push((secs(end), Fault::Restart(node)));
            faults.push((secs(end), Fault::Resume(node)));
        }
        faults.push((secs(end), Fault::Heal));
        faults.sort_by_key(|(t, _)| *t);
        Schedule {
            faults,
            phases: Phases {
                idle_start: secs(warmup),
                idle_end: secs(warmup),
                calm_from: secs(end),
            },
        }
    }
}
