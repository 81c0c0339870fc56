//! One catch-up at a time. A replica that meets many peers at once (a mesh forming, a
//! device back from a long absence) used to ask each of them for what it lacked, and took
//! the same writes from every one of them (300 devices starting together: each write
//! arrived about eleven times). Now it asks one peer and waits for the whole answer; the
//! others are asked after it, by a digest that by then is often the same as theirs.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::identity::DeviceId;
use crate::time::Timestamp;

/// How long an answer may make no progress before the next peer is asked anyway (the
/// peer went away unnoticed, or the question was lost).
pub const ANSWER_PATIENCE: Duration = Duration::from_secs(10);

/// Whose answer is awaited, and who is asked after.
#[derive(Debug, Default)]
pub(super) struct CatchUpTurns {
    /// The peer asked, and when its answer last made progress.
    awaited: Option<(DeviceId, Timestamp)>,
    /// Peers to ask once the answer is in (a set: each once, in a fixed order).
    waiting: BTreeSet<DeviceId>,
}

impl CatchUpTurns {
    /// Whether `peer` may be asked now: nobody else's answer is awaited (or it stalled).
    /// If so, its answer is the one awaited; if not, it is asked after.
    pub(super) fn take(&mut self, now: Timestamp, peer: DeviceId) -> bool {
        match self.awaited {
            Some((awaited, at)) if awaited != peer && now < at + ANSWER_PATIENCE => {
                self.waiting.insert(peer);
                false
            }
            _ => {
                self.waiting.remove(&peer);
                self.awaited = Some((peer, now));
                true
            }
        }
    }

    /// A part of an answer came from `from`: it is making progress.
    pub(super) fn progress(&mut self, now: Timestamp, from: &DeviceId) {
        if let Some((awaited, at)) = &mut self.awaited {
            if awaited == from {
                *at = now;
            }
        }
    }

    /// The whole of an answer from `from` is in, or `from` went away. Returns whether the
    /// turn passed (it was the answer awaited).
    pub(super) fn done(&mut self, from: &DeviceId) -> bool {
        self.waiting.remove(from);
        if self.awaited.is_some_and(|(awaited, _)| awaited == *from) {
            self.awaited = None;
            return true;
        }
        false
    }

    /// The next peer to ask, while no answer is awaited.
    pub(super) fn next_waiting(&mut self) -> Option<DeviceId> {
        if self.awaited.is_some() {
            return None;
        }
        self.waiting.pop_first()
    }

    /// When the awaited answer has stalled, if anyone waits on it.
    pub(super) fn deadline(&self) -> Option<Timestamp> {
        match self.awaited {
            Some((_, at)) if !self.waiting.is_empty() => Some(at + ANSWER_PATIENCE),
            _ => None,
        }
    }

    /// Whether the awaited answer stalled by `now` (the turn then passes).
    pub(super) fn stalled(&mut self, now: Timestamp) -> bool {
        match self.awaited {
            Some((awaited, _)) if self.deadline().is_some_and(|deadline| now >= deadline) => {
                self.done(&awaited)
            }
            _ => false,
        }
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
        assert!(turns.take(at(0), device(1)));
        assert!(
            turns.take(at(0), device(1)),
            "the awaited peer may be asked again"
        );
        assert!(!turns.take(at(1), device(2)));
        assert!(!turns.take(at(1), device(3)));
        assert!(!turns.done(&device(2)), "not the one awaited; no longer waiting");
        assert_eq!(turns.next_waiting(), None, "an answer is awaited");
        assert!(turns.done(&device(1)));
        assert_eq!(turns.next_waiting(), Some(device(3)));
        assert_eq!(turns.next_waiting(), None);
        assert!(turns.take(at(2), device(3)));
    }

    #[test]
    fn a_stalled_answer_passes_the_turn_and_progress_holds_it() {
        let mut turns = CatchUpTurns::default();
        assert!(turns.take(at(0), device(1)));
        assert_eq!(turns.deadline(), None, "nobody waits");
        assert!(!turns.take(at(0), device(2)));
        assert_eq!(turns.deadline(), Some(at(0) + ANSWER_PATIENCE));
        turns.progress(at(8), &device(1));
        assert!(!turns.stalled(at(10)));
        assert_eq!(turns.deadline(), Some(at(8) + ANSWER_PATIENCE));
        assert!(turns.stalled(at(18)));
        assert_eq!(turns.next_waiting(), Some(device(2)));
        assert!(turns.take(at(18), device(2)));
    }
}
