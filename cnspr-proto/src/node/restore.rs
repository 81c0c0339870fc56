//! Starting a device's node from what it kept: one value holding everything durable, and
//! one call that restores it in the one right order.
//!
//! The order matters: the store first (it holds the roster as `_roster/` keys, and
//! restoring a roster key admits its device to every layer), then the messaging records
//! (for the peers now known), then the roster the daemon keeps beside the store (which
//! only repeats it, apart from entries an older version kept there alone), then this
//! device's configured name (a rename is a store write, which must come after the store's
//! own counter is back). Only then does the device announce itself, to the neighbours of
//! the roster as restored.

use std::net::SocketAddr;

use super::{Node, NodeConfig};
use crate::durable::Record;
use crate::identity::{DeviceId, DeviceKey};
use crate::roster::KnownDevice;
use crate::time::Timestamp;

/// Everything a device keeps across restarts.
pub struct Durable {
    /// Its keys.
    pub identity: DeviceKey,
    /// This start's number: it must grow with every start (persisted before the node
    /// uses it), so that a restarted device's incarnations supersede all earlier ones.
    pub boot: u32,
    /// The name it is configured with, if any.
    pub name: Option<String>,
    /// The roster it kept, with the addresses last seen.
    pub roster: Vec<KnownDevice>,
    /// Every record the layers left on disk.
    pub records: Vec<Record>,
}

impl Durable {
    /// A device that has kept nothing yet but its keys, whose roster lists `peers`.
    pub fn fresh(
        identity: DeviceKey,
        boot: u32,
        peers: impl IntoIterator<Item = (DeviceId, Option<SocketAddr>)>,
    ) -> Self {
        Self {
            identity,
            boot,
            name: None,
            roster: peers
                .into_iter()
                .map(|(id, address)| KnownDevice::admitted(id, address))
                .collect(),
            records: Vec::new(),
        }
    }
}

impl Node {
    /// The node of a device starting from `durable`. `now` is the caller's monotonic
    /// clock and `unix_secs` the Unix time at that moment; `rng_seed` must be secret
    /// randomness in the daemon.
    pub fn restore(
        config: NodeConfig,
        durable: Durable,
        rng_seed: [u8; 32],
        now: Timestamp,
        unix_secs: u64,
    ) -> Self {
        let Durable {
            identity,
            boot,
            name,
            roster,
            records,
        } = durable;
        let members = roster
            .iter()
            .filter(|device| !device.entry.removed)
            .map(|device| (device.id, device.address));
        let mut node = Self::new(config, identity, members, boot, rng_seed, now);
        node.set_wall_clock(now, unix_secs);
        let (mut store, mut messaging, mut runs) = (Vec::new(), Vec::new(), Vec::new());
        for record in records {
            match record {
                Record::Store(record) => store.push(record),
                Record::Messaging(record) => messaging.push(record),
                Record::Runs(record) => runs.push(record),
            }
        }
        node.restore_store(now, store);
        node.restore_messaging(messaging);
        node.runs.restore(runs);
        node.merge_roster(now, roster.into_iter().map(|device| (device.id, device.entry)));
        if let Some(name) = name {
            node.set_own_name(now, &name);
        }
        // Only now, with every device it kept known: the neighbours hear from it at once.
        node.membership.announce(now);
        node.route_between_layers(now);
        node
    }
}
