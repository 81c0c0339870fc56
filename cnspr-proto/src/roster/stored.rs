//! How the roster lives in the replicated store: one key per device under
//! [`ROSTER_PREFIX`], holding its [`RosterEntry`] and an address it was reached at. Adding,
//! renaming and removing devices thus ride the store's replication, catch-up included.
//!
//! Entries are a join-semilattice, so concurrent writes of one device's key (the inviter
//! admitting it while it names itself) are not a conflict to resolve: a reader joins every
//! sibling, and whoever writes the key next writes the join.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::{RosterEntry, MAX_NAME_BYTES};
use crate::identity::DeviceId;
use crate::wire::cbor::{self, CborError};

/// The store's namespace for the roster; applications cannot write under it.
pub const ROSTER_PREFIX: &str = "_roster/";

/// Largest encoded entry (a name of the longest size and an IPv6 address fit well).
const MAX_STORED_BYTES: usize = MAX_NAME_BYTES + 128;

/// A device's roster entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEntry {
    /// The entry.
    pub entry: RosterEntry,
    /// Where the writer last reached the device: a device with no address for it yet can
    /// try that one.
    pub address: Option<SocketAddr>,
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
        };
        let bytes = stored.encode().expect("encodes");
        assert_eq!(StoredEntry::decode(&bytes), Ok(stored));
    }

    proptest! {
        #[test]
        fn arbitrary_values_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = StoredEntry::decode(&bytes);
        }
    }
}
