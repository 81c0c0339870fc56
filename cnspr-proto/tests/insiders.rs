//! Insiders: a stolen device of the roster holds real sessions with the others and sends
//! whatever its thief wants. Events carry their origin's signature, so it cannot pass an
//! event off as another device's, nor hold back another device's events with forged
//! numbers, and once it is removed nothing it signed counts anywhere. A device's name is
//! its own signature's, so the thief cannot rename another device or freeze its name.

mod support;

use std::time::Duration;

use cnspr_proto::identity::{DeviceId, DeviceKey, Signature};
use cnspr_proto::messaging::event_signature;
use cnspr_proto::messaging::{MessagingEvent, Tag, Unit};
use cnspr_proto::node::Event;
use cnspr_proto::roster::{roster_key, RosterEntry, StoredEntry};
use cnspr_proto::store::heads::SignedHead;
use cnspr_proto::store::sync::{Change, StoreMessage};
use cnspr_proto::store::{Hlc, Register, Sibling};
use support::{address, Mesh, WALL_START_SECS};

fn tag() -> Tag {
    Tag::new("note").expect("valid tag")
}

/// The events device `n` accepted (and ran its handlers for): origin, number, payload.
fn events_of(mesh: &Mesh, n: u8) -> Vec<(DeviceId, u64, Vec<u8>)> {
    mesh.events
        .iter()
        .filter(|(at, _)| *at == address(n))
        .filter_map(|(_, event)| match event {
            Event::Messaging(MessagingEvent::Event {
                origin, seq, payload, ..
            }) => Some((*origin, *seq, payload.clone())),
            _ => None,
        })
        .collect()
}

/// How many times device `n` accepted an event whose payload is `after`.
fn after(mesh: &Mesh, n: u8) -> usize {
    events_of(mesh, n)
        .into_iter()
        .filter(|(_, _, payload)| payload == b"after")
        .count()
}

fn event(origin: DeviceId, seq: u64, payload: &[u8], signature: Signature) -> Unit {
    Unit::Event {
        origin,
        seq,
        tag: tag(),
        payload: payload.to_vec(),
        ttl_secs: 600,
        signature,
    }
}

#[test]
fn an_event_passed_off_as_another_devices_runs_nowhere_and_holds_back_nothing() {
    let (mut mesh, ids) = Mesh::paired(3);
    mesh.steal(3);
    let now = mesh.now;
    let thief = mesh.insider(3);
    // Device 2's ID with the thief's signature, at its next number and far ahead of it
    // (numbers far ahead once made a device's real events look handled); and no signature.
    let mut sent = 0;
    for seq in [1, 5_000, u64::MAX] {
        let signature = event_signature::sign(&thief.key, seq, &tag(), b"forged");
        thief.send_unit(now, ids[0], &event(ids[1], seq, b"forged", signature));
        sent += 1;
    }
    thief.send_unit(now, ids[0], &event(ids[1], 2, b"forged", Signature([0; 64])));
    sent += 1;
    mesh.run(Duration::from_secs(5));
    assert_eq!(events_of(&mesh, 1), Vec::new(), "nothing forged ran");
    assert_eq!(
        mesh.node(1).stats().events_forged,
        sent,
        "each forgery was seen as one"
    );

    let now = mesh.now;
    mesh.node_mut(2)
        .publish_event(now, tag(), b"real".to_vec())
        .expect("published");
    mesh.run(Duration::from_secs(5));
    assert_eq!(
        events_of(&mesh, 1),
        vec![(ids[1], 1, b"real".to_vec())],
        "device 2's own events still arrive, from its first"
    );
}

#[test]
fn a_stolen_devices_own_events_count_until_it_is_removed_and_never_after() {
    let (mut mesh, ids) = Mesh::paired(3);
    mesh.steal(3);
    let now = mesh.now;
    let thief = mesh.insider(3);
    let signature = event_signature::sign(&thief.key, 1, &tag(), b"before");
    thief.send_unit(now, ids[0], &event(ids[2], 1, b"before", signature));
    mesh.run(Duration::from_secs(5));
    assert_eq!(
        events_of(&mesh, 1),
        vec![(ids[2], 1, b"before".to_vec())],
        "a device of the roster signs its own events"
    );

    // Device 2 is away while device 1 removes the thief; back while device 1 is away in
    // turn, it meets the thief before it hears of the removal, and takes an event signed
    // after it, which it hands on to device 1 when they meet again.
    let roster_2 = mesh.roster_of(2);
    mesh.crash(2);
    let now = mesh.now;
    mesh.node_mut(1).remove(now, ids[2]).expect("removed");
    mesh.run(Duration::from_secs(5));
    let roster_1 = mesh.roster_of(1);
    mesh.crash(1);
    mesh.restart(2, roster_2);
    // The thief keeps no transfer for later: it sends once device 2 made new keys with it.
    mesh.run(Duration::from_secs(2));
    let now = mesh.now;
    let thief = mesh.insider(3);
    let signature = event_signature::sign(&thief.key, 2, &tag(), b"after");
    thief.send_unit(now, ids[1], &event(ids[2], 2, b"after", signature));
    mesh.run(Duration::from_secs(5));
    assert_eq!(after(&mesh, 2), 1, "device 2 had not heard of the removal yet");
    mesh.restart(1, roster_1);
    mesh.run(Duration::from_secs(20));
    assert_eq!(
        after(&mesh, 1),
        0,
        "device 1 removed it: nothing of it counts there"
    );
    assert!(
        mesh.node(2).roster().get(&ids[2]).is_some_and(|e| e.removed),
        "device 2 heard of the removal"
    );
}

/// A push of `_roster/<device>` holding `stored`, written by the thief as its write `seq`
/// with a context claiming to have seen `seen`.
fn roster_push(
    thief: &DeviceKey,
    device: &DeviceId,
    seq: u64,
    stored: &StoredEntry,
    seen: &[(DeviceId, u64)],
) -> Unit {
    let value = stored.encode().expect("an entry encodes");
    push(thief, &roster_key(device), seq, value, seen)
}

/// A push of `key` holding `value`, written by the thief as its write `seq` (with its
/// signed head) with a context claiming to have seen `seen`.
fn push(thief: &DeviceKey, key: &str, seq: u64, value: Vec<u8>, seen: &[(DeviceId, u64)]) -> Unit {
    let sibling = Sibling {
        device: thief.device_id(),
        seq,
        // Later than any write of the test, within the clock skew a device accepts.
        hlc: Hlc {
            micros: (WALL_START_SECS + 120) * 1_000_000,
            counter: 0,
        },
        value: Some(value),
    };
    let change = Change {
        key: key.to_owned(),
        register: Register::from_parts(vec![sibling], seen.iter().copied()),
    };
    Unit::Store(
        StoreMessage::Push {
            changes: vec![change],
            heads: vec![SignedHead::sign(thief, seq)],
        }
        .encode(),
    )
}

/// How many store changes device `n` refused.
fn refused(mesh: &Mesh, n: u8) -> usize {
    mesh.events
        .iter()
        .filter(|(at, event)| *at == address(n) && matches!(event, Event::StoreRefused { .. }))
        .count()
}

#[test]
fn only_a_device_names_itself() {
    let (mut mesh, ids) = Mesh::paired(3);
    mesh.steal(3);
    let now = mesh.now;
    let thief = mesh.insider(3);
    let impostor = RosterEntry {
        name: "impostor".into(),
        version: 1_000,
        removed: false,
    };
    // Unsigned, and signed by the thief's own key: far ahead of device 2's own version.
    let unsigned = StoredEntry {
        entry: impostor.clone(),
        address: None,
        signature: None,
    };
    let signed_by_thief = StoredEntry::signed(&thief.key, impostor, None);
    thief.send_unit(
        now,
        ids[0],
        &roster_push(&thief.key, &ids[1], 1 << 20, &unsigned, &[]),
    );
    thief.send_unit(
        now,
        ids[0],
        &roster_push(&thief.key, &ids[1], (1 << 20) + 1, &signed_by_thief, &[]),
    );
    mesh.run(Duration::from_secs(5));
    assert_eq!(
        refused(&mesh, 1),
        0,
        "the store took the pushes in: the roster is what refused them"
    );
    for n in [1, 2] {
        assert_eq!(
            mesh.node(n).roster().name(&ids[1]),
            Some("device-2"),
            "device {n}"
        );
    }

    // Its own rename still takes, everywhere: the forged version froze nothing.
    let now = mesh.now;
    assert!(mesh.node_mut(2).set_own_name(now, "desk"));
    mesh.run(Duration::from_secs(5));
    for n in [1, 2] {
        assert_eq!(mesh.node(n).roster().name(&ids[1]), Some("desk"), "device {n}");
    }
}

#[test]
fn a_stolen_device_cannot_block_its_own_removal_with_a_context_that_claims_it() {
    let (mut mesh, ids) = Mesh::paired(3);
    mesh.steal(3);
    // Before device 1 removes it, the thief tells device 2 it has seen device 1's next
    // writes, its removal among them, and wrote its own entry over them.
    let removal_to_come = mesh.node(1).store().last_seq() + 1;
    let now = mesh.now;
    let thief = mesh.insider(3);
    let thief_id = thief.key.device_id();
    let own = RosterEntry {
        name: "device-3".into(),
        version: 1_000,
        removed: false,
    };
    let stored = StoredEntry::signed(&thief.key, own, None);
    let seen = [(ids[0], removal_to_come), (thief_id, 1 << 20)];
    thief.send_unit(
        now,
        ids[1],
        &roster_push(&thief.key, &thief_id, 1 << 20, &stored, &seen),
    );
    mesh.run(Duration::from_secs(1));
    assert_eq!(
        refused(&mesh, 2),
        1,
        "a claim beyond device 1's signed head is refused"
    );

    let now = mesh.now;
    mesh.node_mut(1).remove(now, ids[2]).expect("removed");
    mesh.run(Duration::from_secs(5));
    for n in [1, 2] {
        let entry = mesh.node(n).roster().get(&ids[2]).cloned();
        assert!(entry.is_some_and(|e| e.removed), "device {n} refuses the thief");
        assert!(
            !mesh.node(n).session_peers(mesh.now).contains(&ids[2]),
            "device {n}"
        );
    }
    // And the removal stays in the store, for devices that hear of it later.
    let register = mesh
        .node(2)
        .store()
        .read(&roster_key(&ids[2]))
        .expect("a roster key");
    assert!(register
        .register
        .siblings()
        .iter()
        .any(cnspr_proto::roster::stored::is_removal));
}

#[test]
fn a_stolen_device_can_neither_freeze_a_key_nor_make_a_device_believe_it_has_writes() {
    let (mut mesh, ids) = Mesh::paired(3);
    mesh.steal(3);
    let now = mesh.now;
    mesh.node_mut(1)
        .kv_write(now, "notes/a", Some(b"first".to_vec()))
        .expect("written");
    mesh.run(Duration::from_secs(2));
    // A write to the key claiming every write of device 1 to come, and a catch-up
    // claiming to carry them all.
    let now = mesh.now;
    let thief = mesh.insider(3);
    let frozen = push(
        &thief.key,
        "notes/a",
        1 << 20,
        b"frozen".to_vec(),
        &[(ids[0], u64::MAX)],
    );
    thief.send_unit(now, ids[1], &frozen);
    let seq = 1 << 20;
    let catch_up = StoreMessage::CatchUp {
        stream: 7,
        part: 0,
        parts: 1,
        changes: Vec::new(),
        have: vec![(ids[0], u64::MAX), (thief.key.device_id(), seq)],
        heads: vec![SignedHead::sign(&thief.key, seq)],
    };
    thief.send_unit(now, ids[1], &Unit::Store(catch_up.encode()));
    mesh.run(Duration::from_secs(2));
    assert_eq!(refused(&mesh, 2), 1, "the frozen write is refused");
    let have = mesh.node(2).store().have();
    let of_device_1 = have.iter().find(|(d, _)| *d == ids[0]).map_or(0, |(_, s)| *s);
    assert!(
        of_device_1 <= mesh.node(1).store().last_seq(),
        "device 2 believes it has device 1's writes up to {of_device_1}: more than exist"
    );

    // Device 1's later writes still reach device 2: pushed, and by catch-up after a stay away.
    let now = mesh.now;
    mesh.node_mut(1)
        .kv_write(now, "notes/a", Some(b"second".to_vec()))
        .expect("written");
    mesh.run(Duration::from_secs(2));
    let value = |mesh: &Mesh, key: &str| {
        let read = mesh.node(2).store().read(key)?;
        read.register.winner().and_then(|w| w.value.clone())
    };
    assert_eq!(value(&mesh, "notes/a").as_deref(), Some(&b"second"[..]));
    let roster = mesh.roster_of(2);
    mesh.crash(2);
    let now = mesh.now;
    mesh.node_mut(1)
        .kv_write(now, "notes/b", Some(b"while away".to_vec()))
        .expect("written");
    mesh.run(Duration::from_secs(2));
    mesh.restart(2, roster);
    mesh.run(Duration::from_secs(10));
    assert_eq!(value(&mesh, "notes/b").as_deref(), Some(&b"while away"[..]));
}
