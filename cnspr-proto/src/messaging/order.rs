//! Events of one origin handed to the handlers in the origin's order. Each event is its
//! own transfer, so a lost chunk lets a later event finish first; one that arrives ahead
//! of a gap waits (bounded, for at most [`HOLD`]) for the events before it. A gap that does
//! not fill in that time (events from before this device joined, or long expired) is
//! given up: later events flow at once again, and a straggler from inside it is handled
//! as it comes.

use std::collections::BTreeMap;
use std::time::Duration;

use super::kept::Kept;
use crate::identity::DeviceId;
use crate::time::Timestamp;
use crate::timers::Timers;

/// Longest an event waits for the events before it.
pub const HOLD: Duration = Duration::from_secs(2);
/// Most events waiting at once; beyond it one is handed on out of order.
pub const MAX_HELD: usize = 1024;

/// Where each origin's sequence stands, and the events waiting for a gap.
#[derive(Debug, Default)]
pub struct EventOrder {
    /// Per origin, the number up to which events are handed on (handled, or given up).
    cursors: BTreeMap<DeviceId, u64>,
    held: BTreeMap<(DeviceId, u64), Kept>,
    deadlines: Timers<(DeviceId, u64)>,
}

impl EventOrder {
    /// Whether event `seq` of `origin` is waiting.
    pub fn is_held(&self, origin: &DeviceId, seq: u64) -> bool {
        self.held.contains_key(&(*origin, seq))
    }

    /// Event `seq` of `origin` arrived, not handled yet; `through` is how far its
    /// origin's events were handled. Returns the events to hand on now, in order (it and
    /// those that waited for it), or nothing while it waits.
    pub fn arrive(
        &mut self,
        now: Timestamp,
        origin: DeviceId,
        seq: u64,
        through: u64,
        event: Kept,
    ) -> Vec<(u64, Kept)> {
        let cursor = self.cursors.entry(origin).or_default();
        *cursor = (*cursor).max(through);
        if seq > cursor.saturating_add(1) && self.held.len() < MAX_HELD {
            self.held.insert((origin, seq), event);
            self.deadlines.set((origin, seq), Some(now + HOLD));
            return Vec::new();
        }
        let mut ready = vec![(seq, event)];
        ready.extend(self.advance(origin, seq));
        ready
    }

    /// The events whose wait is over (their gap is given up), with those that waited for
    /// them, in order.
    pub fn release_due(&mut self, now: Timestamp) -> Vec<(DeviceId, u64, Kept)> {
        let mut released = Vec::new();
        for (origin, seq) in self.deadlines.due(now) {
            let Some(event) = self.take(origin, seq) else {
                continue;
            };
            released.push((origin, seq, event));
            for (seq, event) in self.advance(origin, seq) {
                released.push((origin, seq, event));
            }
        }
        released
    }

    /// When the next wait ends.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.deadlines.next()
    }

    /// Forgets `origin` (removed from the roster).
    pub fn forget(&mut self, origin: &DeviceId) {
        self.cursors.remove(origin);
        for (origin, seq) in super::keys_of(&self.held, origin) {
            self.take(origin, seq);
        }
    }

    /// Moves `origin`'s cursor to `seq` and takes the waiting events that follow it.
    fn advance(&mut self, origin: DeviceId, seq: u64) -> Vec<(u64, Kept)> {
        let cursor = self.cursors.entry(origin).or_default();
        *cursor = (*cursor).max(seq);
        let mut next = *cursor;
        let mut ready = Vec::new();
        while let Some(following) = next.checked_add(1) {
            let Some(event) = self.take(origin, following) else {
                break;
            };
            next = following;
            ready.push((next, event));
        }
        if let Some(cursor) = self.cursors.get_mut(&origin) {
            *cursor = (*cursor).max(next);
        }
        ready
    }

    fn take(&mut self, origin: DeviceId, seq: u64) -> Option<Kept> {
        self.deadlines.clear(&(origin, seq));
        self.held.remove(&(origin, seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messaging::Tag;

    fn event(n: u8) -> Kept {
        Kept::new(Tag::new("t").expect("valid"), vec![n], 100)
    }

    fn seqs(ready: &[(u64, Kept)]) -> Vec<u64> {
        ready.iter().map(|(seq, _)| *seq).collect()
    }

    #[test]
    fn later_events_wait_for_earlier_ones_then_a_gap_is_given_up() {
        let origin = DeviceId::from_bytes([1; 32]);
        let now = Timestamp::from_micros(1_000_000);
        let mut order = EventOrder::default();
        assert_eq!(seqs(&order.arrive(now, origin, 1, 0, event(1))), vec![1]);
        assert!(order.arrive(now, origin, 3, 1, event(3)).is_empty());
        assert!(order.is_held(&origin, 3));
        assert_eq!(seqs(&order.arrive(now, origin, 2, 1, event(2))), vec![2, 3]);
        // 5 waits for 4, which never comes: given up after the hold, 6 then flows at once.
        assert!(order.arrive(now, origin, 5, 3, event(5)).is_empty());
        assert_eq!(order.poll_timeout(), Some(now + HOLD));
        assert!(order.release_due(now).is_empty());
        let released = order.release_due(now + HOLD);
        assert_eq!(
            released.iter().map(|(_, seq, _)| *seq).collect::<Vec<_>>(),
            vec![5]
        );
        assert_eq!(seqs(&order.arrive(now, origin, 6, 3, event(6))), vec![6]);
        assert_eq!(
            seqs(&order.arrive(now, origin, 4, 3, event(4))),
            vec![4],
            "a straggler"
        );
        assert_eq!(order.poll_timeout(), None);
    }
}
