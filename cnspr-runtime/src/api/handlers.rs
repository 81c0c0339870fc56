//! The handler directory: `handlers.list` (what takes what) and `handlers.test` (run them
//! now); how a handler run ended, as `handlers.test` and `monitor` show it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::payload::{Message, Stdout};

/// `handlers.list`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HandlerList {
    /// The handler directory.
    pub directory: String,
    /// Every handler.
    pub handlers: Vec<HandlerEntry>,
    /// Executables whose path names no event, and why.
    pub ignored: Vec<Ignored>,
}

/// Which family of events a handler takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Messages, events and queries with a tag.
    User,
    /// The daemon's own events.
    Daemon,
    /// Events about peers.
    Peer,
}

/// One handler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HandlerEntry {
    /// The `@` restriction: a device name, or `[ID-PREFIX]` (`null`: any device).
    pub device: Option<String>,
    /// Its family.
    pub family: Family,
    /// Its path relative to the handler directory.
    pub handler: String,
    /// The tag, state or kind it takes (`null`: every one of its family).
    pub takes: Option<String>,
}

/// An executable that is not a handler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Ignored {
    /// Its path relative to the handler directory.
    pub handler: String,
    /// Why it is ignored.
    pub reason: String,
}

/// `handlers.test`'s parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TestParams {
    /// The tag of the message to pretend.
    pub tag: String,
    /// Its payload (none: empty).
    #[serde(flatten)]
    pub payload: Message,
    /// Pretend it comes from this peer (default: this device).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// `handlers.test`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TestResult {
    /// One per handler run.
    pub runs: Vec<TestRun>,
}

/// How a handler run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HandlerRun {
    /// How long it ran, in milliseconds.
    pub duration_ms: u64,
    /// Why it could not be started (`null` if it was).
    pub error: Option<String>,
    /// Its exit status (`null` if it did not exit: killed, or not started).
    pub exit_code: Option<i32>,
    /// Its path relative to the handler directory.
    pub handler: String,
    /// The end of its stderr.
    pub stderr_tail: String,
    /// Whether its stdout was longer than the limit (and cut).
    pub stdout_truncated: bool,
    /// Whether it was killed at the timeout.
    pub timed_out: bool,
}

/// A run of `handlers.test`: how it ended and what it wrote on stdout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TestRun {
    /// How it ended.
    #[serde(flatten)]
    pub run: HandlerRun,
    /// Its stdout (up to the limit).
    #[serde(flatten)]
    pub stdout: Stdout,
}
