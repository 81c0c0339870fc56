//! A relayed path as the endpoint sees it: two endpoints whose only path is through a
//! third device, carried by hand here as the node carries it (`node/relay.rs`).

use std::net::SocketAddr;

use cnspr_proto::identity::{DeviceId, DeviceKey};
use cnspr_proto::payload::Payload;
use cnspr_proto::time::Timestamp;
use cnspr_proto::transport::relay_path::is_relay_address;
use cnspr_proto::transport::{
    Endpoint, EndpointConfig, EndpointEvent, ReceiveError, MAX_CARRIED_PAYLOAD_BYTES, MAX_PAYLOAD_BYTES,
};

fn device(seed: u8) -> DeviceKey {
    DeviceKey::from_seed([seed; 32])
}

fn endpoint(seed: u8) -> Endpoint {
    Endpoint::new(
        device(seed).noise().clone(),
        [seed; 32],
        EndpointConfig::default(),
    )
}

/// A and B know each other at addresses that lead nowhere, and both reach R.
struct Carried {
    a: Endpoint,
    b: Endpoint,
    relay: DeviceId,
    now: Timestamp,
}

impl Carried {
    fn new() -> Self {
        let (mut a, mut b) = (endpoint(1), endpoint(2));
        let nowhere = |port| Some(SocketAddr::from(([192, 0, 2, 99], port)));
        a.add_peer(device(2).device_id(), nowhere(1));
        b.add_peer(device(1).device_id(), nowhere(2));
        a.add_peer(device(3).device_id(), None);
        b.add_peer(device(3).device_id(), None);
        a.set_relay(&device(2).device_id(), Some(device(3).device_id()));
        Self {
            a,
            b,
            relay: device(3).device_id(),
            now: Timestamp::from_micros(1_000_000),
        }
    }

    /// A and B with a session through the relay: A's first message carried to B.
    fn talking() -> Self {
        let mut path = Self::new();
        let b_id = device(2).device_id();
        path.a.send(path.now, &b_id, b"first").expect("accepted");
        path.carry();
        path
    }

    /// Carries what each has for the other through the relay until both are quiet; the
    /// size of every payload the relay was handed.
    fn carry(&mut self) -> Vec<usize> {
        let (a_id, b_id) = (device(1).device_id(), device(2).device_id());
        let mut sizes = Vec::new();
        loop {
            while self.a.poll_transmit().is_some() {}
            while self.b.poll_transmit().is_some() {}
            let mut moved = false;
            while let Some(out) = self.a.poll_relayed() {
                assert_eq!((out.relay, out.to), (self.relay, b_id));
                sizes.push(wrapped(out.to, out.datagram.clone()));
                let _ = self.b.handle_relayed(self.now, self.relay, a_id, &out.datagram);
                moved = true;
            }
            while let Some(out) = self.b.poll_relayed() {
                assert_eq!((out.relay, out.to), (self.relay, a_id));
                sizes.push(wrapped(out.to, out.datagram.clone()));
                let _ = self.a.handle_relayed(self.now, self.relay, b_id, &out.datagram);
                moved = true;
            }
            if !moved {
                return sizes;
            }
        }
    }
}

/// The size of the payload that carries `datagram` to the relay.
fn wrapped(to: DeviceId, datagram: Vec<u8>) -> usize {
    Payload::Relay { to, datagram }.encode().expect("encodes").len()
}

fn received(endpoint: &mut Endpoint) -> Vec<Vec<u8>> {
    std::iter::from_fn(|| endpoint.poll_event())
        .filter_map(|event| match event {
            EndpointEvent::Received { payload, .. } => Some(payload),
            _ => None,
        })
        .collect()
}

#[test]
fn the_largest_payload_crosses_a_relayed_path_in_one_datagram_each_way() {
    let mut path = Carried::new();
    let (a_id, b_id) = (device(1).device_id(), device(2).device_id());
    let largest = vec![9u8; MAX_PAYLOAD_BYTES];
    path.a.send(path.now, &b_id, &largest).expect("accepted");
    let mut sizes = path.carry();
    assert_eq!(received(&mut path.b), std::slice::from_ref(&largest));
    path.b.send(path.now, &a_id, &largest).expect("accepted");
    sizes.extend(path.carry());
    assert_eq!(received(&mut path.a), [largest]);
    // The handshake and the data went through the relay, none over what a datagram to it
    // carries.
    assert!(sizes.len() >= 4, "{sizes:?}");
    assert!(sizes.iter().all(|s| *s <= MAX_CARRIED_PAYLOAD_BYTES), "{sizes:?}");
    assert!(sizes.contains(&MAX_CARRIED_PAYLOAD_BYTES), "{sizes:?}");
    assert_eq!(path.a.relayed_through(&b_id), Some(path.relay));
    assert_eq!(path.b.relayed_through(&a_id), Some(path.relay));
}

#[test]
fn a_relay_that_names_the_wrong_sender_is_refused() {
    let mut path = Carried::new();
    let (a_id, b_id) = (device(1).device_id(), device(2).device_id());
    path.a.send(path.now, &b_id, b"hello").expect("accepted");
    path.carry();
    assert_eq!(received(&mut path.b), [b"hello".to_vec()]);
    // The relay labels A's next datagram as a fourth device's: B refuses it and keeps
    // A's path as it was.
    let other = device(4).device_id();
    path.b.add_peer(other, None);
    path.a.send(path.now, &b_id, b"relabelled").expect("accepted");
    let out = path.a.poll_relayed().expect("a datagram for the relay");
    assert_eq!(
        path.b.handle_relayed(path.now, path.relay, other, &out.datagram),
        Err(ReceiveError::Rejected)
    );
    assert!(received(&mut path.b).is_empty());
    assert_eq!(path.b.relayed_through(&a_id), Some(path.relay));
    // The same datagram with its true sender is taken.
    assert_eq!(
        path.b.handle_relayed(path.now, path.relay, a_id, &out.datagram),
        Ok(())
    );
    assert_eq!(received(&mut path.b), [b"relabelled".to_vec()]);
}

#[test]
fn a_datagram_from_a_relayed_paths_address_over_the_network_is_spoofed() {
    let mut path = Carried::talking();
    let b_id = device(2).device_id();
    let (a_id, relay) = (device(1).device_id(), path.relay);
    let relayed = path.b.peer_address(&a_id).expect("a path");
    assert!(is_relay_address(&relayed));
    path.a.send(path.now, &b_id, b"again").expect("accepted");
    let out = path.a.poll_relayed().expect("a datagram");
    assert_eq!(
        path.b.handle_datagram(path.now, relayed, &out.datagram),
        Err(ReceiveError::Rejected)
    );
    assert_eq!(
        path.b.handle_relayed(path.now, relay, a_id, &out.datagram),
        Ok(())
    );
}

#[test]
fn a_punch_while_relayed_calls_direct_paths_only_and_its_failure_keeps_the_relayed_session() {
    let mut path = Carried::talking();
    let b_id = device(2).device_id();
    assert_eq!(received(&mut path.b), [b"first".to_vec()]);
    assert_eq!(path.a.relayed_through(&b_id), Some(path.relay));
    while path.a.poll_event().is_some() {}
    // The punch goes to where B may be reached directly, and not through the relay,
    // whose answer would come first and end it relayed again.
    path.a.call_directly(path.now, &b_id);
    let sent: Vec<_> = std::iter::from_fn(|| path.a.poll_transmit()).collect();
    assert!(!sent.is_empty());
    assert!(sent.iter().all(|t| !is_relay_address(&t.destination)), "{sent:?}");
    assert!(path.a.poll_relayed().is_none());
    // Nothing answers on a direct path, every retry as well, until the handshake gives
    // up, while B goes on talking through the relay: no failure is reported, and the
    // relayed session carries on.
    let mut events = Vec::new();
    for second in 0..40 {
        path.now = path.now + std::time::Duration::from_secs(1);
        path.a.handle_timeout(path.now);
        while path.a.poll_transmit().is_some() {}
        assert!(path.a.poll_relayed().is_none());
        if second % 5 == 0 {
            let a_id = device(1).device_id();
            path.b.send(path.now, &a_id, b"still here").expect("accepted");
            path.carry();
        }
        events.extend(std::iter::from_fn(|| path.a.poll_event()));
    }
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, EndpointEvent::HandshakeFailed { .. })),
        "{events:?}"
    );
    path.a.send(path.now, &b_id, b"still").expect("accepted");
    path.carry();
    assert_eq!(received(&mut path.b), [b"still".to_vec()]);
    assert_eq!(path.a.relayed_through(&b_id), Some(path.relay));
}

#[test]
fn a_handshake_asked_for_during_a_punch_goes_through_the_relay_too() {
    let mut path = Carried::talking();
    let b_id = device(2).device_id();
    path.a.call_directly(path.now, &b_id);
    while path.a.poll_transmit().is_some() {}
    assert!(path.a.poll_relayed().is_none());
    // A probe failed (the failure detector asks for a handshake): every path, now.
    path.a.connect(path.now, &b_id);
    let sent: Vec<_> = std::iter::from_fn(|| path.a.poll_transmit()).collect();
    assert!(!sent.is_empty());
    assert!(path.a.poll_relayed().is_some());
}
