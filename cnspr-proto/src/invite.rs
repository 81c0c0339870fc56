//! Invite tokens: what `cnspr invite` prints and `cnspr join` takes.
//!
//! A token names the inviting device (its ID, so the joiner can check the key the
//! handshake proves), where to reach it, a public token ID (which PSK to use) and a
//! 256-bit secret: the PSK of the `XXpsk3` pairing handshake. It is base32 text behind a
//! `CNSPR1` prefix (only characters a QR code's alphanumeric mode carries), with a
//! checksum so that a mistyped token is caught before any packet is sent.
//!
//! Layout before base32: version 3 (2 had no anchors; 1 named an inviter by its X25519
//! key), inviter (32), token ID (16), secret (32), expiry in Unix seconds (8,
//! little-endian), address count (1), each address as family (4 or 6), IP (4 or 16) and
//! port (2, big-endian), then (version 3) anchor count (1) and each anchor as its length
//! (1) and its text (`home.example.org:3030`), then 4 bytes of BLAKE2s over everything
//! before. A token without anchors is written as version 2, which older programs take.

use std::net::SocketAddr;

use zeroize::Zeroize;

use crate::anchor::{Anchor, MAX_ANCHORS};
use crate::crypto::hash::hash;
use crate::identity::DeviceId;
use crate::wire::ip::{put_ip, take_ip};

const PREFIX: &str = "CNSPR1";
/// The version of a token with anchors.
const VERSION: u8 = 3;
/// The version of a token without: the same layout, without the anchor count.
const VERSION_WITHOUT_ANCHORS: u8 = 2;
const CHECKSUM_BYTES: usize = 4;
/// Most addresses a token carries.
pub const MAX_INVITE_ADDRESSES: usize = 8;

/// A pairing invitation.
#[derive(Clone, PartialEq, Eq)]
pub struct InviteToken {
    /// The inviting device.
    pub inviter: DeviceId,
    /// Where it listens.
    pub addresses: Vec<SocketAddr>,
    /// Names it is reached at from anywhere (its static anchors), looked up by the joiner.
    pub anchors: Vec<Anchor>,
    /// Names the invite on the wire (public).
    pub token_id: [u8; 16],
    /// The pairing handshake's pre-shared key (secret).
    pub secret: [u8; 32],
    /// When the inviter stops accepting it, in Unix seconds (shown to the joiner; the
    /// inviter enforces its own deadline).
    pub expires_unix_secs: u64,
}

impl Drop for InviteToken {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

impl std::fmt::Debug for InviteToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InviteToken")
            .field("inviter", &self.inviter)
            .field("addresses", &self.addresses)
            .field("anchors", &self.anchors)
            .field("expires_unix_secs", &self.expires_unix_secs)
            .finish_non_exhaustive()
    }
}

/// Why a token text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    /// It does not start with `CNSPR1`.
    #[error("not a cnspr invite token (it should start with {PREFIX})")]
    NotAToken,
    /// Not valid base32, or cut short.
    #[error("the invite token is damaged or incomplete")]
    Damaged,
    /// The checksum does not match: a typo.
    #[error("the invite token has a typo (its checksum does not match)")]
    Checksum,
    /// A token version this program does not know.
    #[error("invite token version {0} is not supported (this program makes and takes version {VERSION})")]
    Version(u8),
    /// The inviter's ID names no device key: no handshake could prove it.
    #[error("the invite token names no device (its inviter ID is not a device key)")]
    NotADevice,
}

impl InviteToken {
    /// The token as text.
    pub fn encode(&self) -> String {
        let anchors = &self.anchors[..self.anchors.len().min(MAX_ANCHORS)];
        let version = if anchors.is_empty() {
            VERSION_WITHOUT_ANCHORS
        } else {
            VERSION
        };
        let mut bytes = vec![version];
        bytes.extend_from_slice(self.inviter.as_bytes());
        bytes.extend_from_slice(&self.token_id);
        bytes.extend_from_slice(&self.secret);
        bytes.extend_from_slice(&self.expires_unix_secs.to_le_bytes());
        let addresses = &self.addresses[..self.addresses.len().min(MAX_INVITE_ADDRESSES)];
        bytes.push(addresses.len() as u8);
        for address in addresses {
            put_ip(&mut bytes, address.ip());
            bytes.extend_from_slice(&address.port().to_be_bytes());
        }
        if !anchors.is_empty() {
            bytes.push(anchors.len() as u8);
            for anchor in anchors {
                // At most 255 bytes (`anchor::MAX_ANCHOR_BYTES`): one length byte.
                let text = anchor.to_string();
                bytes.push(text.len() as u8);
                bytes.extend_from_slice(text.as_bytes());
            }
        }
        let checksum = hash(&[b"cnspr invite", &bytes]);
        bytes.extend_from_slice(&checksum[..CHECKSUM_BYTES]);
        let text = format!("{PREFIX}{}", data_encoding::BASE32_NOPAD.encode(&bytes));
        bytes.zeroize();
        text
    }

    /// Parses a token; case and surrounding white space do not matter.
    pub fn decode(text: &str) -> Result<Self, InviteError> {
        let text = text.trim().to_ascii_uppercase();
        let body = text.strip_prefix(PREFIX).ok_or(InviteError::NotAToken)?;
        let mut bytes = data_encoding::BASE32_NOPAD
            .decode(body.as_bytes())
            .map_err(|_| InviteError::Damaged)?;
        let result = Self::parse(&bytes);
        bytes.zeroize();
        result
    }

    fn parse(bytes: &[u8]) -> Result<Self, InviteError> {
        let split = bytes
            .len()
            .checked_sub(CHECKSUM_BYTES)
            .ok_or(InviteError::Damaged)?;
        let (content, checksum) = bytes.split_at(split);
        if hash(&[b"cnspr invite", content])[..CHECKSUM_BYTES] != *checksum {
            return Err(InviteError::Checksum);
        }
        let mut reader = Reader(content);
        let version = reader.array::<1>()?[0];
        if version != VERSION && version != VERSION_WITHOUT_ANCHORS {
            return Err(InviteError::Version(version));
        }
        let inviter = DeviceId::from_bytes(reader.array()?);
        if inviter.noise_key().is_none() {
            return Err(InviteError::NotADevice);
        }
        let token_id = reader.array()?;
        let secret = reader.array()?;
        let expires_unix_secs = u64::from_le_bytes(reader.array()?);
        let count = usize::from(reader.array::<1>()?[0]);
        if count > MAX_INVITE_ADDRESSES {
            return Err(InviteError::Damaged);
        }
        let mut addresses = Vec::with_capacity(count);
        for _ in 0..count {
            let (ip, rest) = take_ip(reader.0).ok_or(InviteError::Damaged)?;
            reader.0 = rest;
            let port = u16::from_be_bytes(reader.array()?);
            addresses.push(SocketAddr::new(ip, port));
        }
        let mut anchors = Vec::new();
        if version == VERSION {
            let count = usize::from(reader.array::<1>()?[0]);
            if count > MAX_ANCHORS {
                return Err(InviteError::Damaged);
            }
            for _ in 0..count {
                let len = usize::from(reader.array::<1>()?[0]);
                let text = reader.bytes(len)?;
                let anchor = std::str::from_utf8(text)
                    .ok()
                    .and_then(|text| text.parse().ok())
                    .ok_or(InviteError::Damaged)?;
                anchors.push(anchor);
            }
        }
        if !reader.0.is_empty() {
            return Err(InviteError::Damaged);
        }
        Ok(Self {
            inviter,
            addresses,
            anchors,
            token_id,
            secret,
            expires_unix_secs,
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn array<const N: usize>(&mut self) -> Result<[u8; N], InviteError> {
        let (head, rest) = self.0.split_at_checked(N).ok_or(InviteError::Damaged)?;
        self.0 = rest;
        head.try_into().map_err(|_| InviteError::Damaged)
    }

    fn bytes(&mut self, n: usize) -> Result<&[u8], InviteError> {
        let (head, rest) = self.0.split_at_checked(n).ok_or(InviteError::Damaged)?;
        self.0 = rest;
        Ok(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn token() -> InviteToken {
        InviteToken {
            inviter: crate::identity::DeviceKey::from_seed([3; 32]).device_id(),
            addresses: vec![
                "192.0.2.1:3030".parse().expect("valid"),
                "[2001:db8::1]:3031".parse().expect("valid"),
            ],
            anchors: vec!["home.example.org:3030".parse().expect("valid")],
            token_id: [4; 16],
            secret: [5; 32],
            expires_unix_secs: 1_800_000_000,
        }
    }

    #[test]
    fn round_trips_in_any_case() {
        let text = token().encode();
        assert!(text.starts_with(PREFIX));
        assert_eq!(InviteToken::decode(&text), Ok(token()));
        assert_eq!(
            InviteToken::decode(&format!(" {} \n", text.to_lowercase())),
            Ok(token())
        );
    }

    #[test]
    fn every_typo_is_caught() {
        let text = token().encode();
        for position in PREFIX.len()..text.len() {
            let mut typo = text.clone().into_bytes();
            typo[position] = if typo[position] == b'A' { b'B' } else { b'A' };
            let typo = String::from_utf8(typo).expect("ASCII");
            assert!(InviteToken::decode(&typo).is_err(), "typo at {position} accepted");
        }
        assert_eq!(InviteToken::decode("hello"), Err(InviteError::NotAToken));
        assert!(InviteToken::decode(&text[..text.len() - 3]).is_err());
    }

    #[test]
    fn a_token_naming_no_device_or_of_another_version_is_refused() {
        let mut no_device = token();
        no_device.inviter = DeviceId::from_bytes([0xff; 32]);
        assert_eq!(
            InviteToken::decode(&no_device.encode()),
            Err(InviteError::NotADevice)
        );
        let mut bytes = data_encoding::BASE32_NOPAD
            .decode(&token().encode().as_bytes()[PREFIX.len()..])
            .expect("base32");
        bytes[0] = 1;
        let split = bytes.len() - CHECKSUM_BYTES;
        let checksum = hash(&[b"cnspr invite", &bytes[..split]]);
        bytes[split..].copy_from_slice(&checksum[..CHECKSUM_BYTES]);
        let old = format!("{PREFIX}{}", data_encoding::BASE32_NOPAD.encode(&bytes));
        assert_eq!(InviteToken::decode(&old), Err(InviteError::Version(1)));
    }

    #[test]
    fn the_longest_anchor_travels_in_a_token() {
        let labels = vec!["b".repeat(63); 4].join(".");
        let mut long = token();
        long.anchors = (0..MAX_ANCHORS)
            .map(|n| {
                format!("{}:{}", &labels[..250], n + 1)
                    .parse()
                    .expect("an anchor")
            })
            .collect();
        assert_eq!(InviteToken::decode(&long.encode()), Ok(long));
    }

    #[test]
    fn a_token_without_anchors_is_a_version_2_token() {
        let mut plain = token();
        plain.anchors.clear();
        let text = plain.encode();
        let bytes = data_encoding::BASE32_NOPAD
            .decode(&text.as_bytes()[PREFIX.len()..])
            .expect("base32");
        assert_eq!(bytes[0], VERSION_WITHOUT_ANCHORS);
        assert_eq!(InviteToken::decode(&text), Ok(plain));
        assert!(token().encode().len() > text.len());
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(body in "[A-Z2-7]{0,300}") {
            let _ = InviteToken::decode(&format!("{PREFIX}{body}"));
        }
    }
}
