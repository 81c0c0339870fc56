//! Noise's `CipherState` and `SymmetricState` (§5.1, §5.2): the running handshake hash, the
//! chaining key, and the key that encrypts handshake payloads.

use zeroize::Zeroize;

use crate::crypto::aead::{CipherKey, OpenError, TAG_BYTES};
use crate::crypto::hash::{hash, hkdf2, hkdf3, Hash, HASH_BYTES};

/// The handshake's symmetric state. Cloned before a message is read so that a message that
/// fails to decrypt leaves the original untouched.
#[derive(Clone)]
pub(super) struct SymmetricState {
    chaining_key: Hash,
    handshake_hash: Hash,
    key: Option<CipherKey>,
    nonce: u64,
}

impl Drop for SymmetricState {
    fn drop(&mut self) {
        self.chaining_key.zeroize();
    }
}

impl SymmetricState {
    /// `InitializeSymmetric(protocol_name)`.
    pub(super) fn new(protocol_name: &[u8]) -> Self {
        let handshake_hash = if protocol_name.len() <= HASH_BYTES {
            let mut padded = [0u8; HASH_BYTES];
            padded[..protocol_name.len()].copy_from_slice(protocol_name);
            padded
        } else {
            hash(&[protocol_name])
        };
        Self {
            chaining_key: handshake_hash,
            handshake_hash,
            key: None,
            nonce: 0,
        }
    }

    pub(super) fn handshake_hash(&self) -> Hash {
        self.handshake_hash
    }

    pub(super) fn has_key(&self) -> bool {
        self.key.is_some()
    }

    pub(super) fn mix_hash(&mut self, data: &[u8]) {
        self.handshake_hash = hash(&[&self.handshake_hash, data]);
    }

    pub(super) fn mix_key(&mut self, input_key_material: &[u8]) {
        let (chaining_key, mut temp_key) = hkdf2(&self.chaining_key, input_key_material);
        self.chaining_key = chaining_key;
        self.key = Some(CipherKey::new(&temp_key));
        self.nonce = 0;
        temp_key.zeroize();
    }

    pub(super) fn mix_key_and_hash(&mut self, input_key_material: &[u8]) {
        let (chaining_key, temp_hash, mut temp_key) = hkdf3(&self.chaining_key, input_key_material);
        self.chaining_key = chaining_key;
        self.mix_hash(&temp_hash);
        self.key = Some(CipherKey::new(&temp_key));
        self.nonce = 0;
        temp_key.zeroize();
    }

    /// `EncryptAndHash`: appends the (encrypted, once a key exists) `plaintext` to `out`.
    pub(super) fn encrypt_and_hash(&mut self, plaintext: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        match &self.key {
            Some(key) => {
                let handshake_hash = self.handshake_hash;
                key.seal(self.nonce, &handshake_hash, plaintext, out);
                // A handshake encrypts at most four payloads per key: no wrap possible.
                self.nonce += 1;
            }
            None => out.extend_from_slice(plaintext),
        }
        let written = out[start..].to_vec();
        self.mix_hash(&written);
    }

    /// `DecryptAndHash`: the plaintext of `ciphertext`.
    pub(super) fn decrypt_and_hash(&mut self, ciphertext: &[u8]) -> Result<Vec<u8>, OpenError> {
        let plaintext = match &self.key {
            Some(key) => {
                let plaintext = key.open(self.nonce, &self.handshake_hash, ciphertext)?;
                self.nonce += 1;
                plaintext
            }
            None => ciphertext.to_vec(),
        };
        self.mix_hash(ciphertext);
        Ok(plaintext)
    }

    /// Length on the wire of an encrypted-and-hashed field of `plaintext_len` bytes.
    pub(super) fn sealed_len(&self, plaintext_len: usize) -> usize {
        if self.has_key() {
            plaintext_len + TAG_BYTES
        } else {
            plaintext_len
        }
    }

    /// `Split()`: the two transport keys, initiator-to-responder first.
    pub(super) fn split(&self) -> (Hash, Hash) {
        hkdf2(&self.chaining_key, &[])
    }
}
