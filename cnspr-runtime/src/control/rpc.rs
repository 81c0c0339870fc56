//! JSON-RPC 2.0 framing of the control socket, the daemon's side: one request object per
//! line in ([`parse`]), one response or notification object per line out. The frames and
//! error codes themselves are [`crate::api`]'s.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::api::envelope::{Notification, Request, Response, VERSION};
use crate::api::error::{INVALID_REQUEST, PARSE_ERROR};
use crate::api::RpcError;

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
    if request.jsonrpc != VERSION {
        return Err((id, RpcError::new(INVALID_REQUEST, "jsonrpc must be \"2.0\"")));
    }
    if request.params.as_ref().is_some_and(|p| !p.is_object()) {
        return Err((id, RpcError::params("params must be an object")));
    }
    Ok(request)
}

/// A value as JSON, its object keys in order (the order answers have always had).
fn to_json(value: impl Serialize) -> Result<Value, RpcError> {
    serde_json::to_value(value).map_err(|e| RpcError::internal(format!("cannot write the answer: {e}")))
}

fn line(frame: impl Serialize) -> String {
    serde_json::to_string(&frame).unwrap_or_default()
}

/// The line of an answer to request `id`.
pub fn answer(id: &Value, result: Result<impl Serialize, RpcError>) -> String {
    match result.and_then(to_json) {
        Ok(result) => line(Response::success(id.clone(), result)),
        Err(error) => failure(Some(id), &error),
    }
}

/// The line of an error answer.
pub fn failure(id: Option<&Value>, error: &RpcError) -> String {
    line(Response::<Value>::failure(id.cloned(), error.clone()))
}

/// The line of a notification of stream `method`.
pub fn notification(method: &str, params: impl Serialize) -> String {
    match to_json(params) {
        Ok(params) => line(Notification::new(method, params)),
        Err(error) => failure(None, &error),
    }
}

/// The typed parameters of a request (absent: an empty object).
pub fn params<T: DeserializeOwned>(params: Option<Value>) -> Result<T, RpcError> {
    let params = params.unwrap_or_else(|| Value::Object(Default::default()));
    serde_json::from_value(params).map_err(|e| RpcError::params(format!("invalid params: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::error::INVALID_PARAMS;

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

    #[test]
    fn answers_are_written_as_they_always_were() {
        #[derive(Serialize)]
        struct Out {
            zeta: u8,
            alpha: u8,
        }
        assert_eq!(
            answer(&Value::from(4), Ok(Out { zeta: 1, alpha: 2 })),
            r#"{"id":4,"jsonrpc":"2.0","result":{"alpha":2,"zeta":1}}"#
        );
        assert_eq!(
            answer(&Value::from("x"), Err::<Out, _>(RpcError::params("no"))),
            r#"{"error":{"code":-32602,"message":"no"},"id":"x","jsonrpc":"2.0"}"#
        );
        assert_eq!(
            failure(None, &RpcError::new(PARSE_ERROR, "invalid JSON")),
            r#"{"error":{"code":-32700,"message":"invalid JSON"},"id":null,"jsonrpc":"2.0"}"#
        );
        assert_eq!(
            notification("monitor", Out { zeta: 0, alpha: 0 }),
            r#"{"jsonrpc":"2.0","method":"monitor","params":{"alpha":0,"zeta":0}}"#
        );
    }
}
