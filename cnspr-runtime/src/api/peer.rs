//! A device on the wire: its ID (text form, with the schema clients see for it), its
//! name once known, the state `members` shows, and the one way a device is shown to
//! people ([`PeerLabel`]).

use std::borrow::Cow;
use std::fmt;

use cnspr_proto::identity::DeviceId;
use cnspr_proto::membership::MemberState;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

/// The schema of a device ID in its text form (`DeviceId` serializes as that text):
/// `#[schemars(with = "DeviceIdText")]` on every field that holds one.
pub struct DeviceIdText;

impl JsonSchema for DeviceIdText {
    fn schema_name() -> Cow<'static, str> {
        "DeviceId".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A device ID: 56 base32 characters (with check characters) in eight dash-separated groups of seven.",
            "type": "string",
            "pattern": "^[A-Z2-7]{7}(-[A-Z2-7]{7}){7}$"
        })
    }
}

/// A peer's state as `members` and `monitor` show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PeerState {
    /// A direct session works now.
    Active,
    /// Missed probes, being checked.
    Suspect,
    /// Not reachable directly; reachable through another device, which relays.
    Indirect,
    /// Not reachable (or never heard from yet).
    Unreachable,
    /// Said goodbye: stopped or suspended.
    Left,
}

/// How a device is reached (`members`' PATH).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PeerPath {
    /// A direct session, on a network this device is on.
    Lan,
    /// A direct session, across other networks.
    Direct,
    /// No direct session: known alive through other devices.
    Indirect,
}

impl PeerPath {
    /// The lower-case name shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            PeerPath::Lan => "lan",
            PeerPath::Direct => "direct",
            PeerPath::Indirect => "indirect",
        }
    }
}

impl From<MemberState> for PeerState {
    fn from(state: MemberState) -> Self {
        match state {
            MemberState::Active => PeerState::Active,
            MemberState::Suspect => PeerState::Suspect,
            MemberState::Indirect => PeerState::Indirect,
            MemberState::Unreachable => PeerState::Unreachable,
            MemberState::Left => PeerState::Left,
        }
    }
}

impl PeerState {
    /// The word `members` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            PeerState::Active => "active",
            PeerState::Suspect => "suspect",
            PeerState::Indirect => "indirect",
            PeerState::Unreachable => "unreachable",
            PeerState::Left => "left",
        }
    }
}

impl fmt::Display for PeerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A device as results list it: `{"peer": ID, "name": NAME-or-null}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Peer {
    /// Its name, `null` until it has told the mesh.
    pub name: Option<String>,
    /// Its device ID.
    #[schemars(with = "DeviceIdText")]
    pub peer: DeviceId,
}

impl Peer {
    /// How people see it.
    pub fn label(&self) -> PeerLabel<'_> {
        PeerLabel::new(&self.peer, self.name.as_deref())
    }
}

/// How a device is shown to people, everywhere: `name (SHORTID)`, or the short ID alone
/// while it has no name. [`PeerLabel::brief`] is the name alone, for lines that show the
/// IDs elsewhere or that people read as "who said what" (`laptop: up 3 days`).
#[derive(Debug, Clone, Copy)]
pub struct PeerLabel<'a> {
    id: &'a DeviceId,
    name: Option<&'a str>,
}

impl<'a> PeerLabel<'a> {
    /// The label of `id`, called `name` (an empty name counts as none).
    pub fn new(id: &'a DeviceId, name: Option<&'a str>) -> Self {
        Self {
            id,
            name: name.filter(|n| !n.is_empty()),
        }
    }

    /// The name, or the short ID while there is none.
    pub fn brief(&self) -> String {
        match self.name {
            Some(name) => name.to_owned(),
            None => self.id.short().to_string(),
        }
    }
}

impl fmt::Display for PeerLabel<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name {
            Some(name) => write!(f, "{name} ({})", self.id.short()),
            None => write!(f, "{}", self.id.short()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_show_the_name_and_short_id() {
        let id = DeviceId::from_bytes([0x10; 32]);
        let short = id.short().to_string();
        assert_eq!(short.len(), 7);
        assert_eq!(
            PeerLabel::new(&id, Some("desk")).to_string(),
            format!("desk ({short})")
        );
        assert_eq!(PeerLabel::new(&id, None).to_string(), short);
        assert_eq!(
            PeerLabel::new(&id, Some("")).to_string(),
            short,
            "an empty name is none"
        );
        assert_eq!(PeerLabel::new(&id, Some("desk")).brief(), "desk");
        assert_eq!(PeerLabel::new(&id, None).brief(), short);
    }

    #[test]
    fn states_are_the_words_members_shows() {
        for state in [
            MemberState::Active,
            MemberState::Suspect,
            MemberState::Indirect,
            MemberState::Unreachable,
            MemberState::Left,
        ] {
            let shown = PeerState::from(state);
            assert_eq!(shown.to_string(), state.as_str());
            assert_eq!(
                serde_json::to_value(shown).expect("serializes"),
                serde_json::Value::from(state.as_str())
            );
        }
    }
}
