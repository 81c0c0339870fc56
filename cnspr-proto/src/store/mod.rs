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

pub mod codec;
pub mod heads;
mod hlc;
mod record;
mod register;
pub mod sync;

use std::collections::{BTreeMap, BTreeSet};

pub use hlc::{Hlc, MAX_AHEAD_MICROS};
pub use record::{key_record_key, StoreRecord};
pub use register::{Permanence, Register, Sibling};

use crate::identity::DeviceId;

/// Most writes per device noted beyond the version vector.
const MAX_BEYOND: usize = 1 << 16;

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
    /// Under `_roster/` or `_addr/` ([`crate::roster::SYSTEM_NAMESPACES`]): the mesh's own
    /// keys change only through pairing, naming and removing devices, and network changes.
    #[error("keys under _roster/ and _addr/ belong to the mesh; they change through pairing, names, removal and network changes")]
    Reserved,
}

/// Why a key's state from a peer was refused. Nothing changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MergeRefusal {
    /// It claims a write of this device beyond the last one this device made.
    #[error("it claims write {claimed} of this device, which has made {made}")]
    ForgedOwnWrite {
        /// The write number claimed.
        claimed: u64,
        /// This device's last write.
        made: u64,
    },
    /// A write is stamped further ahead of this device's clock than
    /// [`MAX_AHEAD_MICROS`].
    #[error("a write is stamped {ahead_secs} s ahead of this device's clock")]
    ClockAhead {
        /// How far ahead, in seconds.
        ahead_secs: u64,
    },
    /// A write to a key that only the device it names may write (an address record),
    /// made by another.
    #[error("it holds a write of {writer} to a key only {owner} writes")]
    NotTheOwner {
        /// Who wrote it (its short ID).
        writer: crate::identity::ShortId,
        /// The device the key names (its short ID).
        owner: crate::identity::ShortId,
    },
    /// It names a write of another device beyond every head that device signed.
    #[error("it claims write {claimed} of {device}, which has signed for {signed}")]
    BeyondHead {
        /// The device (its short ID).
        device: crate::identity::ShortId,
        /// The write number claimed.
        claimed: u64,
        /// The highest it signed for, as known here.
        signed: u64,
    },
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
    /// Writes reflected here beyond `have` (pushed one by one, in any order): `have`
    /// moves up through them as the gaps fill, so a device that was always reachable has
    /// little to catch up on.
    beyond: BTreeMap<DeviceId, BTreeSet<u64>>,
    /// Keys whose every sibling is a delete: what collection looks at.
    tombstones: BTreeSet<String>,
    /// For each device, every write up to this number was reflected on every device when
    /// tombstones were last collected. Such a write arriving again for a key that does not
    /// hold it is stale (its key may have been collected) and is dropped.
    stable: BTreeMap<DeviceId, u64>,
    /// Grows with every change of contents.
    version: u64,
    /// Grows with every change of `have`.
    vector_version: u64,
    /// The highest signed head known of each other device: what its writes are bounded by.
    heads: heads::Heads,
    /// [`Store::digest`] as last computed; every change of the store clears it.
    digest: std::cell::Cell<Option<[u8; sync::DIGEST_BYTES]>>,
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
            beyond: BTreeMap::new(),
            tombstones: BTreeSet::new(),
            stable: BTreeMap::new(),
            version: 0,
            vector_version: 0,
            heads: heads::Heads::default(),
            digest: std::cell::Cell::new(None),
        }
    }

    /// Notes whether `key` now holds only deletes (a candidate for collection).
    fn track(&mut self, key: &str) {
        let only_deletes = self
            .keys
            .get(key)
            .is_some_and(|r| !r.siblings().is_empty() && r.siblings().iter().all(|s| s.value.is_none()));
        if only_deletes {
            self.tombstones.insert(key.to_owned());
        } else {
            self.tombstones.remove(key);
        }
    }

    /// Takes back a key's state from disk.
    pub fn restore_key(&mut self, key: String, register: Register) {
        self.digest.set(None);
        for sibling in register.siblings() {
            self.clock.observe(sibling.hlc);
        }
        // A write's key record carries its number, so the counter needs no record of its
        // own on every put.
        if let Some(own) = register.context().get(&self.own) {
            self.seq = self.seq.max(*own);
        }
        self.keys.insert(key.clone(), register);
        self.track(&key);
        self.version += 1;
    }

    /// Takes back the write counter and the version vectors from disk.
    pub fn restore_meta(&mut self, meta: &Meta) {
        self.digest.set(None);
        self.seq = self.seq.max(meta.seq);
        for (device, through) in &meta.have {
            self.raise_have(*device, *through);
        }
        for (device, through) in &meta.stable {
            raise(&mut self.stable, *device, *through);
        }
    }

    /// What must survive a restart besides the keys.
    pub fn meta(&self) -> Meta {
        Meta {
            seq: self.seq,
            have: self.have(),
            stable: self.stable.iter().map(|(d, s)| (*d, *s)).collect(),
        }
    }

    /// Takes in the heads that are above those known and verify; returns those that were.
    pub fn absorb_heads(&mut self, heads: &[heads::SignedHead]) -> Vec<heads::SignedHead> {
        heads
            .iter()
            .filter(|head| head.device != self.own && self.heads.absorb(head))
            .copied()
            .collect()
    }

    /// The known heads of `devices` (other than this one).
    pub fn heads_of(&self, devices: impl IntoIterator<Item = DeviceId>) -> Vec<heads::SignedHead> {
        self.heads.of(devices)
    }

    /// Refuses a register that names a write of another device beyond the highest head
    /// that device is known to have signed: a context claiming to have seen writes not yet
    /// made (it would supersede them before they exist, and make this device believe it
    /// has them).
    pub fn check_heads(&self, register: &Register) -> Result<(), MergeRefusal> {
        let dots = register
            .siblings()
            .iter()
            .map(|s| (s.device, s.seq))
            .chain(register.context().iter().map(|(d, s)| (*d, *s)));
        for (device, claimed) in dots.filter(|(device, _)| *device != self.own) {
            let signed = self.heads.bound(&device);
            if claimed > signed {
                return Err(MergeRefusal::BeyondHead {
                    device: device.short(),
                    claimed,
                    signed,
                });
            }
        }
        Ok(())
    }

    /// `have` held to what each device signed for (and to this device's own writes): a
    /// sender's vector is believed no further.
    pub fn within_heads(&self, have: &[(DeviceId, u64)]) -> Vec<(DeviceId, u64)> {
        have.iter()
            .map(|(device, through)| {
                let bound = if *device == self.own {
                    self.seq
                } else {
                    self.heads.bound(device)
                };
                (*device, (*through).min(bound))
            })
            .collect()
    }

    /// Whether some key holds only deletes (something for [`Store::collect`] to look at).
    pub fn has_tombstones(&self) -> bool {
        !self.tombstones.is_empty()
    }

    /// Grows with every change of contents (so equal versions mean equal contents).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Grows with every change of the version vector of other devices' writes, so that a
    /// caller can tell it moved without comparing vectors.
    pub fn vector_version(&self) -> u64 {
        self.vector_version
    }

    /// Drops the keys whose every sibling is a delete that every device has, along with
    /// every write it replaced, given `stable`: for each device, the writes every device
    /// of the mesh reflects. Returns the keys dropped.
    pub fn collect(&mut self, stable: &[(DeviceId, u64)]) -> Vec<String> {
        self.digest.set(None);
        for (device, through) in stable {
            raise(&mut self.stable, *device, *through);
        }
        let collectable: Vec<String> =
            self.tombstones
                .iter()
                .filter(|key| {
                    // The deletes and every write they replaced: a replaced write still on its
                    // way must be recognised as stale once the key is gone.
                    self.keys.get(*key).is_some_and(|register| {
                        register.context().iter().all(|(device, seq)| {
                            self.stable.get(device).is_some_and(|through| through >= seq)
                        })
                    })
                })
                .cloned()
                .collect();
        for key in &collectable {
            self.keys.remove(key);
            self.tombstones.remove(key);
        }
        if !collectable.is_empty() {
            self.version += 1;
        }
        collectable
    }

    /// The version vector: for each device, writes up to this number are reflected here
    /// (this device's own writes included).
    pub fn have(&self) -> Vec<(DeviceId, u64)> {
        let mut have = self.have.clone();
        have.insert(self.own, self.seq);
        have.into_iter().collect()
    }

    /// A digest of which writes are reflected here (the version vector and the writes
    /// noted beyond it): replicas with equal digests reflect the same writes.
    pub fn digest(&self) -> [u8; sync::DIGEST_BYTES] {
        if let Some(digest) = self.digest.get() {
            return digest;
        }
        let mut parts: Vec<Vec<u8>> = vec![b"cnspr store digest".to_vec()];
        for (device, through) in self.have() {
            let beyond = self.beyond.get(&device);
            let mut part = device.as_bytes().to_vec();
            part.extend_from_slice(&through.to_le_bytes());
            part.extend_from_slice(&(beyond.map_or(0, BTreeSet::len) as u64).to_le_bytes());
            part.extend(beyond.into_iter().flatten().flat_map(|seq| seq.to_le_bytes()));
            parts.push(part);
        }
        let slices: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        let mut digest = [0u8; sync::DIGEST_BYTES];
        digest.copy_from_slice(&crate::crypto::hash::hash(&slices)[..sync::DIGEST_BYTES]);
        self.digest.set(Some(digest));
        digest
    }

    /// Records that everything in `have` is reflected here (a catch-up completed).
    pub fn advance(&mut self, have: &[(DeviceId, u64)]) {
        self.digest.set(None);
        for (device, through) in have {
            self.raise_have(*device, *through);
        }
    }

    fn raise_have(&mut self, device: DeviceId, through: u64) {
        if device == self.own {
            return;
        }
        let before = self.have.get(&device).copied();
        let have = self.have.entry(device).or_default();
        *have = (*have).max(through);
        if let Some(beyond) = self.beyond.get_mut(&device) {
            beyond.retain(|seq| *seq > *have);
            while let Some(next) = have.checked_add(1).filter(|next| beyond.remove(next)) {
                *have = next;
            }
            if beyond.is_empty() {
                self.beyond.remove(&device);
            }
        }
        if self.have.get(&device).copied() != before {
            self.vector_version += 1;
        }
    }

    /// Notes that write `seq` of `device` is reflected here.
    fn reflected(&mut self, device: DeviceId, seq: u64) {
        if device == self.own || self.have.get(&device).is_some_and(|have| *have >= seq) {
            return;
        }
        let beyond = self.beyond.entry(device).or_default();
        beyond.insert(seq);
        // Bounded: past this many gaps, the next catch-up fills them anyway.
        if beyond.len() > MAX_BEYOND {
            beyond.pop_last();
        }
        self.raise_have(device, 0);
    }

    /// The keys holding a write beyond `their` version vector: what a replica with that
    /// vector lacks.
    pub fn missing_from(&self, their: &[(DeviceId, u64)]) -> Vec<sync::Change> {
        let their: BTreeMap<&DeviceId, u64> = their.iter().map(|(d, s)| (d, *s)).collect();
        let through = |device: &DeviceId| their.get(device).copied().unwrap_or(0);
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
        self.digest.set(None);
        check(key, value.as_deref())?;
        self.seq += 1;
        let hlc = self.clock.tick(wall_micros);
        // A key created afresh may be one whose deletes were collected: the write saw
        // them, so replicas that still hold them drop them on merging it.
        let stable = &self.stable;
        self.keys
            .entry(key.to_owned())
            .or_insert_with(|| Register::from_parts(Vec::new(), stable.iter().map(|(d, s)| (*d, *s))))
            .write(self.own, self.seq, hlc, value, permanence(key));
        self.track(key);
        self.version += 1;
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

    /// Keys under `prefix` whose winner is not a delete, in order. The roster's keys
    /// are listed only when the prefix asks for them.
    pub fn list<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, Read<'a>)> + 'a {
        let within = crate::roster::system_namespace(prefix);
        self.keys
            .range(prefix.to_owned()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
            .filter(move |(k, _)| crate::roster::system_namespace(k).is_none_or(|ns| within == Some(ns)))
            .filter(|(_, r)| !r.is_deleted())
            .filter_map(|(k, _)| self.read(k).map(|read| (k.as_str(), read)))
    }

    /// Merges another replica's state of `key`; returns whether anything changed.
    /// Merges a peer's state of `key`, received at physical time `wall_micros`; whether
    /// anything changed. A state no honest peer could send is refused whole.
    pub fn merge(&mut self, key: &str, remote: &Register, wall_micros: u64) -> Result<bool, MergeRefusal> {
        self.digest.set(None);
        if check(key, None).is_err() {
            return Ok(false);
        }
        self.verify(remote, wall_micros)?;
        owned_by_its_device(key, remote)?;
        // Once merged, every write the register holds or replaced is reflected here (a
        // context entry is the latest write of that device to this key).
        let dots: Vec<(DeviceId, u64)> = remote.context().iter().map(|(d, s)| (*d, *s)).collect();
        let changed = self.merge_register(key, remote);
        for (device, seq) in dots {
            self.reflected(device, seq);
        }
        Ok(changed)
    }

    /// Refuses what only a forger sends: a write of this device that it never made
    /// (it would wrap this device's write counter and hide its later writes), or a clock
    /// reading far ahead of this device's (it would win every later conflict).
    fn verify(&self, remote: &Register, wall_micros: u64) -> Result<(), MergeRefusal> {
        let own_claims = remote.context().get(&self.own).copied().into_iter().chain(
            remote
                .siblings()
                .iter()
                .filter(|s| s.device == self.own)
                .map(|s| s.seq),
        );
        if let Some(claimed) = own_claims.max().filter(|claimed| *claimed > self.seq) {
            return Err(MergeRefusal::ForgedOwnWrite {
                claimed,
                made: self.seq,
            });
        }
        let latest = wall_micros.saturating_add(hlc::MAX_AHEAD_MICROS);
        if let Some(ahead) = remote
            .siblings()
            .iter()
            .map(|s| s.hlc.micros)
            .max()
            .filter(|m| *m > latest)
        {
            return Err(MergeRefusal::ClockAhead {
                ahead_secs: (ahead - wall_micros) / 1_000_000,
            });
        }
        Ok(())
    }

    fn merge_register(&mut self, key: &str, remote: &Register) -> bool {
        for sibling in remote.siblings() {
            self.clock.observe(sibling.hlc);
        }
        let local = self.keys.get(key);
        // The state held already (a flood through the ring brings each write from several
        // neighbours): nothing to merge, and no value to copy or entry to decode.
        if local == Some(remote) {
            return false;
        }
        let holds = |s: &Sibling| local.is_some_and(|r| r.holds(s));
        let stale = |s: &Sibling| {
            self.stable
                .get(&s.device)
                .is_some_and(|through| *through >= s.seq)
                && !holds(s)
        };
        // A register with nothing new to hold changes nothing (in a consistent history a
        // register always holds a sibling; a peer's empty one is ignored).
        if remote.siblings().iter().all(stale) {
            return false;
        }
        let permanent = permanence(key);
        let changed = if remote.siblings().iter().any(stale) {
            let fresh: Vec<Sibling> = remote.siblings().iter().filter(|s| !stale(s)).cloned().collect();
            let filtered = Register::from_parts(fresh, remote.context().iter().map(|(d, s)| (*d, *s)));
            self.keys
                .entry(key.to_owned())
                .or_default()
                .merge(&filtered, permanent)
        } else {
            self.keys
                .entry(key.to_owned())
                .or_default()
                .merge(remote, permanent)
        };
        if changed {
            self.track(key);
            self.version += 1;
        }
        changed
    }

    /// Every key's state, for replication and persistence.
    pub fn registers(&self) -> impl Iterator<Item = (&str, &Register)> {
        self.keys.iter().map(|(k, r)| (k.as_str(), r))
    }

    /// How many keys this replica holds (deleted keys whose deletes are not yet
    /// collected included).
    pub fn key_count(&self) -> usize {
        self.keys.len()
    }

    /// This device's last write number.
    pub fn last_seq(&self) -> u64 {
        self.seq
    }
}

/// Which siblings of `key` stay whatever a context claims: the roster's removals, so that a
/// removed device cannot undo its removal with a write claiming to have seen it.
/// Refuses a state of a key that only the device it names writes (an address record:
/// `_addr/<ID>`) holding a write of any other device: a sibling, or a context entry (a
/// write that replaced one of the owner's, a delete included).
fn owned_by_its_device(key: &str, remote: &Register) -> Result<(), MergeRefusal> {
    let Some(owner) = crate::roster::address_device(key) else {
        return Ok(());
    };
    let writers = remote
        .siblings()
        .iter()
        .map(|s| s.device)
        .chain(remote.context().keys().copied());
    match writers.into_iter().find(|writer| *writer != owner) {
        Some(writer) => Err(MergeRefusal::NotTheOwner {
            writer: writer.short(),
            owner: owner.short(),
        }),
        None => Ok(()),
    }
}

fn permanence(key: &str) -> register::Permanence {
    if crate::roster::roster_device(key).is_some() {
        crate::roster::stored::is_removal
    } else {
        register::nothing_permanent
    }
}

/// Raises `vector[device]` to at least `through`.
fn raise(vector: &mut BTreeMap<DeviceId, u64>, device: DeviceId, through: u64) {
    let entry = vector.entry(device).or_default();
    *entry = (*entry).max(through);
}

/// The pointwise least of version vectors: what all of them reflect (a device missing
/// from one counts as 0).
pub fn least_of<'a>(vectors: impl IntoIterator<Item = &'a [(DeviceId, u64)]>) -> Vec<(DeviceId, u64)> {
    let mut vectors = vectors.into_iter();
    let Some(first) = vectors.next() else {
        return Vec::new();
    };
    let mut least: BTreeMap<DeviceId, u64> = first.iter().copied().collect();
    for vector in vectors {
        for (device, through) in least.iter_mut() {
            let theirs = vector.iter().find(|(d, _)| d == device).map_or(0, |(_, s)| *s);
            *through = (*through).min(theirs);
        }
    }
    least.into_iter().filter(|(_, s)| *s > 0).collect()
}

/// The store's durable state besides its keys.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Meta {
    /// This device's last write number.
    pub seq: u64,
    /// For each device, every write up to this number is reflected here.
    pub have: Vec<(DeviceId, u64)>,
    /// For each device, every write up to this number was on every device at the last
    /// collection of tombstones.
    #[serde(default)]
    pub stable: Vec<(DeviceId, u64)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Physical time at the receiver of every merge here (after every write's).
    const NOW: u64 = 1_000;

    /// Two empty replicas and their devices.
    fn two_stores() -> (DeviceId, DeviceId, Store, Store) {
        let (a_id, b_id) = (DeviceId::from_bytes([1; 32]), DeviceId::from_bytes([2; 32]));
        (a_id, b_id, Store::new(a_id, 0), Store::new(b_id, 0))
    }

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
    fn a_collected_delete_is_not_brought_back_by_a_stale_write() {
        let (a_id, _, mut a, mut b) = two_stores();
        a.write("k", Some(b"old".to_vec()), 100).expect("valid");
        let stale = a.read("k").expect("written").register.clone();
        b.merge("k", &stale, NOW).expect("honest");
        b.advance(&a.have());
        b.write("k", None, 200).expect("valid");
        a.merge("k", &b.read("k").expect("deleted").register.clone(), NOW)
            .expect("honest");
        a.advance(&b.have());
        assert_eq!(
            a.collect(&least_of([&a.have()[..], &[(a_id, 1)][..]])),
            Vec::<String>::new(),
            "b's delete is not everywhere yet"
        );
        let everywhere = least_of([&a.have()[..], &b.have()[..]]);
        assert_eq!(a.collect(&everywhere), vec!["k".to_owned()]);
        assert!(a.read("k").is_none());
        // The old value arriving late (a retransmission) is recognised as seen.
        assert!(!a.merge("k", &stale, NOW).expect("honest"));
        assert!(a.read("k").is_none());
        // A new write to the key is a new key.
        b.write("k", Some(b"new".to_vec()), 300).expect("valid");
        assert!(a
            .merge("k", &b.read("k").expect("written").register.clone(), NOW)
            .expect("honest"));
        assert_eq!(a.read("k").and_then(|r| r.value), Some(&b"new"[..]));
    }

    #[test]
    fn pushed_writes_move_the_version_vector_once_the_gaps_fill() {
        let (a_id, _, mut a, mut b) = two_stores();
        let mut pushed = Vec::new();
        for (i, key) in ["x", "y", "z"].into_iter().enumerate() {
            a.write(key, Some(vec![i as u8]), 100 + i as u64).expect("valid");
            pushed.push((key, a.read(key).expect("written").register.clone()));
        }
        let have_of_a = |b: &Store| b.have().into_iter().find(|(d, _)| *d == a_id).map(|(_, s)| s);
        b.merge(pushed[0].0, &pushed[0].1, NOW).expect("honest");
        b.merge(pushed[2].0, &pushed[2].1, NOW).expect("honest");
        assert_eq!(have_of_a(&b), Some(1), "write 2 is still missing");
        assert_eq!(a.missing_from(&b.have()).len(), 2, "y and z are sent again");
        b.merge(pushed[1].0, &pushed[1].1, NOW).expect("honest");
        assert_eq!(have_of_a(&b), Some(3));
        assert!(a.missing_from(&b.have()).is_empty(), "nothing to catch up");
    }

    #[test]
    fn replicas_converge_on_the_same_winner() {
        let (_, _, mut a, mut b) = two_stores();
        a.write("k", Some(b"a".to_vec()), 100).expect("valid");
        b.write("k", Some(b"b".to_vec()), 100).expect("valid");
        let a_state = a.read("k").expect("written").register.clone();
        let b_state = b.read("k").expect("written").register.clone();
        a.merge("k", &b_state, NOW).expect("honest");
        b.merge("k", &a_state, NOW).expect("honest");
        let (ra, rb) = (a.read("k").expect("merged"), b.read("k").expect("merged"));
        assert!(ra.conflict && rb.conflict);
        assert_eq!(
            ra.value, rb.value,
            "same winner everywhere (equal clocks: greater device ID)"
        );
        assert_eq!(ra.value, Some(&b"b"[..]));
    }

    #[test]
    fn only_the_device_an_address_record_names_writes_it_a_delete_included() {
        let (a_id, b_id, mut a, mut b) = two_stores();
        let key = crate::roster::address_key(&a_id);
        a.write(&key, Some(b"a's addresses".to_vec()), 100)
            .expect("valid");
        let own = a.read(&key).expect("written").register.clone();
        assert_eq!(b.merge(&key, &own, NOW), Ok(true), "the owner's write is taken");
        // b erases it (or puts its own record in its place): nobody takes that.
        b.write(&key, None, 200)
            .expect("the store itself does not know owners");
        let erased = b.read(&key).map(|r| r.register.clone()).unwrap_or_default();
        assert_eq!(
            a.merge(&key, &erased, NOW),
            Err(MergeRefusal::NotTheOwner {
                writer: b_id.short(),
                owner: a_id.short()
            })
        );
        assert_eq!(a.read(&key).and_then(|r| r.value), Some(&b"a's addresses"[..]));
    }

    #[test]
    fn a_peer_cannot_claim_writes_of_this_device_or_a_clock_far_ahead() {
        let (a_id, b_id, mut a, mut b) = two_stores();
        a.write("k", Some(b"a".to_vec()), 100).expect("valid");
        // b's state names a's write 2, which a never made: a would number its next write 2
        // and replicas would take it for the forged one.
        let forged = Register::from_parts(
            vec![Sibling {
                device: b_id,
                seq: 1,
                hlc: Hlc {
                    micros: 200,
                    counter: 0,
                },
                value: Some(b"b".to_vec()),
            }],
            [(a_id, u64::MAX), (b_id, 1)],
        );
        assert_eq!(
            a.merge("k", &forged, NOW),
            Err(MergeRefusal::ForgedOwnWrite {
                claimed: u64::MAX,
                made: 1
            })
        );
        assert_eq!(
            a.read("k").and_then(|r| r.value),
            Some(&b"a"[..]),
            "nothing changed"
        );
        assert_eq!(a.write("k", Some(b"next".to_vec()), 300), Ok(2));
        // A write stamped far ahead would move a's clock there for good.
        let ahead = MAX_AHEAD_MICROS + NOW + 1;
        b.write("k", Some(b"future".to_vec()), ahead).expect("valid");
        let from_the_future = b.read("k").expect("written").register.clone();
        assert!(matches!(
            a.merge("k", &from_the_future, NOW),
            Err(MergeRefusal::ClockAhead { .. })
        ));
        assert_eq!(a.write("k", Some(b"later".to_vec()), 400), Ok(3));
        let own = a.read("k").expect("written").register.siblings()[0].hlc;
        assert!(own.micros < ahead, "a's clock did not move");
        // Within the bound, it is taken in.
        assert_eq!(a.merge("k", &from_the_future, ahead), Ok(true));
    }
}
