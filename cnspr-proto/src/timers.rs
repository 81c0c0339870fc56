//! Deadlines as data: each layer keeps what is due when in a [`Timers`] table, which
//! answers "what is next" and "what is due now" without walking the layer's state
//! (quinn-proto's timer table, generalised to one deadline per key).
//!
//! A layer sets a key's deadline whenever the state behind it changes, and clears it when
//! nothing is pending; `next` is O(log n), `set` O(log n), and `due` costs what is due.
//! Keys iterate in (deadline, key) order, so the layers stay deterministic.

use std::collections::{BTreeMap, BTreeSet};

use crate::time::Timestamp;

/// One deadline per key, on the core's clock (or any other ordered time `T`, such as Unix
/// seconds for expiries that survive restarts).
#[derive(Debug, Clone)]
pub struct Timers<K: Ord + Clone, T: Ord + Copy = Timestamp> {
    by_time: BTreeSet<(T, K)>,
    by_key: BTreeMap<K, T>,
}

impl<K: Ord + Clone, T: Ord + Copy> Default for Timers<K, T> {
    fn default() -> Self {
        Self {
            by_time: BTreeSet::new(),
            by_key: BTreeMap::new(),
        }
    }
}

impl<K: Ord + Clone, T: Ord + Copy> Timers<K, T> {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key`'s deadline (`None` clears it), replacing any earlier one.
    pub fn set(&mut self, key: K, at: Option<T>) {
        match at {
            Some(at) => {
                if let Some(old) = self.by_key.insert(key.clone(), at) {
                    if old == at {
                        return;
                    }
                    self.by_time.remove(&(old, key.clone()));
                }
                self.by_time.insert((at, key));
            }
            None => self.clear(&key),
        }
    }

    /// Clears `key`'s deadline.
    pub fn clear(&mut self, key: &K) {
        if let Some(old) = self.by_key.remove(key) {
            self.by_time.remove(&(old, key.clone()));
        }
    }

    /// `key`'s deadline.
    pub fn get(&self, key: &K) -> Option<T> {
        self.by_key.get(key).copied()
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<T> {
        self.by_time.first().map(|(at, _)| *at)
    }

    /// The key with the earliest deadline.
    pub fn first(&self) -> Option<K> {
        self.by_time.first().map(|(_, key)| key.clone())
    }

    /// The keys with a deadline, in key order.
    pub fn keys(&self) -> impl Iterator<Item = K> + '_ {
        self.by_key.keys().cloned()
    }

    /// The keys with a deadline from `key` on, in key order.
    pub fn keys_from<'a>(&'a self, key: &K) -> impl Iterator<Item = K> + 'a {
        self.by_key.range(key.clone()..).map(|(key, _)| key.clone())
    }

    /// The keys due by `now`, earliest first (their deadlines stay set).
    pub fn due(&self, now: T) -> Vec<K> {
        self.by_time
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, key)| key.clone())
            .collect()
    }

    /// How many keys have a deadline.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether no key has one.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(micros: u64) -> Timestamp {
        Timestamp::from_micros(micros)
    }

    #[test]
    fn the_next_deadline_follows_every_change() {
        let mut timers = Timers::new();
        assert_eq!(timers.next(), None);
        timers.set("b", Some(at(20)));
        timers.set("a", Some(at(30)));
        timers.set("c", Some(at(10)));
        assert_eq!(timers.next(), Some(at(10)));
        timers.set("c", Some(at(40)));
        assert_eq!(timers.next(), Some(at(20)));
        assert_eq!(timers.due(at(30)), vec!["b", "a"]);
        timers.clear(&"b");
        timers.set("a", None);
        assert_eq!(timers.due(at(100)), vec!["c"]);
        assert_eq!(timers.len(), 1);
        assert_eq!(timers.get(&"c"), Some(at(40)));
    }
}
