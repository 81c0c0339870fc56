//! The membership rules, message by message: incarnation precedence, refutation,
//! confirmation counting, and arbitrary (authenticated but hostile) messages.

use std::net::SocketAddr;
use std::time::Duration;

use cnspr_proto::identity::DeviceId;
use cnspr_proto::membership::{
    Body, Envelope, MemberState, Membership, MembershipConfig, MembershipEvent, Status, Update,
};
use cnspr_proto::time::Timestamp;
use proptest::prelude::*;

fn id(byte: u8) -> DeviceId {
    DeviceId::from_bytes([byte; 32])
}

fn address(byte: u8) -> Option<SocketAddr> {
    Some(SocketAddr::from(([192, 0, 2, byte], 3030)))
}

const NOW: Timestamp = Timestamp::from_micros(10_000_000);

/// Device 0's membership, with devices 1–4 on the roster, all heard from as alive at
/// incarnation `1 << 32`.
fn membership() -> Membership {
    let roster = (0..5).map(|i| (id(i), address(i)));
    let mut membership = Membership::new(MembershipConfig::responsive(), id(0), roster, 1, [9; 32], NOW);
    for i in 1..5 {
        membership.handle_envelope(NOW, id(i), envelope(1 << 32, Body::News, vec![]));
    }
    while membership.poll_transmit().is_some() {}
    while membership.poll_event().is_some() {}
    membership
}

fn envelope(incarnation: u64, body: Body, updates: Vec<Update>) -> Envelope {
    Envelope {
        incarnation,
        body,
        updates,
        view: None,
    }
}

fn update(member: u8, incarnation: u64, status: Status, reporter: u8) -> Update {
    Update {
        member: id(member),
        incarnation,
        status,
        reporter: id(reporter),
        address: None,
    }
}

/// News from roster device `from` (at the incarnation everyone starts with).
fn news(membership: &mut Membership, now: Timestamp, from: u8, updates: Vec<Update>) {
    membership.handle_envelope(now, id(from), envelope(1 << 32, Body::News, updates));
}

fn state(membership: &Membership, member: u8) -> MemberState {
    membership.member(&id(member)).expect("on the roster").state()
}

#[test]
fn everyone_heard_from_is_active() {
    let membership = membership();
    for i in 1..5 {
        assert_eq!(state(&membership, i), MemberState::Active);
    }
}

#[test]
fn suspicion_at_the_same_incarnation_wins_over_alive_and_a_higher_alive_refutes_it() {
    let mut m = membership();
    news(&mut m, NOW, 1, vec![update(2, 1 << 32, Status::Suspect, 1)]);
    assert_eq!(state(&m, 2), MemberState::Suspect);
    news(&mut m, NOW, 3, vec![update(2, 1 << 32, Status::Alive, 3)]);
    assert_eq!(
        state(&m, 2),
        MemberState::Suspect,
        "alive at the same incarnation does not refute"
    );
    m.handle_envelope(NOW, id(2), envelope((1 << 32) + 1, Body::News, vec![]));
    assert_eq!(
        state(&m, 2),
        MemberState::Active,
        "the suspect's own higher incarnation does"
    );
}

#[test]
fn older_news_never_overrides_newer() {
    let mut m = membership();
    m.handle_envelope(NOW, id(2), envelope((1 << 32) + 5, Body::News, vec![]));
    news(
        &mut m,
        NOW,
        1,
        vec![update(2, (1 << 32) + 4, Status::Unreachable, 1)],
    );
    assert_eq!(state(&m, 2), MemberState::Active);
    news(&mut m, NOW, 1, vec![update(2, (1 << 32) + 5, Status::Left, 1)]);
    assert_eq!(state(&m, 2), MemberState::Left);
}

#[test]
fn a_suspicion_of_this_device_is_refuted_with_a_higher_incarnation() {
    let mut m = membership();
    let before = m.incarnation();
    news(&mut m, NOW, 1, vec![update(0, before, Status::Suspect, 1)]);
    assert_eq!(m.incarnation(), before + 1);
    let refutations: Vec<Envelope> = std::iter::from_fn(|| m.poll_transmit())
        .map(|o| o.envelope)
        .collect();
    assert!(refutations.iter().any(|e| e
        .updates
        .iter()
        .any(|u| u.member == id(0) && u.status == Status::Alive && u.incarnation == before + 1)));
}

#[test]
fn news_of_this_device_from_beyond_its_incarnation_is_ignored() {
    let mut m = membership();
    let before = m.incarnation();
    news(&mut m, NOW, 1, vec![update(0, u64::MAX, Status::Unreachable, 1)]);
    assert_eq!(m.incarnation(), before, "only this device raises its incarnation");
}

#[test]
fn confirmations_count_only_roster_accusers_and_shorten_the_timeout() {
    let config = MembershipConfig::responsive();
    let mut m = membership();
    let suspect = |reporter| {
        envelope(
            1 << 32,
            Body::News,
            vec![update(3, 1 << 32, Status::Suspect, reporter)],
        )
    };
    m.handle_envelope(NOW, id(1), suspect(1));
    // Strangers confirm nothing: the timeout stays at its maximum.
    m.handle_envelope(NOW, id(1), suspect(200));
    m.handle_timeout(NOW + config.suspicion_max - Duration::from_millis(10));
    assert_eq!(state(&m, 3), MemberState::Suspect);

    let mut m = membership();
    m.handle_envelope(NOW, id(1), suspect(1));
    m.handle_envelope(NOW, id(2), suspect(2));
    m.handle_envelope(NOW, id(4), suspect(4));
    m.handle_timeout(NOW + config.suspicion_min + Duration::from_millis(10));
    assert_eq!(
        state(&m, 3),
        MemberState::Unreachable,
        "two confirmations bring it to the minimum"
    );
}

#[test]
fn a_moved_device_reported_by_others_is_followed() {
    let mut m = membership();
    let new = address(77);
    let later = NOW + Duration::from_secs(30);
    let mut moved = update(2, 1 << 32, Status::Alive, 1);
    moved.address = new;
    news(&mut m, later, 1, vec![moved]);
    assert_eq!(m.member(&id(2)).and_then(|member| member.address), new);
    let events: Vec<MembershipEvent> = std::iter::from_fn(|| m.poll_event()).collect();
    assert!(events.contains(&MembershipEvent::AddressChanged {
        member: id(2),
        address: new.expect("an address"),
    }));
}

#[test]
fn an_address_others_see_for_a_device_heard_lately_is_reported_not_taken() {
    // Device 2 was heard just now (through a relay, say): news of it elsewhere does not
    // move the view, but it is worth a call there.
    let mut m = membership();
    let elsewhere = address(78);
    let mut seen = update(2, 1 << 32, Status::Alive, 1);
    seen.address = elsewhere;
    news(&mut m, NOW, 1, vec![seen.clone()]);
    assert_eq!(m.member(&id(2)).and_then(|member| member.address), address(2));
    let events: Vec<MembershipEvent> = std::iter::from_fn(|| m.poll_event()).collect();
    let heard = MembershipEvent::AddressHeard {
        member: id(2),
        address: elsewhere.expect("an address"),
    };
    assert_eq!(events, [heard]);
    // News naming the address the view has reports nothing.
    seen.address = address(2);
    news(&mut m, NOW, 1, vec![seen]);
    assert_eq!(m.poll_event(), None);
}

#[test]
fn a_relay_introduces_each_end_with_the_address_it_reaches_the_other_at() {
    let mut m = membership();
    m.introduce(id(1), id(2));
    let told = m.poll_transmit().expect("news to device 1");
    assert_eq!(told.to, id(1));
    assert_eq!(told.envelope.body, Body::News);
    let about: Vec<(DeviceId, Option<SocketAddr>)> = told
        .envelope
        .updates
        .iter()
        .map(|u| (u.member, u.address))
        .collect();
    assert_eq!(about, [(id(2), address(2))]);
    assert!(m.poll_transmit().is_none());
    // Nobody is introduced to itself, nor to a device not on the roster.
    m.introduce(id(1), id(1));
    m.introduce(id(9), id(2));
    assert!(m.poll_transmit().is_none());
}

fn any_status() -> impl Strategy<Value = Status> {
    prop_oneof![
        Just(Status::Alive),
        Just(Status::Suspect),
        Just(Status::Unreachable),
        Just(Status::Left)
    ]
}

fn any_update() -> impl Strategy<Value = Update> {
    (0u8..7, any::<u64>(), any_status(), 0u8..7, any::<Option<u8>>()).prop_map(
        |(member, incarnation, status, reporter, address)| Update {
            member: id(member),
            incarnation,
            status,
            reporter: id(reporter),
            address: address.and_then(self::address),
        },
    )
}

fn any_body() -> impl Strategy<Value = Body> {
    prop_oneof![
        any::<(u32, Option<u32>)>().prop_map(|(seq, your_rtt_micros)| Body::Ping { seq, your_rtt_micros }),
        any::<u32>().prop_map(|seq| Body::Ack { seq }),
        (any::<u32>(), 0u8..7).prop_map(|(seq, target)| Body::ProbeRequest {
            seq,
            target: id(target)
        }),
        (any::<u32>(), 0u8..7, any::<bool>(), any::<Option<u8>>()).prop_map(
            |(seq, target, reachable, at)| Body::ProbeReport {
                seq,
                target: id(target),
                reachable,
                address: at.and_then(address),
            }
        ),
        Just(Body::News),
    ]
}

proptest! {
    /// Roster devices sending anything at all, with time jumping about: no panic, the
    /// incarnation never decreases, every output stays bounded.
    #[test]
    fn arbitrary_messages_never_panic(
        messages in proptest::collection::vec((1u8..5, any::<u64>(), any_body(), proptest::collection::vec(any_update(), 0..8), 0u64..20_000_000), 1..60)
    ) {
        let mut m = membership();
        let mut now = NOW;
        for (from, incarnation, body, updates, advance) in messages {
            let before = m.incarnation();
            now = now + Duration::from_micros(advance);
            m.handle_envelope(now, id(from), envelope(incarnation, body, updates));
            m.handle_timeout(now);
            prop_assert!(m.incarnation() >= before);
            let mut outgoing = 0;
            while let Some(message) = m.poll_transmit() {
                prop_assert!(message.envelope.updates.len() <= 8);
                outgoing += 1;
            }
            prop_assert!(outgoing < 200, "{} messages for one input", outgoing);
            while m.poll_event().is_some() {}
        }
    }
}
