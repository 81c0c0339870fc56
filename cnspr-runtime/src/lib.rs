//! The Tokio shell around `cnspr-proto`: it feeds a [`cnspr_proto::node::Node`] real
//! datagrams and real time, and carries out what the node asks for. The protocol lives in
//! the core; a bug found here is an IO bug.
//!
//! So far: [`driver`] runs one node on one UDP socket. The control socket, handlers and
//! the store follow (issue "The daemon: runtime shell, control socket, command line and
//! pairing").
#![forbid(unsafe_code)]

pub mod clock;
pub mod driver;
