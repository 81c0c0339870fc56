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

    /// The value of `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.position(key).ok().map(|at| &self.entries[at].1)
    }

    /// Whether `key` has a value.
    pub fn contains_key(&self, key: &K) -> bool {
        self.position(key).is_ok()
    }

    /// The value of `key`, made the default first if it has none.
    pub fn entry_or_default(&mut self, key: K) -> &mut V
    where
        V: Default,
    {
        let at = match self.position(&key) {
            Ok(at) => at,
            Err(at) => {
                self.insert_at(at, key, V::default());
                at
            }
        };
        &mut self.entries[at].1
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
                        *map.entry_or_default(key) += u32::from(value);
                        *model.entry(key).or_insert(0u32) += u32::from(value);
                    }
                    1 => prop_assert_eq!(map.insert(key, u32::from(value)), model.insert(key, u32::from(value))),
                    _ => prop_assert_eq!(map.remove(&key), model.remove(&key)),
                }
            }
            prop_assert_eq!(map.first_key(), model.keys().next());
            let entries: Vec<(u8, u32)> = map.iter().map(|(k, v)| (*k, *v)).collect();
            let expected: Vec<(u8, u32)> = model.iter().map(|(k, v)| (*k, *v)).collect();
            prop_assert_eq!(entries, expected);
            for key in 0..20 {
                prop_assert_eq!(map.get(&key), model.get(&key));
                prop_assert_eq!(map.contains_key(&key), model.contains_key(&key));
            }
            prop_assert_eq!(map.len(), model.len());
        }
    }
}
