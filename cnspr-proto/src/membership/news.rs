//! Membership news: applying updates by SWIM's incarnation rules, refuting news about this
//! device, flooding what is new, and declaring suspects unreachable.

use crate::identity::{DeviceId, Signature};
use crate::membership::claim::{self, Claim};
use crate::membership::message::{Body, Status, Update};
use crate::membership::suspicion::Suspicion;
use crate::membership::{Member, Membership, MembershipEvent, Outgoing};
use crate::time::Timestamp;
use crate::transport::relay_path::is_relay_address;

impl Membership {
    /// A direct message from `from` proved it alive at `incarnation`; its signed `claim`
    /// of that incarnation, if it came along, goes with our news of it.
    pub(super) fn handle_incarnation(
        &mut self,
        now: Timestamp,
        from: DeviceId,
        incarnation: u64,
        claim: Option<Signature>,
    ) {
        let Some(member) = self.members.get(&from) else {
            return;
        };
        if incarnation > member.incarnation {
            let returning = !member.is_live();
            let mut update = Update {
                proof: claim,
                ..self.finding(from, incarnation, Status::Alive, member.address)
            };
            if !claim_verifies(&update) {
                update.proof = None;
            }
            self.apply_update(now, update, None);
            // Its two nearest live neighbours on each side of the ring bring it up to
            // date (two, so one lost or stale sender does not leave it behind); more
            // would only repeat the same news.
            let own = self.own;
            let live = |id: &DeviceId| *id == own || self.members.get(id).is_some_and(Member::is_live);
            if returning && self.ring.neighbourhood_of(&from, 2, live).contains(&own) {
                self.send_state(from);
            }
        } else if member.status != Status::Alive {
            // It speaks but we hold it suspect, unreachable or gone at its incarnation:
            // tell it, so it refutes with a higher one.
            let update = self.finding(from, member.incarnation, member.status, None);
            self.send(from, Body::News, vec![update]);
        }
    }

    /// Tells a device that just came back (restarted, woke, healed) everything we know
    /// of the members, whatever their state: the news it missed left the piggyback queues long ago, and
    /// without it it would not even know where devices that moved meanwhile are now.
    fn send_state(&mut self, to: DeviceId) {
        self.send_state_with(to, None);
    }

    /// [`Membership::send_state`], the first message carrying `view`.
    pub(super) fn send_state_with(&mut self, to: DeviceId, view: Option<crate::membership::ViewCheck>) {
        let mut state: Vec<Update> = self
            .members
            .values()
            .filter(|m| m.fresh && m.id != to)
            .map(|m| {
                self.finding(
                    m.id,
                    m.incarnation,
                    // Our verdict may be older than a refutation we have not heard: passed on
                    // as a suspicion, so a device that is in fact alive gets to refute it.
                    if m.status == Status::Unreachable {
                        Status::Suspect
                    } else {
                        m.status
                    },
                    m.address,
                )
            })
            .collect();
        state.push(self.own_update(Status::Alive));
        // The view digest, if any, goes first, in the room of one update.
        let per_envelope = self.config.piggyback_max.max(2);
        let first = per_envelope - usize::from(view.is_some());
        let rest = state.split_off(first.min(state.len()));
        let chunks = std::iter::once((state, view))
            .chain(rest.chunks(per_envelope).map(|chunk| (chunk.to_vec(), None)));
        for (updates, view) in chunks {
            let envelope = self.envelope(to, Body::News, updates, view);
            self.outgoing.push_back(Outgoing { to, envelope });
        }
    }

    /// Tells `to` this device's news of `about` (its state, and the address this device
    /// reaches it at), when both are live members and that address is known: how a relay
    /// introduces the two ends it carries between.
    pub fn introduce(&mut self, to: DeviceId, about: DeviceId) {
        let live = |id: &DeviceId| self.members.get(id).is_some_and(Member::is_live);
        if to == about || !live(&to) {
            return;
        }
        let Some(m) = self
            .members
            .get(&about)
            .filter(|m| m.status == Status::Alive && m.address.is_some())
        else {
            return;
        };
        let update = self.finding(about, m.incarnation, m.status, m.address);
        self.send(to, Body::News, vec![update]);
    }

    /// Applies one piece of news from `source` (`None`: our own finding). What changes our
    /// view is flooded on; an address it names that our view did not take is reported
    /// ([`MembershipEvent::AddressHeard`]).
    pub(super) fn apply_update(&mut self, now: Timestamp, update: Update, source: Option<DeviceId>) {
        // Only news of a live device names where it is worth calling (a relayed path's
        // name is never news from elsewhere).
        let named = update
            .address
            .filter(|address| update.status == Status::Alive && !is_relay_address(address))
            .map(|address| (update.member, address));
        self.apply_news(now, update, source);
        let Some((member, address)) = named else {
            return;
        };
        if self
            .members
            .get(&member)
            .is_some_and(|m| m.address != Some(address))
        {
            self.events
                .push_back(MembershipEvent::AddressHeard { member, address });
        }
    }

    fn apply_news(&mut self, now: Timestamp, update: Update, source: Option<DeviceId>) {
        if update.member == self.own {
            self.refute(update);
            return;
        }
        let Some(member) = self.members.get(&update.member) else {
            return;
        };
        let newer = update.incarnation > member.incarnation;
        let same = update.incarnation == member.incarnation;
        let changed = match update.status {
            Status::Alive => newer,
            Status::Suspect => newer || (same && member.status == Status::Alive),
            Status::Unreachable => newer || (same && member.is_live()),
            Status::Left => newer || (same && member.status != Status::Left),
        };
        // Checked only for news that would change our view (a signature check per copy
        // of old news would cost more than all the rest of it).
        let claimed = changed && source.is_some() && needs_claim(&update, member);
        if claimed && !claim_verifies(&update) {
            return;
        }
        // We heard it at this incarnation from itself, which passes on no signature: its
        // claim, once some news brings it, goes along with our news of it from now on.
        let covers = same && Claim::backing(member.status) == Claim::backing(update.status);
        if covers && member.proof.is_none() && update.proof.is_some() && claim_verifies(&update) {
            if let Some(member) = self.members.get_mut(&update.member) {
                member.proof = update.proof;
            }
        }
        let Some(member) = self.members.get(&update.member) else {
            return;
        };
        if !changed && same && update.status == Status::Alive && member.status == Status::Alive {
            // Where a device went travels as far as the news of its state would: a
            // device that never talks to it must still find it when it needs to.
            if self.adopt_address(now, &update) {
                self.spread(update, source);
            }
            return;
        }
        if changed {
            // It started again since we last had keys with it: ours are dead, and it may
            // not know where we are. A device that does not probe it would otherwise
            // keep sealing with them, unheard, and never tell it.
            let restarted = update.status == Status::Alive
                && member.incarnation != 0
                && update.incarnation >> 32 > member.incarnation >> 32;
            let adopt = member.address.is_none()
                || (update.status == Status::Alive && !self.heard_lately(member, now));
            if restarted {
                self.request_rehandshake(update.member);
                self.events.push_back(MembershipEvent::Restarted {
                    member: update.member,
                });
            }
            if adopt {
                if let Some(address) = update.address {
                    self.set_address(update.member, address);
                }
            }
            self.set_status(now, update.member, update.incarnation, update.status, false);
            // Our own findings carry only claims we checked.
            if claimed || source.is_none() {
                if let Some(member) = self.members.get_mut(&update.member) {
                    member.proof = update.proof;
                }
            }
            if update.status == Status::Suspect {
                self.start_suspicion(now, &update);
            }
            self.spread(update, source);
            return;
        }
        // Same suspicion from another accuser on the roster: a Lifeguard confirmation.
        let known_accuser = update.reporter == self.own || self.members.contains_key(&update.reporter);
        if same && known_accuser && update.status == Status::Suspect && member.status == Status::Suspect {
            let needed = self.config.suspicion_confirmations;
            let confirmed = self
                .members
                .get_mut(&update.member)
                .and_then(|m| m.suspicion.as_mut())
                .is_some_and(|s| s.confirm(update.reporter, needed));
            self.time_suspicion(&update.member);
            if confirmed {
                self.spread(update, source);
            }
        }
    }

    /// News of where a device we have not heard from lately went (it roamed); returns
    /// whether it moved our view.
    fn adopt_address(&mut self, now: Timestamp, update: &Update) -> bool {
        let Some(address) = update.address else {
            return false;
        };
        let Some(member) = self.members.get(&update.member) else {
            return false;
        };
        if self.heard_lately(member, now) || member.address == Some(address) {
            return false;
        }
        self.set_address(update.member, address);
        true
    }

    fn heard_lately(&self, member: &Member, now: Timestamp) -> bool {
        member
            .last_heard
            .is_some_and(|heard| now.saturating_since(heard) < self.config.recently_heard)
    }

    fn start_suspicion(&mut self, now: Timestamp, update: &Update) {
        if let Some(member) = self.members.get_mut(&update.member) {
            member.suspicion = Some(Suspicion::new(now, update.reporter));
        }
        self.time_suspicion(&update.member);
        // A monitor of the suspect checks for itself; if it cannot reach it either, its
        // own accusation confirms the suspicion.
        if update.reporter != self.own && self.monitored().contains(&update.member) {
            self.start_confirmation(now, update.member);
        }
    }

    /// News that this device is suspect, unreachable or gone: prove otherwise with a
    /// higher incarnation (unless it really is leaving).
    fn refute(&mut self, update: Update) {
        // Only this device raises its incarnation (and a restart raises its boot epoch
        // above everything it said before): news about it from beyond is bogus.
        if self.leaving || update.status == Status::Alive || update.incarnation != self.incarnation {
            return;
        }
        // Nobody believes this device left without its own signed goodbye: a made-up one
        // needs no answer (answering would worsen its health at every lie).
        if update.status == Status::Left {
            return;
        }
        self.raise_incarnation();
        self.health.worse();
        let alive = self.own_update(Status::Alive);
        self.spread(alive, None);
    }

    /// Sends news to every live ring neighbour and queues it for piggybacking, which
    /// repairs what the flood missed. News that came from a flood is not sent again to
    /// the source's own neighbourhood, which the source reached itself: in a mesh of up
    /// to `2k + 1` devices nothing is forwarded at all.
    fn spread(&mut self, update: Update, source: Option<DeviceId>) {
        self.broadcasts.push(update.clone());
        let targets = if update.status == Status::Suspect {
            self.suspicion_audience(&update, source)
        } else {
            let reached = source
                .map(|source| self.neighbourhood(&source))
                .unwrap_or_default();
            let mut targets = self.neighbourhood(&self.own);
            targets.retain(|to| Some(*to) != source && !reached.contains(to));
            targets
        };
        for to in targets {
            let batch = self.flood.entry(to).or_default();
            batch.retain(|queued| queued.member != update.member);
            batch.push(update.clone());
        }
    }

    /// Who needs to hear a suspicion at once: the suspect (to refute it) and its ring
    /// neighbourhood (its monitors, which confirm it and run the timer). Everyone else
    /// learns the verdict or the refutation, which flood; the suspicion itself only
    /// rides along piggybacked. The accuser or confirmer tells them all, so news of a
    /// suspicion received from another device is passed on only to the suspect.
    fn suspicion_audience(&self, update: &Update, source: Option<DeviceId>) -> Vec<DeviceId> {
        let mut audience = self.neighbourhood(&update.member);
        if source.is_some() {
            // Except to the suspect itself, from its neighbours: more copies of the
            // suspicion make a refutation more likely to happen in time.
            let neighbour = audience.contains(&self.own) && update.member != self.own;
            return if neighbour {
                vec![update.member]
            } else {
                Vec::new()
            };
        }
        audience.push(update.member);
        audience.retain(|to| *to != self.own);
        audience
    }

    pub(super) fn suspicion_deadline(&self, member: &Member) -> Option<Timestamp> {
        let suspicion = member.suspicion.as_ref()?;
        let config = &self.config;
        Some(suspicion.deadline(
            config.suspicion_min,
            config.suspicion_max,
            config.suspicion_confirmations,
        ))
    }

    /// Suspects whose time ran out without a refutation become unreachable.
    pub(super) fn expire_suspicions(&mut self, now: Timestamp) {
        let expired: Vec<(DeviceId, u64)> = self
            .suspicions
            .due(now)
            .iter()
            .filter_map(|id| self.members.get(id))
            .filter(|m| m.status == Status::Suspect)
            .map(|m| (m.id, m.incarnation))
            .collect();
        for (member, incarnation) in expired {
            let update = self.finding(member, incarnation, Status::Unreachable, None);
            self.apply_update(now, update, None);
        }
    }
}

/// Whether news of `member` from another device needs the member's own signed claim: it
/// names an incarnation we have not heard the member at, or says it left.
fn needs_claim(update: &Update, member: &Member) -> bool {
    update.status == Status::Left || update.incarnation > member.incarnation
}

/// Whether the news carries the member's signature of its incarnation (of leaving at it,
/// for [`Status::Left`]).
fn claim_verifies(update: &Update) -> bool {
    let claim = Claim::backing(update.status);
    update
        .proof
        .is_some_and(|proof| claim::verifies(&update.member, update.incarnation, claim, &proof))
}
