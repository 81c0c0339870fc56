//! The state each device is shown in to people (`members`, `monitor`, the handlers'
//! `peer` events): the failure detector's, made honest about the path.
//!
//! The detector counts a device alive as soon as anyone vouches for it, which is what
//! probing and messaging need. People are promised more: `active` only while a direct
//! session with the device works, `indirect` while it is alive only as far as others
//! know, or reached through a relay. The shown state is looked at again whenever either
//! side of that changes: the detector's state, a handshake completing, the last keys
//! expiring, the path moving (to or from a relay).

use std::collections::BTreeMap;

use crate::identity::DeviceId;
use crate::membership::MemberState;
use crate::time::Timestamp;

use super::{Event, Node};

/// The shown states last reported, one per roster device (bounded by the roster).
#[derive(Debug, Default)]
pub(super) struct ShownStates {
    reported: BTreeMap<DeviceId, MemberState>,
}

impl ShownStates {
    /// Forgets a removed device; returns the state it was last shown in.
    fn forget(&mut self, device: &DeviceId) -> Option<MemberState> {
        self.reported.remove(device)
    }
}

/// The state shown for a device the detector finds `detected`, given whether a direct
/// session with it works.
fn shown(detected: MemberState, session: bool) -> MemberState {
    match detected {
        MemberState::Active if !session => MemberState::Indirect,
        other => other,
    }
}

impl Node {
    /// The state `device` is shown in, as last reported ([`Event::PeerState`]); `None`
    /// for a device that is not a member.
    pub fn shown_state(&self, device: &DeviceId) -> Option<MemberState> {
        let member = self.membership.member(device)?;
        Some(
            self.shown
                .reported
                .get(device)
                .copied()
                .unwrap_or_else(|| member.state()),
        )
    }

    /// Whether `device` is reached directly now: alive to the failure detector, with a
    /// working session not through a relay.
    pub(super) fn reached_directly(&self, now: Timestamp, device: &DeviceId) -> bool {
        let alive = self
            .membership
            .member(device)
            .is_some_and(|m| m.state() == MemberState::Active);
        alive && self.direct_session(now, device)
    }

    /// Whether a session with `device` works, not through a relay.
    fn direct_session(&self, now: Timestamp, device: &DeviceId) -> bool {
        self.endpoint.relayed_through(device).is_none() && self.endpoint.current_keys(now, device).is_some()
    }

    /// `device` was removed: reported `unreachable` if it was shown otherwise (so that
    /// whoever counts active devices counts it out), then forgotten.
    pub(super) fn forget_shown(&mut self, device: DeviceId) {
        let previous = self.shown.forget(&device);
        if let Some(previous) = previous.filter(|state| *state != MemberState::Unreachable) {
            self.events.push_back(Event::PeerState {
                member: device,
                previous,
                state: MemberState::Unreachable,
            });
        }
    }

    /// Looks again at the state `device` is shown in, and reports a change.
    pub(super) fn review_shown(&mut self, now: Timestamp, device: DeviceId) {
        let Some(member) = self.membership.member(&device) else {
            return;
        };
        let state = shown(member.state(), self.direct_session(now, &device));
        let previous = self
            .shown
            .reported
            .insert(device, state)
            .unwrap_or(MemberState::Unreachable);
        if previous != state {
            self.events.push_back(Event::PeerState {
                member: device,
                previous,
                state,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_needs_a_working_session_and_nothing_else_changes() {
        assert_eq!(shown(MemberState::Active, true), MemberState::Active);
        assert_eq!(shown(MemberState::Active, false), MemberState::Indirect);
        for state in [
            MemberState::Indirect,
            MemberState::Suspect,
            MemberState::Unreachable,
            MemberState::Left,
        ] {
            assert_eq!(shown(state, true), state);
            assert_eq!(shown(state, false), state);
        }
    }
}
