//! The node's replicated store: local writes (durable, then pushed to every reachable
//! device), catch-up when a device becomes reachable, and the store messages of peers.

use super::{Event, Node};
use crate::identity::DeviceId;
use crate::messaging::{Record, Write};
use crate::store::sync::{Change, StoreMessage};
use crate::store::{Store, StoreError};
use crate::time::Timestamp;

/// How often a replica asks one peer (in turn) for what it lacks.
pub const STORE_SYNC_INTERVAL: std::time::Duration = std::time::Duration::from_secs(300);

impl Node {
    /// The replica, for reads.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Takes back the store's records from disk (at start, before any input).
    pub fn restore_store(&mut self, records: impl IntoIterator<Item = Record>) {
        for record in records {
            match record {
                Record::StoreKey { key, register } => self.store.restore_key(key, register),
                Record::StoreMeta { seq, have } => self.store.restore_meta(seq, have),
                _ => {}
            }
        }
    }

    /// Writes `value` to `key` (`None` deletes). The write is durable once the
    /// [`crate::node::Output::Persist`] outputs that follow are applied; it then goes to
    /// every reachable device.
    pub fn kv_write(&mut self, now: Timestamp, key: &str, value: Option<Vec<u8>>) -> Result<u64, StoreError> {
        let wall = self.messaging.unix_micros_at(now);
        let seq = self.store.write(key, value, wall)?;
        let change = self.persist_key(key);
        self.persist_meta();
        self.events.push_back(Event::StoreChanged { key: key.to_owned() });
        if let Some(change) = change {
            let peers: Vec<DeviceId> = self.messaging.live_peers().copied().collect();
            let push = StoreMessage::Push {
                changes: vec![change],
            };
            for peer in peers {
                self.send_store(now, peer, &push);
            }
        }
        self.pump(now);
        Ok(seq)
    }

    fn persist_key(&mut self, key: &str) -> Option<Change> {
        let register = self.store.read(key)?.register.clone();
        self.store_writes.push_back(Write::Put(Record::StoreKey {
            key: key.to_owned(),
            register: register.clone(),
        }));
        Some(Change {
            key: key.to_owned(),
            register,
        })
    }

    fn persist_meta(&mut self) {
        let record = Record::StoreMeta {
            seq: self.store.last_seq(),
            have: self.store.have(),
        };
        self.store_writes.push_back(Write::Put(record));
    }

    fn send_store(&mut self, now: Timestamp, to: DeviceId, message: &StoreMessage) {
        // A message that cannot be encoded or sent is repaired by the next catch-up.
        if let Ok(bytes) = message.encode() {
            let _ = self.messaging.send_store(now, to, bytes);
        }
    }

    /// Asks `peer` for what this replica lacks, and to ask back (it just became reachable,
    /// or it is its turn in the periodic repair).
    pub(super) fn store_need(&mut self, now: Timestamp, peer: DeviceId) {
        let need = StoreMessage::Need {
            have: self.store.have(),
            reply: true,
        };
        self.send_store(now, peer, &need);
    }

    /// Every [`STORE_SYNC_INTERVAL`], one reachable peer in turn is asked for what this
    /// replica lacks: repairs anything a push or catch-up lost on the way.
    pub(super) fn store_timeout(&mut self, now: Timestamp) {
        if now < self.next_store_sync {
            return;
        }
        self.next_store_sync = now + STORE_SYNC_INTERVAL;
        let live: Vec<DeviceId> = self.messaging.live_peers().copied().collect();
        if live.is_empty() {
            return;
        }
        self.store_sync_turn = self.store_sync_turn.wrapping_add(1);
        let peer = live[self.store_sync_turn % live.len()];
        self.store_need(now, peer);
    }

    fn apply_changes(&mut self, changes: &[Change]) {
        for change in changes {
            if self.store.merge(&change.key, &change.register) {
                self.persist_key(&change.key);
                self.events.push_back(Event::StoreChanged {
                    key: change.key.clone(),
                });
            }
        }
    }

    pub(super) fn on_store_message(&mut self, now: Timestamp, from: DeviceId, bytes: &[u8]) {
        // A message that does not parse is dropped; the next catch-up repairs what it
        // carried.
        let Ok(message) = StoreMessage::decode(bytes) else {
            return;
        };
        match message {
            StoreMessage::Push { changes } => self.apply_changes(&changes),
            StoreMessage::Need { have, reply } => {
                if reply {
                    let back = StoreMessage::Need {
                        have: self.store.have(),
                        reply: false,
                    };
                    self.send_store(now, from, &back);
                }
                self.next_store_stream += 1;
                let stream = self.next_store_stream;
                let missing = self.store.missing_from(&have);
                for part in StoreMessage::catch_up(stream, missing, self.store.have()) {
                    self.send_store(now, from, &part);
                }
            }
            StoreMessage::CatchUp {
                stream,
                parts,
                changes,
                have,
                ..
            } => {
                self.apply_changes(&changes);
                let received = self.store_streams.entry((from, stream)).or_insert(0);
                *received += 1;
                if *received >= parts {
                    self.store_streams.remove(&(from, stream));
                    // Every part is in: everything the sender had is reflected here.
                    self.store.advance(&have);
                    self.persist_meta();
                }
                // Bounded: streams that never complete (the sender restarted) are dropped
                // oldest first.
                while self.store_streams.len() > 64 {
                    self.store_streams.pop_first();
                }
            }
        }
    }
}
