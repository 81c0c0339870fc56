//! The membership rules, message by message: incarnation precedence, refutation,
//! confirmation counting, signed claims, and arbitrary (authenticated but hostile)
//! messages.

use std::net::SocketAddr;
use std::time::Duration;

use cnspr_proto::identity::{DeviceId, DeviceKey};
use cnspr_proto::membership::{
    sign_claim, Body, Claim, Envelope, MemberState, Membership, MembershipConfig, MembershipEvent, Status,
    Update,
};
use cnspr_proto::time::Timestamp;
use proptest::prelude::*;

fn key(byte: u8) -> DeviceKey {
    DeviceKey::from_seed([byte; 32])
}

fn id(byte: u8) -> DeviceId {
    key(byte).device_id()
}

fn address(byte: u8) -> Option<SocketAddr> {
    Some(SocketAddr::from(([192, 0, 2, byte], 3030)))
}

const NOW: Timestamp = Timestamp::from_micros(10_000_000);

/// Device 0's membership, with devices 1–4 on the roster, all heard from as alive at
/// incarnation `1 << 32`.
fn membership() -> Membership {
    let roster = (0..5).map(|i| (id(i), address(i)));
    let mut membership = Membership::new(MembershipConfig::responsive(), key(0), roster, 1, [9; 32], NOW);
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
        claim: None,
    }
}

fn update(member: u8, incarnation: u64, status: Status, reporter: u8) -> Update {
    Update {
        member: id(member),
        incarnation,
        status,
        reporter: id(reporter),
        address: None,
        proof: None,
    }
}

/// `update` with its member's own signed claim of it.
fn claimed(member: u8, mut update: Update) -> Update {
    let claim = Claim::backing(update.status);
    update.proof = Some(sign_claim(&key(member), update.incarnation, claim));
    update
}

/// Runs `m`'s timers from [`NOW`] for `duration`, without input: the updates of all it sent.
fn run(m: &mut Membership, duration: Duration) -> Vec<Update> {
    let mut sent = Vec::new();
    let mut now = NOW;
    while now < NOW + duration {
        now = now + Duration::from_millis(100);
        m.handle_timeout(now);
        sent.extend(std::iter::from_fn(|| m.poll_transmit()).flat_map(|o| o.envelope.updates));
    }
    sent
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
    news(
        &mut m,
        NOW,
        1,
        vec![claimed(2, update(2, (1 << 32) + 5, Status::Left, 1))],
    );
    assert_eq!(state(&m, 2), MemberState::Left);
}

#[test]
fn news_from_others_of_a_new_incarnation_or_a_leaving_needs_the_members_own_claim() {
    let mut m = membership();
    // A stolen device says device 2 left, or is gone at an incarnation it could never
    // refute from: without device 2's signature, nothing changes.
    let forged = [
        update(2, 1 << 32, Status::Left, 1),
        update(2, u64::MAX, Status::Left, 1),
        update(2, u64::MAX, Status::Unreachable, 1),
        update(2, u64::MAX, Status::Suspect, 1),
        update(2, u64::MAX, Status::Alive, 1),
        // Signed by the accuser, or a claim of running passed off as one of leaving.
        claimed(1, update(2, u64::MAX, Status::Unreachable, 1)),
        Update {
            proof: claimed(2, update(2, 1 << 32, Status::Alive, 1)).proof,
            ..update(2, 1 << 32, Status::Left, 1)
        },
    ];
    for news_item in forged {
        news(&mut m, NOW, 1, vec![news_item.clone()]);
        assert_eq!(state(&m, 2), MemberState::Active, "{news_item:?}");
        assert_eq!(m.member(&id(2)).map(|m| m.incarnation), Some(1 << 32));
    }
    // Accusing it at the incarnation it is at needs nothing: it refutes that itself.
    news(&mut m, NOW, 1, vec![update(2, 1 << 32, Status::Suspect, 1)]);
    assert_eq!(state(&m, 2), MemberState::Suspect);
    // Its own claim of a new incarnation, relayed by anyone, is believed, and passed on
    // with the claim (piggybacked on the next probe).
    while m.poll_transmit().is_some() {}
    let refuted = claimed(2, update(2, (1 << 32) + 1, Status::Alive, 1));
    news(&mut m, NOW, 1, vec![refuted.clone()]);
    assert_eq!(state(&m, 2), MemberState::Active);
    let passed_on: Vec<Update> = run(&mut m, Duration::from_secs(10))
        .into_iter()
        .filter(|u| u.member == id(2))
        .collect();
    assert!(!passed_on.is_empty());
    assert!(
        passed_on.iter().all(|u| u.proof == refuted.proof),
        "{passed_on:?}"
    );
    // And its own goodbye.
    news(
        &mut m,
        NOW,
        3,
        vec![claimed(2, update(2, (1 << 32) + 1, Status::Left, 3))],
    );
    assert_eq!(state(&m, 2), MemberState::Left);
}

#[test]
fn a_claim_that_came_with_the_devices_own_message_goes_with_news_of_it() {
    // Device 2 restarted: its first messages carry its claim of the new incarnation.
    let restarted = 2u64 << 32;
    let claim = claimed(2, update(2, restarted, Status::Alive, 2)).proof;
    let mut m = membership();
    m.handle_envelope(
        NOW,
        id(2),
        Envelope {
            claim,
            ..envelope(restarted, Body::News, vec![])
        },
    );
    let passed_on: Vec<Update> = run(&mut m, Duration::from_secs(10))
        .into_iter()
        .filter(|u| u.member == id(2) && u.incarnation == restarted)
        .collect();
    assert!(!passed_on.is_empty());
    assert!(passed_on.iter().all(|u| u.proof == claim), "{passed_on:?}");
    // Without one (or with one of another device), the news goes without a claim, and
    // only devices that heard device 2 there themselves believe it.
    let mut m = membership();
    let wrong = claimed(1, update(1, restarted, Status::Alive, 1)).proof;
    m.handle_envelope(
        NOW,
        id(2),
        Envelope {
            claim: wrong,
            ..envelope(restarted, Body::News, vec![])
        },
    );
    assert_eq!(m.member(&id(2)).map(|m| m.incarnation), Some(restarted));
    let passed_on: Vec<Update> = run(&mut m, Duration::from_secs(10))
        .into_iter()
        .filter(|u| u.member == id(2) && u.incarnation == restarted)
        .collect();
    assert!(passed_on.iter().all(|u| u.proof.is_none()), "{passed_on:?}");
}

#[test]
fn a_device_claims_each_new_incarnation_in_its_first_messages_to_each_device() {
    let mut m = membership();
    let before = m.incarnation();
    news(&mut m, NOW, 1, vec![update(0, before, Status::Suspect, 1)]);
    let refuted = m.incarnation();
    assert_eq!(refuted, before + 1);
    let running = claimed(0, update(0, refuted, Status::Alive, 0)).proof;
    let mut now = NOW;
    let mut to_device_3 = Vec::new();
    while to_device_3.len() < 5 && now < NOW + Duration::from_secs(120) {
        now = now + Duration::from_millis(100);
        m.handle_timeout(now);
        while let Some(out) = m.poll_transmit() {
            if out.to == id(3) {
                to_device_3.push(out.envelope.claim);
                // Answered, so that it stays alive and probed.
                m.handle_envelope(now, id(3), envelope(1 << 32, Body::News, vec![]));
            }
        }
    }
    assert_eq!(to_device_3.len(), 5, "{to_device_3:?}");
    assert_eq!(to_device_3[..3], [running; 3]);
    assert_eq!(to_device_3[3..], [None, None]);
}

#[test]
fn a_device_spreads_its_own_signed_claims_of_running_and_of_leaving() {
    let roster = (0..5).map(|i| (id(i), address(i)));
    let mut m = Membership::new(MembershipConfig::responsive(), key(0), roster, 1, [9; 32], NOW);
    let incarnation = m.incarnation();
    // Its first news goes to the first device it hears, then its goodbye.
    m.handle_envelope(NOW, id(1), envelope(1 << 32, Body::News, vec![]));
    m.leave(NOW);
    let own: Vec<Update> = std::iter::from_fn(|| m.poll_transmit())
        .flat_map(|o| o.envelope.updates)
        .filter(|u| u.member == id(0))
        .collect();
    let running = claimed(0, update(0, incarnation, Status::Alive, 0)).proof;
    let left = claimed(0, update(0, incarnation, Status::Left, 0)).proof;
    assert!(
        own.iter()
            .any(|u| u.status == Status::Alive && u.proof == running),
        "{own:?}"
    );
    assert!(
        own.iter().any(|u| u.status == Status::Left && u.proof == left),
        "{own:?}"
    );
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
fn a_made_up_goodbye_of_this_device_needs_no_refutation() {
    // Nobody believes it without this device's own signed goodbye; refuting it would
    // worsen this device's health at every lie.
    let mut m = membership();
    let before = m.incarnation();
    news(&mut m, NOW, 1, vec![update(0, before, Status::Left, 1)]);
    assert_eq!(m.incarnation(), before);
    news(&mut m, NOW, 1, vec![update(0, before, Status::Unreachable, 1)]);
    assert_eq!(
        m.incarnation(),
        before + 1,
        "an accusation others believe is refuted"
    );
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
    (
        0u8..7,
        any::<u64>(),
        any_status(),
        0u8..7,
        any::<Option<u8>>(),
        any::<bool>(),
    )
        .prop_map(|(member, incarnation, status, reporter, address, signed)| {
            let update = Update {
                address: address.and_then(self::address),
                ..update(member, incarnation, status, reporter)
            };
            if signed {
                claimed(member, update)
            } else {
                update
            }
        })
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
