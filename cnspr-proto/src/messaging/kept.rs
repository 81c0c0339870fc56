//! A message or event as a device holds it in memory: what it carries and when it
//! expires (outbox entries, events kept for devices that were away, events waiting for
//! the ones before them).

use super::tag::Tag;

/// What a held message or event carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    /// What kind.
    pub tag: Tag,
    /// The message or event.
    pub payload: Vec<u8>,
    /// When it expires, in Unix seconds.
    pub expires_unix_secs: u64,
}

impl Kept {
    /// A held message or event.
    pub fn new(tag: Tag, payload: Vec<u8>, expires_unix_secs: u64) -> Self {
        Self {
            tag,
            payload,
            expires_unix_secs,
        }
    }
}
