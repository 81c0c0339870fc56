//! The mesh secret as the store keeps it, under the roster's namespace
//! ([`MESH_SECRET_KEY`]) so that it replicates, catch-up included, to every device of the
//! roster and to no other. Initiations are keyed with it (`transport/stealth.rs`).
//!
//! The first pairing of a mesh makes a secret; every removal makes a new one, retiring
//! the old. The value lists the retired secrets too, with when they were retired:
//!
//! - a device **answers** the current secrets (every sibling's: two devices may rotate at
//!   once) and those retired less than [`RETIRED_ANSWERED_SECS`] ago, so that a device
//!   that was away through a rotation, and cannot be called (behind a NAT), still gets
//!   through;
//! - a device **calls** with every secret it knows, one per attempt, current first, and
//!   last with the open mesh's ([`OPEN_MESH`]), so that it reaches a device still on an
//!   older one (or on none: a joiner that stopped before its first catch-up), which then
//!   learns the new one from the store.
//!
//! The open mesh's secret is retired like any other when a mesh that used it makes its
//! first secret (devices set up before secrets existed); a mesh that makes its secret at
//! its first pairing never used it, and never answers it.

use serde::{Deserialize, Serialize};

use crate::transport::stealth::{MeshSecret, OPEN_MESH};
use crate::wire::cbor::{self, CborError};

/// The store key of the mesh secret.
pub const MESH_SECRET_KEY: &str = "_roster/mesh-secret";
/// Retired secrets a value keeps (the newest); older ones are forgotten.
pub const MAX_RETIRED: usize = 8;
/// How long a retired secret is still answered: two weeks.
pub const RETIRED_ANSWERED_SECS: u64 = 14 * 24 * 3600;
/// Largest encoded value (each secret encodes in at most 66 bytes, a time in 9).
const MAX_STORED_BYTES: usize = 128 + (MAX_RETIRED + 1) * 96;

/// The value of [`MESH_SECRET_KEY`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSecrets {
    /// The secret initiations are keyed with now.
    pub current: MeshSecret,
    /// Earlier secrets, the newest first.
    pub retired: Vec<RetiredSecret>,
}

/// A secret a rotation replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetiredSecret {
    /// The secret.
    pub secret: MeshSecret,
    /// When it was replaced, in Unix seconds (the rotating device's clock).
    pub retired_unix_secs: u64,
}

impl StoredSecrets {
    /// The value's bytes.
    pub fn encode(&self) -> Result<Vec<u8>, CborError> {
        cbor::encode(self)
    }

    /// Parses a value written by any device; never panics, and refuses more retired
    /// secrets than a value keeps.
    pub fn decode(bytes: &[u8]) -> Result<Self, CborError> {
        let value: Self = cbor::decode_bounded(bytes, MAX_STORED_BYTES)?;
        if value.retired.len() > MAX_RETIRED {
            return Err(CborError::Semantic {
                offset: None,
                message: format!("more than {MAX_RETIRED} retired mesh secrets"),
            });
        }
        Ok(value)
    }

    /// The value that replaces every sibling of `siblings` with `fresh`: their current
    /// secrets retire now (`now_unix_secs`), their retired ones stay, the newest kept.
    /// With no siblings (the mesh's first secret), the open mesh's secret retires if
    /// `open_mesh_in_use` (other devices of the mesh may still be on it, and two of them
    /// may make a first secret at once), and is never answered otherwise.
    pub fn rotated(
        siblings: &[StoredSecrets],
        fresh: MeshSecret,
        now_unix_secs: u64,
        open_mesh_in_use: bool,
    ) -> Self {
        let mut retired: Vec<RetiredSecret> = siblings
            .iter()
            .map(|value| RetiredSecret {
                secret: value.current,
                retired_unix_secs: now_unix_secs,
            })
            .chain(siblings.iter().flat_map(|value| value.retired.iter().copied()))
            .collect();
        if siblings.is_empty() && open_mesh_in_use {
            retired.push(RetiredSecret {
                secret: OPEN_MESH,
                retired_unix_secs: now_unix_secs,
            });
        }
        newest_first(&mut retired);
        retired.retain(|r| r.secret != fresh);
        retired.truncate(MAX_RETIRED);
        Self {
            current: fresh,
            retired,
        }
    }
}

/// Sorts retired secrets newest first (ties by secret, the same everywhere), each once.
fn newest_first(retired: &mut Vec<RetiredSecret>) {
    retired.sort_by(|a, b| {
        b.retired_unix_secs
            .cmp(&a.retired_unix_secs)
            .then(a.secret.cmp(&b.secret))
    });
    retired.dedup_by_key(|r| r.secret);
}

/// The secrets an endpoint uses, from the siblings of the stored value at `now_unix_secs`:
/// `(known, answered)` as [`crate::transport::Endpoint::set_mesh_secrets`] takes them.
/// No value at all is the open mesh.
pub fn endpoint_secrets(
    siblings: &[StoredSecrets],
    now_unix_secs: u64,
) -> (Vec<MeshSecret>, Vec<MeshSecret>) {
    if siblings.is_empty() {
        return (vec![OPEN_MESH], vec![OPEN_MESH]);
    }
    let mut current: Vec<MeshSecret> = siblings.iter().map(|value| value.current).collect();
    current.sort_unstable();
    current.dedup();
    let mut retired: Vec<RetiredSecret> = siblings
        .iter()
        .flat_map(|value| value.retired.iter().copied())
        .filter(|r| !current.contains(&r.secret))
        .collect();
    newest_first(&mut retired);
    let answered_retired = retired
        .iter()
        .filter(|r| now_unix_secs < r.retired_unix_secs.saturating_add(RETIRED_ANSWERED_SECS));
    let answered = current
        .iter()
        .copied()
        .chain(answered_retired.map(|r| r.secret))
        .collect();
    let mut known: Vec<MeshSecret> = current
        .iter()
        .copied()
        .chain(retired.iter().map(|r| r.secret))
        .collect();
    if !known.contains(&OPEN_MESH) {
        known.push(OPEN_MESH);
    }
    (known, answered)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 24 * 3600;

    #[test]
    fn the_open_mesh_is_always_called_and_answered_only_while_retiring() {
        let first = StoredSecrets::rotated(&[], [1; 32], 1_000, false);
        assert!(first.retired.is_empty());
        let (known, answered) = endpoint_secrets(&[first], 1_000);
        assert_eq!(known, vec![[1; 32], OPEN_MESH]);
        assert_eq!(answered, vec![[1; 32]]);
        let upgraded = StoredSecrets::rotated(&[], [1; 32], 1_000, true);
        let (_, answered) = endpoint_secrets(std::slice::from_ref(&upgraded), 1_000);
        assert_eq!(answered, vec![[1; 32], OPEN_MESH]);
        let (_, answered) = endpoint_secrets(&[upgraded], 1_000 + RETIRED_ANSWERED_SECS);
        assert_eq!(answered, vec![[1; 32]]);
        assert_eq!(endpoint_secrets(&[], 0), (vec![OPEN_MESH], vec![OPEN_MESH]));
    }

    #[test]
    fn a_retired_secret_is_answered_for_two_weeks_and_called_while_kept() {
        let first = StoredSecrets::rotated(&[], [1; 32], 0, false);
        let second = StoredSecrets::rotated(&[first], [2; 32], 10 * DAY, true);
        let (known, answered) = endpoint_secrets(std::slice::from_ref(&second), 11 * DAY);
        assert_eq!(known, vec![[2; 32], [1; 32], OPEN_MESH]);
        assert_eq!(answered, vec![[2; 32], [1; 32]]);
        let (known, answered) = endpoint_secrets(&[second], 24 * DAY);
        assert_eq!(known.len(), 3);
        assert_eq!(answered, vec![[2; 32]]);
    }

    #[test]
    fn concurrent_rotations_are_both_answered_and_the_next_one_retires_both() {
        let base = StoredSecrets::rotated(&[], [1; 32], 0, true);
        let a = StoredSecrets::rotated(std::slice::from_ref(&base), [3; 32], 5, true);
        let b = StoredSecrets::rotated(std::slice::from_ref(&base), [2; 32], 6, true);
        let (known, answered) = endpoint_secrets(&[a.clone(), b.clone()], 7);
        assert_eq!(answered, vec![[2; 32], [3; 32], [1; 32], OPEN_MESH]);
        assert_eq!(known, vec![[2; 32], [3; 32], [1; 32], OPEN_MESH]);
        let next = StoredSecrets::rotated(&[a, b], [4; 32], 8, true);
        let secrets: Vec<MeshSecret> = next.retired.iter().map(|r| r.secret).collect();
        assert_eq!(secrets, vec![[2; 32], [3; 32], [1; 32], OPEN_MESH]);
    }

    #[test]
    fn values_round_trip_and_bounds_hold() {
        let mut value = StoredSecrets::rotated(&[], [9; 32], u64::MAX, true);
        for round in 0..20u8 {
            value = StoredSecrets::rotated(&[value], [round; 32], u64::MAX - 20 + u64::from(round), true);
        }
        assert_eq!(value.retired.len(), MAX_RETIRED);
        let bytes = value.encode().expect("encodes");
        assert!(bytes.len() <= MAX_STORED_BYTES, "{} bytes", bytes.len());
        assert_eq!(StoredSecrets::decode(&bytes), Ok(value.clone()));
        let mut too_many = value;
        too_many.retired.push(too_many.retired[0]);
        assert!(StoredSecrets::decode(&too_many.encode().expect("encodes")).is_err());
        assert!(StoredSecrets::decode(b"\xff\x00").is_err());
        // A far-future retirement time cannot overflow the answering window. (It keeps the
        // secret answered: the time is its writer's word until writes are signed.)
        let late = StoredSecrets {
            current: [1; 32],
            retired: vec![RetiredSecret {
                secret: [2; 32],
                retired_unix_secs: u64::MAX,
            }],
        };
        assert_eq!(endpoint_secrets(&[late], 0).1, vec![[1; 32], [2; 32]]);
    }
}
