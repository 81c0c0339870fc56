//! The replicated store: `kv.put`, `kv.get`, `kv.delete`, `kv.list`, and `kv.watch`, whose
//! changes stream as `kv.watch` notifications.

use cnspr_proto::identity::DeviceId;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::payload::StoredValue;
use super::peer::DeviceIdText;

/// `kv.put`'s parameters: the key and exactly one of `value` and `value_b64`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PutParams {
    /// The key: 1 to 1024 bytes of UTF-8, not under `_roster/` or `_addr/`.
    pub key: String,
    /// The value, up to 1 MiB.
    #[serde(flatten)]
    pub value: StoredValue,
}

/// The answer to a write (`kv.put`, `kv.delete`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Written {
    /// The key.
    pub key: String,
    /// This device's write number.
    pub seq: u64,
}

/// `kv.get`'s parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetParams {
    /// The key.
    pub key: String,
    /// Every concurrent value too (and a deleted key is no error).
    #[serde(default)]
    pub all: bool,
}

/// `kv.delete`'s parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteParams {
    /// The key.
    pub key: String,
}

/// `kv.list`'s parameters.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only keys that start with it (default: every key).
    #[serde(default)]
    pub prefix: String,
}

/// `kv.watch`'s parameters.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WatchParams {
    /// Only keys that start with it (default: every key).
    #[serde(default)]
    pub prefix: String,
    /// Start after this change (default 0: every key's latest change first).
    #[serde(default)]
    pub cursor: u64,
}

/// One key as read: the winner, and with `all` every sibling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Entry {
    /// Whether concurrent writes are kept (`kv.get` with `all` shows them).
    pub conflict: bool,
    /// Whether the winner is a delete.
    pub deleted: bool,
    /// The key.
    pub key: String,
    /// The winner's value (neither field when deleted).
    #[serde(flatten)]
    pub value: StoredValue,
    /// Every concurrent value (only with `all`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<Sibling>>,
}

/// One of a key's concurrent values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Sibling {
    /// Whether it is a delete.
    pub deleted: bool,
    /// The device that wrote it.
    #[schemars(with = "DeviceIdText")]
    pub device: DeviceId,
    /// That device's name, once known.
    pub name: Option<String>,
    /// The value (neither field for a delete).
    #[serde(flatten)]
    pub value: StoredValue,
    /// When it was written (Unix microseconds, the writer's clock).
    pub written_unix_micros: u64,
}

/// `kv.list`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ListResult {
    /// The keys, in key order, deleted ones left out.
    pub keys: Vec<Entry>,
}

/// One change under a watched prefix (a `kv.watch` notification's `params`): the key's
/// state now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Change {
    /// The change's number; resuming from it misses nothing and repeats nothing.
    pub cursor: u64,
    /// The key as it is now.
    #[serde(flatten)]
    pub entry: Entry,
}
