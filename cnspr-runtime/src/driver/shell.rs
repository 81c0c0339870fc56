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

use super::{Command, Notice, WriteReply};
use crate::disk::{Disk, DiskError};
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
    pub(super) disk: Arc<Disk>,
    pub(super) dispatcher: Dispatcher,
    /// The task's own command queue (handler answers come back through it).
    pub(super) commands: mpsc::Sender<Command>,
    pub(super) sends: BTreeMap<(DeviceId, u64), oneshot::Sender<bool>>,
    pub(super) queries: BTreeMap<u64, mpsc::Sender<super::QueryReply>>,
    pub(super) active_peers: usize,
    /// Peer events waiting for the peer's name.
    pub(super) unnamed: Vec<(&'static str, DeviceId, MemberState)>,
    /// Store writes to acknowledge once the database is synced.
    pub(super) durable_acks: Vec<(WriteReply, Result<u64, cnspr_proto::store::StoreError>)>,
    /// Datagrams of this round waiting for a busy socket (the writes they follow are
    /// durable already).
    pub(super) outgoing: Vec<Transmit>,
}

impl Host for Shell {
    type Error = DiskError;

    /// One atomic batch, then one sync; then `watch` hears of the store keys written.
    fn persist(&mut self, writes: Vec<Write>) -> Result<(), DiskError> {
        let changed = self.disk.apply_all(&writes)?;
        self.disk.sync()?;
        for (key, cursor) in changed {
            let _ = self.notices.send(Notice::StoreChanged { key, cursor });
        }
        Ok(())
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
