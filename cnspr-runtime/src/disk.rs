//! The daemon's on-disk database (fjall, under `data/db/`): the core's durable records
//! (the messaging layer's and the replicated store's keys). Writes are made durable (`fsync`) with
//! [`Disk::sync`] before anything that depends on them leaves the machine.

use std::path::Path;

use cnspr_proto::messaging::{Record, Write};
use fjall::{Config, Keyspace, PartitionCreateOptions, PartitionHandle, PersistMode};

/// Block cache: the daemon's working set is small; memory matters more than hit rates.
const CACHE_BYTES: u64 = 1 << 20;
/// In-memory write buffer per partition before it is flushed to a table.
const WRITE_BUFFER_BYTES: u64 = 4 << 20;

/// Why the database failed.
#[derive(Debug, thiserror::Error)]
#[error("database: {0}")]
pub struct DiskError(#[from] fjall::Error);

/// The open database.
pub struct Disk {
    keyspace: Keyspace,
    records: PartitionHandle,
    /// The store's change log for `watch`: cursor → key, one entry per key (its latest
    /// change).
    changes: PartitionHandle,
    /// key → its cursor in `changes`.
    cursors: PartitionHandle,
}

impl Disk {
    /// Opens (or creates) the database in `data_dir/db`.
    pub fn open(data_dir: &Path) -> Result<Self, DiskError> {
        let keyspace = Config::new(data_dir.join("db"))
            .cache_size(CACHE_BYTES)
            .max_write_buffer_size(WRITE_BUFFER_BYTES)
            .manual_journal_persist(true)
            .open()?;
        let records = keyspace.open_partition("records", PartitionCreateOptions::default())?;
        let changes = keyspace.open_partition("changes", PartitionCreateOptions::default())?;
        let cursors = keyspace.open_partition("cursors", PartitionCreateOptions::default())?;
        Ok(Self {
            keyspace,
            records,
            changes,
            cursors,
        })
    }

    /// Every record left by earlier runs. A record that does not parse (a
    /// damaged disk) is skipped and reported.
    pub fn records(&self) -> Result<Vec<Record>, DiskError> {
        let mut records = Vec::new();
        for pair in self.records.iter() {
            let (key, value) = pair?;
            match Record::decode(&value) {
                Ok(record) => records.push(record),
                Err(error) => tracing::error!(key = ?key, %error, "damaged record skipped"),
            }
        }
        Ok(records)
    }

    /// Applies one write (durable only after [`Disk::sync`]).
    pub fn apply(&self, write: &Write) -> Result<(), DiskError> {
        self.apply_all(std::slice::from_ref(write))
    }

    /// Applies writes as one atomic batch (durable only after [`Disk::sync`]): the daemon
    /// gathers everything the core wrote in one round and commits it at once.
    pub fn apply_all(&self, writes: &[Write]) -> Result<(), DiskError> {
        let mut batch = self.keyspace.batch();
        for write in writes {
            match write {
                Write::Put(record) => {
                    // Records are built by the core from checked parts and always encode.
                    if let Ok(value) = record.encode() {
                        batch.insert(&self.records, record.key(), value);
                    }
                }
                Write::Delete(key) => batch.remove(&self.records, key.clone()),
            }
        }
        batch.commit()?;
        Ok(())
    }

    /// The last cursor given to a store change (0: none yet).
    pub fn last_cursor(&self) -> Result<u64, DiskError> {
        Ok(self
            .changes
            .last_key_value()?
            .and_then(|(cursor, _)| <[u8; 8]>::try_from(&cursor[..]).ok())
            .map_or(0, u64::from_be_bytes))
    }

    /// Records that `key` changed, as change number `cursor` (its earlier entry goes).
    pub fn record_change(&self, key: &str, cursor: u64) -> Result<(), DiskError> {
        if let Some(old) = self.cursors.get(key)? {
            self.changes.remove(old)?;
        }
        self.changes.insert(cursor.to_be_bytes(), key)?;
        self.cursors.insert(key, cursor.to_be_bytes())?;
        Ok(())
    }

    /// Keys changed after `cursor`, in change order, with their cursors.
    pub fn changes_after(&self, cursor: u64) -> Result<Vec<(u64, String)>, DiskError> {
        let mut changes = Vec::new();
        for pair in self.changes.range((cursor + 1).to_be_bytes()..) {
            let (at, key) = pair?;
            if let Ok(at) = <[u8; 8]>::try_from(&at[..]) {
                changes.push((u64::from_be_bytes(at), String::from_utf8_lossy(&key).into_owned()));
            }
        }
        Ok(changes)
    }

    /// Makes every applied write durable.
    pub fn sync(&self) -> Result<(), DiskError> {
        self.keyspace.persist(PersistMode::SyncAll)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cnspr_proto::identity::DeviceId;

    #[test]
    fn records_survive_reopening_and_deletes_stick() {
        let dir = std::env::temp_dir().join(format!("cnspr-disk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let kept = Record::DirectHandled {
            from: DeviceId::from_bytes([1; 32]),
            seq: 7,
        };
        let dropped = Record::DirectSent {
            to: DeviceId::from_bytes([2; 32]),
            seq: 3,
        };
        {
            let disk = Disk::open(&dir).expect("opens");
            disk.apply(&Write::Put(kept.clone())).expect("put");
            disk.apply(&Write::Put(dropped.clone())).expect("put");
            disk.apply(&Write::Delete(dropped.key())).expect("delete");
            disk.sync().expect("sync");
        }
        let disk = Disk::open(&dir).expect("reopens");
        assert_eq!(disk.records().expect("reads"), vec![kept]);
        drop(disk);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
