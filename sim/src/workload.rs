//! Messages and events under faults: a steady trickle of direct messages and events from
//! random devices, and the ledger that checks what the handlers would see. Invariants:
//! no event handled that its origin never published (hostile devices make some up), no
//! message or event handled twice by one device (restarts included), direct messages
//! handled in the order sent, and at the end nothing lost: every message between two
//! running devices handled, every event of a running publisher handled by every running
//! device. Each is owed a handler run (which takes 0.2–3 s, so crashes catch runs busy and
//! queued): no run starts twice, and every run owed on a running device has started by
//! the end (one interrupted by its device's crash started once and is not repeated).

use std::collections::BTreeMap;
use std::time::Duration;

use cnspr_proto::messaging::MessagingEvent;
use cnspr_proto::runs::{RunInterrupted, RunStart};

/// How often some device sends something.
pub const WORKLOAD_INTERVAL: Duration = Duration::from_millis(1500);
/// The store's repair interval under the workload (300 s in the daemon): short, so that a
/// run sees many catch-ups and deletes collected.
pub const WORKLOAD_STORE_SYNC: Duration = Duration::from_secs(10);

/// What was sent, and what was handled where.
#[derive(Debug, Default)]
pub struct Ledger {
    next_id: u64,
    /// `(sender, receiver, id, sent at)`.
    direct: Vec<(usize, usize, u64, Duration)>,
    /// When each event `(publisher, id)` was published (a made-up one is not here).
    events: BTreeMap<(usize, u64), Duration>,
    handled: BTreeMap<(usize, u64), u32>,
    last_direct: BTreeMap<(usize, usize), u64>,
    /// Handler runs started, per device and message.
    runs: BTreeMap<(usize, u64), u32>,
    /// Runs interrupted by their device's crash.
    interrupted: usize,
    /// Invariants broken.
    pub violations: Vec<String>,
}

/// Names a message: its payload is its ID.
pub fn payload(id: u64) -> Vec<u8> {
    id.to_le_bytes().to_vec()
}

fn id_of(payload: &[u8]) -> Option<u64> {
    payload.try_into().ok().map(u64::from_le_bytes)
}

impl Ledger {
    /// A fresh message ID.
    pub fn new_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// `sender` sent direct message `id` to `receiver`.
    pub fn sent(&mut self, sender: usize, receiver: usize, id: u64, at: Duration) {
        self.direct.push((sender, receiver, id, at));
    }

    /// `publisher` published event `id`.
    pub fn published(&mut self, publisher: usize, id: u64, at: Duration) {
        self.events.insert((publisher, id), at);
    }

    /// Device `node` reported a messaging event; `sender_of` maps a device ID to its index.
    pub fn on_event(
        &mut self,
        node: usize,
        event: &MessagingEvent,
        sender_of: impl Fn(&cnspr_proto::identity::DeviceId) -> Option<usize>,
    ) {
        let (from, payload, direct) = match event {
            MessagingEvent::Message { from, payload, .. } => (from, payload, true),
            MessagingEvent::Event { origin, payload, .. } => (origin, payload, false),
            _ => return,
        };
        let (Some(sender), Some(id)) = (sender_of(from), id_of(payload)) else {
            self.violations
                .push(format!("device {node} handled a message nobody sent"));
            return;
        };
        if !direct && !self.events.contains_key(&(sender, id)) {
            self.violations.push(format!(
                "device {node} handled event {id} in the name of {sender}, which never published it"
            ));
            return;
        }
        let count = self.handled.entry((node, id)).or_default();
        *count += 1;
        if *count > 1 {
            self.violations
                .push(format!("device {node} handled message {id} from {sender} twice"));
        }
        if direct {
            let last = self.last_direct.entry((node, sender)).or_default();
            if id < *last {
                self.violations.push(format!(
                    "device {node} handled message {id} from {sender} after the later {last}"
                ));
            }
            *last = (*last).max(id);
        }
    }

    /// Device `node` started a handler run.
    pub fn on_run_start(&mut self, node: usize, start: &RunStart) {
        let Some(id) = id_of(&start.payload) else {
            self.violations
                .push(format!("device {node} ran a handler for a message nobody sent"));
            return;
        };
        let count = self.runs.entry((node, id)).or_default();
        *count += 1;
        if *count > 1 {
            self.violations
                .push(format!("device {node} started the handler of message {id} twice"));
        }
    }

    /// Device `node` found a run interrupted by its crash.
    pub fn on_run_interrupted(&mut self, _node: usize, _run: &RunInterrupted) {
        self.interrupted += 1;
    }

    /// Runs interrupted by crashes.
    pub fn interrupted(&self) -> usize {
        self.interrupted
    }

    /// Checks that nothing sent before `deadline` between running devices was lost.
    pub fn check_end(&mut self, running: &[bool], deadline: Duration) {
        for (&(node, id), _) in self.handled.iter().filter(|((node, _), _)| running[*node]) {
            if self.runs.get(&(node, id)).copied().unwrap_or(0) == 0 {
                self.violations.push(format!(
                    "device {node} owed the handler of message {id} a run it never started"
                ));
            }
        }
        let handled = |node: usize, id: u64| self.handled.get(&(node, id)).copied().unwrap_or(0) > 0;
        let mut lost = Vec::new();
        for &(sender, receiver, id, at) in &self.direct {
            if at <= deadline && running[sender] && running[receiver] && !handled(receiver, id) {
                lost.push(format!(
                    "message {id} from {sender} to {receiver} (sent at {at:?}) never handled"
                ));
            }
        }
        for (&(publisher, id), &at) in &self.events {
            if at > deadline || !running[publisher] {
                continue;
            }
            for (node, _) in running.iter().enumerate().filter(|(_, up)| **up) {
                if !handled(node, id) {
                    lost.push(format!(
                        "event {id} from {publisher} (sent at {at:?}) never handled by {node}"
                    ));
                }
            }
        }
        self.violations.extend(lost);
    }

    /// Messages and events sent, and handler runs counted.
    pub fn totals(&self) -> (usize, usize, usize) {
        (self.direct.len(), self.events.len(), self.handled.len())
    }
}
