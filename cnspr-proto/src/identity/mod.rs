//! Device identity: the device's key (Ed25519, whose X25519 form runs Noise), the device
//! ID that names it, and the signatures it makes.

mod device_id;
mod device_key;
mod keys;
mod signature;
mod verified;

pub use device_id::{DeviceId, DeviceIdError, ShortId};
pub use device_key::DeviceKey;
pub use keys::{PublicKey, StaticKeypair};
pub use signature::{Signature, SIGNATURE_BYTES};
