//! Runs one [`Node`] on one UDP socket: datagrams and timers in, datagrams and events out.
//! One task owns the node; everything else talks to it through [`DriverHandle`].

use std::io;
use std::net::SocketAddr;

use cnspr_proto::identity::{DeviceId, StaticKeypair};
use cnspr_proto::membership::MemberState;
use cnspr_proto::node::{Event, Node, NodeConfig, Output};
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::clock::Clock;

/// Largest datagram read; anything longer is not ours (the wire format caps at 1452).
const RECEIVE_BUFFER_BYTES: usize = 2048;
/// Events kept for slow subscribers before the oldest are dropped.
const EVENT_BACKLOG: usize = 1024;
/// Commands waiting for the node task.
const COMMAND_BACKLOG: usize = 64;

/// One member as the daemon shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    /// Its device ID.
    pub id: DeviceId,
    /// Its state.
    pub state: MemberState,
    /// Where it is reached.
    pub address: Option<SocketAddr>,
    /// Smoothed round-trip time, once measured.
    pub rtt: Option<std::time::Duration>,
}

enum Command {
    Members(oneshot::Sender<Vec<MemberView>>),
    Leave(oneshot::Sender<()>),
}

/// Talks to a running node task.
#[derive(Debug, Clone)]
pub struct DriverHandle {
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<Event>,
    local_address: SocketAddr,
}

/// The node task ended (it left, or its socket failed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped;

impl DriverHandle {
    /// Every other roster member as the node sees it now.
    pub async fn members(&self) -> Result<Vec<MemberView>, Stopped> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Members(reply))
            .await
            .map_err(|_| Stopped)?;
        answer.await.map_err(|_| Stopped)
    }

    /// Says goodbye to the mesh and ends the task once the goodbyes are sent.
    pub async fn leave(&self) -> Result<(), Stopped> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(Command::Leave(reply))
            .await
            .map_err(|_| Stopped)?;
        answer.await.map_err(|_| Stopped)
    }

    /// A stream of the node's events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// The address the socket is bound to.
    pub fn local_address(&self) -> SocketAddr {
        self.local_address
    }
}

/// Fresh secret randomness for the node's generator.
pub fn os_seed() -> io::Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|error| io::Error::other(error.to_string()))?;
    Ok(seed)
}

/// Starts a node on `socket` and returns the handle to it. The task runs until the node
/// leaves or the socket fails.
pub fn spawn(
    socket: UdpSocket,
    config: NodeConfig,
    identity: StaticKeypair,
    roster: Vec<(DeviceId, Option<SocketAddr>)>,
    boot: u32,
) -> io::Result<DriverHandle> {
    let local_address = socket.local_addr()?;
    let clock = Clock::start();
    let node = Node::new(config, identity, roster, boot, os_seed()?, clock.now());
    let (commands, receiver) = mpsc::channel(COMMAND_BACKLOG);
    let (events, _) = broadcast::channel(EVENT_BACKLOG);
    let task = Task {
        node,
        socket,
        clock,
        events: events.clone(),
    };
    tokio::spawn(task.run(receiver));
    Ok(DriverHandle {
        commands,
        events,
        local_address,
    })
}

struct Task {
    node: Node,
    socket: UdpSocket,
    clock: Clock,
    events: broadcast::Sender<Event>,
}

impl Task {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut buffer = vec![0u8; RECEIVE_BUFFER_BYTES];
        loop {
            let deadline = match self.flush().await {
                Ok(deadline) => deadline,
                Err(_) => return,
            };
            tokio::select! {
                received = self.socket.recv_from(&mut buffer) => {
                    // A failed receive (ICMP unreachable from an earlier send, on some
                    // systems) is not fatal: the next one may succeed.
                    if let Ok((len, from)) = received {
                        let _ = self.node.handle_datagram(self.clock.now(), from, &buffer[..len]);
                    }
                }
                () = tokio::time::sleep_until(self.clock.instant(deadline)) => {
                    self.node.handle_timeout(self.clock.now());
                }
                command = commands.recv() => match command {
                    Some(Command::Members(reply)) => {
                        let _ = reply.send(self.members());
                    }
                    Some(Command::Leave(reply)) => {
                        self.node.leave(self.clock.now());
                        let _ = self.flush().await;
                        let _ = reply.send(());
                        return;
                    }
                    None => return,
                },
            }
        }
    }

    /// Sends every datagram and publishes every event the node has; returns its next
    /// timer.
    async fn flush(&mut self) -> io::Result<cnspr_proto::time::Timestamp> {
        loop {
            match self.node.poll_output() {
                Output::Transmit(transmit) => {
                    // A send can fail for one destination (no route); the protocol treats
                    // that as loss.
                    let _ = self
                        .socket
                        .send_to(&transmit.datagram, transmit.destination)
                        .await;
                }
                Output::Event(event) => {
                    let _ = self.events.send(event);
                }
                Output::Timeout(deadline) => return Ok(deadline),
            }
        }
    }

    fn members(&self) -> Vec<MemberView> {
        self.node
            .members()
            .map(|member| MemberView {
                id: member.id,
                state: member.state(),
                address: member.address,
                rtt: member.rtt.smoothed(),
            })
            .collect()
    }
}
