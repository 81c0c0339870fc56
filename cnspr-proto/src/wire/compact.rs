//! A compact binary layout for bulk records (the store's registers and catch-ups): unsigned
//! LEB128 varints, length-prefixed bytes, no field names. Smaller and faster than CBOR where
//! thousands of small records travel or hit the disk at once.
//!
//! The [`Reader`] is for untrusted input: every length is checked against what is left and
//! against the caller's limit before anything is allocated.

use crate::identity::DeviceId;

/// Why compact bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompactError {
    /// The input ended in the middle of a field.
    #[error("input ends in the middle of {0}")]
    Truncated(&'static str),
    /// A varint longer than 10 bytes or above `u64::MAX`.
    #[error("malformed number in {0}")]
    BadNumber(&'static str),
    /// A length or count over its limit.
    #[error("{what} is {len}, more than the limit of {max}")]
    TooLong {
        /// Which field.
        what: &'static str,
        /// Its length.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// A field with a value it cannot have.
    #[error("invalid {0}")]
    Invalid(&'static str),
    /// Bytes left after the last field.
    #[error("{0} trailing bytes")]
    Trailing(usize),
}

/// Appends fields to a buffer.
#[derive(Debug, Default)]
pub struct Writer {
    out: Vec<u8>,
}

impl Writer {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// The bytes written.
    pub fn finish(self) -> Vec<u8> {
        self.out
    }

    /// How many bytes are written so far.
    pub fn len(&self) -> usize {
        self.out.len()
    }

    /// Whether nothing is written yet.
    pub fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// One byte.
    pub fn u8(&mut self, value: u8) {
        self.out.push(value);
    }

    /// A varint (1 byte below 128, at most 10).
    pub fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.out.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.out.push(value as u8);
    }

    /// Bytes with their length first.
    pub fn bytes(&mut self, bytes: &[u8]) {
        self.varint(bytes.len() as u64);
        self.raw(bytes);
    }

    /// Bytes as they are (the reader knows the length).
    pub fn raw(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// A device ID in full (32 bytes).
    pub fn device(&mut self, device: &DeviceId) {
        self.raw(device.as_bytes());
    }
}

/// Takes fields off untrusted bytes, in order.
#[derive(Debug)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads `bytes` from the start.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Succeeds only if everything was read.
    pub fn finish(self) -> Result<(), CompactError> {
        match self.rest.len() {
            0 => Ok(()),
            n => Err(CompactError::Trailing(n)),
        }
    }

    /// One byte.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, CompactError> {
        let (&first, rest) = self.rest.split_first().ok_or(CompactError::Truncated(what))?;
        self.rest = rest;
        Ok(first)
    }

    /// A varint.
    pub fn varint(&mut self, what: &'static str) -> Result<u64, CompactError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.u8(what)?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(CompactError::BadNumber(what));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(CompactError::BadNumber(what))
    }

    /// A varint of at most `max`.
    pub fn bounded(&mut self, what: &'static str, max: u64) -> Result<u64, CompactError> {
        let value = self.varint(what)?;
        if value > max {
            return Err(CompactError::TooLong {
                what,
                len: value,
                max,
            });
        }
        Ok(value)
    }

    /// A count of items that take at least one byte each: never more than the bytes left,
    /// so a hostile count cannot make the caller allocate much.
    pub fn count(&mut self, what: &'static str, max: u64) -> Result<usize, CompactError> {
        let count = self.bounded(what, max)?;
        if count > self.rest.len() as u64 {
            return Err(CompactError::Truncated(what));
        }
        Ok(count as usize)
    }

    /// `len` bytes as they are.
    pub fn raw(&mut self, what: &'static str, len: usize) -> Result<&'a [u8], CompactError> {
        let (head, rest) = self
            .rest
            .split_at_checked(len)
            .ok_or(CompactError::Truncated(what))?;
        self.rest = rest;
        Ok(head)
    }

    /// Length-prefixed bytes of at most `max`.
    pub fn bytes(&mut self, what: &'static str, max: usize) -> Result<&'a [u8], CompactError> {
        let len = self.bounded(what, max as u64)?;
        self.raw(what, len as usize)
    }

    /// A device ID in full.
    pub fn device(&mut self, what: &'static str) -> Result<DeviceId, CompactError> {
        let bytes = self.raw(what, 32)?;
        let array: [u8; 32] = bytes.try_into().map_err(|_| CompactError::Truncated(what))?;
        Ok(DeviceId::from_bytes(array))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn varints_round_trip(value in any::<u64>()) {
            let mut writer = Writer::new();
            writer.varint(value);
            let bytes = writer.finish();
            prop_assert!(bytes.len() <= 10);
            let mut reader = Reader::new(&bytes);
            prop_assert_eq!(reader.varint("n"), Ok(value));
            prop_assert_eq!(reader.finish(), Ok(()));
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut reader = Reader::new(&bytes);
            let _ = reader.varint("n");
            let _ = reader.count("items", 1 << 20);
            let _ = reader.bytes("value", 16);
            let _ = reader.device("device");
        }
    }

    #[test]
    fn refuses_overlong_numbers_and_hostile_lengths() {
        let mut reader = Reader::new(&[0xff; 11]);
        assert_eq!(reader.varint("n"), Err(CompactError::BadNumber("n")));
        // 2^64 does not fit.
        let mut reader = Reader::new(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02]);
        assert_eq!(reader.varint("n"), Err(CompactError::BadNumber("n")));
        // A count of a million over three bytes.
        let mut writer = Writer::new();
        writer.varint(1_000_000);
        writer.raw(&[1, 2, 3]);
        let bytes = writer.finish();
        assert_eq!(
            Reader::new(&bytes).count("items", u64::MAX),
            Err(CompactError::Truncated("items"))
        );
        assert!(matches!(
            Reader::new(&bytes).bytes("value", 10),
            Err(CompactError::TooLong { .. })
        ));
    }
}
