//! Which numbers of one origin's sequence were handled: every number up to `through`, and
//! some above it (events can arrive out of order through other devices). Persisted, so a
//! restart never hands the same event to the handlers twice.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// Numbers above `through` remembered at most; past it the oldest gap is given up (those
/// events expired or were lost for good) so that memory stays bounded.
pub const MAX_ABOVE: usize = 4096;

/// The handled numbers of one sequence (numbers start at 1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handled {
    through: u64,
    above: BTreeSet<u64>,
}

impl Handled {
    /// Whether `seq` was handled.
    pub fn contains(&self, seq: u64) -> bool {
        seq <= self.through || self.above.contains(&seq)
    }

    /// Every number up to this one was handled.
    pub fn through(&self) -> u64 {
        self.through
    }

    /// Records `seq` as handled; `false` if it already was.
    pub fn insert(&mut self, seq: u64) -> bool {
        if self.contains(seq) {
            return false;
        }
        self.above.insert(seq);
        if self.above.len() > MAX_ABOVE {
            if let Some(first) = self.above.first().copied() {
                self.through = first;
            }
        }
        while self
            .above
            .first()
            .is_some_and(|first| *first <= self.through.saturating_add(1))
        {
            if let Some(first) = self.above.pop_first() {
                self.through = self.through.max(first);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn every_number_is_handled_once_in_any_order(mut seqs in proptest::collection::vec(1u64..200, 0..300)) {
            let mut handled = Handled::default();
            let mut seen = BTreeSet::new();
            for seq in seqs.drain(..) {
                prop_assert_eq!(handled.insert(seq), seen.insert(seq));
                prop_assert!(handled.contains(seq));
            }
            let contiguous = (1..).take_while(|n| seen.contains(n)).count() as u64;
            prop_assert_eq!(handled.through(), contiguous);
        }
    }

    #[test]
    fn numbers_at_the_end_of_their_range_do_not_overflow() {
        let mut handled = Handled::default();
        assert!(handled.insert(u64::MAX));
        assert!(handled.insert(u64::MAX - 1));
        assert!(!handled.insert(u64::MAX));
        assert!(handled.contains(u64::MAX - 1) && !handled.contains(7));
    }
}
