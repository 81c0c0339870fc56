//! JSON-RPC 2.0 framing of the control socket: one request object per line in, one
//! response (or notification) object per line out.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Invalid JSON.
pub const PARSE_ERROR: i64 = -32700;
/// Valid JSON that is not a request.
pub const INVALID_REQUEST: i64 = -32600;
/// No such method.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Missing or wrongly typed parameters.
pub const INVALID_PARAMS: i64 = -32602;
/// The daemon failed.
pub const INTERNAL_ERROR: i64 = -32603;
/// The request was understood but could not be carried out (an unknown peer, a refused
/// token, a peer that did not answer); the message says why.
pub const FAILED: i64 = 1;

/// One request.
#[derive(Debug, Clone, Deserialize)]
pub struct Request {
    /// Must be `"2.0"`.
    pub jsonrpc: String,
    /// Absent for a notification (no answer is sent).
    #[serde(default)]
    pub id: Option<Value>,
    /// The method name.
    pub method: String,
    /// Its parameters (an object), if any.
    #[serde(default)]
    pub params: Option<Value>,
}

/// An error answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RpcError {
    /// One of the codes above.
    pub code: i64,
    /// One plain sentence.
    pub message: String,
}

impl RpcError {
    /// An error with `code`.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// A request that could not be carried out.
    pub fn failed(message: impl std::fmt::Display) -> Self {
        Self::new(FAILED, message.to_string())
    }

    /// Bad parameters.
    pub fn params(message: impl std::fmt::Display) -> Self {
        Self::new(INVALID_PARAMS, message.to_string())
    }
}

/// Parses one line into a request.
pub fn parse(line: &[u8]) -> Result<Request, (Option<Value>, RpcError)> {
    let value: Value = serde_json::from_slice(line)
        .map_err(|e| (None, RpcError::new(PARSE_ERROR, format!("invalid JSON: {e}"))))?;
    let id = value
        .get("id")
        .cloned()
        .filter(|id| id.is_string() || id.is_number());
    let request: Request = serde_json::from_value(value).map_err(|e| {
        (
            id.clone(),
            RpcError::new(INVALID_REQUEST, format!("not a JSON-RPC request: {e}")),
        )
    })?;
    if request.jsonrpc != "2.0" {
        return Err((id, RpcError::new(INVALID_REQUEST, "jsonrpc must be \"2.0\"")));
    }
    if request.params.as_ref().is_some_and(|p| !p.is_object()) {
        return Err((id, RpcError::params("params must be an object")));
    }
    Ok(request)
}

/// The line of a success answer.
pub fn success(id: &Value, result: Value) -> String {
    serde_json::json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string()
}

/// The line of an error answer.
pub fn failure(id: Option<&Value>, error: &RpcError) -> String {
    serde_json::json!({"jsonrpc": "2.0", "id": id, "error": error}).to_string()
}

/// The line of a notification of a subscription.
pub fn notification(method: &str, params: Value) -> String {
    serde_json::json!({"jsonrpc": "2.0", "method": method, "params": params}).to_string()
}

/// The typed parameters of a request.
pub fn params<T: serde::de::DeserializeOwned>(params: Option<Value>) -> Result<T, RpcError> {
    let params = params.unwrap_or_else(|| Value::Object(Default::default()));
    serde_json::from_value(params).map_err(|e| RpcError::params(format!("invalid params: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_lines_get_the_right_codes() {
        assert_eq!(parse(b"{").map(|_| ()).unwrap_err().1.code, PARSE_ERROR);
        assert_eq!(parse(b"[]").map(|_| ()).unwrap_err().1.code, INVALID_REQUEST);
        let wrong_version = parse(br#"{"jsonrpc":"1.0","id":3,"method":"status"}"#)
            .map(|_| ())
            .unwrap_err();
        assert_eq!(
            wrong_version,
            (
                Some(Value::from(3)),
                RpcError::new(INVALID_REQUEST, "jsonrpc must be \"2.0\"")
            )
        );
        let array_params = parse(br#"{"jsonrpc":"2.0","id":"a","method":"ping","params":[1]}"#);
        assert_eq!(array_params.map(|_| ()).unwrap_err().1.code, INVALID_PARAMS);
        let ok = parse(br#"{"jsonrpc":"2.0","id":1,"method":"status"}"#).expect("valid");
        assert_eq!(ok.method, "status");
    }
}
