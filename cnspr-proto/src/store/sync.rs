//! How replicas of the store reach each other: local writes are pushed at once to every
//! reachable device, and whenever a device becomes reachable each side says what it has
//! (a version vector: for each device, every write up to this number is reflected here)
//! and gets back only the keys holding writes beyond it, in parts of bounded size. Once
//! all parts of such a catch-up arrived, the receiver has everything the sender had.
//!
//! A device does not open with its vector (which grows with the number of devices that
//! ever wrote) but with a digest of it: two replicas that reflect the same writes, the
//! usual case when they meet again, settle it in one small message; only replicas that
//! differ go on to exchange vectors.

use super::codec::{read_changes, read_heads, read_vector, write_changes, write_heads, write_vector};
use super::heads::SignedHead;
use super::{Register, MAX_KEY_BYTES, MAX_VALUE_BYTES};
use crate::identity::DeviceId;
use crate::wire::compact::{CompactError, Reader, Writer};

/// Bytes of changes per catch-up part (a single larger change goes alone).
pub const PART_BYTES_MAX: usize = 512 << 10;
/// Largest store message: one key whose register holds up to four concurrent values of
/// the largest size. A register beyond it does not replicate until a later write
/// resolves the conflict.
pub const MAX_STORE_MESSAGE_BYTES: usize = 4 * MAX_VALUE_BYTES + 16 * MAX_KEY_BYTES;

const PUSH: u8 = 0;
const NEED: u8 = 1;
const CATCH_UP: u8 = 2;
const DIGEST: u8 = 3;

/// Bytes of a [`StoreMessage::Digest`]'s digest.
pub const DIGEST_BYTES: usize = 16;

/// One key's state, as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The key.
    pub key: String,
    /// Its state at the sender.
    pub register: Register,
}

/// A store message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreMessage {
    /// Keys just written on the sender.
    Push {
        /// Their states.
        changes: Vec<Change>,
        /// The signed heads of the devices whose writes they name ([`super::heads`]).
        heads: Vec<SignedHead>,
    },
    /// A digest of what the sender reflects ([`super::Store::digest`]): a receiver whose
    /// own digest differs answers with a `Need` asking back; one whose digest is the same
    /// has everything the sender has (and the other way round).
    Digest {
        /// The digest.
        digest: [u8; DIGEST_BYTES],
        /// Whether a receiver with the same digest should say so (with its own digest), so
        /// that the sender knows too.
        reply: bool,
    },
    /// What the sender has; answer with what it lacks.
    Need {
        /// The sender's version vector.
        have: Vec<(DeviceId, u64)>,
        /// Whether the receiver should also say what it has (the sender may have missed
        /// that the receiver was away, and so hold writes it never pushed).
        reply: bool,
    },
    /// Part of the answer to a `Need`.
    CatchUp {
        /// Names this answer (per sender).
        stream: u64,
        /// Which part, from 0.
        part: u32,
        /// How many parts.
        parts: u32,
        /// Keys with writes the receiver lacks.
        changes: Vec<Change>,
        /// The sender's version vector: the receiver has it all once every part arrived.
        have: Vec<(DeviceId, u64)>,
        /// The signed heads of the devices whose writes the part or `have` names.
        heads: Vec<SignedHead>,
    },
}

impl Change {
    /// About how many bytes it takes in a block (for cutting catch-ups into parts).
    fn size_hint(&self) -> usize {
        let siblings: usize = self
            .register
            .siblings()
            .iter()
            .map(|s| 24 + s.value.as_ref().map_or(0, Vec::len))
            .sum();
        4 + self.key.len() + siblings + 12 * self.register.context().len()
    }
}

impl StoreMessage {
    /// The message's bytes (the compact layout of [`super::codec`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Writer::new();
        match self {
            StoreMessage::Push { changes, heads } => {
                out.u8(PUSH);
                write_changes(&mut out, changes);
                write_heads(&mut out, heads);
            }
            StoreMessage::Digest { digest, reply } => {
                out.u8(DIGEST);
                out.u8(u8::from(*reply));
                out.raw(digest);
            }
            StoreMessage::Need { have, reply } => {
                out.u8(NEED);
                out.u8(u8::from(*reply));
                write_vector(&mut out, have);
            }
            StoreMessage::CatchUp {
                stream,
                part,
                parts,
                changes,
                have,
                heads,
            } => {
                out.u8(CATCH_UP);
                out.varint(*stream);
                out.varint(u64::from(*part));
                out.varint(u64::from(*parts));
                write_vector(&mut out, have);
                write_changes(&mut out, changes);
                write_heads(&mut out, heads);
            }
        }
        out.finish()
    }

    /// Parses a message; never panics, refuses anything over [`MAX_STORE_MESSAGE_BYTES`].
    pub fn decode(bytes: &[u8]) -> Result<Self, CompactError> {
        if bytes.len() > MAX_STORE_MESSAGE_BYTES {
            return Err(CompactError::TooLong {
                what: "store message",
                len: bytes.len() as u64,
                max: MAX_STORE_MESSAGE_BYTES as u64,
            });
        }
        let mut input = Reader::new(bytes);
        let message = match input.u8("message kind")? {
            PUSH => StoreMessage::Push {
                changes: read_changes(&mut input)?,
                heads: read_heads(&mut input)?,
            },
            DIGEST => {
                let reply = read_flag(&mut input)?;
                let mut digest = [0u8; DIGEST_BYTES];
                digest.copy_from_slice(input.raw("digest", DIGEST_BYTES)?);
                StoreMessage::Digest { digest, reply }
            }
            NEED => {
                let reply = read_flag(&mut input)?;
                StoreMessage::Need {
                    have: read_vector(&mut input)?,
                    reply,
                }
            }
            CATCH_UP => {
                let stream = input.varint("stream")?;
                let part = input.bounded("part", u64::from(u32::MAX))? as u32;
                let parts = input.bounded("parts", u64::from(u32::MAX))? as u32;
                if part >= parts {
                    return Err(CompactError::Invalid("part number"));
                }
                StoreMessage::CatchUp {
                    stream,
                    part,
                    parts,
                    have: read_vector(&mut input)?,
                    changes: read_changes(&mut input)?,
                    heads: read_heads(&mut input)?,
                }
            }
            _ => return Err(CompactError::Invalid("message kind")),
        };
        input.finish()?;
        Ok(message)
    }

    /// Cuts `changes` into pushes of about [`PART_BYTES_MAX`] bytes each.
    pub fn pushes(changes: Vec<Change>) -> Vec<StoreMessage> {
        batches(changes)
            .into_iter()
            .filter(|changes| !changes.is_empty())
            .map(|changes| StoreMessage::Push {
                changes,
                heads: Vec::new(),
            })
            .collect()
    }

    /// Cuts `changes` into catch-up parts of about [`PART_BYTES_MAX`] bytes each (at
    /// least one part, so that an empty answer still completes).
    pub fn catch_up(stream: u64, changes: Vec<Change>, have: Vec<(DeviceId, u64)>) -> Vec<StoreMessage> {
        let batches = batches(changes);
        let parts = batches.len() as u32;
        batches
            .into_iter()
            .enumerate()
            .map(|(part, changes)| StoreMessage::CatchUp {
                stream,
                part: part as u32,
                parts,
                changes,
                have: have.clone(),
                heads: Vec::new(),
            })
            .collect()
    }

    /// Every device a write or vector of the message names (to find the heads it needs).
    pub fn authors(&self) -> Vec<DeviceId> {
        match self {
            StoreMessage::Push { changes, .. } => authors_of(changes, &[]),
            StoreMessage::CatchUp { changes, have, .. } => authors_of(changes, have),
            StoreMessage::Digest { .. } | StoreMessage::Need { .. } => Vec::new(),
        }
    }

    /// Every device a write of the message names (sorted), its vector aside.
    pub fn writers(&self) -> Vec<DeviceId> {
        match self {
            StoreMessage::Push { changes, .. } | StoreMessage::CatchUp { changes, .. } => {
                authors_of(changes, &[])
            }
            StoreMessage::Digest { .. } | StoreMessage::Need { .. } => Vec::new(),
        }
    }

    /// Sets the heads it carries (a push or a catch-up part; other messages carry none).
    pub fn set_heads(&mut self, signed: Vec<SignedHead>) {
        if let StoreMessage::Push { heads, .. } | StoreMessage::CatchUp { heads, .. } = self {
            *heads = signed;
        }
    }
}

/// Every device the writes of `changes` and the vector `have` name, sorted, once each.
pub fn authors_of(changes: &[Change], have: &[(DeviceId, u64)]) -> Vec<DeviceId> {
    let mut authors: Vec<DeviceId> = changes
        .iter()
        .flat_map(|change| {
            let register = &change.register;
            register
                .siblings()
                .iter()
                .map(|s| s.device)
                .chain(register.context().keys().copied())
        })
        .chain(have.iter().map(|(device, _)| *device))
        .collect();
    authors.sort_unstable();
    authors.dedup();
    authors
}

fn read_flag(input: &mut Reader<'_>) -> Result<bool, CompactError> {
    match input.u8("reply flag")? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(CompactError::Invalid("reply flag")),
    }
}

/// Groups `changes` in order into batches of about [`PART_BYTES_MAX`] bytes (a larger
/// single change alone); at least one batch.
fn batches(changes: Vec<Change>) -> Vec<Vec<Change>> {
    let mut batches: Vec<Vec<Change>> = vec![Vec::new()];
    let mut size = 0;
    for change in changes {
        let bytes = change.size_hint();
        if size + bytes > PART_BYTES_MAX && batches.last().is_some_and(|b| !b.is_empty()) {
            batches.push(Vec::new());
            size = 0;
        }
        size += bytes;
        if let Some(batch) = batches.last_mut() {
            batch.push(change);
        }
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::register::nothing_permanent;
    use proptest::prelude::*;

    #[test]
    fn messages_round_trip() {
        let mut register = Register::default();
        register.write(
            DeviceId::from_bytes([1; 32]),
            3,
            crate::store::Hlc::default(),
            Some(b"v".to_vec()),
            nothing_permanent,
        );
        let have = vec![(DeviceId::from_bytes([1; 32]), 3)];
        let changes = vec![Change {
            key: "k".into(),
            register,
        }];
        let heads = vec![SignedHead::sign(
            &crate::identity::DeviceKey::from_seed([1; 32]),
            3,
        )];
        for message in [
            StoreMessage::Push {
                changes: changes.clone(),
                heads: heads.clone(),
            },
            StoreMessage::Need {
                have: have.clone(),
                reply: true,
            },
            StoreMessage::Digest {
                digest: [7; DIGEST_BYTES],
                reply: true,
            },
            StoreMessage::CatchUp {
                stream: u64::MAX,
                part: 1,
                parts: 2,
                changes,
                have,
                heads,
            },
        ] {
            assert_eq!(StoreMessage::decode(&message.encode()), Ok(message));
        }
    }

    proptest! {
        #[test]
        fn whatever_decodes_re_encodes_the_same(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(message) = StoreMessage::decode(&bytes) {
                prop_assert_eq!(StoreMessage::decode(&message.encode()), Ok(message));
            }
        }
    }
}
