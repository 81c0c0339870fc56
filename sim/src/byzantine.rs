//! Hostile devices (`--byzantine K`): roster devices that run the real protocol and, every
//! few seconds, lie to everyone about another device's liveness, as a stolen laptop could.
//! The invariants hold the honest devices to the truth all the same: at the end every
//! live pair reaches each other, and a device that crashes is still found.
//!
//! The lies are what membership news could do before claims were signed (`claim.rs` in
//! the core): a device said to have left, or to be unreachable or alive at an incarnation
//! it can never refute from, signed by nobody, by the liar, or with the victim's own claim
//! of running passed off as its goodbye.

use std::time::Duration;

use cnspr_proto::identity::DeviceKey;
use cnspr_proto::membership::{sign_claim, Claim, Member, Status, Update};

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
