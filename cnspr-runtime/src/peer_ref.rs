//! Finding the device a person means: a name, a full device ID, or a unique prefix of one.

use cnspr_proto::identity::DeviceId;

use crate::driver::Snapshot;

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
    if let Some(member) = snapshot
        .members
        .iter()
        .find(|m| m.name.as_deref() == Some(given_trimmed))
    {
        return Ok(member.id);
    }
    if let Ok(id) = given_trimmed.parse::<DeviceId>() {
        if snapshot.members.iter().any(|m| m.id == id) {
            return Ok(id);
        }
        return Err(PeerRefError::Unknown(given.to_owned()));
    }
    let matching: Vec<&crate::driver::MemberView> = snapshot
        .members
        .iter()
        .filter(|m| m.id.matches_prefix(given_trimmed))
        .collect();
    match matching.as_slice() {
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
