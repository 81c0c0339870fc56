//! The store under faults: random writes and deletes of a few keys on random devices, and
//! the checks that the replicas end up right. At the end, among running devices:
//!
//! - every replica has the same contents (same digest of every key's siblings; a key
//!   holding only deletes reads like one whose deletes were collected), so every device
//!   shows the same winner;
//! - each key holds exactly the writes no other write saw (the multi-value register's
//!   definition): no acknowledged write is lost, none that was overwritten or deleted
//!   comes back; a key may be gone only if those writes were all deletes (collected).
//!
//! Keys written by a device that is not running at the end are left out of the second
//! check: its last writes may never have left it.

use std::collections::{BTreeMap, BTreeSet};

use blake2::{Blake2s256, Digest};
use cnspr_proto::identity::DeviceId;
use cnspr_proto::store::Store;

/// Keys the workload writes (few, so writes collide).
pub const KEYS: u64 = 6;

/// One acknowledged write.
#[derive(Debug, Clone)]
struct Written {
    device: DeviceId,
    seq: u64,
    key: String,
    /// What the writer had seen of the key: the writes it supersedes.
    saw: BTreeMap<DeviceId, u64>,
    /// Whether it was a delete.
    delete: bool,
}

/// Every acknowledged write.
#[derive(Debug, Default)]
pub struct WriteLog {
    writes: Vec<Written>,
}

/// A replica's contents as one hash.
pub fn digest(store: &Store) -> [u8; 32] {
    let mut hasher = Blake2s256::new();
    for (key, register) in store.registers() {
        if register.siblings().iter().all(|s| s.value.is_none()) {
            continue;
        }
        hasher.update(key.as_bytes());
        for sibling in register.siblings() {
            hasher.update(sibling.device.as_bytes());
            hasher.update(sibling.seq.to_le_bytes());
            hasher.update(sibling.value.as_deref().unwrap_or(b"(deleted)"));
        }
    }
    hasher.finalize().into()
}

impl WriteLog {
    /// `device`'s write `seq` to `key` was acknowledged; `store` is its replica right after.
    pub fn written(&mut self, device: DeviceId, seq: u64, key: &str, store: &Store) {
        let delete = store.read(key).is_none_or(|read| read.value.is_none());
        let saw = store
            .read(key)
            .map(|read| read.register.context().clone())
            .unwrap_or_default()
            .into_iter()
            .map(|(d, s)| (d, if d == device { seq - 1 } else { s }))
            .collect();
        self.writes.push(Written {
            device,
            seq,
            key: key.to_owned(),
            saw,
            delete,
        });
    }

    /// Writes counted.
    pub fn len(&self) -> usize {
        self.writes.len()
    }

    /// Whether no write was made.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// The checks above, over the running devices' replicas.
    pub fn check_end(
        &self,
        replicas: &[(usize, &Store)],
        running_devices: &BTreeSet<DeviceId>,
    ) -> Vec<String> {
        let mut violations = Vec::new();
        if let Some((first, store)) = replicas.first() {
            let expected = digest(store);
            for (node, other) in &replicas[1..] {
                if digest(other) != expected {
                    violations.push(format!("device {node}'s store differs from device {first}'s"));
                }
            }
        }
        let keys: BTreeSet<&str> = self.writes.iter().map(|w| w.key.as_str()).collect();
        for key in keys {
            let on_key: Vec<&Written> = self.writes.iter().filter(|w| w.key == key).collect();
            if on_key.iter().any(|w| !running_devices.contains(&w.device)) {
                continue;
            }
            let maximal: Vec<&&Written> = on_key
                .iter()
                .filter(|w| {
                    !on_key
                        .iter()
                        .any(|other| other.saw.get(&w.device).is_some_and(|seen| *seen >= w.seq))
                })
                .collect();
            let all_deletes = maximal.iter().all(|w| w.delete);
            let maximal: BTreeSet<(DeviceId, u64)> = maximal.iter().map(|w| (w.device, w.seq)).collect();
            for (node, store) in replicas {
                let Some(read) = store.read(key) else {
                    if !all_deletes {
                        violations.push(format!(
                            "device {node} lost {key:?}, whose latest writes were not deletes"
                        ));
                    }
                    continue;
                };
                let siblings: BTreeSet<(DeviceId, u64)> = read
                    .register
                    .siblings()
                    .iter()
                    .map(|s| (s.device, s.seq))
                    .collect();
                if siblings != maximal {
                    let dots = |set: &BTreeSet<(DeviceId, u64)>| {
                        set.iter()
                            .map(|(d, s)| format!("{}:{s}", d.short()))
                            .collect::<Vec<_>>()
                            .join(" ")
                    };
                    violations.push(format!(
                        "device {node} holds [{}] for {key:?} where [{}] were never overwritten",
                        dots(&siblings),
                        dots(&maximal)
                    ));
                }
            }
        }
        violations
    }
}
