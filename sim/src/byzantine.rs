//! Hostile devices (`--byzantine K`): roster devices that run the real protocol and, every
//! few seconds, lie to everyone about another device, as a stolen laptop could. The
//! invariants hold the honest devices to the truth all the same: at the end every live
//! pair reaches each other, a device that crashes is still found, no device runs a handler
//! for an event its origin never published (`workload.rs`), and no replica holds a made-up
//! key (`world.rs`).
//!
//! The lies:
//!
//! - membership news, as it could do before claims were signed (`claim.rs` in the core):
//!   a device said to have left, or to be unreachable or alive at an incarnation it can
//!   never refute from, signed by nobody, by the liar, or with the victim's own claim of
//!   running passed off as its goodbye;
//! - events in the victim's name: unsigned and signed by the liar, numbered as its next
//!   event, and one numbered `u64::MAX` (which once suppressed its real events everywhere);
//! - store states: a write of the victim beyond every head it signed, a write of the
//!   receiver that the receiver never made (it would wrap its write counter), a write
//!   stamped an hour ahead (it would win every conflict), a write to the victim's address
//!   record, and a head of the victim at `u64::MAX` with no valid signature.
//!
//! The report counts what the devices refused as forged (`refused_as_forged`): every store
//! change refused and every event dropped for its signature, the liars' and any other.
//!
//! Lies the core cannot yet refuse are left out, and listed in `docs/simulator.md`.

use std::time::Duration;

use cnspr_proto::identity::{DeviceId, DeviceKey, Signature, SIGNATURE_BYTES};
use cnspr_proto::membership::{sign_claim, Claim, Member, Status, Update};
use cnspr_proto::messaging::{event_signature, Tag, Unit};
use cnspr_proto::roster::{address_device, address_key};
use cnspr_proto::store::heads::SignedHead;
use cnspr_proto::store::sync::{Change, StoreMessage};
use cnspr_proto::store::{Hlc, Register, Sibling, Store};

use crate::workload::payload;

/// How often each hostile device lies.
pub const LIE_INTERVAL: Duration = Duration::from_secs(2);

/// The news a hostile device (`liar`, signing with its own key) makes up about `victim`,
/// as it knows it.
pub fn lies_about(liar: &DeviceKey, victim: &Member) -> Vec<Update> {
    let forged = |incarnation, status, proof| Update {
        member: victim.id,
        incarnation,
        status,
        reporter: liar.device_id(),
        address: None,
        proof,
    };
    let known = victim.incarnation;
    vec![
        forged(known, Status::Left, None),
        forged(u64::MAX, Status::Left, None),
        forged(u64::MAX, Status::Unreachable, None),
        forged(u64::MAX, Status::Alive, None),
        forged(known, Status::Left, Some(sign_claim(liar, known, Claim::Left))),
        forged(known, Status::Left, victim.proof),
        forged(u64::MAX, Status::Suspect, victim.proof),
    ]
}

/// The event ID of every made-up event: the workload never gives it, so a handler run for
/// it is a violation.
pub const MADE_UP_EVENT: u64 = u64::MAX;

/// Where made-up store keys live: no replica may ever hold one.
pub const MADE_UP_PREFIX: &str = "lie/";

/// What stands in for a signature in a forgery that has none.
const UNSIGNED: Signature = Signature([0; SIGNATURE_BYTES]);

/// Events `liar` makes up in `victim`'s name, the first two numbered `next`, the next
/// event of the victim's that the liar expects (a repeat of one handled is dropped before
/// its signature is checked).
pub fn forged_events(liar: &DeviceKey, victim: DeviceId, next: u64) -> Vec<Unit> {
    let tag = Tag::new("lie").expect("a valid tag");
    let made_up = payload(MADE_UP_EVENT);
    let event = |seq, signature| Unit::Event {
        origin: victim,
        seq,
        tag: tag.clone(),
        payload: made_up.clone(),
        ttl_secs: 60,
        signature,
    };
    vec![
        event(next, UNSIGNED),
        event(next, event_signature::sign(liar, next, &tag, &made_up)),
        event(u64::MAX, UNSIGNED),
    ]
}

/// Store states `liar` (whose last write number is `liar_seq`, and whose clock reads
/// `wall_micros`) makes up about `victim` for `receiver`. The writes in the liar's own
/// name reuse its last write number: a receiver that has not had the liar's head that far
/// refuses them as beyond it, one that has, by the check each is made for (the clock, the
/// address record's owner).
pub fn forged_store(
    liar: &DeviceKey,
    liar_seq: u64,
    victim: DeviceId,
    receiver: DeviceId,
    wall_micros: u64,
) -> Unit {
    let now = Hlc {
        micros: wall_micros,
        counter: 0,
    };
    let write = |key: String, device, seq, hlc| Change {
        key,
        register: Register::from_parts(
            vec![Sibling {
                device,
                seq,
                hlc,
                value: Some(b"made up".to_vec()),
            }],
            Vec::new(),
        ),
    };
    let an_hour_ahead = Hlc {
        micros: wall_micros.saturating_add(3_600_000_000),
        counter: 0,
    };
    let changes = vec![
        write(format!("{MADE_UP_PREFIX}beyond-head"), victim, u64::MAX, now),
        write(format!("{MADE_UP_PREFIX}never-made"), receiver, u64::MAX, now),
        write(
            format!("{MADE_UP_PREFIX}ahead"),
            liar.device_id(),
            liar_seq,
            an_hour_ahead,
        ),
        write(address_key(&victim), liar.device_id(), liar_seq, now),
    ];
    let forged_head = SignedHead {
        device: victim,
        seq: u64::MAX,
        signature: UNSIGNED,
    };
    // One message: each change in it is checked, and refused, on its own.
    let message = StoreMessage::Push {
        changes,
        heads: vec![forged_head],
    };
    Unit::Store(message.encode())
}

/// Keys of `store` that only a believed lie puts there: one under [`MADE_UP_PREFIX`], or an
/// address record holding a write of another device than the one it names.
pub fn made_up_keys(store: &Store) -> impl Iterator<Item = String> + '_ {
    store
        .registers()
        .filter(|(key, register)| {
            key.starts_with(MADE_UP_PREFIX)
                || address_device(key)
                    .is_some_and(|owner| register.siblings().iter().any(|s| s.device != owner))
        })
        .map(|(key, _)| key.to_owned())
}
