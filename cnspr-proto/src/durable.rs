//! What a device keeps on disk for the core: each layer's durable records, and the writes
//! that change them. The node hands out [`Write`]s (as [`crate::node::Output::Persist`]);
//! the daemon applies them before it sends anything that follows, and gives every record
//! left back to [`crate::node::Node::restore`] after a restart.
//!
//! Each [`Record`] has a key; a later record with the same key replaces the earlier one,
//! and [`Write::Delete`] removes it. The layers own their records
//! ([`crate::messaging::MessagingRecord`], [`crate::store::StoreRecord`]); this is only
//! their union, with one byte layout for the disk.

use crate::messaging::MessagingRecord;
use crate::runs::RunRecord;
use crate::store::StoreRecord;
use crate::wire::cbor::CborError;
use crate::wire::compact::CompactError;

/// One durable fact of some layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// The messaging layer's: outbox, counters, kept events, what was handled.
    Messaging(MessagingRecord),
    /// The replicated store's: its keys and its version vectors.
    Store(StoreRecord),
    /// The handler runs this device owes.
    Runs(RunRecord),
}

/// A change to the durable state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Store the record under its key.
    Put(Record),
    /// Remove what is stored under the key.
    Delete(Vec<u8>),
}

/// Why stored bytes are not a record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// A CBOR record that does not parse.
    #[error(transparent)]
    Cbor(#[from] CborError),
    /// A store key record that does not parse.
    #[error(transparent)]
    Compact(#[from] CompactError),
}

impl From<MessagingRecord> for Record {
    fn from(record: MessagingRecord) -> Self {
        Record::Messaging(record)
    }
}

impl From<RunRecord> for Record {
    fn from(record: RunRecord) -> Self {
        Record::Runs(record)
    }
}

impl From<StoreRecord> for Record {
    fn from(record: StoreRecord) -> Self {
        Record::Store(record)
    }
}

impl Write {
    /// Stores `record` under its key.
    pub fn put(record: impl Into<Record>) -> Self {
        Write::Put(record.into())
    }
}

impl Record {
    /// The key it is stored under (records with equal keys replace each other). The
    /// first byte says the kind, so the layers' keys never meet.
    pub fn key(&self) -> Vec<u8> {
        match self {
            Record::Messaging(record) => record.key(),
            Record::Store(record) => record.key(),
            Record::Runs(record) => record.key(),
        }
    }

    /// The record's bytes.
    pub fn encode(&self) -> Result<Vec<u8>, RecordError> {
        match self {
            Record::Messaging(record) => Ok(record.encode()?),
            Record::Store(record) => Ok(record.encode()?),
            Record::Runs(record) => Ok(record.encode()?),
        }
    }

    /// Parses stored bytes (the disk is trusted, but a damaged record must not crash).
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        if StoreRecord::is_key_record(bytes) {
            return Ok(Record::Store(StoreRecord::decode(bytes)?));
        }
        // The CBOR records: the layers' variant names never meet.
        match MessagingRecord::decode(bytes) {
            Ok(record) => Ok(Record::Messaging(record)),
            Err(error) => RunRecord::decode(bytes)
                .map(Record::Runs)
                .or_else(|_| StoreRecord::decode(bytes).map(Record::Store))
                .map_err(|_| error.into()),
        }
    }
}

/// A disk in memory, for the simulator and tests: it holds exactly what was persisted,
/// so a device restarted from it starts from what a real disk would have kept.
#[derive(Debug, Clone, Default)]
pub struct MemoryDisk {
    records: std::collections::BTreeMap<Vec<u8>, Record>,
}

impl MemoryDisk {
    /// Applies writes in order.
    pub fn apply(&mut self, writes: impl IntoIterator<Item = Write>) {
        for write in writes {
            match write {
                Write::Put(record) => {
                    self.records.insert(record.key(), record);
                }
                Write::Delete(key) => {
                    self.records.remove(&key);
                }
            }
        }
    }

    /// Every record held, in key order.
    pub fn records(&self) -> Vec<Record> {
        self.records.values().cloned().collect()
    }

    /// How many records it holds.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::DeviceId;
    use crate::store::{Meta, Store};

    /// The layout every earlier version wrote: one enum of every record, CBOR for all but
    /// store keys.
    #[derive(serde::Serialize)]
    enum Earlier {
        DirectSent { to: DeviceId, seq: u64 },
        StoreMeta(Meta),
    }

    #[test]
    fn records_round_trip_and_read_what_earlier_versions_wrote() {
        let device = DeviceId::from_bytes([3; 32]);
        let meta = Meta {
            seq: 4,
            have: vec![(device, 4)],
            stable: vec![(device, 2)],
        };
        let mut store = Store::new(device, 0);
        store.write("notes/a", Some(b"milk".to_vec()), 10).expect("valid");
        let register = store.read("notes/a").expect("written").register.clone();
        let records = [
            Record::Messaging(MessagingRecord::DirectSent { to: device, seq: 9 }),
            Record::Store(StoreRecord::Meta(meta.clone())),
            Record::Store(StoreRecord::Key {
                key: "notes/a".into(),
                register,
            }),
        ];
        for record in &records {
            let bytes = record.encode().expect("encodes");
            assert_eq!(Record::decode(&bytes).as_ref(), Ok(record));
        }
        let earlier_sent =
            crate::wire::cbor::encode(&Earlier::DirectSent { to: device, seq: 9 }).expect("encodes");
        let earlier_meta = crate::wire::cbor::encode(&Earlier::StoreMeta(meta)).expect("encodes");
        assert_eq!(records[0].encode().expect("encodes"), earlier_sent);
        assert_eq!(records[1].encode().expect("encodes"), earlier_meta);
        assert_eq!(Record::decode(&earlier_meta).as_ref(), Ok(&records[1]));
        assert!(Record::decode(b"\xa1\x65Bogus\x00").is_err());
        let keys: std::collections::BTreeSet<Vec<u8>> = records.iter().map(Record::key).collect();
        assert_eq!(keys.len(), records.len(), "the layers' keys never meet");
    }

    #[test]
    fn a_memory_disk_keeps_what_was_put_and_not_what_was_deleted() {
        let device = DeviceId::from_bytes([5; 32]);
        let kept = Record::Messaging(MessagingRecord::DirectHandled { from: device, seq: 1 });
        let gone = Record::Messaging(MessagingRecord::EventPublished { seq: 2 });
        let mut disk = MemoryDisk::default();
        disk.apply([Write::Put(kept.clone()), Write::Put(gone.clone())]);
        disk.apply([Write::Delete(gone.key())]);
        assert_eq!(disk.records(), vec![kept]);
        assert_eq!(disk.len(), 1);
    }
}
