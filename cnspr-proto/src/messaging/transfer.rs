//! Reliable delivery of one unit to one peer: the unit is cut into chunks, each
//! acknowledged by the receiver; chunks not acknowledged within the retransmission timeout
//! are sent again, and at most a window of chunks per peer is in flight (pacing). The
//! receiver reassembles within a memory budget and remembers finished transfers for a
//! while, so that a retransmission after a lost acknowledgement is acknowledged again
//! rather than started over.
//!
//! The chunk that completes a unit is acknowledged only once the receiver accepted the
//! unit ([`Transfers::accept`]), and that acknowledgement says so (`complete`): only it
//! ends the transfer. A refused unit ([`Transfers::refuse`]) keeps its other chunks, and
//! the sender's retransmission of the last one offers it again. A receiver that lost the
//! chunks it had acknowledged (it restarted, or dropped a refused unit over its budget)
//! acknowledges the rest without `complete`; the sender then sends every chunk again.
//!
//! Cost: an input touches only its peer's transfers; retransmissions, stalled
//! reassemblies and remembered transfers each keep their deadlines in a [`Timers`] table,
//! so finding the next one is never a walk over every peer or chunk.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use super::wire::{Packet, CHUNK_BYTES, MAX_CHUNKS};
use crate::identity::DeviceId;
use crate::time::Timestamp;
use crate::timers::Timers;

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
    /// Bytes one peer may hold of it: two units of the largest size (about a quarter),
    /// so that a peer sending without end (a stolen device) leaves room for others'
    /// full-size units.
    pub max_inbound_bytes_per_peer: usize,
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
            max_inbound_bytes_per_peer: 2 * MAX_CHUNKS as usize * CHUNK_BYTES,
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
    /// Chunks from here on were never sent (since the last restart): the search for the
    /// next retransmission stops here, instead of walking a large unit's every chunk
    /// at every acknowledgement.
    sent_end: u32,
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
}

/// A unit whose chunks are all in, waiting for the receiver's verdict.
#[derive(Debug)]
pub struct Arrival {
    /// The transfer's number.
    pub transfer: u64,
    /// The chunk that completed it: acknowledged only if the unit is accepted.
    index: u32,
    count: u32,
    /// The unit.
    pub bytes: Vec<u8>,
}

/// Every transfer of one device, both ways.
pub struct Transfers {
    config: TransferConfig,
    next_id: u64,
    peers: BTreeMap<DeviceId, PeerOut>,
    /// Peers whose windows may let something out now (a transfer started, an
    /// acknowledgement came): [`Transfers::fill`] looks at them and at those whose
    /// retransmission is due, and at no other.
    touched: BTreeSet<DeviceId>,
    /// Each peer's next retransmission. One due by the time its peer was last filled and
    /// still not sent waits for the window (an acknowledgement or a later deadline), not a
    /// timer.
    retransmits: Timers<DeviceId>,
    inbound: BTreeMap<(DeviceId, u64), Inbound>,
    /// When each reassembly is given up if nothing more comes.
    stalls: Timers<(DeviceId, u64)>,
    inbound_reserved: usize,
    /// Finished inbound transfers, until they are forgotten.
    completed: Timers<(DeviceId, u64)>,
    packets: VecDeque<(DeviceId, Packet)>,
    done: VecDeque<(DeviceId, u64)>,
}

impl Transfers {
    /// No transfers yet; transfer numbers start at `first_id` (random, so that a restarted
    /// device does not reuse numbers its peers still remember as finished).
    pub fn new(config: TransferConfig, first_id: u64) -> Self {
        Self {
            config,
            next_id: first_id,
            peers: BTreeMap::new(),
            touched: BTreeSet::new(),
            retransmits: Timers::new(),
            inbound: BTreeMap::new(),
            stalls: Timers::new(),
            inbound_reserved: 0,
            completed: Timers::new(),
            packets: VecDeque::new(),
            done: VecDeque::new(),
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
            sent_end: 0,
            backoff: 0,
        });
        self.touched.insert(to);
        id
    }

    /// How far outbound transfer `id` to `to` is: bytes acknowledged, of its bytes
    /// (`None` once it is done, or if there is no such transfer).
    pub fn progress(&self, to: &DeviceId, id: u64) -> Option<(u64, u64)> {
        let outbound = self.peers.get(to)?.queue.iter().find(|o| o.id == id)?;
        let total = outbound.data.len() as u64;
        let acknowledged = (u64::from(outbound.acked_count) * CHUNK_BYTES as u64).min(total);
        Some((acknowledged, total))
    }

    /// Drops every outbound transfer to `peer` (it became unreachable); returns their
    /// numbers.
    pub fn cancel_peer(&mut self, peer: &DeviceId) -> Vec<u64> {
        self.retransmits.clear(peer);
        self.peers
            .get_mut(peer)
            .map(|p| p.queue.drain(..).map(|o| o.id).collect())
            .unwrap_or_default()
    }

    /// Forgets everything about `peer` (it was removed from the roster).
    pub fn forget_peer(&mut self, peer: &DeviceId) {
        self.peers.remove(peer);
        self.touched.remove(peer);
        self.retransmits.clear(peer);
        for key in super::keys_of(&self.inbound, peer) {
            self.drop_inbound(&key);
        }
        let remembered: Vec<(DeviceId, u64)> = self
            .completed
            .keys_from(&(*peer, 0))
            .take_while(|(p, _)| p == peer)
            .collect();
        for key in remembered {
            self.completed.clear(&key);
        }
    }

    fn drop_inbound(&mut self, key: &(DeviceId, u64)) {
        if let Some(inbound) = self.inbound.remove(key) {
            self.inbound_reserved -= inbound.reserved;
        }
        self.stalls.clear(key);
    }

    /// Takes a packet from `from`; returns a unit once all of its chunks are in, for
    /// [`Transfers::accept`] or [`Transfers::refuse`].
    pub fn handle_packet(&mut self, now: Timestamp, from: DeviceId, packet: Packet) -> Option<Arrival> {
        match packet {
            Packet::Ack {
                transfer,
                indices,
                complete,
            } => {
                self.on_ack(now, from, transfer, &indices, complete);
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

    fn on_ack(&mut self, now: Timestamp, from: DeviceId, transfer: u64, indices: &[u32], complete: bool) {
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
        if !complete && outbound.acked_count == outbound.count {
            // Every chunk acknowledged and the unit not taken: the receiver lost what it
            // had. All of it goes again.
            outbound.restart();
        }
        for sample in samples {
            peer.observe_rtt(sample);
        }
        if complete {
            peer.queue.remove(position);
            self.done.push_back((from, transfer));
        }
        self.touched.insert(from);
    }

    fn on_chunk(
        &mut self,
        now: Timestamp,
        from: DeviceId,
        transfer: u64,
        index: u32,
        count: u32,
        data: Vec<u8>,
    ) -> Option<Arrival> {
        let key = (from, transfer);
        let ack = |complete| Packet::Ack {
            transfer,
            indices: vec![index],
            complete,
        };
        if self.completed.get(&key).is_some() {
            self.packets.push_back((from, ack(true)));
            return None;
        }
        let last = index + 1 == count;
        let whole_chunk = data.len() == CHUNK_BYTES;
        if !last && !whole_chunk || count > MAX_CHUNKS {
            return None;
        }
        if !self.inbound.contains_key(&key) && !self.admit_inbound(key, count) {
            // Over budget: no acknowledgement, so the sender tries again later.
            return None;
        }
        let inbound = self.inbound.get_mut(&key)?;
        if inbound.count != count {
            return None;
        }
        self.stalls.set(key, Some(now + self.config.inbound_idle));
        let inbound = self.inbound.get_mut(&key)?;
        let slot = &mut inbound.parts[index as usize];
        if slot.is_some() {
            self.packets.push_back((from, ack(false)));
            return None;
        }
        *slot = Some(data);
        inbound.received += 1;
        if inbound.received < inbound.count {
            self.packets.push_back((from, ack(false)));
            return None;
        }
        let inbound = self.inbound.remove(&key)?;
        self.inbound_reserved -= inbound.reserved;
        self.stalls.clear(&key);
        Some(Arrival {
            transfer,
            index,
            count,
            bytes: inbound.parts.into_iter().flatten().flatten().collect(),
        })
    }

    /// The receiver took the unit: its last chunk is acknowledged, and the transfer is
    /// remembered as finished.
    pub fn accept(&mut self, now: Timestamp, from: DeviceId, arrival: &Arrival) {
        let ack = Packet::Ack {
            transfer: arrival.transfer,
            indices: vec![arrival.index],
            complete: true,
        };
        self.packets.push_back((from, ack));
        self.remember_completed(now, (from, arrival.transfer));
    }

    /// The receiver cannot take the unit now: its last chunk stays unacknowledged, so the
    /// sender sends it again, and the other chunks wait for it (within the same budgets
    /// as any reassembly; over them, they are dropped, the retransmitted chunk is
    /// acknowledged without `complete`, and the sender sends them all again).
    pub fn refuse(&mut self, now: Timestamp, from: DeviceId, arrival: Arrival) {
        let key = (from, arrival.transfer);
        if arrival.count == 1 || !self.admit_inbound(key, arrival.count) {
            return;
        }
        let Some(inbound) = self.inbound.get_mut(&key) else {
            return;
        };
        for (index, part) in arrival.bytes.chunks(CHUNK_BYTES).enumerate() {
            if index as u32 != arrival.index {
                inbound.parts[index] = Some(part.to_vec());
                inbound.received += 1;
            }
        }
        self.stalls.set(key, Some(now + self.config.inbound_idle));
    }

    /// Starts reassembling `key` if the per-peer and memory budgets allow.
    fn admit_inbound(&mut self, key: (DeviceId, u64), count: u32) -> bool {
        let reserved = count as usize * CHUNK_BYTES;
        let peers_own = self.inbound.range((key.0, 0)..=(key.0, u64::MAX));
        let (units, bytes) = peers_own.fold((0, 0), |(units, bytes), (_, inbound)| {
            (units + 1, bytes + inbound.reserved)
        });
        if units >= self.config.max_inbound_per_peer
            || bytes + reserved > self.config.max_inbound_bytes_per_peer
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
        };
        self.inbound.insert(key, inbound);
        true
    }

    /// Remembers a finished transfer until `completed_memory` has passed (the oldest is
    /// forgotten first beyond `max_completed`).
    fn remember_completed(&mut self, now: Timestamp, key: (DeviceId, u64)) {
        if self.completed.len() >= self.config.max_completed {
            if let Some(oldest) = self.completed.first() {
                self.completed.clear(&oldest);
            }
        }
        self.completed.set(key, Some(now + self.config.completed_memory));
    }

    /// Sends what the windows allow: new chunks, and chunks whose acknowledgement is
    /// overdue. Call after every input; it looks only at the peers that input touched and
    /// those whose retransmission is due.
    pub fn fill(&mut self, now: Timestamp) {
        let mut peers = std::mem::take(&mut self.touched);
        peers.extend(self.retransmits.due(now));
        for peer in peers {
            self.fill_peer(now, peer);
        }
    }

    fn fill_peer(&mut self, now: Timestamp, peer: DeviceId) {
        let config = &self.config;
        let Some(state) = self.peers.get_mut(&peer) else {
            self.retransmits.clear(&peer);
            return;
        };
        let rto = state.rto(config);
        let mut in_flight = 0usize;
        for outbound in &mut state.queue {
            let timeout = outbound.timeout(rto, config);
            let mut timed_out = false;
            for index in outbound.first_unacked..outbound.count {
                let i = index as usize;
                if outbound.acked[i] {
                    continue;
                }
                let due = match outbound.sent[i] {
                    None => true,
                    // Due by the same rule as its deadline (whole microseconds), so that a
                    // chunk never waits past a deadline that was already let go.
                    Some(sent) if sent + timeout <= now => {
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
                outbound.sent_end = outbound.sent_end.max(index + 1);
                in_flight += 1;
                let packet = Packet::Chunk {
                    transfer: outbound.id,
                    index,
                    count: outbound.count,
                    data: outbound.chunk(index),
                };
                self.packets.push_back((peer, packet));
            }
            if timed_out {
                outbound.backoff = (outbound.backoff + 1).min(8);
            }
            if in_flight >= config.window_chunks {
                break;
            }
        }
        let next = state.next_retransmit(now, config);
        self.retransmits.set(peer, next);
    }

    /// Drops reassemblies that stalled and finished transfers no longer worth remembering.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        for key in self.stalls.due(now) {
            self.drop_inbound(&key);
        }
        for key in self.completed.due(now) {
            self.completed.clear(&key);
        }
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
        [self.retransmits.next(), self.stalls.next(), self.completed.next()]
            .into_iter()
            .flatten()
            .min()
    }
}

impl Outbound {
    /// Forgets every acknowledgement: all chunks go again, at once.
    fn restart(&mut self) {
        self.acked.fill(false);
        self.acked_count = 0;
        self.sent.fill(None);
        self.sent_end = 0;
        // Acknowledgements of the earlier sends may still come: no round-trip samples.
        self.resent.fill(true);
        self.first_unacked = 0;
    }

    /// How long a chunk of it waits for its acknowledgement, backoff included.
    fn timeout(&self, rto: Duration, config: &TransferConfig) -> Duration {
        (rto * 2u32.saturating_pow(self.backoff)).min(config.max_rto)
    }
}

impl PeerOut {
    /// The earliest retransmission after `now` (one due by now and not sent waits for
    /// room in the window).
    fn next_retransmit(&self, now: Timestamp, config: &TransferConfig) -> Option<Timestamp> {
        let rto = self.rto(config);
        self.queue
            .iter()
            .filter_map(|outbound| {
                let timeout = outbound.timeout(rto, config);
                (outbound.first_unacked..outbound.sent_end)
                    .filter(|i| !outbound.acked[*i as usize])
                    .filter_map(|i| outbound.sent[i as usize])
                    .map(|sent| sent + timeout)
                    .filter(|deadline| *deadline > now)
                    .min()
            })
            .min()
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    /// Carries every packet `from` has for `to`; returns the units that completed.
    fn carry(now: Timestamp, from: (DeviceId, &mut Transfers), to: &mut Transfers) -> Vec<Arrival> {
        let (sender, from) = from;
        std::iter::from_fn(|| from.poll_transmit())
            .filter_map(|(_, packet)| to.handle_packet(now, sender, packet))
            .collect()
    }

    /// A sends B a unit of three chunks, its chunks handed out and not yet carried.
    struct Started {
        a_id: DeviceId,
        b_id: DeviceId,
        a: Transfers,
        b: Transfers,
        data: Vec<u8>,
        now: Timestamp,
    }

    fn three_chunks_started() -> Started {
        let (a_id, b_id) = (DeviceId::from_bytes([1; 32]), DeviceId::from_bytes([2; 32]));
        let mut a = Transfers::new(TransferConfig::default(), 10);
        let data: Vec<u8> = (0..CHUNK_BYTES * 2 + 100).map(|i| (i * 7) as u8).collect();
        let now = Timestamp::from_micros(1_000_000);
        a.start(b_id, data.clone());
        a.fill(now);
        Started {
            a_id,
            b_id,
            a,
            b: Transfers::new(TransferConfig::default(), 20),
            data,
            now,
        }
    }

    #[test]
    fn a_refused_unit_is_offered_again_by_the_retransmission_of_its_last_chunk() {
        let Started {
            a_id,
            b_id,
            mut a,
            mut b,
            data,
            now,
        } = three_chunks_started();
        let mut arrived = carry(now, (a_id, &mut a), &mut b);
        assert_eq!(arrived.len(), 1);
        let arrival = arrived.remove(0);
        assert_eq!(arrival.bytes, data);
        b.refuse(now, a_id, arrival);
        carry(now, (b_id, &mut b), &mut a);
        a.fill(now);
        assert!(
            a.poll_event().is_none(),
            "the sender still holds the refused unit"
        );
        assert!(
            carry(now, (a_id, &mut a), &mut b).is_empty(),
            "nothing is resent before its timeout"
        );
        let later = now + Duration::from_secs(1);
        a.handle_timeout(later);
        let mut again = carry(later, (a_id, &mut a), &mut b);
        assert_eq!(again.len(), 1, "the last chunk alone completes it again");
        let arrival = again.remove(0);
        assert_eq!(arrival.bytes, data);
        b.accept(later, a_id, &arrival);
        carry(later, (b_id, &mut b), &mut a);
        assert_eq!(a.poll_event(), Some((b_id, 10)), "accepted: the transfer is done");
        // A late copy of the last chunk is acknowledged again, not offered again.
        let copy = Packet::Chunk {
            transfer: 10,
            index: 2,
            count: 3,
            data: data[CHUNK_BYTES * 2..].to_vec(),
        };
        assert!(b.handle_packet(later, a_id, copy).is_none());
        assert!(matches!(b.poll_transmit(), Some((peer, Packet::Ack { transfer: 10, .. })) if peer == a_id));
    }

    #[test]
    fn a_receiver_that_lost_acknowledged_chunks_gets_the_whole_unit_again() {
        let Started {
            a_id,
            b_id,
            mut a,
            mut b,
            data,
            now,
        } = three_chunks_started();
        // The last chunk is lost on the way; the first two arrive and are acknowledged.
        let chunks: Vec<Packet> = std::iter::from_fn(|| a.poll_transmit()).map(|(_, p)| p).collect();
        for packet in chunks.into_iter().take(2) {
            assert!(b.handle_packet(now, a_id, packet).is_none());
        }
        carry(now, (b_id, &mut b), &mut a);
        // The receiver restarts: what it had is gone.
        let mut b = Transfers::new(TransferConfig::default(), 30);
        let later = now + Duration::from_secs(1);
        a.handle_timeout(later);
        assert!(
            carry(later, (a_id, &mut a), &mut b).is_empty(),
            "one chunk of three"
        );
        carry(later, (b_id, &mut b), &mut a);
        assert!(
            a.poll_event().is_none(),
            "every chunk acknowledged, but not the unit"
        );
        a.fill(later);
        let mut arrived = carry(later, (a_id, &mut a), &mut b);
        assert_eq!(arrived.len(), 1, "the whole unit came again");
        let arrival = arrived.remove(0);
        assert_eq!(arrival.bytes, data);
        b.accept(later, a_id, &arrival);
        carry(later, (b_id, &mut b), &mut a);
        assert_eq!(a.poll_event(), Some((b_id, 10)));
    }

    #[test]
    fn progress_counts_acknowledged_bytes_until_the_unit_is_done() {
        let mut s = three_chunks_started();
        let total = s.data.len() as u64;
        assert_eq!(s.a.progress(&s.b_id, 10), Some((0, total)));
        assert_eq!(s.a.progress(&s.b_id, 11), None, "no such transfer");
        let chunks: Vec<Packet> = std::iter::from_fn(|| s.a.poll_transmit())
            .map(|(_, p)| p)
            .collect();
        for packet in chunks.into_iter().take(2) {
            assert!(s.b.handle_packet(s.now, s.a_id, packet).is_none());
        }
        carry(s.now, (s.b_id, &mut s.b), &mut s.a);
        let two_chunks = 2 * CHUNK_BYTES as u64;
        assert_eq!(s.a.progress(&s.b_id, 10), Some((two_chunks, total)));
        s.a.handle_timeout(s.now + Duration::from_secs(1));
        let arrival = carry(s.now, (s.a_id, &mut s.a), &mut s.b).remove(0);
        s.b.accept(s.now, s.a_id, &arrival);
        carry(s.now, (s.b_id, &mut s.b), &mut s.a);
        assert_eq!(s.a.poll_event(), Some((s.b_id, 10)));
        assert_eq!(s.a.progress(&s.b_id, 10), None, "done");
    }

    #[test]
    fn one_peer_cannot_take_the_whole_reassembly_budget() {
        let mut b = Transfers::new(TransferConfig::default(), 20);
        let now = Timestamp::from_micros(1_000_000);
        // The first chunk of a largest-size unit, from `peer`, as transfer `transfer`;
        // whether b took it (acknowledged it).
        let mut offer = |peer: DeviceId, transfer: u64| {
            let first = Packet::Chunk {
                transfer,
                index: 0,
                count: MAX_CHUNKS,
                data: vec![0; CHUNK_BYTES],
            };
            assert!(b.handle_packet(now, peer, first).is_none());
            std::iter::from_fn(|| b.poll_transmit()).any(|(to, packet)| {
                to == peer && matches!(packet, Packet::Ack { transfer: t, .. } if t == transfer)
            })
        };
        let thief = DeviceId::from_bytes([9; 32]);
        let taken: Vec<bool> = (1..=6).map(|transfer| offer(thief, transfer)).collect();
        assert_eq!(
            taken,
            [true, true, false, false, false, false],
            "two largest units per peer"
        );
        for honest in 1..=5u8 {
            assert!(
                offer(DeviceId::from_bytes([honest; 32]), 1),
                "room for device {honest}"
            );
        }
    }
}
