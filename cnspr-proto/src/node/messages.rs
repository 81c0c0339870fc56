//! The node's messaging commands: direct messages, events, queries and answers, and what
//! the messaging layer needs from the daemon (its durable records and the wall clock).

use super::Node;
use crate::identity::DeviceId;
use crate::messaging::{MessagingError, MessagingRecord, Tag};
use crate::time::Timestamp;

impl Node {
    /// Takes back the messaging records a previous run left (at start, before any input).
    pub(super) fn restore_messaging(&mut self, records: impl IntoIterator<Item = MessagingRecord>) {
        self.messaging.restore(records);
    }

    /// Mixes fresh secret bytes (from the operating system) into the randomness the
    /// node's ephemeral keys come from, so that they do not all follow from one seed.
    pub fn reseed(&mut self, fresh: &[u8; 32]) {
        self.endpoint.reseed(fresh);
        self.rng.reseed(fresh);
    }

    /// Tells the node the Unix time (expiry of messages survives restarts in that clock).
    pub fn set_wall_clock(&mut self, now: Timestamp, unix_secs: u64) {
        self.messaging.set_wall_clock(now, unix_secs);
        // Retired mesh secrets are answered for a while by that clock.
        self.apply_mesh_secrets(now);
    }

    /// Sends a direct message; returns its number in the sequence to `to`.
    pub fn send_message(
        &mut self,
        now: Timestamp,
        to: DeviceId,
        tag: Tag,
        payload: Vec<u8>,
    ) -> Result<u64, MessagingError> {
        let result = self.messaging.send(now, to, tag, payload);
        self.route_between_layers(now);
        result
    }

    /// Publishes an event to every device, this one included; returns its number.
    pub fn publish_event(
        &mut self,
        now: Timestamp,
        tag: Tag,
        payload: Vec<u8>,
    ) -> Result<u64, MessagingError> {
        let result = self.messaging.publish(now, tag, payload);
        self.route_between_layers(now);
        result
    }

    /// Asks the handlers of `targets` (every peer if `None`); returns the query's number
    /// and the targets not reachable now. A target that restarts or becomes unreachable
    /// before its first answer is reported ([`super::Event::QueryFailed`]) until
    /// [`Node::query_done`].
    pub fn query(
        &mut self,
        now: Timestamp,
        targets: Option<Vec<DeviceId>>,
        tag: Tag,
        payload: Vec<u8>,
    ) -> Result<(u64, Vec<DeviceId>), MessagingError> {
        let result = self.messaging.query(now, targets, tag, payload).map(|sent| {
            self.queries.asked(sent.id, &sent.asked);
            (sent.id, sent.unreachable)
        });
        self.route_between_layers(now);
        result
    }

    /// How far direct message `seq` to `peer` is on its way: bytes acknowledged, of its
    /// bytes on the wire (`None` while it waits its turn, and once delivered).
    pub fn delivery_progress(&self, peer: &DeviceId, seq: u64) -> Option<(u64, u64)> {
        self.messaging.delivery_progress(peer, seq)
    }

    /// Query `id` collects no more answers (its asker stopped waiting).
    pub fn query_done(&mut self, id: u64) {
        self.queries.done(id);
    }

    /// Answers query `id` from `to`.
    pub fn answer(
        &mut self,
        now: Timestamp,
        to: DeviceId,
        id: u64,
        payload: Vec<u8>,
    ) -> Result<(), MessagingError> {
        let result = self.messaging.answer(now, to, id, payload);
        self.route_between_layers(now);
        result
    }

    /// Direct messages waiting for delivery.
    pub fn outbox_len(&self) -> usize {
        self.messaging.outbox_len()
    }
}

impl Node {
    /// Which handlers take what, from now on (the daemon's handler directory).
    pub fn set_handler_tree(&mut self, tree: Box<dyn crate::runs::HandlerTree>) {
        self.handler_tree = tree;
    }

    /// Run `index` of job `job` ([`super::Event::RunStart`]) ended: exited, killed, or
    /// could not start. The next runs start.
    pub fn finish_run(&mut self, now: Timestamp, job: u64, index: u32) {
        self.runs.finish(job, index);
        self.route_between_layers(now);
    }

    /// Handler runs owed and not started, and started and not finished.
    pub fn queued_runs(&self) -> (usize, usize) {
        (self.runs.owed(), self.runs.running())
    }
}
