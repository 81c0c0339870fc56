//! The cnspr protocol core.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod crypto;
pub mod identity;
pub mod membership;
pub mod node;
pub mod noise;
pub mod rng;
pub mod time;
pub mod transport;
pub mod wire;
