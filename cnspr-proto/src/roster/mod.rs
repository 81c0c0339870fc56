//! The roster: which devices belong to the mesh, with their names. It is itself
//! replicated, as data in the replicated store ([`stored`]): every device holds a copy
//! and copies merge without coordination.
//!
//! Each device's entry is a join-semilattice: of two entries for one device the one with
//! the greater `(removed, version, name)` wins. So a removal beats everything (a revoked
//! device never comes back), a rename (higher version) beats the older name, and two
//! renames at one version settle on the same name everywhere. Merging is commutative,
//! associative and idempotent, so copies converge however entries travel.

pub mod address_record;
mod known;
pub mod mesh_secret;
pub mod sealed_secret;
pub mod stored;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use address_record::{address_device, address_key, AddressRecord, ADDRESS_PREFIX};
pub use known::KnownDevice;
pub use stored::{roster_device, roster_key, StoredEntry, ROSTER_PREFIX};

use crate::crypto::hash::hash;
use crate::identity::DeviceId;
use crate::vec_map::VecMap;

/// The store's namespaces that belong to the mesh itself: the roster, and the address
/// records beside it. Applications read them, never write them; a listing shows them only
/// when its prefix is within one.
pub const SYSTEM_NAMESPACES: [&str; 2] = [ROSTER_PREFIX, ADDRESS_PREFIX];

/// The system namespace `key` (or a prefix) is in, if any.
pub fn system_namespace(key: &str) -> Option<&'static str> {
    SYSTEM_NAMESPACES
        .into_iter()
        .find(|namespace| key.starts_with(namespace))
}

/// Longest device name, in bytes of UTF-8.
pub const MAX_NAME_BYTES: usize = 64;
/// Between a contested name and the short ID it is shown with (`laptop#YCASGLI`); no name
/// holds it, so no device can take the shown name of another.
pub const SHOWN_NAME_SEPARATOR: char = '#';
/// Most devices a roster holds (removed ones included); a mesh of personal devices stays
/// far below it, and it bounds what a peer can make us store.
pub const MAX_ROSTER_DEVICES: usize = 1024;

/// What the roster says about one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterEntry {
    /// Its human name (empty until the device itself tells it).
    pub name: String,
    /// Grows with every rename; removal also raises it.
    pub version: u64,
    /// Revoked: refused everywhere from now on.
    pub removed: bool,
}

impl RosterEntry {
    /// The entry of a device admitted by its ID alone, before it told its name.
    pub fn admitted() -> Self {
        Self {
            name: String::new(),
            version: 0,
            removed: false,
        }
    }

    /// The order in which entries supersede each other.
    fn rank(&self) -> (bool, u64, &str) {
        (self.removed, self.version, &self.name)
    }

    /// Whether this entry wins over `other`.
    pub fn supersedes(&self, other: &RosterEntry) -> bool {
        self.rank() > other.rank()
    }
}

/// Whether `name` may name a device: 1–64 bytes, no control characters.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && !name.chars().any(|c| c.is_control() || c == SHOWN_NAME_SEPARATOR)
        // A name that reads as a device ID would let one device pass for another.
        && name.parse::<DeviceId>().is_err()
}

/// What a merge did to the roster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RosterChange {
    /// Nothing: the entry was known or older.
    Unchanged,
    /// A device joined the mesh.
    Added,
    /// A device was renamed.
    Renamed,
    /// A device was revoked.
    Removed,
    /// Refused: an invalid name, or the roster is full. Nothing changed.
    Refused,
}

/// The devices of the mesh.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roster {
    entries: BTreeMap<DeviceId, RosterEntry>,
    /// Who claims each name (devices not removed), the first claim first: by
    /// `(version, device)`, the same order everywhere.
    claims: BTreeMap<String, VecMap<(u64, DeviceId), ()>>,
}

impl Roster {
    /// An empty roster.
    pub fn new() -> Self {
        Self::default()
    }

    /// The entry of `device`, removed or not.
    pub fn get(&self, device: &DeviceId) -> Option<&RosterEntry> {
        self.entries.get(device)
    }

    /// Whether `device` belongs to the mesh (known and not removed).
    pub fn is_member(&self, device: &DeviceId) -> bool {
        self.entries.get(device).is_some_and(|e| !e.removed)
    }

    /// The name `device` gave itself, if it has told one. Two devices may give the same;
    /// what people and handler filters see is [`Roster::shown_name`].
    pub fn name(&self, device: &DeviceId) -> Option<&str> {
        self.entries
            .get(device)
            .map(|e| e.name.as_str())
            .filter(|n| !n.is_empty())
    }

    /// The name `device` goes by, unique in the mesh: the name it gave itself if its claim
    /// is the first (by `(version, device)`: the same on every device), otherwise that
    /// name with its short ID (`laptop#YCASGLI`). A removed device claims no name.
    pub fn shown_name(&self, device: &DeviceId) -> Option<String> {
        let entry = self.entries.get(device).filter(|e| !e.name.is_empty())?;
        let first = self
            .claims
            .get(&entry.name)
            .and_then(|claims| claims.first_key())
            .map(|(_, id)| id);
        match first {
            Some(first) if first != device => {
                Some(format!("{}{SHOWN_NAME_SEPARATOR}{}", entry.name, device.short()))
            }
            _ => Some(entry.name.clone()),
        }
    }

    /// Sets `device`'s entry, keeping the claims on names in step.
    fn set_entry(&mut self, device: DeviceId, entry: RosterEntry) {
        if let Some(old) = self.entries.get(&device) {
            if let Some(claims) = self.claims.get_mut(&old.name) {
                claims.remove(&(old.version, device));
                if claims.is_empty() {
                    self.claims.remove(&old.name);
                }
            }
        }
        if !entry.removed && !entry.name.is_empty() {
            self.claims
                .entry(entry.name.clone())
                .or_default()
                .insert((entry.version, device), ());
        }
        self.entries.insert(device, entry);
    }

    /// Every entry, removed ones included, in device order.
    pub fn entries(&self) -> impl Iterator<Item = (&DeviceId, &RosterEntry)> {
        self.entries.iter()
    }

    /// The devices that belong to the mesh.
    pub fn members(&self) -> impl Iterator<Item = &DeviceId> {
        self.entries.iter().filter(|(_, e)| !e.removed).map(|(id, _)| id)
    }

    /// How many entries, removed ones included.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A short fingerprint of the whole roster: equal rosters have equal digests.
    pub fn digest(&self) -> u64 {
        let encoded: Vec<Vec<u8>> = self
            .entries
            .iter()
            .map(|(id, e)| {
                let mut bytes = id.as_bytes().to_vec();
                bytes.extend_from_slice(&e.version.to_le_bytes());
                bytes.push(u8::from(e.removed));
                bytes.extend_from_slice(&(e.name.len() as u64).to_le_bytes());
                bytes.extend_from_slice(e.name.as_bytes());
                bytes
            })
            .collect();
        let parts: Vec<&[u8]> = std::iter::once(&b"cnspr roster"[..])
            .chain(encoded.iter().map(Vec::as_slice))
            .collect();
        let digest = hash(&parts);
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_le_bytes(first)
    }

    /// Takes in an entry learnt from anywhere (a peer, the disk, pairing).
    pub fn merge(&mut self, device: DeviceId, entry: RosterEntry) -> RosterChange {
        if !entry.name.is_empty() && !is_valid_name(&entry.name) {
            return RosterChange::Refused;
        }
        let full = self.entries.len() >= MAX_ROSTER_DEVICES;
        match self.entries.get_mut(&device) {
            None if full => RosterChange::Refused,
            None => {
                let removed = entry.removed;
                self.set_entry(device, entry);
                if removed {
                    RosterChange::Removed
                } else {
                    RosterChange::Added
                }
            }
            Some(known) if entry.supersedes(known) => {
                let change = if entry.removed && !known.removed {
                    RosterChange::Removed
                } else if entry.removed {
                    RosterChange::Unchanged
                } else {
                    RosterChange::Renamed
                };
                self.set_entry(device, entry);
                change
            }
            Some(_) => RosterChange::Unchanged,
        }
    }

    /// Adds a device known only by its ID (its name comes later from the device itself).
    pub fn admit(&mut self, device: DeviceId) -> RosterChange {
        self.merge(device, RosterEntry::admitted())
    }

    /// Names (or renames) `device`, superseding every earlier name.
    pub fn rename(&mut self, device: DeviceId, name: &str) -> RosterChange {
        let version = self
            .entries
            .get(&device)
            .map_or(1, |e| e.version.saturating_add(1));
        let entry = RosterEntry {
            name: name.to_owned(),
            version,
            removed: false,
        };
        self.merge(device, entry)
    }

    /// Revokes `device` for good.
    pub fn remove(&mut self, device: DeviceId) -> RosterChange {
        let (name, version) = self.entries.get(&device).map_or((String::new(), 0), |e| {
            (e.name.clone(), e.version.saturating_add(1))
        });
        let entry = RosterEntry {
            name,
            version,
            removed: true,
        };
        self.merge(device, entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_are_unique_as_shown_and_an_id_is_no_name() {
        let (a, b, c) = (
            DeviceId::from_bytes([1; 32]),
            DeviceId::from_bytes([2; 32]),
            DeviceId::from_bytes([3; 32]),
        );
        let mut roster = Roster::new();
        roster.rename(b, "laptop");
        roster.rename(a, "laptop");
        roster.rename(c, "laptop");
        roster.rename(c, "laptop");
        // First claim by (version, device): a and b at version 1, a's ID smaller; c renamed
        // twice (version 2) comes last.
        assert_eq!(roster.shown_name(&a).as_deref(), Some("laptop"));
        assert_eq!(roster.shown_name(&b), Some(format!("laptop#{}", b.short())));
        assert_eq!(roster.shown_name(&c), Some(format!("laptop#{}", c.short())));
        // Every order of learning the same entries shows the same names.
        let mut other = Roster::new();
        for id in [c, a, b] {
            other.merge(id, roster.get(&id).cloned().expect("an entry"));
        }
        for id in [a, b, c] {
            assert_eq!(other.shown_name(&id), roster.shown_name(&id));
        }
        // The first claimant renames or is removed: the next one gets the plain name.
        roster.remove(a);
        assert_eq!(roster.shown_name(&b).as_deref(), Some("laptop"));
        assert_eq!(
            roster.shown_name(&a),
            Some(format!("laptop#{}", a.short())),
            "removed: no claim"
        );
        // A name that reads as a device ID is no name: refused.
        assert!(!is_valid_name(&c.to_string()));
        assert!(!is_valid_name(&c.to_string().to_lowercase().replace('-', "")));
        assert_eq!(roster.rename(b, &c.to_string()), RosterChange::Refused);
        assert!(
            is_valid_name(&c.short().to_string()),
            "a short ID is a name: IDs resolve first"
        );
        assert!(
            !is_valid_name(&format!("laptop#{}", c.short())),
            "nobody takes a shown name"
        );
    }

    fn entry_strategy() -> impl Strategy<Value = (DeviceId, RosterEntry)> {
        (0u8..4, "[a-c]{0,2}", 0u64..3, any::<bool>()).prop_map(|(id, name, version, removed)| {
            (
                DeviceId::from_bytes([id; 32]),
                RosterEntry {
                    name,
                    version,
                    removed,
                },
            )
        })
    }

    fn merged(entries: &[(DeviceId, RosterEntry)]) -> Roster {
        let mut roster = Roster::new();
        for (id, entry) in entries {
            roster.merge(*id, entry.clone());
        }
        roster
    }

    proptest! {
        #[test]
        fn merge_order_does_not_matter(entries in proptest::collection::vec(entry_strategy(), 0..12)) {
            let forward = merged(&entries);
            let mut reversed_entries = entries.clone();
            reversed_entries.reverse();
            prop_assert_eq!(&forward, &merged(&reversed_entries));
            let mut twice = entries.clone();
            twice.extend(entries.iter().cloned());
            prop_assert_eq!(&forward, &merged(&twice));
            prop_assert_eq!(forward.digest(), merged(&reversed_entries).digest());
        }
    }

    #[test]
    fn a_removal_is_never_undone() {
        let id = DeviceId::from_bytes([1; 32]);
        let mut roster = Roster::new();
        assert_eq!(roster.rename(id, "laptop"), RosterChange::Added);
        assert_eq!(roster.remove(id), RosterChange::Removed);
        let newer_name = RosterEntry {
            name: "laptop2".into(),
            version: 99,
            removed: false,
        };
        assert_eq!(roster.merge(id, newer_name), RosterChange::Unchanged);
        assert_eq!(roster.admit(id), RosterChange::Unchanged);
        assert!(!roster.is_member(&id));
    }

    #[test]
    fn a_version_at_the_end_of_its_range_neither_overflows_nor_blocks_removal() {
        let id = DeviceId::from_bytes([3; 32]);
        let mut roster = Roster::new();
        let last = RosterEntry {
            name: "thief".into(),
            version: u64::MAX,
            removed: false,
        };
        assert_eq!(roster.merge(id, last), RosterChange::Added);
        // The version cannot grow further: the rename does not supersede it (until the
        // roster's entries are signed by the devices they name, nothing better is known).
        assert_eq!(roster.rename(id, "other"), RosterChange::Unchanged);
        assert_eq!(roster.remove(id), RosterChange::Removed);
        assert!(!roster.is_member(&id));
    }

    #[test]
    fn names_are_bounded_and_renames_win() {
        let id = DeviceId::from_bytes([2; 32]);
        let mut roster = Roster::new();
        assert_eq!(roster.admit(id), RosterChange::Added);
        assert_eq!(roster.name(&id), None);
        assert_eq!(roster.rename(id, "desk"), RosterChange::Renamed);
        assert_eq!(roster.rename(id, &"x".repeat(65)), RosterChange::Refused);
        assert_eq!(roster.rename(id, "bad\nname"), RosterChange::Refused);
        assert_eq!(roster.name(&id), Some("desk"));
    }

    #[test]
    fn the_roster_is_bounded() {
        let mut roster = Roster::new();
        for i in 0..MAX_ROSTER_DEVICES {
            let mut bytes = [0u8; 32];
            bytes[..8].copy_from_slice(&(i as u64).to_le_bytes());
            assert_eq!(roster.admit(DeviceId::from_bytes(bytes)), RosterChange::Added);
        }
        assert_eq!(
            roster.admit(DeviceId::from_bytes([0xff; 32])),
            RosterChange::Refused
        );
        assert_eq!(roster.len(), MAX_ROSTER_DEVICES);
    }
}
