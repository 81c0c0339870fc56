//! Handshakes under load (WireGuard's cookies and rate limits). `mac1` keeps strangers
//! out (`stealth.rs`), but a genuine initiation can be captured and replayed from forged
//! source addresses, and a device of the mesh can flood: every answered initiation costs
//! the responder two X25519 operations and a half-finished handshake slot.
//!
//! So a responder counts the initiations with a valid `mac1`; beyond
//! [`CookieConfig::initiations_per_second`] it is **under load**, and then:
//!
//! - an initiation must also carry `mac2`, a MAC keyed by a **cookie**: a MAC of the
//!   sender's address under a secret the responder replaces every two minutes. One
//!   without a valid `mac2` gets a `CookieReply` carrying the cookie for its address
//!   (encrypted under a key bound to the initiation's `mac1`, so that only the sender of
//!   that initiation can read it) and nothing else: no X25519, no state. A forged source
//!   never sees the cookie, so its initiations stop there.
//! - initiations from one address that proved itself are limited to
//!   [`CookieConfig::per_source_per_second`] (with a burst), so that one device cannot take
//!   every slot.
//!
//! The initiator keeps the cookie for its lifetime and sends `mac2` with every initiation;
//! a `CookieReply` to an initiation that carried none starts a new attempt at once, so a
//! legitimate handshake costs one more round trip under load, not a retry interval.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::bounded::remove_least;
use crate::crypto::aead::CipherKey;
use crate::crypto::hash::hash;
use crate::identity::PublicKey;
use crate::time::Timestamp;
use crate::transport::stealth::{mac16, verify_mac16};
use crate::wire::{ENCRYPTED_COOKIE_BYTES, MAC_BYTES};

/// How long a responder's cookie secret lasts; cookies made under it and the one before
/// are accepted.
pub const COOKIE_SECRET_LIFETIME: Duration = Duration::from_secs(120);
/// How long an initiator uses a cookie (a little less than it is accepted).
pub const COOKIE_USE: Duration = Duration::from_secs(110);
/// Addresses whose rate the responder tracks at once; the least recent is forgotten.
const MAX_TRACKED_SOURCES: usize = 4096;

const COOKIE_KEY_LABEL: &[u8] = b"cnspr cookie";

/// When a responder asks for cookies, and how many initiations it takes per address then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieConfig {
    /// Initiations with a valid `mac1` in one second beyond which `mac2` is required.
    pub initiations_per_second: u32,
    /// Initiations per second one address may make while under load.
    pub per_source_per_second: u32,
    /// How many it may make at once beyond that rate.
    pub per_source_burst: u32,
}

impl Default for CookieConfig {
    fn default() -> Self {
        Self {
            // Far above what a mesh of personal devices makes, even all waking at once, and
            // half the half-finished handshakes kept: a flood below it leaves room.
            initiations_per_second: 32,
            per_source_per_second: 5,
            per_source_burst: 10,
        }
    }
}

/// A cookie: proof, for one address, that its sender receives what is sent there.
pub type Cookie = [u8; MAC_BYTES];

/// The responder's side: its load, its cookie secrets and the rate of each address.
#[derive(Debug)]
pub struct CookieGate {
    config: CookieConfig,
    /// The cookie secret and the one before it, once load made one.
    secrets: Option<([u8; 32], Option<[u8; 32]>)>,
    secret_since: Timestamp,
    window_start: Timestamp,
    in_window: u32,
    sources: BTreeMap<IpAddr, Bucket>,
}

/// What the gate says about an initiation whose `mac1` is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go on with the handshake.
    Admit,
    /// Answer with this cookie (encrypted) and nothing else.
    SendCookie(Cookie),
    /// Drop it: its address makes too many.
    Limited,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Allowance in microseconds of rate (one initiation costs `1s / rate`).
    allowance_micros: u64,
    updated: Timestamp,
}

fn address_bytes(address: &SocketAddr) -> Vec<u8> {
    let mut bytes = match address.ip() {
        IpAddr::V4(ip) => ip.octets().to_vec(),
        IpAddr::V6(ip) => ip.octets().to_vec(),
    };
    bytes.extend_from_slice(&address.port().to_le_bytes());
    bytes
}

impl CookieGate {
    /// A gate with no load yet.
    pub fn new(config: CookieConfig, now: Timestamp) -> Self {
        Self {
            config,
            secrets: None,
            secret_since: now,
            window_start: now,
            in_window: 0,
            sources: BTreeMap::new(),
        }
    }

    /// Decides on an initiation from `from` with a valid `mac1`, whose `mac2` (over
    /// `covered`) is `mac2`. `fresh_secret` gives random bytes when a new cookie secret is
    /// due.
    pub fn admit(
        &mut self,
        now: Timestamp,
        from: &SocketAddr,
        covered: &[u8],
        mac2: &[u8; MAC_BYTES],
        fresh_secret: impl FnOnce() -> [u8; 32],
    ) -> Admission {
        if now.saturating_since(self.window_start) >= Duration::from_secs(1) {
            self.window_start = now;
            self.in_window = 0;
        }
        self.in_window = self.in_window.saturating_add(1);
        if self.in_window <= self.config.initiations_per_second {
            return Admission::Admit;
        }
        let (current, previous) = self.rotate(now, fresh_secret);
        let address = address_bytes(from);
        let proven = std::iter::once(current)
            .chain(previous)
            .fold(false, |any, secret| {
                verify_mac16(&mac2_key(&mac16(&secret, &address)), covered, mac2) | any
            });
        if !proven {
            return Admission::SendCookie(mac16(&current, &address));
        }
        if self.take(now, from.ip()) {
            Admission::Admit
        } else {
            Admission::Limited
        }
    }

    /// The cookie secrets in force (a new one when the current one has lasted its time).
    fn rotate(
        &mut self,
        now: Timestamp,
        fresh_secret: impl FnOnce() -> [u8; 32],
    ) -> ([u8; 32], Option<[u8; 32]>) {
        let secrets = match self.secrets {
            Some((current, previous)) if now.saturating_since(self.secret_since) < COOKIE_SECRET_LIFETIME => {
                (current, previous)
            }
            kept => {
                // The one before stays good for one more lifetime, not after a quiet spell.
                let recent = now.saturating_since(self.secret_since) < 2 * COOKIE_SECRET_LIFETIME;
                self.secret_since = now;
                let previous = kept.filter(|_| recent).map(|(current, _)| current);
                (fresh_secret(), previous)
            }
        };
        self.secrets = Some(secrets);
        secrets
    }

    /// One initiation from `source` against its bucket.
    fn take(&mut self, now: Timestamp, source: IpAddr) -> bool {
        let cost = 1_000_000 / u64::from(self.config.per_source_per_second.max(1));
        let full = cost.saturating_mul(u64::from(self.config.per_source_burst.max(1)));
        if !self.sources.contains_key(&source) && self.sources.len() >= MAX_TRACKED_SOURCES {
            remove_least(&mut self.sources, |bucket| bucket.updated);
        }
        let bucket = self.sources.entry(source).or_insert(Bucket {
            allowance_micros: full,
            updated: now,
        });
        let earned = now.saturating_since(bucket.updated).as_micros() as u64;
        bucket.allowance_micros = bucket.allowance_micros.saturating_add(earned).min(full);
        bucket.updated = now;
        if bucket.allowance_micros < cost {
            return false;
        }
        bucket.allowance_micros -= cost;
        true
    }
}

/// The key of `mac2` for a cookie.
pub fn mac2_key(cookie: &Cookie) -> [u8; 32] {
    hash(&[b"cnspr mac2", cookie])
}

/// Writes an encoded initiation's `mac2` (its last bytes) with `cookie`.
pub fn seal_mac2(cookie: &Cookie, datagram: &mut [u8]) {
    let covered = datagram.len().saturating_sub(MAC_BYTES);
    let tag = mac16(&mac2_key(cookie), &datagram[..covered]);
    datagram[covered..].copy_from_slice(&tag);
}

/// The key a `CookieReply` to an initiation to `responder` with `mac1` is encrypted under:
/// only who sent (or saw) that initiation can read it.
fn reply_key(responder: &PublicKey, mac1: &[u8; MAC_BYTES]) -> CipherKey {
    CipherKey::new(&hash(&[COOKIE_KEY_LABEL, &responder.0, mac1]))
}

/// The encrypted cookie of a `CookieReply` from `responder` to the initiation with `mac1`.
pub fn seal_cookie(responder: &PublicKey, mac1: &[u8; MAC_BYTES], cookie: &Cookie) -> Vec<u8> {
    let mut sealed = Vec::with_capacity(ENCRYPTED_COOKIE_BYTES);
    // The nonce is fixed: a key serves the replies to one initiation. (A replayed one from
    // many addresses gets several under one key; whoever saw its mac1 could read them all
    // anyway, so the encryption only keeps cookies from those who never saw the
    // initiation, as WireGuard's does.)
    reply_key(responder, mac1).seal(0, &[], cookie, &mut sealed);
    sealed
}

/// The cookie a `CookieReply` from `responder` carries, if it answers our initiation with
/// `mac1`.
pub fn open_cookie(responder: &PublicKey, mac1: &[u8; MAC_BYTES], sealed: &[u8]) -> Option<Cookie> {
    let opened = reply_key(responder, mac1).open(0, &[], sealed).ok()?;
    opened.try_into().ok()
}
