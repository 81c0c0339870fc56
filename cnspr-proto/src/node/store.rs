//! The node's replicated store: local writes (durable, then pushed to every reachable
//! device), catch-up when a device becomes reachable, the store messages of peers, and
//! collecting deletes once every device of the mesh has them.

use std::collections::{BTreeMap, BTreeSet};

use super::catch_up_turns::CatchUpTurns;
use super::{Event, Node};
use crate::durable::Write;
use crate::identity::DeviceId;
use crate::roster::{ADDRESS_PREFIX, ROSTER_PREFIX};
use crate::store::heads::SignedHead;
use crate::store::sync::{authors_of, Change, StoreMessage};
use crate::store::{key_record_key, least_of, StoreError, StoreRecord};
use crate::time::Timestamp;

/// How often a replica asks one peer (in turn) for what it lacks, and collects deletes
/// every device has (the default of [`super::NodeConfig::store_sync_interval`]).
pub const STORE_SYNC_INTERVAL: std::time::Duration = std::time::Duration::from_secs(300);

/// Most catch-up answers tracked at once per node; streams that never complete (the
/// sender restarted) are dropped oldest first.
const MAX_STREAMS: usize = 64;

/// How long an answer stands for the same question from the same peer (the question a
/// peer asks back when it hears one comes within a round trip or two).
const SAME_QUESTION_WINDOW: std::time::Duration = std::time::Duration::from_secs(30);

/// How long a catch-up answer is shown in [`Node::catching_up`] after its last part: one
/// that stopped (its sender restarted or went away) lingers until `MAX_STREAMS` drops it,
/// and is no longer news.
pub const CATCH_UP_SHOWN_FOR: std::time::Duration = std::time::Duration::from_secs(30);

/// A version vector: for each device, every write of it up to this number is reflected.
type Vector = Vec<(DeviceId, u64)>;

/// A catch-up answer being received.
#[derive(Default)]
struct Stream {
    /// The parts arrived so far (each counted once).
    received: BTreeSet<u32>,
    /// How many parts the sender said the answer has (as its latest part said).
    parts: u32,
    /// The changes the parts arrived so far carried.
    changes: u64,
    /// When the latest part arrived.
    last_part: Timestamp,
    /// Whether some change in them was refused: the sender's vector is then not taken
    /// as reflected here, so the refused writes are asked for again.
    refused: bool,
}

/// How far one catch-up answer being received has come: what `status` shows of a device
/// catching up after a long absence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatchUpProgress {
    /// The device answering.
    pub from: DeviceId,
    /// The answer's parts arrived so far.
    pub parts_received: u32,
    /// How many parts the answer has.
    pub parts: u32,
    /// The changes the arrived parts carried.
    pub changes: u64,
}

/// Where replication with the peers stands (the replica itself is [`Node::store`]).
pub(super) struct Replication {
    /// Catch-up answers being received: the parts arrived so far (each counted once).
    streams: BTreeMap<(DeviceId, u64), Stream>,
    /// Numbers the answers this replica sends; starts at random so that an answer sent
    /// before a restart is never taken for one sent after.
    next_stream: u64,
    next_sync: Timestamp,
    sync_interval: std::time::Duration,
    sync_turn: usize,
    /// Per peer, the last question answered: a hash of its vector, this replica's version then, and
    /// when. The same question again soon after would get the same answer, which is
    /// already on its way (both sides ask when they meet).
    answered: BTreeMap<DeviceId, ([u8; 32], u64, Timestamp)>,
    /// Keys written here and not yet pushed to each reachable peer. A peer gets one push
    /// at a time: writes made meanwhile go together in the next (a write to the same key
    /// twice goes once), so a burst of writes, or a peer that is gone but not yet known
    /// to be, does not pile up a transfer per write.
    unpushed: BTreeMap<DeviceId, BTreeSet<String>>,
    /// This device's signed head, as last signed (a signature per write number at most).
    own_head: Option<SignedHead>,
    /// When each peer was last asked: a peer that asks and wants to be asked back is not
    /// asked again if it just was (both sides ask when they meet).
    asked: BTreeMap<DeviceId, Timestamp>,
    /// Each peer's vector as of the last catch-up from it that completed: this replica
    /// then had everything that peer had. The least of them says which deletes every
    /// device has, with no write concurrent to them that this replica has not seen.
    caught_up: BTreeMap<DeviceId, Vector>,
    /// Whose catch-up answer is awaited, and who is asked after it.
    turns: CatchUpTurns,
}

impl Replication {
    pub(super) fn new(now: Timestamp, sync_interval: std::time::Duration, first_stream: u64) -> Self {
        Self {
            streams: BTreeMap::new(),
            next_stream: first_stream,
            next_sync: now + sync_interval,
            sync_interval,
            sync_turn: 0,
            answered: BTreeMap::new(),
            unpushed: BTreeMap::new(),
            own_head: None,
            asked: BTreeMap::new(),
            caught_up: BTreeMap::new(),
            turns: CatchUpTurns::default(),
        }
    }

    /// When the periodic repair is due, or a stalled catch-up answer passes its turn.
    pub(super) fn next_deadline(&self) -> Timestamp {
        self.turns
            .deadline()
            .map_or(self.next_sync, |stalled| stalled.min(self.next_sync))
    }
}

impl Node {
    /// The replica, for reads.
    pub fn store(&self) -> &crate::store::Store {
        &self.store
    }

    /// The catch-up answers being received that had a part within [`CATCH_UP_SHOWN_FOR`],
    /// by sender. An answer leaves the list once its last part is in.
    pub fn catching_up(&self, now: Timestamp) -> Vec<CatchUpProgress> {
        self.replication
            .streams
            .iter()
            .filter(|(_, stream)| now.saturating_since(stream.last_part) < CATCH_UP_SHOWN_FOR)
            .map(|((from, _), stream)| CatchUpProgress {
                from: *from,
                parts_received: stream.received.len().try_into().unwrap_or(u32::MAX),
                parts: stream.parts,
                changes: stream.changes,
            })
            .collect()
    }

    /// Takes back the store's records from disk (at start, before any input), the
    /// roster's keys included.
    pub(super) fn restore_store(&mut self, now: Timestamp, records: impl IntoIterator<Item = StoreRecord>) {
        let (mut roster_keys, mut address_keys) = (Vec::new(), Vec::new());
        for record in records {
            match record {
                StoreRecord::Key { key, register } => {
                    if key.starts_with(ROSTER_PREFIX) {
                        roster_keys.push(key.clone());
                    } else if key.starts_with(ADDRESS_PREFIX) {
                        address_keys.push(key.clone());
                    }
                    self.store.restore_key(key, register);
                }
                StoreRecord::Meta(meta) => self.store.restore_meta(&meta),
                StoreRecord::Head(head) => {
                    self.store.absorb_heads(&[head]);
                }
            }
        }
        for key in roster_keys {
            self.on_roster_key(now, &key);
        }
        self.after_roster_changes(now);
        // After the roster: a record counts only for a device of it.
        for key in address_keys {
            self.on_address_key(now, &key);
        }
        self.route_between_layers(now);
    }

    /// Writes `value` to `key` (`None` deletes). The write is durable once the
    /// [`crate::node::Output::Persist`] outputs that follow are applied; it then goes to
    /// every reachable device. Keys of a [`crate::roster::SYSTEM_NAMESPACES`] are the
    /// mesh's own: refused.
    pub fn kv_write(&mut self, now: Timestamp, key: &str, value: Option<Vec<u8>>) -> Result<u64, StoreError> {
        if crate::roster::system_namespace(key).is_some() {
            return Err(StoreError::Reserved);
        }
        self.write_key(now, key, value)
    }

    /// Every sibling value of `key` that `decode` takes (deletes and values that do not
    /// parse left out): how the roster's own keys are read.
    pub(super) fn decoded_siblings<T, E>(&self, key: &str, decode: impl Fn(&[u8]) -> Result<T, E>) -> Vec<T> {
        self.store
            .read(key)
            .map(|read| {
                read.register
                    .siblings()
                    .iter()
                    .filter_map(|s| decode(s.value.as_deref()?).ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Writes any key, the roster's included.
    pub(super) fn write_key(
        &mut self,
        now: Timestamp,
        key: &str,
        value: Option<Vec<u8>>,
    ) -> Result<u64, StoreError> {
        let wall = self.messaging.unix_micros_at(now);
        let seq = self.store.write(key, value, wall)?;
        self.persist_key(key);
        self.events.push_back(Event::StoreChanged { key: key.to_owned() });
        self.push_later(key, None);
        self.route_between_layers(now);
        Ok(seq)
    }

    /// Pushes the keys written since the last push to each peer that has no push in
    /// flight (called whenever the node moves).
    pub(super) fn flush_pushes(&mut self, now: Timestamp) {
        if self.replication.unpushed.is_empty() {
            return;
        }
        let ready: Vec<DeviceId> = self
            .replication
            .unpushed
            .keys()
            .filter(|peer| self.messaging.store_in_flight(peer) == 0)
            .copied()
            .collect();
        for peer in ready {
            let Some(keys) = self.replication.unpushed.remove(&peer) else {
                continue;
            };
            let changes: Vec<Change> = keys
                .into_iter()
                .filter_map(|key| {
                    let register = self.store.read(&key)?.register.clone();
                    Some(Change { key, register })
                })
                .collect();
            for part in StoreMessage::pushes(changes) {
                self.send_store(now, peer, part);
            }
        }
    }

    fn persist_key(&mut self, key: &str) {
        if let Some(read) = self.store.read(key) {
            let register = read.register.clone();
            self.store_writes.push_back(Write::put(StoreRecord::Key {
                key: key.to_owned(),
                register,
            }));
        }
    }

    fn persist_meta(&mut self) {
        let record = StoreRecord::Meta(self.store.meta());
        self.store_writes.push_back(Write::put(record));
    }

    fn send_store(&mut self, now: Timestamp, to: DeviceId, message: StoreMessage) {
        self.send_store_beyond(now, to, message, &BTreeMap::new());
    }

    /// Sends a store message to `to`, whose vector is `known` as far as it said. The
    /// heads of the message's vector at or below it are left out (`to` takes a vector
    /// only to move its own up): at 300 devices they were three quarters of a catch-up's
    /// bytes. The heads of the writers of its changes always go, which `to` checks them
    /// against.
    fn send_store_beyond(
        &mut self,
        now: Timestamp,
        to: DeviceId,
        mut message: StoreMessage,
        known: &BTreeMap<DeviceId, u64>,
    ) {
        // Writes travel with the signed heads of their authors, so that the receiver can
        // tell they were made ([`crate::store::heads`]).
        let authors = message.authors();
        if !authors.is_empty() {
            let own = self.own_id();
            let mut heads = self.store.heads_of(authors.iter().copied());
            if authors.contains(&own) {
                heads.push(self.own_head());
            }
            let writers = message.writers();
            heads.retain(|head| {
                writers.binary_search(&head.device).is_ok()
                    || known.get(&head.device).is_none_or(|through| head.seq > *through)
            });
            message.set_heads(heads);
        }
        // A message that cannot be sent (over the size limit, or the peer is gone) is
        // repaired by the next catch-up or a later write.
        let _ = self.messaging.send_store(now, to, message.encode());
    }

    /// This device's head at its last write, signed once per write number.
    fn own_head(&mut self) -> SignedHead {
        let seq = self.store.last_seq();
        match self.replication.own_head {
            Some(head) if head.seq == seq => head,
            _ => {
                let head = SignedHead::sign(&self.key, seq);
                self.replication.own_head = Some(head);
                head
            }
        }
    }

    /// Takes in the heads a message carried of the devices it names (`authors`, sorted),
    /// persisting those of roster devices that were new: after a restart, what this
    /// device sends on must still travel with heads that cover it. A head of a device
    /// the message does not name is ignored unchecked.
    fn take_heads(&mut self, authors: &[DeviceId], heads: &[SignedHead]) {
        let named: Vec<SignedHead> = heads
            .iter()
            .filter(|head| authors.binary_search(&head.device).is_ok())
            .copied()
            .collect();
        for head in self.store.absorb_heads(&named) {
            self.persist_head(head);
        }
    }

    /// Keeps `head` on disk if its device is of the roster (a stranger's heads are not
    /// kept); a device that joins the roster later has its head kept then
    /// ([`Node::keep_head_of`]).
    fn persist_head(&mut self, head: SignedHead) {
        if self.roster.get(&head.device).is_some() {
            self.store_writes.push_back(Write::put(StoreRecord::Head(head)));
        }
    }

    /// Keeps the head known of `device`, just admitted to the roster: it may have come
    /// before, when it was not kept, and after a restart this replica's vector must still
    /// never pass the heads it knows (catch-up answers leave out the heads their asker's
    /// vector reaches).
    pub(super) fn keep_head_of(&mut self, device: DeviceId) {
        for head in self.store.heads_of([device]) {
            self.persist_head(head);
        }
    }

    /// `peer` stopped being reachable: answers on their way to it may be lost, so its
    /// next question is answered afresh.
    pub(super) fn store_peer_gone(&mut self, now: Timestamp, peer: DeviceId) {
        self.replication.answered.remove(&peer);
        self.replication.asked.remove(&peer);
        // The catch-up when it is back carries them.
        self.replication.unpushed.remove(&peer);
        if self.replication.turns.done(&peer) {
            self.pass_turn(now);
        }
    }

    /// The awaited catch-up answer is in (or will not come): the next peer waiting is
    /// asked.
    fn pass_turn(&mut self, now: Timestamp) {
        while let Some((peer, reply)) = self.replication.turns.next_waiting() {
            if self.messaging.is_live(&peer) {
                self.ask(now, peer, reply);
                return;
            }
        }
    }

    /// A new session with a reachable `peer` (it restarted unnoticed, or one side moved):
    /// it is asked for what this replica lacks. The question is also the first packet the
    /// peer gets from this device's address on that session, so it follows a move at once.
    pub(super) fn store_session_established(&mut self, now: Timestamp, peer: DeviceId) {
        // An answer sent on an earlier session may have been lost with it: the same
        // question is answered again.
        self.replication.answered.remove(&peer);
        if self.messaging.spreads_to(&peer) {
            self.store_need(now, peer);
        }
    }

    fn asked_lately(&self, now: Timestamp, peer: &DeviceId) -> bool {
        self.replication
            .asked
            .get(peer)
            .is_some_and(|at| now < *at + SAME_QUESTION_WINDOW)
    }

    /// Starts a catch-up with `peer` (it just became reachable, or it is its turn in the
    /// periodic repair): a digest of what this replica reflects, which `peer` answers by
    /// asking (and asking back) only if its own differs.
    pub(super) fn store_need(&mut self, now: Timestamp, peer: DeviceId) {
        let digest = StoreMessage::Digest {
            digest: self.store.digest(),
            reply: true,
        };
        self.send_store(now, peer, digest);
    }

    /// Asks `peer` for what this replica lacks, once no other peer's answer is awaited.
    pub(super) fn ask(&mut self, now: Timestamp, peer: DeviceId, reply: bool) {
        if !self.replication.turns.take(now, peer, reply) {
            return;
        }
        let need = StoreMessage::Need {
            have: self.store.have(),
            reply,
        };
        self.replication.asked.insert(peer, now);
        self.send_store(now, peer, need);
    }

    /// Every [`super::NodeConfig::store_sync_interval`], one reachable peer in turn is asked for what this
    /// replica lacks (repairing anything a push or catch-up lost on the way), and deletes
    /// every device has are collected.
    pub(super) fn store_timeout(&mut self, now: Timestamp) {
        if self.replication.turns.stalled(now) {
            self.pass_turn(now);
        }
        if now < self.replication.next_sync {
            return;
        }
        self.replication.next_sync = now + self.replication.sync_interval;
        self.collect_tombstones();
        // Retired mesh secrets stop being answered as they age.
        self.apply_mesh_secrets(now);
        let live = self.messaging.spread_peers();
        if live.is_empty() {
            return;
        }
        self.replication.sync_turn = self.replication.sync_turn.wrapping_add(1);
        let peer = live[self.replication.sync_turn % live.len()];
        self.store_need(now, peer);
    }

    /// Drops keys whose deletes every device of the roster has. Waits for a catch-up from
    /// every other device: one not caught up from might hold a write concurrent to them.
    fn collect_tombstones(&mut self) {
        if !self.store.has_tombstones() {
            return;
        }
        let own = self.store.have();
        let own_id = self.own_id();
        let mut vectors: Vec<&[(DeviceId, u64)]> = vec![&own];
        for device in self.roster.members() {
            if *device == own_id {
                continue;
            }
            match self.replication.caught_up.get(device) {
                Some(vector) => vectors.push(vector),
                None => return,
            }
        }
        let stable = least_of(vectors);
        let collected = self.store.collect(&stable);
        if collected.is_empty() {
            return;
        }
        self.stats.tombstones_collected += collected.len() as u64;
        for key in collected {
            self.store_writes.push_back(Write::Delete(key_record_key(&key)));
        }
        self.persist_meta();
    }

    /// Merges changes from `from`; in a mesh spread through the ring, what was new here
    /// goes on to the neighbours that did not bring it.
    /// Returns whether every change was taken in (none refused).
    fn apply_changes(&mut self, now: Timestamp, from: DeviceId, changes: &[Change]) -> bool {
        let vector = self.store.vector_version();
        let relay = self.messaging.spreads_through_ring();
        let wall = self.messaging.unix_micros_at(now);
        let mut all_taken = true;
        let (mut records, mut roster_changed) = (Vec::new(), false);
        for change in changes {
            let introduces = Self::introduces(&change.key);
            let checked = self.store.check_heads(&change.register);
            let merged = match checked.and_then(|()| self.store.merge(&change.key, &change.register, wall)) {
                Ok(merged) => {
                    self.pushed_by(from, change);
                    merged
                }
                Err(reason) => {
                    all_taken = false;
                    self.stats.store_changes_refused += 1;
                    self.events.push_back(Event::StoreRefused {
                        from,
                        key: change.key.clone(),
                        reason,
                    });
                    continue;
                }
            };
            if merged {
                self.persist_key(&change.key);
                let mut renamed = false;
                if change.key.starts_with(ROSTER_PREFIX) {
                    roster_changed = true;
                    renamed = self.on_roster_key(now, &change.key);
                } else if change.key.starts_with(ADDRESS_PREFIX) {
                    records.push(change.key.clone());
                }
                self.events.push_back(Event::StoreChanged {
                    key: change.key.clone(),
                });
                if relay || introduces || renamed {
                    self.push_later(&change.key, Some(&from));
                }
            }
        }
        if roster_changed {
            self.after_roster_changes(now);
        }
        // Address records last: the calls they start are keyed with the mesh secret the
        // same changes may bring (`_addr/` sorts before `_roster/mesh-secret`; keyed with an
        // older one, a call waits a second's retry).
        for key in records {
            self.on_address_key(now, &key);
        }
        // Pushed writes moved the vector: kept, so that a restart does not ask for them
        // again.
        if self.store.vector_version() != vector {
            self.persist_meta();
        }
        all_taken
    }

    /// Whether a change of `key` is an address record, to be pushed on even where every
    /// device pushes only its own writes: a device that cannot reach its author (behind
    /// another NAT) still learns where it is. A rename is pushed on too (`apply_changes`).
    /// A device's first name is not: a device that lacks it asks for it (`names.rs`), and
    /// pushing every first name on moved the simulator's deterministic figures past a
    /// standing guard.
    fn introduces(key: &str) -> bool {
        key.starts_with(ADDRESS_PREFIX)
    }

    /// `from` sent `change`: if it holds all this replica holds of the key, the key's next
    /// push to it is dropped. Pushes wait for the one in flight, and while a mesh spread
    /// through the ring forms, a neighbour often sends a key before it is pushed to it.
    fn pushed_by(&mut self, from: DeviceId, change: &Change) {
        let Some(waiting) = self.replication.unpushed.get_mut(&from) else {
            return;
        };
        if waiting.contains(&change.key)
            && self
                .store
                .read(&change.key)
                .is_some_and(|read| *read.register == change.register)
        {
            waiting.remove(&change.key);
            if waiting.is_empty() {
                self.replication.unpushed.remove(&from);
            }
        }
    }

    /// Notes `key` for the next push to every peer broadcasts go to, but `except`.
    fn push_later(&mut self, key: &str, except: Option<&DeviceId>) {
        for peer in self.messaging.spread_peers() {
            if Some(&peer) != except {
                self.replication
                    .unpushed
                    .entry(peer)
                    .or_default()
                    .insert(key.to_owned());
            }
        }
    }

    /// Notes that this replica has everything `peer` had at `have`. Collecting deletes
    /// needs this from every device, so it is kept only while every device is a direct
    /// peer (a mesh spread through the ring keeps its deletes).
    fn note_caught_up(&mut self, peer: DeviceId, have: Vector) {
        if !self.messaging.spreads_through_ring() {
            self.replication.caught_up.insert(peer, have);
        }
    }

    pub(super) fn on_store_message(&mut self, now: Timestamp, from: DeviceId, bytes: &[u8]) {
        // A message that does not parse is dropped; the next catch-up repairs what it
        // carried.
        let Ok(message) = StoreMessage::decode(bytes) else {
            return;
        };
        match message {
            StoreMessage::Push { changes, heads } => {
                self.take_heads(&authors_of(&changes, &[]), &heads);
                self.apply_changes(now, from, &changes);
            }
            StoreMessage::Digest { digest, reply } => {
                let own = self.store.digest();
                if digest != own {
                    self.ask(now, from, true);
                    return;
                }
                // The same writes on both sides: as good as a completed catch-up.
                self.note_caught_up(from, self.store.have());
                if reply {
                    let same = StoreMessage::Digest {
                        digest: own,
                        reply: false,
                    };
                    self.send_store(now, from, same);
                }
            }
            StoreMessage::Need { have, reply } => {
                if reply && !self.asked_lately(now, &from) {
                    self.ask(now, from, false);
                }
                let version = self.store.version();
                let question = vector_hash(&have);
                let same = self
                    .replication
                    .answered
                    .get(&from)
                    .is_some_and(|(asked, v, at)| {
                        *asked == question && *v == version && now < *at + SAME_QUESTION_WINDOW
                    });
                if same {
                    return;
                }
                let missing = self.store.missing_from(&have);
                self.replication.answered.insert(from, (question, version, now));
                self.replication.next_stream = self.replication.next_stream.wrapping_add(1);
                let stream = self.replication.next_stream;
                let known = have.into_iter().collect();
                for part in StoreMessage::catch_up(stream, missing, self.store.have()) {
                    self.send_store_beyond(now, from, part, &known);
                }
            }
            StoreMessage::CatchUp {
                stream,
                part,
                parts,
                changes,
                have,
                heads,
            } => {
                self.take_heads(&authors_of(&changes, &have), &heads);
                // The sender's vector is believed only as far as its devices signed.
                let have = self.store.within_heads(&have);
                let all_taken = self.apply_changes(now, from, &changes);
                let streams = &mut self.replication.streams;
                let received = streams.entry((from, stream)).or_default();
                let new_part = received.received.insert(part);
                if new_part {
                    received.changes = received.changes.saturating_add(changes.len() as u64);
                }
                received.parts = parts;
                received.last_part = now;
                received.refused |= !all_taken;
                let complete = received.received.len() >= parts as usize;
                let clean = !received.refused;
                if new_part {
                    self.replication.turns.progress(now, &from);
                }
                if complete {
                    streams.remove(&(from, stream));
                }
                while streams.len() > MAX_STREAMS {
                    streams.pop_first();
                }
                if complete && clean {
                    // Every part is in: everything the sender had is reflected here.
                    self.store.advance(&have);
                    self.persist_meta();
                    self.note_caught_up(from, have);
                }
                if complete && self.replication.turns.done(&from) {
                    self.pass_turn(now);
                }
            }
        }
    }
}

/// A hash of a version vector, to recognise the same question again without keeping it.
fn vector_hash(vector: &[(DeviceId, u64)]) -> [u8; 32] {
    let entries: Vec<[u8; 40]> = vector
        .iter()
        .map(|(device, through)| {
            let mut entry = [0u8; 40];
            entry[..32].copy_from_slice(device.as_bytes());
            entry[32..].copy_from_slice(&through.to_le_bytes());
            entry
        })
        .collect();
    let parts: Vec<&[u8]> = entries.iter().map(|e| &e[..]).collect();
    crate::crypto::hash::hash(&parts)
}
