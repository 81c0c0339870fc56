//! The replicated store between devices on virtual time: writes reach everyone, concurrent
//! writes made apart are all kept with the same winner everywhere, deletes stay deleted,
//! a device that was away catches up, and a restart keeps everything persisted.

mod support;

use std::time::Duration;

use cnspr_proto::identity::DeviceId;
use cnspr_proto::node::{CatchUpProgress, CATCH_UP_SHOWN_FOR, STORE_SYNC_INTERVAL};
use cnspr_proto::roster::RosterEntry;
use support::Mesh;

fn value(mesh: &Mesh, n: u8, key: &str) -> Option<Vec<u8>> {
    mesh.node(n)
        .store()
        .read(key)
        .and_then(|r| r.value.map(<[u8]>::to_vec))
}

fn write(mesh: &mut Mesh, n: u8, key: &str, value: Option<&[u8]>) {
    let now = mesh.now;
    mesh.node_mut(n)
        .kv_write(now, key, value.map(<[u8]>::to_vec))
        .expect("a valid write");
}

#[test]
fn a_write_reaches_every_device() {
    let (mut mesh, _) = Mesh::paired(3);
    write(&mut mesh, 1, "greeting", Some(b"hello"));
    mesh.run(Duration::from_millis(50));
    for n in 1..=3 {
        assert_eq!(value(&mesh, n, "greeting"), Some(b"hello".to_vec()), "device {n}");
    }
}

#[test]
fn writes_made_apart_converge_with_the_conflict_visible_and_one_winner() {
    let (mut mesh, _) = Mesh::paired(3);
    let rosters: Vec<_> = (1..=3).map(|n| mesh.roster_of(n)).collect();
    mesh.crash(3);
    mesh.crash(2);
    write(&mut mesh, 1, "k", Some(b"from 1"));
    mesh.run(Duration::from_secs(5));
    mesh.crash(1);
    mesh.restart(2, rosters[1].clone());
    write(&mut mesh, 2, "k", Some(b"from 2"));
    mesh.run(Duration::from_secs(5));
    mesh.restart(1, rosters[0].clone());
    mesh.restart(3, rosters[2].clone());
    mesh.run(Duration::from_secs(30));
    let winners: Vec<Option<Vec<u8>>> = (1..=3).map(|n| value(&mesh, n, "k")).collect();
    assert!(
        winners.iter().all(|w| w == &winners[0] && w.is_some()),
        "{winners:?}"
    );
    for n in 1..=3 {
        let read = mesh.node(n).store().read("k").expect("known");
        assert!(read.conflict, "device {n} shows the conflict");
        assert_eq!(read.register.siblings().len(), 2);
    }
    // A later write resolves it everywhere.
    write(&mut mesh, 3, "k", Some(b"settled"));
    mesh.run(Duration::from_millis(100));
    for n in 1..=3 {
        let read = mesh.node(n).store().read("k").expect("known");
        assert!(!read.conflict);
        assert_eq!(read.value, Some(&b"settled"[..]));
    }
}

#[test]
fn a_delete_propagates_and_stays() {
    let (mut mesh, _) = Mesh::paired(3);
    write(&mut mesh, 1, "k", Some(b"v"));
    mesh.run(Duration::from_millis(50));
    let roster = mesh.roster_of(3);
    mesh.crash(3);
    write(&mut mesh, 2, "k", None);
    mesh.run(Duration::from_secs(5));
    mesh.restart(3, roster);
    mesh.run(Duration::from_secs(30));
    for n in 1..=3 {
        assert_eq!(value(&mesh, n, "k"), None, "device {n}");
        assert_eq!(mesh.node(n).store().list("").count(), 0);
    }
}

#[test]
fn a_delete_is_collected_once_every_device_has_it_and_not_before() {
    let (mut mesh, _) = Mesh::paired(3);
    let rosters: Vec<_> = (1..=3).map(|n| mesh.roster_of(n)).collect();
    write(&mut mesh, 1, "k", Some(b"v"));
    mesh.run(Duration::from_millis(50));
    mesh.crash(3);
    write(&mut mesh, 2, "k", None);
    mesh.run(STORE_SYNC_INTERVAL * 4);
    for n in 1..=2 {
        assert!(
            mesh.node(n).store().read("k").is_some(),
            "device 3 is away and holds the old value: device {n} keeps the delete"
        );
    }
    mesh.restart(3, rosters[2].clone());
    mesh.run(STORE_SYNC_INTERVAL * 4);
    for n in 1..=3 {
        assert!(
            mesh.node(n).store().read("k").is_none(),
            "collected on device {n}"
        );
    }
    mesh.crash(1);
    mesh.restart(1, rosters[0].clone());
    assert!(
        mesh.node(1).store().read("k").is_none(),
        "the collection was durable"
    );
    // The key can be written again, and that write replicates.
    write(&mut mesh, 3, "k", Some(b"again"));
    mesh.run(Duration::from_secs(5));
    for n in 1..=3 {
        assert_eq!(value(&mesh, n, "k"), Some(b"again".to_vec()), "device {n}");
    }
}

/// Crashes device 2 and has device 1 write 120 values of 20 kB meanwhile; returns
/// device 2's roster, to restart it with.
fn away_while_written(mesh: &mut Mesh) -> Vec<(DeviceId, RosterEntry)> {
    let roster = mesh.roster_of(2);
    mesh.crash(2);
    for i in 0..120 {
        write(mesh, 1, &format!("file/{i:03}"), Some(&vec![i as u8; 20_000]));
    }
    mesh.run(Duration::from_secs(5));
    roster
}

#[test]
fn a_device_away_catches_up_in_parts_and_a_restart_keeps_everything() {
    let (mut mesh, _) = Mesh::paired(2);
    mesh.loss_percent = 5;
    let roster = away_while_written(&mut mesh);
    mesh.restart(2, roster.clone());
    mesh.run(Duration::from_secs(60));
    assert_eq!(mesh.node(2).store().list("file/").count(), 120);
    assert_eq!(value(&mesh, 2, "file/119"), Some(vec![119; 20_000]));
    // The catch-up completed: device 2 knows it has every write of device 1.
    let device_1 = mesh.node(1).own_id();
    let seen = mesh
        .node(2)
        .store()
        .have()
        .into_iter()
        .find(|(d, _)| *d == device_1);
    assert_eq!(seen, Some((device_1, mesh.node(1).store().last_seq())));
    mesh.crash(2);
    mesh.restart(2, roster);
    assert_eq!(
        mesh.node(2).store().list("file/").count(),
        120,
        "the store survives a restart"
    );
}

/// Device 2, away while device 1 wrote 120 values of 20 kB, restarts; the network loses
/// a third of the datagrams so that the catch-up takes a while. Runs until device 2 shows
/// an answer in progress, and returns the mesh and what it showed.
fn catching_up_mesh() -> (Mesh, CatchUpProgress) {
    let (mut mesh, _) = Mesh::paired(2);
    let roster = away_while_written(&mut mesh);
    mesh.loss_percent = 30;
    mesh.restart(2, roster);
    for _ in 0..60_000 {
        mesh.run(Duration::from_millis(1));
        if let [progress] = mesh.node(2).catching_up(mesh.now)[..] {
            return (mesh, progress);
        }
    }
    panic!("device 2 never showed its catch-up in progress");
}

#[test]
fn a_catch_up_shows_how_far_it_is_until_its_last_part() {
    let (mut mesh, first) = catching_up_mesh();
    assert_eq!(first.from, mesh.node(1).own_id());
    assert!(first.parts >= 4, "2.4 MB come in parts of 512 kB: {first:?}");
    assert!((1..first.parts).contains(&first.parts_received), "{first:?}");
    assert!((1..120).contains(&first.changes), "{first:?}");
    // Never falls, and is gone once the last part is in.
    let mut last = first;
    while let [progress] = mesh.node(2).catching_up(mesh.now)[..] {
        assert!(
            progress.parts_received >= last.parts_received,
            "{progress:?} after {last:?}"
        );
        assert!(progress.changes >= last.changes, "{progress:?} after {last:?}");
        assert_eq!(progress.parts, first.parts);
        last = progress;
        mesh.run(Duration::from_millis(1));
    }
    assert!(
        last.parts_received > first.parts_received,
        "{last:?} after {first:?}"
    );
    assert_eq!(mesh.node(2).store().list("file/").count(), 120);
    assert_eq!(mesh.node(2).catching_up(mesh.now), Vec::new());
}

#[test]
fn a_catch_up_whose_sender_stopped_is_shown_for_half_a_minute_only() {
    let (mut mesh, shown) = catching_up_mesh();
    mesh.crash(1);
    mesh.run(CATCH_UP_SHOWN_FOR - Duration::from_secs(1));
    assert_eq!(mesh.node(2).catching_up(mesh.now), vec![shown]);
    mesh.run(Duration::from_secs(1));
    assert_eq!(mesh.node(2).catching_up(mesh.now), Vec::new());
}

#[test]
fn writes_to_a_device_gone_unnoticed_are_pushed_together_not_one_by_one() {
    let (mut mesh, _) = Mesh::paired(2);
    let roster = mesh.roster_of(2);
    mesh.crash(2);
    // Device 1 does not know yet: every write is meant for device 2.
    let before = mesh.node(1).stats().bytes_sent;
    let mut raw = 0;
    for i in 0..2000 {
        let (key, value) = (
            format!("burst/{i:05}"),
            format!("value {i:05} {}", "y".repeat(20)),
        );
        raw += key.len() + value.len();
        write(&mut mesh, 1, &key, Some(value.as_bytes()));
    }
    mesh.run(Duration::from_secs(2));
    mesh.restart(2, roster);
    mesh.run(Duration::from_secs(20));
    assert_eq!(mesh.node(2).store().list("burst/").count(), 2000);
    let sent = mesh.node(1).stats().bytes_sent - before;
    // One transfer per write cost 5.3 times the raw size here (a transfer and its
    // retransmissions per write); pushed together, 2.2 (most of it membership traffic
    // and the catch-up).
    let ratio = sent as f64 / raw as f64;
    assert!(ratio < 3.0, "sent {sent} bytes for {raw} raw: {ratio:.2}");
}

/// What a round hands its host, in order.
#[derive(Default)]
struct Recorder {
    calls: Vec<&'static str>,
}

impl cnspr_proto::node::Host for Recorder {
    type Error = std::convert::Infallible;

    fn persist(&mut self, _writes: Vec<cnspr_proto::durable::Write>) -> Result<(), Self::Error> {
        self.calls.push("persist");
        Ok(())
    }

    fn transmit(&mut self, _transmit: cnspr_proto::transport::Transmit) {
        self.calls.push("transmit");
    }

    fn event(&mut self, _node: &cnspr_proto::node::Node, _event: cnspr_proto::node::Event) {}
}

#[test]
fn failure_detection_does_not_wait_for_a_sync_and_replication_does() {
    let (mut mesh, ids) = Mesh::paired(2);
    let now = mesh.now;
    let node = mesh.node_mut(1);
    // One round: a store write (durable before its push leaves) and an echo (which
    // acknowledges nothing durable, like every probe and its answer).
    node.kv_write(now, "k", Some(b"v".to_vec())).expect("valid");
    node.echo(now, ids[1], 7).expect("a peer");
    let mut host = Recorder::default();
    node.drive(&mut host).expect("infallible");
    assert_eq!(
        host.calls.first().copied(),
        Some("transmit"),
        "the echo left before the sync: {:?}",
        host.calls
    );
    let persisted = host
        .calls
        .iter()
        .position(|c| *c == "persist")
        .expect("the write was persisted");
    assert!(
        host.calls[persisted + 1..].contains(&"transmit"),
        "the write's push left after the sync: {:?}",
        host.calls
    );
}

#[test]
fn a_device_back_among_several_peers_takes_one_catch_up_at_a_time() {
    // Devices 1-3 all hold the 120 writes device 4 missed: each would answer with all
    // 2.4 MB if asked at once.
    let (mut mesh, _) = Mesh::paired(4);
    let roster = mesh.roster_of(4);
    mesh.crash(4);
    for i in 0..120 {
        write(
            &mut mesh,
            1,
            &format!("file/{i:03}"),
            Some(&vec![i as u8; 20_000]),
        );
    }
    mesh.run(Duration::from_secs(5));
    assert_eq!(mesh.node(3).store().list("file/").count(), 120);
    // Lossy, so that the answers take a while.
    mesh.loss_percent = 30;
    mesh.restart(4, roster);
    let (mut most_at_once, mut answers) = (0, std::collections::BTreeSet::new());
    for _ in 0..120_000 {
        mesh.run(Duration::from_millis(1));
        let shown = mesh.node(4).catching_up(mesh.now);
        most_at_once = most_at_once.max(shown.len());
        answers.extend(
            shown
                .iter()
                .filter(|answer| answer.changes > 0)
                .map(|answer| answer.from),
        );
        if mesh.node(4).store().list("file/").count() == 120 && shown.is_empty() {
            break;
        }
    }
    assert_eq!(mesh.node(4).store().list("file/").count(), 120);
    assert_eq!(most_at_once, 1, "answers from several peers at once");
    assert_eq!(
        answers.len(),
        1,
        "the writes came from one peer only: {answers:?}"
    );
}

/// Device 2 is away while device 3 joins and writes. Back, it learns of device 3 from a
/// catch-up that brings device 3's signed head before the roster entry that admits it:
/// the head must still be kept on disk, or after the next restart device 2's vector
/// would pass the heads it knows, and catch-up answers (which leave out the heads their
/// asker's vector reaches) would never bring it again.
#[test]
fn a_head_that_came_before_its_device_was_admitted_survives_a_restart() {
    let (mut mesh, _) = Mesh::paired(2);
    let roster = mesh.roster_of(2);
    mesh.crash(2);
    let third = mesh.add(3, "device-3");
    let invite = mesh.invite(1, 3);
    mesh.join(3, 1, invite);
    mesh.run(Duration::from_secs(10));
    write(&mut mesh, 3, "from/3", Some(b"three"));
    mesh.run(Duration::from_secs(5));
    let signed = mesh.node(3).store().last_seq();
    mesh.restart(2, roster);
    mesh.run(Duration::from_secs(60));
    assert_eq!(value(&mesh, 2, "from/3"), Some(b"three".to_vec()));
    let bound = |mesh: &Mesh| {
        let heads = mesh.node(2).store().heads_of([third]);
        heads.first().map(|head| head.seq)
    };
    assert_eq!(bound(&mesh), Some(signed));
    let roster = mesh.roster_of(2);
    assert!(roster.iter().any(|(id, _)| *id == third));
    mesh.crash(2);
    mesh.restart(2, roster);
    assert_eq!(bound(&mesh), Some(signed), "the head is kept on disk");
}
