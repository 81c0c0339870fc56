//! How the roster lives in the replicated store: one key per device under
//! [`ROSTER_PREFIX`], holding its [`RosterEntry`] and an address it was reached at. Adding,
//! renaming and removing devices thus ride the store's replication, catch-up included.
//!
//! Entries are a join-semilattice, so concurrent writes of one device's key (the inviter
//! admitting it while it names itself) are not a conflict to resolve: a reader joins every
//! sibling, and whoever writes the key next writes the join.
//!
//! Only a device names itself: an entry with a name carries the device's own signature of
//! its ID, the entry's version and the name ([`StoredEntry::signed`]), and a reader takes
//! in only what [`StoredEntry::trusted`] lets through, so another device of the roster can
//! neither rename it nor freeze its name with a version far ahead.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::{RosterEntry, MAX_NAME_BYTES};
use crate::crypto::hash::{hash, Hash};
use crate::identity::{DeviceId, DeviceKey, Signature, SIGNATURE_BYTES};
use crate::store::Sibling;
use crate::wire::cbor::{self, CborError};

/// The store's namespace for the roster; applications cannot write under it.
pub const ROSTER_PREFIX: &str = "_roster/";

/// Largest encoded entry (a name of the longest size and an IPv6 address fit well).
const MAX_STORED_BYTES: usize = MAX_NAME_BYTES + 128 + SIGNATURE_BYTES + 16;

/// What a device's signature of its own entry is over.
const NAME_LABEL: &[u8] = b"cnspr name v1";

/// A device's roster entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEntry {
    /// The entry.
    pub entry: RosterEntry,
    /// Where the writer last reached the device: a device with no address for it yet can
    /// try that one.
    pub address: Option<SocketAddr>,
    /// The device's own signature of the entry's name and version, when it wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
}

/// Whether a sibling of a roster key is a removal: a fact the store keeps whatever later
/// writes claim ([`crate::store::Permanence`]).
pub fn is_removal(sibling: &Sibling) -> bool {
    sibling
        .value
        .as_deref()
        .and_then(|value| StoredEntry::decode(value).ok())
        .is_some_and(|stored| stored.entry.removed)
}

/// The latest entry signature verified of each device: the same entry merged again (every
/// catch-up and relay brings it) costs a hash, not a signature check.
#[derive(Debug, Default)]
pub struct VerifiedNames(std::collections::BTreeMap<DeviceId, (Hash, Signature)>);

impl VerifiedNames {
    fn verifies(&mut self, device: &DeviceId, digest: Hash, signature: Signature) -> bool {
        if self.0.get(device) == Some(&(digest, signature)) {
            return true;
        }
        let verified = device.verifies(&digest, &signature);
        if verified {
            self.0.insert(*device, (digest, signature));
        }
        verified
    }
}

fn name_digest(device: &DeviceId, version: u64, name: &str) -> Hash {
    hash(&[
        NAME_LABEL,
        device.as_bytes(),
        &version.to_le_bytes(),
        name.as_bytes(),
    ])
}

/// The store key of `device`'s entry.
pub fn roster_key(device: &DeviceId) -> String {
    format!("{ROSTER_PREFIX}{device}")
}

/// The device a store key names, if it is a roster key.
pub fn roster_device(key: &str) -> Option<DeviceId> {
    key.strip_prefix(ROSTER_PREFIX)?.parse().ok()
}

impl StoredEntry {
    /// The entry of the device of `key`, as the device itself writes it: signed.
    pub fn signed(key: &DeviceKey, entry: RosterEntry, address: Option<SocketAddr>) -> Self {
        let digest = name_digest(&key.device_id(), entry.version, &entry.name);
        Self {
            signature: Some(key.sign(&digest)),
            entry,
            address,
        }
    }

    /// What a reader may believe of this entry of `device`, whose name it knew as
    /// `known_name`: a name (at its version) only if `device` signed it; a removal, by
    /// whoever wrote it, with the name known before (a removal renames nothing); an
    /// admission (version 0, no name) as it is. `None` for anything else.
    pub fn trusted(
        self,
        device: &DeviceId,
        known_name: Option<&str>,
        verified: &mut VerifiedNames,
    ) -> Option<RosterEntry> {
        let entry = self.entry;
        if entry.removed {
            return Some(RosterEntry {
                name: known_name.unwrap_or_default().to_owned(),
                ..entry
            });
        }
        if entry.version == 0 && entry.name.is_empty() {
            return Some(entry);
        }
        let signature = self.signature?;
        let digest = name_digest(device, entry.version, &entry.name);
        verified.verifies(device, digest, signature).then_some(entry)
    }

    /// The value's bytes.
    pub fn encode(&self) -> Result<Vec<u8>, CborError> {
        cbor::encode(self)
    }

    /// Parses a value written by any device; never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self, CborError> {
        cbor::decode_bounded(bytes, MAX_STORED_BYTES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn keys_and_values_round_trip() {
        let device = DeviceId::from_bytes([7; 32]);
        assert_eq!(roster_device(&roster_key(&device)), Some(device));
        assert_eq!(roster_device("notes/a"), None);
        assert_eq!(roster_device("_roster/not-an-id"), None);
        let stored = StoredEntry {
            entry: RosterEntry {
                name: "é".repeat(MAX_NAME_BYTES / 2),
                version: u64::MAX,
                removed: true,
            },
            address: Some("[2001:db8::1]:65535".parse().expect("valid")),
            signature: Some(Signature([0xee; SIGNATURE_BYTES])),
        };
        let bytes = stored.encode().expect("encodes");
        assert_eq!(StoredEntry::decode(&bytes), Ok(stored));
    }

    fn named(name: &str, version: u64) -> RosterEntry {
        RosterEntry {
            name: name.to_owned(),
            version,
            removed: false,
        }
    }

    #[test]
    fn only_the_device_itself_names_it() {
        let (laptop, thief) = (DeviceKey::from_seed([1; 32]), DeviceKey::from_seed([2; 32]));
        let id = laptop.device_id();
        let own = StoredEntry::signed(&laptop, named("laptop", 3), None);
        assert_eq!(
            own.clone().trusted(&id, None, &mut VerifiedNames::default()),
            Some(named("laptop", 3))
        );
        // Signed by another key, altered after signing, or not signed at all.
        let by_thief = StoredEntry::signed(&thief, named("laptop", 3), None);
        assert_eq!(by_thief.trusted(&id, None, &mut VerifiedNames::default()), None);
        let mut altered = own.clone();
        altered.entry.version = u64::MAX;
        assert_eq!(altered.trusted(&id, None, &mut VerifiedNames::default()), None);
        let unsigned = StoredEntry {
            signature: None,
            ..own
        };
        assert_eq!(unsigned.trusted(&id, None, &mut VerifiedNames::default()), None);
        // An admission needs no signature; a removal keeps the name known before it.
        let admitted = StoredEntry {
            entry: RosterEntry::admitted(),
            address: None,
            signature: None,
        };
        assert_eq!(
            admitted.trusted(&id, None, &mut VerifiedNames::default()),
            Some(RosterEntry::admitted())
        );
        let removal = StoredEntry {
            entry: RosterEntry {
                name: "renamed by the remover".into(),
                version: 4,
                removed: true,
            },
            address: None,
            signature: None,
        };
        assert_eq!(
            removal.trusted(&id, Some("laptop"), &mut VerifiedNames::default()),
            Some(RosterEntry {
                name: "laptop".into(),
                version: 4,
                removed: true
            })
        );
    }

    proptest! {
        #[test]
        fn arbitrary_values_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = StoredEntry::decode(&bytes);
        }
    }
}
