//! What happens next in a simulation: items due at virtual times, taken earliest first
//! and, at the same time, in the order they were put in (so a run is the same for a
//! seed). A binary heap: an ordered map made a tenth of a 300-device run's time.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use cnspr_proto::time::Timestamp;

/// Items by when they are due.
pub struct Agenda<T> {
    heap: BinaryHeap<Entry<T>>,
    next_sequence: u64,
}

struct Entry<T> {
    at: Timestamp,
    sequence: u64,
    item: T,
}

impl<T> Default for Agenda<T> {
    fn default() -> Self {
        Self {
            heap: BinaryHeap::new(),
            next_sequence: 0,
        }
    }
}

impl<T> Agenda<T> {
    /// Puts `item` in, due at `at` (after those already in for the same time).
    pub fn push(&mut self, at: Timestamp, item: T) {
        self.next_sequence += 1;
        self.heap.push(Entry {
            at,
            sequence: self.next_sequence,
            item,
        });
    }

    /// Takes out the first item due, if it is due by `end`.
    pub fn pop_by(&mut self, end: Timestamp) -> Option<(Timestamp, T)> {
        if self.heap.peek()?.at > end {
            return None;
        }
        self.heap.pop().map(|entry| (entry.at, entry.item))
    }
}

// The heap is a max-heap: the entry due first is the greatest.
impl<T> Ord for Entry<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.sequence).cmp(&(self.at, self.sequence))
    }
}

impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.sequence) == (other.at, other.sequence)
    }
}

impl<T> Eq for Entry<T> {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn earliest_first_then_in_the_order_put_in() {
        let at = |ms| Timestamp::ZERO + Duration::from_millis(ms);
        let mut agenda = Agenda::default();
        for (ms, item) in [(5, "c"), (1, "a"), (5, "d"), (1, "b"), (9, "e")] {
            agenda.push(at(ms), item);
        }
        let mut taken = Vec::new();
        while let Some((_, item)) = agenda.pop_by(at(5)) {
            taken.push(item);
        }
        assert_eq!(taken, ["a", "b", "c", "d"], "the one due at 9 ms stays");
        assert_eq!(agenda.pop_by(at(9)), Some((at(9), "e")));
        assert_eq!(agenda.pop_by(at(100)), None);
    }
}
