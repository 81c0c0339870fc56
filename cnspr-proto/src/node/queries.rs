//! The queries this device asked, and the targets that have not answered yet. Queries
//! are not durable: a target that restarts before its first answer lost the question,
//! and one that became unreachable cannot answer. Either is reported at once
//! ([`super::Event::QueryFailed`]), rather than left to look silent at the timeout.

use std::collections::{BTreeMap, BTreeSet};

use crate::identity::DeviceId;

/// Why a target of a query will not answer it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryFailure {
    /// It started again after it was asked, and before it answered.
    Restarted,
    /// It became unreachable (or left) before it answered.
    Unreachable,
}

/// Open queries and the targets each still waits for.
#[derive(Debug, Default)]
pub(super) struct OpenQueries {
    /// Per target, the queries it has not answered yet.
    waiting: BTreeMap<DeviceId, BTreeSet<u64>>,
    /// Per query, its targets that have not answered yet.
    targets: BTreeMap<u64, BTreeSet<DeviceId>>,
}

impl OpenQueries {
    /// Query `id` went to `targets`.
    pub(super) fn asked(&mut self, id: u64, targets: &[DeviceId]) {
        if targets.is_empty() {
            return;
        }
        for target in targets {
            self.waiting.entry(*target).or_default().insert(id);
        }
        self.targets.insert(id, targets.iter().copied().collect());
    }

    /// `from` answered query `id`: it no longer waits for it.
    pub(super) fn answered(&mut self, from: &DeviceId, id: u64) {
        if let Some(ids) = self.waiting.get_mut(from) {
            ids.remove(&id);
            if ids.is_empty() {
                self.waiting.remove(from);
            }
        }
        if let Some(targets) = self.targets.get_mut(&id) {
            targets.remove(from);
        }
    }

    /// `peer` can no longer answer: the queries it had not answered, now failed for it.
    pub(super) fn lost(&mut self, peer: &DeviceId) -> Vec<u64> {
        let ids: Vec<u64> = self.waiting.remove(peer).into_iter().flatten().collect();
        for id in &ids {
            if let Some(targets) = self.targets.get_mut(id) {
                targets.remove(peer);
            }
        }
        ids
    }

    /// Query `id` collects no more answers.
    pub(super) fn done(&mut self, id: u64) {
        for target in self.targets.remove(&id).into_iter().flatten() {
            if let Some(ids) = self.waiting.get_mut(&target) {
                ids.remove(&id);
                if ids.is_empty() {
                    self.waiting.remove(&target);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_lost_before_answering_fails_only_the_queries_it_owes() {
        let (a, b) = (DeviceId::from_bytes([1; 32]), DeviceId::from_bytes([2; 32]));
        let mut open = OpenQueries::default();
        open.asked(1, &[a, b]);
        open.asked(2, &[a]);
        open.asked(3, &[a]);
        open.answered(&a, 1);
        open.done(3);
        assert_eq!(open.lost(&a), vec![2]);
        assert!(open.lost(&a).is_empty(), "reported once");
        assert_eq!(open.lost(&b), vec![1]);
        open.done(1);
        open.done(2);
        assert!(open.waiting.is_empty() && open.targets.is_empty());
    }
}
