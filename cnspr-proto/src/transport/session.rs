//! The keys one device holds for one peer, and when to replace them.
//!
//! Up to three sets of keys live at once (WireGuard's scheme, adapted to the three-message
//! `XX` handshake):
//!
//! - `current`: what we seal with.
//! - `previous`: the keys `current` replaced, still accepted for packets in flight.
//! - `unconfirmed`: keys from a handshake this device started, which the peer may not have
//!   yet (its last handshake message can be lost). We receive with them but keep sealing
//!   with `current` until a packet from the peer authenticates under them.
//!
//! Keys are replaced after [`SessionConfig::rekey_after`] or
//! [`SessionConfig::rekey_after_messages`], and refused altogether after
//! [`SessionConfig::reject_after`].

use std::time::Duration;

use crate::crypto::aead::OpenError;
use crate::time::Timestamp;
use crate::transport::keys::{SealError, TransportKeys, HARD_REJECT_AFTER_MESSAGES};

/// Key lifetimes. Defaults are WireGuard's timers.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Age after which the pair's first device (the lower X25519 key) replaces the keys.
    pub rekey_after: Duration,
    /// Extra age after which the other device replaces them, if the first did not.
    pub second_rekey_delay: Duration,
    /// Age after which keys are refused for sending and receiving.
    pub reject_after: Duration,
    /// Messages after which keys are replaced.
    pub rekey_after_messages: u64,
    /// Messages after which keys refuse to seal (never above
    /// [`HARD_REJECT_AFTER_MESSAGES`]).
    pub reject_after_messages: u64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            rekey_after: Duration::from_secs(120),
            second_rekey_delay: Duration::from_secs(30),
            reject_after: Duration::from_secs(180),
            rekey_after_messages: 1 << 60,
            reject_after_messages: HARD_REJECT_AFTER_MESSAGES,
        }
    }
}

/// Which of a session's key sets a packet opened under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySlot {
    /// The keys we seal with.
    Current,
    /// The keys before those.
    Previous,
    /// Keys from our own handshake that the peer has now confirmed: they became current.
    Confirmed,
}

/// A key set, boxed: most peers of a large mesh hold none, and an empty slot should cost
/// a pointer, not a kilobyte of replay window.
type Slot = Option<Box<TransportKeys>>;

/// All keys this device holds for one peer.
#[derive(Debug, Default)]
pub struct Session {
    current: Slot,
    previous: Slot,
    unconfirmed: Slot,
    /// Indices of keys pushed out by newer ones, for the owner to forget.
    evicted: Vec<u32>,
}

impl Session {
    /// Makes confirmed keys current; the current ones become previous.
    pub fn install_confirmed(&mut self, keys: TransportKeys) {
        self.make_current(Box::new(keys));
    }

    fn make_current(&mut self, keys: Box<TransportKeys>) {
        let replaced = std::mem::replace(&mut self.previous, self.current.replace(keys));
        self.evict(replaced);
    }

    /// Holds keys from a handshake we started until the peer confirms them.
    pub fn install_unconfirmed(&mut self, keys: TransportKeys) {
        let replaced = self.unconfirmed.replace(Box::new(keys));
        self.evict(replaced);
    }

    fn evict(&mut self, keys: Slot) {
        if let Some(keys) = keys {
            self.evicted.push(keys.local_index());
        }
    }

    /// Indices of keys that newer keys pushed out since the last call: no packet will
    /// be accepted under them any more.
    pub fn take_evicted(&mut self) -> Vec<u32> {
        std::mem::take(&mut self.evicted)
    }

    /// The keys we would seal with now, if any may still be used.
    pub fn current(&self, now: Timestamp, config: &SessionConfig) -> Option<&TransportKeys> {
        self.current.as_deref().filter(|keys| usable(keys, now, config))
    }

    /// Appends a Data packet carrying `payload` sealed under the current keys.
    pub fn seal(
        &mut self,
        now: Timestamp,
        config: &SessionConfig,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), SealError> {
        match self
            .current
            .as_deref_mut()
            .filter(|keys| usable(keys, now, config))
        {
            Some(keys) => keys.seal(payload, out, config.reject_after_messages),
            None => Err(SealError::NoUsableKeys),
        }
    }

    /// Opens a Data packet addressed to `local_index`. On success, returns the plaintext
    /// length and which keys opened it; on failure nothing changed.
    pub fn open(
        &mut self,
        now: Timestamp,
        config: &SessionConfig,
        local_index: u32,
        counter: u64,
        ciphertext: &mut [u8],
    ) -> Result<(usize, KeySlot), OpenError> {
        let fresh =
            |keys: &&mut TransportKeys| keys.local_index() == local_index && !expired(keys, now, config);
        if let Some(keys) = self.current.as_deref_mut().filter(fresh) {
            return Ok((keys.open(counter, ciphertext)?, KeySlot::Current));
        }
        if let Some(keys) = self.previous.as_deref_mut().filter(fresh) {
            return Ok((keys.open(counter, ciphertext)?, KeySlot::Previous));
        }
        let keys = self.unconfirmed.as_deref_mut().filter(fresh).ok_or(OpenError)?;
        let len = keys.open(counter, ciphertext)?;
        if let Some(confirmed) = self.unconfirmed.take() {
            self.make_current(confirmed);
        }
        Ok((len, KeySlot::Confirmed))
    }

    /// Whether this device should start a handshake to replace its keys: it has none that
    /// work, or its current ones are old or worn by now. `first`: this device is the one of
    /// the pair that replaces keys on time, the other only if that did not happen. The
    /// pair's order, not who started the last handshake, decides it: two devices that
    /// started handshakes to each other at once both hold keys they initiated, and would
    /// otherwise both start a rekey at once, every time, for good (twice the handshakes
    /// of an idle mesh).
    pub fn needs_rekey(&self, now: Timestamp, config: &SessionConfig, first: bool) -> bool {
        let Some(keys) = self.current(now, config) else {
            return true;
        };
        let rekey_age = if first {
            config.rekey_after
        } else {
            config.rekey_after + config.second_rekey_delay
        };
        now.saturating_since(keys.created()) >= rekey_age || keys.sent() >= config.rekey_after_messages
    }

    /// Whether any keys (current, previous or unconfirmed) use `local_index`.
    pub fn owns_index(&self, local_index: u32) -> bool {
        self.slots().any(|keys| keys.local_index() == local_index)
    }

    /// Drops every key set past its rejection age and returns the indices they used, so
    /// the caller can forget them.
    pub fn expire(&mut self, now: Timestamp, config: &SessionConfig) -> Vec<u32> {
        let mut freed = Vec::new();
        for slot in [&mut self.current, &mut self.previous, &mut self.unconfirmed] {
            if slot.as_ref().is_some_and(|keys| expired(keys, now, config)) {
                if let Some(keys) = slot.take() {
                    freed.push(keys.local_index());
                }
            }
        }
        freed
    }

    /// The earliest time at which [`Session::expire`] has something to drop.
    pub fn next_expiry(&self, config: &SessionConfig) -> Option<Timestamp> {
        self.slots()
            .map(|keys| keys.created() + config.reject_after)
            .min()
    }

    /// Replaces all keys with none (the peer was removed or restarted); returns their indices.
    pub fn clear(&mut self) -> Vec<u32> {
        let mut freed: Vec<u32> = self.slots().map(TransportKeys::local_index).collect();
        freed.append(&mut self.evicted);
        *self = Session::default();
        freed
    }

    fn slots(&self) -> impl Iterator<Item = &TransportKeys> {
        [&self.current, &self.previous, &self.unconfirmed]
            .into_iter()
            .filter_map(|slot| slot.as_deref())
    }
}

fn expired(keys: &TransportKeys, now: Timestamp, config: &SessionConfig) -> bool {
    now.saturating_since(keys.created()) >= config.reject_after
}

fn usable(keys: &TransportKeys, now: Timestamp, config: &SessionConfig) -> bool {
    !expired(keys, now, config) && keys.sent() < config.reject_after_messages.min(HARD_REJECT_AFTER_MESSAGES)
}
