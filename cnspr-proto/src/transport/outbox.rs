//! The datagrams an endpoint has ready, in three queues: those that may leave before the
//! writes of their round are durable (they acknowledge nothing), the others, and those
//! whose path is relayed ([`crate::transport::relay_path`]), which the endpoint's owner
//! carries through the relay rather than sending.

use std::collections::VecDeque;

use super::endpoint::Transmit;
use super::relay_path::is_relay_address;

#[derive(Debug, Default)]
pub(super) struct Outbox {
    prompt: VecDeque<Transmit>,
    ordered: VecDeque<Transmit>,
    /// With whether each was prompt.
    relayed: VecDeque<(Transmit, bool)>,
}

impl Outbox {
    /// Queues a datagram; `prompt`: it may leave before the round's writes are durable.
    pub(super) fn push(&mut self, transmit: Transmit, prompt: bool) {
        if is_relay_address(&transmit.destination) {
            self.relayed.push_back((transmit, prompt));
        } else if prompt {
            self.prompt.push_back(transmit);
        } else {
            self.ordered.push_back(transmit);
        }
    }

    /// The next datagram to send: prompt ones first.
    pub(super) fn pop(&mut self) -> Option<Transmit> {
        self.prompt.pop_front().or_else(|| self.ordered.pop_front())
    }

    /// The next prompt datagram only.
    pub(super) fn pop_prompt(&mut self) -> Option<Transmit> {
        self.prompt.pop_front()
    }

    /// The next datagram for a relayed path, and whether it is prompt.
    pub(super) fn pop_relayed(&mut self) -> Option<(Transmit, bool)> {
        self.relayed.pop_front()
    }
}
