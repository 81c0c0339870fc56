//! Pairing a device with a mesh: `invite` on a device of the mesh, `join` on the new one.

use std::net::SocketAddr;

use cnspr_proto::identity::DeviceId;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::peer::DeviceIdText;

/// `invite`'s parameters.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteParams {
    /// How long the invite stays open, 1 s to a week (default `limits.invite_ttl_secs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_secs: Option<u64>,
}

/// `invite`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InviteResult {
    /// The addresses the token names.
    pub addresses: Vec<SocketAddr>,
    /// When it expires (Unix seconds).
    pub expires_unix_secs: u64,
    /// The token, one line.
    pub token: String,
}

/// `join`'s parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinParams {
    /// The token `invite` returned on the other device.
    pub token: String,
}

/// `join`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct JoinResult {
    /// The address that worked.
    pub address: SocketAddr,
    /// The inviting device.
    #[schemars(with = "DeviceIdText")]
    pub inviter: DeviceId,
}
