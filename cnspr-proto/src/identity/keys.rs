//! X25519 keypairs, as Noise uses them.

use core::fmt;

use curve25519_dalek::montgomery::MontgomeryPoint;
use x25519_dalek::StaticSecret;
use zeroize::Zeroize;

use super::device_id::DeviceId;

/// An X25519 public key (32 bytes, as on the wire).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// The device whose key this is the X25519 form of: the Edwards point with the sign
    /// bit clear. `None` for bytes that are not a device's key in canonical form (off the
    /// curve, of small order, or an unreduced encoding), so one handshake key never names
    /// two devices.
    pub fn device_id(&self) -> Option<DeviceId> {
        let point = MontgomeryPoint(self.0).to_edwards(0)?;
        let id = DeviceId::from_bytes(point.compress().to_bytes());
        (id.noise_key() == Some(*self)).then_some(id)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PublicKey(")?;
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        f.write_str(")")
    }
}

/// A static X25519 keypair: a device's is the X25519 form of its [`super::DeviceKey`].
///
/// The secret is zeroized on drop (by `x25519-dalek`). The core never
/// generates keys itself: the runtime supplies 32 random bytes.
#[derive(Clone)]
pub struct StaticKeypair {
    secret: StaticSecret,
    public: PublicKey,
}

impl StaticKeypair {
    /// Builds a keypair from 32 secret bytes (fresh OS randomness or a
    /// persisted secret). Clamping happens inside X25519, so any bytes work.
    pub fn from_secret_bytes(bytes: [u8; 32]) -> Self {
        let mut bytes = bytes;
        let secret = StaticSecret::from(bytes);
        // Our by-value copy would otherwise linger on the stack.
        bytes.zeroize();
        let public = PublicKey(x25519_dalek::PublicKey::from(&secret).to_bytes());
        Self { secret, public }
    }

    /// The secret bytes, for persisting. The caller must protect and zeroize them.
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.secret.to_bytes()
    }

    /// The public half.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// Raw X25519 with a peer's public key.
    ///
    /// No contributory check: a low-order peer key yields all zeros. The Noise
    /// layer decides whether to reject that.
    pub fn diffie_hellman(&self, their: &[u8; 32]) -> [u8; 32] {
        let their = x25519_dalek::PublicKey::from(*their);
        self.secret.diffie_hellman(&their).to_bytes()
    }
}

impl fmt::Debug for StaticKeypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret.
        f.debug_struct("StaticKeypair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_key_matches_rfc7748_vector() {
        // RFC 7748 section 6.1, Alice.
        let alice = StaticKeypair::from_secret_bytes(hex(
            "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        ));
        assert_eq!(
            alice.public().0,
            hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
        );
        let bob = StaticKeypair::from_secret_bytes(hex(
            "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
        ));
        let shared = hex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
        assert_eq!(alice.diffie_hellman(&bob.public().0), shared);
        assert_eq!(bob.diffie_hellman(&alice.public().0), shared);
    }

    #[test]
    fn secret_round_trips() {
        let kp = StaticKeypair::from_secret_bytes([7; 32]);
        assert_eq!(kp.secret_bytes(), [7; 32]);
        let again = StaticKeypair::from_secret_bytes(kp.secret_bytes());
        assert_eq!(again.public(), kp.public());
        assert_eq!(kp.clone().public(), kp.public());
    }

    #[test]
    fn only_canonical_curve_points_name_a_device() {
        let kp = StaticKeypair::from_secret_bytes([7; 32]);
        let id = kp.public().device_id().expect("a public key names its device");
        assert_eq!(id.noise_key(), Some(*kp.public()));
        // Small order (0 and 1), and u = 2, which lies on the twist, not the curve.
        for u in [0u8, 1, 2] {
            let mut bytes = [0u8; 32];
            bytes[0] = u;
            assert_eq!(PublicKey(bytes).device_id(), None, "u = {u}");
        }
        // The same point with the unused top bit set.
        let mut unreduced = kp.public().0;
        unreduced[31] |= 0x80;
        assert_eq!(PublicKey(unreduced).device_id(), None);
    }

    #[test]
    fn debug_hides_secret() {
        let kp = StaticKeypair::from_secret_bytes([0xab; 32]);
        let shown = format!("{kp:?}");
        assert!(!shown.contains("abab"), "{shown}");
        assert!(!shown.contains("171, 171"), "{shown}");
        assert!(shown.starts_with("StaticKeypair { public: PublicKey("));
    }

    fn hex(s: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("test vector is valid hex");
        }
        out
    }
}
