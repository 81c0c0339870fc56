//! Messages, events and queries between the devices of the mesh.
//!
//! - **Direct messages** go to one device, in order: each pair of devices numbers its
//!   messages, one is in flight at a time, and the receiver hands each number to its
//!   handlers once. A message for a device that is not reachable waits in a durable outbox
//!   until it is, for up to `message_ttl`.
//! - **Events** go to every device of the roster, this one included: pushed at once to
//!   every reachable device and kept by every device that has them until they expire, so a
//!   device that was away gets them from whichever device it meets first (a summary of
//!   what it handled is exchanged whenever a device becomes reachable). `(origin, number)`
//!   names an event everywhere; what was handled is durable, so nothing runs twice.
//! - **Queries** go to reachable devices and come back as answers; devices that are not
//!   reachable are reported at once.
//!
//! **Spreading** events (and the store's writes, which the node sends the same way): a
//! personal mesh pushes them to every reachable device at once. Beyond
//! [`MessagingConfig::direct_fanout_max`] reachable peers, pushing to all would cost each
//! device a session with every other one, so broadcasts go to the ring neighbours
//! membership keeps sessions with, and each device hands on what was new to it to its
//! own neighbours: every device gets each event from a bounded number of neighbours,
//! whatever the mesh size.
//!
//! Every unit travels through [`transfer`]: chunks, acknowledgements, retransmission and
//! pacing. A receiver acknowledges a unit's last chunk only after handling it, and the
//! node hands out this layer's durable [`Write`]s before any datagram, so an acknowledged
//! unit is never lost and a restarted receiver never handles it again.
//!
//! **Back-pressure**: a message or event from a peer is accepted only if the handler run
//! queue takes it ([`Intake`]). A refused direct message is not acknowledged: its sender
//! keeps it in the outbox and retransmits. A refused event is acknowledged as a transfer
//! but not handled; its origin's events (and direct messages) are refused until the queue
//! has room again, then this device asks the peers that offered them for what it lacks
//! of that origin, from the events they keep, in order, until it has them
//! ([`refusals`]). Store messages are never refused.
//!
//! **Origins are signed**: an event carries its origin's signature
//! ([`event_signature`]), checked by every device before it keeps, runs or hands on
//! anything of it; a forged one is dropped (and counted), and so is every event of a
//! device removed from the roster, whenever it was made. A relay can hand events on, never
//! make or change one.

pub mod event_signature;
mod handled;
mod kept;
mod order;
mod record;
mod refusals;
mod tag;
mod transfer;
mod wire;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

pub use handled::Handled;
pub use record::MessagingRecord;
pub use tag::{Tag, TagError, MAX_TAG_BYTES};
pub use transfer::TransferConfig;
pub use wire::{Packet, Unit, WireError, CHUNK_BYTES, MAX_PAYLOAD_BYTES};

use crate::durable::Write;
use crate::identity::{DeviceId, DeviceKey};
use crate::runs::Intake;
use crate::time::Timestamp;
use crate::timers::Timers;
use kept::Kept;
use order::EventOrder;
use refusals::{Ask, Refusals};
use transfer::Transfers;

/// Settings of the messaging layer.
#[derive(Debug, Clone)]
pub struct MessagingConfig {
    /// How long undelivered messages and kept events live.
    pub message_ttl: Duration,
    /// Bytes of event payloads kept for devices that were away; the oldest go first.
    pub event_log_bytes_max: usize,
    /// Events sent to a device in answer to one summary.
    pub catch_up_batch: usize,
    /// Most reachable peers a broadcast is pushed to directly; beyond it, broadcasts
    /// travel through the ring neighbours.
    pub direct_fanout_max: usize,
    /// Chunks, acknowledgements and retransmission.
    pub transfer: TransferConfig,
}

impl Default for MessagingConfig {
    fn default() -> Self {
        Self {
            message_ttl: Duration::from_secs(7 * 24 * 3600),
            event_log_bytes_max: 64 << 20,
            catch_up_batch: 256,
            direct_fanout_max: 16,
            transfer: TransferConfig::default(),
        }
    }
}

/// What the messaging layer reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessagingEvent {
    /// A direct message for this device's handlers.
    Message {
        /// The sender.
        from: DeviceId,
        /// What kind.
        tag: Tag,
        /// The message.
        payload: Vec<u8>,
    },
    /// An event for this device's handlers (from this device too).
    Event {
        /// Who published it.
        origin: DeviceId,
        /// Its number.
        seq: u64,
        /// What kind.
        tag: Tag,
        /// The event.
        payload: Vec<u8>,
    },
    /// A query for this device's handlers; answer with [`Messaging::answer`].
    Query {
        /// Who asks.
        from: DeviceId,
        /// Matches the answer.
        id: u64,
        /// What kind.
        tag: Tag,
        /// The question.
        payload: Vec<u8>,
    },
    /// An answer to one of our queries.
    Answer {
        /// Who answers.
        from: DeviceId,
        /// The query.
        id: u64,
        /// The answer.
        payload: Vec<u8>,
    },
    /// A direct message of ours reached the receiver and was handed to its handlers.
    Delivered {
        /// The receiver.
        to: DeviceId,
        /// The message's number.
        seq: u64,
    },
    /// A direct message of ours expired undelivered.
    Expired {
        /// The receiver it never reached.
        to: DeviceId,
        /// The message's number.
        seq: u64,
    },
}

/// A query on its way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuerySent {
    /// Its number (answers carry it).
    pub id: u64,
    /// The targets it went to.
    pub asked: Vec<DeviceId>,
    /// The targets not reachable now: not asked.
    pub unreachable: Vec<DeviceId>,
}

/// Why a message was refused. Nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessagingError {
    /// The receiver is not a device of the mesh (or is this one).
    #[error("not a peer of the mesh")]
    NotAPeer,
    /// The payload is over the limit.
    #[error("payload of {len} bytes is over the limit of {max}")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit for its kind.
        max: usize,
    },
}

/// The keys of `device`'s entries in a map keyed by `(device, number)`.
fn keys_of<V>(map: &BTreeMap<(DeviceId, u64), V>, device: &DeviceId) -> Vec<(DeviceId, u64)> {
    map.range((*device, 0)..=(*device, u64::MAX))
        .map(|(k, _)| *k)
        .collect()
}

/// Refuses a payload over [`MAX_PAYLOAD_BYTES`].
fn check_size(len: usize) -> Result<(), MessagingError> {
    check_size_within(len, MAX_PAYLOAD_BYTES)
}

fn check_size_within(len: usize, max: usize) -> Result<(), MessagingError> {
    if len > max {
        return Err(MessagingError::TooLarge { len, max });
    }
    Ok(())
}

/// What an outbound transfer carries, to act when it completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    Direct(u64),
    Store,
    Other,
}

/// One device's messaging state.
pub struct Messaging {
    own: DeviceId,
    /// Signs this device's events.
    key: DeviceKey,
    config: MessagingConfig,
    transfers: Transfers,
    /// `(core time, Unix seconds)` at one moment: converts between the two.
    wall: (Timestamp, u64),
    members: BTreeSet<DeviceId>,
    /// Devices removed from the roster: their events are dropped, not waited for (at most
    /// the roster's size).
    removed: BTreeSet<DeviceId>,
    /// Events dropped because their origin's signature did not verify, since start.
    forged: u64,
    live: BTreeSet<DeviceId>,
    /// This device's ring neighbours (from membership): where broadcasts go in a mesh
    /// larger than the direct fanout.
    neighbours: BTreeSet<DeviceId>,
    purposes: BTreeMap<(DeviceId, u64), Purpose>,
    outbox: BTreeMap<(DeviceId, u64), Kept>,
    /// When each outbox entry expires, in Unix seconds.
    outbox_expiries: Timers<(DeviceId, u64), u64>,
    direct_sent: BTreeMap<DeviceId, u64>,
    direct_in_flight: BTreeMap<DeviceId, u64>,
    direct_handled: BTreeMap<DeviceId, u64>,
    event_published: u64,
    kept: BTreeMap<(DeviceId, u64), Kept>,
    /// When each kept event expires, in Unix seconds (the oldest also goes first when the
    /// log is full).
    kept_expiries: Timers<(DeviceId, u64), u64>,
    kept_bytes: usize,
    events_handled: BTreeMap<DeviceId, Handled>,
    /// Events that arrived ahead of a gap in their origin's sequence.
    order: EventOrder,
    /// Origins whose events are refused until the run queue has room, and fetching them
    /// back then.
    refusals: Refusals,
    next_query: u64,
    outgoing: VecDeque<(DeviceId, Vec<u8>)>,
    events: VecDeque<MessagingEvent>,
    /// Store messages that arrived, for the node's store (see [`crate::store::sync`]).
    store_messages: VecDeque<(DeviceId, Vec<u8>)>,
    writes: VecDeque<Write>,
}

impl Messaging {
    /// The messaging layer of the device of `key`, restored from `records` (empty at first
    /// start). `first_transfer` must differ between starts (the node draws it at random).
    pub fn new(
        key: DeviceKey,
        config: MessagingConfig,
        records: impl IntoIterator<Item = MessagingRecord>,
        first_transfer: u64,
        now: Timestamp,
    ) -> Self {
        let mut messaging = Self {
            own: key.device_id(),
            key,
            transfers: Transfers::new(config.transfer.clone(), first_transfer),
            config,
            wall: (now, 0),
            members: BTreeSet::new(),
            removed: BTreeSet::new(),
            forged: 0,
            live: BTreeSet::new(),
            neighbours: BTreeSet::new(),
            purposes: BTreeMap::new(),
            outbox: BTreeMap::new(),
            outbox_expiries: Timers::new(),
            direct_sent: BTreeMap::new(),
            direct_in_flight: BTreeMap::new(),
            direct_handled: BTreeMap::new(),
            event_published: 0,
            kept: BTreeMap::new(),
            kept_expiries: Timers::new(),
            kept_bytes: 0,
            events_handled: BTreeMap::new(),
            order: EventOrder::default(),
            refusals: Refusals::default(),
            next_query: 0,
            outgoing: VecDeque::new(),
            events: VecDeque::new(),
            store_messages: VecDeque::new(),
            writes: VecDeque::new(),
        };
        messaging.restore(records);
        messaging
    }

    /// Takes back the records a previous run left (at start, before any input).
    pub fn restore(&mut self, records: impl IntoIterator<Item = MessagingRecord>) {
        for record in records {
            self.restore_one(record);
        }
    }

    fn restore_one(&mut self, record: MessagingRecord) {
        match record {
            MessagingRecord::Outbox {
                to,
                seq,
                tag,
                payload,
                expires_unix_secs,
            } => self.insert_outbox((to, seq), Kept::new(tag, payload, expires_unix_secs)),
            MessagingRecord::DirectSent { to, seq } => {
                self.direct_sent.insert(to, seq);
            }
            MessagingRecord::DirectHandled { from, seq } => {
                self.direct_handled.insert(from, seq);
            }
            MessagingRecord::Event {
                origin,
                seq,
                tag,
                payload,
                expires_unix_secs,
                signature,
            } => self.insert_kept(
                (origin, seq),
                Kept::signed(tag, payload, expires_unix_secs, signature),
            ),
            MessagingRecord::EventPublished { seq } => self.event_published = seq,
            MessagingRecord::EventsHandled { origin, handled } => {
                self.events_handled.insert(origin, handled);
            }
        }
    }

    // ----- getters -----

    /// Direct messages waiting for delivery.
    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    /// Events kept for devices that were away.
    pub fn kept_events(&self) -> usize {
        self.kept.len()
    }

    /// Messages and events from peers refused for lack of room in the run queue (each
    /// offer counts), since start.
    pub fn refused(&self) -> u64 {
        self.refusals.count()
    }

    /// Events dropped because their origin's signature did not verify, since start.
    pub fn forged(&self) -> u64 {
        self.forged
    }

    /// Whether a direct message to `to` numbered `seq` still waits.
    pub fn is_pending(&self, to: &DeviceId, seq: u64) -> bool {
        self.outbox.contains_key(&(*to, seq))
    }

    // ----- commands -----

    /// Tells the layer what time it is in Unix seconds (expiry survives restarts in that
    /// clock). The daemon calls it at start and now and then.
    pub fn set_wall_clock(&mut self, now: Timestamp, unix_secs: u64) {
        self.wall = (now, unix_secs);
    }

    fn unix_at(&self, at: Timestamp) -> u64 {
        self.unix_micros_at(at) / 1_000_000
    }

    /// The Unix time in microseconds at core time `at`, by the last wall clock reading.
    pub fn unix_micros_at(&self, at: Timestamp) -> u64 {
        let (base, unix) = self.wall;
        let delta = at.as_micros() as i128 - base.as_micros() as i128;
        (unix as i128 * 1_000_000 + delta).max(0) as u64
    }

    fn time_at_unix(&self, unix_secs: u64) -> Timestamp {
        let (base, unix) = self.wall;
        let delta_secs = unix_secs.saturating_sub(unix);
        base + Duration::from_secs(delta_secs)
    }

    /// A device joined the roster.
    pub fn add_member(&mut self, device: DeviceId) {
        if device == self.own || !self.members.insert(device) {
            return;
        }
        // Its events may have come before its roster entry and been dropped: the peers
        // that keep them send them again.
        let live: Vec<DeviceId> = self.live.iter().copied().collect();
        for peer in live {
            self.send_summary_of(peer, false, vec![device]);
        }
    }

    /// A device left the roster for good: its messages, events and transfers are dropped,
    /// and so is any event of it that comes later.
    pub fn remove_member(&mut self, device: &DeviceId) {
        self.members.remove(device);
        self.removed.insert(*device);
        for key in keys_of(&self.kept, device) {
            self.drop_kept(key);
        }
        self.live.remove(device);
        self.transfers.forget_peer(device);
        self.order.forget(device);
        self.refusals.forget(device);
        self.direct_in_flight.remove(device);
        for key in keys_of(&self.outbox, device) {
            self.remove_outbox(&key);
            self.writes
                .push_back(Write::Delete(record::outbox_key(&key.0, key.1)));
        }
    }

    /// Whether `device` can be sent to now (its state is active or suspect). Returns the
    /// peers broadcasts now go to that they did not before (the device itself when it
    /// just became reachable in a small mesh): each is sent a summary of the events
    /// handled here, and the node asks each for the store writes this device lacks.
    pub fn set_live(&mut self, now: Timestamp, device: DeviceId, live: bool) -> Vec<DeviceId> {
        if !self.members.contains(&device) {
            return Vec::new();
        }
        let before = self.spread_peers();
        let mut joined = Vec::new();
        if live && self.live.insert(device) {
            joined = self.spread_joined(&before);
            self.start_next_direct(device);
        } else if !live && self.live.remove(&device) {
            for id in self.transfers.cancel_peer(&device) {
                self.purposes.remove(&(device, id));
            }
            self.direct_in_flight.remove(&device);
            joined = self.spread_joined(&before);
        }
        self.transfers.fill(now);
        joined
    }

    /// Takes this device's ring neighbours (membership's); returns the peers broadcasts
    /// now go to that they did not before, as [`Messaging::set_live`] does.
    pub fn set_neighbours(&mut self, now: Timestamp, neighbours: BTreeSet<DeviceId>) -> Vec<DeviceId> {
        if neighbours == self.neighbours {
            return Vec::new();
        }
        let before = self.spread_peers();
        self.neighbours = neighbours;
        let joined = self.spread_joined(&before);
        self.transfers.fill(now);
        joined
    }

    /// The peers in the spread now that were not in `before`: each gets a summary.
    fn spread_joined(&mut self, before: &[DeviceId]) -> Vec<DeviceId> {
        let joined: Vec<DeviceId> = self
            .spread_peers()
            .into_iter()
            .filter(|peer| !before.contains(peer))
            .collect();
        for peer in &joined {
            self.send_summary(*peer, true);
        }
        joined
    }

    /// Whether broadcasts travel through the ring (more reachable peers than the direct
    /// fanout) rather than to every reachable peer.
    pub fn spreads_through_ring(&self) -> bool {
        self.live.len() > self.config.direct_fanout_max
    }

    /// Whether broadcasts go to `peer` now.
    pub fn spreads_to(&self, peer: &DeviceId) -> bool {
        self.live.contains(peer) && (!self.spreads_through_ring() || self.neighbours.contains(peer))
    }

    /// The peers broadcasts go to now: every reachable one in a small mesh, the reachable
    /// ring neighbours in a larger one.
    pub fn spread_peers(&self) -> Vec<DeviceId> {
        if self.spreads_through_ring() {
            self.neighbours.intersection(&self.live).copied().collect()
        } else {
            self.live.iter().copied().collect()
        }
    }

    /// Sends a direct message to `to`; it is delivered when `to` is reachable, in order,
    /// until it expires. Returns its number ([`MessagingEvent::Delivered`] names it).
    pub fn send(
        &mut self,
        now: Timestamp,
        to: DeviceId,
        tag: Tag,
        payload: Vec<u8>,
    ) -> Result<u64, MessagingError> {
        if !self.members.contains(&to) {
            return Err(MessagingError::NotAPeer);
        }
        check_size(payload.len())?;
        let seq = self.direct_sent.get(&to).copied().unwrap_or(0) + 1;
        self.direct_sent.insert(to, seq);
        let expires_unix_secs = self.unix_at(now + self.config.message_ttl);
        self.writes
            .push_back(Write::put(MessagingRecord::DirectSent { to, seq }));
        self.writes.push_back(Write::put(MessagingRecord::Outbox {
            to,
            seq,
            tag: tag.clone(),
            payload: payload.clone(),
            expires_unix_secs,
        }));
        self.insert_outbox((to, seq), Kept::new(tag, payload, expires_unix_secs));
        self.start_next_direct(to);
        self.transfers.fill(now);
        Ok(seq)
    }

    /// Publishes an event to every device, this one included (its handlers run through
    /// [`MessagingEvent::Event`] like everyone's). Returns its number.
    pub fn publish(&mut self, now: Timestamp, tag: Tag, payload: Vec<u8>) -> Result<u64, MessagingError> {
        check_size(payload.len())?;
        self.event_published += 1;
        let seq = self.event_published;
        self.writes
            .push_back(Write::put(MessagingRecord::EventPublished { seq }));
        let expires_unix_secs = self.unix_at(now + self.config.message_ttl);
        let signature = event_signature::sign(&self.key, seq, &tag, &payload);
        let own = Kept::signed(tag.clone(), payload.clone(), expires_unix_secs, signature);
        self.accept_event(self.own, seq, own);
        let ttl_secs = self.config.message_ttl.as_secs();
        let unit = Unit::Event {
            origin: self.own,
            seq,
            tag,
            payload,
            ttl_secs,
            signature,
        };
        for peer in self.spread_peers() {
            self.start(peer, &unit, Purpose::Other);
        }
        self.transfers.fill(now);
        Ok(seq)
    }

    /// Asks the handlers of `targets` (every member if `None`); returns the query's number,
    /// the targets it was sent to and those that are not reachable now.
    pub fn query(
        &mut self,
        now: Timestamp,
        targets: Option<Vec<DeviceId>>,
        tag: Tag,
        payload: Vec<u8>,
    ) -> Result<QuerySent, MessagingError> {
        check_size(payload.len())?;
        let targets = targets.unwrap_or_else(|| self.members.iter().copied().collect());
        if targets.iter().any(|t| !self.members.contains(t)) {
            return Err(MessagingError::NotAPeer);
        }
        self.next_query += 1;
        let id = self.next_query;
        let unit = Unit::Query { id, tag, payload };
        let (asked, unreachable): (Vec<DeviceId>, Vec<DeviceId>) =
            targets.into_iter().partition(|target| self.live.contains(target));
        for target in &asked {
            self.start(*target, &unit, Purpose::Other);
        }
        self.transfers.fill(now);
        Ok(QuerySent {
            id,
            asked,
            unreachable,
        })
    }

    /// Answers query `id` of `to`.
    pub fn answer(
        &mut self,
        now: Timestamp,
        to: DeviceId,
        id: u64,
        payload: Vec<u8>,
    ) -> Result<(), MessagingError> {
        check_size(payload.len())?;
        self.send_unit(now, to, Unit::Answer { id, payload }, Purpose::Other)
    }

    /// Sends a unit that needs no acting on when delivered (answers, store messages).
    fn send_unit(
        &mut self,
        now: Timestamp,
        to: DeviceId,
        unit: Unit,
        purpose: Purpose,
    ) -> Result<(), MessagingError> {
        if !self.members.contains(&to) {
            return Err(MessagingError::NotAPeer);
        }
        self.start(to, &unit, purpose);
        self.transfers.fill(now);
        Ok(())
    }

    /// Every event of `origin` up to this number was handled here.
    pub fn events_handled_through(&self, origin: &DeviceId) -> u64 {
        self.events_handled.get(origin).map_or(0, Handled::through)
    }

    /// Sends `unit` to `to` as given ([`crate::node::Node::send_unit`]).
    pub fn send_as_is(&mut self, now: Timestamp, to: DeviceId, unit: Unit) -> Result<(), MessagingError> {
        self.send_unit(now, to, unit, Purpose::Other)
    }

    /// Sends a store message to `to` reliably (no ordering among store messages), up to
    /// [`crate::store::sync::MAX_STORE_MESSAGE_BYTES`].
    pub fn send_store(&mut self, now: Timestamp, to: DeviceId, bytes: Vec<u8>) -> Result<(), MessagingError> {
        check_size_within(bytes.len(), crate::store::sync::MAX_STORE_MESSAGE_BYTES)?;
        self.send_unit(now, to, Unit::Store(bytes), Purpose::Store)
    }

    /// How far direct message `seq` to `peer` is on its way: bytes of its unit
    /// acknowledged, of the unit's bytes. `None` while it waits its turn (or the peer)
    /// and once it is delivered.
    pub fn delivery_progress(&self, peer: &DeviceId, seq: u64) -> Option<(u64, u64)> {
        let (&(_, id), _) = self
            .purposes
            .range((*peer, 0)..=(*peer, u64::MAX))
            .find(|(_, purpose)| **purpose == Purpose::Direct(seq))?;
        self.transfers.progress(peer, id)
    }

    /// Store messages to `peer` not yet fully acknowledged.
    pub fn store_in_flight(&self, peer: &DeviceId) -> usize {
        self.purposes
            .range((*peer, 0)..=(*peer, u64::MAX))
            .filter(|(_, purpose)| matches!(purpose, Purpose::Store))
            .count()
    }

    /// Whether `peer` can be sent to now.
    pub fn is_live(&self, peer: &DeviceId) -> bool {
        self.live.contains(peer)
    }

    /// The peers that can be sent to now.
    pub fn live_peers(&self) -> impl Iterator<Item = &DeviceId> {
        self.live.iter()
    }

    // ----- inputs -----

    /// Takes a messaging packet that arrived, authenticated, from `from`; messages and
    /// events in it are accepted as `intake` allows.
    pub fn handle_packet(
        &mut self,
        now: Timestamp,
        from: DeviceId,
        bytes: &[u8],
        intake: &mut impl Intake,
    ) -> Result<(), WireError> {
        if !self.members.contains(&from) {
            return Ok(());
        }
        let packet = Packet::decode(bytes)?;
        let arrival = self.transfers.handle_packet(now, from, packet);
        self.collect_done();
        let mut result = Ok(());
        if let Some(arrival) = arrival {
            match Unit::decode(&arrival.bytes) {
                Ok(unit) => {
                    if self.on_unit(now, from, unit, intake) {
                        self.transfers.accept(now, from, &arrival);
                    } else {
                        self.transfers.refuse(now, from, arrival);
                    }
                }
                Err(error) => {
                    // A unit that does not parse is dropped and acknowledged, so the sender
                    // does not repeat what could never be understood.
                    self.transfers.accept(now, from, &arrival);
                    result = Err(error);
                }
            }
        }
        self.transfers.fill(now);
        result
    }

    /// Offers again what was refused for lack of room, for the origins that have room
    /// now: the peers that offered their events get a summary of what this device has
    /// handled and send what it lacks. (Refused direct messages come back by themselves:
    /// their senders retransmit.) Returns whether it asked anyone.
    pub fn offer_again(&mut self, now: Timestamp, intake: &impl Intake) -> bool {
        let handled = &self.events_handled;
        let through = |origin: &DeviceId| handled.get(origin).map_or(0, Handled::through);
        let asks = self
            .refusals
            .ready(now, |origin| intake.has_room(origin), through);
        if asks.is_empty() {
            return false;
        }
        self.ask_for(asks);
        self.transfers.fill(now);
        true
    }

    /// Asks for the events of each origin this device lacks: the peers that offered
    /// them if they are reachable, the peers broadcasts go to otherwise.
    fn ask_for(&mut self, asks: Vec<Ask>) {
        let mut per_peer: BTreeMap<DeviceId, Vec<DeviceId>> = BTreeMap::new();
        for (origin, offered_by) in asks {
            let mut peers: Vec<DeviceId> = offered_by.into_iter().filter(|p| self.live.contains(p)).collect();
            if peers.is_empty() {
                peers = self.spread_peers();
            }
            for peer in peers {
                per_peer.entry(peer).or_default().push(origin);
            }
        }
        for (peer, origins) in per_peer {
            self.send_summary_of(peer, false, origins);
        }
    }

    /// Retransmits, and expires messages and kept events; events whose wait for a gap
    /// ended are accepted as `intake` allows.
    pub fn handle_timeout(&mut self, now: Timestamp, intake: &mut impl Intake) {
        self.transfers.handle_timeout(now);
        self.collect_done();
        let unix = self.unix_at(now);
        let mut expired = self.outbox_expiries.due(unix);
        expired.sort_unstable();
        for (to, seq) in expired {
            self.remove_outbox(&(to, seq));
            self.writes.push_back(Write::Delete(record::outbox_key(&to, seq)));
            self.events.push_back(MessagingEvent::Expired { to, seq });
        }
        let mut stale = self.kept_expiries.due(unix);
        stale.sort_unstable();
        for key in stale {
            self.drop_kept(key);
        }
        for (origin, seq, event) in self.order.release_due(now) {
            self.admit_event(origin, seq, event, None, intake);
        }
        let handled = &self.events_handled;
        let asks = self
            .refusals
            .due(now, |origin| handled.get(origin).map_or(0, Handled::through));
        if !asks.is_empty() {
            self.ask_for(asks);
            self.transfers.fill(now);
        }
    }

    // ----- outputs -----

    /// The next messaging packet to seal and send.
    pub fn poll_transmit(&mut self) -> Option<(DeviceId, Vec<u8>)> {
        if let Some((to, packet)) = self.transfers.poll_transmit() {
            return Some((to, packet.encode()));
        }
        self.outgoing.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<MessagingEvent> {
        self.events.pop_front()
    }

    /// The next store message that arrived, with its sender.
    pub fn poll_store_message(&mut self) -> Option<(DeviceId, Vec<u8>)> {
        self.store_messages.pop_front()
    }

    /// The next durable write; the daemon must apply it before sending anything that
    /// comes out after it.
    pub fn poll_write(&mut self) -> Option<Write> {
        self.writes.pop_front()
    }

    /// When [`Messaging::handle_timeout`] next has work.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let expiries = [self.outbox_expiries.next(), self.kept_expiries.next()]
            .into_iter()
            .flatten()
            .min()
            .map(|unix| self.time_at_unix(unix));
        [
            self.transfers.poll_timeout(),
            expiries,
            self.order.poll_timeout(),
            self.refusals.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ----- helpers -----

    fn start(&mut self, to: DeviceId, unit: &Unit, purpose: Purpose) {
        // Units are built from checked parts; one that cannot be encoded is not sent.
        if let Ok(bytes) = unit.encode() {
            let id = self.transfers.start(to, bytes);
            self.purposes.insert((to, id), purpose);
        }
    }

    fn collect_done(&mut self) {
        while let Some((peer, id)) = self.transfers.poll_event() {
            if let Some(Purpose::Direct(seq)) = self.purposes.remove(&(peer, id)) {
                self.direct_in_flight.remove(&peer);
                if self.remove_outbox(&(peer, seq)).is_some() {
                    self.writes
                        .push_back(Write::Delete(record::outbox_key(&peer, seq)));
                    self.events.push_back(MessagingEvent::Delivered { to: peer, seq });
                }
                self.start_next_direct(peer);
            }
        }
    }

    /// Starts the next direct message to `to`, if it is reachable and none is in flight.
    fn start_next_direct(&mut self, to: DeviceId) {
        if !self.live.contains(&to) || self.direct_in_flight.contains_key(&to) {
            return;
        }
        let unix = self.wall.1;
        let Some(((_, seq), pending)) = self.outbox.range((to, 0)..=(to, u64::MAX)).next() else {
            return;
        };
        let unit = Unit::Direct {
            seq: *seq,
            tag: pending.tag.clone(),
            payload: pending.payload.clone(),
            ttl_secs: pending.expires_unix_secs.saturating_sub(unix),
        };
        let seq = *seq;
        self.direct_in_flight.insert(to, seq);
        self.start(to, &unit, Purpose::Direct(seq));
    }

    fn send_summary(&mut self, to: DeviceId, reply: bool) {
        self.send_summary_of(to, reply, Vec::new());
    }

    /// Sends `to` what this device handled, asking for the events of `origins` only
    /// (every origin if empty).
    fn send_summary_of(&mut self, to: DeviceId, reply: bool, origins: Vec<DeviceId>) {
        let handled = self
            .events_handled
            .iter()
            .map(|(origin, h)| (*origin, h.through()))
            .collect();
        let summary = Unit::Summary {
            handled,
            reply,
            origins,
        };
        self.start(to, &summary, Purpose::Other);
    }

    /// Acts on a unit from `from`; returns whether it was accepted (a direct message the
    /// run queue has no room for is not, and stays unacknowledged).
    fn on_unit(&mut self, now: Timestamp, from: DeviceId, unit: Unit, intake: &mut impl Intake) -> bool {
        match unit {
            Unit::Direct {
                seq, tag, payload, ..
            } => {
                let handled = self.direct_handled.get(&from).copied().unwrap_or(0);
                if seq <= handled {
                    return true;
                }
                // While its events are refused, so are its messages: both wait until the
                // queue is half empty, and neither starves the other.
                if self.refusals.is_refusing(&from) || !intake.admit(&from) {
                    self.refusals.count_refused_message();
                    return false;
                }
                // A gap (seq > handled + 1) only follows lost state on one side: take
                // what comes rather than wait for what never will.
                self.direct_handled.insert(from, seq);
                self.writes
                    .push_back(Write::put(MessagingRecord::DirectHandled { from, seq }));
                self.events
                    .push_back(MessagingEvent::Message { from, tag, payload });
            }
            Unit::Event {
                origin,
                seq,
                tag,
                payload,
                ttl_secs,
                signature,
            } => {
                if self.removed.contains(&origin) {
                    return true;
                }
                if origin != self.own && !self.members.contains(&origin) {
                    // Of a device this one has not heard of yet (its roster entry is on its
                    // way): dropped, and asked for again once the roster has it
                    // (`add_member`). Not left unacknowledged: a joiner offered many such
                    // events would keep its window full of them, and never get the roster.
                    return true;
                }
                let handled = self.events_handled.get(&origin).is_some_and(|h| h.contains(seq));
                if handled || self.order.is_held(&origin, seq) {
                    // A repeat, through another neighbour or after a lost acknowledgement:
                    // nothing to check or do.
                    return true;
                }
                if !event_signature::verifies(&origin, seq, &tag, &payload, &signature) {
                    // Acknowledged and dropped: the sender's repeats could never verify.
                    self.forged += 1;
                    return true;
                }
                // No event is kept longer here than this device's own would be.
                let ttl_secs = ttl_secs.min(self.config.message_ttl.as_secs());
                let expires = self.unix_at(now).saturating_add(ttl_secs);
                let relay = self.spreads_through_ring().then(|| Unit::Event {
                    origin,
                    seq,
                    tag: tag.clone(),
                    payload: payload.clone(),
                    ttl_secs,
                    signature,
                });
                let event = Kept::signed(tag, payload, expires, signature);
                if self.receive_event(now, from, origin, seq, event, intake) {
                    // New here, in a mesh spread through the ring: on to the neighbours
                    // that did not bring it.
                    if let Some(unit) = relay {
                        for peer in self.spread_peers() {
                            if peer != from && peer != origin {
                                self.start(peer, &unit, Purpose::Other);
                            }
                        }
                    }
                }
            }
            Unit::Summary {
                handled,
                reply,
                origins,
            } => self.on_summary(from, &handled, reply, &origins),
            Unit::Query { id, tag, payload } => {
                self.events.push_back(MessagingEvent::Query {
                    from,
                    id,
                    tag,
                    payload,
                });
            }
            Unit::Store(bytes) => self.store_messages.push_back((from, bytes)),
            Unit::Answer { id, payload } => {
                self.events
                    .push_back(MessagingEvent::Answer { from, id, payload });
            }
        }
        true
    }

    /// Takes an event from peer `from`: handed on in its origin's order (at once, or once
    /// the events before it are in) as `intake` allows; returns whether it was new here
    /// and taken (accepted, or waiting for a gap).
    fn receive_event(
        &mut self,
        now: Timestamp,
        from: DeviceId,
        origin: DeviceId,
        seq: u64,
        event: Kept,
        intake: &mut impl Intake,
    ) -> bool {
        let through = self.events_handled.get(&origin).map_or(0, Handled::through);
        let handled = self.events_handled.get(&origin).is_some_and(|h| h.contains(seq));
        if handled || self.order.is_held(&origin, seq) {
            return false;
        }
        if self.refusals.is_refusing(&origin) {
            self.refusals.refuse(origin, seq, Some(from));
            return false;
        }
        let mut taken = true;
        for (ready, event) in self.order.arrive(now, origin, seq, through, event) {
            let admitted = self.admit_event(origin, ready, event, Some(from), intake);
            taken &= admitted || ready != seq;
        }
        taken
    }

    /// Accepts an event of another origin if `intake` has room; otherwise refuses it and
    /// every later one of its origin until [`Messaging::offer_again`]. Returns whether it
    /// was accepted.
    fn admit_event(
        &mut self,
        origin: DeviceId,
        seq: u64,
        event: Kept,
        offered_by: Option<DeviceId>,
        intake: &mut impl Intake,
    ) -> bool {
        let refusing = self.refusals.is_refusing(&origin);
        let handled = self.events_handled.get(&origin).is_some_and(|h| h.contains(seq));
        if !handled && (refusing || !intake.admit(&origin)) {
            self.refusals.refuse(origin, seq, offered_by);
            // What waited for a gap goes too, and the order starts again from what was
            // handled: the events come back in order.
            self.order.forget(&origin);
            return false;
        }
        self.accept_event(origin, seq, event);
        true
    }

    /// Hands an event to the handlers unless it was handled, and keeps it for others;
    /// returns whether it was new here.
    fn accept_event(&mut self, origin: DeviceId, seq: u64, event: Kept) -> bool {
        let handled = self.events_handled.entry(origin).or_default();
        if !handled.insert(seq) {
            return false;
        }
        let handled = handled.clone();
        self.writes
            .push_back(Write::put(MessagingRecord::EventsHandled { origin, handled }));
        self.keep(origin, seq, &event);
        self.events.push_back(MessagingEvent::Event {
            origin,
            seq,
            tag: event.tag,
            payload: event.payload,
        });
        true
    }

    fn keep(&mut self, origin: DeviceId, seq: u64, event: &Kept) {
        let len = event.payload.len();
        // Only a signed event can be handed on (every event is; the check keeps it so).
        let Some(signature) = event.signature else {
            return;
        };
        if len > self.config.event_log_bytes_max {
            return;
        }
        while self.kept_bytes + len > self.config.event_log_bytes_max {
            match self.kept_expiries.first() {
                Some(key) => self.drop_kept(key),
                None => break,
            }
        }
        self.writes.push_back(Write::put(MessagingRecord::Event {
            origin,
            seq,
            tag: event.tag.clone(),
            payload: event.payload.clone(),
            expires_unix_secs: event.expires_unix_secs,
            signature,
        }));
        self.insert_kept((origin, seq), event.clone());
    }

    fn insert_kept(&mut self, key: (DeviceId, u64), kept: Kept) {
        self.kept_bytes += kept.payload.len();
        self.kept_expiries.set(key, Some(kept.expires_unix_secs));
        if let Some(replaced) = self.kept.insert(key, kept) {
            self.kept_bytes -= replaced.payload.len();
        }
    }

    fn insert_outbox(&mut self, key: (DeviceId, u64), pending: Kept) {
        self.outbox_expiries.set(key, Some(pending.expires_unix_secs));
        self.outbox.insert(key, pending);
    }

    fn remove_outbox(&mut self, key: &(DeviceId, u64)) -> Option<Kept> {
        self.outbox_expiries.clear(key);
        self.outbox.remove(key)
    }

    fn drop_kept(&mut self, key: (DeviceId, u64)) {
        self.kept_expiries.clear(&key);
        if let Some(event) = self.kept.remove(&key) {
            self.kept_bytes -= event.payload.len();
            self.writes
                .push_back(Write::Delete(record::event_key(&key.0, key.1)));
        }
    }

    /// Sends `to` the kept events its summary lacks (of `origins` only, if any are
    /// named); asks for ours if it has any we lack.
    fn on_summary(&mut self, to: DeviceId, theirs: &[(DeviceId, u64)], reply: bool, origins: &[DeviceId]) {
        let their_through = |origin: &DeviceId| {
            theirs
                .iter()
                .find(|(o, _)| o == origin)
                .map_or(0, |(_, through)| *through)
        };
        let unix = self.wall.1;
        let wanted: Box<dyn Iterator<Item = (&(DeviceId, u64), &Kept)>> = if origins.is_empty() {
            Box::new(self.kept.iter())
        } else {
            Box::new(origins.iter().flat_map(|origin| {
                let from = their_through(origin).saturating_add(1);
                self.kept.range((*origin, from)..=(*origin, u64::MAX))
            }))
        };
        let missing: Vec<Unit> = wanted
            .filter(|((origin, seq), _)| *origin != to && *seq > their_through(origin))
            .filter_map(|((origin, seq), event)| {
                Some(Unit::Event {
                    origin: *origin,
                    seq: *seq,
                    tag: event.tag.clone(),
                    payload: event.payload.clone(),
                    ttl_secs: event.expires_unix_secs.saturating_sub(unix),
                    signature: event.signature?,
                })
            })
            .take(self.config.catch_up_batch)
            .collect();
        for unit in missing {
            self.start(to, &unit, Purpose::Other);
        }
        let they_are_ahead = theirs
            .iter()
            .any(|(origin, through)| *through > self.events_handled.get(origin).map_or(0, Handled::through));
        if reply && they_are_ahead {
            self.send_summary(to, false);
        }
    }
}
