//! Two endpoints on virtual time over a virtual link that can drop packets: handshakes,
//! rekeying by age and by count, loss in both directions, replay and forgery.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use cnspr_proto::identity::{DeviceId, DeviceKey, StaticKeypair};
use cnspr_proto::rng::Rng;
use cnspr_proto::time::Timestamp;
use cnspr_proto::transport::{
    Endpoint, EndpointConfig, EndpointEvent, Hint, ReceiveError, Transmit, HINT_LIFETIME,
};

const LATENCY: Duration = Duration::from_millis(5);

struct Node {
    endpoint: Endpoint,
    address: SocketAddr,
    received: Vec<Vec<u8>>,
    established: usize,
    /// Sessions that ended with their last keys.
    ended: usize,
    /// Where the peer said it sees this node, in the order told.
    observed: Vec<SocketAddr>,
}

/// Two endpoints, A (index 0) and B (index 1), and the datagrams in flight between them.
struct Link {
    nodes: [Node; 2],
    now: Timestamp,
    in_flight: BTreeMap<(Timestamp, u64), (usize, Transmit)>,
    sequence: u64,
    loss_percent: u32,
    rng: Rng,
    /// Every datagram that reached a node, with its receiver, for replay tests.
    delivered: Vec<(usize, Transmit)>,
    /// Every datagram sent to an address neither node has.
    nowhere: Vec<Transmit>,
}

fn key(seed: u8) -> StaticKeypair {
    DeviceKey::from_seed([seed; 32]).noise().clone()
}

fn id(seed: u8) -> DeviceId {
    DeviceKey::from_seed([seed; 32]).device_id()
}

fn node(seed: u8, port: u16, config: &EndpointConfig) -> Node {
    Node {
        endpoint: Endpoint::new(key(seed), [seed.wrapping_add(100); 32], config.clone()),
        address: SocketAddr::from(([127, 0, 0, 1], port)),
        received: Vec::new(),
        established: 0,
        ended: 0,
        observed: Vec::new(),
    }
}

impl Link {
    fn new(config: EndpointConfig) -> Self {
        let mut nodes = [node(1, 1001, &config), node(2, 1002, &config)];
        let (a_key, b_key) = (id(1), id(2));
        let (a_addr, b_addr) = (nodes[0].address, nodes[1].address);
        nodes[0].endpoint.add_peer(b_key, Some(b_addr));
        nodes[1].endpoint.add_peer(a_key, Some(a_addr));
        Link {
            nodes,
            now: Timestamp::from_micros(1_000_000),
            in_flight: BTreeMap::new(),
            sequence: 0,
            loss_percent: 0,
            rng: Rng::from_seed([7; 32]),
            delivered: Vec::new(),
            nowhere: Vec::new(),
        }
    }

    fn key(&self, node: usize) -> DeviceId {
        id(node as u8 + 1)
    }

    fn send(&mut self, from: usize, payload: &[u8]) {
        let peer = self.key(1 - from);
        self.nodes[from]
            .endpoint
            .send(self.now, &peer, payload)
            .expect("known peer with an address");
        self.collect();
    }

    /// Moves every pending transmit onto the wire (dropping some) and every event into
    /// the node's record.
    fn collect(&mut self) {
        for from in 0..2 {
            while let Some(transmit) = self.nodes[from].endpoint.poll_transmit() {
                let Some(to) = self.nodes.iter().position(|n| n.address == transmit.destination) else {
                    self.nowhere.push(transmit);
                    continue;
                };
                assert_ne!(to, from, "nodes only talk to each other");
                if self.rng.next_u32() % 100 < self.loss_percent {
                    continue;
                }
                self.sequence += 1;
                self.in_flight
                    .insert((self.now + LATENCY, self.sequence), (to, transmit));
            }
            while let Some(event) = self.nodes[from].endpoint.poll_event() {
                match event {
                    EndpointEvent::Received { payload, .. } => self.nodes[from].received.push(payload),
                    EndpointEvent::Established { .. } => self.nodes[from].established += 1,
                    EndpointEvent::Observed { address, .. } => self.nodes[from].observed.push(address),
                    EndpointEvent::SessionEnded { .. } => self.nodes[from].ended += 1,
                    EndpointEvent::HandshakeFailed { .. }
                    | EndpointEvent::AddressChanged { .. }
                    | EndpointEvent::Paired { .. } => {}
                }
            }
        }
    }

    /// Runs the link until `deadline`: deliveries and timers in time order.
    fn run_until(&mut self, deadline: Timestamp) {
        loop {
            let next_delivery = self.in_flight.keys().next().map(|(at, _)| *at);
            let next_timer = self.nodes.iter().filter_map(|n| n.endpoint.poll_timeout()).min();
            let next = [next_delivery, next_timer].into_iter().flatten().min();
            match next {
                Some(at) if at <= deadline => {
                    self.now = self.now.max(at);
                    if next_delivery == Some(at) {
                        let Some((_, (to, transmit))) = self.in_flight.pop_first() else {
                            unreachable!()
                        };
                        let from = self.nodes[1 - to].address;
                        let _ = self.nodes[to]
                            .endpoint
                            .handle_datagram(self.now, from, &transmit.datagram);
                        self.delivered.push((to, transmit));
                    } else {
                        for node in &mut self.nodes {
                            node.endpoint.handle_timeout(self.now);
                        }
                    }
                    self.collect();
                }
                _ => break,
            }
        }
        self.now = deadline;
    }

    fn run_for(&mut self, duration: Duration) {
        self.run_until(self.now + duration);
    }

    fn current_hash(&self, node: usize) -> Option<[u8; 32]> {
        let peer = self.key(1 - node);
        self.nodes[node]
            .endpoint
            .current_keys(self.now, &peer)
            .map(|k| *k.handshake_hash())
    }

    /// The last data datagram that reached `to`.
    fn last_data_to(&self, to: usize) -> Vec<u8> {
        let (_, transmit) = self
            .delivered
            .iter()
            .rev()
            .find(|(node, t)| *node == to && t.datagram.get(1) == Some(&5))
            .expect("a data packet was delivered");
        transmit.datagram.clone()
    }

    fn deliver_raw(&mut self, to: usize, datagram: &[u8]) -> Result<(), ReceiveError> {
        let from = self.nodes[1 - to].address;
        let result = self.nodes[to].endpoint.handle_datagram(self.now, from, datagram);
        self.collect();
        result
    }
}

fn established_link() -> Link {
    let mut link = Link::new(EndpointConfig::default());
    link.send(0, b"hello");
    link.run_for(Duration::from_millis(100));
    assert_eq!(link.nodes[1].received, vec![b"hello".to_vec()]);
    link
}

#[test]
fn first_payload_waits_for_the_handshake_then_flows_both_ways() {
    let mut link = established_link();
    assert_eq!(
        link.current_hash(0),
        link.current_hash(1),
        "both sides hold the same keys"
    );
    assert_eq!((link.nodes[0].established, link.nodes[1].established), (1, 1));
    link.send(1, b"back");
    link.run_for(Duration::from_millis(100));
    assert_eq!(link.nodes[0].received, vec![b"back".to_vec()]);
    // Each side heard, inside the handshake, where the other sees it.
    assert_eq!(link.nodes[0].observed, vec![link.nodes[0].address]);
    assert_eq!(link.nodes[1].observed, vec![link.nodes[1].address]);
}

#[test]
fn keys_are_replaced_every_two_minutes_under_steady_traffic() {
    let mut link = established_link();
    let ended = |link: &Link| (link.nodes[0].ended, link.nodes[1].ended);
    let mut hashes = vec![link.current_hash(0)];
    for _ in 0..(10 * 60 * 10) {
        link.send(0, b"a");
        link.send(1, b"b");
        link.run_for(Duration::from_millis(100));
        let hash = link.current_hash(0);
        assert!(hash.is_some(), "keys usable at every moment under traffic");
        if hashes.last() != Some(&hash) {
            hashes.push(hash);
        }
    }
    // Ten minutes: a rekey at 120 s of age each time, so at least four replacements.
    assert!(hashes.len() >= 5, "only {} key sets in ten minutes", hashes.len());
    // Old keys are forgotten: at most current, previous and unconfirmed, and a handshake.
    for node in &link.nodes {
        assert!(
            node.endpoint.indices_in_use() <= 4,
            "{} indices in use",
            node.endpoint.indices_in_use()
        );
    }
    assert_eq!(link.nodes[0].received.len(), 6000);
    assert_eq!(link.nodes[1].received.len(), 6001);
    // Old keys expired behind the new ones: the session never ended.
    assert_eq!(ended(&link), (0, 0));
}

#[test]
fn rekey_continues_through_packet_loss_in_both_directions() {
    let mut link = established_link();
    link.loss_percent = 30;
    let mut hashes = vec![link.current_hash(1)];
    let mut per_minute = Vec::new();
    let mut last = (link.nodes[0].received.len(), link.nodes[1].received.len());
    for minute in 0..15 {
        for _ in 0..600 {
            link.send(0, b"a");
            link.send(1, b"b");
            link.run_for(Duration::from_millis(100));
            let hash = link.current_hash(1);
            if hash.is_some() && hashes.last() != Some(&hash) {
                hashes.push(hash);
            }
        }
        let now = (link.nodes[0].received.len(), link.nodes[1].received.len());
        per_minute.push((minute, now.0 - last.0, now.1 - last.1));
        last = now;
    }
    assert!(
        hashes.len() >= 6,
        "only {} key sets in fifteen minutes at 30% loss",
        hashes.len()
    );
    // With 30% loss about 420 of 600 arrive each minute; a rekey stall would show as a
    // minute with few or none.
    for (minute, to_a, to_b) in per_minute {
        assert!(
            to_a > 300 && to_b > 300,
            "minute {minute}: only {to_a} reached A and {to_b} reached B"
        );
    }
}

#[test]
fn rekey_by_message_count() {
    let config = EndpointConfig {
        session: cnspr_proto::transport::SessionConfig {
            rekey_after_messages: 50,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut link = Link::new(config);
    let mut hashes = Vec::new();
    for i in 0..500u32 {
        link.send(0, &i.to_le_bytes());
        link.run_for(Duration::from_millis(20));
        let hash = link.current_hash(0);
        if hash.is_some() && hashes.last() != Some(&hash) {
            hashes.push(hash);
        }
    }
    assert!(
        hashes.len() >= 8,
        "only {} key sets for 500 messages at 50 per key",
        hashes.len()
    );
    let expected: Vec<Vec<u8>> = (0..500u32).map(|i| i.to_le_bytes().to_vec()).collect();
    assert_eq!(
        link.nodes[1].received, expected,
        "every message arrives once, in order"
    );
}

#[test]
fn idle_keys_expire_and_a_new_handshake_replaces_them() {
    let mut link = established_link();
    let before = link.current_hash(0);
    link.run_for(Duration::from_secs(181));
    assert_eq!(link.current_hash(0), None, "keys are refused after 180 s");
    assert_eq!(link.current_hash(1), None);
    // Each side reports the end once, when its last keys went.
    assert_eq!((link.nodes[0].ended, link.nodes[1].ended), (1, 1));
    link.send(0, b"after");
    link.run_for(Duration::from_millis(100));
    assert_eq!(
        link.nodes[1].received.last().map(Vec::as_slice),
        Some(&b"after"[..])
    );
    assert!(link.current_hash(0).is_some() && link.current_hash(0) != before);
}

#[test]
fn a_replayed_data_packet_is_rejected() {
    let mut link = established_link();
    let packet = link.last_data_to(1);
    assert_eq!(link.deliver_raw(1, &packet), Err(ReceiveError::Rejected));
    assert_eq!(link.nodes[1].received.len(), 1, "delivered once only");
}

#[test]
fn reordering_inside_the_window_is_accepted_exactly_once() {
    let mut link = established_link();
    let peer = link.key(1);
    let mut packets = Vec::new();
    for i in 0..200u32 {
        link.nodes[0]
            .endpoint
            .send(link.now, &peer, &i.to_le_bytes())
            .expect("sends");
        packets.push(
            link.nodes[0]
                .endpoint
                .poll_transmit()
                .expect("sealed at once")
                .datagram,
        );
    }
    for packet in packets.iter().rev() {
        assert_eq!(link.deliver_raw(1, packet), Ok(()));
    }
    for packet in &packets {
        assert_eq!(link.deliver_raw(1, packet), Err(ReceiveError::Rejected));
    }
    assert_eq!(link.nodes[1].received.len(), 201);
}

#[test]
fn a_packet_older_than_the_window_is_rejected() {
    let mut link = established_link();
    let peer = link.key(1);
    let mut packets = Vec::new();
    for i in 0..(cnspr_proto::transport::WINDOW_COUNTERS + 10) {
        link.nodes[0]
            .endpoint
            .send(link.now, &peer, &i.to_le_bytes())
            .expect("sends");
        packets.push(link.nodes[0].endpoint.poll_transmit().expect("sealed").datagram);
    }
    let newest = packets.last().expect("sent some").clone();
    assert_eq!(link.deliver_raw(1, &newest), Ok(()));
    assert_eq!(link.deliver_raw(1, &packets[0]), Err(ReceiveError::Rejected));
    assert_eq!(
        link.deliver_raw(1, &packets[20]),
        Ok(()),
        "inside the window still accepted"
    );
}

#[test]
fn forged_truncated_and_bit_flipped_packets_are_rejected_and_change_nothing() {
    let mut link = established_link();
    let peer = link.key(1);
    link.nodes[0]
        .endpoint
        .send(link.now, &peer, b"genuine payload")
        .expect("sends");
    let packet = link.nodes[0].endpoint.poll_transmit().expect("sealed").datagram;
    for position in 0..packet.len() {
        for bit in 0..8 {
            let mut flipped = packet.clone();
            flipped[position] ^= 1 << bit;
            let result = link.deliver_raw(1, &flipped);
            // A flipped type byte can turn the packet into a handshake initiation, which is
            // unauthenticated by design and answered like any other; it delivers nothing.
            if position != 1 {
                assert!(result.is_err(), "bit {bit} of byte {position} flipped");
            }
        }
    }
    for len in 0..packet.len() {
        assert!(link.deliver_raw(1, &packet[..len]).is_err(), "truncated to {len}");
    }
    let mut forged = packet.clone();
    let body = forged.len() - 16;
    forged[14..body].copy_from_slice(&vec![0x55; body - 14]);
    assert!(link.deliver_raw(1, &forged).is_err(), "forged body");
    assert_eq!(link.nodes[1].received.len(), 1, "nothing got through");
    assert_eq!(link.nodes[1].established, 1, "no new session either");
    assert_eq!(
        link.deliver_raw(1, &packet),
        Ok(()),
        "the genuine packet still opens: no state moved"
    );
    assert_eq!(
        link.nodes[1].received.last().map(Vec::as_slice),
        Some(&b"genuine payload"[..])
    );
}

#[test]
fn a_device_that_is_not_a_peer_cannot_finish_a_handshake() {
    let config = EndpointConfig::default();
    let mut link = Link::new(config.clone());
    // A stranger holding B's key as its peer, but B does not know it.
    let mut stranger = Endpoint::new(key(9), [9; 32], config);
    let b_key = link.key(1);
    stranger.add_peer(b_key, Some(link.nodes[1].address));
    stranger
        .send(link.now, &b_key, b"let me in")
        .expect("stranger knows B");
    let stranger_address = SocketAddr::from(([127, 0, 0, 9], 9));
    let mut refused = false;
    for _ in 0..4 {
        let Some(transmit) = stranger.poll_transmit() else {
            break;
        };
        let now = link.now;
        match link.nodes[1]
            .endpoint
            .handle_datagram(now, stranger_address, &transmit.datagram)
        {
            Err(ReceiveError::NotAPeer) => refused = true,
            other => assert_eq!(other, Ok(()), "B answers the first message like any other"),
        }
        while let Some(answer) = link.nodes[1].endpoint.poll_transmit() {
            let _ = stranger.handle_datagram(now, link.nodes[1].address, &answer.datagram);
        }
    }
    assert!(refused, "B refused the stranger's final handshake message");
    assert!(link.nodes[1].received.is_empty());
    assert_eq!(
        link.nodes[1].endpoint.poll_event(),
        None,
        "no session, no payload"
    );
}

#[test]
fn a_restarted_peer_re_establishes_by_sending() {
    let mut link = established_link();
    let config = EndpointConfig::default();
    let mut restarted = node(2, 1002, &config);
    restarted
        .endpoint
        .add_peer(link.key(0), Some(link.nodes[0].address));
    link.nodes[1] = restarted;
    link.send(1, b"I am back");
    link.run_for(Duration::from_millis(100));
    assert_eq!(
        link.nodes[0].received.last().map(Vec::as_slice),
        Some(&b"I am back"[..])
    );
    link.send(0, b"welcome");
    link.run_for(Duration::from_millis(100));
    assert_eq!(link.nodes[1].received, vec![b"welcome".to_vec()]);
}

#[test]
fn a_payload_larger_than_a_datagram_is_refused_and_the_largest_fits() {
    use cnspr_proto::transport::{SendError, MAX_PAYLOAD_BYTES};
    let mut link = established_link();
    let peer = link.key(1);
    let too_big = vec![0u8; MAX_PAYLOAD_BYTES + 1];
    assert_eq!(
        link.nodes[0].endpoint.send(link.now, &peer, &too_big),
        Err(SendError::TooLarge(MAX_PAYLOAD_BYTES + 1))
    );
    let largest = vec![7u8; MAX_PAYLOAD_BYTES];
    link.send(0, &largest);
    link.run_for(Duration::from_millis(100));
    assert_eq!(link.nodes[1].received.last(), Some(&largest));
    let unknown = id(3);
    assert_eq!(
        link.nodes[0].endpoint.send(link.now, &unknown, b"x"),
        Err(SendError::UnknownPeer)
    );
}

#[test]
fn a_kept_alive_path_gets_an_empty_datagram_after_each_silence_and_only_then() {
    // Keys that last the whole test: no rekey's datagrams among those counted.
    let mut config = EndpointConfig::default();
    config.session.rekey_after = Duration::from_secs(3600);
    config.session.reject_after = Duration::from_secs(7200);
    let mut link = Link::new(config);
    link.send(0, b"hello");
    link.run_for(Duration::from_millis(100));
    let b = link.key(1);
    // The session datagrams A sent B during `seconds` of virtual time, sending `every` so
    // often meanwhile.
    let data_to_b = |link: &Link| {
        let data = cnspr_proto::wire::PacketType::Data as u8;
        link.delivered
            .iter()
            .filter(|(to, t)| *to == 1 && t.datagram[1] == data)
            .count()
    };
    let sent_by_a = |link: &mut Link, seconds: u64, every: Option<u64>| {
        let before = data_to_b(link);
        for second in 0..seconds {
            if every.is_some_and(|every| second % every == 0) {
                link.send(0, b"tick");
            }
            link.run_for(Duration::from_secs(1));
        }
        data_to_b(link) - before
    };
    assert_eq!(sent_by_a(&mut link, 60, None), 0, "nothing without a keepalive");
    link.nodes[0]
        .endpoint
        .set_keepalive(&b, Some(Duration::from_secs(15)));
    // One at once (nothing went since the hello, a minute ago), then one every 15 s.
    assert_eq!(sent_by_a(&mut link, 62, None), 5);
    // Traffic every 10 s keeps the path alive by itself: no keepalive comes between.
    assert_eq!(sent_by_a(&mut link, 60, Some(10)), 6);
    link.nodes[0].endpoint.set_keepalive(&b, None);
    assert_eq!(sent_by_a(&mut link, 60, None), 0);
    assert_eq!(
        link.nodes[1]
            .received
            .iter()
            .filter(|p| p.as_slice() == b"tick")
            .count(),
        6
    );
}

#[test]
fn an_answer_to_an_attempt_made_again_since_still_makes_the_session() {
    let mut link = Link::new(EndpointConfig::default());
    link.send(0, b"hello");
    // News of paths makes the attempt again twice before its answer is back, and those
    // go where nothing answers yet (a filter not open): only the first one's answer comes.
    let peer = link.key(1);
    for _ in 0..2 {
        link.now = link.now + Duration::from_millis(1);
        link.nodes[0].endpoint.connect_now(link.now, &peer);
        while link.nodes[0].endpoint.poll_transmit().is_some() {}
    }
    // Well before the retry (a second): the first answer made the session.
    link.run_for(Duration::from_millis(50));
    assert_eq!(link.nodes[1].received, vec![b"hello".to_vec()]);
    assert_eq!((link.nodes[0].established, link.nodes[1].established), (1, 1));
    link.send(1, b"back");
    link.run_for(Duration::from_millis(50));
    assert_eq!(link.nodes[0].received, vec![b"back".to_vec()]);
}

#[test]
fn devices_that_started_handshakes_at_once_replace_their_keys_with_one_handshake() {
    let mut link = Link::new(EndpointConfig::default());
    // Both start at once: the handshakes cross, and each side ends up holding keys it
    // initiated itself.
    link.send(0, b"hello");
    link.send(1, b"hello");
    link.run_for(Duration::from_millis(100));
    let initiations_by = |link: &Link, from: usize| {
        let init = cnspr_proto::wire::PacketType::HandshakeInit as u8;
        link.delivered
            .iter()
            .filter(|(to, t)| *to == 1 - from && t.datagram[1] == init)
            .count()
    };
    assert_eq!((initiations_by(&link, 0), initiations_by(&link, 1)), (1, 1));
    // Ten minutes of a probe's traffic: a message each way every five seconds.
    for _ in 0..120 {
        link.send(0, b"ping");
        link.run_for(Duration::from_millis(10));
        link.send(1, b"ack");
        link.run_for(Duration::from_millis(4990));
    }
    // A rekey every two minutes of key age, by one side only (the pair's first by key):
    // had both started one whenever their own keys came of age, there would be two each
    // time, crossing again, for good.
    let first = usize::from(key(2).public() < key(1).public());
    let rekeys = (
        initiations_by(&link, first) - 1,
        initiations_by(&link, 1 - first) - 1,
    );
    assert_eq!(rekeys, (4, 0), "rekeys by the first and the second device");
    assert_eq!(link.nodes[1].received.len(), 121);
    assert_eq!(link.nodes[0].received.len(), 121);
}

#[test]
fn a_rekey_goes_only_where_the_keys_work() {
    let mut link = Link::new(EndpointConfig::default());
    // Each may also be elsewhere (its address record): a new session calls there too.
    let elsewhere: [SocketAddr; 2] =
        ["192.0.2.1:3030", "192.0.2.2:3030"].map(|a| a.parse().expect("an address"));
    for n in 0..2 {
        let other = link.key(1 - n);
        link.nodes[n].endpoint.set_candidates(&other, &[elsewhere[1 - n]]);
    }
    link.send(0, b"hello");
    link.run_for(Duration::from_millis(100));
    let initiations_to = |link: &Link, destinations: [SocketAddr; 2]| {
        let init = cnspr_proto::wire::PacketType::HandshakeInit as u8;
        let delivered = link.delivered.iter().map(|(_, t)| t);
        delivered
            .chain(&link.nowhere)
            .filter(|t| destinations.contains(&t.destination) && t.datagram[1] == init)
            .count()
    };
    let working = [link.nodes[0].address, link.nodes[1].address];
    assert_eq!(
        (initiations_to(&link, working), initiations_to(&link, elsewhere)),
        (1, 1)
    );
    let first_keys = link.current_hash(0);
    for _ in 0..30 {
        link.send(0, b"a");
        link.send(1, b"b");
        link.run_for(Duration::from_secs(5));
    }
    assert_ne!(link.current_hash(0), first_keys, "the keys were replaced");
    assert_eq!(link.current_hash(0), link.current_hash(1));
    assert_eq!(
        (initiations_to(&link, working), initiations_to(&link, elsewhere)),
        (2, 1),
        "the rekey went to the working address only"
    );
}

#[test]
fn a_hint_is_called_while_fresh_and_not_once_its_lifetime_passed() {
    let hinted: SocketAddr = "192.0.2.9:3030".parse().expect("an address");
    let init = cnspr_proto::wire::PacketType::HandshakeInit as u8;
    let initiations_to_hint = |link: &Link| {
        let delivered = link.delivered.iter().map(|(_, t)| t);
        delivered
            .chain(&link.nowhere)
            .filter(|t| t.destination == hinted && t.datagram[1] == init)
            .count()
    };
    // Heard just now: the first handshake goes there too.
    let mut fresh = Link::new(EndpointConfig::default());
    let peer = fresh.key(1);
    let now = fresh.now;
    assert!(fresh.nodes[0]
        .endpoint
        .set_hint(now, &peer, Hint::SeenElsewhere, hinted));
    assert!(
        !fresh.nodes[0]
            .endpoint
            .set_hint(now, &peer, Hint::SeenElsewhere, hinted),
        "the same fresh hint again is no news"
    );
    fresh.send(0, b"hello");
    fresh.run_for(Duration::from_millis(100));
    assert_eq!(initiations_to_hint(&fresh), 1);
    // Heard a lifetime ago: stale, not called, and news when heard again.
    let mut stale = Link::new(EndpointConfig::default());
    let then = stale.now;
    assert!(stale.nodes[0]
        .endpoint
        .set_hint(then, &peer, Hint::SeenElsewhere, hinted));
    stale.run_for(HINT_LIFETIME);
    stale.send(0, b"hello");
    stale.run_for(Duration::from_millis(100));
    assert_eq!(
        stale.nodes[1].received,
        vec![b"hello".to_vec()],
        "delivered on its address"
    );
    assert_eq!(initiations_to_hint(&stale), 0);
    let now = stale.now;
    assert!(stale.nodes[0]
        .endpoint
        .set_hint(now, &peer, Hint::SeenElsewhere, hinted));
}
