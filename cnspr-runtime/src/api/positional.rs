//! Parameters by position: for the methods whose parameters have an obvious order, an
//! array is taken as the named parameters in that order (`["laptop", "note", "hi"]` for
//! `send` is `{"peer": "laptop", "tag": "note", "message": "hi"}`). A `null` element is an
//! absent parameter; more elements than names is an error. The table is in
//! `docs/api.md`.

use serde_json::{Map, Value};

use super::error::RpcError;

/// Each method's parameter names in their positional order.
pub const POSITIONS: &[(&str, &[&str])] = &[
    ("ping", &["peer", "timeout_ms"]),
    ("invite", &["ttl_secs"]),
    ("join", &["token"]),
    ("remove", &["peer"]),
    ("send", &["peer", "tag", "message", "wait"]),
    ("event", &["tag", "message"]),
    ("query", &["tag", "message", "peers", "timeout_ms"]),
    ("handlers.test", &["tag", "message", "from"]),
    ("kv.put", &["key", "value"]),
    ("kv.get", &["key", "all"]),
    ("kv.delete", &["key"]),
    ("kv.list", &["prefix"]),
    ("kv.watch", &["prefix", "cursor"]),
];

/// The named parameters of `method` given by position.
pub fn by_name(method: &str, positional: Vec<Value>) -> Result<Value, RpcError> {
    let names = POSITIONS
        .iter()
        .find(|(name, _)| *name == method)
        .map(|(_, names)| *names)
        .unwrap_or_default();
    if positional.len() > names.len() {
        return Err(RpcError::params(format!(
            "{method} takes at most {} parameters by position ({}); pass an object for others",
            names.len(),
            names.join(", ")
        )));
    }
    let named: Map<String, Value> = names
        .iter()
        .zip(positional)
        .filter(|(_, value)| !value.is_null())
        .map(|(name, value)| ((*name).to_owned(), value))
        .collect();
    Ok(Value::Object(named))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn positions_become_names_and_too_many_are_refused() {
        assert_eq!(
            by_name("send", vec![json!("laptop"), json!("note"), json!("hi")]),
            Ok(json!({"peer": "laptop", "tag": "note", "message": "hi"}))
        );
        assert_eq!(
            by_name("kv.get", vec![json!("a"), Value::Null]),
            Ok(json!({"key": "a"}))
        );
        assert_eq!(by_name("status", vec![]), Ok(json!({})));
        assert!(by_name("status", vec![json!(1)]).is_err());
        assert!(by_name("kv.delete", vec![json!("a"), json!("b")]).is_err());
    }
}
