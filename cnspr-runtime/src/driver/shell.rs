//! What carries the node's outputs out in the daemon: the database for its durable
//! writes (one batch and one sync per round), the sockets for its datagrams, and
//! notices, handler runs and answers to waiting clients for its events (`events.rs`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cnspr_proto::durable::Write;
use cnspr_proto::identity::DeviceId;
use cnspr_proto::membership::MemberState;
use cnspr_proto::node::{Event, Host, Node, PeerError};
use cnspr_proto::transport::Transmit;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::{Command, Notice};
use crate::disk::DiskError;
use crate::durability::Durability;
use crate::handlers::Dispatcher;
use crate::sockets::Sockets;
use crate::state::SavedRoster;

/// Everything of the node task but the node itself.
pub(super) struct Shell {
    pub(super) sockets: Sockets,
    pub(super) notices: broadcast::Sender<Notice>,
    pub(super) data_dir: PathBuf,
    pub(super) joins: Vec<(DeviceId, oneshot::Sender<bool>)>,
    pub(super) echoes: BTreeMap<u64, oneshot::Sender<Result<Duration, PeerError>>>,
    pub(super) durability: Arc<Durability>,
    /// Writes the node made that are not known durable because the database failed,
    /// in order: written again once it works.
    pub(super) unwritten: Vec<Write>,
    pub(super) dispatcher: Dispatcher,
    /// The task's own command queue (handler answers come back through it).
    pub(super) commands: mpsc::Sender<Command>,
    pub(super) sends: BTreeMap<(DeviceId, u64), oneshot::Sender<bool>>,
    pub(super) queries: BTreeMap<u64, mpsc::Sender<super::QueryReply>>,
    pub(super) active_peers: usize,
    /// Peer events waiting for the peer's name.
    pub(super) unnamed: Vec<(&'static str, DeviceId, MemberState)>,
    /// Answers to requests, to give once the writes they made are synced (dropped,
    /// never given, if the database fails first).
    pub(super) durable_acks: Vec<Box<dyn FnOnce() + Send>>,
    /// Datagrams of this round waiting for a busy socket (the writes they follow are
    /// durable already).
    pub(super) outgoing: Vec<Transmit>,
}

impl Host for Shell {
    type Error = DiskError;

    /// One atomic batch, then one sync; then `watch` hears of the store keys written.
    /// If that fails the writes are kept for [`Shell::recover_disk`] and nothing waiting
    /// for them is answered.
    fn persist(&mut self, writes: Vec<Write>) -> Result<(), DiskError> {
        let failed_before = self.disk_failed();
        match self.durability.commit(&writes) {
            Ok(changed) => {
                self.announce_changes(changed);
                Ok(())
            }
            Err(error) => {
                self.unwritten.extend(writes);
                self.durable_acks.clear();
                if !failed_before {
                    let _ = self.notices.send(Notice::DiskFailed {
                        error: error.to_string(),
                    });
                }
                Err(error)
            }
        }
    }

    /// Sends at once (a handler started for an event of the same round must not delay
    /// the datagrams that carry it to the peers); a socket that is not ready takes the
    /// rest of the round after it, in order, once it is.
    fn transmit(&mut self, transmit: Transmit) {
        if self.outgoing.is_empty() {
            let Some(socket) = self.sockets.for_destination(&transmit.destination) else {
                return;
            };
            match socket.try_send_to(&transmit.datagram, transmit.destination) {
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
                // Sent, or failed for this destination (no route): the protocol treats
                // that as loss.
                _ => return,
            }
        }
        self.outgoing.push(transmit);
    }

    fn event(&mut self, node: &Node, event: Event) {
        self.on_event(node, event);
    }
}

impl Shell {
    /// Whether the database takes no writes now.
    pub(super) fn disk_failed(&self) -> bool {
        self.durability.failure().is_some()
    }

    /// Opens the failed database again and writes what was not durable; whether it
    /// works again.
    pub(super) fn recover_disk(&mut self) -> bool {
        match self.durability.recover(&self.unwritten) {
            Ok(changed) => {
                self.unwritten.clear();
                self.announce_changes(changed);
                let _ = self.notices.send(Notice::DiskRecovered);
                true
            }
            Err(error) => {
                tracing::debug!(%error, "the database does not work yet");
                false
            }
        }
    }

    /// Answers with `acknowledge` once the writes made so far are durable.
    pub(super) fn after_durable(&mut self, acknowledge: impl FnOnce() + Send + 'static) {
        self.durable_acks.push(Box::new(acknowledge));
    }

    fn announce_changes(&self, changed: Vec<(String, u64)>) {
        for (key, cursor) in changed {
            let _ = self.notices.send(Notice::StoreChanged { key, cursor });
        }
    }

    /// Sends the datagrams of the round that found the socket busy.
    pub(super) async fn send_outgoing(&mut self) {
        for transmit in std::mem::take(&mut self.outgoing) {
            if let Some(socket) = self.sockets.for_destination(&transmit.destination) {
                let _ = socket.send_to(&transmit.datagram, transmit.destination).await;
            }
        }
    }

    /// Writes the roster and the addresses last seen. A failure is logged, not fatal: the
    /// roster is rebuilt from peers after a restart.
    pub(super) fn save_roster(&self, node: &Node) {
        let saved = SavedRoster {
            devices: node.known_devices(),
        };
        if let Err(error) = saved.save(&self.data_dir) {
            tracing::error!(%error, "cannot save the roster");
        }
    }
}
