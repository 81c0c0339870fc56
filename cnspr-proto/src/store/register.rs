//! One key's value: a multi-value register with dotted version vectors.
//!
//! Every write gets a dot `(device, seq)` and carries a causal context: for each device,
//! the highest of its writes to this key that the writer had seen. A write supersedes
//! exactly what its context covers; writes neither saw are concurrent and kept side by side
//! as siblings. Merging keeps a sibling unless the other side's context covers it without
//! holding it, so merge is commutative, associative and idempotent, and concurrent writes
//! are never lost. A delete is a write of no value (a tombstone sibling).
//!
//! Some values are facts that must never be undone, whatever a writer's context claims:
//! the roster's removals. The store names them ([`Permanence`]); such a sibling, once
//! held, stays, and of several the one with the least dot is kept (one says it all), so
//! merge stays commutative, associative and idempotent and a forged context (a stolen
//! device claiming to have seen every write) cannot drop it.

use serde::{Deserialize, Serialize};

use super::hlc::Hlc;
use crate::identity::DeviceId;
use crate::vec_map::VecMap;

/// One value written to a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sibling {
    /// Who wrote it.
    pub device: DeviceId,
    /// The writer's write number (its dot with `device`).
    pub seq: u64,
    /// When, on the writer's hybrid logical clock.
    pub hlc: Hlc,
    /// The value; `None` for a delete.
    #[serde(with = "serde_bytes")]
    pub value: Option<Vec<u8>>,
}

impl Sibling {
    /// The deterministic order of concurrent writes: the later clock wins, then the
    /// greater device ID, so every device picks the same winner.
    fn rank(&self) -> (Hlc, DeviceId, u64) {
        (self.hlc, self.device, self.seq)
    }
}

/// Of two write numbers of one device in a context, the later is what was seen.
fn keep_latest(held: &mut u64, other: u64) {
    *held = (*held).max(other);
}

/// Which siblings of a key are permanent: kept whatever a context covers.
pub type Permanence = fn(&Sibling) -> bool;

/// No sibling is permanent (every key but the roster's).
pub fn nothing_permanent(_: &Sibling) -> bool {
    false
}

/// A key's state: its current siblings and what has been seen of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Register {
    siblings: Vec<Sibling>,
    context: VecMap<DeviceId, u64>,
}

impl Register {
    /// The current siblings (more than one: a conflict), in winner-first order.
    pub fn siblings(&self) -> &[Sibling] {
        &self.siblings
    }

    /// The sibling every device shows: the latest by hybrid clock, ties by device ID.
    pub fn winner(&self) -> Option<&Sibling> {
        self.siblings.first()
    }

    /// Whether concurrent writes are kept.
    pub fn in_conflict(&self) -> bool {
        self.siblings.len() > 1
    }

    /// Whether what a reader sees is "no value" (deleted, or all siblings deletes).
    pub fn is_deleted(&self) -> bool {
        self.winner().is_none_or(|w| w.value.is_none())
    }

    /// The causal context: for each device, its latest write to this key seen here.
    pub fn context(&self) -> &VecMap<DeviceId, u64> {
        &self.context
    }

    /// Builds a register from decoded parts, made well-formed whatever they hold: siblings
    /// in winner-first order with no dot twice, and a context that covers every sibling.
    pub fn from_parts(
        mut siblings: Vec<Sibling>,
        context: impl IntoIterator<Item = (DeviceId, u64)>,
    ) -> Self {
        siblings.sort_by_key(|s| std::cmp::Reverse(s.rank()));
        let mut dots = std::collections::BTreeSet::new();
        siblings.retain(|s| dots.insert((s.device, s.seq)));
        // Sorted once: a peer's context may name thousands of devices in any order.
        let implied = siblings.iter().map(|s| (s.device, s.seq));
        let context = VecMap::collect_with(implied.chain(context), keep_latest);
        Register { siblings, context }
    }

    /// The context entries its siblings do not imply: with the siblings, all that must be
    /// sent for [`Register::from_parts`] to rebuild it.
    pub fn context_beyond_siblings(&self) -> impl Iterator<Item = (DeviceId, u64)> + '_ {
        self.context.iter().filter_map(|(device, seq)| {
            let implied = self.siblings.iter().any(|s| s.device == *device && s.seq >= *seq);
            (!implied).then_some((*device, *seq))
        })
    }

    fn covers(context: &VecMap<DeviceId, u64>, sibling: &Sibling) -> bool {
        context
            .get(&sibling.device)
            .is_some_and(|seen| *seen >= sibling.seq)
    }

    /// Whether it holds a sibling with the same dot as `sibling`.
    pub fn holds(&self, sibling: &Sibling) -> bool {
        self.siblings
            .iter()
            .any(|s| s.device == sibling.device && s.seq == sibling.seq)
    }

    /// A local write: it supersedes every sibling this device holds (but a permanent one).
    pub fn write(
        &mut self,
        device: DeviceId,
        seq: u64,
        hlc: Hlc,
        value: Option<Vec<u8>>,
        permanent: Permanence,
    ) {
        let written = self
            .siblings
            .iter()
            .map(|s| (s.device, s.seq))
            .chain([(device, seq)]);
        self.context
            .join_with(&VecMap::collect_with(written, keep_latest), keep_latest);
        self.siblings.retain(permanent);
        self.siblings.push(Sibling {
            device,
            seq,
            hlc,
            value,
        });
        if self.siblings.len() > 1 {
            self.siblings = Self::settled(std::mem::take(&mut self.siblings), permanent);
        }
    }

    /// Merges another replica's state of the same key; returns whether anything changed.
    pub fn merge(&mut self, other: &Register, permanent: Permanence) -> bool {
        let mut siblings: Vec<Sibling> = self
            .siblings
            .iter()
            .filter(|s| other.holds(s) || !Self::covers(&other.context, s) || permanent(s))
            .cloned()
            .collect();
        for sibling in &other.siblings {
            let known = siblings
                .iter()
                .any(|s| s.device == sibling.device && s.seq == sibling.seq);
            let wanted = self.holds(sibling) || !Self::covers(&self.context, sibling) || permanent(sibling);
            if !known && wanted {
                siblings.push(sibling.clone());
            }
        }
        let siblings = Self::settled(siblings, permanent);
        let mut context = self.context.clone();
        context.join_with(&other.context, keep_latest);
        let changed = siblings != self.siblings || context != self.context;
        self.siblings = siblings;
        self.context = context;
        changed
    }

    /// Siblings in winner-first order, with one permanent sibling at most: the least dot.
    fn settled(mut siblings: Vec<Sibling>, permanent: Permanence) -> Vec<Sibling> {
        let first_permanent = siblings
            .iter()
            .filter(|s| permanent(s))
            .map(|s| (s.device, s.seq))
            .min();
        siblings.retain(|s| !permanent(s) || Some((s.device, s.seq)) == first_permanent);
        siblings.sort_by_key(|s| std::cmp::Reverse(s.rank()));
        siblings
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn no_context_drops_a_permanent_sibling() {
        let mut honest = Register::default();
        honest.write(device(1), 5, at(10), Some(vec![1]), small_values_permanent);
        // A forger claims to have seen every write of device 1.
        let forged = Register::from_parts(
            vec![Sibling {
                device: device(9),
                seq: 1,
                hlc: at(99),
                value: Some(vec![200]),
            }],
            [(device(1), u64::MAX)],
        );
        let mut plain = honest.clone();
        plain.merge(&forged, nothing_permanent);
        assert_eq!(
            plain.siblings().len(),
            1,
            "without permanence the forger drops it"
        );
        let (mut a, mut b) = (honest.clone(), forged.clone());
        a.merge(&forged, small_values_permanent);
        b.merge(&honest, small_values_permanent);
        assert_eq!(a, b);
        assert!(a.holds(&honest.siblings()[0]), "the fact stays");
        // A local write keeps it, and of two facts the least dot stays, either way round.
        a.write(device(2), 1, at(100), Some(vec![201]), small_values_permanent);
        assert!(a.holds(&honest.siblings()[0]));
        let mut other = Register::default();
        other.write(device(3), 1, at(5), Some(vec![2]), small_values_permanent);
        let (mut ab, mut ba) = (a.clone(), other.clone());
        ab.merge(&other, small_values_permanent);
        ba.merge(&a, small_values_permanent);
        assert_eq!(ab, ba);
        let facts: Vec<u64> = ab
            .siblings()
            .iter()
            .filter(|s| small_values_permanent(s))
            .map(|s| s.seq)
            .collect();
        assert_eq!(facts, vec![5], "device 1's fact: the least dot");
    }

    /// A write's dot in the model: (replica, write number).
    type Dot = (u8, u64);

    fn device(n: u8) -> DeviceId {
        DeviceId::from_bytes([n; 32])
    }

    fn at(micros: u64) -> Hlc {
        Hlc { micros, counter: 0 }
    }

    #[test]
    fn concurrent_writes_are_siblings_and_a_later_write_resolves_them() {
        let (mut a, mut b) = (Register::default(), Register::default());
        a.write(device(1), 1, at(10), Some(b"from a".to_vec()), nothing_permanent);
        b.write(device(2), 1, at(20), Some(b"from b".to_vec()), nothing_permanent);
        let mut merged = a.clone();
        assert!(merged.merge(&b, nothing_permanent));
        assert!(merged.in_conflict());
        assert_eq!(
            merged.winner().map(|w| w.device),
            Some(device(2)),
            "later clock wins"
        );
        let mut other_way = b.clone();
        other_way.merge(&a, nothing_permanent);
        assert_eq!(merged, other_way);
        // A write made after seeing both resolves the conflict everywhere.
        merged.write(
            device(1),
            2,
            at(30),
            Some(b"resolved".to_vec()),
            nothing_permanent,
        );
        b.merge(&merged, nothing_permanent);
        assert!(!b.in_conflict());
        assert_eq!(
            b.winner().and_then(|w| w.value.clone()),
            Some(b"resolved".to_vec())
        );
    }

    #[test]
    fn a_delete_does_not_come_back() {
        let (mut a, mut b) = (Register::default(), Register::default());
        a.write(device(1), 1, at(10), Some(b"v".to_vec()), nothing_permanent);
        b.merge(&a, nothing_permanent);
        b.write(device(2), 1, at(20), None, nothing_permanent);
        a.merge(&b, nothing_permanent);
        assert!(a.is_deleted());
        // The old value arriving again (a stale replica) changes nothing.
        let mut stale = Register::default();
        stale.write(device(1), 1, at(10), Some(b"v".to_vec()), nothing_permanent);
        assert!(!a.merge(&stale, nothing_permanent) || a.is_deleted());
        assert!(a.is_deleted());
    }

    /// A history: writes on replicas and merges between them.
    #[derive(Debug, Clone)]
    enum Step {
        Write { replica: usize, value: Option<u8> },
        Merge { from: usize, into: usize },
    }

    fn steps() -> impl Strategy<Value = Vec<Step>> {
        let step = prop_oneof![
            (0usize..3, proptest::option::of(any::<u8>()))
                .prop_map(|(replica, value)| Step::Write { replica, value }),
            (0usize..3, 0usize..3).prop_map(|(from, into)| Step::Merge { from, into }),
        ];
        proptest::collection::vec(step, 0..24)
    }

    /// In the model, a write of a value below 32 is a permanent fact.
    fn small_values_permanent(sibling: &Sibling) -> bool {
        sibling
            .value
            .as_deref()
            .is_some_and(|v| v.first().is_some_and(|b| *b < 32))
    }

    fn play(steps: &[Step], permanent: Permanence) -> Vec<Register> {
        let mut replicas = vec![Register::default(); 3];
        let mut seqs = [0u64; 3];
        for (time, step) in steps.iter().enumerate() {
            match step {
                Step::Write { replica, value } => {
                    seqs[*replica] += 1;
                    let hlc = at(time as u64 * 7 % 11);
                    replicas[*replica].write(
                        device(*replica as u8),
                        seqs[*replica],
                        hlc,
                        value.map(|v| vec![v]),
                        permanent,
                    );
                }
                Step::Merge { from, into } => {
                    let source = replicas[*from].clone();
                    replicas[*into].merge(&source, permanent);
                }
            }
        }
        replicas
    }

    proptest! {
        #[test]
        fn merge_is_commutative_associative_and_idempotent(history in steps()) {
            for permanent in [nothing_permanent as Permanence, small_values_permanent] {
                let [a, b, c]: [Register; 3] = play(&history, permanent).try_into().expect("three replicas");
                let merged = |x: &Register, y: &Register| {
                    let mut m = x.clone();
                    m.merge(y, permanent);
                    m
                };
                prop_assert_eq!(merged(&a, &b), merged(&b, &a));
                prop_assert_eq!(merged(&merged(&a, &b), &c), merged(&a, &merged(&b, &c)));
                prop_assert_eq!(merged(&a, &a), a.clone());
                let mut twice = merged(&a, &b);
                prop_assert!(!twice.merge(&b, permanent), "merging the same state again changes nothing");
            }
        }

        #[test]
        fn a_permanent_write_once_made_is_never_undone(history in steps()) {
            let replicas = play(&history, small_values_permanent);
            let mut all = replicas[0].clone();
            all.merge(&replicas[1], small_values_permanent);
            all.merge(&replicas[2], small_values_permanent);
            let made = history.iter().any(|step| matches!(step, Step::Write { value: Some(v), .. } if *v < 32));
            let held = all.siblings().iter().filter(|s| small_values_permanent(s)).count();
            prop_assert_eq!(held, usize::from(made), "one permanent sibling if any was written");
        }

        #[test]
        fn the_siblings_are_exactly_the_writes_no_other_write_saw(history in steps()) {
            // Track, per replica, every write it knows of, and what each write saw.
            let mut known: Vec<BTreeSet<Dot>> = vec![BTreeSet::new(); 3];
            let mut saw: Vec<(Dot, BTreeSet<Dot>)> = Vec::new();
            let mut seqs = [0u64; 3];
            for step in &history {
                match step {
                    Step::Write { replica, .. } => {
                        seqs[*replica] += 1;
                        let dot = (*replica as u8, seqs[*replica]);
                        saw.push((dot, known[*replica].clone()));
                        known[*replica].insert(dot);
                    }
                    Step::Merge { from, into } => {
                        let source = known[*from].clone();
                        known[*into].extend(source);
                    }
                }
            }
            let replicas = play(&history, nothing_permanent);
            let mut all = replicas[0].clone();
            all.merge(&replicas[1], nothing_permanent);
            all.merge(&replicas[2], nothing_permanent);
            let maximal: BTreeSet<Dot> = saw
                .iter()
                .map(|(dot, _)| *dot)
                .filter(|dot| !saw.iter().any(|(_, seen)| seen.contains(dot)))
                .collect();
            let siblings: BTreeSet<Dot> = all
                .siblings()
                .iter()
                .map(|s| (s.device.as_bytes()[0], s.seq))
                .collect();
            prop_assert_eq!(siblings, maximal);
        }
    }
}
