//! Errors on the wire: JSON-RPC's own codes for requests that are not understood, and for
//! a request understood but not carried out, one code per [`ErrorKind`] with a `data`
//! object (`{"kind": …, …}`) that says what went wrong in fields a program can use. The
//! `message` is one plain sentence for people.
//!
//! Application codes are positive and grouped by concern in tens (docs/api.md lists them):
//! 1–9 pairing, 10–19 peers, 20–29 messages, 30–39 the store, 40–49 the daemon.

use std::fmt;
use std::net::SocketAddr;

use cnspr_proto::identity::DeviceId;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use super::peer::{DeviceIdText, Peer};

/// Invalid JSON.
pub const PARSE_ERROR: i64 = -32700;
/// Valid JSON that is not a request (or a line over the size limit).
pub const INVALID_REQUEST: i64 = -32600;
/// No such method.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Missing, wrongly typed or unknown parameters.
pub const INVALID_PARAMS: i64 = -32602;
/// The daemon failed internally.
pub const INTERNAL_ERROR: i64 = -32603;

error_kinds! {
    /// the invite token cannot be read (not a token, damaged, a typo, another version).
    1 => InvalidToken {
        /// What is wrong with it.
        reason: String,
    },
    /// the invite token has expired.
    2 => InviteExpired {
        /// When it expired (Unix seconds).
        expires_unix_secs: u64,
    },
    /// the invite was made by this device.
    3 => OwnInvite,
    /// the invite names no address of an IP version this device listens on.
    4 => NoUsableAddress {
        /// The addresses it names.
        addresses: Vec<SocketAddr>,
    },
    /// the inviting device did not answer, or refused the invite (wrong, expired or
    /// already used).
    5 => PairingFailed {
        /// The addresses tried.
        tried: Vec<SocketAddr>,
    },
    /// no device of the mesh has that name, ID or ID prefix.
    10 => UnknownPeer {
        /// What was given.
        given: String,
    },
    /// several devices match.
    11 => AmbiguousPeer {
        /// What was given.
        given: String,
        /// The devices it matches.
        candidates: Vec<Peer>,
    },
    /// the device is not (or no longer) a device of the mesh.
    12 => NotAMember {
        /// The device, when one was named.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(with = "Option<DeviceIdText>")]
        peer: Option<DeviceId>,
    },
    /// the device named is this one.
    13 => ThisDevice,
    /// no address is known for the device yet.
    14 => NoAddress {
        /// The device.
        #[schemars(with = "DeviceIdText")]
        peer: DeviceId,
    },
    /// no answer in time.
    15 => Timeout {
        /// How long the daemon waited.
        timeout_ms: u64,
    },
    /// a payload or value over its limit.
    20 => TooLarge {
        /// Its size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// not a valid tag.
    21 => InvalidTag {
        /// The tag given.
        tag: String,
        /// What is wrong with it.
        reason: String,
    },
    /// a direct message expired (`message_ttl`) before it was delivered.
    22 => MessageExpired {
        /// The receiver.
        #[schemars(with = "DeviceIdText")]
        peer: DeviceId,
        /// The message's number.
        seq: u64,
    },
    /// the key is missing or deleted.
    30 => NoKey {
        /// The key.
        key: String,
    },
    /// the key belongs to the mesh itself (`_roster/`, `_addr/`).
    31 => KeyReserved {
        /// The key.
        key: String,
    },
    /// the key is empty or too long.
    32 => KeyLength {
        /// Its length in bytes.
        bytes: usize,
        /// The longest a key may be.
        limit: usize,
    },
    /// the daemon is stopping.
    40 => Stopping,
    /// the database failed (a full disk, an I/O error): nothing that needs the disk is
    /// done until it works again.
    41 => DiskFailed {
        /// What failed.
        error: String,
        /// Since when (Unix seconds).
        since_unix_secs: u64,
    },
}

/// An error answer: `{"code": …, "message": …, "data": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RpcError {
    /// JSON-RPC's own code (-32700 to -32603) or, for a request understood but not
    /// carried out, the code of its kind (`data.kind`).
    pub code: i64,
    /// One plain sentence.
    pub message: String,
    /// What went wrong, for programs; absent for JSON-RPC's own codes. A reader that does
    /// not know the kind (a newer daemon's) sees no data and still has code and message.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "known_kind"
    )]
    #[schemars(with = "Option<ErrorKind>")]
    pub data: Option<ErrorKind>,
}

/// The data of an error if it is a kind this build knows.
fn known_kind<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<ErrorKind>, D::Error> {
    let data = Option::<serde_json::Value>::deserialize(deserializer)?;
    Ok(data.and_then(|data| serde_json::from_value(data).ok()))
}

impl RpcError {
    /// An error with one of JSON-RPC's codes and no data.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// A request understood but not carried out: `kind`'s code, its data, and `message`.
    pub fn failed(kind: ErrorKind, message: impl fmt::Display) -> Self {
        Self {
            code: kind.code(),
            message: message.to_string(),
            data: Some(kind),
        }
    }

    /// Bad parameters.
    pub fn params(message: impl fmt::Display) -> Self {
        Self::new(INVALID_PARAMS, message.to_string())
    }

    /// The daemon failed.
    pub fn internal(message: impl fmt::Display) -> Self {
        Self::new(INTERNAL_ERROR, message.to_string())
    }

    /// Whether it is a `timeout`: the request was carried out, nobody answered in time.
    pub fn is_timeout(&self) -> bool {
        matches!(self.data, Some(ErrorKind::Timeout { .. }))
    }
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RpcError {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_error_carries_its_kind_in_data_and_its_code() {
        let error = RpcError::failed(
            ErrorKind::Timeout { timeout_ms: 2000 },
            "no answer within 2000 ms",
        );
        assert_eq!(
            serde_json::to_value(&error).expect("serializes"),
            json!({"code": 15, "message": "no answer within 2000 ms", "data": {"kind": "timeout", "timeout_ms": 2000}})
        );
        assert!(error.is_timeout());
        let standard = RpcError::params("invalid params: missing field `peer`");
        assert_eq!(
            serde_json::to_value(&standard).expect("serializes"),
            json!({"code": -32602, "message": "invalid params: missing field `peer`"})
        );
        assert!(!standard.is_timeout());
    }

    #[test]
    fn data_of_an_unknown_kind_is_dropped_not_fatal() {
        let newer: RpcError = serde_json::from_value(json!({
            "code": 77, "message": "something new", "data": {"kind": "from_the_future", "x": 1}
        }))
        .expect("still an error");
        assert_eq!(newer, RpcError::new(77, "something new"));
        let older: RpcError = serde_json::from_value(json!({"code": 1, "message": "old"})).expect("parses");
        assert_eq!(older.data, None);
    }
}
