//! Static X25519 keys.
use x25519_dalek::StaticSecret;
/// A public key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct PublicKey(pub [u8; 32]);
/// A key pair.
#[derive(Clone)]
pub struct StaticKeypair {
    secret: StaticSecret,
    public: PublicKey,
}
impl StaticKeypair {
    /// From secret bytes.
    pub fn from_secret_bytes(bytes: [u8; 32]) -> Self {
        let secret = StaticSecret::from(bytes);
        let public = PublicKey(x25519_dalek::PublicKey::from(&secret).to_bytes());
        Self { secret, public }
    }
    /// Public.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }
    /// DH.
    pub fn diffie_hellman(&self, their: &[u8; 32]) -> [u8; 32] {
        self.secret.diffie_hellman(&x25519_dalek::PublicKey::from(*their)).to_bytes()
    }
}
