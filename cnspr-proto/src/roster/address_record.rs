//! Address records: where each device can be reached, kept in the replicated store under
//! [`ADDRESS_PREFIX`] beside the roster, so that meeting any one device brings everyone's
//! latest addresses (a catch-up carries them like any key).
//!
//! A device writes only its own record, and signs it: a reader takes in a record only
//! with the signature of the device its key names ([`AddressRecord::verified`]), so a
//! device of the roster, stolen or not, can neither send the others to an address of its
//! choosing nor hide a device's addresses behind a version far ahead (a forged sibling is
//! not believed, and the device's next record replaces its own).
//!
//! A record also carries the device's static anchors (`anchor.rs`): names the others look
//! up when they cannot reach it.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use crate::anchor::{Anchor, MAX_ANCHORS, MAX_HOST_BYTES};
use crate::crypto::hash::{hash, Hash};
use crate::identity::{DeviceId, DeviceKey, Signature, SIGNATURE_BYTES};
use crate::wire::cbor::{self, CborError};
use crate::wire::ip::put_ip;

/// The store's namespace for address records; applications cannot write under it.
pub const ADDRESS_PREFIX: &str = "_addr/";

/// Most candidates a record holds (a device with more interfaces publishes its best): as
/// many as an initiation goes to.
pub use crate::transport::MAX_CANDIDATES;

/// Largest encoded record: every candidate an IPv6 address with its port, every anchor
/// the longest name, the signature.
const MAX_RECORD_BYTES: usize =
    48 + MAX_CANDIDATES * 40 + MAX_ANCHORS * (MAX_HOST_BYTES + 12) + SIGNATURE_BYTES + 16;

/// What a device's signature of its own record is over.
const RECORD_LABEL: &[u8] = b"cnspr addresses v1";

/// One device's addresses, as it wrote and signed them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressRecord {
    /// Grows with every record the device writes (a reader keeps the greatest it can
    /// verify).
    pub version: u64,
    /// Where it can be reached, best first.
    pub candidates: Vec<SocketAddr>,
    /// Names it is reached at from anywhere, looked up when it cannot be reached.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub anchors: Vec<Anchor>,
    /// The device's signature of the version and the candidates.
    pub signature: Signature,
}

/// The store key of `device`'s address record.
pub fn address_key(device: &DeviceId) -> String {
    format!("{ADDRESS_PREFIX}{device}")
}

/// The device a store key names, if it is an address record's key.
pub fn address_device(key: &str) -> Option<DeviceId> {
    key.strip_prefix(ADDRESS_PREFIX)?.parse().ok()
}

/// The addresses of `candidates` worth telling the mesh, best first: LAN addresses
/// (private IPv4, unique-local IPv6), then global IPv6, then other IPv4; loopback only
/// when there is nothing else (devices on one machine). At most [`MAX_CANDIDATES`], each
/// once.
pub fn publishable(candidates: &[SocketAddr]) -> Vec<SocketAddr> {
    let elsewhere = candidates.iter().any(|a| !a.ip().is_loopback());
    let mut ranked = candidates.to_vec();
    ranked.sort_by_key(|candidate| rank(candidate.ip()));
    let mut chosen: Vec<SocketAddr> = Vec::new();
    for candidate in &ranked {
        let ip = candidate.ip();
        let unusable = ip.is_unspecified() || (elsewhere && ip.is_loopback());
        if !unusable && !chosen.contains(candidate) && chosen.len() < MAX_CANDIDATES {
            chosen.push(*candidate);
        }
    }
    chosen
}

/// Where an address stands in the order tried: a nearer path first.
fn rank(ip: IpAddr) -> u8 {
    match ip {
        _ if ip.is_loopback() => 3,
        IpAddr::V4(v4) if v4.is_private() => 0,
        IpAddr::V6(v6) if v6.is_unique_local() => 0,
        IpAddr::V6(_) => 1,
        IpAddr::V4(_) => 2,
    }
}

fn record_digest(device: &DeviceId, version: u64, candidates: &[SocketAddr], anchors: &[Anchor]) -> Hash {
    let mut addresses = Vec::with_capacity(candidates.len() * 19);
    for candidate in candidates {
        put_ip(&mut addresses, candidate.ip());
        addresses.extend_from_slice(&candidate.port().to_le_bytes());
    }
    // A record without anchors signs what records signed before there were any.
    let mut names = Vec::new();
    for anchor in anchors {
        let text = anchor.to_string();
        names.extend_from_slice(&(text.len() as u16).to_le_bytes());
        names.extend_from_slice(text.as_bytes());
    }
    hash(&[
        RECORD_LABEL,
        device.as_bytes(),
        &version.to_le_bytes(),
        &addresses,
        &names,
    ])
}

impl AddressRecord {
    /// The record of the device of `key`, signed by it.
    pub fn signed(key: &DeviceKey, version: u64, candidates: Vec<SocketAddr>, anchors: Vec<Anchor>) -> Self {
        let digest = record_digest(&key.device_id(), version, &candidates, &anchors);
        Self {
            version,
            signature: key.sign(&digest),
            candidates,
            anchors,
        }
    }

    /// Whether `device` signed this record, and it is within bounds.
    pub fn verified(&self, device: &DeviceId) -> bool {
        self.candidates.len() <= MAX_CANDIDATES
            && self.anchors.len() <= MAX_ANCHORS
            && device.verifies(
                &record_digest(device, self.version, &self.candidates, &self.anchors),
                &self.signature,
            )
    }

    /// The value's bytes.
    pub fn encode(&self) -> Result<Vec<u8>, CborError> {
        cbor::encode(self)
    }

    /// Parses a value written by any device; never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self, CborError> {
        cbor::decode_bounded(bytes, MAX_RECORD_BYTES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(text: &str) -> SocketAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn only_the_device_itself_writes_a_record_that_is_believed() {
        let key = DeviceKey::from_seed([3; 32]);
        let device = key.device_id();
        let candidates = vec![address("192.0.2.2:3030"), address("[2001:db8::2]:3030")];
        let anchors = vec!["home.example.org:3030".parse().expect("an anchor")];
        let record = AddressRecord::signed(&key, 7, candidates.clone(), anchors);
        let decoded = AddressRecord::decode(&record.encode().expect("encodes")).expect("decodes");
        assert_eq!(decoded, record);
        assert!(decoded.verified(&device));
        // Another device's key, another version, another address: not believed.
        let thief = DeviceKey::from_seed([4; 32]);
        assert!(!AddressRecord::signed(&thief, 7, candidates.clone(), Vec::new()).verified(&device));
        let ahead = AddressRecord {
            version: u64::MAX,
            ..record.clone()
        };
        assert!(!ahead.verified(&device));
        let elsewhere = AddressRecord {
            candidates: vec![address("203.0.113.66:3030")],
            ..record.clone()
        };
        assert!(!elsewhere.verified(&device));
        let renamed = AddressRecord {
            anchors: vec!["thief.example.net:3030".parse().expect("an anchor")],
            ..record
        };
        assert!(!renamed.verified(&device));
        assert_eq!(address_device(&address_key(&device)), Some(device));
        assert_eq!(address_device("_roster/x"), None);
    }

    #[test]
    fn loopback_is_published_only_when_there_is_nothing_else() {
        let lan = address("192.0.2.2:3030");
        let loopback = address("127.0.0.1:3030");
        assert_eq!(publishable(&[lan, loopback, lan]), vec![lan]);
        let home = address("192.168.1.20:3030");
        let global = address("[2001:db8::20]:3030");
        assert_eq!(
            publishable(&[loopback, lan, global, home]),
            vec![home, global, lan]
        );
        assert_eq!(publishable(&[loopback]), vec![loopback]);
        let many: Vec<SocketAddr> = (1..=20).map(|n| address(&format!("192.0.2.{n}:3030"))).collect();
        assert_eq!(publishable(&many).len(), MAX_CANDIDATES);
    }

    #[test]
    fn decoding_anything_never_panics_and_is_bounded() {
        for bytes in [&[][..], &[0xff; 4][..], &[0xa3, 0x01][..], &vec![0x42; 4096][..]] {
            let _ = AddressRecord::decode(bytes);
        }
        assert!(AddressRecord::decode(&vec![0; MAX_RECORD_BYTES + 1]).is_err());
    }
}
