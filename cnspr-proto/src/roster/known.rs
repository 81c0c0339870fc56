//! A roster device as a device keeps it between runs: its entry, and where it was last
//! reached (the daemon's `roster.json`, the simulator's virtual disk).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::{Roster, RosterEntry};
use crate::identity::DeviceId;

/// One device of the roster, with the address it was last reached at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownDevice {
    /// Its device ID (text form in JSON).
    pub id: DeviceId,
    /// Its roster entry.
    #[serde(flatten)]
    pub entry: RosterEntry,
    /// Where it was last reached.
    pub address: Option<SocketAddr>,
}

impl KnownDevice {
    /// Every entry of `roster`, removed ones included, with the address `address_of`
    /// knows for it.
    pub fn all(roster: &Roster, address_of: impl Fn(&DeviceId) -> Option<SocketAddr>) -> Vec<Self> {
        roster
            .entries()
            .map(|(id, entry)| KnownDevice {
                id: *id,
                entry: entry.clone(),
                address: address_of(id),
            })
            .collect()
    }

    /// A device known by its ID alone (its name comes later, from the device itself).
    pub fn admitted(id: DeviceId, address: Option<SocketAddr>) -> Self {
        Self {
            id,
            entry: RosterEntry::admitted(),
            address,
        }
    }
}
