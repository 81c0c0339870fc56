//! A message or event as a device holds it in memory: what it carries and when it
//! expires (outbox entries, events kept for devices that were away, events waiting for
//! the ones before them).

use super::tag::Tag;
use crate::identity::Signature;

/// What a held message or event carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    /// What kind.
    pub tag: Tag,
    /// The message or event.
    pub payload: Vec<u8>,
    /// When it expires, in Unix seconds.
    pub expires_unix_secs: u64,
    /// An event's: its origin's signature ([`super::event_signature`]), handed on with it.
    /// A direct message has none: the session it comes over proves its sender.
    pub signature: Option<Signature>,
}

impl Kept {
    /// A held direct message.
    pub fn new(tag: Tag, payload: Vec<u8>, expires_unix_secs: u64) -> Self {
        Self {
            tag,
            payload,
            expires_unix_secs,
            signature: None,
        }
    }

    /// A held event, with its origin's signature.
    pub fn signed(tag: Tag, payload: Vec<u8>, expires_unix_secs: u64, signature: Signature) -> Self {
        Self {
            signature: Some(signature),
            ..Self::new(tag, payload, expires_unix_secs)
        }
    }
}
