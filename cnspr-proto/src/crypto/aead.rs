//! ChaCha20-Poly1305 keyed once, with Noise's nonce layout: four zero bytes followed by a
//! 64-bit little-endian counter.

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce, Tag};

/// Size of the Poly1305 authentication tag appended to every ciphertext.
pub const TAG_BYTES: usize = 16;

/// Size of a ChaCha20-Poly1305 key.
pub const KEY_BYTES: usize = 32;

/// The ciphertext did not authenticate (wrong key, counter, associated data or bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("ciphertext failed authentication")]
pub struct OpenError;

/// A ChaCha20-Poly1305 key with its expanded cipher, ready to seal and open.
#[derive(Clone)]
pub struct CipherKey {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for CipherKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CipherKey(..)")
    }
}

fn nonce(counter: u64) -> Nonce {
    let mut bytes = [0u8; 12];
    bytes[4..].copy_from_slice(&counter.to_le_bytes());
    bytes.into()
}

impl CipherKey {
    /// Expands `key` into a cipher.
    pub fn new(key: &[u8; KEY_BYTES]) -> Self {
        Self {
            cipher: ChaCha20Poly1305::new(key.into()),
        }
    }

    /// Encrypts `buffer[start..]` in place and appends the tag.
    pub fn seal_in_place(&self, counter: u64, associated_data: &[u8], buffer: &mut Vec<u8>, start: usize) {
        let tag = self
            .cipher
            .encrypt_in_place_detached(&nonce(counter), associated_data, &mut buffer[start..])
            .expect("ChaCha20-Poly1305 only fails for messages over 256 GiB, far above any datagram");
        buffer.extend_from_slice(&tag);
    }

    /// Appends the encryption of `plaintext` (and its tag) to `out`.
    pub fn seal(&self, counter: u64, associated_data: &[u8], plaintext: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(plaintext);
        self.seal_in_place(counter, associated_data, out, start);
    }

    /// Authenticates and decrypts `ciphertext` (tag included) in place; returns the
    /// plaintext length. On failure the buffer's contents are unspecified but no key or
    /// counter state exists here to be changed.
    pub fn open_in_place(
        &self,
        counter: u64,
        associated_data: &[u8],
        ciphertext: &mut [u8],
    ) -> Result<usize, OpenError> {
        let plaintext_len = ciphertext.len().checked_sub(TAG_BYTES).ok_or(OpenError)?;
        let (body, tag) = ciphertext.split_at_mut(plaintext_len);
        let tag = Tag::from_slice(tag);
        self.cipher
            .decrypt_in_place_detached(&nonce(counter), associated_data, body, tag)
            .map_err(|_| OpenError)?;
        Ok(plaintext_len)
    }

    /// Authenticates and decrypts `ciphertext` into a new vector.
    pub fn open(
        &self,
        counter: u64,
        associated_data: &[u8],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, OpenError> {
        let mut buffer = ciphertext.to_vec();
        let len = self.open_in_place(counter, associated_data, &mut buffer)?;
        buffer.truncate(len);
        Ok(buffer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_opens_with_same_counter_and_associated_data_only() {
        let key = CipherKey::new(&[9; 32]);
        let mut sealed = Vec::new();
        key.seal(5, b"ad", b"hello", &mut sealed);
        assert_eq!(sealed.len(), 5 + TAG_BYTES);
        assert_eq!(key.open(5, b"ad", &sealed).as_deref(), Ok(&b"hello"[..]));
        assert_eq!(key.open(6, b"ad", &sealed), Err(OpenError));
        assert_eq!(key.open(5, b"xx", &sealed), Err(OpenError));
        assert_eq!(CipherKey::new(&[8; 32]).open(5, b"ad", &sealed), Err(OpenError));
        assert_eq!(key.open(5, b"ad", &sealed[..TAG_BYTES - 1]), Err(OpenError));
    }
}
