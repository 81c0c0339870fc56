//! Device identity (temporary stand-in until the device-ID module lands).
mod keys;
pub use keys::{PublicKey, StaticKeypair};
