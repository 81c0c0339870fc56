//! The cnspr protocol core.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod anchor;
mod bounded;
pub mod crypto;
pub mod durable;
pub mod duration;
pub mod identity;
pub mod invite;
pub mod ip_network;
pub mod membership;
pub mod messaging;
pub mod node;
pub mod noise;
pub mod payload;
pub mod rng;
pub mod roster;
pub mod runs;
pub mod store;
pub mod time;
pub mod timers;
pub mod transport;
pub mod vec_map;
pub mod wire;
