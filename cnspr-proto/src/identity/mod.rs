//! Device identity: the static X25519 keypair and the device ID derived from it.

mod device_id;
mod keys;

pub use device_id::{DeviceId, DeviceIdError, ShortId};
pub use keys::{PublicKey, StaticKeypair};
