//! The cnspr simulator: hundreds of real `cnspr-proto` nodes on a virtual clock and a
//! virtual network with faults, invariants checked at every step, metrics reported.
//!
//! Everything is deterministic: one seed decides keys, latencies, losses and faults, and
//! the run's digest (a hash of every datagram and event) is the same every time.
#![forbid(unsafe_code)]

pub mod agenda;
pub mod byzantine;
pub mod clock;
pub mod faults;
pub mod network;
pub mod observer;
pub mod replicas;
pub mod report;
pub mod workload;
pub mod world;
