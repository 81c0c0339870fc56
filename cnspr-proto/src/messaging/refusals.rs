//! Events refused because the handler run queue was full, and fetching them back.
//!
//! Once one event of an origin is refused, every later one of that origin is refused too
//! (so they come back in order), until the queue has room for it again. Then the peers
//! that offered them are asked, with a summary restricted to those origins, for what
//! this device lacks; the ask is repeated every [`RETRY`] while the origin's handled
//! events have not reached the last refused one, and given up after [`ATTEMPTS`] asks in
//! a row that brought nothing (no peer keeps them any more: their lifetime or the event
//! log's bound ended, as for a device that was away).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::identity::DeviceId;
use crate::time::Timestamp;
use crate::timers::Timers;

/// How long a fetch waits for what it asked before asking again.
pub const RETRY: Duration = Duration::from_secs(2);
/// Asks in a row that bring nothing before a fetch is given up.
pub const ATTEMPTS: u32 = 5;

/// Refusals of one origin's events.
#[derive(Debug, Default)]
struct Refused {
    /// The peers that offered them.
    offered_by: BTreeSet<DeviceId>,
    /// The highest event number refused.
    up_to: u64,
}

/// A fetch of refused events under way.
#[derive(Debug)]
struct Fetch {
    refused: Refused,
    /// How far the origin's events were handled at the last ask.
    asked_through: u64,
    /// Asks in a row that brought nothing.
    attempts: u32,
}

/// What to ask for now: an origin, and the peers that offered its events.
pub type Ask = (DeviceId, BTreeSet<DeviceId>);

/// Every origin refused or being fetched back.
#[derive(Debug, Default)]
pub struct Refusals {
    refusing: BTreeMap<DeviceId, Refused>,
    fetching: BTreeMap<DeviceId, Fetch>,
    retries: Timers<DeviceId>,
    /// Offers refused since start.
    count: u64,
}

impl Refusals {
    /// Whether `origin`'s events are refused now.
    pub fn is_refusing(&self, origin: &DeviceId) -> bool {
        self.refusing.contains_key(origin)
    }

    /// Offers refused since start.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// An offer of a direct message was refused.
    pub fn count_refused_message(&mut self) {
        self.count += 1;
    }

    /// Event `seq` of `origin` (offered by `offered_by`, if it came from a peer) was
    /// refused; a fetch of `origin` under way stops.
    pub fn refuse(&mut self, origin: DeviceId, seq: u64, offered_by: Option<DeviceId>) {
        self.count += 1;
        let refused = self.refusing.entry(origin).or_insert_with(|| {
            let fetch = self.fetching.remove(&origin);
            self.retries.clear(&origin);
            fetch.map(|f| f.refused).unwrap_or_default()
        });
        refused.offered_by.extend(offered_by);
        refused.up_to = refused.up_to.max(seq);
    }

    /// The refused origins `has_room` now admits, moved to fetching; `through` says how
    /// far each origin's events were handled.
    pub fn ready(
        &mut self,
        now: Timestamp,
        has_room: impl Fn(&DeviceId) -> bool,
        through: impl Fn(&DeviceId) -> u64,
    ) -> Vec<Ask> {
        let ready: Vec<DeviceId> = self.refusing.keys().filter(|o| has_room(o)).copied().collect();
        let mut asks = Vec::new();
        for origin in ready {
            let Some(refused) = self.refusing.remove(&origin) else {
                continue;
            };
            asks.push((origin, refused.offered_by.clone()));
            self.retries.set(origin, Some(now + RETRY));
            self.fetching.insert(
                origin,
                Fetch {
                    refused,
                    asked_through: through(&origin),
                    attempts: 1,
                },
            );
        }
        asks
    }

    /// The fetches whose wait ended with events still missing, to ask again; those
    /// complete, or given up, end.
    pub fn due(&mut self, now: Timestamp, through: impl Fn(&DeviceId) -> u64) -> Vec<Ask> {
        let mut asks = Vec::new();
        for origin in self.retries.due(now) {
            self.retries.clear(&origin);
            let Some(fetch) = self.fetching.get_mut(&origin) else {
                continue;
            };
            let handled = through(&origin);
            if handled >= fetch.refused.up_to {
                self.fetching.remove(&origin);
                continue;
            }
            fetch.attempts = if handled > fetch.asked_through {
                1
            } else {
                fetch.attempts + 1
            };
            if fetch.attempts > ATTEMPTS {
                self.fetching.remove(&origin);
                continue;
            }
            fetch.asked_through = handled;
            asks.push((origin, fetch.refused.offered_by.clone()));
            self.retries.set(origin, Some(now + RETRY));
        }
        asks
    }

    /// When [`Refusals::due`] next has work.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.retries.next()
    }

    /// Forgets `origin` (removed from the roster).
    pub fn forget(&mut self, origin: &DeviceId) {
        self.refusing.remove(origin);
        self.fetching.remove(origin);
        self.retries.clear(origin);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_origin_is_fetched_until_its_events_are_in_or_nothing_comes() {
        let (origin, peer) = (DeviceId::from_bytes([1; 32]), DeviceId::from_bytes([2; 32]));
        let mut refusals = Refusals::default();
        let start = Timestamp::from_micros(0);
        refusals.refuse(origin, 5, Some(peer));
        refusals.refuse(origin, 9, None);
        assert!(refusals.is_refusing(&origin));
        assert!(refusals.ready(start, |_| false, |_| 4).is_empty(), "no room yet");
        let asks = refusals.ready(start, |_| true, |_| 4);
        assert_eq!(asks, vec![(origin, BTreeSet::from([peer]))]);
        assert!(!refusals.is_refusing(&origin));
        // Half came: asked again, with a fresh count of attempts.
        let mut now = start + RETRY;
        assert_eq!(refusals.due(now, |_| 7).len(), 1);
        // Nothing more ever comes: given up after the attempts.
        let mut asked = 0;
        for _ in 0..10 {
            now = now + RETRY;
            asked += refusals.due(now, |_| 7).len();
        }
        assert_eq!(asked as u32, ATTEMPTS - 1);
        assert!(refusals.poll_timeout().is_none());
        // All came: the fetch ends.
        refusals.refuse(origin, 12, Some(peer));
        refusals.ready(now, |_| true, |_| 7);
        assert!(refusals.due(now + RETRY, |_| 12).is_empty());
        assert!(refusals.poll_timeout().is_none());
        assert_eq!(refusals.count(), 3);
    }
}
