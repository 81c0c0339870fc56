//! The daemon's on-disk database (fjall, under `data/db/`): the core's durable records
//! (the messaging layer's and the replicated store's keys) and the store's change log for
//! `watch`. Writes are made durable (`fsync`) with [`Disk::sync`] before anything that
//! depends on them leaves the machine. The database says which format it is in
//! ([`FORMAT`]); a newer one is refused rather than misread.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use cnspr_proto::durable::{Record, Write};
use cnspr_proto::store::StoreRecord;
use fjall::{Config, Keyspace, PartitionCreateOptions, PartitionHandle, PersistMode};

/// Block cache: the daemon's working set is small; memory matters more than hit rates.
const CACHE_BYTES: u64 = 1 << 20;
/// In-memory write buffer before it is flushed to a table: large enough that a burst of
/// puts is not slowed by flushes (a third of the write rate at 4 MiB), and only in use
/// while writes come in.
const WRITE_BUFFER_BYTES: u64 = 16 << 20;

/// Why the database failed.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    /// What fjall said.
    #[error("database: {0}")]
    Fjall(#[from] fjall::Error),
    /// It failed earlier and takes no writes until it is opened again
    /// ([`crate::durability`]).
    #[error("database failed: {0}")]
    Failed(String),
    /// The file system has too little room left for a batch (checked before anything is
    /// written, so that a full disk never leaves half a batch in the journal).
    #[error("the disk is full: {available} bytes free, {needed} needed")]
    Full {
        /// Bytes free for the daemon.
        available: u64,
        /// Bytes the batch needs, with the reserve.
        needed: u64,
    },
    /// The file system could not say how much room it has.
    #[error("cannot read the disk's free space: {0}")]
    Statvfs(#[from] rustix::io::Errno),
    /// The database is in a format this build does not read.
    #[error("the database in {path} is in format {found}, which this cnspr (format {FORMAT}) does not read: {advice}")]
    Format {
        /// The database's directory.
        path: PathBuf,
        /// Its format.
        found: u32,
        /// What to do.
        advice: &'static str,
    },
}

/// The format of the database this build writes and reads: kept under `format` in the
/// `meta` partition. A database of before the marker (format 1 with no marker) gets it.
pub const FORMAT: u32 = 1;

/// Room kept free besides each batch and the background work it owes: for the small
/// files (the roster, the start count, the database's manifests).
const RESERVE_BYTES: u64 = 1 << 20;

/// The open database.
pub struct Disk {
    path: PathBuf,
    keyspace: Keyspace,
    records: PartitionHandle,
    /// The store's change log for `watch`: cursor → key, one entry per key (its latest
    /// change).
    changes: PartitionHandle,
    /// The change log's index, in memory like the store's keys: each key's cursor, and
    /// the last cursor given out.
    log: Mutex<ChangeLog>,
}

#[derive(Default)]
struct ChangeLog {
    latest: HashMap<String, u64>,
    last: u64,
}

impl Disk {
    /// Opens (or creates) the database in `data_dir/db`.
    pub fn open(data_dir: &Path) -> Result<Self, DiskError> {
        let path = data_dir.join("db");
        let keyspace = Config::new(&path)
            .cache_size(CACHE_BYTES)
            .max_write_buffer_size(WRITE_BUFFER_BYTES)
            .manual_journal_persist(true)
            .open()?;
        let meta = keyspace.open_partition("meta", PartitionCreateOptions::default())?;
        check_format(&path, &meta)?;
        let records = keyspace.open_partition("records", PartitionCreateOptions::default())?;
        let changes = keyspace.open_partition("changes", PartitionCreateOptions::default())?;
        let mut log = ChangeLog::default();
        for pair in changes.iter() {
            let (cursor, key) = pair?;
            if let Ok(cursor) = <[u8; 8]>::try_from(&cursor[..]) {
                let cursor = u64::from_be_bytes(cursor);
                log.last = log.last.max(cursor);
                log.latest
                    .insert(String::from_utf8_lossy(&key).into_owned(), cursor);
            }
        }
        Ok(Self {
            path,
            keyspace,
            records,
            changes,
            log: Mutex::new(log),
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
        self.apply_all(std::slice::from_ref(write)).map(drop)
    }

    /// Applies writes as one atomic batch (durable only after [`Disk::sync`]): the daemon
    /// gathers everything the core wrote in one round and commits it at once. Each store
    /// key written gets the next cursor in the change log, in the same batch, so a change
    /// is never durable without its log entry. Returns those keys with their cursors.
    pub fn apply_all(&self, writes: &[Write]) -> Result<Vec<(String, u64)>, DiskError> {
        // Records are built by the core from checked parts and always encode.
        let values: Vec<Option<Vec<u8>>> = writes
            .iter()
            .map(|write| match write {
                Write::Put(record) => record.encode().ok(),
                Write::Delete(_) => None,
            })
            .collect();
        // The journal takes the batch, then a flush writes it into a table: room for
        // both, and for the background work already owed.
        let bytes: usize = values.iter().flatten().map(Vec::len).sum();
        check_room(&self.path, 2 * bytes as u64 + self.settling_bytes())?;
        let mut batch = self.keyspace.batch();
        let mut log = self.log.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut logged: Vec<(String, u64, Option<u64>)> = Vec::new();
        let mut cursor = log.last;
        for (write, value) in writes.iter().zip(values) {
            match write {
                Write::Put(record) => {
                    if let Some(value) = value {
                        batch.insert(&self.records, record.key(), value);
                    }
                    if let Record::Store(StoreRecord::Key { key, .. }) = record {
                        cursor += 1;
                        // The key's earlier entry goes: the log holds each key's latest.
                        let earlier = log.latest.insert(key.clone(), cursor);
                        if let Some(earlier) = earlier {
                            batch.remove(&self.changes, earlier.to_be_bytes());
                        }
                        batch.insert(&self.changes, cursor.to_be_bytes(), key.as_str());
                        logged.push((key.clone(), cursor, earlier));
                    }
                }
                Write::Delete(key) => batch.remove(&self.records, key.clone()),
            }
        }
        if let Err(error) = batch.commit() {
            // Nothing was written: the index goes back to what is on disk.
            for (key, _, earlier) in logged.into_iter().rev() {
                match earlier {
                    Some(earlier) => log.latest.insert(key, earlier),
                    None => log.latest.remove(&key),
                };
            }
            return Err(error.into());
        }
        log.last = cursor;
        Ok(logged.into_iter().map(|(key, cursor, _)| (key, cursor)).collect())
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

    /// Room the database's background work may need at once: a flush writes every
    /// buffered byte into a table, and a compaction may rewrite every table before it
    /// deletes the old ones. Writes are taken only while that room is free, so the
    /// background work never finds the disk full because of them.
    pub fn settling_bytes(&self) -> u64 {
        let tables = self.records.disk_space() + self.changes.disk_space();
        self.keyspace.write_buffer_size() + tables
    }

    /// Makes every applied write durable.
    pub fn sync(&self) -> Result<(), DiskError> {
        self.keyspace.persist(PersistMode::SyncAll)?;
        Ok(())
    }
}

/// Refuses a batch of `bytes` unless the file system holding `path` has room for it and
/// [`RESERVE_BYTES`] more.
pub fn check_room(path: &Path, bytes: u64) -> Result<(), DiskError> {
    let stats = rustix::fs::statvfs(path)?;
    let available = stats.f_bavail.saturating_mul(stats.f_frsize);
    let needed = bytes.saturating_add(RESERVE_BYTES);
    if available < needed {
        return Err(DiskError::Full { available, needed });
    }
    Ok(())
}

/// Refuses a database of a format this build does not read; marks one that has no
/// marker yet (new, or written before the marker) as this build's.
fn check_format(path: &Path, meta: &PartitionHandle) -> Result<(), DiskError> {
    let found = meta
        .get("format")?
        .map(|bytes| <[u8; 4]>::try_from(&bytes[..]).map_or(0, u32::from_le_bytes));
    match found {
        None => {
            meta.insert("format", FORMAT.to_le_bytes())?;
            Ok(())
        }
        Some(FORMAT) => Ok(()),
        Some(found) => Err(DiskError::Format {
            path: path.to_owned(),
            found,
            advice: if found > FORMAT {
                "it was written by a newer cnspr; run that version"
            } else {
                "start over with an empty data directory (the mesh gives back what it holds)"
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cnspr_proto::identity::DeviceId;
    use cnspr_proto::messaging::MessagingRecord;

    #[test]
    fn a_database_of_another_format_is_refused_in_one_sentence() {
        let dir = std::env::temp_dir().join(format!("cnspr-disk-format-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        drop(Disk::open(&dir).expect("a new database"));
        drop(Disk::open(&dir).expect("its own format"));
        {
            let keyspace = Config::new(dir.join("db")).open().expect("opens");
            let meta = keyspace
                .open_partition("meta", PartitionCreateOptions::default())
                .expect("meta");
            meta.insert("format", (FORMAT + 1).to_le_bytes()).expect("marks");
            keyspace.persist(PersistMode::SyncAll).expect("persists");
        }
        let refused = Disk::open(&dir).err().expect("refused").to_string();
        assert!(
            refused.contains(&format!("is in format {}", FORMAT + 1))
                && refused.ends_with("it was written by a newer cnspr; run that version"),
            "{refused}"
        );
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn records_survive_reopening_and_deletes_stick() {
        let dir = std::env::temp_dir().join(format!("cnspr-disk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let kept = Record::Messaging(MessagingRecord::DirectHandled {
            from: DeviceId::from_bytes([1; 32]),
            seq: 7,
        });
        let dropped = Record::Messaging(MessagingRecord::DirectSent {
            to: DeviceId::from_bytes([2; 32]),
            seq: 3,
        });
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

    fn store_key(key: &str) -> Write {
        let mut store = cnspr_proto::store::Store::new(DeviceId::from_bytes([1; 32]), 0);
        store.write(key, Some(b"v".to_vec()), 1).expect("valid");
        let register = store.read(key).expect("written").register.clone();
        Write::put(StoreRecord::Key {
            key: key.to_owned(),
            register,
        })
    }

    #[test]
    fn store_keys_are_logged_with_their_records_and_each_key_once() {
        let dir = std::env::temp_dir().join(format!("cnspr-disk-log-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let disk = Disk::open(&dir).expect("opens");
            let changed = disk
                .apply_all(&[store_key("a"), store_key("b"), store_key("a")])
                .expect("applies");
            assert_eq!(changed, vec![("a".into(), 1), ("b".into(), 2), ("a".into(), 3)]);
            disk.sync().expect("sync");
            assert_eq!(
                disk.changes_after(0).expect("reads"),
                vec![(2, "b".into()), (3, "a".into())]
            );
        }
        let disk = Disk::open(&dir).expect("reopens");
        let changed = disk.apply_all(&[store_key("b")]).expect("applies");
        assert_eq!(changed, vec![("b".into(), 4)], "cursors go on after a restart");
        assert_eq!(
            disk.changes_after(2).expect("reads"),
            vec![(3, "a".into()), (4, "b".into())]
        );
        drop(disk);
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
