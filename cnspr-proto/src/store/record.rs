//! The store's durable records: one per key (in the compact layout of [`super::codec`],
//! since one is written on every put), and one for the write counter and version vectors.

use serde::{Deserialize, Serialize};

use super::codec::{read_changes, write_block};
use super::heads::SignedHead;
use super::sync::Change;
use super::{Meta, Register};
use crate::durable::RecordError;
use crate::wire::compact::{CompactError, Reader, Writer};

/// One durable fact of the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreRecord {
    /// One key.
    Key {
        /// The key.
        key: String,
        /// Its state.
        register: Register,
    },
    /// The store's write counter and version vectors.
    Meta(Meta),
    /// The highest signed head known of one device ([`super::heads`]).
    Head(SignedHead),
}

/// The first byte of a key record (never the first byte of a CBOR record, which is a map
/// or a text string).
const COMPACT_KEY: u8 = 0;

/// The first byte of the disk key of a store key's record.
const KEY_KIND: u8 = 7;
/// The disk key of the meta record.
const META_KIND: u8 = 8;
/// The first byte of the disk key of a device's head record (9–11 are the run queue's).
const HEAD_KIND: u8 = 12;

/// Largest meta record read back: version vectors of a full roster, with room to spare.
const MAX_META_BYTES: usize = 1 << 20;

/// How the meta record is laid out in CBOR (one map entry named for it, as it always was).
#[derive(Serialize, Deserialize)]
enum Tagged {
    StoreMeta(Meta),
    StoreHead(SignedHead),
}

/// The disk key of the record of store key `key`.
pub fn key_record_key(key: &str) -> Vec<u8> {
    let mut stored = vec![KEY_KIND];
    stored.extend_from_slice(key.as_bytes());
    stored
}

impl StoreRecord {
    /// The key it is stored under.
    pub fn key(&self) -> Vec<u8> {
        match self {
            StoreRecord::Key { key, .. } => key_record_key(key),
            StoreRecord::Meta(_) => vec![META_KIND],
            StoreRecord::Head(head) => {
                let mut stored = vec![HEAD_KIND];
                stored.extend_from_slice(head.device.as_bytes());
                stored
            }
        }
    }

    /// The record's bytes.
    pub fn encode(&self) -> Result<Vec<u8>, RecordError> {
        match self {
            StoreRecord::Key { key, register } => {
                let mut out = Writer::new();
                out.u8(COMPACT_KEY);
                write_block(&mut out, std::iter::once((key.as_str(), register)));
                Ok(out.finish())
            }
            StoreRecord::Meta(meta) => Ok(crate::wire::cbor::encode(&Tagged::StoreMeta(meta.clone()))?),
            StoreRecord::Head(head) => Ok(crate::wire::cbor::encode(&Tagged::StoreHead(*head))?),
        }
    }

    /// Parses stored bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        if let Some((&COMPACT_KEY, rest)) = bytes.split_first() {
            let mut input = Reader::new(rest);
            let mut changes = read_changes(&mut input)?;
            input.finish()?;
            let change = changes.pop().filter(|_| changes.is_empty());
            let Change { key, register } = change.ok_or(CompactError::Invalid("store key record"))?;
            return Ok(StoreRecord::Key { key, register });
        }
        Ok(match crate::wire::cbor::decode_bounded(bytes, MAX_META_BYTES)? {
            Tagged::StoreMeta(meta) => StoreRecord::Meta(meta),
            Tagged::StoreHead(head) => StoreRecord::Head(head),
        })
    }

    /// Whether `bytes` can only be a store key record (the one layout that is not CBOR).
    pub fn is_key_record(bytes: &[u8]) -> bool {
        bytes.first() == Some(&COMPACT_KEY)
    }
}
