//! Stealth: a mesh answers no initiation from a sender without its secret or an invite's,
//! the secret rotates with every removal, and a device away through a rotation still
//! gets back in.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use cnspr_proto::durable::{Record, Write};
use cnspr_proto::identity::{DeviceId, DeviceKey};
use cnspr_proto::membership::MemberState;
use cnspr_proto::node::{Node, Output};
use cnspr_proto::rng::Rng;
use cnspr_proto::roster::mesh_secret::{StoredSecrets, MESH_SECRET_KEY, RETIRED_ANSWERED_SECS};
use cnspr_proto::store::{Register, Sibling, StoreRecord};
use cnspr_proto::time::Timestamp;
use cnspr_proto::transport::stealth::{mesh_mac1_key, seal_mac1};
use cnspr_proto::transport::stealth::{MeshSecret, OPEN_MESH};
use cnspr_proto::transport::{beacon, observed, Endpoint, EndpointConfig, PROLOGUE};
use cnspr_proto::wire::{Packet, INIT_PADDING_BYTES, MAC_BYTES};
use support::{address, Mesh};

/// The one current secret every device of `devices` holds.
fn current_secret(mesh: &Mesh, devices: &[u8]) -> MeshSecret {
    let values: Vec<Vec<StoredSecrets>> = devices.iter().map(|n| mesh.secrets_of(*n)).collect();
    assert!(values.iter().all(|v| v == &values[0]), "one value everywhere");
    assert_eq!(values[0].len(), 1, "one sibling");
    values[0][0].current
}

/// An initiation to `responder` by a device that is not in its roster, keyed with
/// `secret` (as a stranger who guessed it, or a removed device that kept it, would).
fn initiation(responder: DeviceId, secret: MeshSecret, seed: u8, now: Timestamp) -> Vec<u8> {
    let stranger = DeviceKey::from_seed([seed; 32]).noise().clone();
    let mut endpoint = Endpoint::new(stranger, [seed; 32], EndpointConfig::default());
    endpoint.set_mesh_secrets(vec![secret], Vec::new());
    endpoint.add_peer(responder, Some(address(1)));
    endpoint.connect(now, &responder);
    endpoint.poll_transmit().expect("an initiation").datagram
}

/// Hands `datagram` from `from` to `node`; returns how many datagrams it sent back there.
fn answers(node: &mut Node, now: Timestamp, from: SocketAddr, datagram: &[u8]) -> usize {
    let _ = node.handle_datagram(now, from, datagram);
    let mut answered = 0;
    loop {
        match node.poll_output() {
            Output::Timeout(_) => return answered,
            Output::Transmit(t) if t.destination == from => answered += 1,
            _ => {}
        }
    }
}

fn stranger_address(i: u32) -> SocketAddr {
    let [_, a, b, c] = i.to_be_bytes();
    SocketAddr::from(([198, 18 + (a & 1), b, c], 40_000 + (i % 20_000) as u16))
}

#[test]
fn ten_thousand_stranger_initiations_get_no_answer_and_the_mesh_carries_on() {
    let (mut mesh, ids) = Mesh::paired(3);
    let secret = current_secret(&mesh, &[1, 2, 3]);
    assert_ne!(secret, OPEN_MESH, "the first pairing made a secret");
    let responder = ids[0];
    let now = mesh.now;
    let open_invite = mesh.invite(1, 42);
    let mut rng = Rng::from_seed([5; 32]);
    let rejected_before = mesh.node(1).stats().datagrams_rejected;
    let mut answered = 0;
    for i in 0..10_000u32 {
        let datagram = match i % 4 {
            // Valid Noise, keyed as a mesh of no secret: an older or hand-made device.
            0 => initiation(responder, OPEN_MESH, (i % 200) as u8 + 50, now),
            // Valid Noise, keyed with a guess.
            1 => initiation(responder, rng.bytes32(), (i % 200) as u8 + 50, now),
            // The right layout, random bytes.
            2 => {
                let noise = [rng.bytes32(), rng.bytes32(), rng.bytes32()].concat();
                let mut mac1 = [0; MAC_BYTES];
                mac1.copy_from_slice(&rng.bytes32()[..MAC_BYTES]);
                let mut datagram = Vec::new();
                Packet::HandshakeInit {
                    sender_index: rng.next_u32(),
                    noise: &noise[..68],
                    mac1,
                    mac2: mac1,
                }
                .encode(&mut datagram);
                datagram
            }
            // A pairing initiation naming the open invite, without its secret.
            _ => {
                let noise = [rng.bytes32(), rng.bytes32(), rng.bytes32()].concat();
                let mut datagram = Vec::new();
                Packet::PairingInit {
                    sender_index: rng.next_u32(),
                    token_id: open_invite.token_id,
                    noise: &noise[..52],
                    mac1: [0; MAC_BYTES],
                    mac2: [0; MAC_BYTES],
                }
                .encode(&mut datagram);
                datagram
            }
        };
        answered += answers(mesh.node_mut(1), now, stranger_address(i), &datagram);
    }
    assert_eq!(answered, 0, "no stranger got an answer");
    assert_eq!(mesh.node(1).stats().datagrams_rejected - rejected_before, 10_000);
    // The right secret does get an answer: what was refused was the secret, nothing else.
    let keyed_right = initiation(responder, secret, 9, now);
    assert_eq!(
        answers(mesh.node_mut(1), now, stranger_address(0), &keyed_right),
        1
    );
    // And the mesh's own handshakes go on: every session is made anew.
    for n in 1..=3 {
        let now = mesh.now;
        mesh.node_mut(n).handle_network_change(now);
    }
    let established = mesh.node(2).stats().sessions_established;
    mesh.run(Duration::from_secs(10));
    assert!(mesh.node(2).stats().sessions_established > established);
    for id in &ids[1..] {
        assert_eq!(mesh.state(1, id), Some(MemberState::Active));
    }
}

#[test]
fn a_removal_rotates_the_secret_and_the_old_one_is_answered_for_two_weeks_only() {
    let (mut mesh, ids) = Mesh::paired(3);
    let old = current_secret(&mesh, &[1, 2, 3]);
    let now = mesh.now;
    mesh.node_mut(1).remove(now, ids[2]).expect("a member");
    mesh.run(Duration::from_secs(5));
    let new = current_secret(&mesh, &[1, 2]);
    assert_ne!(new, old);
    assert_eq!(
        mesh.secrets_of(2)[0].retired[0].secret,
        old,
        "the old one retired"
    );
    assert!(
        mesh.secrets_of(3).iter().all(|v| v.current == old),
        "the removed device never hears of the new one"
    );
    let responder = ids[1];
    let now = mesh.now;
    assert_eq!(
        answers(
            mesh.node_mut(2),
            now,
            stranger_address(1),
            &initiation(responder, old, 77, now)
        ),
        1
    );
    // Two weeks and a day later by the wall clock.
    mesh.skip_wall_clock(RETIRED_ANSWERED_SECS + 24 * 3600);
    mesh.run(Duration::from_secs(60));
    let now = mesh.now;
    assert_eq!(
        answers(
            mesh.node_mut(2),
            now,
            stranger_address(2),
            &initiation(responder, old, 78, now)
        ),
        0
    );
    assert_eq!(
        answers(
            mesh.node_mut(2),
            now,
            stranger_address(3),
            &initiation(responder, new, 79, now)
        ),
        1
    );
}

#[test]
fn a_device_away_through_a_rotation_and_past_its_grace_gets_back_in() {
    let (mut mesh, ids) = Mesh::paired(4);
    let old = current_secret(&mesh, &[1, 2, 3, 4]);
    let away = mesh.roster_of(4);
    mesh.crash(4);
    let now = mesh.now;
    mesh.node_mut(1).remove(now, ids[2]).expect("a member");
    mesh.run(Duration::from_secs(5));
    let new = current_secret(&mesh, &[1, 2]);
    mesh.skip_wall_clock(RETIRED_ANSWERED_SECS + 24 * 3600);
    mesh.run(Duration::from_secs(60));
    // Device 4 comes back knowing only the old secret, which nobody answers any more; the
    // others call it with every secret they know, the old one included.
    mesh.restart(4, away);
    assert!(mesh.secrets_of(4).iter().all(|v| v.current == old));
    mesh.run(Duration::from_secs(60));
    assert_eq!(current_secret(&mesh, &[1, 2, 4]), new, "it learnt the new secret");
    for (observer, of) in [(1, ids[3]), (2, ids[3]), (4, ids[0]), (4, ids[1])] {
        assert_eq!(mesh.state(observer, &of), Some(MemberState::Active), "{observer}");
    }
}

#[test]
fn after_a_network_change_a_device_calls_with_the_secret_that_worked_even_if_a_call_was_lost() {
    let (mut mesh, _) = Mesh::paired(2);
    // The network changes in two steps: at the first the new address has no route yet,
    // and the initiation it makes is lost; at the second it has one.
    mesh.loss_percent = 100;
    let now = mesh.now;
    mesh.node_mut(2).handle_network_change(now);
    mesh.run(Duration::from_millis(10));
    mesh.loss_percent = 0;
    let rejected = mesh.node(1).stats().datagrams_rejected;
    let established = mesh.node(2).stats().sessions_established;
    let now = mesh.now;
    mesh.node_mut(2).handle_network_change(now);
    mesh.run(Duration::from_millis(100));
    // The next initiation is keyed with the current secret, not the next one it knows
    // (the open mesh's, which device 1 does not answer: a second's retry).
    assert_eq!(mesh.node(1).stats().datagrams_rejected, rejected);
    assert!(mesh.node(2).stats().sessions_established > established);
}

#[test]
fn a_beacon_forged_in_a_devices_name_moves_nothing_and_is_answered_at_most_every_two_seconds() {
    let (mut mesh, ids) = Mesh::paired(3);
    let secret = current_secret(&mesh, &[1, 2, 3]);
    mesh.crash(2);
    mesh.run(Duration::from_secs(30));
    assert_eq!(mesh.state(1, &ids[1]), Some(MemberState::Unreachable));
    // Device 3 (a thief: it has the mesh secret) says "device 2 is here", at its own
    // address.
    let forged = |mesh: &Mesh, salt: u8| beacon::seal(&secret, [salt; 16], &ids[1], mesh.unix_now());
    let answered = |mesh: &Mesh| mesh.node(1).stats().beacons_answered;
    let now = mesh.now;
    let first = forged(&mesh, 1);
    // Device 1 calls device 2 there too, once.
    assert!(answers(mesh.node_mut(1), now, address(3), &first) >= 1);
    assert_eq!(answered(&mesh), 1);
    // The same beacon again, or another within two seconds: not answered.
    assert_eq!(answers(mesh.node_mut(1), now, address(3), &first), 0);
    let second = forged(&mesh, 2);
    assert_eq!(answers(mesh.node_mut(1), now, address(3), &second), 0);
    assert_eq!(answered(&mesh), 1);
    mesh.run(Duration::from_secs(5));
    let third = forged(&mesh, 3);
    let now = mesh.now;
    assert!(answers(mesh.node_mut(1), now, address(3), &third) >= 1);
    assert_eq!(answered(&mesh), 2);
    // Device 3 cannot answer as device 2: device 1 still looks for it where it was.
    mesh.run(Duration::from_secs(10));
    let member = mesh.node(1).member(&ids[1]).expect("a member");
    assert_eq!(member.address, Some(address(2)));
    assert_eq!(mesh.state(1, &ids[1]), Some(MemberState::Unreachable));
    // A beacon under another mesh's secret is nothing to device 1.
    let stranger = beacon::seal(&[0x77; 32], [4; 16], &ids[1], mesh.unix_now());
    mesh.run(Duration::from_secs(5));
    let now = mesh.now;
    let _ = answers(mesh.node_mut(1), now, address(3), &stranger);
    assert_eq!(answered(&mesh), 2);
}

/// A device's endpoint of seed `seed`, knowing `peers`.
fn endpoint(seed: u8, peers: &[(DeviceId, SocketAddr)]) -> Endpoint {
    let mut endpoint = Endpoint::new(
        DeviceKey::from_seed([seed; 32]).noise().clone(),
        [seed; 32],
        EndpointConfig::default(),
    );
    for (key, address) in peers {
        endpoint.add_peer(*key, Some(*address));
    }
    endpoint
}

fn key_of(seed: u8) -> DeviceId {
    DeviceKey::from_seed([seed; 32]).device_id()
}

/// A responder (seed 2, at `address(2)`) and a peer of its mesh (seed 1, at `address(1)`)
/// with the mesh's `secret`; the peer knows the open mesh's too (it would try it second).
fn responder_and_peer(secret: MeshSecret) -> (Endpoint, Endpoint) {
    let mut responder = endpoint(2, &[(key_of(1), address(1))]);
    let mut peer = endpoint(1, &[(key_of(2), address(2))]);
    responder.set_mesh_secrets(vec![secret, OPEN_MESH], vec![secret]);
    peer.set_mesh_secrets(vec![secret, OPEN_MESH], vec![secret]);
    (responder, peer)
}

#[test]
fn under_a_flood_of_replayed_initiations_a_peer_still_connects_and_the_flood_gets_cookies() {
    let (peer_address, responder_address) = (address(1), address(2));
    let (mut responder, mut peer) = responder_and_peer([9; 32]);
    let mut now = Timestamp::from_micros(1_000_000);
    // A genuine initiation, captured on the way, replayed from forged addresses: 20 every
    // millisecond (20,000 a second) for two seconds. Well into the second second (under
    // load), the peer calls for real.
    peer.connect(now, &key_of(2));
    let captured = peer.poll_transmit().expect("an initiation").datagram;
    peer.remove_peer(&key_of(2));
    peer.add_peer(key_of(2), Some(responder_address));
    let (mut responses, mut cookie_replies) = (0, 0);
    let mut connected_at = None;
    for millisecond in 0..2_000u32 {
        for i in 0..20 {
            let _ = responder.handle_datagram(now, stranger_address(millisecond * 20 + i), &captured);
        }
        if millisecond == 1_500 {
            peer.connect(now, &key_of(2));
        }
        while let Some(transmit) = peer.poll_transmit() {
            let _ = responder.handle_datagram(now, peer_address, &transmit.datagram);
        }
        while let Some(transmit) = responder.poll_transmit() {
            if transmit.destination == peer_address {
                let _ = peer.handle_datagram(now, responder_address, &transmit.datagram);
            } else {
                match transmit.datagram[1] {
                    2 => responses += 1,
                    6 => cookie_replies += 1,
                    other => panic!("type {other} sent to a forged address"),
                }
            }
        }
        if connected_at.is_none() && peer.current_keys(now, &key_of(2)).is_some() {
            connected_at = Some(millisecond);
        }
        now = now + Duration::from_millis(1);
    }
    // The peer got through in the round trips it called in: its cookie retry used the
    // secret the responder had just taken, not the next one.
    let connected_at = connected_at.expect("the peer got through");
    assert!(
        connected_at <= 1_505,
        "connected at {connected_at} ms, not after a retry"
    );
    // Only the first initiations of each second, before the load showed, were answered
    // with a handshake (two X25519 operations each); the rest got a cookie they cannot see.
    let threshold = EndpointConfig::default().cookies.initiations_per_second as usize;
    assert!(
        responses <= 2 * threshold,
        "{responses} handshake responses to the flood"
    );
    assert!(
        cookie_replies >= 40_000 - 2 * threshold - 10,
        "{cookie_replies} cookie replies"
    );
    assert!(
        peer.current_keys(now, &key_of(2)).is_some(),
        "the peer got through"
    );
    assert!(
        responder.current_keys(now, &key_of(1)).is_some(),
        "and the responder has it"
    );
}

#[test]
fn under_load_one_address_with_a_good_cookie_is_held_to_its_rate() {
    let responder_address = address(2);
    let peers: Vec<(DeviceId, SocketAddr)> = (10..=60).map(|seed| (key_of(seed), address(seed))).collect();
    let mut responder = endpoint(2, &peers);
    let mut now = Timestamp::from_micros(1_000_000);
    // Load: 40 initiations from one device of the mesh in a second, each retried with the
    // cookie it is sent; then it keeps going at 100 a second for 3 seconds.
    let mut device = endpoint(10, &[(key_of(2), responder_address)]);
    let mut admitted = 0;
    for step in 0..340u32 {
        device.remove_peer(&key_of(2));
        device.add_peer(key_of(2), Some(responder_address));
        device.connect(now, &key_of(2));
        let mut rounds = 0;
        while let Some(transmit) = device.poll_transmit() {
            rounds += 1;
            // The initiation, at most one more with the cookie, and the finish.
            assert!(rounds <= 3, "{rounds} datagrams for one handshake");
            let _ = responder.handle_datagram(now, address(10), &transmit.datagram);
            while let Some(answer) = responder.poll_transmit() {
                if answer.datagram[1] == 2 {
                    admitted += 1;
                }
                let _ = device.handle_datagram(now, responder_address, &answer.datagram);
            }
        }
        now = now + Duration::from_millis(if step < 40 { 25 } else { 10 });
    }
    // Each of the four seconds admits its first 32 before the load shows; beyond them
    // the device's address has a burst of 10 and 5 a second: without the limit all 340
    // would be admitted.
    let limits = EndpointConfig::default().cookies;
    let per_window = 4 * limits.initiations_per_second as usize;
    let limited = (limits.per_source_burst + 4 * limits.per_source_per_second) as usize;
    assert!(
        (per_window..=per_window + limited).contains(&admitted),
        "{admitted} admitted"
    );
}

#[test]
fn a_cookie_that_keeps_failing_makes_no_loop() {
    let responder_address = address(2);
    let mut responder = endpoint(2, &[(key_of(10), address(10))]);
    let now = Timestamp::from_micros(1_000_000);
    let mut device = endpoint(10, &[(key_of(2), responder_address)]);
    device.connect(now, &key_of(2));
    let captured = device.poll_transmit().expect("an initiation").datagram;
    // Load: the threshold's worth of replays.
    let threshold = EndpointConfig::default().cookies.initiations_per_second;
    for i in 0..threshold {
        let _ = responder.handle_datagram(now, stranger_address(i), &captured);
    }
    while responder.poll_transmit().is_some() {}
    // The device's address looks different to the responder at every datagram (a NAT that
    // rebinds), so no cookie it gets ever fits.
    device.remove_peer(&key_of(2));
    device.add_peer(key_of(2), Some(responder_address));
    device.connect(now, &key_of(2));
    let mut initiations = 0;
    while let Some(transmit) = device.poll_transmit() {
        initiations += 1;
        assert!(initiations <= 10, "initiations without end");
        let seen_from = stranger_address(1_000 + initiations);
        let _ = responder.handle_datagram(now, seen_from, &transmit.datagram);
        while let Some(answer) = responder.poll_transmit() {
            assert_eq!(answer.datagram[1], 6, "a cookie reply");
            let _ = device.handle_datagram(now, responder_address, &answer.datagram);
        }
    }
    assert_eq!(
        initiations, 2,
        "one at once with the cookie, then wait for the retry"
    );
}

#[test]
fn a_call_on_news_of_where_a_peer_is_is_keyed_with_the_secret_it_last_answered() {
    let (peer_address, responder_address) = (address(1), address(2));
    let (mut responder, mut peer) = responder_and_peer([9; 32]);
    let mut now = Timestamp::from_micros(1_000_000);
    // Whether the responder answers the peer's next datagram (an initiation).
    let answered = |peer: &mut Endpoint, responder: &mut Endpoint, now: Timestamp| {
        let initiation = peer.poll_transmit().expect("an initiation").datagram;
        while peer.poll_transmit().is_some() {}
        let _ = responder.handle_datagram(now, peer_address, &initiation);
        let answer = responder.poll_transmit().is_some();
        while responder.poll_transmit().is_some() {}
        answer
    };
    peer.connect(now, &key_of(2));
    for _ in 0..3 {
        while let Some(transmit) = peer.poll_transmit() {
            let _ = responder.handle_datagram(now, peer_address, &transmit.datagram);
        }
        while let Some(transmit) = responder.poll_transmit() {
            let _ = peer.handle_datagram(now, responder_address, &transmit.datagram);
        }
    }
    assert!(responder.current_keys(now, &key_of(1)).is_some());
    // The path goes: a call is lost, so the next in turn would take the open mesh's
    // secret, which this mesh does not answer.
    peer.reset_sessions(now);
    peer.connect(now, &key_of(2));
    while peer.poll_transmit().is_some() {}
    now = now + Duration::from_millis(100);
    // News of where the peer is (a record, a beacon, an anchor): the call it makes is
    // answered at once.
    peer.connect_now(now, &key_of(2));
    assert!(answered(&mut peer, &mut responder, now));
}

#[test]
fn a_removed_device_cannot_open_the_new_secret_even_from_a_replica_that_missed_the_removal() {
    let (mut mesh, ids) = Mesh::paired(3);
    let removed = DeviceKey::from_seed([3; 32]);
    // Device 2 is cut off from device 1 while device 1 removes device 3: it misses the
    // removal, and seals the old secret anew for a device it pairs meanwhile.
    mesh.cut(1, 2);
    let now = mesh.now;
    mesh.node_mut(1).remove(now, ids[2]).expect("a member");
    mesh.run(Duration::from_secs(5));
    let new = mesh.sealed_secrets_of(1);
    assert_eq!(new.len(), 1);
    assert!(!new[0].is_sealed_for(&ids[2]) && new[0].excluded.contains(&ids[2]));
    // The bytes any replica passes on open for device 1, never for device 3.
    assert!(new[0].open(removed.noise(), &ids[2]).is_none());
    assert_ne!(mesh.secrets_of(1)[0].current, current_of(&mesh, 3));
    let joiner = mesh.add(4, "device-4");
    let invite = mesh.invite(2, 44);
    mesh.join(4, 2, invite);
    mesh.run(Duration::from_secs(5));
    assert!(mesh.sealed_secrets_of(2).iter().all(|s| s.is_sealed_for(&joiner)));
    // Together again: the value device 2 sealed for device 3 as well is found, and a new
    // secret replaces it, sealed for devices 1, 2 and 4 only.
    mesh.cuts.clear();
    mesh.run(Duration::from_secs(30));
    for n in [1, 2, 4] {
        let sealed = mesh.sealed_secrets_of(n);
        assert!(!sealed.is_empty(), "{n}");
        assert!(
            sealed
                .iter()
                .all(|s| !s.is_sealed_for(&ids[2]) && s.is_sealed_for(&joiner)),
            "{n}"
        );
        assert!(
            sealed.iter().all(|s| s.open(removed.noise(), &ids[2]).is_none()),
            "{n}"
        );
    }
    // (Devices that found it at once each made one: every one is current, none known to
    // device 3.)
    let known_to_removed: Vec<MeshSecret> = mesh
        .secrets_of(3)
        .iter()
        .flat_map(|s| std::iter::once(s.current).chain(s.retired.iter().map(|r| r.secret)))
        .collect();
    for current in mesh.secrets_of(1).iter().map(|s| s.current) {
        assert!(!known_to_removed.contains(&current));
    }
    for (observer, of) in [(1, joiner), (4, ids[0]), (2, joiner)] {
        assert_eq!(mesh.state(observer, &of), Some(MemberState::Active), "{observer}");
    }
}

/// Device `n`'s current secret, as it reads it.
fn current_of(mesh: &Mesh, n: u8) -> MeshSecret {
    mesh.secrets_of(n).first().map_or(OPEN_MESH, |s| s.current)
}

#[test]
fn a_secret_an_older_version_kept_in_the_clear_is_sealed_at_the_next_start() {
    let (mut mesh, _) = Mesh::paired(2);
    let secrets = mesh.secrets_of(1);
    let roster = mesh.roster_of(1);
    mesh.crash(1);
    // Device 1's disk as a version before sealing left it: the same value, in the clear.
    let device = mesh.devices.get_mut(&address(1)).expect("device 1");
    let clear: Vec<Record> = device
        .disk
        .records()
        .into_iter()
        .filter_map(|record| match record {
            Record::Store(StoreRecord::Key { key, register }) if key == MESH_SECRET_KEY => {
                let siblings = register
                    .siblings()
                    .iter()
                    .map(|s| Sibling {
                        value: Some(secrets[0].encode().expect("encodes")),
                        ..s.clone()
                    })
                    .collect();
                let register = Register::from_parts(siblings, register.context().clone());
                Some(Record::Store(StoreRecord::Key { key, register }))
            }
            _ => None,
        })
        .collect();
    assert_eq!(clear.len(), 1);
    device.disk.apply(clear.into_iter().map(Write::Put));
    mesh.restart(1, roster);
    mesh.run(Duration::from_secs(5));
    for n in [1, 2] {
        let sealed = mesh.sealed_secrets_of(n);
        assert_eq!(sealed.len(), 1, "{n}: sealed, one value");
        assert_eq!(
            mesh.secrets_of(n)[0].current,
            secrets[0].current,
            "{n}: the same secret"
        );
    }
}

/// An initiation to `responder` as a version before told addresses made it: padded to
/// the old minimum only.
fn older_initiation(responder: &DeviceId, initiator_seed: u8, secret: &MeshSecret) -> Vec<u8> {
    use cnspr_proto::noise::{Handshake, Pattern, Role};
    let local = DeviceKey::from_seed([initiator_seed; 32]).noise().clone();
    let mut handshake = Handshake::new(Pattern::XX, Role::Initiator, PROLOGUE, local, [5; 32], None);
    let mut noise = Vec::new();
    handshake
        .write_message(&[0; INIT_PADDING_BYTES], &mut noise)
        .expect("the first message");
    let mut datagram = Vec::new();
    Packet::HandshakeInit {
        sender_index: 7,
        noise: &noise,
        mac1: [0; MAC_BYTES],
        mac2: [0; MAC_BYTES],
    }
    .encode(&mut datagram);
    let key = mesh_mac1_key(&responder.noise_key().expect("a device key"), secret);
    seal_mac1(&key, &mut datagram);
    datagram
}

#[test]
fn an_older_devices_shorter_initiation_is_answered_without_the_address_and_no_longer() {
    let responder_id = key_of(2);
    let secret = [9; 32];
    let mut responder = endpoint(2, &[(key_of(1), address(1))]);
    responder.set_mesh_secrets(vec![secret], vec![secret]);
    let now = Timestamp::from_micros(1_000_000);
    let from: SocketAddr = "[2001:db8::1]:40000".parse().expect("an address");
    let older = older_initiation(&responder_id, 1, &secret);
    responder.handle_datagram(now, from, &older).expect("answered");
    let response = responder.poll_transmit().expect("a response").datagram;
    assert!(
        response.len() <= older.len(),
        "{} > {}",
        response.len(),
        older.len()
    );
    // Today's initiation from the same IPv6 source gets the address, and is no shorter.
    let mut today = endpoint(1, &[(responder_id, address(2))]);
    today.set_mesh_secrets(vec![secret], vec![secret]);
    today.connect(now, &responder_id);
    let initiation = today.poll_transmit().expect("an initiation").datagram;
    responder
        .handle_datagram(now, from, &initiation)
        .expect("answered");
    let told = responder.poll_transmit().expect("a response").datagram;
    assert_eq!(told.len(), response.len() + observed::MAX_OBSERVED_BYTES);
    assert!(
        told.len() <= initiation.len(),
        "{} > {}",
        told.len(),
        initiation.len()
    );
}
