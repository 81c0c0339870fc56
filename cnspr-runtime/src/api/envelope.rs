//! The JSON-RPC 2.0 frames, one per line: a [`Request`] in, a [`Response`] or a
//! [`Notification`] out. Fields are declared in alphabetical order, the order the daemon
//! has always written them in.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::RpcError;

/// The protocol version every frame carries.
pub const VERSION: &str = "2.0";

/// A request; without `id` it is a notification to the daemon, carried out unanswered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request<P = Value> {
    /// A number or a string, repeated in the answer; absent for a notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Value>,
    /// Must be `"2.0"`.
    pub jsonrpc: String,
    /// The method's name.
    pub method: String,
    /// Its parameters (an object), if it takes any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<P>,
}

impl<P> Request<P> {
    /// A request numbered `id`.
    pub fn new(id: u64, method: &str, params: P) -> Self {
        Self {
            id: Some(Value::from(id)),
            jsonrpc: VERSION.to_owned(),
            method: method.to_owned(),
            params: Some(params),
        }
    }
}

/// The answer to a request: `result` or `error`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response<R = Value> {
    /// Why the request failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RpcError>,
    /// The request's `id` (`null` when it could not be read).
    pub id: Option<Value>,
    /// `"2.0"`.
    pub jsonrpc: String,
    /// What the method answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<R>,
}

impl<R> Response<R> {
    /// A success.
    pub fn success(id: Value, result: R) -> Self {
        Self {
            error: None,
            id: Some(id),
            jsonrpc: VERSION.to_owned(),
            result: Some(result),
        }
    }

    /// A failure.
    pub fn failure(id: Option<Value>, error: RpcError) -> Self {
        Self {
            error: Some(error),
            id,
            jsonrpc: VERSION.to_owned(),
            result: None,
        }
    }
}

/// A notification from the daemon: one item of a stream (a `monitor` notice, a
/// `kv.watch` change, a `query.answer`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification<P = Value> {
    /// `"2.0"`.
    pub jsonrpc: String,
    /// Which stream.
    pub method: String,
    /// The item.
    pub params: P,
}

impl<P> Notification<P> {
    /// An item of stream `method`.
    pub fn new(method: &str, params: P) -> Self {
        Self {
            jsonrpc: VERSION.to_owned(),
            method: method.to_owned(),
            params,
        }
    }
}
