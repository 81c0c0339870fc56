//! The queue of news to piggyback on outgoing messages: each update is sent a bounded
//! number of times, least-sent first, and newer news about a device replaces older.

use std::collections::{BTreeMap, BTreeSet};

use crate::identity::DeviceId;
use crate::membership::message::Update;

/// Pending news, at most one entry per device.
#[derive(Debug, Default)]
pub struct Broadcasts {
    pending: BTreeMap<DeviceId, (Update, u32)>,
    /// The same entries by (times sent, device): what goes next is at the front, found
    /// without sorting every pending update at every send (after a partition healed, half
    /// the mesh is news).
    by_sends: BTreeSet<(u32, DeviceId)>,
}

impl Broadcasts {
    /// Queues `update`, replacing older news about the same device.
    pub fn push(&mut self, update: Update) {
        let member = update.member;
        if let Some((_, sent)) = self.pending.insert(member, (update, 0)) {
            self.by_sends.remove(&(sent, member));
        }
        self.by_sends.insert((0, member));
    }

    /// Up to `max` updates to send now, least-sent first; each counts as sent once more,
    /// and is dropped after `limit` sends.
    pub fn take(&mut self, max: usize, limit: u32) -> Vec<Update> {
        let order: Vec<(u32, DeviceId)> = self.by_sends.iter().take(max).copied().collect();
        let mut chosen = Vec::new();
        for (sent, id) in order {
            self.by_sends.remove(&(sent, id));
            let Some((update, times)) = self.pending.get_mut(&id) else {
                continue;
            };
            chosen.push(update.clone());
            *times += 1;
            if *times >= limit {
                self.pending.remove(&id);
            } else {
                self.by_sends.insert((*times, id));
            }
        }
        chosen
    }

    /// Whether nothing is waiting.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::message::Status;

    fn update(member: u8, incarnation: u64) -> Update {
        Update {
            member: DeviceId::from_bytes([member; 32]),
            incarnation,
            status: Status::Alive,
            reporter: DeviceId::from_bytes([0; 32]),
            address: None,
            proof: None,
        }
    }

    #[test]
    fn each_update_is_sent_limit_times_least_sent_first() {
        let mut queue = Broadcasts::default();
        queue.push(update(1, 1));
        queue.push(update(2, 1));
        assert_eq!(queue.take(1, 2).len(), 1);
        let second = queue.take(1, 2);
        assert_eq!(
            second[0].member,
            DeviceId::from_bytes([2; 32]),
            "the unsent one goes first"
        );
        assert_eq!(queue.take(5, 2).len(), 2);
        assert!(queue.is_empty(), "both sent twice");
    }

    #[test]
    fn newer_news_replaces_older() {
        let mut queue = Broadcasts::default();
        queue.push(update(1, 1));
        queue.push(update(1, 2));
        assert_eq!(queue.take(5, 1), vec![update(1, 2)]);
    }
}
