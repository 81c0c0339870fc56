//! Finding the device a person means: a full device ID, then a name (names are unique in
//! the mesh: `Roster::shown_name`), then a unique prefix of an ID; and the other way, the
//! name of a device.

use cnspr_proto::identity::DeviceId;

use crate::api::Peer;
use crate::driver::{MemberView, Snapshot};

/// Why no single device matched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerRefError {
    /// Nothing matched.
    #[error("no device of the mesh is called or starts with {0:?}")]
    Unknown(String),
    /// Several matched.
    #[error(
        "{given:?} matches several devices: {}; give more of the device ID",
        labels(candidates)
    )]
    Ambiguous {
        /// What was given.
        given: String,
        /// Who matched.
        candidates: Vec<Peer>,
    },
}

/// `name (SHORTID), …`.
fn labels(candidates: &[Peer]) -> String {
    let labels: Vec<String> = candidates.iter().map(|c| c.label().to_string()).collect();
    labels.join(", ")
}

/// The roster device (this one excluded) that `given` names.
pub fn resolve(snapshot: &Snapshot, given: &str) -> Result<DeviceId, PeerRefError> {
    let given_trimmed = given.trim();
    if let Ok(id) = given_trimmed.parse::<DeviceId>() {
        if snapshot.members.iter().any(|m| m.id == id) {
            return Ok(id);
        }
        return Err(PeerRefError::Unknown(given.to_owned()));
    }
    let named: Vec<&MemberView> = snapshot
        .members
        .iter()
        .filter(|m| m.name.as_deref() == Some(given_trimmed))
        .collect();
    if !named.is_empty() {
        return one(given, &named);
    }
    let matching: Vec<&MemberView> = snapshot
        .members
        .iter()
        .filter(|m| m.id.matches_prefix(given_trimmed))
        .collect();
    one(given, &matching)
}

/// The name of roster device `id` (this one included), once it is known.
pub fn name(snapshot: &Snapshot, id: &DeviceId) -> Option<String> {
    if *id == snapshot.own_id {
        return Some(snapshot.own_name.clone());
    }
    snapshot
        .members
        .iter()
        .find(|m| m.id == *id)
        .and_then(|m| m.name.clone())
}

/// The single device of `matching`, or why there is not exactly one.
fn one(given: &str, matching: &[&MemberView]) -> Result<DeviceId, PeerRefError> {
    match matching {
        [one] => Ok(one.id),
        [] => Err(PeerRefError::Unknown(given.to_owned())),
        many => Err(PeerRefError::Ambiguous {
            given: given.to_owned(),
            candidates: many
                .iter()
                .map(|m| Peer {
                    name: m.name.clone(),
                    peer: m.id,
                })
                .collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cnspr_proto::membership::MemberState;

    fn member(byte: u8, name: &str) -> MemberView {
        MemberView {
            id: DeviceId::from_bytes([byte; 32]),
            name: Some(name.to_owned()),
            state: MemberState::Active,
            path: None,
            via: None,
            relay: None,
            address: None,
            rtt: None,
            last_seen: None,
            other_version: None,
        }
    }

    fn snapshot(members: Vec<MemberView>) -> Snapshot {
        Snapshot {
            own_id: DeviceId::from_bytes([0; 32]),
            own_name: "self".into(),
            members,
            removed: Vec::new(),
            stats: Default::default(),
            runs: (0, 0),
            store_keys: 0,
            catching_up: Vec::new(),
            nat: cnspr_proto::node::NatReport {
                mapping: cnspr_proto::node::NatMapping::Unknown,
                translated: Vec::new(),
            },
            keepalive: (std::time::Duration::from_secs(25), 0),
            relayed_pairs: 0,
            health_multiplier: 1,
        }
    }

    #[test]
    fn names_ids_and_prefixes() {
        // [0x10; 32] and [0x11; 32] share only their first base32 character, "C".
        let shot = snapshot(vec![
            member(0x10, "desk"),
            member(0x11, "laptop"),
            member(0xff, "phone"),
        ]);
        let desk = DeviceId::from_bytes([0x10; 32]);
        assert_eq!(resolve(&shot, "desk"), Ok(desk));
        assert_eq!(resolve(&shot, &desk.to_string()), Ok(desk));
        assert_eq!(resolve(&shot, &desk.to_string().to_lowercase()[..9]), Ok(desk));
        assert_eq!(resolve(&shot, "777"), Ok(DeviceId::from_bytes([0xff; 32])));
        assert!(matches!(resolve(&shot, "c"), Err(PeerRefError::Ambiguous { .. })));
        assert!(matches!(resolve(&shot, "nobody"), Err(PeerRefError::Unknown(_))));
        assert_eq!(name(&shot, &desk).as_deref(), Some("desk"));
        assert_eq!(name(&shot, &shot.own_id).as_deref(), Some("self"));
        assert_eq!(name(&shot, &DeviceId::from_bytes([0x42; 32])), None);
        // A full ID first, then a name, then a prefix: a name cannot shadow an ID, and a
        // name that looks like another device's prefix wins over the prefix.
        let shadows = snapshot(vec![
            member(0x10, "desk"),
            member(0x30, &desk.to_string()),
            member(0x31, &desk.short().to_string()),
        ]);
        assert_eq!(resolve(&shadows, &desk.to_string()), Ok(desk));
        assert_eq!(
            resolve(&shadows, &desk.short().to_string()),
            Ok(DeviceId::from_bytes([0x31; 32]))
        );
        let twins = snapshot(vec![member(1, "desk"), member(2, "desk")]);
        let twins_error = resolve(&twins, "desk").expect_err("two devices are called desk");
        let (one, two) = (DeviceId::from_bytes([1; 32]), DeviceId::from_bytes([2; 32]));
        assert_eq!(
            twins_error.to_string(),
            format!(
                "\"desk\" matches several devices: desk ({}), desk ({}); give more of the device ID",
                one.short(),
                two.short()
            )
        );
    }
}
