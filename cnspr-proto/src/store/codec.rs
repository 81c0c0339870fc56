//! The store's compact layout, for catch-ups on the wire and keys on disk.
//!
//! A catch-up repeats the same few device IDs and near-equal clocks in thousands of
//! registers, and its keys are sorted, so a block of changes is written as:
//!
//! - a table of the devices it names, each 32 bytes once; registers name them by index;
//! - the smallest clock reading; registers carry the difference;
//! - each key as the bytes it shares with the previous key plus the rest;
//! - each register as its siblings and only the context entries they do not imply.
//!
//! Ten thousand small changes then cost little more than their keys and values.

use super::heads::SignedHead;
use super::register::{Register, Sibling};
use super::sync::Change;
use super::{Hlc, MAX_KEY_BYTES, MAX_VALUE_BYTES};
use crate::identity::{DeviceId, Signature, SIGNATURE_BYTES};
use crate::wire::compact::{CompactError, Reader, Writer};

/// Most devices one block names (writers of keys; removed devices included).
const MAX_BLOCK_DEVICES: u64 = 1 << 16;

/// Writes `changes` as one block.
pub fn write_changes(out: &mut Writer, changes: &[Change]) {
    write_block(out, changes.iter().map(|c| (c.key.as_str(), &c.register)));
}

/// Writes keys and their registers as one block.
pub fn write_block<'a>(
    out: &mut Writer,
    changes: impl ExactSizeIterator<Item = (&'a str, &'a Register)> + Clone,
) {
    let mut table: Vec<DeviceId> = Vec::new();
    let mut base = u64::MAX;
    for (_, register) in changes.clone() {
        for sibling in register.siblings() {
            base = base.min(sibling.hlc.micros);
            table.push(sibling.device);
        }
        table.extend(register.context().keys());
    }
    table.sort_unstable();
    table.dedup();
    let base = if base == u64::MAX { 0 } else { base };
    out.varint(table.len() as u64);
    for device in &table {
        out.device(device);
    }
    out.varint(base);
    out.varint(changes.len() as u64);
    let mut previous: &[u8] = &[];
    for (key, register) in changes {
        let key = key.as_bytes();
        let shared = key.iter().zip(previous).take_while(|(a, b)| a == b).count();
        out.varint(shared as u64);
        out.bytes(&key[shared..]);
        previous = key;
        write_register(out, register, &table, base);
    }
}

fn write_register(out: &mut Writer, register: &Register, table: &[DeviceId], base: u64) {
    let index = |device: &DeviceId| table.binary_search(device).unwrap_or_default() as u64;
    out.varint(register.siblings().len() as u64);
    for sibling in register.siblings() {
        out.varint(index(&sibling.device));
        out.varint(sibling.seq);
        out.varint(sibling.hlc.micros - base);
        out.varint(u64::from(sibling.hlc.counter));
        match &sibling.value {
            None => out.varint(0),
            Some(value) => {
                out.varint(value.len() as u64 + 1);
                out.raw(value);
            }
        }
    }
    let extra: Vec<(DeviceId, u64)> = register.context_beyond_siblings().collect();
    out.varint(extra.len() as u64);
    for (device, seq) in extra {
        out.varint(index(&device));
        out.varint(seq);
    }
}

/// Reads a block written by [`write_changes`]: bounded, and never panics.
pub fn read_changes(input: &mut Reader) -> Result<Vec<Change>, CompactError> {
    let devices = input.count("device table", MAX_BLOCK_DEVICES)?;
    let table = (0..devices)
        .map(|_| input.device("device table"))
        .collect::<Result<Vec<_>, _>>()?;
    let base = input.varint("clock base")?;
    let count = input.count("changes", u64::MAX)?;
    let mut changes = Vec::with_capacity(count.min(4096));
    let mut previous: Vec<u8> = Vec::new();
    for _ in 0..count {
        let shared = input.bounded("key prefix", previous.len() as u64)? as usize;
        let rest = input.bytes("key", MAX_KEY_BYTES)?;
        let mut key = previous[..shared].to_vec();
        key.extend_from_slice(rest);
        if key.is_empty() || key.len() > MAX_KEY_BYTES {
            return Err(CompactError::Invalid("key length"));
        }
        let key_text = std::str::from_utf8(&key).map_err(|_| CompactError::Invalid("key (not UTF-8)"))?;
        let register = read_register(input, &table, base)?;
        changes.push(Change {
            key: key_text.to_owned(),
            register,
        });
        previous = key;
    }
    Ok(changes)
}

fn read_register(input: &mut Reader, table: &[DeviceId], base: u64) -> Result<Register, CompactError> {
    let device = |input: &mut Reader| -> Result<DeviceId, CompactError> {
        let index = input.bounded("device index", table.len().saturating_sub(1) as u64)?;
        table
            .get(index as usize)
            .copied()
            .ok_or(CompactError::Invalid("device index"))
    };
    let count = input.count("siblings", MAX_BLOCK_DEVICES)?;
    let mut siblings = Vec::with_capacity(count);
    for _ in 0..count {
        let device = device(input)?;
        let seq = input.varint("write number")?;
        let micros = base
            .checked_add(input.varint("clock")?)
            .ok_or(CompactError::Invalid("clock"))?;
        let counter = input.bounded("clock counter", u64::from(u32::MAX))? as u32;
        let value = match input.bounded("value length", MAX_VALUE_BYTES as u64 + 1)? {
            0 => None,
            len => Some(input.raw("value", len as usize - 1)?.to_vec()),
        };
        siblings.push(Sibling {
            device,
            seq,
            hlc: Hlc { micros, counter },
            value,
        });
    }
    let extra = input.count("context", MAX_BLOCK_DEVICES)?;
    let mut context = Vec::with_capacity(extra);
    for _ in 0..extra {
        context.push((device(input)?, input.varint("write number")?));
    }
    Ok(Register::from_parts(siblings, context))
}

/// Writes a version vector.
pub fn write_vector(out: &mut Writer, vector: &[(DeviceId, u64)]) {
    out.varint(vector.len() as u64);
    for (device, seq) in vector {
        out.device(device);
        out.varint(*seq);
    }
}

/// Writes signed heads: a count, then device, write number and signature each.
pub fn write_heads(out: &mut Writer, heads: &[SignedHead]) {
    out.varint(heads.len() as u64);
    for head in heads {
        out.device(&head.device);
        out.varint(head.seq);
        out.raw(&head.signature.0);
    }
}

/// Reads signed heads (not verified: [`super::heads::Heads::absorb`] does that).
pub fn read_heads(input: &mut Reader) -> Result<Vec<SignedHead>, CompactError> {
    // One per device a message names, of a roster of at most MAX_ROSTER_DEVICES: more
    // would only cost signature checks.
    let count = input.count("heads", crate::roster::MAX_ROSTER_DEVICES as u64)?;
    (0..count)
        .map(|_| {
            let device = input.device("head")?;
            let seq = input.varint("head write number")?;
            let mut signature = [0u8; SIGNATURE_BYTES];
            signature.copy_from_slice(input.raw("head signature", SIGNATURE_BYTES)?);
            Ok(SignedHead {
                device,
                seq,
                signature: Signature(signature),
            })
        })
        .collect()
}

/// Reads a version vector.
pub fn read_vector(input: &mut Reader) -> Result<Vec<(DeviceId, u64)>, CompactError> {
    let count = input.count("version vector", MAX_BLOCK_DEVICES)?;
    (0..count)
        .map(|_| Ok((input.device("version vector")?, input.varint("write number")?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::register::nothing_permanent;
    use proptest::prelude::*;

    fn device(n: u8) -> DeviceId {
        DeviceId::from_bytes([n; 32])
    }

    fn register(writes: &[(u8, u64, Option<&[u8]>)]) -> Register {
        let mut merged = Register::default();
        for (n, seq, value) in writes {
            let mut one = Register::default();
            let hlc = Hlc {
                micros: 1_800_000_000_000_000 + seq,
                counter: u32::from(*n),
            };
            one.write(
                device(*n),
                *seq,
                hlc,
                value.map(<[u8]>::to_vec),
                nothing_permanent,
            );
            merged.merge(&one, nothing_permanent);
        }
        merged
    }

    fn round_trip(changes: &[Change]) -> Vec<Change> {
        let mut out = Writer::new();
        write_changes(&mut out, changes);
        let bytes = out.finish();
        let mut input = Reader::new(&bytes);
        let back = read_changes(&mut input).expect("reads back");
        input.finish().expect("nothing left");
        back
    }

    #[test]
    fn blocks_round_trip_siblings_deletes_and_context() {
        let mut superseded = register(&[(1, 4, Some(b"old"))]);
        superseded.write(
            device(2),
            9,
            Hlc::default(),
            Some(b"new".to_vec()),
            nothing_permanent,
        );
        let changes = vec![
            Change {
                key: "notes/a".into(),
                register: register(&[(1, 1, Some(b"x")), (2, 3, Some(b"y")), (3, 2, None)]),
            },
            Change {
                key: "notes/ab".into(),
                register: superseded,
            },
            Change {
                key: "ü".into(),
                register: register(&[(3, 7, Some(b""))]),
            },
        ];
        assert_eq!(round_trip(&changes), changes);
        assert_eq!(round_trip(&[]), vec![]);
    }

    #[test]
    fn a_small_change_costs_little_more_than_its_key_and_value() {
        let changes: Vec<Change> = (0..1000u64)
            .map(|i| {
                let mut register = Register::default();
                let hlc = Hlc {
                    micros: 1_800_000_000_000_000 + i * 100,
                    counter: 0,
                };
                register.write(
                    device(1),
                    i + 1,
                    hlc,
                    Some(format!("value {i:06}").into_bytes()),
                    nothing_permanent,
                );
                Change {
                    key: format!("catchup/{i:06}"),
                    register,
                }
            })
            .collect();
        let raw: usize = changes.iter().map(|c| c.key.len() + 12).sum();
        let mut out = Writer::new();
        write_changes(&mut out, &changes);
        let ratio = out.len() as f64 / raw as f64;
        assert!(ratio < 1.0, "block/raw = {ratio:.2}");
    }

    #[test]
    fn refuses_what_a_hostile_peer_might_send() {
        let changes = vec![Change {
            key: "k".into(),
            register: register(&[(1, 1, Some(b"v"))]),
        }];
        let mut out = Writer::new();
        write_changes(&mut out, &changes);
        let good = out.finish();
        for cut in 0..good.len() {
            assert!(
                read_changes(&mut Reader::new(&good[..cut])).is_err(),
                "cut at {cut}"
            );
        }
        // A device index outside the table.
        let mut bad = good.clone();
        let at = 1 + 32 + 8 + 1 + 1 + 1 + 1 + 1;
        bad[at] = 5;
        assert!(read_changes(&mut Reader::new(&bad)).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = read_changes(&mut Reader::new(&bytes));
            let _ = read_vector(&mut Reader::new(&bytes));
        }
    }
}
