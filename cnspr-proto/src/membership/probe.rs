//! Probing: the direct ping, the indirect probe through other monitors, the probes this
//! device makes on others' request, and reconnecting to unreachable devices.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::identity::DeviceId;
use crate::membership::message::{Body, Status};
use crate::membership::{Member, Membership, MAX_PROBES, MAX_RELAYED};
use crate::time::Timestamp;

/// One of our probes in flight.
#[derive(Debug, Clone)]
pub(super) struct Probe {
    pub(super) target: DeviceId,
    pub(super) sent: Timestamp,
    pub(super) deadline: Timestamp,
    pub(super) phase: Phase,
    /// A failed probe raises a suspicion; an announcement to an unheard device does not.
    pub(super) accuses: bool,
    /// A confirmation of someone else's suspicion: the accuser already ruled out its own
    /// link through relays, so a failed direct probe is enough to confirm.
    pub(super) confirms: bool,
    /// The ping waited for a handshake, so its round trip measures that too.
    pub(super) rtt_spoiled: bool,
    /// Relays asked to probe the target that have not reported yet.
    pub(super) relays: Vec<DeviceId>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    Direct,
    Indirect { asked: usize, nacks: usize },
}

/// A probe this device makes because another asked it to.
#[derive(Debug, Clone)]
pub(super) struct RelayedProbe {
    pub(super) requester: DeviceId,
    pub(super) requester_seq: u32,
    pub(super) target: DeviceId,
    pub(super) deadline: Timestamp,
}

/// The sequence numbers of entries whose deadline has come.
fn due<T>(entries: &BTreeMap<u32, T>, now: Timestamp, deadline: impl Fn(&T) -> Timestamp) -> Vec<u32> {
    entries
        .iter()
        .filter(|(_, entry)| deadline(entry) <= now)
        .map(|(seq, _)| *seq)
        .collect()
}

impl Membership {
    /// The probe round: the monitored device whose probe is due first, if it is due: one
    /// that did not prove itself alive for about `recently_heard` ([`Member::probe_due`]).
    /// Every membership message counts as proof, so of two devices that monitor each
    /// other only one needs to probe, and a device that falls silent is probed as soon
    /// as its silence is long enough. While this device's own health is poor it probes at
    /// every (stretched) tick, whatever it heard: answered probes are its only way back to
    /// health, and one whose monitored devices kept talking to it would never probe, and
    /// stay slow to find the next failure for good. Such a probe of a device heard lately
    /// accuses nobody if it goes unanswered (an unhealthy device is the likelier culprit).
    pub(super) fn probe_next(&mut self, now: Timestamp) {
        let first_due = self
            .monitored()
            .into_iter()
            .filter(|id| !self.probes.values().any(|p| p.target == *id))
            .min_by_key(|id| self.members.get(id).and_then(|m| m.probe_due));
        let Some(target) = first_due else {
            return;
        };
        let due = self.members.get(&target).and_then(|m| m.probe_due);
        let due_now = due.is_none_or(|due| due <= now);
        // A probe made only for health accuses nobody: the target was heard lately.
        if due_now || self.health.multiplier() > 1 {
            self.start_probe(now, target, due_now);
        }
    }

    /// `base`, give or take a random tenth of it.
    pub(super) fn jittered(&mut self, base: Duration) -> Duration {
        let tenth = (base.as_micros() / 10).max(1) as u64;
        base * 9 / 10 + Duration::from_micros(self.rng.next_u64() % (2 * tenth))
    }

    /// Pings `target` and starts waiting for its answer.
    pub(super) fn start_probe(&mut self, now: Timestamp, target: DeviceId, accuses: bool) {
        self.start_probe_as(now, target, accuses, false);
    }

    /// Pings `target` to confirm a suspicion raised by another device.
    pub(super) fn start_confirmation(&mut self, now: Timestamp, target: DeviceId) {
        self.start_probe_as(now, target, true, true);
    }

    fn start_probe_as(&mut self, now: Timestamp, target: DeviceId, accuses: bool, confirms: bool) {
        if self.probes.len() >= MAX_PROBES || self.probes.values().any(|p| p.target == target) {
            return;
        }
        let (seq, deadline) = (self.next_seq(), self.probe_deadline(now));
        self.probes.insert(
            seq,
            Probe {
                target,
                sent: now,
                deadline,
                phase: Phase::Direct,
                accuses,
                confirms,
                rtt_spoiled: false,
                relays: Vec::new(),
            },
        );
        let your_rtt_micros = self
            .members
            .get(&target)
            .and_then(|m| m.rtt.own_least())
            .map(|rtt| u32::try_from(rtt.as_micros()).unwrap_or(u32::MAX));
        let view = self.view_check(now);
        self.send_with_view(target, Body::Ping { seq, your_rtt_micros }, Vec::new(), view);
    }

    /// The last message to `target` waited for a handshake: the probes to it in flight
    /// will not measure a round trip.
    pub fn discount_rtt(&mut self, target: &DeviceId) {
        for probe in self.probes.values_mut().filter(|p| p.target == *target) {
            probe.rtt_spoiled = true;
        }
    }

    /// A ping that carries no RTT figure (a relayed or repeated one).
    fn ping_plain(&mut self, target: DeviceId, seq: u32) {
        let body = Body::Ping {
            seq,
            your_rtt_micros: None,
        };
        self.send(target, body, Vec::new());
    }

    /// When a ping sent now is given up: the probe timeout, stretched by local health.
    fn probe_deadline(&self, now: Timestamp) -> Timestamp {
        now + self.config.probe_timeout * self.health.multiplier()
    }

    /// Unreachable devices are tried again now and then, so partitions heal and devices
    /// that come back without announcing themselves are found.
    pub(super) fn reconnect(&mut self, now: Timestamp) {
        let candidates: Vec<DeviceId> = self
            .members
            .values()
            .filter(|m| m.status == Status::Unreachable && m.address.is_some())
            .map(|m| m.id)
            .collect();
        if candidates.is_empty() {
            return;
        }
        for _ in 0..self.config.indirect_relays.max(1) {
            let pick = candidates[(self.rng.next_u32() as usize) % candidates.len()];
            self.start_probe(now, pick, false);
        }
    }

    pub(super) fn handle_body(&mut self, now: Timestamp, from: DeviceId, body: Body) {
        match body {
            Body::Ping { seq, your_rtt_micros } => {
                let member = self.members.get_mut(&from);
                if let (Some(micros), Some(member)) = (your_rtt_micros, member) {
                    member
                        .rtt
                        .reported(std::time::Duration::from_micros(u64::from(micros)));
                }
                self.send(from, Body::Ack { seq }, Vec::new());
            }
            Body::Ack { seq } => self.on_ack(now, from, seq),
            Body::ProbeRequest { seq, target } => self.on_probe_request(now, from, seq, target),
            Body::ProbeReport {
                seq,
                target,
                reachable,
                address,
            } => self.on_probe_report(now, from, seq, target, reachable, address),
            Body::News => {}
        }
    }

    fn on_ack(&mut self, now: Timestamp, from: DeviceId, seq: u32) {
        if let Some(relayed) = self.relayed.get(&seq).filter(|r| r.target == from).cloned() {
            self.relayed.remove(&seq);
            let body = Body::ProbeReport {
                seq: relayed.requester_seq,
                target: from,
                reachable: true,
                address: self.members.get(&from).and_then(|m| m.address),
            };
            self.send(relayed.requester, body, Vec::new());
            return;
        }
        let Some(probe) = self.probes.get(&seq).filter(|p| p.target == from).cloned() else {
            return;
        };
        self.probes.remove(&seq);
        self.health.better();
        // The round trip is only meaningful for the direct phase; a late direct answer
        // in the indirect phase still proves the direct path works.
        if probe.phase == Phase::Direct && !probe.rtt_spoiled {
            if let Some(member) = self.members.get_mut(&from) {
                member.rtt.record(now.saturating_since(probe.sent));
            }
        }
        self.mark_reached(now, from, false);
    }

    fn on_probe_request(&mut self, now: Timestamp, from: DeviceId, requester_seq: u32, target: DeviceId) {
        let known_live = self.members.get(&target).is_some_and(Member::is_live);
        if target == self.own || target == from || !known_live || self.relayed.len() >= MAX_RELAYED {
            return;
        }
        let (seq, deadline) = (self.next_seq(), self.probe_deadline(now));
        self.relayed.insert(
            seq,
            RelayedProbe {
                requester: from,
                requester_seq,
                target,
                deadline,
            },
        );
        self.ping_plain(target, seq);
    }

    fn on_probe_report(
        &mut self,
        now: Timestamp,
        from: DeviceId,
        seq: u32,
        target: DeviceId,
        reachable: bool,
        reached_at: Option<SocketAddr>,
    ) {
        // Only a relay we asked may report, and only once.
        let asked = |p: &&mut Probe| p.target == target && p.relays.contains(&from);
        let Some(probe) = self.probes.get_mut(&seq).filter(asked) else {
            return;
        };
        probe.relays.retain(|relay| *relay != from);
        let Phase::Indirect { nacks, .. } = &mut probe.phase else {
            return;
        };
        if !reachable {
            *nacks += 1;
            return;
        }
        self.probes.remove(&seq);
        self.health.better();
        // We could not reach it where we thought it was, a relay could: it moved.
        if let Some(address) = reached_at {
            self.set_address(target, address);
        }
        // Alive, as a relay proved: probed again after the usual silence, not at the next
        // tick (a device reachable only through relays cost a probe round every tick:
        // ten datagrams a second behind a NAT).
        let probe_due = now + self.jittered(self.config.recently_heard);
        if let Some(member) = self.members.get_mut(&target) {
            member.probe_due = Some(probe_due);
            member.via = Some(from);
            self.reached_through.push_back((target, from));
        }
        self.mark_reached(now, target, true);
    }

    /// A probe reached `target`, directly or through a relay.
    pub(super) fn mark_reached(&mut self, now: Timestamp, target: DeviceId, indirect: bool) {
        let Some(member) = self.members.get_mut(&target) else {
            return;
        };
        if !indirect {
            member.via = None;
        }
        if member.status == Status::Alive && member.indirect != indirect {
            let incarnation = member.incarnation;
            self.set_status(now, target, incarnation, Status::Alive, indirect);
        }
    }

    /// Moves probes past their deadline on: direct to indirect, indirect to suspicion.
    pub(super) fn expire_probes(&mut self, now: Timestamp) {
        for seq in due(&self.probes, now, |p| p.deadline) {
            let Some(probe) = self.probes.remove(&seq) else {
                continue;
            };
            if probe.phase == Phase::Direct {
                self.request_rehandshake(probe.target);
            }
            match probe.phase {
                Phase::Direct if probe.confirms => self.accuse(now, probe.target),
                Phase::Direct if probe.accuses => self.go_indirect(now, seq, probe),
                Phase::Direct => {}
                Phase::Indirect { asked, nacks } => {
                    // Relays that answered "no" prove our own link works; silence from
                    // them suggests the trouble may be ours.
                    if nacks < asked {
                        self.health.worse();
                    }
                    self.accuse(now, probe.target);
                }
            }
        }
        for seq in due(&self.relayed, now, |r| r.deadline) {
            if let Some(relay) = self.relayed.remove(&seq) {
                let body = Body::ProbeReport {
                    seq: relay.requester_seq,
                    target: relay.target,
                    reachable: false,
                    address: None,
                };
                self.send(relay.requester, body, Vec::new());
            }
        }
    }

    /// A direct probe got no answer: the usual reason is that the target restarted and
    /// lost the keys we still seal with, so a fresh handshake is asked for.
    pub(super) fn request_rehandshake(&mut self, target: DeviceId) {
        if !self.rehandshakes.contains(&target) {
            self.rehandshakes.push_back(target);
        }
    }

    fn go_indirect(&mut self, now: Timestamp, seq: u32, mut probe: Probe) {
        let target = probe.target;
        let relays = self.relay_candidates(&target);
        let relays: Vec<DeviceId> = relays.into_iter().take(self.config.indirect_relays).collect();
        if relays.is_empty() {
            self.health.worse();
            self.accuse(now, target);
            return;
        }
        for relay in &relays {
            self.send(*relay, Body::ProbeRequest { seq, target }, Vec::new());
        }
        // Lifeguard: one more direct try alongside the indirect ones.
        self.ping_plain(target, seq);
        probe.phase = Phase::Indirect {
            asked: relays.len(),
            nacks: 0,
        };
        probe.relays = relays;
        probe.deadline = now + self.config.indirect_timeout * self.health.multiplier();
        self.probes.insert(seq, probe);
    }

    /// Our probe of `target` failed completely: suspect it (or confirm a suspicion).
    fn accuse(&mut self, now: Timestamp, target: DeviceId) {
        let Some(member) = self.members.get(&target) else {
            return;
        };
        if !member.is_live() {
            return;
        }
        let update = self.finding(target, member.incarnation, Status::Suspect, None);
        self.apply_update(now, update, None);
    }
}
