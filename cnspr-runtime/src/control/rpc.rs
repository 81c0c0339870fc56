//! JSON-RPC 2.0 framing of the control socket, the daemon's side: one request object, or
//! one batch of them (an array), per line in ([`parse`]); one response, batch of
//! responses or notification per line out. The frames and error codes themselves are
//! [`crate::api`]'s.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::api::envelope::{Notification, Request, Response, VERSION};
use crate::api::error::{INVALID_REQUEST, PARSE_ERROR};
use crate::api::{positional, RpcError};

/// What one line holds.
#[derive(Debug)]
pub enum Incoming {
    /// One request.
    Single(Request),
    /// A batch: its items, each to be read as a request ([`request`]).
    Batch(Vec<Value>),
}

/// Parses one line.
pub fn parse(line: &[u8]) -> Result<Incoming, (Option<Value>, RpcError)> {
    let value: Value = serde_json::from_slice(line)
        .map_err(|e| (None, RpcError::new(PARSE_ERROR, format!("invalid JSON: {e}"))))?;
    match value {
        Value::Array(items) => Ok(Incoming::Batch(items)),
        value => request(value).map(Incoming::Single),
    }
}

/// Reads one request. An `id` of `null` makes a request (answered with `id: null`), no
/// `id` a notification; parameters by position become named ones ([`positional`]).
pub fn request(value: Value) -> Result<Request, (Option<Value>, RpcError)> {
    let given_id = value.get("id").cloned();
    let id = given_id
        .clone()
        .filter(|id| id.is_string() || id.is_number() || id.is_null());
    if given_id.is_some() && id.is_none() {
        let error = RpcError::new(INVALID_REQUEST, "id must be a string, a number or null");
        return Err((None, error));
    }
    let mut request: Request = serde_json::from_value(value).map_err(|e| {
        (
            id.clone(),
            RpcError::new(INVALID_REQUEST, format!("not a JSON-RPC request: {e}")),
        )
    })?;
    // Serde reads `"id": null` as no id; the specification makes it a request.
    request.id = id.clone();
    if request.jsonrpc != VERSION {
        return Err((id, RpcError::new(INVALID_REQUEST, "jsonrpc must be \"2.0\"")));
    }
    request.params = match request.params.take() {
        Some(Value::Array(items)) => {
            Some(positional::by_name(&request.method, items).map_err(|e| (id.clone(), e))?)
        }
        Some(Value::Object(named)) => Some(Value::Object(named)),
        None => None,
        Some(_) => return Err((id, RpcError::params("params must be an object or an array"))),
    };
    Ok(request)
}

/// A value as JSON, its object keys in order (the order answers have always had).
fn to_json(value: impl Serialize) -> Result<Value, RpcError> {
    serde_json::to_value(value).map_err(|e| RpcError::internal(format!("cannot write the answer: {e}")))
}

fn line(frame: impl Serialize) -> String {
    serde_json::to_string(&frame).unwrap_or_default()
}

/// The answer to request `id`.
pub fn response(id: &Value, result: Result<impl Serialize, RpcError>) -> Response<Value> {
    match result.and_then(to_json) {
        Ok(result) => Response::success(id.clone(), result),
        Err(error) => failure_response(Some(id), &error),
    }
}

/// An error answer.
pub fn failure_response(id: Option<&Value>, error: &RpcError) -> Response<Value> {
    Response::failure(id.cloned(), error.clone())
}

/// The line of an answer to request `id`.
pub fn answer(id: &Value, result: Result<impl Serialize, RpcError>) -> String {
    line(response(id, result))
}

/// The line of an error answer.
pub fn failure(id: Option<&Value>, error: &RpcError) -> String {
    line(failure_response(id, error))
}

/// The line of a batch's answers.
pub fn batch(responses: &[Response<Value>]) -> String {
    line(responses)
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
        assert!(matches!(parse(b"[]"), Ok(Incoming::Batch(items)) if items.is_empty()));
        let bad_id = request(serde_json::json!({"jsonrpc":"2.0","id":[1],"method":"status"}));
        assert_eq!(bad_id.map(|_| ()).unwrap_err().1.code, INVALID_REQUEST);
        let null_id = request(serde_json::json!({"jsonrpc":"2.0","id":null,"method":"status"}));
        assert_eq!(null_id.expect("a request").id, Some(Value::Null));
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
        let too_many = parse(br#"{"jsonrpc":"2.0","id":"a","method":"ping","params":[1,2,3]}"#);
        assert_eq!(too_many.map(|_| ()).unwrap_err().1.code, INVALID_PARAMS);
        let scalar = parse(br#"{"jsonrpc":"2.0","id":"a","method":"ping","params":1}"#);
        assert_eq!(scalar.map(|_| ()).unwrap_err().1.code, INVALID_PARAMS);
        let Ok(Incoming::Single(ok)) =
            parse(br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":["desk"]}"#)
        else {
            panic!("valid");
        };
        assert_eq!(ok.params, Some(serde_json::json!({"peer": "desk"})));
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
