//! Device IDs: the Ed25519 public key of the device's key, shown in a Syncthing-style
//! checked text form.
//!
//! Text form: RFC 4648 base32 (no padding) of the 32 key bytes gives 52 chars;
//! each 13-char group gets one Luhn mod 32 check char (56 chars); shown as 8
//! groups of 7 joined by `-`.

use core::fmt;
use core::str::FromStr;

use curve25519_dalek::edwards::CompressedEdwardsY;
use serde::de::{self, Deserialize, Deserializer, Visitor};
use serde::ser::{Serialize, Serializer};

use super::keys::PublicKey;

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/// Base32 chars carrying the 256 key bits (the last one holds 4 padding bits).
const DATA_CHARS: usize = 52;
/// Data chars covered by one check char.
const GROUP_DATA: usize = 13;
/// A data group plus its check char.
const GROUP_LEN: usize = GROUP_DATA + 1;
/// Data plus check chars, without dashes.
const TEXT_CHARS: usize = 56;
/// Chars between dashes in the canonical form.
const DISPLAY_GROUP: usize = 7;
/// Canonical form length: 56 chars and 7 dashes.
const DISPLAY_LEN: usize = TEXT_CHARS + TEXT_CHARS / DISPLAY_GROUP - 1;

/// A device's identity: the Ed25519 public key it signs with ([`super::DeviceKey`]).
///
/// The key itself as the ID lets a pairing token's device ID be checked directly against
/// the key proven in the handshake (its X25519 form, [`DeviceId::noise_key`]) and every
/// signature be checked against its author's ID. Any 32 bytes make a `DeviceId` (the text
/// form is checked for typos, not for naming a key); one that names no key has no
/// `noise_key`, verifies nothing and is never reached.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceId([u8; 32]);

/// The bytes' order, compared a word at a time: ordered maps keyed by device ID are on
/// every hot path, and the derived order's call to `memcmp` per comparison was a tenth
/// of the simulator's time at 300 devices.
impl Ord for DeviceId {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.words().cmp(&other.words())
    }
}

impl PartialOrd for DeviceId {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// The first 7 characters of a device ID's canonical text, for display.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShortId([u8; DISPLAY_GROUP]);

/// Why a device ID string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceIdError {
    /// Not 56 base32 characters once dashes and spaces are removed.
    #[error("device ID must have 56 base32 characters (ignoring dashes and spaces), got {0}")]
    WrongLength(usize),
    /// A character outside A–Z, 2–7 (any case), `-` or space.
    #[error("invalid character {ch:?} at position {position} of device ID (allowed: A-Z, 2-7)")]
    InvalidChar {
        /// The offending character.
        ch: char,
        /// Its 0-based character offset in the input string.
        position: usize,
    },
    /// A group's check character does not match (likely a typo in that group).
    #[error("device ID check character mismatch in group {group} of 4 (characters {first}-{last}); check for a typo")]
    CheckMismatch {
        /// 1-based group number (each group is 14 characters).
        group: usize,
        /// 1-based first character of the group, ignoring dashes.
        first: usize,
        /// 1-based last character of the group, ignoring dashes.
        last: usize,
    },
    /// The unused low bits of the last data character are not zero.
    #[error("device ID has nonzero padding bits in its last data character")]
    NonzeroPadding,
}

impl DeviceId {
    /// Wraps Ed25519 public key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The Ed25519 public key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The bytes as four big-endian words, which order as the bytes do.
    fn words(&self) -> [u64; 4] {
        let mut words = [0u64; 4];
        for (word, chunk) in words.iter_mut().zip(self.0.chunks_exact(8)) {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(chunk);
            *word = u64::from_be_bytes(bytes);
        }
        words
    }

    /// The X25519 key this device's handshakes prove, if the ID names a device key: a
    /// point of the curve in its one canonical encoding, with the sign bit clear, not of
    /// small order.
    pub fn noise_key(&self) -> Option<PublicKey> {
        if !self.has_clear_sign() {
            return None;
        }
        let point = CompressedEdwardsY(self.0).decompress()?;
        if point.is_small_order() || point.compress().0 != self.0 {
            return None;
        }
        Some(PublicKey(point.to_montgomery().to_bytes()))
    }

    /// Whether the sign bit of the key's x coordinate is clear, as every device key's is.
    pub(crate) fn has_clear_sign(&self) -> bool {
        self.0[31] & 0x80 == 0
    }

    /// The first 7 characters of the canonical text.
    pub fn short(&self) -> ShortId {
        let mut short = [0u8; DISPLAY_GROUP];
        for (slot, ch) in short.iter_mut().zip(self.text_chars()) {
            *slot = ch;
        }
        ShortId(short)
    }

    /// Whether `prefix` is a prefix of the canonical text, ignoring case,
    /// dashes and spaces. An empty prefix matches nothing, so a blank
    /// selector never picks a device.
    pub fn matches_prefix(&self, prefix: &str) -> bool {
        let text = self.text_chars();
        let mut text = text.iter();
        let mut any = false;
        for ch in prefix.chars().filter(|c| !is_separator(*c)) {
            any = true;
            match text.next() {
                Some(&t) if ch.eq_ignore_ascii_case(&char::from(t)) => {}
                _ => return false,
            }
        }
        any
    }

    /// The 56 data and check characters, as ASCII.
    fn text_chars(&self) -> [u8; TEXT_CHARS] {
        let values = base32_values(&self.0);
        let mut text = [0u8; TEXT_CHARS];
        for (group, data) in text.chunks_exact_mut(GROUP_LEN).zip(values.chunks(GROUP_DATA)) {
            let check = luhn32(data);
            for (slot, v) in group.iter_mut().zip(data.iter().chain([check].iter())) {
                *slot = symbol(*v);
            }
        }
        text
    }
}

/// Encodes 32 bytes as 52 base32 values (0..32); the last value's low 4 bits are zero.
fn base32_values(bytes: &[u8; 32]) -> [u8; DATA_CHARS] {
    let mut out = [0u8; DATA_CHARS];
    let mut slots = out.iter_mut();
    let mut acc: u16 = 0;
    let mut bits = 0u32;
    for &byte in bytes {
        acc = (acc << 8) | u16::from(byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            if let Some(slot) = slots.next() {
                *slot = ((acc >> bits) & 31) as u8;
            }
        }
        acc &= (1 << bits) - 1;
    }
    if let Some(slot) = slots.next() {
        *slot = ((acc << (5 - bits)) & 31) as u8;
    }
    out
}

/// Decodes 52 base32 values to 32 bytes, requiring zero padding bits.
fn bytes_from_values(values: &[u8; DATA_CHARS]) -> Result<[u8; 32], DeviceIdError> {
    let mut out = [0u8; 32];
    let mut slots = out.iter_mut();
    let mut acc: u16 = 0;
    let mut bits = 0u32;
    for &v in values {
        acc = (acc << 5) | u16::from(v);
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            if let Some(slot) = slots.next() {
                *slot = (acc >> bits) as u8;
            }
            acc &= (1 << bits) - 1;
        }
    }
    // 52 * 5 = 260 bits: 256 data bits and 4 leftover bits that must be zero.
    if acc != 0 {
        return Err(DeviceIdError::NonzeroPadding);
    }
    Ok(out)
}

/// Standard Luhn mod N (N = 32) check value over base32 values: doubling
/// starts at the rightmost character. (Syncthing doubles from the left, so
/// its IDs use a different check char.)
fn luhn32(values: &[u8]) -> u8 {
    const N: u32 = 32;
    let mut factor = 2;
    let mut sum = 0u32;
    for &v in values.iter().rev() {
        let addend = factor * u32::from(v);
        factor = if factor == 2 { 1 } else { 2 };
        sum += addend / N + addend % N;
    }
    ((N - sum % N) % N) as u8
}

fn symbol(value: u8) -> u8 {
    ALPHABET[usize::from(value & 31)]
}

fn value_of(ch: char) -> Option<u8> {
    match ch {
        'A'..='Z' => Some(ch as u8 - b'A'),
        'a'..='z' => Some(ch as u8 - b'a'),
        '2'..='7' => Some(ch as u8 - b'2' + 26),
        _ => None,
    }
}

fn is_separator(ch: char) -> bool {
    ch == '-' || ch == ' '
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [b'-'; DISPLAY_LEN];
        for (out, chunk) in buf
            .chunks_mut(DISPLAY_GROUP + 1)
            .zip(self.text_chars().chunks(DISPLAY_GROUP))
        {
            for (slot, ch) in out.iter_mut().zip(chunk) {
                *slot = *ch;
            }
        }
        // Always ASCII; the error arm is unreachable but avoids a panic path.
        f.pad(core::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceId({})", self.short())
    }
}

impl fmt::Display for ShortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(core::str::from_utf8(&self.0).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for ShortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ShortId({self})")
    }
}

impl FromStr for DeviceId {
    type Err = DeviceIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut values = [0u8; TEXT_CHARS];
        let mut count = 0usize;
        for (position, ch) in s.chars().enumerate() {
            if is_separator(ch) {
                continue;
            }
            let value = value_of(ch).ok_or(DeviceIdError::InvalidChar { ch, position })?;
            if let Some(slot) = values.get_mut(count) {
                *slot = value;
            }
            count += 1;
        }
        if count != TEXT_CHARS {
            return Err(DeviceIdError::WrongLength(count));
        }

        let mut data = [0u8; DATA_CHARS];
        let groups = values.chunks_exact(GROUP_LEN);
        for (index, (group, out)) in groups.zip(data.chunks_exact_mut(GROUP_DATA)).enumerate() {
            let mismatch = DeviceIdError::CheckMismatch {
                group: index + 1,
                first: index * GROUP_LEN + 1,
                last: (index + 1) * GROUP_LEN,
            };
            let (&check, body) = group.split_last().ok_or(mismatch.clone())?;
            if luhn32(body) != check {
                return Err(mismatch);
            }
            out.copy_from_slice(body);
        }
        bytes_from_values(&data).map(Self)
    }
}

impl Serialize for DeviceId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Text in JSON and the like (people read those files); on the wire a CBOR byte
        // string, not an array of 32 integers.
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            serializer.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for DeviceId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BytesVisitor;

        impl Visitor<'_> for BytesVisitor {
            type Value = DeviceId;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a device ID: 32 bytes, or its checked text form")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<DeviceId, E> {
                v.parse().map_err(E::custom)
            }

            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<DeviceId, E> {
                <[u8; 32]>::try_from(v)
                    .map(DeviceId)
                    .map_err(|_| E::invalid_length(v.len(), &self))
            }
        }

        if deserializer.is_human_readable() {
            deserializer.deserialize_str(BytesVisitor)
        } else {
            deserializer.deserialize_bytes(BytesVisitor)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ZERO_TEXT: &str = "AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA-AAAAAAA";
    // Independently computed (Python base64.b32encode + Luhn mod 32).
    const SEQ_TEXT: &str = "AAAQEAY-EAUDAO5-CAJBIFQ-YDIOB4X-IBCEQTC-QKRMFYM-YDENBWH-A5DYPQS";
    const FF_TEXT: &str = "7777777-777777N-7777777-777777N-7777777-777777N-7777777-77777QL";

    fn seq() -> [u8; 32] {
        core::array::from_fn(|i| i as u8)
    }

    #[test]
    fn known_vectors() {
        for (bytes, text) in [([0u8; 32], ZERO_TEXT), (seq(), SEQ_TEXT), ([0xff; 32], FF_TEXT)] {
            let id = DeviceId::from_bytes(bytes);
            assert_eq!(id.to_string(), text);
            assert_eq!(text.parse::<DeviceId>(), Ok(id));
        }
    }

    #[test]
    fn lowercase_spaces_and_missing_dashes_accepted() {
        let id = DeviceId::from_bytes(seq());
        let lower = SEQ_TEXT.to_ascii_lowercase();
        assert_eq!(lower.parse::<DeviceId>(), Ok(id));
        assert_eq!(SEQ_TEXT.replace('-', "").parse::<DeviceId>(), Ok(id));
        assert_eq!(SEQ_TEXT.replace('-', " ").parse::<DeviceId>(), Ok(id));
        assert_eq!(format!(" -{lower}- ").parse::<DeviceId>(), Ok(id));
    }

    #[test]
    fn errors_are_specific() {
        assert_eq!("".parse::<DeviceId>(), Err(DeviceIdError::WrongLength(0)));
        assert_eq!(
            format!("{SEQ_TEXT}A").parse::<DeviceId>(),
            Err(DeviceIdError::WrongLength(57))
        );
        assert_eq!(
            "AAAQEAY-EAUD1O5".parse::<DeviceId>(),
            Err(DeviceIdError::InvalidChar {
                ch: '1',
                position: 12
            })
        );
        // Third char of group 2 (index 16 in the dashed text) changed.
        let typo = SEQ_TEXT.replacen("CAJBIFQ", "CAKBIFQ", 1);
        assert_eq!(
            typo.parse::<DeviceId>(),
            Err(DeviceIdError::CheckMismatch {
                group: 2,
                first: 15,
                last: 28
            })
        );
        let msg = DeviceIdError::WrongLength(3).to_string();
        assert!(msg.contains("got 3"), "{msg}");
    }

    #[test]
    fn nonzero_padding_rejected() {
        // Last data char 'B' sets a padding bit; recompute group 4's check so
        // only the padding rule can reject it.
        let mut values = base32_values(&[0; 32]);
        if let Some(last) = values.last_mut() {
            *last = 1;
        }
        let mut text = String::new();
        for group in values.chunks(GROUP_DATA) {
            text.extend(group.iter().map(|v| char::from(symbol(*v))));
            text.push(char::from(symbol(luhn32(group))));
        }
        assert_eq!(text.parse::<DeviceId>(), Err(DeviceIdError::NonzeroPadding));
    }

    #[test]
    fn short_debug_and_prefix() {
        let id = DeviceId::from_bytes(seq());
        assert_eq!(id.short().to_string(), "AAAQEAY");
        assert_eq!(format!("{id:?}"), "DeviceId(AAAQEAY)");
        assert_eq!(DeviceId::from_bytes([0xff; 32]).noise_key(), None, "sign bit set");
        assert!(id.matches_prefix("aaaq"));
        assert!(id.matches_prefix("AAAQEAY-EAU"));
        assert!(id.matches_prefix("AAAQEAYEAU"));
        assert!(id.matches_prefix("aaa-qeay-e"));
        assert!(id.matches_prefix(SEQ_TEXT));
        assert!(!id.matches_prefix(&format!("{SEQ_TEXT}A")));
        assert!(!id.matches_prefix("AAAB"));
        assert!(!id.matches_prefix(""));
        assert!(!id.matches_prefix("--"));
    }

    #[test]
    fn serde_is_32_byte_cbor_string() {
        let id = DeviceId::from_bytes(seq());
        let mut buf = Vec::new();
        ciborium::into_writer(&id, &mut buf).expect("writing to a Vec cannot fail");
        let mut expected = vec![0x58, 0x20];
        expected.extend_from_slice(&seq());
        assert_eq!(buf, expected);
        let back: DeviceId = ciborium::from_reader(buf.as_slice()).expect("valid encoding");
        assert_eq!(back, id);

        let short = [0x58, 0x1f].iter().chain(&[0u8; 31]).copied().collect::<Vec<_>>();
        assert!(ciborium::from_reader::<DeviceId, _>(short.as_slice()).is_err());
        let long = [0x58, 0x21].iter().chain(&[0u8; 33]).copied().collect::<Vec<_>>();
        assert!(ciborium::from_reader::<DeviceId, _>(long.as_slice()).is_err());
        // An array of integers is not accepted.
        assert!(ciborium::from_reader::<DeviceId, _>(&[0x81, 0x00][..]).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn round_trips(bytes in any::<[u8; 32]>()) {
            let id = DeviceId::from_bytes(bytes);
            let text = id.to_string();
            prop_assert_eq!(text.len(), DISPLAY_LEN);
            prop_assert_eq!(text.parse::<DeviceId>(), Ok(id));
            prop_assert!(id.matches_prefix(&text[..10]));
        }

        /// Sorted maps, the wire's sorted lists and the simulator's digests all rest on
        /// this order: it must stay the bytes' order.
        #[test]
        fn orders_as_its_bytes(a in any::<[u8; 32]>(), b in any::<[u8; 32]>(), at in 0usize..32) {
            let mut near = a;
            near[at] = b[at];
            for other in [b, near, a] {
                prop_assert_eq!(DeviceId::from_bytes(a).cmp(&DeviceId::from_bytes(other)), a.cmp(&other));
            }
        }

        #[test]
        fn every_single_substitution_rejected(bytes in any::<[u8; 32]>()) {
            let text = DeviceId::from_bytes(bytes).text_chars();
            for position in 0..TEXT_CHARS {
                for &alt in ALPHABET.iter().filter(|&&c| c != text[position]) {
                    let mut changed = text;
                    changed[position] = alt;
                    let s = core::str::from_utf8(&changed).expect("ASCII");
                    prop_assert!(s.parse::<DeviceId>().is_err(), "accepted {}", s);
                }
            }
        }

        #[test]
        fn arbitrary_strings_never_panic(s in ".{0,80}") {
            let _ = s.parse::<DeviceId>();
        }

        #[test]
        fn near_valid_strings_never_panic(s in "[A-Za-z2-7 -]{40,70}") {
            let _ = s.parse::<DeviceId>();
        }
    }
}
