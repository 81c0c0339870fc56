//! The mesh secret sealed for each device of the roster: the value of
//! [`super::mesh_secret::MESH_SECRET_KEY`]. The store replicates it to every device of the
//! roster, including one that was removed elsewhere but not yet here: a replica that has
//! not heard of a removal still passes the new value on to the removed device. So the
//! secrets are not in the clear: they travel under a fresh content key, and that key is
//! sealed for each device the writer counts in the mesh, so a device the writer knew
//! removed gets bytes it cannot open.
//!
//! Sealing for one device: an X25519 agreement between a fresh ephemeral key (one per
//! value) and the device's static key (its ID names it), hashed with both public keys and
//! the ID into a key-encryption key, which seals the content key with ChaCha20-Poly1305.
//! The value also lists the devices never to seal for again (removed when it was made), so
//! a device that seals the value anew for a joiner (`node/mesh_secret.rs`) without having
//! heard of a removal yet still leaves the removed device out.

use serde::{Deserialize, Serialize};

use super::mesh_secret::StoredSecrets;
use crate::crypto::aead::CipherKey;
use crate::crypto::hash::hash;
use crate::identity::{DeviceId, StaticKeypair};
use crate::roster::MAX_ROSTER_DEVICES;
use crate::wire::cbor::{self, CborError};

const WRAP_LABEL: &[u8] = b"cnspr mesh secret wrap v1";
const CONTENT_LABEL: &[u8] = b"cnspr mesh secrets v1";
/// A sealed content key: the key and its tag.
const SEALED_KEY_BYTES: usize = 32 + 16;
/// Largest encoded value: a sealed key and an exclusion for every device a roster holds,
/// and the secrets.
const MAX_SEALED_BYTES: usize = 2048 + MAX_ROSTER_DEVICES * (2 * 40 + SEALED_KEY_BYTES + 8);

/// The mesh's secrets, sealed for the devices of the roster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedSecrets {
    /// The public half of the value's ephemeral X25519 key.
    #[serde(with = "serde_bytes")]
    pub ephemeral: [u8; 32],
    /// The content key, sealed for each device.
    pub keys: Vec<SealedKey>,
    /// Devices never to seal for again.
    pub excluded: Vec<DeviceId>,
    /// The secrets ([`StoredSecrets`], encoded) under the content key.
    #[serde(with = "serde_bytes")]
    pub secrets: Vec<u8>,
}

/// The content key sealed for one device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedKey {
    /// The device it is sealed for.
    pub device: DeviceId,
    /// The sealed key.
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
}

/// The key that seals the content key for `device`, from the agreement `shared`.
fn wrap_key(shared: &[u8; 32], ephemeral: &[u8; 32], device: &DeviceId) -> Option<CipherKey> {
    // A low-order device key agrees on zeros, which anyone could compute: no seal for it.
    if shared == &[0; 32] {
        return None;
    }
    let noise = device.noise_key()?;
    Some(CipherKey::new(&hash(&[
        WRAP_LABEL,
        shared,
        ephemeral,
        &noise.0,
        device.as_bytes(),
    ])))
}

impl SealedSecrets {
    /// `secrets` sealed for each of `devices` (but none of `excluded`), with the fresh
    /// `ephemeral` secret and `content_key` (random bytes, never used again).
    pub fn seal<'a>(
        secrets: &StoredSecrets,
        devices: impl IntoIterator<Item = &'a DeviceId>,
        mut excluded: Vec<DeviceId>,
        ephemeral: [u8; 32],
        content_key: [u8; 32],
    ) -> Result<Self, CborError> {
        excluded.sort_unstable();
        excluded.dedup();
        excluded.truncate(MAX_ROSTER_DEVICES);
        let ephemeral = StaticKeypair::from_secret_bytes(ephemeral);
        let public = ephemeral.public().0;
        let mut keys: Vec<SealedKey> = Vec::new();
        for device in devices {
            if excluded.binary_search(device).is_ok() || keys.iter().any(|k| k.device == *device) {
                continue;
            }
            let Some(noise) = device.noise_key() else {
                continue;
            };
            let shared = ephemeral.diffie_hellman(&noise.0);
            if let Some(wrap) = wrap_key(&shared, &public, device) {
                let mut key = Vec::with_capacity(SEALED_KEY_BYTES);
                wrap.seal(0, device.as_bytes(), &content_key, &mut key);
                keys.push(SealedKey { device: *device, key });
            }
            if keys.len() >= MAX_ROSTER_DEVICES {
                break;
            }
        }
        let mut sealed = Vec::new();
        CipherKey::new(&content_key).seal(
            0,
            &[CONTENT_LABEL, &public].concat(),
            &secrets.encode()?,
            &mut sealed,
        );
        Ok(Self {
            ephemeral: public,
            keys,
            excluded,
            secrets: sealed,
        })
    }

    /// The secrets, if this value was sealed for `device` (whose static key is `own`).
    pub fn open(&self, own: &StaticKeypair, device: &DeviceId) -> Option<StoredSecrets> {
        let sealed = self.keys.iter().find(|k| k.device == *device)?;
        let shared = own.diffie_hellman(&self.ephemeral);
        let wrap = wrap_key(&shared, &self.ephemeral, device)?;
        let content_key: [u8; 32] = wrap
            .open(0, device.as_bytes(), &sealed.key)
            .ok()?
            .try_into()
            .ok()?;
        let associated = [CONTENT_LABEL, &self.ephemeral].concat();
        let plain = CipherKey::new(&content_key)
            .open(0, &associated, &self.secrets)
            .ok()?;
        StoredSecrets::decode(&plain).ok()
    }

    /// Whether it is sealed for `device`.
    pub fn is_sealed_for(&self, device: &DeviceId) -> bool {
        self.keys.iter().any(|k| k.device == *device)
    }

    /// The value's bytes.
    pub fn encode(&self) -> Result<Vec<u8>, CborError> {
        cbor::encode(self)
    }

    /// Parses a value written by any device; never panics, bounded.
    pub fn decode(bytes: &[u8]) -> Result<Self, CborError> {
        let value: Self = cbor::decode_bounded(bytes, MAX_SEALED_BYTES)?;
        if value.keys.len() > MAX_ROSTER_DEVICES || value.excluded.len() > MAX_ROSTER_DEVICES {
            return Err(CborError::Semantic {
                offset: None,
                message: format!("a mesh secret sealed for more than {MAX_ROSTER_DEVICES} devices"),
            });
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::DeviceKey;

    fn device(seed: u8) -> (DeviceKey, DeviceId) {
        let key = DeviceKey::from_seed([seed; 32]);
        let id = key.device_id();
        (key, id)
    }

    #[test]
    fn only_the_devices_it_is_sealed_for_open_it() {
        let secrets = StoredSecrets::rotated(&[], [7; 32], 1_000, false);
        let (desk, desk_id) = device(1);
        let (laptop, laptop_id) = device(2);
        let (thief, thief_id) = device(3);
        let sealed = SealedSecrets::seal(
            &secrets,
            &[desk_id, laptop_id, thief_id],
            vec![thief_id],
            [8; 32],
            [9; 32],
        )
        .expect("seals");
        let decoded = SealedSecrets::decode(&sealed.encode().expect("encodes")).expect("decodes");
        assert_eq!(decoded, sealed);
        assert_eq!(decoded.open(desk.noise(), &desk_id), Some(secrets.clone()));
        assert_eq!(decoded.open(laptop.noise(), &laptop_id), Some(secrets.clone()));
        // Excluded: no seal, and no other device's seal opens with its key.
        assert!(!decoded.is_sealed_for(&thief_id));
        assert_eq!(decoded.open(thief.noise(), &thief_id), None);
        assert_eq!(decoded.open(thief.noise(), &desk_id), None);
        // The bytes hold no secret in the clear.
        let bytes = decoded.encode().expect("encodes");
        assert!(!bytes.windows(32).any(|w| w == [7; 32]));
        // A tampered value opens for nobody.
        let mut tampered = decoded;
        let last = tampered.secrets.len() - 1;
        tampered.secrets[last] ^= 1;
        assert_eq!(tampered.open(desk.noise(), &desk_id), None);
    }

    #[test]
    fn decoding_anything_never_panics_and_is_bounded() {
        for bytes in [&[][..], &[0xff; 4][..], &[0xa4, 0x01][..], &vec![0x42; 4096][..]] {
            let _ = SealedSecrets::decode(bytes);
        }
        assert!(SealedSecrets::decode(&vec![0; MAX_SEALED_BYTES + 1]).is_err());
    }
}
