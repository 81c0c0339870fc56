//! Reliable delivery of one unit to one peer: the unit is cut into chunks, each
//! acknowledged by the receiver; chunks not acknowledged within the retransmission timeout
//! are sent again, and at most a window of chunks per peer is in flight (pacing). The
//! receiver reassembles within a memory budget and remembers finished transfers for a
//! while, so that a retransmission after a lost acknowledgement is acknowledged again
//! rather than started over.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use super::wire::{Packet, CHUNK_BYTES, MAX_CHUNKS};
use crate::identity::DeviceId;
use crate::time::Timestamp;

/// Limits and timers of the transfer layer.
#[derive(Debug, Clone)]
pub struct TransferConfig {
    /// Chunks in flight per peer.
    pub window_chunks: usize,
    /// Retransmission timeout before any round trip was measured.
    pub initial_rto: Duration,
    /// Shortest retransmission timeout.
    pub min_rto: Duration,
    /// Longest retransmission timeout, backoff included.
    pub max_rto: Duration,
    /// Units being reassembled per peer at once.
    pub max_inbound_per_peer: usize,
    /// Bytes reserved for reassembly over all peers.
    pub max_inbound_bytes: usize,
    /// A reassembly that got nothing for this long is dropped.
    pub inbound_idle: Duration,
    /// How long a finished inbound transfer is remembered.
    pub completed_memory: Duration,
    /// Most finished inbound transfers remembered.
    pub max_completed: usize,
}

impl Default for TransferConfig {
    fn default() -> Self {
        Self {
            window_chunks: 64,
            initial_rto: Duration::from_millis(300),
            min_rto: Duration::from_millis(50),
            max_rto: Duration::from_secs(3),
            max_inbound_per_peer: 8,
            max_inbound_bytes: 32 << 20,
            inbound_idle: Duration::from_secs(30),
            completed_memory: Duration::from_secs(120),
            max_completed: 4096,
        }
    }
}

struct Outbound {
    id: u64,
    data: Vec<u8>,
    count: u32,
    acked: Vec<bool>,
    acked_count: u32,
    /// When each chunk was last sent.
    sent: Vec<Option<Timestamp>>,
    /// Whether it was sent more than once (its round trip is ambiguous: Karn).
    resent: Vec<bool>,
    /// Acked prefix: chunks before it need no look.
    first_unacked: u32,
    backoff: u32,
}

impl Outbound {
    fn chunk(&self, index: u32) -> Vec<u8> {
        let start = index as usize * CHUNK_BYTES;
        let end = (start + CHUNK_BYTES).min(self.data.len());
        self.data[start..end].to_vec()
    }
}

#[derive(Default)]
struct PeerOut {
    queue: VecDeque<Outbound>,
    srtt: Option<Duration>,
    rttvar: Duration,
}

struct Inbound {
    count: u32,
    parts: Vec<Option<Vec<u8>>>,
    received: u32,
    reserved: usize,
    last: Timestamp,
}

/// Every transfer of one device, both ways.
pub struct Transfers {
    config: TransferConfig,
    next_id: u64,
    peers: BTreeMap<DeviceId, PeerOut>,
    inbound: BTreeMap<(DeviceId, u64), Inbound>,
    inbound_reserved: usize,
    completed: BTreeMap<(DeviceId, u64), Timestamp>,
    packets: VecDeque<(DeviceId, Packet)>,
    done: VecDeque<(DeviceId, u64)>,
    /// When [`Transfers::fill`] last ran: a retransmission due by then that is still not
    /// sent waits for the window (an acknowledgement or a later deadline), not a timer.
    filled_at: Timestamp,
}

impl Transfers {
    /// No transfers yet; transfer numbers start at `first_id` (random, so that a restarted
    /// device does not reuse numbers its peers still remember as finished).
    pub fn new(config: TransferConfig, first_id: u64) -> Self {
        Self {
            config,
            next_id: first_id,
            peers: BTreeMap::new(),
            inbound: BTreeMap::new(),
            inbound_reserved: 0,
            completed: BTreeMap::new(),
            packets: VecDeque::new(),
            done: VecDeque::new(),
            filled_at: Timestamp::ZERO,
        }
    }

    /// Queues `data` for `to`; returns the transfer's number.
    pub fn start(&mut self, to: DeviceId, data: Vec<u8>) -> u64 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let count = data.len().div_ceil(CHUNK_BYTES).max(1) as u32;
        let chunks = count as usize;
        self.peers.entry(to).or_default().queue.push_back(Outbound {
            id,
            data,
            count,
            acked: vec![false; chunks],
            acked_count: 0,
            sent: vec![None; chunks],
            resent: vec![false; chunks],
            first_unacked: 0,
            backoff: 0,
        });
        id
    }

    /// Drops every outbound transfer to `peer` (it became unreachable); returns their
    /// numbers.
    pub fn cancel_peer(&mut self, peer: &DeviceId) -> Vec<u64> {
        self.peers
            .get_mut(peer)
            .map(|p| p.queue.drain(..).map(|o| o.id).collect())
            .unwrap_or_default()
    }

    /// Forgets everything about `peer` (it was removed from the roster).
    pub fn forget_peer(&mut self, peer: &DeviceId) {
        self.peers.remove(peer);
        let stale: Vec<(DeviceId, u64)> = self.inbound.keys().filter(|(p, _)| p == peer).copied().collect();
        for key in stale {
            if let Some(inbound) = self.inbound.remove(&key) {
                self.inbound_reserved -= inbound.reserved;
            }
        }
        self.completed.retain(|(p, _), _| p != peer);
    }

    /// Takes a packet from `from`; returns a unit's bytes once all of its chunks are in.
    pub fn handle_packet(&mut self, now: Timestamp, from: DeviceId, packet: Packet) -> Option<Vec<u8>> {
        match packet {
            Packet::Ack { transfer, indices } => {
                self.on_ack(now, from, transfer, &indices);
                None
            }
            Packet::Chunk {
                transfer,
                index,
                count,
                data,
            } => self.on_chunk(now, from, transfer, index, count, data),
        }
    }

    fn on_ack(&mut self, now: Timestamp, from: DeviceId, transfer: u64, indices: &[u32]) {
        let Some(peer) = self.peers.get_mut(&from) else {
            return;
        };
        let Some(position) = peer.queue.iter().position(|o| o.id == transfer) else {
            return;
        };
        let mut samples = Vec::new();
        let outbound = &mut peer.queue[position];
        for &index in indices {
            let i = index as usize;
            if index >= outbound.count || outbound.acked[i] {
                continue;
            }
            outbound.acked[i] = true;
            outbound.acked_count += 1;
            outbound.backoff = 0;
            if let (Some(sent), false) = (outbound.sent[i], outbound.resent[i]) {
                samples.push(now.saturating_since(sent));
            }
        }
        while outbound.first_unacked < outbound.count && outbound.acked[outbound.first_unacked as usize] {
            outbound.first_unacked += 1;
        }
        let finished = outbound.acked_count == outbound.count;
        for sample in samples {
            peer.observe_rtt(sample);
        }
        if finished {
            peer.queue.remove(position);
            self.done.push_back((from, transfer));
        }
    }

    fn on_chunk(
        &mut self,
        now: Timestamp,
        from: DeviceId,
        transfer: u64,
        index: u32,
        count: u32,
        data: Vec<u8>,
    ) -> Option<Vec<u8>> {
        let key = (from, transfer);
        let ack = Packet::Ack {
            transfer,
            indices: vec![index],
        };
        if self.completed.contains_key(&key) {
            self.packets.push_back((from, ack));
            return None;
        }
        let last = index + 1 == count;
        let whole_chunk = data.len() == CHUNK_BYTES;
        if !last && !whole_chunk || count > MAX_CHUNKS {
            return None;
        }
        if !self.inbound.contains_key(&key) && !self.admit_inbound(now, key, count) {
            // Over budget: no acknowledgement, so the sender tries again later.
            return None;
        }
        let inbound = self.inbound.get_mut(&key)?;
        if inbound.count != count {
            return None;
        }
        inbound.last = now;
        let slot = &mut inbound.parts[index as usize];
        if slot.is_none() {
            *slot = Some(data);
            inbound.received += 1;
        }
        self.packets.push_back((from, ack));
        if inbound.received < inbound.count {
            return None;
        }
        let inbound = self.inbound.remove(&key)?;
        self.inbound_reserved -= inbound.reserved;
        self.remember_completed(now, key);
        Some(inbound.parts.into_iter().flatten().flatten().collect())
    }

    /// Starts reassembling `key` if the per-peer and memory budgets allow.
    fn admit_inbound(&mut self, now: Timestamp, key: (DeviceId, u64), count: u32) -> bool {
        let reserved = count as usize * CHUNK_BYTES;
        let per_peer = self.inbound.keys().filter(|(p, _)| *p == key.0).count();
        if per_peer >= self.config.max_inbound_per_peer
            || self.inbound_reserved + reserved > self.config.max_inbound_bytes
        {
            return false;
        }
        self.inbound_reserved += reserved;
        let inbound = Inbound {
            count,
            parts: vec![None; count as usize],
            received: 0,
            reserved,
            last: now,
        };
        self.inbound.insert(key, inbound);
        true
    }

    fn remember_completed(&mut self, now: Timestamp, key: (DeviceId, u64)) {
        if self.completed.len() >= self.config.max_completed {
            let oldest = self.completed.iter().min_by_key(|(_, at)| **at).map(|(k, _)| *k);
            if let Some(oldest) = oldest {
                self.completed.remove(&oldest);
            }
        }
        self.completed.insert(key, now);
    }

    /// Sends what the windows allow: new chunks, and chunks whose acknowledgement is
    /// overdue. Call after every input.
    pub fn fill(&mut self, now: Timestamp) {
        self.filled_at = self.filled_at.max(now);
        let config = &self.config;
        for (peer, state) in &mut self.peers {
            let rto = state.rto(config);
            let mut in_flight = 0usize;
            for outbound in &mut state.queue {
                let timeout = (rto * 2u32.saturating_pow(outbound.backoff)).min(config.max_rto);
                let mut timed_out = false;
                for index in outbound.first_unacked..outbound.count {
                    let i = index as usize;
                    if outbound.acked[i] {
                        continue;
                    }
                    let due = match outbound.sent[i] {
                        None => true,
                        Some(sent) if now.saturating_since(sent) >= timeout => {
                            timed_out = true;
                            true
                        }
                        Some(_) => {
                            in_flight += 1;
                            false
                        }
                    };
                    if !due {
                        continue;
                    }
                    if in_flight >= config.window_chunks {
                        break;
                    }
                    outbound.resent[i] |= outbound.sent[i].is_some();
                    outbound.sent[i] = Some(now);
                    in_flight += 1;
                    let packet = Packet::Chunk {
                        transfer: outbound.id,
                        index,
                        count: outbound.count,
                        data: outbound.chunk(index),
                    };
                    self.packets.push_back((*peer, packet));
                }
                if timed_out {
                    outbound.backoff = (outbound.backoff + 1).min(8);
                }
                if in_flight >= config.window_chunks {
                    break;
                }
            }
        }
    }

    /// Drops reassemblies that stalled and finished transfers no longer worth remembering.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        let idle = self.config.inbound_idle;
        let stalled: Vec<(DeviceId, u64)> = self
            .inbound
            .iter()
            .filter(|(_, i)| now.saturating_since(i.last) >= idle)
            .map(|(k, _)| *k)
            .collect();
        for key in stalled {
            if let Some(inbound) = self.inbound.remove(&key) {
                self.inbound_reserved -= inbound.reserved;
            }
        }
        let memory = self.config.completed_memory;
        self.completed.retain(|_, at| now.saturating_since(*at) < memory);
        self.fill(now);
    }

    /// The next packet to send.
    pub fn poll_transmit(&mut self) -> Option<(DeviceId, Packet)> {
        self.packets.pop_front()
    }

    /// The next outbound transfer that the peer acknowledged completely.
    pub fn poll_event(&mut self) -> Option<(DeviceId, u64)> {
        self.done.pop_front()
    }

    /// When [`Transfers::handle_timeout`] next has work.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let config = &self.config;
        let retransmits = self.peers.values().flat_map(|state| {
            let rto = state.rto(config);
            state.queue.iter().filter_map(move |outbound| {
                let timeout = (rto * 2u32.saturating_pow(outbound.backoff)).min(config.max_rto);
                (outbound.first_unacked..outbound.count)
                    .filter(|i| !outbound.acked[*i as usize])
                    .filter_map(|i| outbound.sent[i as usize])
                    .map(|sent| sent + timeout)
                    .filter(|deadline| *deadline > self.filled_at)
                    .min()
            })
        });
        let stalls = self.inbound.values().map(|i| i.last + config.inbound_idle);
        let forgets = self.completed.values().map(|at| *at + config.completed_memory);
        retransmits.chain(stalls).chain(forgets).min()
    }
}

impl PeerOut {
    fn observe_rtt(&mut self, sample: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(sample);
                self.rttvar = sample / 2;
            }
            Some(srtt) => {
                let deviation = srtt.abs_diff(sample);
                self.rttvar = (self.rttvar * 3 + deviation) / 4;
                self.srtt = Some((srtt * 7 + sample) / 8);
            }
        }
    }

    fn rto(&self, config: &TransferConfig) -> Duration {
        match self.srtt {
            None => config.initial_rto,
            Some(srtt) => (srtt + self.rttvar * 4).clamp(config.min_rto, config.max_rto),
        }
    }
}
