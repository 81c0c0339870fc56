//! Watches every device's view of the others: measures detection, false alarms and
//! convergence, and checks the safety and liveness invariants.

use std::collections::BTreeSet;
use std::time::Duration;

use cnspr_proto::membership::MemberState;
use cnspr_proto::time::Timestamp;

/// Limits the invariants hold the protocol to.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// A device down for longer than this is reported `active` by no well-connected device.
    pub detection: Duration,
    /// After the network heals, every live device sees every other `active` within this.
    pub convergence: Duration,
}

struct Detection {
    target: usize,
    since: Timestamp,
    waiting: BTreeSet<usize>,
}

/// The omniscient observer of a run.
pub struct Observer {
    bounds: Bounds,
    /// `view[o][t]`: what device `o` shows for device `t`.
    view: Vec<Vec<MemberState>>,
    live: Vec<bool>,
    /// Devices down (crashed or paused), with since when: the only ones the ghost check
    /// looks at.
    down_since: std::collections::BTreeMap<usize, Timestamp>,
    /// Until when each device counts as recently disturbed (down, paused, moved).
    disturbed_until: Vec<Timestamp>,
    /// Until when the network counts as recently partitioned.
    partitioned_until: Timestamp,
    partitioned: bool,
    not_active_pairs: usize,
    detections_pending: Vec<Detection>,
    heal_pending: Option<Timestamp>,
    /// Seconds until every live device marked a crashed one unreachable.
    pub detections: Vec<f64>,
    /// Crashes that ended (restart) before every device noticed.
    pub undetected: usize,
    /// `unreachable` marks of a device that was up and reachable all along.
    pub false_unreachable: u64,
    /// Seconds from a heal until every live device saw every other `active`.
    pub convergence: Vec<f64>,
    /// What went wrong, with the virtual time.
    pub violations: Vec<String>,
}

fn seconds(from: Timestamp, to: Timestamp) -> f64 {
    to.saturating_since(from).as_secs_f64()
}

impl Observer {
    /// An observer of `nodes` devices that all start up, seeing nobody yet.
    pub fn new(nodes: usize, bounds: Bounds) -> Self {
        let mut view = vec![vec![MemberState::Unreachable; nodes]; nodes];
        for (own, row) in view.iter_mut().enumerate() {
            row[own] = MemberState::Active;
        }
        let mut observer = Self {
            bounds,
            view,
            live: vec![true; nodes],
            down_since: std::collections::BTreeMap::new(),
            disturbed_until: vec![Timestamp::ZERO; nodes],
            partitioned_until: Timestamp::ZERO,
            partitioned: false,
            not_active_pairs: 0,
            detections_pending: Vec::new(),
            heal_pending: None,
            detections: Vec::new(),
            undetected: 0,
            false_unreachable: 0,
            convergence: Vec::new(),
            violations: Vec::new(),
        };
        observer.recount();
        observer
    }

    fn recount(&mut self) {
        let n = self.live.len();
        self.not_active_pairs = (0..n)
            .flat_map(|o| (0..n).map(move |t| (o, t)))
            .filter(|&(o, t)| {
                o != t && self.live[o] && self.live[t] && self.view[o][t] != MemberState::Active
            })
            .count();
    }

    fn disturb(&mut self, node: usize, now: Timestamp) {
        self.disturbed_until[node] = now + self.bounds.detection;
    }

    /// Device `observer` now shows `target` as `state`.
    pub fn on_state(&mut self, now: Timestamp, observer: usize, target: usize, state: MemberState) {
        let pair_counts = self.live[observer] && self.live[target] && observer != target;
        let was_active = self.view[observer][target] == MemberState::Active;
        self.view[observer][target] = state;
        if pair_counts {
            match (was_active, state == MemberState::Active) {
                (true, false) => self.not_active_pairs += 1,
                (false, true) => self.not_active_pairs = self.not_active_pairs.saturating_sub(1),
                _ => {}
            }
        }
        if state == MemberState::Unreachable {
            self.on_unreachable(now, observer, target);
        }
        self.check_convergence(now);
    }

    fn on_unreachable(&mut self, now: Timestamp, observer: usize, target: usize) {
        if let Some(index) = self.detections_pending.iter().position(|d| d.target == target) {
            let detection = &mut self.detections_pending[index];
            detection.waiting.remove(&observer);
            if detection.waiting.is_empty() {
                let since = detection.since;
                self.detections_pending.remove(index);
                self.detections.push(seconds(since, now));
            }
            return;
        }
        let quiet = !self.partitioned && now >= self.partitioned_until;
        let undisturbed = now >= self.disturbed_until[target] && now >= self.disturbed_until[observer];
        if self.live[target] && quiet && undisturbed {
            self.false_unreachable += 1;
        }
    }

    fn check_convergence(&mut self, now: Timestamp) {
        if let Some(healed) = self.heal_pending {
            if self.not_active_pairs == 0 {
                self.convergence.push(seconds(healed, now));
                self.heal_pending = None;
            }
        }
    }

    /// `node` crashed: every live device must come to mark it unreachable.
    pub fn on_crash(&mut self, now: Timestamp, node: usize) {
        self.go_down(now, node);
        let waiting: BTreeSet<usize> = (0..self.live.len())
            .filter(|&o| self.live[o] && self.view[o][node] != MemberState::Unreachable)
            .collect();
        if waiting.is_empty() {
            self.detections.push(0.0);
        } else {
            self.detections_pending.push(Detection {
                target: node,
                since: now,
                waiting,
            });
        }
    }

    /// `node` was paused (lid closed).
    pub fn on_pause(&mut self, now: Timestamp, node: usize) {
        self.go_down(now, node);
    }

    fn go_down(&mut self, now: Timestamp, node: usize) {
        self.live[node] = false;
        self.down_since.insert(node, now);
        self.disturb(node, now);
        // A device that goes down no longer waits to detect anyone.
        for detection in &mut self.detections_pending {
            detection.waiting.remove(&node);
        }
        let finished: Vec<f64> = self
            .detections_pending
            .iter()
            .filter(|d| d.waiting.is_empty())
            .map(|d| seconds(d.since, now))
            .collect();
        self.detections.extend(finished);
        self.detections_pending.retain(|d| !d.waiting.is_empty());
        self.recount();
    }

    /// `node` runs again; `fresh` if it restarted (its view starts empty).
    pub fn on_up(&mut self, now: Timestamp, node: usize, fresh: bool) {
        let before = self.detections_pending.len();
        self.detections_pending.retain(|d| d.target != node);
        self.undetected += before - self.detections_pending.len();
        self.live[node] = true;
        self.down_since.remove(&node);
        self.disturb(node, now);
        // Convergence is owed from when the last device came back, not from a heal that
        // happened while it slept.
        if let Some(healed) = &mut self.heal_pending {
            *healed = now;
        }
        if fresh {
            for (target, state) in self.view[node].iter_mut().enumerate() {
                *state = if target == node {
                    MemberState::Active
                } else {
                    MemberState::Unreachable
                };
            }
        }
        self.recount();
    }

    /// `node` moved to a new address.
    pub fn on_roam(&mut self, now: Timestamp, node: usize) {
        self.disturb(node, now);
    }

    /// A partition began.
    pub fn on_partition(&mut self) {
        self.partitioned = true;
        self.heal_pending = None;
    }

    /// Every partition ended (or the calm period began): convergence is measured.
    pub fn on_heal(&mut self, now: Timestamp) {
        if self.partitioned {
            self.partitioned = false;
            self.partitioned_until = now + self.bounds.detection;
        }
        self.heal_pending = Some(now);
        self.check_convergence(now);
    }

    /// Checks the safety invariant from `observer`'s point of view: no device down for
    /// longer than the detection bound is shown `active` by a well-connected device.
    pub fn check_step(&mut self, now: Timestamp, observer: usize) {
        if !self.live[observer]
            || self.partitioned
            || now < self.partitioned_until
            || now < self.disturbed_until[observer]
        {
            return;
        }
        let mut reported = Vec::new();
        for (&target, &since) in &self.down_since {
            let overdue = now.saturating_since(since) > self.bounds.detection;
            if overdue && self.view[observer][target] == MemberState::Active {
                self.violations.push(format!(
                    "t={:.3}s: device {observer} still shows device {target} active, down since t={:.3}s",
                    seconds(Timestamp::ZERO, now),
                    seconds(Timestamp::ZERO, since),
                ));
                // One report per down period is enough.
                reported.push(target);
            }
        }
        for target in reported {
            self.down_since.remove(&target);
        }
        if let Some(healed) = self.heal_pending {
            if now.saturating_since(healed) > self.bounds.convergence {
                self.violations.push(format!(
                    "t={:.3}s: {} device pairs not active {:.0}s after the network healed",
                    seconds(Timestamp::ZERO, now),
                    self.not_active_pairs,
                    self.bounds.convergence.as_secs_f64(),
                ));
                self.heal_pending = None;
            }
        }
    }

    /// Liveness at the end: every live device reaches every other live one (`active`, or
    /// for a moment `suspect`/`indirect` while a lost datagram is being sorted out), and
    /// after the last heal there was a moment when all of them were `active` at once.
    pub fn check_end(&mut self, now: Timestamp) {
        let n = self.live.len();
        let stuck: Vec<String> = (0..n)
            .flat_map(|o| (0..n).map(move |t| (o, t)))
            .filter(|&(o, t)| o != t && self.live[o] && self.live[t])
            .filter(|&(o, t)| matches!(self.view[o][t], MemberState::Unreachable | MemberState::Left))
            .map(|(o, t)| format!("{o} sees {t} {}", self.view[o][t].as_str()))
            .collect();
        if !stuck.is_empty() {
            self.violations.push(format!(
                "t={:.3}s: at the end {} live pairs do not reach each other ({})",
                seconds(Timestamp::ZERO, now),
                stuck.len(),
                stuck.iter().take(5).cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        if let Some(healed) = self.heal_pending.take() {
            self.violations.push(format!(
                "t={:.3}s: devices never all saw each other active after the heal at t={:.3}s",
                seconds(Timestamp::ZERO, now),
                seconds(Timestamp::ZERO, healed),
            ));
        }
    }

    /// Whether `node` is running and awake.
    pub fn is_live(&self, node: usize) -> bool {
        self.live[node]
    }
}
