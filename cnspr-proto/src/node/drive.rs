//! Driving a node: the one loop that carries its outputs out, in order, for whatever runs
//! it (the daemon, the simulator, the tests). What differs between them (a disk, sockets,
//! handler processes, a virtual network) sits behind [`Host`].
//!
//! The order is the durability rule: every write the node hands out is applied and made
//! durable before any datagram or event that follows it, since those may acknowledge
//! what the writes record or start a handler for it. Writes that come out together are
//! one round, persisted at once (group commit: one sync per round, not one per write).

use super::{Event, Node, Output};
use crate::durable::Write;
use crate::time::Timestamp;
use crate::transport::Transmit;

/// What a node needs from where it runs.
pub trait Host {
    /// Why writes could not be made durable.
    type Error;

    /// Applies one round of writes and makes them durable before returning. On an error
    /// the node's later outputs stay queued: nothing that depends on the writes leaves.
    fn persist(&mut self, writes: Vec<Write>) -> Result<(), Self::Error>;

    /// Sends a datagram. A send that fails is loss, which the protocol tolerates.
    fn transmit(&mut self, transmit: Transmit);

    /// Acts on an event; `node` is the node as it stands, for reading.
    fn event(&mut self, node: &Node, event: Event);
}

impl Node {
    /// Carries out every output the node has, in order, and returns when
    /// [`Node::handle_timeout`] is due next ([`Timestamp::MAX`]: never). Call it after
    /// every input.
    pub fn drive<H: Host>(&mut self, host: &mut H) -> Result<Timestamp, H::Error> {
        loop {
            // Probes' answers and echoes first: a sync must not pass for network delay.
            while let Some(transmit) = self.poll_prompt_transmit() {
                host.transmit(transmit);
            }
            let writes: Vec<Write> = std::iter::from_fn(|| self.poll_write()).collect();
            if !writes.is_empty() {
                host.persist(writes)?;
            }
            match self.poll_output() {
                Output::Transmit(transmit) => host.transmit(transmit),
                Output::Event(event) => host.event(self, event),
                Output::Timeout(at) => return Ok(at),
                // None is left (every write was taken above); one would still go first.
                Output::Persist(write) => host.persist(vec![write])?,
            }
        }
    }
}
