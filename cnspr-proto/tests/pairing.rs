//! Pairing and the replicated roster on virtual time: devices join with invites, the
//! roster reaches everyone, a removed device is refused everywhere, and a wrong or used
//! invite changes nothing.

mod support;

use std::time::Duration;

use cnspr_proto::membership::MemberState;
use cnspr_proto::node::Event;
use cnspr_proto::roster::{roster_key, Roster, StoredEntry, ROSTER_PREFIX};
use cnspr_proto::store::StoreError;
use cnspr_proto::transport::InviteSecret;
use support::{address, Mesh};

#[test]
fn three_devices_pair_and_everyone_knows_everyone_by_name() {
    let mut mesh = Mesh::new();
    let a = mesh.add(1, "desk");
    let b = mesh.add(2, "laptop");
    let c = mesh.add(3, "phone");
    let invite = mesh.invite(1, 7);
    mesh.join(2, 1, invite);
    mesh.run(Duration::from_secs(5));
    assert!(mesh.events.contains(&(address(1), Event::Paired { device: b })));
    assert!(mesh.events.contains(&(address(2), Event::Joined { inviter: a })));
    // C joins through B: A must learn of C through the roster alone.
    let invite = mesh.invite(2, 8);
    mesh.join(3, 2, invite);
    mesh.run(Duration::from_secs(10));
    for (n, own) in [(1, a), (2, b), (3, c)] {
        let roster = mesh.node(n).roster();
        assert_eq!(roster.name(&a), Some("desk"), "node {n}");
        assert_eq!(roster.name(&b), Some("laptop"), "node {n}");
        assert_eq!(roster.name(&c), Some("phone"), "node {n}");
        for other in [a, b, c].into_iter().filter(|id| *id != own) {
            assert_eq!(mesh.state(n, &other), Some(MemberState::Active), "node {n}");
        }
    }
    assert_eq!(mesh.node(1).roster().digest(), mesh.node(3).roster().digest());
}

#[test]
fn the_roster_is_data_in_the_store_that_applications_cannot_write() {
    let mut mesh = Mesh::new();
    let a = mesh.add(1, "desk");
    let b = mesh.add(2, "laptop");
    let invite = mesh.invite(1, 7);
    mesh.join(2, 1, invite);
    mesh.run(Duration::from_secs(10));
    for n in 1..=2 {
        let store = mesh.node(n).store();
        for (device, name) in [(a, "desk"), (b, "laptop")] {
            let read = store
                .read(&roster_key(&device))
                .expect("the roster key replicated");
            let mut joined = Roster::new();
            for sibling in read.register.siblings() {
                let stored =
                    StoredEntry::decode(sibling.value.as_deref().expect("a value")).expect("a roster entry");
                joined.merge(device, stored.entry);
            }
            assert_eq!(joined.name(&device), Some(name), "node {n}");
        }
        assert_eq!(store.list("").count(), 0, "hidden from a plain listing");
        // The two devices' entries, and the mesh secret their pairing made.
        assert_eq!(store.list(ROSTER_PREFIX).count(), 3, "listed when asked for");
    }
    let now = mesh.now;
    assert_eq!(
        mesh.node_mut(1)
            .kv_write(now, &roster_key(&b), Some(b"forged".to_vec())),
        Err(StoreError::Reserved)
    );
    // A restart rebuilds the roster from the store alone: the list it is given is empty.
    mesh.crash(2);
    mesh.restart(2, Vec::new());
    assert_eq!(mesh.node(2).roster().name(&a), Some("desk"));
    mesh.run(Duration::from_secs(10));
    assert_eq!(mesh.state(2, &a), Some(MemberState::Active));
}

#[test]
fn a_used_wrong_or_expired_invite_changes_nothing() {
    let mut mesh = Mesh::new();
    let a = mesh.add(1, "desk");
    let b = mesh.add(2, "laptop");
    let c = mesh.add(3, "phone");
    let invite = mesh.invite(1, 7);
    let reused = invite.clone();
    mesh.join(2, 1, invite);
    mesh.run(Duration::from_secs(5));
    assert!(mesh.node(1).roster().is_member(&b));
    // Used: C tries the same secret.
    mesh.join(3, 1, reused);
    // Wrong: right token ID, wrong PSK; and an unknown token ID.
    mesh.invite(1, 9);
    mesh.run(Duration::from_secs(10));
    let wrong = InviteSecret {
        token_id: [9; 16],
        psk: [1; 32],
    };
    mesh.join(3, 1, wrong);
    mesh.run(Duration::from_secs(10));
    assert!(!mesh.node(1).roster().is_member(&c));
    assert!(!mesh.node(2).roster().is_member(&c));
    let failures = mesh
        .events
        .iter()
        .filter(|(at, e)| *at == address(3) && *e == Event::JoinFailed { inviter: a })
        .count();
    assert_eq!(failures, 2);
    assert!(!mesh.node(3).roster().is_member(&a));
    // The wrong attempt did not use the invite up: the right secret still works.
    let right = InviteSecret {
        token_id: [9; 16],
        psk: [9; 32],
    };
    mesh.join(3, 1, right);
    mesh.run(Duration::from_secs(10));
    assert!(mesh.node(2).roster().is_member(&c));
    // Expired.
    let d = mesh.add(4, "tablet");
    let secret = InviteSecret {
        token_id: [10; 16],
        psk: [10; 32],
    };
    let expires = mesh.now + Duration::from_secs(1);
    mesh.node_mut(1).invite(&secret, expires);
    mesh.run(Duration::from_secs(2));
    mesh.join(4, 1, secret);
    mesh.run(Duration::from_secs(10));
    assert!(!mesh.node(1).roster().is_member(&d));
}

#[test]
fn a_removed_device_is_refused_everywhere_and_stays_out() {
    let mut mesh = Mesh::new();
    mesh.add(1, "desk");
    let b = mesh.add(2, "laptop");
    let c = mesh.add(3, "phone");
    let invite = mesh.invite(1, 7);
    mesh.join(2, 1, invite);
    let invite = mesh.invite(1, 8);
    mesh.join(3, 1, invite);
    mesh.run(Duration::from_secs(10));
    assert_eq!(mesh.state(2, &c), Some(MemberState::Active));
    let now = mesh.now;
    mesh.node_mut(1).remove(now, c).expect("c is a member");
    mesh.run(Duration::from_secs(60));
    for n in [1, 2] {
        assert!(!mesh.node(n).roster().is_member(&c), "node {n}");
        assert_eq!(mesh.state(n, &c), None, "node {n}");
        assert!(!mesh.node(n).session_peers(mesh.now).contains(&c), "node {n}");
    }
    // C keeps trying (it still lists the others) and gets nowhere.
    assert_ne!(mesh.state(3, &b), Some(MemberState::Active));
    // Nor does a fresh invite bring it back.
    let invite = mesh.invite(2, 9);
    mesh.join(3, 2, invite);
    mesh.run(Duration::from_secs(10));
    assert!(!mesh.node(1).roster().is_member(&c));
    assert!(!mesh.node(2).roster().is_member(&c));
}

#[test]
fn echo_measures_a_round_trip() {
    let mut mesh = Mesh::new();
    mesh.add(1, "desk");
    let b = mesh.add(2, "laptop");
    let invite = mesh.invite(1, 7);
    mesh.join(2, 1, invite);
    mesh.run(Duration::from_secs(5));
    let now = mesh.now;
    mesh.node_mut(1).echo(now, b, 42).expect("b is a member");
    mesh.run(Duration::from_millis(10));
    assert!(
        mesh.events
            .iter()
            .any(|(at, e)| *at == address(1)
                && matches!(e, Event::EchoReply { peer, id: 42, .. } if *peer == b))
    );
}
