//! The monitoring ring: devices ordered by a hash of their ID; each probes its `k`
//! successors and floods news to its `k` successors and `k` predecessors.
//!
//! Why a ring rather than SWIM's random targets: every probe needs an encrypted session,
//! and a session costs a handshake when it has been idle past its key lifetime. Fixed
//! neighbours keep a bounded set of sessions warm (2k per device whatever the mesh size),
//! and the relays for an indirect probe (the target's other monitors) are neighbours too.
//! In a mesh of up to k+1 devices everyone monitors everyone.

use std::collections::BTreeMap;

use crate::crypto::hash::hash;
use crate::identity::DeviceId;

/// The ring of all known devices (this one included).
#[derive(Debug, Clone)]
pub struct Ring {
    order: Vec<DeviceId>,
    positions: BTreeMap<DeviceId, usize>,
    own: usize,
}

fn ring_key(id: &DeviceId) -> [u8; 32] {
    hash(&[b"cnspr ring", id.as_bytes()])
}

impl Ring {
    /// The ring of `own` and `others` (duplicates and `own` among them are ignored).
    pub fn new(own: DeviceId, others: impl IntoIterator<Item = DeviceId>) -> Self {
        let mut order: Vec<(DeviceId, [u8; 32])> = std::iter::once(own)
            .chain(others)
            .map(|id| (id, ring_key(&id)))
            .collect();
        order.sort_unstable_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
        order.dedup_by(|a, b| a.0 == b.0);
        let order: Vec<DeviceId> = order.into_iter().map(|(id, _)| id).collect();
        let positions: BTreeMap<DeviceId, usize> = order.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        let own = positions.get(&own).copied().unwrap_or(0);
        Self {
            order,
            positions,
            own,
        }
    }

    /// Up to `k` devices after this one that pass `include`, nearest first.
    pub fn successors(&self, k: usize, include: impl Fn(&DeviceId) -> bool) -> Vec<DeviceId> {
        self.walk(k, include, |step| self.own + step)
    }

    /// Up to `k` devices before `target` (its monitors) that pass `include`.
    pub fn monitors_of(
        &self,
        target: &DeviceId,
        k: usize,
        include: impl Fn(&DeviceId) -> bool,
    ) -> Vec<DeviceId> {
        self.beside(target, k, include, false)
    }

    /// `target`'s flood neighbours: up to `k` devices each side of it that pass `include`.
    pub fn neighbourhood_of(
        &self,
        target: &DeviceId,
        k: usize,
        include: impl Fn(&DeviceId) -> bool,
    ) -> Vec<DeviceId> {
        let mut all = self.beside(target, k, &include, true);
        for id in self.beside(target, k, &include, false) {
            if !all.contains(&id) {
                all.push(id);
            }
        }
        all
    }

    /// Up to `k` devices after (`forward`) or before `target` that pass `include`.
    fn beside(
        &self,
        target: &DeviceId,
        k: usize,
        include: impl Fn(&DeviceId) -> bool,
        forward: bool,
    ) -> Vec<DeviceId> {
        let Some(&position) = self.positions.get(target) else {
            return Vec::new();
        };
        let len = self.order.len();
        if forward {
            self.walk(k, include, |step| position + step)
        } else {
            self.walk(k, include, |step| position + len - step % len)
        }
    }

    fn walk(
        &self,
        k: usize,
        include: impl Fn(&DeviceId) -> bool,
        index: impl Fn(usize) -> usize,
    ) -> Vec<DeviceId> {
        let len = self.order.len();
        let mut found = Vec::new();
        for step in 1..len {
            let id = &self.order[index(step) % len];
            if include(id) {
                found.push(*id);
                if found.len() == k {
                    break;
                }
            }
        }
        found
    }

    /// Every device on the ring, in ring order.
    #[cfg(test)]
    pub fn devices(&self) -> &[DeviceId] {
        &self.order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u8) -> Vec<DeviceId> {
        (0..n).map(|i| DeviceId::from_bytes([i; 32])).collect()
    }

    #[test]
    fn small_rings_make_everyone_a_neighbour() {
        let all = ids(5);
        let ring = Ring::new(all[0], all.clone());
        let mut successors = ring.successors(8, |_| true);
        successors.sort();
        assert_eq!(successors, all[1..].to_vec());
    }

    #[test]
    fn monitoring_is_mutual_knowledge() {
        let all = ids(20);
        let rings: Vec<Ring> = all.iter().map(|id| Ring::new(*id, all.clone())).collect();
        for ring in &rings {
            let own = ring.devices()[ring.own];
            for successor in ring.successors(3, |_| true) {
                let theirs = rings
                    .iter()
                    .find(|r| r.devices()[r.own] == successor)
                    .expect("ring of successor");
                assert!(theirs.neighbourhood_of(&successor, 3, |_| true).contains(&own));
                assert!(ring.monitors_of(&successor, 3, |_| true).contains(&own));
            }
        }
    }

    #[test]
    fn excluded_devices_are_skipped() {
        let all = ids(10);
        let ring = Ring::new(all[0], all.clone());
        let first = ring.successors(1, |_| true)[0];
        let next = ring.successors(1, |id| *id != first)[0];
        assert_ne!(first, next);
        assert_eq!(ring.successors(2, |_| true)[1], next);
    }
}
