//! Making room in a bounded map: the entry that matters least (the oldest, the first to
//! expire) goes.

use std::collections::BTreeMap;

/// Removes the entry of `map` whose `rank` is least; returns its key.
pub(crate) fn remove_least<K: Ord + Clone, V, R: Ord>(
    map: &mut BTreeMap<K, V>,
    rank: impl Fn(&V) -> R,
) -> Option<K> {
    let least = map
        .iter()
        .min_by_key(|(_, value)| rank(value))
        .map(|(key, _)| key.clone())?;
    map.remove(&least);
    Some(least)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_ranked_entry_goes() {
        let mut map = BTreeMap::from([("a", 3), ("b", 1), ("c", 2)]);
        assert_eq!(remove_least(&mut map, |v| *v), Some("b"));
        assert_eq!(map.len(), 2);
        assert_eq!(remove_least(&mut BTreeMap::<u8, u8>::new(), |v| *v), None);
    }
}
