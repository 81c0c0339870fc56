//! One catch-up at a time. A replica that meets many peers at once (a mesh forming, a
//! device back from a long absence) used to ask each of them for what it lacked, and took
//! the same writes from every one of them (300 devices starting together: each write
//! arrived about eleven times). Now it asks one peer and waits for its answer; the others
//! are asked after it, lowest device ID first.
//!
//! A peer holds the turn only while its answer comes: 10 s without a new part of it, or
//! a minute in all while others wait, and the turn passes (the answer still arriving is
//! taken in as before). A stolen device that never finishes an answer, or asks again and
//! again, delays the others by that minute, not for good.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::identity::DeviceId;
use crate::time::Timestamp;

/// How long an answer may bring no new part before the next peer is asked anyway (the
/// peer went away unnoticed, or the question was lost).
pub const ANSWER_PATIENCE: Duration = Duration::from_secs(10);

/// The longest one peer holds the turn while others wait, however its answer comes.
pub const TURN_MAX: Duration = Duration::from_secs(60);

/// The peer whose answer is awaited.
#[derive(Debug, Clone, Copy)]
struct Awaited {
    peer: DeviceId,
    /// When it was asked (asking it again does not move this).
    asked: Timestamp,
    /// When a new part of its answer last came (or it was asked).
    progress: Timestamp,
}

/// Whose answer is awaited, and who is asked after.
#[derive(Debug, Default)]
pub(super) struct CatchUpTurns {
    awaited: Option<Awaited>,
    /// Peers to ask once the answer is in, each once, with whether it should ask back
    /// (what any of the asks put off wanted).
    waiting: BTreeMap<DeviceId, bool>,
}

impl CatchUpTurns {
    /// Whether `peer` may be asked now (asking back if `reply`): nobody else's answer is
    /// awaited, or it stalled. If so, its answer is the one awaited; if not, it is asked
    /// after.
    pub(super) fn take(&mut self, now: Timestamp, peer: DeviceId, reply: bool) -> bool {
        match self.awaited {
            Some(awaited) if awaited.peer == peer => true,
            Some(awaited) if now < self.turn_ends(&awaited) => {
                *self.waiting.entry(peer).or_default() |= reply;
                false
            }
            _ => {
                self.waiting.remove(&peer);
                self.awaited = Some(Awaited {
                    peer,
                    asked: now,
                    progress: now,
                });
                true
            }
        }
    }

    /// A new part of an answer came from `from`: it is making progress.
    pub(super) fn progress(&mut self, now: Timestamp, from: &DeviceId) {
        if let Some(awaited) = &mut self.awaited {
            if awaited.peer == *from {
                awaited.progress = now;
            }
        }
    }

    /// The whole of an answer from `from` is in (to this question or an earlier one), or
    /// `from` went away. Returns whether the turn passed (it was the answer awaited).
    pub(super) fn done(&mut self, from: &DeviceId) -> bool {
        self.waiting.remove(from);
        if self.awaited.is_some_and(|awaited| awaited.peer == *from) {
            self.awaited = None;
            return true;
        }
        false
    }

    /// The next peer to ask, and whether it should ask back, while no answer is awaited.
    pub(super) fn next_waiting(&mut self) -> Option<(DeviceId, bool)> {
        if self.awaited.is_some() {
            return None;
        }
        self.waiting.pop_first()
    }

    /// When the awaited answer's turn ends, if anyone waits on it.
    pub(super) fn deadline(&self) -> Option<Timestamp> {
        match &self.awaited {
            Some(awaited) if !self.waiting.is_empty() => Some(self.turn_ends(awaited)),
            _ => None,
        }
    }

    /// Whether the awaited answer's turn ended by `now` (it then passes).
    pub(super) fn stalled(&mut self, now: Timestamp) -> bool {
        match self.awaited {
            Some(awaited) if self.deadline().is_some_and(|deadline| now >= deadline) => {
                self.done(&awaited.peer)
            }
            _ => false,
        }
    }

    fn turn_ends(&self, awaited: &Awaited) -> Timestamp {
        (awaited.progress + ANSWER_PATIENCE).min(awaited.asked + TURN_MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::DeviceKey;

    fn device(n: u8) -> DeviceId {
        DeviceKey::from_seed([n; 32]).device_id()
    }

    fn at(secs: u64) -> Timestamp {
        Timestamp::ZERO + Duration::from_secs(secs)
    }

    #[test]
    fn a_second_peer_waits_for_the_first_answer() {
        let mut turns = CatchUpTurns::default();
        assert!(turns.take(at(0), device(1), false));
        assert!(
            turns.take(at(0), device(1), false),
            "the awaited peer may be asked again"
        );
        assert!(!turns.take(at(1), device(2), false));
        assert!(!turns.take(at(1), device(3), false));
        assert!(!turns.take(at(1), device(3), true));
        assert!(!turns.done(&device(2)), "not the one awaited; no longer waiting");
        assert_eq!(turns.next_waiting(), None, "an answer is awaited");
        assert!(turns.done(&device(1)));
        assert_eq!(
            turns.next_waiting(),
            Some((device(3), true)),
            "asks back if any put-off ask would have"
        );
        assert_eq!(turns.next_waiting(), None);
        assert!(turns.take(at(2), device(3), true));
    }

    #[test]
    fn a_stalled_answer_passes_the_turn_and_new_parts_hold_it() {
        let mut turns = CatchUpTurns::default();
        assert!(turns.take(at(0), device(1), false));
        assert_eq!(turns.deadline(), None, "nobody waits");
        assert!(!turns.take(at(0), device(2), false));
        assert_eq!(turns.deadline(), Some(at(0) + ANSWER_PATIENCE));
        turns.progress(at(8), &device(1));
        assert!(!turns.stalled(at(10)));
        assert_eq!(turns.deadline(), Some(at(8) + ANSWER_PATIENCE));
        assert!(turns.stalled(at(18)));
        assert_eq!(turns.next_waiting(), Some((device(2), false)));
        assert!(turns.take(at(18), device(2), false));
    }

    #[test]
    fn neither_asking_again_nor_endless_parts_hold_the_turn_past_its_limit() {
        let mut turns = CatchUpTurns::default();
        assert!(turns.take(at(0), device(1), false));
        assert!(!turns.take(at(0), device(2), false));
        assert!(turns.take(at(9), device(1), false));
        assert!(turns.stalled(at(10)), "asking again does not restart the wait");
        assert_eq!(turns.next_waiting(), Some((device(2), false)));
        assert!(turns.take(at(10), device(2), false));
        assert!(!turns.take(at(10), device(3), false));
        let mut now = 10;
        while !turns.stalled(at(now)) {
            turns.progress(at(now), &device(2));
            now += 5;
        }
        assert_eq!(
            at(now),
            at(10) + TURN_MAX,
            "a part every 5 s holds it a minute only"
        );
    }
}
