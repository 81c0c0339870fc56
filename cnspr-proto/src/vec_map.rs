//! A small ordered map kept in one sorted vector.
//!
//! A key's causal context names the few devices that wrote it. As a `BTreeMap` each
//! context took a node of eleven entries, about 450 bytes for one, and every device holds
//! one per key (a roster entry and an address record per device of the mesh): at 150
//! devices that was a ninth of the simulator's memory. A sorted vector takes 40 bytes an
//! entry and finds a key by binary search. So do the claims on one name in the roster.

/// An ordered map of few entries, by key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VecMap<K, V> {
    entries: Vec<(K, V)>,
}

impl<K, V> Default for VecMap<K, V> {
    fn default() -> Self {
        Self { entries: Vec::new() }
    }
}

impl<K: Ord, V> VecMap<K, V> {
    /// An empty map.
    pub const fn new() -> Self {
        Self { entries: Vec::new() }
    }

    fn position(&self, key: &K) -> Result<usize, usize> {
        self.entries.binary_search_by(|(k, _)| k.cmp(key))
    }

    /// Puts a new entry at `at`. Room grows one entry at a time up to four (a vector's
    /// first growth would make room for four at once, and most maps hold one).
    fn insert_at(&mut self, at: usize, key: K, value: V) {
        if self.entries.len() == self.entries.capacity() && self.entries.len() < 4 {
            self.entries.reserve_exact(1);
        }
        self.entries.insert(at, (key, value));
    }

    /// A map of `entries` given in any order (a peer's, say): sorted once, the values of
    /// one key combined by `combine`, so that n entries cost O(n log n), never one
    /// insertion each.
    pub fn collect_with(entries: impl IntoIterator<Item = (K, V)>, combine: impl Fn(&mut V, V)) -> Self {
        let mut sorted: Vec<(K, V)> = entries.into_iter().collect();
        sorted.sort_by(|(a, _), (b, _)| a.cmp(b));
        let mut entries: Vec<(K, V)> = Vec::with_capacity(sorted.len());
        for (key, value) in sorted {
            match entries.last_mut() {
                Some((last, held)) if *last == key => combine(held, value),
                _ => entries.push((key, value)),
            }
        }
        Self { entries }
    }

    /// Takes in every entry of `other`, combining the values of keys both hold with
    /// `combine`: one pass over both.
    pub fn join_with(&mut self, other: &Self, combine: impl Fn(&mut V, V))
    where
        K: Clone,
        V: Clone,
    {
        let mine = std::mem::take(&mut self.entries);
        let mut joined = Vec::with_capacity(mine.len().max(other.entries.len()));
        let mut theirs = other.entries.iter().peekable();
        for (key, mut value) in mine {
            while let Some((their_key, their_value)) = theirs.next_if(|(k, _)| *k <= key) {
                if *their_key == key {
                    combine(&mut value, their_value.clone());
                } else {
                    joined.push((their_key.clone(), their_value.clone()));
                }
            }
            joined.push((key, value));
        }
        joined.extend(theirs.cloned());
        self.entries = joined;
    }

    /// The value of `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.position(key).ok().map(|at| &self.entries[at].1)
    }

    /// Sets the value of `key`; returns the one it replaced.
    pub fn insert(&mut self, key: K, value: V) -> Option<V> {
        match self.position(&key) {
            Ok(at) => Some(std::mem::replace(&mut self.entries[at].1, value)),
            Err(at) => {
                self.insert_at(at, key, value);
                None
            }
        }
    }

    /// Takes `key` out; returns its value.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.position(key).ok().map(|at| self.entries.remove(at).1)
    }

    /// The least key.
    pub fn first_key(&self) -> Option<&K> {
        self.entries.first().map(|(k, _)| k)
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&K, &V)> + Clone {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// Keys in order.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &K> + Clone {
        self.entries.iter().map(|(k, _)| k)
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it has none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<K, V> IntoIterator for VecMap<K, V> {
    type Item = (K, V);
    type IntoIter = std::vec::IntoIter<(K, V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    proptest! {
        /// It answers as a `BTreeMap` fed the same entries does.
        #[test]
        fn it_is_an_ordered_map(writes in proptest::collection::vec((0u8..20, any::<u16>(), 0u8..3), 0..60)) {
            let mut map = VecMap::new();
            let mut model = BTreeMap::new();
            for (key, value, how) in writes {
                match how {
                    0 => {
                        let sum = map.get(&key).copied().unwrap_or(0) + u32::from(value);
                        map.insert(key, sum);
                        *model.entry(key).or_insert(0u32) += u32::from(value);
                    }
                    1 => prop_assert_eq!(map.insert(key, u32::from(value)), model.insert(key, u32::from(value))),
                    _ => prop_assert_eq!(map.remove(&key), model.remove(&key)),
                }
            }
            prop_assert_eq!(map.first_key(), model.keys().next());
            // Built at once, and joined: as if each entry were put in one by one.
            let pairs: Vec<(u8, u32)> = model.iter().map(|(k, v)| (*k, *v)).collect();
            let half = pairs.len() / 2;
            let added = |held: &mut u32, more: u32| *held = held.wrapping_add(more);
            let mut joined = VecMap::collect_with(pairs[..half].iter().rev().copied(), added);
            joined.join_with(&VecMap::collect_with(pairs[half..].iter().copied(), added), added);
            prop_assert_eq!(&joined, &map);
            let doubled = VecMap::collect_with(pairs.iter().chain(&pairs).copied(), added);
            let twice: Vec<(u8, u32)> = pairs.iter().map(|(k, v)| (*k, v.wrapping_add(*v))).collect();
            prop_assert_eq!(doubled.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>(), twice);
            let entries: Vec<(u8, u32)> = map.iter().map(|(k, v)| (*k, *v)).collect();
            let expected: Vec<(u8, u32)> = model.iter().map(|(k, v)| (*k, *v)).collect();
            prop_assert_eq!(entries, expected);
            for key in 0..20 {
                prop_assert_eq!(map.get(&key), model.get(&key));
            }
            prop_assert_eq!(map.len(), model.len());
        }
    }
}
