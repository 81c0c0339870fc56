//! Messages, events and queries between devices on virtual time, with loss, crashes and
//! restarts from exactly what was persisted: nothing handled twice, nothing lost within
//! the TTL, order kept, large payloads intact.

mod support;

use std::time::Duration;

use cnspr_proto::identity::DeviceId;
use cnspr_proto::messaging::{MessagingEvent, Tag};
use cnspr_proto::node::Event;
use support::{address, Mesh};

fn tag(text: &str) -> Tag {
    Tag::new(text).expect("valid tag")
}

/// The messaging events device `n` reported.
fn messaging_events(mesh: &Mesh, n: u8) -> Vec<MessagingEvent> {
    mesh.events
        .iter()
        .filter(|(at, _)| *at == address(n))
        .filter_map(|(_, e)| match e {
            Event::Messaging(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

fn messages_received(mesh: &Mesh, n: u8) -> Vec<(DeviceId, Vec<u8>)> {
    messaging_events(mesh, n)
        .into_iter()
        .filter_map(|e| match e {
            MessagingEvent::Message { from, payload, .. } => Some((from, payload)),
            _ => None,
        })
        .collect()
}

/// Device `n` publishes `count` events of one tag, now.
fn publish(mesh: &mut Mesh, n: u8, count: u8) {
    let now = mesh.now;
    for i in 0..count {
        mesh.node_mut(n)
            .publish_event(now, tag("media.mpd"), vec![i])
            .expect("published");
    }
}

fn events_handled(mesh: &Mesh, n: u8) -> Vec<(DeviceId, u64)> {
    messaging_events(mesh, n)
        .into_iter()
        .filter_map(|e| match e {
            MessagingEvent::Event { origin, seq, .. } => Some((origin, seq)),
            _ => None,
        })
        .collect()
}

#[test]
fn direct_messages_arrive_once_in_order_through_loss() {
    let (mut mesh, ids) = Mesh::paired(2);
    mesh.loss_percent = 20;
    let now = mesh.now;
    for i in 0..30u8 {
        mesh.node_mut(1)
            .send_message(now, ids[1], tag("test.order"), vec![i])
            .expect("sent");
    }
    mesh.run(Duration::from_secs(60));
    let received: Vec<Vec<u8>> = messages_received(&mesh, 2).into_iter().map(|(_, p)| p).collect();
    assert_eq!(received, (0..30u8).map(|i| vec![i]).collect::<Vec<_>>());
    let delivered = messaging_events(&mesh, 1)
        .iter()
        .filter(|e| matches!(e, MessagingEvent::Delivered { .. }))
        .count();
    assert_eq!(delivered, 30);
    assert_eq!(mesh.node(1).outbox_len(), 0);
}

#[test]
fn a_message_to_a_stopped_device_is_handled_once_after_it_returns() {
    let (mut mesh, ids) = Mesh::paired(2);
    let roster = mesh.roster_of(2);
    mesh.crash(2);
    mesh.run(Duration::from_secs(20));
    let now = mesh.now;
    mesh.node_mut(1)
        .send_message(now, ids[1], tag("util.notify"), b"hello".to_vec())
        .expect("queued");
    mesh.run(Duration::from_secs(30));
    assert_eq!(mesh.node(1).outbox_len(), 1, "waits while the receiver is away");
    mesh.restart(2, roster.clone());
    mesh.run(Duration::from_secs(30));
    assert_eq!(messages_received(&mesh, 2), vec![(ids[0], b"hello".to_vec())]);
    assert_eq!(mesh.node(1).outbox_len(), 0);
    // Another restart of either side hands it to no handler again.
    mesh.crash(2);
    mesh.restart(2, roster);
    let sender_roster = mesh.roster_of(1);
    mesh.crash(1);
    mesh.restart(1, sender_roster);
    mesh.run(Duration::from_secs(30));
    assert_eq!(messages_received(&mesh, 2).len(), 1);
}

#[test]
fn events_reach_every_device_once_including_the_publisher_and_late_comers() {
    let (mut mesh, ids) = Mesh::paired(3);
    mesh.loss_percent = 10;
    let roster = mesh.roster_of(3);
    mesh.crash(3);
    mesh.run(Duration::from_secs(20));
    publish(&mut mesh, 1, 5);
    mesh.run(Duration::from_secs(20));
    for n in [1, 2] {
        let handled = events_handled(&mesh, n);
        assert_eq!(
            handled,
            (1..=5).map(|seq| (ids[0], seq)).collect::<Vec<_>>(),
            "device {n}"
        );
    }
    // Device 1 goes away too; device 3 comes back and catches up from device 2.
    let roster_1 = mesh.roster_of(1);
    mesh.crash(1);
    mesh.restart(3, roster);
    mesh.run(Duration::from_secs(60));
    let mut late = events_handled(&mesh, 3);
    late.sort();
    assert_eq!(late, (1..=5).map(|seq| (ids[0], seq)).collect::<Vec<_>>());
    // Restarts hand nothing to the handlers again.
    mesh.restart(1, roster_1);
    let roster_3 = mesh.roster_of(3);
    mesh.crash(3);
    mesh.restart(3, roster_3);
    mesh.run(Duration::from_secs(60));
    for n in [1, 2, 3] {
        assert_eq!(events_handled(&mesh, n).len(), 5, "device {n}");
    }
}

#[test]
fn a_megabyte_arrives_intact_through_loss() {
    let (mut mesh, ids) = Mesh::paired(2);
    mesh.loss_percent = 10;
    let payload: Vec<u8> = (0..(1u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let now = mesh.now;
    mesh.node_mut(1)
        .send_message(now, ids[1], tag("sync.file.send"), payload.clone())
        .expect("sent");
    mesh.run(Duration::from_secs(120));
    let received = messages_received(&mesh, 2);
    assert_eq!(received.len(), 1);
    assert!(received[0].1 == payload, "the payload arrived intact");
}

#[test]
fn queries_gather_answers_and_report_the_unreachable() {
    let (mut mesh, ids) = Mesh::paired(4);
    mesh.crash(4);
    mesh.run(Duration::from_secs(20));
    let now = mesh.now;
    let (id, unreachable) = mesh
        .node_mut(1)
        .query(now, None, tag("who.are.you"), b"?".to_vec())
        .expect("sent");
    assert_eq!(unreachable, vec![ids[3]]);
    mesh.run(Duration::from_millis(100));
    for n in [2, 3] {
        let asked: Vec<(DeviceId, u64)> = messaging_events(&mesh, n)
            .into_iter()
            .filter_map(|e| match e {
                MessagingEvent::Query { from, id, .. } => Some((from, id)),
                _ => None,
            })
            .collect();
        assert_eq!(asked, vec![(ids[0], id)]);
        let now = mesh.now;
        mesh.node_mut(n)
            .answer(now, ids[0], id, vec![n])
            .expect("answered");
    }
    mesh.run(Duration::from_millis(100));
    let mut answers: Vec<(DeviceId, Vec<u8>)> = messaging_events(&mesh, 1)
        .into_iter()
        .filter_map(|e| match e {
            MessagingEvent::Answer { from, payload, .. } => Some((from, payload)),
            _ => None,
        })
        .collect();
    answers.sort();
    let mut expected = vec![(ids[1], vec![2]), (ids[2], vec![3])];
    expected.sort();
    assert_eq!(answers, expected);
}

#[test]
fn undelivered_messages_expire() {
    let (mut mesh, ids) = Mesh::paired(2);
    mesh.crash(2);
    mesh.run(Duration::from_secs(20));
    let now = mesh.now;
    mesh.node_mut(1)
        .send_message(now, ids[1], tag("too.late"), vec![1])
        .expect("queued");
    mesh.run(Duration::from_secs(7 * 24 * 3600 + 60));
    assert!(messaging_events(&mesh, 1).contains(&MessagingEvent::Expired { to: ids[1], seq: 1 }));
    assert_eq!(mesh.node(1).outbox_len(), 0);
}

#[test]
fn a_device_that_joins_gets_the_kept_events_of_devices_it_did_not_know_yet() {
    // More kept events than a peer's window of chunks, all of an origin the joiner learns
    // of only from the catch-up that comes after them.
    let (mut mesh, ids) = Mesh::paired(2);
    publish(&mut mesh, 2, 100);
    mesh.run(Duration::from_secs(10));
    mesh.add(3, "device-3");
    let invite = mesh.invite(1, 3);
    mesh.join(3, 1, invite);
    mesh.run(Duration::from_secs(30));
    let handled: Vec<(DeviceId, u64)> = events_handled(&mesh, 3)
        .into_iter()
        .filter(|(origin, _)| *origin == ids[1])
        .collect();
    assert_eq!(handled, (1..=100).map(|seq| (ids[1], seq)).collect::<Vec<_>>());
}
