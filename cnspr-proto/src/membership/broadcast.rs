//! The queue of news to piggyback on outgoing messages: each update is sent a bounded
//! number of times, least-sent first, and newer news about a device replaces older.

use std::collections::BTreeMap;

use crate::identity::DeviceId;
use crate::membership::message::Update;

/// Pending news, at most one entry per device.
#[derive(Debug, Default)]
pub struct Broadcasts {
    pending: BTreeMap<DeviceId, (Update, u32)>,
}

impl Broadcasts {
    /// Queues `update`, replacing older news about the same device.
    pub fn push(&mut self, update: Update) {
        self.pending.insert(update.member, (update, 0));
    }

    /// Up to `max` updates to send now, least-sent first; each counts as sent once more,
    /// and is dropped after `limit` sends.
    pub fn take(&mut self, max: usize, limit: u32) -> Vec<Update> {
        let mut order: Vec<(u32, DeviceId)> =
            self.pending.iter().map(|(id, (_, sent))| (*sent, *id)).collect();
        order.sort_unstable();
        let mut chosen = Vec::new();
        for (_, id) in order.into_iter().take(max) {
            if let Some((update, sent)) = self.pending.get_mut(&id) {
                chosen.push(update.clone());
                *sent += 1;
                if *sent >= limit {
                    self.pending.remove(&id);
                }
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
