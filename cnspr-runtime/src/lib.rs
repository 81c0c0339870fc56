//! The Tokio shell around `cnspr-proto`: it feeds a [`cnspr_proto::node::Node`] real
//! datagrams and real time, and carries out what the node asks for. The protocol lives in
//! the core; a bug found here is an IO bug.
//!
//! - [`daemon`]: `cnspr serve` and `cnspr init`, from files to a running daemon.
//! - [`driver`]: the one task that owns the node.
//! - [`sockets`]: the UDP sockets, IPv4 and IPv6.
//! - [`control`]: the JSON-RPC control socket and its methods.
//! - [`api`]: the control socket's types, shared with the CLI: parameters, results,
//!   errors, notifications.
//! - [`paths`], [`config`], [`state`]: where files live, the configuration, the durable
//!   device state.
#![forbid(unsafe_code)]

pub mod anchors;
pub mod api;
pub mod beacons;
pub mod clock;
pub mod config;
pub mod control;
pub mod daemon;
pub mod disk;
pub mod driver;
pub mod durability;
pub mod gateways;
pub mod handlers;
pub mod logging;
pub mod network_watch;
pub mod paths;
pub mod peer_ref;
pub mod port_mapping;
pub mod sockets;
pub mod state;
