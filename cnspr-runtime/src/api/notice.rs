//! `monitor`: what the daemon sees, one notice per notification. The driver sends these;
//! the CLI reads the same type back.

use std::net::SocketAddr;

use cnspr_proto::identity::DeviceId;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::handlers::HandlerRun;
use super::peer::{DeviceIdText, PeerState};

/// Something the daemon saw: a `monitor` notification's `params`, tagged by `event`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Notice {
    /// A peer's state changed.
    PeerState {
        /// Who.
        #[schemars(with = "DeviceIdText")]
        peer: DeviceId,
        /// Its name, once known.
        name: Option<String>,
        /// Before.
        previous: PeerState,
        /// Now.
        state: PeerState,
    },
    /// A peer was reached at a new address.
    PeerAddress {
        /// Who.
        #[schemars(with = "DeviceIdText")]
        peer: DeviceId,
        /// Its name, once known.
        name: Option<String>,
        /// Where.
        address: SocketAddr,
    },
    /// A device joined the mesh with one of our invites.
    Paired {
        /// The new device.
        #[schemars(with = "DeviceIdText")]
        peer: DeviceId,
    },
    /// The roster changed.
    RosterChanged {
        /// Devices on it now, this one included.
        devices: usize,
    },
    /// A direct message arrived.
    Message {
        /// From whom.
        #[schemars(with = "DeviceIdText")]
        from: DeviceId,
        /// Its name.
        name: Option<String>,
        /// Its tag.
        tag: String,
        /// Payload size.
        bytes: usize,
    },
    /// An event arrived (or was published here).
    Event {
        /// Who published it.
        #[schemars(with = "DeviceIdText")]
        origin: DeviceId,
        /// Its name.
        name: Option<String>,
        /// Its tag.
        tag: String,
        /// Payload size.
        bytes: usize,
    },
    /// A query arrived.
    Query {
        /// From whom.
        #[schemars(with = "DeviceIdText")]
        from: DeviceId,
        /// Its name.
        name: Option<String>,
        /// Its tag.
        tag: String,
    },
    /// A handler finished.
    HandlerRun(HandlerRun),
    /// A handler was running for a message or event when this daemon stopped (it
    /// crashed or was killed): the run is not repeated.
    HandlerInterrupted {
        /// Its path relative to the handler directory.
        handler: String,
        /// Who sent or published what it ran for.
        #[schemars(with = "DeviceIdText")]
        origin: DeviceId,
        /// Its name.
        name: Option<String>,
        /// The tag.
        tag: String,
    },
    /// A key of the store changed here (written here or by a peer).
    StoreChanged {
        /// The key.
        key: String,
        /// Its change number (`kv.watch` resumes after one).
        cursor: u64,
    },
    /// The database failed (a full disk, an I/O error): nothing that needs the disk is
    /// done or acknowledged until it works again; reads go on.
    DiskFailed {
        /// What failed.
        error: String,
    },
    /// The failed database works again: everything held back is written and goes on.
    DiskRecovered,
    /// This client read too slowly: that many notices were dropped in its place.
    Lagged {
        /// How many.
        missed: u64,
    },
}
