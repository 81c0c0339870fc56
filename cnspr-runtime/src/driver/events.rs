//! What the node task does with the node's events: notices for `monitor`, roster writes,
//! handler runs for messages, events, queries, peers and the daemon itself, and the
//! answers to waiting clients.

use cnspr_proto::identity::DeviceId;
use cnspr_proto::membership::{MemberState, MembershipEvent};
use cnspr_proto::messaging::{MessagingEvent, Tag};
use cnspr_proto::node::{Event, Node};
use cnspr_proto::runs::RunStart;
use tokio::sync::oneshot;

use super::shell::Shell;
use super::{Command, Notice, QueryReply};

/// Peer events held for peers whose name is not known yet.
const MAX_HELD_PEER_EVENTS: usize = 256;
use crate::handlers::{Invocation, Topic};

impl Shell {
    pub(super) fn name_of(node: &Node, id: &DeviceId) -> Option<String> {
        node.roster().shown_name(id)
    }

    /// An invocation of this device's handlers for something from `origin`.
    pub(super) fn invocation(
        node: &Node,
        event: &'static str,
        tag: String,
        origin: DeviceId,
        stdin: Vec<u8>,
    ) -> Invocation {
        let own = node.own_id();
        Invocation {
            event,
            tag,
            origin,
            origin_name: Self::name_of(node, &origin).unwrap_or_default(),
            own,
            own_name: Self::name_of(node, &own).unwrap_or_default(),
            peer: None,
            stdin,
        }
    }

    /// Runs the handlers of a daemon state (`start`, `stop`, `active`, `inactive`).
    pub(super) fn daemon_event(
        &self,
        node: &Node,
        state: &'static str,
        done: Option<oneshot::Sender<Vec<crate::handlers::Outcome>>>,
    ) {
        let own = node.own_id();
        let invocation = Self::invocation(node, "daemon", format!("daemon.{state}"), own, Vec::new());
        self.dispatcher.dispatch(Topic::Daemon(state), invocation, done);
    }

    /// Runs the handlers of a peer event. A peer that has not told its name yet (just
    /// paired) has its events held until it has, so that `@NAME` handlers see them.
    fn peer_event(&mut self, node: &Node, kind: &'static str, peer: DeviceId, state: MemberState) {
        let Some(name) = Self::name_of(node, &peer) else {
            if self.unnamed.len() < MAX_HELD_PEER_EVENTS {
                self.unnamed.push((kind, peer, state));
            }
            return;
        };
        let mut invocation = Self::invocation(node, "peer", format!("peer.{kind}"), peer, Vec::new());
        let address = node.member(&peer).and_then(|m| m.address);
        invocation.peer = Some((peer, state.as_str().to_owned(), address));
        let topic = Topic::Peer {
            kind,
            peer,
            name: Some(name),
        };
        self.dispatcher.dispatch(topic, invocation, None);
    }

    pub(super) fn on_event(&mut self, node: &Node, event: Event) {
        let notice = match event {
            // What people are shown, not the detector's own state (which calls a device
            // alive as soon as anyone vouches for it, session or not).
            Event::PeerState {
                member,
                previous,
                state,
            } => {
                tracing::info!(peer = %member.short(), from = previous.as_str(), to = state.as_str(), "peer state");
                self.peer_event(node, "state_changed", member, state);
                if state == MemberState::Active {
                    self.peer_event(node, "seen", member, state);
                }
                self.track_activity(node, previous, state);
                Some(Notice::PeerState {
                    peer: member,
                    name: Self::name_of(node, &member),
                    previous: previous.into(),
                    state: state.into(),
                })
            }
            Event::Membership(MembershipEvent::AddressChanged { member, address }) => {
                self.save_roster(node);
                let state = node.shown_state(&member).unwrap_or(MemberState::Unreachable);
                self.peer_event(node, "new_address", member, state);
                Some(Notice::PeerAddress {
                    peer: member,
                    name: Self::name_of(node, &member),
                    address,
                })
            }
            // Reported to people as an Event::PeerState (`node/shown.rs`).
            Event::Membership(MembershipEvent::StateChanged { .. }) => None,
            // The node acts on it itself (a call to a relayed peer).
            Event::Membership(MembershipEvent::AddressHeard { .. }) => None,
            Event::Membership(MembershipEvent::Restarted { member }) => {
                tracing::info!(peer = %member.short(), "peer restarted");
                None
            }
            Event::RosterChanged => {
                self.save_roster(node);
                let held = std::mem::take(&mut self.unnamed);
                for (kind, peer, state) in held {
                    self.peer_event(node, kind, peer, state);
                }
                Some(Notice::RosterChanged {
                    devices: node.roster().members().count(),
                })
            }
            Event::Paired { device } => {
                tracing::info!(peer = %device, "a device joined with an invite");
                Some(Notice::Paired { peer: device })
            }
            Event::Joined { inviter } | Event::JoinFailed { inviter } => {
                let joined = matches!(event, Event::Joined { .. });
                let (done, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.joins)
                    .into_iter()
                    .partition(|(i, _)| *i == inviter);
                self.joins = waiting;
                for (_, reply) in done {
                    let _ = reply.send(joined);
                }
                None
            }
            Event::EchoReply { id, rtt, .. } => {
                if let Some(reply) = self.echoes.remove(&id) {
                    let _ = reply.send(Ok(rtt));
                }
                None
            }
            Event::Messaging(event) => self.on_messaging(node, event),
            Event::RunStart(start) => {
                self.start_run(node, start);
                None
            }
            Event::QueryFailed { id, peer, reason } => {
                tracing::debug!(id, peer = %peer.short(), ?reason, "an asked peer will not answer");
                self.reply_to_query(id, QueryReply::Failed(peer, reason));
                None
            }
            Event::RunInterrupted(run) => {
                tracing::warn!(handler = run.handler, origin = %run.origin.short(), tag = %run.tag, "a handler was running when the daemon stopped; it is not run again");
                Some(Notice::HandlerInterrupted {
                    handler: run.handler,
                    origin: run.origin,
                    name: Self::name_of(node, &run.origin),
                    tag: run.tag.to_string(),
                })
            }
            Event::OtherVersion { device, version } => {
                let name = Self::name_of(node, &device).unwrap_or_default();
                tracing::warn!(
                    peer = %device.short(),
                    name,
                    version,
                    ours = cnspr_proto::wire::PROTOCOL_VERSION,
                    "a device of the mesh speaks another protocol version: upgrade it, or this one"
                );
                None
            }
            Event::StoreRefused { from, key, reason } => {
                tracing::warn!(peer = %from.short(), key, %reason, "refused a key's state that no honest device sends");
                None
            }
            // Logged and announced to watchers with the key's record, when it is durable.
            Event::StoreChanged { .. } => None,
            Event::LookUpAnchors { device, anchors } => {
                let commands = self.commands.clone();
                tokio::spawn(async move {
                    let found = crate::anchors::look_up(&anchors).await;
                    let _ = commands.send(Command::AnchorsFound(device, found)).await;
                });
                None
            }
        };
        if let Some(notice) = notice {
            let _ = self.notices.send(notice);
        }
    }

    /// The daemon is `active` while at least one peer is.
    fn track_activity(&mut self, node: &Node, previous: MemberState, state: MemberState) {
        let before = self.active_peers;
        if previous == MemberState::Active {
            self.active_peers = self.active_peers.saturating_sub(1);
        }
        if state == MemberState::Active {
            self.active_peers += 1;
        }
        if before == 0 && self.active_peers > 0 {
            self.daemon_event(node, "active", None);
        } else if before > 0 && self.active_peers == 0 {
            self.daemon_event(node, "inactive", None);
        }
    }

    fn on_messaging(&mut self, node: &Node, event: MessagingEvent) -> Option<Notice> {
        match event {
            MessagingEvent::Message { from, tag, payload } => {
                let notice = Notice::Message {
                    from,
                    name: Self::name_of(node, &from),
                    tag: tag.to_string(),
                    bytes: payload.len(),
                };
                // Its handler runs come from the node's run queue (Event::RunStart).
                Some(notice)
            }
            MessagingEvent::Event {
                origin, tag, payload, ..
            } => {
                let notice = Notice::Event {
                    origin,
                    name: Self::name_of(node, &origin),
                    tag: tag.to_string(),
                    bytes: payload.len(),
                };
                Some(notice)
            }
            MessagingEvent::Query {
                from,
                id,
                tag,
                payload,
            } => {
                let notice = Notice::Query {
                    from,
                    name: Self::name_of(node, &from),
                    tag: tag.to_string(),
                };
                let invocation = Self::invocation(node, "query", tag.to_string(), from, payload);
                let topic = Self::topic(node, tag, from);
                let (done, outcomes) = oneshot::channel();
                self.dispatcher.dispatch(topic, invocation, Some(done));
                let commands = self.commands.clone();
                tokio::spawn(async move {
                    // Every handler that exits 0 answers with its stdout.
                    for outcome in outcomes.await.unwrap_or_default() {
                        if outcome.succeeded() {
                            let _ = commands.send(Command::Answer(from, id, outcome.stdout)).await;
                        }
                    }
                });
                Some(notice)
            }
            MessagingEvent::Answer { from, id, payload } => {
                self.reply_to_query(id, QueryReply::Answer(from, payload));
                None
            }
            MessagingEvent::Delivered { to, seq } => {
                if let Some(waiting) = self.sends.remove(&(to, seq)) {
                    let _ = waiting.send(true);
                }
                None
            }
            MessagingEvent::Expired { to, seq } => {
                tracing::warn!(peer = %to.short(), seq, "message expired undelivered");
                if let Some(waiting) = self.sends.remove(&(to, seq)) {
                    let _ = waiting.send(false);
                }
                None
            }
        }
    }

    /// Starts a durable handler run the node owes; tells the node when it ended.
    /// Hands a reply to the client waiting for query `id`, if it still waits.
    fn reply_to_query(&mut self, id: u64, reply: QueryReply) {
        if let Some(waiting) = self.queries.get(&id) {
            if waiting.try_send(reply).is_err() && waiting.is_closed() {
                self.queries.remove(&id);
            }
        }
    }

    fn start_run(&self, node: &Node, start: RunStart) {
        let invocation = Self::invocation(node, "user", start.tag.to_string(), start.origin, start.payload);
        let (dispatcher, commands) = (self.dispatcher.clone(), self.commands.clone());
        tokio::spawn(async move {
            dispatcher.run_owed(&start.handler, &invocation).await;
            let _ = commands.send(Command::RunFinished(start.job, start.index)).await;
        });
    }

    fn topic(node: &Node, tag: Tag, origin: DeviceId) -> Topic {
        Topic::User {
            tag,
            origin,
            name: Self::name_of(node, &origin),
        }
    }
}
