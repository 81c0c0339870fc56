//! A whole [`Node`] (the device under test) and a peer of its roster that holds a real
//! Noise session with it but sends whatever the fuzzer chooses: what a stolen device, or
//! a bug on a paired one, could make a node decrypt. The peer is a bare [`Endpoint`], so
//! every payload reaches the node exactly as given.

use std::net::SocketAddr;
use std::time::Duration;

use cnspr_proto::identity::{DeviceId, DeviceKey};
use cnspr_proto::membership::{Body, Envelope};
use cnspr_proto::messaging::{Packet, Tag};
use cnspr_proto::node::{Durable, Event, Node, NodeConfig, Output};
use cnspr_proto::payload::Payload;
use cnspr_proto::runs::{HandlerTree, JobKind};
use cnspr_proto::time::Timestamp;
use cnspr_proto::transport::{Endpoint, EndpointConfig, EndpointEvent};

use crate::steps::Step;

/// Most outputs one input may make the node emit before it says when to call it next:
/// more means a loop that never ends.
const MAX_OUTPUTS_PER_STEP: usize = 1_000_000;
/// Most rounds of the handshake before the harness gives up: a handshake takes two.
const HANDSHAKE_ROUNDS: usize = 10;

/// The node and its hostile peer, on virtual time.
pub struct Paired {
    node: Node,
    node_address: SocketAddr,
    node_key: DeviceId,
    peer: Endpoint,
    peer_id: DeviceId,
    peer_address: SocketAddr,
    now: Timestamp,
    next_transfer: u64,
    /// Payloads the node sent the peer, decrypted, since the last [`Paired::take_received`].
    received: Vec<Vec<u8>>,
    /// Handler runs the node started, finished at the next step (as if each took a moment).
    running: Vec<(u64, u32)>,
}

/// What the peer answers, so that the node holds it alive and finishes its transfers to
/// it: an acknowledgement for each ping and for each chunk (a unit of one chunk is whole).
fn answer(payload: &[u8]) -> Option<Vec<u8>> {
    let answer = match Payload::decode(payload).ok()? {
        Payload::Membership(Envelope {
            body: Body::Ping { seq, .. },
            ..
        }) => Payload::Membership(Envelope {
            // Above the incarnation the node starts a peer at, so the ack proves it alive.
            incarnation: 1,
            body: Body::Ack { seq },
            updates: Vec::new(),
            view: None,
            claim: None,
        }),
        Payload::Messaging(packet) => match Packet::decode(&packet).ok()? {
            Packet::Chunk {
                transfer,
                index,
                count,
                ..
            } => Payload::Messaging(
                Packet::Ack {
                    transfer,
                    indices: vec![index],
                    complete: count == 1,
                }
                .encode(),
            ),
            Packet::Ack { .. } => return None,
        },
        _ => return None,
    };
    answer.encode().ok()
}

/// One handler that takes everything, so that every message and event is owed a run.
struct EveryTag;

impl HandlerTree for EveryTag {
    fn handlers_for(&self, _: JobKind, _: &Tag, _: &DeviceId, _: Option<&str>) -> Vec<String> {
        vec!["everything".to_owned()]
    }
}

/// Runs a fuzz input against a fresh pair: `encode` turns each send's bytes into the
/// payloads the peer sends. Whatever they were, the node must still answer the peer.
pub fn run(data: &[u8], encode: impl Fn(&mut Paired, &[u8]) -> Vec<Vec<u8>>) {
    let mut paired = Paired::new();
    for step in crate::steps::steps(data) {
        paired.step(step, &encode);
    }
    assert!(
        paired.answers_echo(u64::MAX),
        "the node stopped answering its peer"
    );
}

impl Default for Paired {
    fn default() -> Self {
        Self::new()
    }
}

impl Paired {
    /// A node whose roster holds the peer, with an established session between them.
    pub fn new() -> Self {
        let own = DeviceKey::from_seed([1; 32]);
        let hostile = DeviceKey::from_seed([2; 32]);
        let node_address: SocketAddr = "192.0.2.1:3030".parse().expect("valid address");
        let peer_address: SocketAddr = "192.0.2.2:3030".parse().expect("valid address");
        let node_key = own.device_id();
        let now = Timestamp::from_micros(1_000_000);
        let durable = Durable::fresh(own, 1, [(hostile.device_id(), Some(peer_address))]);
        let mut node = Node::restore(NodeConfig::default(), durable, [7; 32], now, 0);
        node.set_handler_tree(Box::new(EveryTag));
        let peer_id = hostile.device_id();
        let mut peer = Endpoint::new(hostile.noise().clone(), [9; 32], EndpointConfig::default());
        peer.add_peer(node_key, Some(node_address));
        peer.connect(now, &node_key);
        let mut paired = Self {
            node,
            node_address,
            node_key,
            peer,
            peer_id,
            peer_address,
            now,
            next_transfer: 1,
            received: Vec::new(),
            running: Vec::new(),
        };
        for _ in 0..HANDSHAKE_ROUNDS {
            paired.exchange();
            if paired.peer.current_keys(paired.now, &node_key).is_some() {
                paired.received.clear();
                return paired;
            }
            paired.advance(Duration::from_millis(100));
        }
        panic!("the harness's handshake did not complete");
    }

    /// The node under test (to make it send something, for seeds).
    pub fn node(&mut self) -> &mut Node {
        &mut self.node
    }

    /// Now, on the pair's virtual clock.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// The peer's device ID.
    pub fn peer_id(&self) -> DeviceId {
        self.peer_id
    }

    /// The payloads the node sent the peer since the last call, decrypted.
    pub fn take_received(&mut self) -> Vec<Vec<u8>> {
        self.exchange();
        std::mem::take(&mut self.received)
    }

    /// Runs one step: `encode` turns a send's bytes into the payloads the peer sends.
    pub fn step(&mut self, step: Step<'_>, encode: impl Fn(&mut Self, &[u8]) -> Vec<Vec<u8>>) {
        for (job, index) in std::mem::take(&mut self.running) {
            self.node.finish_run(self.now, job, index);
        }
        match step {
            Step::Send(bytes) => {
                for payload in encode(self, bytes) {
                    self.send(&payload);
                }
            }
            Step::Wait(pause) => self.advance(pause),
        }
    }

    /// The peer sends one decrypted payload (channel byte first).
    pub fn send(&mut self, payload: &[u8]) {
        // The peer's session can refuse (a payload over its size); then nothing is sent.
        if self.peer.send(self.now, &self.node_key, payload).is_ok() {
            self.exchange();
        }
    }

    /// The payloads of a messaging unit (any bytes): its chunks, under a new transfer.
    pub fn unit_payloads(&mut self, unit: &[u8]) -> Vec<Vec<u8>> {
        let transfer = self.next_transfer;
        self.next_transfer += 1;
        Packet::chunks_of(transfer, unit)
            .iter()
            .map(|chunk| {
                Payload::Messaging(chunk.encode())
                    .encode()
                    .expect("a messaging payload encodes")
            })
            .collect()
    }

    /// Lets `pause` pass on both sides.
    pub fn advance(&mut self, pause: Duration) {
        self.now = self.now + pause;
        self.node.handle_timeout(self.now);
        self.peer.handle_timeout(self.now);
        self.exchange();
    }

    /// Whether the node still answers the peer: an echo sent now comes back. A hostile
    /// peer may be refused many things, but never wedge the node.
    pub fn answers_echo(&mut self, id: u64) -> bool {
        // A long wait may have let the keys age out: the peer renews them first.
        if self.peer.current_keys(self.now, &self.node_key).is_none() {
            self.peer.connect(self.now, &self.node_key);
            for _ in 0..HANDSHAKE_ROUNDS {
                self.advance(Duration::from_millis(100));
                if self.peer.current_keys(self.now, &self.node_key).is_some() {
                    break;
                }
            }
        }
        self.received.clear();
        self.send(&Payload::Echo(id).encode().expect("an echo encodes"));
        let reply = Payload::EchoReply(id);
        self.received
            .iter()
            .any(|payload| Payload::decode(payload).as_ref() == Ok(&reply))
    }

    /// Carries datagrams both ways until neither side has any, and checks that the node
    /// always ends its outputs with when to call it next.
    fn exchange(&mut self) {
        loop {
            let mut moved = false;
            let mut outputs = 0;
            loop {
                outputs += 1;
                assert!(outputs < MAX_OUTPUTS_PER_STEP, "the node's outputs never end");
                match self.node.poll_output() {
                    Output::Timeout(_) => break,
                    Output::Transmit(transmit) => {
                        moved = true;
                        if transmit.destination == self.peer_address {
                            let _ =
                                self.peer
                                    .handle_datagram(self.now, self.node_address, &transmit.datagram);
                        }
                    }
                    Output::Event(Event::RunStart(run)) => self.running.push((run.job, run.index)),
                    Output::Persist(_) | Output::Event(_) => {}
                }
            }
            while let Some(event) = self.peer.poll_event() {
                if let EndpointEvent::Received { payload, .. } = event {
                    if let Some(answer) = answer(&payload) {
                        let _ = self.peer.send(self.now, &self.node_key, &answer);
                    }
                    self.received.push(payload);
                }
            }
            while let Some(transmit) = self
                .peer
                .poll_prompt_transmit()
                .or_else(|| self.peer.poll_transmit())
            {
                moved = true;
                let _ = self
                    .node
                    .handle_datagram(self.now, self.peer_address, &transmit.datagram);
            }
            if !moved {
                return;
            }
        }
    }
}
