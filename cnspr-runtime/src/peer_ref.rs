//! Finding the device a person means: a name, a full device ID, or a unique prefix of one.

use cnspr_proto::identity::DeviceId;

use crate::driver::{MemberView, Snapshot};

/// Why no single device matched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerRefError {
    /// Nothing matched.
    #[error("no device of the mesh is called or starts with {0:?}")]
    Unknown(String),
    /// Several matched.
    #[error("{given:?} matches several devices: {candidates}; give more of the device ID")]
    Ambiguous {
        /// What was given.
        given: String,
        /// Who matched.
        candidates: String,
    },
}

/// The roster device (this one excluded) that `given` names.
pub fn resolve(snapshot: &Snapshot, given: &str) -> Result<DeviceId, PeerRefError> {
    let given_trimmed = given.trim();
    let named: Vec<&MemberView> = snapshot
        .members
        .iter()
        .filter(|m| m.name.as_deref() == Some(given_trimmed))
        .collect();
    if !named.is_empty() {
        return one(given, &named);
    }
    if let Ok(id) = given_trimmed.parse::<DeviceId>() {
        if snapshot.members.iter().any(|m| m.id == id) {
            return Ok(id);
        }
        return Err(PeerRefError::Unknown(given.to_owned()));
    }
    let matching: Vec<&MemberView> = snapshot
        .members
        .iter()
        .filter(|m| m.id.matches_prefix(given_trimmed))
        .collect();
    one(given, &matching)
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
                .map(|m| format!("{} ({})", m.name.as_deref().unwrap_or("?"), m.id.short()))
                .collect::<Vec<_>>()
                .join(", "),
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
            address: None,
            rtt: None,
            last_seen: None,
        }
    }

    fn snapshot(members: Vec<MemberView>) -> Snapshot {
        Snapshot {
            own_id: DeviceId::from_bytes([0; 32]),
            own_name: "self".into(),
            members,
            removed: Vec::new(),
            stats: Default::default(),
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
        let twins = snapshot(vec![member(1, "desk"), member(2, "desk")]);
        assert!(matches!(
            resolve(&twins, "desk"),
            Err(PeerRefError::Ambiguous { .. })
        ));
    }
}
