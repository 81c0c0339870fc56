//! The replicated key-value store's data model: keys of up to 1 KiB of UTF-8, each holding
//! a [`Register`] (a multi-value register with dotted version vectors), written with dots
//! `(device, seq)` and hybrid-logical-clock times ([`Hlc`]).
//!
//! Reading a key gives one deterministic winner (the latest by hybrid clock, ties by
//! device ID: the same on every device) and says whether concurrent writes exist; all of
//! them can be read. A later write resolves them. Deletes are writes of no value, so they
//! replicate and win like any write and never come back.
//!
//! Replication ([`sync`]): writes are pushed at once; version vectors say what each
//! replica has, so a device that was away gets exactly the keys it lacks.

mod hlc;
mod register;
pub mod sync;

use std::collections::BTreeMap;

pub use hlc::Hlc;
pub use register::{Register, Sibling};

use crate::identity::DeviceId;

/// Longest key, in bytes of UTF-8.
pub const MAX_KEY_BYTES: usize = 1024;
/// Largest value.
pub const MAX_VALUE_BYTES: usize = 1 << 20;

/// Why a write was refused. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Empty or over 1 KiB.
    #[error("a key has 1 to {MAX_KEY_BYTES} bytes")]
    KeyLength,
    /// Over 1 MiB.
    #[error("a value has at most {MAX_VALUE_BYTES} bytes, not {0}")]
    ValueTooLarge(usize),
}

/// What a read of one key gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read<'a> {
    /// The winner's value (`None`: deleted or never written).
    pub value: Option<&'a [u8]>,
    /// Whether concurrent writes exist (see [`Register::siblings`]).
    pub conflict: bool,
    /// The register, for every sibling.
    pub register: &'a Register,
}

/// One device's replica.
#[derive(Debug, Clone)]
pub struct Store {
    own: DeviceId,
    /// This device's last write number.
    seq: u64,
    clock: Hlc,
    keys: BTreeMap<String, Register>,
    /// For each device, every write of it up to this number is reflected here.
    have: BTreeMap<DeviceId, u64>,
}

fn check(key: &str, value: Option<&[u8]>) -> Result<(), StoreError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(StoreError::KeyLength);
    }
    match value {
        Some(value) if value.len() > MAX_VALUE_BYTES => Err(StoreError::ValueTooLarge(value.len())),
        _ => Ok(()),
    }
}

impl Store {
    /// An empty replica of device `own`, whose last write number was `seq` (persisted).
    pub fn new(own: DeviceId, seq: u64) -> Self {
        Self {
            own,
            seq,
            clock: Hlc::default(),
            keys: BTreeMap::new(),
            have: BTreeMap::new(),
        }
    }

    /// Takes back a key's state from disk.
    pub fn restore_key(&mut self, key: String, register: Register) {
        for sibling in register.siblings() {
            self.clock.observe(sibling.hlc);
        }
        self.keys.insert(key, register);
    }

    /// Takes back the write counter and version vector from disk.
    pub fn restore_meta(&mut self, seq: u64, have: impl IntoIterator<Item = (DeviceId, u64)>) {
        self.seq = self.seq.max(seq);
        for (device, through) in have {
            self.raise_have(device, through);
        }
    }

    fn raise_have(&mut self, device: DeviceId, through: u64) {
        let entry = self.have.entry(device).or_default();
        *entry = (*entry).max(through);
    }

    /// The version vector: for each device, writes up to this number are reflected here
    /// (this device's own writes included).
    pub fn have(&self) -> Vec<(DeviceId, u64)> {
        let mut have = self.have.clone();
        have.insert(self.own, self.seq);
        have.into_iter().collect()
    }

    /// Records that everything in `have` is reflected here (a catch-up completed).
    pub fn advance(&mut self, have: &[(DeviceId, u64)]) {
        for (device, through) in have {
            if *device != self.own {
                self.raise_have(*device, *through);
            }
        }
    }

    /// The keys holding a write beyond `their` version vector: what a replica with that
    /// vector lacks.
    pub fn missing_from(&self, their: &[(DeviceId, u64)]) -> Vec<sync::Change> {
        let through = |device: &DeviceId| their.iter().find(|(d, _)| d == device).map_or(0, |(_, s)| *s);
        self.keys
            .iter()
            .filter(|(_, register)| register.siblings().iter().any(|s| s.seq > through(&s.device)))
            .map(|(key, register)| sync::Change {
                key: key.clone(),
                register: register.clone(),
            })
            .collect()
    }

    /// Writes `value` (`None`: deletes) at physical time `wall_micros`; returns the
    /// write's number.
    pub fn write(&mut self, key: &str, value: Option<Vec<u8>>, wall_micros: u64) -> Result<u64, StoreError> {
        check(key, value.as_deref())?;
        self.seq += 1;
        let hlc = self.clock.tick(wall_micros);
        self.keys
            .entry(key.to_owned())
            .or_default()
            .write(self.own, self.seq, hlc, value);
        Ok(self.seq)
    }

    /// Reads `key`.
    pub fn read(&self, key: &str) -> Option<Read<'_>> {
        let register = self.keys.get(key)?;
        Some(Read {
            value: register.winner().and_then(|w| w.value.as_deref()),
            conflict: register.in_conflict(),
            register,
        })
    }

    /// Keys under `prefix` whose winner is not a delete, in order.
    pub fn list<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, Read<'a>)> + 'a {
        self.keys
            .range(prefix.to_owned()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
            .filter(|(_, r)| !r.is_deleted())
            .filter_map(|(k, _)| self.read(k).map(|read| (k.as_str(), read)))
    }

    /// Merges another replica's state of `key`; returns whether anything changed.
    pub fn merge(&mut self, key: &str, remote: &Register) -> bool {
        if check(key, None).is_err() {
            return false;
        }
        for sibling in remote.siblings() {
            self.clock.observe(sibling.hlc);
        }
        self.keys.entry(key.to_owned()).or_default().merge(remote)
    }

    /// Every key's state, for replication and persistence.
    pub fn registers(&self) -> impl Iterator<Item = (&str, &Register)> {
        self.keys.iter().map(|(k, r)| (k.as_str(), r))
    }

    /// This device's last write number.
    pub fn last_seq(&self) -> u64 {
        self.seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_list_and_limits() {
        let mut store = Store::new(DeviceId::from_bytes([1; 32]), 0);
        store.write("notes/a", Some(b"1".to_vec()), 10).expect("valid");
        store.write("notes/b", Some(b"2".to_vec()), 20).expect("valid");
        store.write("other", Some(b"3".to_vec()), 30).expect("valid");
        store.write("notes/b", None, 40).expect("valid");
        let listed: Vec<&str> = store.list("notes/").map(|(k, _)| k).collect();
        assert_eq!(listed, vec!["notes/a"]);
        assert_eq!(store.read("notes/a").and_then(|r| r.value), Some(&b"1"[..]));
        assert_eq!(store.read("notes/b").map(|r| r.value), Some(None));
        assert_eq!(store.write("", None, 50), Err(StoreError::KeyLength));
        assert_eq!(
            store.write(&"k".repeat(1025), None, 50),
            Err(StoreError::KeyLength)
        );
        assert_eq!(
            store.write("big", Some(vec![0; MAX_VALUE_BYTES + 1]), 50),
            Err(StoreError::ValueTooLarge(MAX_VALUE_BYTES + 1))
        );
        assert_eq!(store.last_seq(), 4);
    }

    #[test]
    fn replicas_converge_on_the_same_winner() {
        let (a_id, b_id) = (DeviceId::from_bytes([1; 32]), DeviceId::from_bytes([2; 32]));
        let mut a = Store::new(a_id, 0);
        let mut b = Store::new(b_id, 0);
        a.write("k", Some(b"a".to_vec()), 100).expect("valid");
        b.write("k", Some(b"b".to_vec()), 100).expect("valid");
        let a_state = a.read("k").expect("written").register.clone();
        let b_state = b.read("k").expect("written").register.clone();
        a.merge("k", &b_state);
        b.merge("k", &a_state);
        let (ra, rb) = (a.read("k").expect("merged"), b.read("k").expect("merged"));
        assert!(ra.conflict && rb.conflict);
        assert_eq!(
            ra.value, rb.value,
            "same winner everywhere (equal clocks: greater device ID)"
        );
        assert_eq!(ra.value, Some(&b"b"[..]));
    }
}
