//! Fail-stop storage: the database as the daemon holds it, healthy or failed.
//!
//! A write or sync that fails is never acknowledged. The database is then failed: the
//! daemon takes no write and says why (`status`, `monitor`, the log) while it keeps
//! serving reads. fjall poisons itself after an I/O error, and an fsync that failed must
//! not be retried on the same handle (the kernel may have dropped the dirty pages and
//! would report success), so recovery drops the handle, opens the database afresh (which
//! replays its journal), writes again everything not known durable, and syncs.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use cnspr_proto::durable::Write;

use crate::clock::unix_now;
use crate::disk::{check_room, Disk, DiskError};

/// While the disk has no room for the database's background work, how often it is
/// opened again all the same, to clear what that work left half-written.
const REOPEN_WHEN_FULL_INTERVAL: Duration = Duration::from_secs(5);

/// Why the database takes no writes now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskFailure {
    /// What failed, as the database said it.
    pub error: String,
    /// Since when (Unix seconds).
    pub since_unix: u64,
}

/// The open database and whether it is failed.
pub struct Durability {
    data_dir: PathBuf,
    /// `None` only while it is being opened again.
    disk: RwLock<Option<Arc<Disk>>>,
    failure: Mutex<Option<DiskFailure>>,
    /// When the database was last opened.
    opened: Mutex<Instant>,
}

impl std::fmt::Debug for Durability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Durability")
            .field("failure", &self.failure())
            .finish_non_exhaustive()
    }
}

impl Durability {
    /// Opens (or creates) the database in `data_dir/db`.
    pub fn open(data_dir: PathBuf) -> Result<Self, DiskError> {
        let disk = Disk::open(&data_dir)?;
        Ok(Self {
            data_dir,
            disk: RwLock::new(Some(Arc::new(disk))),
            failure: Mutex::new(None),
            opened: Mutex::new(Instant::now()),
        })
    }

    /// The database for reading (`None` for the instant it is being opened again).
    pub fn disk(&self) -> Option<Arc<Disk>> {
        self.disk.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Bytes the database's files take on disk now.
    pub fn bytes_on_disk(&self) -> u64 {
        bytes_under(&self.data_dir.join("db"))
    }

    /// Why writes are refused, if they are.
    pub fn failure(&self) -> Option<DiskFailure> {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Applies `writes` as one batch and syncs it; returns the store keys written with
    /// their change-log cursors. On failure the database is failed from then on and the
    /// caller keeps the writes for [`Durability::recover`].
    pub fn commit(&self, writes: &[Write]) -> Result<Vec<(String, u64)>, DiskError> {
        if let Some(failure) = self.failure() {
            return Err(DiskError::Failed(failure.error));
        }
        let result = match self.disk() {
            Some(disk) => disk
                .apply_all(writes)
                .and_then(|changed| disk.sync().map(|()| changed)),
            None => Err(DiskError::Failed("the database is being opened again".to_owned())),
        };
        if let Err(error) = &result {
            self.fail(error);
        }
        result
    }

    fn fail(&self, error: &DiskError) {
        let mut failure = self.failure.lock().unwrap_or_else(PoisonError::into_inner);
        if failure.is_none() {
            tracing::error!(%error, "the database failed: no write is taken or acknowledged until it works again");
            *failure = Some(DiskFailure {
                error: error.to_string(),
                since_unix: unix_now(),
            });
        }
    }

    /// Opens the database afresh and commits `unwritten` (every write not known durable,
    /// in order). On success writes are taken again; on failure the database stays
    /// failed (still serving reads) and the caller tries again later.
    pub fn recover(&self, unwritten: &[Write]) -> Result<Vec<(String, u64)>, DiskError> {
        let db = self.data_dir.join("db");
        // Opening replays the journal and starts the background work again, so it waits
        // for room for that work, except now and then: a flush or compaction that a full
        // disk cut short leaves its half-written table taking the room until the
        // database is opened again (opening deletes it).
        let settling = self.disk().map_or(0, |disk| disk.settling_bytes());
        if let Err(full) = check_room(&db, settling) {
            let opened = *self.opened.lock().unwrap_or_else(PoisonError::into_inner);
            if opened.elapsed() < REOPEN_WHEN_FULL_INTERVAL {
                return Err(full);
            }
        }
        let mut slot = self.disk.write().unwrap_or_else(PoisonError::into_inner);
        // The failed handle goes first: its background work stops before the files are
        // opened again. A reader holding it a moment longer keeps it open; the next try
        // finds it gone.
        if let Some(old) = slot.take() {
            if let Err(still_shared) = Arc::try_unwrap(old) {
                *slot = Some(still_shared);
                return Err(DiskError::Failed("the database is still in use".to_owned()));
            }
        }
        let disk = Arc::new(Disk::open(&self.data_dir)?);
        *self.opened.lock().unwrap_or_else(PoisonError::into_inner) = Instant::now();
        // The new handle serves reads whatever follows; writes wait for room (the batch
        // checks it, as every batch does, even an empty one).
        *slot = Some(Arc::clone(&disk));
        drop(slot);
        let changed = disk.apply_all(unwritten)?;
        disk.sync()?;
        *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = None;
        tracing::info!(rewritten = unwritten.len(), "the database works again");
        Ok(changed)
    }
}

/// The sizes of every file under `dir`, added up (what cannot be read counts 0).
fn bytes_under(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(metadata) if metadata.is_dir() => bytes_under(&entry.path()),
            Ok(metadata) => metadata.len(),
            Err(_) => 0,
        })
        .sum()
}
