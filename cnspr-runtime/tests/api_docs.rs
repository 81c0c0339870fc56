//! Every example in docs/api.md is what the API's types say: each request line names a
//! known method and its params deserialize into that method's parameter type (or fail,
//! where the example's answer is an "invalid params" error); each answer, and each
//! notification, deserializes into its type and serializes back to exactly the example;
//! each error's code is its kind's. The error table lists every kind with its code and a
//! valid `data`.

use std::collections::BTreeSet;
use std::path::Path;

use cnspr_runtime::api::error::{INVALID_PARAMS, METHOD_NOT_FOUND, PARSE_ERROR};
use cnspr_runtime::api::method::MethodInfo;
use cnspr_runtime::api::{catalogue, find, ErrorKind, RpcError};
use serde_json::Value;

fn api_md() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/api.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The contents of every ```json block.
fn json_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```json") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(current.is_none(), "a ```json block is not closed");
    blocks
}

/// One item of an example: a JSON value (which may span lines), or a line that is not
/// JSON (an example of what the daemon answers to that).
#[derive(Debug)]
enum Item {
    Json(Value),
    NotJson(String),
}

fn items(block: &str) -> Vec<Item> {
    let lines: Vec<&str> = block.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut items = Vec::new();
    let mut start = 0;
    while start < lines.len() {
        let joined = (start + 1..=lines.len()).find_map(|end| {
            serde_json::from_str::<Value>(&lines[start..end].join("\n"))
                .ok()
                .map(|value| (value, end))
        });
        match joined {
            Some((value, end)) => {
                items.push(Item::Json(value));
                start = end;
            }
            None => {
                items.push(Item::NotJson(lines[start].to_owned()));
                start += 1;
            }
        }
    }
    items
}

/// The request an answer or notification belongs to.
struct Pending {
    method: Option<MethodInfo>,
    name: String,
    id: Value,
    params: Value,
}

/// Checks `value` against `check` and that it comes back unchanged.
fn round_trips(what: &str, check: fn(Value) -> Result<Value, serde_json::Error>, value: &Value) {
    match check(value.clone()) {
        Ok(back) => assert_eq!(&back, value, "{what}: the types do not give back the example"),
        Err(error) => panic!("{what}: {error}\n{value}"),
    }
}

fn check_error(what: &str, error: &Value) -> RpcError {
    let typed: RpcError = serde_json::from_value(error.clone()).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(
        &serde_json::to_value(&typed).expect("serializes"),
        error,
        "{what}"
    );
    if typed.code > 0 {
        let data = error
            .get("data")
            .unwrap_or_else(|| panic!("{what}: code {} without data", typed.code));
        let kind: ErrorKind = serde_json::from_value(data.clone()).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(kind.code(), typed.code, "{what}: the code is not its kind's");
    } else {
        assert!(
            error.get("data").is_none(),
            "{what}: JSON-RPC's own codes carry no data"
        );
    }
    typed
}

/// Checks the request `pending` against the answer `response`.
fn check_answer(pending: &Pending, response: &Value) {
    let what = format!("the answer to {} (id {})", pending.name, pending.id);
    assert_eq!(response["jsonrpc"], "2.0", "{what}");
    assert_eq!(response["id"], pending.id, "{what}: not the request's id");
    let error = response.get("error").map(|e| check_error(&what, e));
    let Some(method) = pending.method else {
        assert_eq!(
            error.map(|e| e.code),
            Some(METHOD_NOT_FOUND),
            "{what}: unknown method"
        );
        return;
    };
    let params = (method.params.check)(pending.params.clone());
    match &error {
        Some(error) if error.code == INVALID_PARAMS => {
            assert!(
                params.is_err(),
                "{what}: the params are valid, yet the answer says they are not"
            )
        }
        _ => {
            if let Err(e) = params {
                panic!("{what}: the request's params do not fit: {e}\n{}", pending.params)
            }
        }
    }
    if error.is_none() {
        let result = response
            .get("result")
            .unwrap_or_else(|| panic!("{what}: no result, no error"));
        round_trips(&what, method.result.check, result);
    }
}

fn check_notification(pending: Option<&Pending>, notification: &Value) {
    let pending = pending.unwrap_or_else(|| panic!("a notification before any request: {notification}"));
    let what = format!("a notification of {}", pending.name);
    let (method, shape) = pending
        .method
        .and_then(|m| m.notification)
        .unwrap_or_else(|| panic!("{what}: that method sends none"));
    assert_eq!(notification["method"], method, "{what}");
    assert_eq!(notification["jsonrpc"], "2.0", "{what}");
    round_trips(&what, shape.check, &notification["params"]);
}

#[test]
fn every_example_fits_the_types() {
    let mut requested = BTreeSet::new();
    let mut answers = 0;
    for block in json_blocks(&api_md()) {
        let mut pending: Option<Pending> = None;
        for item in items(&block) {
            let value = match item {
                Item::NotJson(line) => {
                    pending = Some(Pending {
                        method: None,
                        name: format!("the line {line:?}"),
                        id: Value::Null,
                        params: Value::Null,
                    });
                    continue;
                }
                Item::Json(value) => value,
            };
            if let Some(name) = value.get("method").and_then(Value::as_str) {
                if value.get("id").is_none() {
                    check_notification(pending.as_ref(), &value);
                    continue;
                }
                assert_eq!(value["jsonrpc"], "2.0", "{value}");
                requested.insert(name.to_owned());
                pending = Some(Pending {
                    method: find(name),
                    name: name.to_owned(),
                    id: value["id"].clone(),
                    params: value
                        .get("params")
                        .cloned()
                        .unwrap_or_else(|| Value::Object(Default::default())),
                });
                continue;
            }
            let request = pending
                .as_ref()
                .unwrap_or_else(|| panic!("an answer before any request: {value}"));
            if request.method.is_none() && request.id.is_null() {
                let error = check_error("the answer to a line that is not JSON", &value["error"]);
                assert_eq!(error.code, PARSE_ERROR);
                assert_eq!(value["id"], Value::Null);
            } else {
                check_answer(request, &value);
            }
            answers += 1;
        }
    }
    assert!(
        answers > 20,
        "only {answers} answers found: is docs/api.md's format what this test reads?"
    );
    for method in catalogue() {
        assert!(
            requested.contains(method.name),
            "docs/api.md has no example of {}",
            method.name
        );
    }
}

/// The rows of the table that follows the line `heading`.
fn table_after(markdown: &str, heading: &str) -> Vec<Vec<String>> {
    markdown
        .lines()
        .skip_while(|l| l.trim() != heading)
        .skip(1)
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|row| {
            row.trim_matches('|')
                .split('|')
                .map(|cell| cell.trim().trim_matches('`').to_owned())
                .collect()
        })
        .collect()
}

#[test]
fn the_error_table_lists_every_kind_with_its_code() {
    let rows = table_after(&api_md(), "## Errors");
    assert!(!rows.is_empty(), "no table under ## Errors");
    let mut documented = BTreeSet::new();
    for row in &rows {
        let [code, kind, data, _meaning] = row.as_slice() else {
            panic!("a row of four cells: {row:?}");
        };
        let code: i64 = code.parse().unwrap_or_else(|_| panic!("not a code: {code:?}"));
        if code < 0 {
            assert!(kind.is_empty() && data.is_empty(), "{row:?}");
            continue;
        }
        let typed: ErrorKind = serde_json::from_str(data).unwrap_or_else(|e| panic!("{row:?}: {e}"));
        assert_eq!(typed.code(), code, "{row:?}");
        let value = serde_json::to_value(&typed).expect("serializes");
        assert_eq!(value["kind"], kind.as_str(), "{row:?}");
        documented.insert(kind.clone());
    }
    let schema = cnspr_runtime::api::schema::schema();
    let variants = schema["$defs"]["ErrorKind"]["oneOf"]
        .as_array()
        .expect("ErrorKind is a oneOf");
    let mut generated = BTreeSet::new();
    for variant in variants {
        let kind = variant["properties"]["kind"]["const"].as_str().expect("a kind");
        // Each kind's description names its code: it must be the one the table gives.
        let row = rows
            .iter()
            .find(|r| r[1] == kind)
            .unwrap_or_else(|| panic!("{kind} is not in the table"));
        let description = variant["description"].as_str().unwrap_or_default();
        assert!(
            description.starts_with(&format!("Code {}:", row[0])),
            "{kind}: {description}"
        );
        generated.insert(kind.to_owned());
    }
    assert_eq!(
        documented, generated,
        "the table and the types list different kinds"
    );
}
