//! What one device keeps on disk besides the store: its secret key, its boot counter and
//! the roster with the addresses last seen. Every write goes to a temporary file that is
//! synced and renamed over the old one, so a crash leaves the old or the new file, never
//! half of one.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use zeroize::Zeroize;

use cnspr_proto::identity::{DeviceId, DeviceKey};
use cnspr_proto::roster::{KnownDevice, Roster};
use serde::{Deserialize, Serialize};

const IDENTITY_FILE: &str = "device.key";
/// Where the X25519 key of devices from before signing keys lived (protocol 1 and 2).
const OLD_IDENTITY_FILE: &str = "identity.key";
const BOOT_FILE: &str = "boot";
const ROSTER_FILE: &str = "roster.json";

/// Why the device's files could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// `cnspr init` on a device that has an identity.
    #[error("this device already has an identity ({0})")]
    IdentityExists(PathBuf),
    /// No identity yet.
    #[error("this device has no identity yet: run `cnspr init` (or `cnspr serve`)")]
    NoIdentity,
    /// The data directory holds a key of the format before signing keys.
    #[error("{0} is a device key of the format before signing keys, which no device of this version can reach: move the data directory aside, then `cnspr init` and pair again")]
    OldIdentity(PathBuf),
    /// A file is damaged.
    #[error("{path} is damaged: {reason}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes `bytes` to `path` atomically and durably, readable by the owner only.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let temporary = path.with_extension("tmp");
    let write = || -> io::Result<()> {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temporary, path)?;
        if let Some(dir) = path.parent() {
            fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    };
    write().map_err(io_error(path))
}

/// Creates this device's key; refuses if one exists (of this format or the old one).
pub fn create_identity(data_dir: &Path) -> Result<DeviceKey, StateError> {
    refuse_old_identity(data_dir)?;
    let path = data_dir.join(IDENTITY_FILE);
    if path.exists() {
        return Err(StateError::IdentityExists(path));
    }
    let mut secret = [0u8; 32];
    getrandom::getrandom(&mut secret).map_err(|e| StateError::Io {
        path: path.clone(),
        source: io::Error::other(e.to_string()),
    })?;
    let key = DeviceKey::from_seed(secret);
    secret.zeroize();
    let mut seed = key.seed_bytes();
    let written = write_atomic(&path, &seed);
    seed.zeroize();
    written.map(|()| key)
}

/// This device's key.
pub fn load_identity(data_dir: &Path) -> Result<DeviceKey, StateError> {
    refuse_old_identity(data_dir)?;
    let path = data_dir.join(IDENTITY_FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Err(StateError::NoIdentity),
        Err(source) => return Err(StateError::Io { path, source }),
    };
    let bytes = zeroize::Zeroizing::new(bytes);
    let seed: [u8; 32] = bytes.as_slice().try_into().map_err(|_| StateError::Damaged {
        path: path.clone(),
        reason: "a device key is exactly 32 bytes".into(),
    })?;
    let key = DeviceKey::from_seed(seed);
    // A seed this version wrote is never stepped: anything else was not written by it.
    if key.seed_bytes() != seed {
        return Err(StateError::Damaged {
            path,
            reason: "not a device key this version wrote (its public key's sign bit is set)".into(),
        });
    }
    Ok(key)
}

/// The key of a device from before signing keys cannot be carried over (an X25519 key is
/// no Ed25519 seed): say so rather than start as a new device beside it.
fn refuse_old_identity(data_dir: &Path) -> Result<(), StateError> {
    let old = data_dir.join(OLD_IDENTITY_FILE);
    if old.exists() {
        return Err(StateError::OldIdentity(old));
    }
    Ok(())
}

/// Counts one more start of this device and returns the new count, durably, before the
/// core uses it: incarnations of a restarted device must supersede all earlier ones.
pub fn next_boot(data_dir: &Path) -> Result<u32, StateError> {
    let path = data_dir.join(BOOT_FILE);
    let previous = match fs::read_to_string(&path) {
        Ok(text) => text.trim().parse::<u32>().map_err(|e| StateError::Damaged {
            path: path.clone(),
            reason: e.to_string(),
        })?,
        Err(error) if error.kind() == io::ErrorKind::NotFound => 0,
        Err(source) => return Err(StateError::Io { path, source }),
    };
    let boot = previous.checked_add(1).ok_or_else(|| StateError::Damaged {
        path: path.clone(),
        reason: "boot counter exhausted".into(),
    })?;
    write_atomic(&path, format!("{boot}\n").as_bytes())?;
    Ok(boot)
}

/// The roster as stored: every entry, with the last address each device was reached at.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedRoster {
    /// One per device.
    pub devices: Vec<KnownDevice>,
}

impl SavedRoster {
    /// The roster with the addresses known for it.
    pub fn new(roster: &Roster, addresses: &BTreeMap<DeviceId, SocketAddr>) -> Self {
        Self {
            devices: KnownDevice::all(roster, |id| addresses.get(id).copied()),
        }
    }

    /// Reads the roster; a missing file is an empty roster.
    pub fn load(data_dir: &Path) -> Result<Self, StateError> {
        let path = data_dir.join(ROSTER_FILE);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StateError::Damaged {
                path,
                reason: e.to_string(),
            }),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(Self::default()),
            Err(source) => Err(StateError::Io { path, source }),
        }
    }

    /// Writes the roster durably.
    pub fn save(&self, data_dir: &Path) -> Result<(), StateError> {
        let mut json = serde_json::to_vec_pretty(self).map_err(|e| StateError::Damaged {
            path: data_dir.join(ROSTER_FILE),
            reason: e.to_string(),
        })?;
        json.push(b'\n');
        write_atomic(&data_dir.join(ROSTER_FILE), &json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cnspr-state-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn identity_is_created_once_private_and_reloaded() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp_dir("identity");
        let created = create_identity(&dir).expect("created");
        let mode = fs::metadata(dir.join(IDENTITY_FILE))
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(matches!(
            create_identity(&dir),
            Err(StateError::IdentityExists(_))
        ));
        assert_eq!(
            load_identity(&dir).expect("loads").device_id(),
            created.device_id()
        );
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn a_key_of_the_old_format_is_refused_in_one_sentence() {
        let dir = temp_dir("old-identity");
        fs::write(dir.join(OLD_IDENTITY_FILE), [7u8; 32]).expect("written");
        for error in [load_identity(&dir).err(), create_identity(&dir).err()] {
            let error = error.expect("refused");
            assert!(matches!(error, StateError::OldIdentity(_)), "{error}");
            let text = error.to_string();
            assert!(text.contains("pair again") && !text.contains('\n'), "{text}");
        }
        assert!(
            !dir.join(IDENTITY_FILE).exists(),
            "no new identity beside the old one"
        );
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn a_key_file_this_version_did_not_write_is_damaged() {
        let dir = temp_dir("stepped-identity");
        let stepped = (0..64u8)
            .map(|seed| [seed; 32])
            .find(|seed| DeviceKey::from_seed(*seed).seed_bytes() != *seed)
            .expect("about half of all seeds are stepped");
        fs::write(dir.join(IDENTITY_FILE), stepped).expect("written");
        assert!(matches!(load_identity(&dir), Err(StateError::Damaged { .. })));
        fs::write(dir.join(IDENTITY_FILE), [1u8; 31]).expect("written");
        assert!(matches!(load_identity(&dir), Err(StateError::Damaged { .. })));
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn boot_counts_up_and_roster_round_trips() {
        let dir = temp_dir("boot");
        assert_eq!(next_boot(&dir).expect("first"), 1);
        assert_eq!(next_boot(&dir).expect("second"), 2);
        let mut roster = Roster::new();
        let id = DeviceId::from_bytes([9; 32]);
        roster.rename(id, "desk");
        let addresses = BTreeMap::from([(id, "192.0.2.1:3030".parse().expect("valid"))]);
        SavedRoster::new(&roster, &addresses).save(&dir).expect("saved");
        let loaded = SavedRoster::load(&dir).expect("loads");
        assert_eq!(loaded, SavedRoster::new(&roster, &addresses));
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}
