//! Noise's `HandshakeState` (§5.3) for the `XX` and `XXpsk3` patterns.
//!
//! ```text
//! XX:                    XXpsk3:
//!   -> e                   -> e
//!   <- e, ee, s, es        <- e, ee, s, es
//!   -> s, se               -> s, se, psk
//! ```
//!
//! Reading a message works on a copy of the state and commits only on success: a message
//! that fails to decrypt or parse changes nothing (snow advisory GHSA-7g9j-g5jg-3vv3).

use zeroize::Zeroize;

use super::symmetric::SymmetricState;
use super::DH_BYTES;
use crate::crypto::aead::TAG_BYTES;
use crate::crypto::hash::Hash;
use crate::identity::{PublicKey, StaticKeypair};

/// Which handshake pattern runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    /// Mutual authentication by static keys both sides already trust.
    XX,
    /// `XX` with a pre-shared secret mixed in after the third message: pairing with an
    /// invite token, where the inviter does not yet know the joiner's key.
    XXpsk3,
}

impl Pattern {
    /// The full Noise protocol name, which is hashed into the initial state.
    pub fn protocol_name(self) -> &'static str {
        match self {
            Pattern::XX => "Noise_XX_25519_ChaChaPoly_BLAKE2s",
            Pattern::XXpsk3 => "Noise_XXpsk3_25519_ChaChaPoly_BLAKE2s",
        }
    }

    fn messages(self) -> &'static [&'static [Token]] {
        use Token::{Psk, E, S};
        const EE: Token = Token::Dh(Dh::EE);
        const ES: Token = Token::Dh(Dh::ES);
        const SE: Token = Token::Dh(Dh::SE);
        match self {
            Pattern::XX => &[&[E], &[E, EE, S, ES], &[S, SE]],
            Pattern::XXpsk3 => &[&[E], &[E, EE, S, ES], &[S, SE, Psk]],
        }
    }

    fn uses_psk(self) -> bool {
        matches!(self, Pattern::XXpsk3)
    }
}

/// Which side of the handshake this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sends the first message.
    Initiator,
    /// Answers it.
    Responder,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    E,
    S,
    Dh(Dh),
    Psk,
}

/// The Diffie-Hellman tokens: which of our keys (first letter, from the initiator's view)
/// meets which of theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dh {
    EE,
    ES,
    SE,
}

/// Why a handshake message could not be written or read. In every case the handshake's
/// state is unchanged, so a valid message can still follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The pattern says the other side speaks next (or the handshake is over).
    #[error("not this side's turn to {0} a handshake message")]
    OutOfTurn(&'static str),
    /// The message is shorter than its pattern requires.
    #[error("handshake message too short: {got} bytes, need at least {need}")]
    TooShort {
        /// Bytes received.
        got: usize,
        /// Bytes the pattern requires before the payload.
        need: usize,
    },
    /// A field or the payload did not authenticate.
    #[error("handshake message failed authentication")]
    Decrypt,
    /// A Diffie-Hellman result was all zeros: the peer sent a low-order point.
    #[error("peer sent a low-order public key")]
    LowOrderKey,
    /// The handshake has not finished, so no transport keys exist yet.
    #[error("handshake not finished")]
    NotFinished,
}

/// The secrets a finished handshake hands to the transport layer.
pub struct TransportSecrets {
    /// Key for messages this side sends.
    pub send_key: [u8; 32],
    /// Key for messages this side receives.
    pub receive_key: [u8; 32],
    /// The final handshake hash, unique to this handshake (Noise's channel binding).
    pub handshake_hash: Hash,
    /// The peer's static public key, authenticated by the handshake.
    pub remote_static: PublicKey,
}

impl Drop for TransportSecrets {
    fn drop(&mut self) {
        self.send_key.zeroize();
        self.receive_key.zeroize();
    }
}

/// One Noise handshake in progress.
#[derive(Clone)]
pub struct Handshake {
    pattern: Pattern,
    role: Role,
    symmetric: SymmetricState,
    local_static: StaticKeypair,
    local_ephemeral: StaticKeypair,
    remote_static: Option<PublicKey>,
    remote_ephemeral: Option<[u8; DH_BYTES]>,
    psk: Option<[u8; 32]>,
    next_message: usize,
}

impl Drop for Handshake {
    fn drop(&mut self) {
        if let Some(psk) = &mut self.psk {
            psk.zeroize();
        }
    }
}

impl Handshake {
    /// Starts a handshake. `ephemeral_secret` must be fresh random bytes (the core draws
    /// them from its seeded [`crate::rng::Rng`]); `psk` is required for
    /// [`Pattern::XXpsk3`] and ignored otherwise.
    pub fn new(
        pattern: Pattern,
        role: Role,
        prologue: &[u8],
        local_static: StaticKeypair,
        ephemeral_secret: [u8; 32],
        psk: Option<[u8; 32]>,
    ) -> Self {
        let mut symmetric = SymmetricState::new(pattern.protocol_name().as_bytes());
        symmetric.mix_hash(prologue);
        Self {
            pattern,
            role,
            symmetric,
            local_static,
            local_ephemeral: StaticKeypair::from_secret_bytes(ephemeral_secret),
            remote_static: None,
            remote_ephemeral: None,
            psk: if pattern.uses_psk() { psk } else { None },
            next_message: 0,
        }
    }

    /// Whether every message of the pattern has been written or read.
    pub fn is_finished(&self) -> bool {
        self.next_message >= self.pattern.messages().len()
    }

    /// Whether this side writes the next message.
    pub fn is_my_turn(&self) -> bool {
        let initiator_turn = self.next_message % 2 == 0;
        !self.is_finished() && (initiator_turn == (self.role == Role::Initiator))
    }

    /// The peer's static key once the handshake has revealed it.
    pub fn remote_static(&self) -> Option<PublicKey> {
        self.remote_static
    }

    /// The running handshake hash.
    pub fn handshake_hash(&self) -> Hash {
        self.symmetric.handshake_hash()
    }

    /// Which side this is.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Which pattern this runs.
    pub fn pattern(&self) -> Pattern {
        self.pattern
    }

    /// Appends the next handshake message, carrying `payload`, to `out`.
    pub fn write_message(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), HandshakeError> {
        if !self.is_my_turn() {
            return Err(HandshakeError::OutOfTurn("write"));
        }
        let start = out.len();
        let mut next = self.clone();
        if let Err(error) = next.write_tokens(payload, out) {
            out.truncate(start);
            return Err(error);
        }
        *self = next;
        Ok(())
    }

    fn write_tokens(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), HandshakeError> {
        for token in self.pattern.messages()[self.next_message] {
            match token {
                Token::E => {
                    let ephemeral = self.local_ephemeral.public().0;
                    out.extend_from_slice(&ephemeral);
                    self.symmetric.mix_hash(&ephemeral);
                    if self.pattern.uses_psk() {
                        self.symmetric.mix_key(&ephemeral);
                    }
                }
                Token::S => {
                    let local = self.local_static.public().0;
                    self.symmetric.encrypt_and_hash(&local, out);
                }
                Token::Psk => self.mix_psk(),
                Token::Dh(dh) => self.mix_dh(*dh)?,
            }
        }
        self.symmetric.encrypt_and_hash(payload, out);
        self.next_message += 1;
        Ok(())
    }

    /// Reads the peer's next handshake message and returns its payload.
    pub fn read_message(&mut self, message: &[u8]) -> Result<Vec<u8>, HandshakeError> {
        if self.is_finished() || self.is_my_turn() {
            return Err(HandshakeError::OutOfTurn("read"));
        }
        let mut next = self.clone();
        let payload = next.read_tokens(message)?;
        *self = next;
        Ok(payload)
    }

    fn read_tokens(&mut self, message: &[u8]) -> Result<Vec<u8>, HandshakeError> {
        let need = self.min_message_len();
        if message.len() < need {
            return Err(HandshakeError::TooShort {
                got: message.len(),
                need,
            });
        }
        let mut rest = message;
        for token in self.pattern.messages()[self.next_message] {
            match token {
                Token::E => {
                    let (ephemeral, tail) = take_array(rest)?;
                    rest = tail;
                    self.remote_ephemeral = Some(ephemeral);
                    self.symmetric.mix_hash(&ephemeral);
                    if self.pattern.uses_psk() {
                        self.symmetric.mix_key(&ephemeral);
                    }
                }
                Token::S => {
                    let len = self.symmetric.sealed_len(DH_BYTES);
                    let (sealed, tail) = rest.split_at(len.min(rest.len()));
                    rest = tail;
                    let plain = self
                        .symmetric
                        .decrypt_and_hash(sealed)
                        .map_err(|_| HandshakeError::Decrypt)?;
                    let (key, _) = take_array(&plain)?;
                    self.remote_static = Some(PublicKey(key));
                }
                Token::Psk => self.mix_psk(),
                Token::Dh(dh) => self.mix_dh(*dh)?,
            }
        }
        let payload = self
            .symmetric
            .decrypt_and_hash(rest)
            .map_err(|_| HandshakeError::Decrypt)?;
        self.next_message += 1;
        Ok(payload)
    }

    /// The shortest valid next message from the peer: its keys and tags, empty payload.
    fn min_message_len(&self) -> usize {
        let mut has_key = self.symmetric.has_key();
        let mut len = 0;
        for token in self.pattern.messages()[self.next_message] {
            match token {
                Token::E => {
                    len += DH_BYTES;
                    has_key |= self.pattern.uses_psk();
                }
                Token::S => len += DH_BYTES + if has_key { TAG_BYTES } else { 0 },
                Token::Dh(_) | Token::Psk => has_key = true,
            }
        }
        len + if has_key { TAG_BYTES } else { 0 }
    }

    fn mix_psk(&mut self) {
        // A psk pattern without a psk mixes zeros, which the peer will not match: the
        // handshake then fails authentication instead of silently skipping the secret.
        let psk = self.psk.unwrap_or([0; 32]);
        self.symmetric.mix_key_and_hash(&psk);
    }

    fn mix_dh(&mut self, token: Dh) -> Result<(), HandshakeError> {
        let initiator = self.role == Role::Initiator;
        let remote_ephemeral = self.remote_ephemeral;
        let remote_static = self.remote_static.map(|key| key.0);
        let (local, remote) = match (token, initiator) {
            (Dh::EE, _) => (&self.local_ephemeral, remote_ephemeral),
            (Dh::ES, true) | (Dh::SE, false) => (&self.local_ephemeral, remote_static),
            (Dh::ES, false) | (Dh::SE, true) => (&self.local_static, remote_ephemeral),
        };
        // The pattern order guarantees the remote key is known before any DH needs it.
        let remote = remote.ok_or(HandshakeError::Decrypt)?;
        let mut shared = local.diffie_hellman(&remote);
        if shared == [0; 32] {
            return Err(HandshakeError::LowOrderKey);
        }
        self.symmetric.mix_key(&shared);
        shared.zeroize();
        Ok(())
    }

    /// Ends a finished handshake and returns the transport secrets.
    pub fn into_transport(self) -> Result<TransportSecrets, HandshakeError> {
        if !self.is_finished() {
            return Err(HandshakeError::NotFinished);
        }
        let remote_static = self.remote_static.ok_or(HandshakeError::NotFinished)?;
        let (initiator_to_responder, responder_to_initiator) = self.symmetric.split();
        let (send_key, receive_key) = match self.role {
            Role::Initiator => (initiator_to_responder, responder_to_initiator),
            Role::Responder => (responder_to_initiator, initiator_to_responder),
        };
        Ok(TransportSecrets {
            send_key,
            receive_key,
            handshake_hash: self.symmetric.handshake_hash(),
            remote_static,
        })
    }
}

fn take_array(bytes: &[u8]) -> Result<([u8; DH_BYTES], &[u8]), HandshakeError> {
    if bytes.len() < DH_BYTES {
        return Err(HandshakeError::TooShort {
            got: bytes.len(),
            need: DH_BYTES,
        });
    }
    let (head, tail) = bytes.split_at(DH_BYTES);
    let mut array = [0u8; DH_BYTES];
    array.copy_from_slice(head);
    Ok((array, tail))
}
