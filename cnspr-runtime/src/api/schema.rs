//! The JSON Schema of the API (`docs/api.schema.json`, printed by `cnspr api-schema`), for
//! clients in other languages. A JSON Schema 2020-12 document whose `$defs` hold every
//! type; `methods` maps each method to its `params`, its `result` and, for the methods
//! that stream, its `notification` (`method` and `params`); `error` is the error object.
//! (`methods` and `error` are annotations: a validator ignores them; `$ref`s inside them
//! resolve against the document.)

use std::collections::BTreeMap;

use schemars::{generate::SchemaSettings, Schema};
use serde::Serialize;
use serde_json::{Map, Value};

use super::catalogue;
use super::error::RpcError;

/// The schema document.
#[derive(Serialize)]
struct Document {
    #[serde(rename = "$schema")]
    meta: &'static str,
    title: &'static str,
    description: &'static str,
    methods: BTreeMap<&'static str, MethodSchema>,
    error: Schema,
    #[serde(rename = "$defs")]
    definitions: Map<String, Value>,
}

/// One method's types.
#[derive(Serialize)]
struct MethodSchema {
    params: Schema,
    result: Schema,
    #[serde(skip_serializing_if = "Option::is_none")]
    notification: Option<NotificationSchema>,
}

/// The notifications a method sends.
#[derive(Serialize)]
struct NotificationSchema {
    method: &'static str,
    params: Schema,
}

/// The schema of every method, notification and error, as one JSON document.
pub fn schema() -> Value {
    let mut generator = SchemaSettings::draft2020_12().into_generator();
    let methods = catalogue()
        .into_iter()
        .map(|info| {
            let entry = MethodSchema {
                params: (info.params.schema)(&mut generator),
                result: (info.result.schema)(&mut generator),
                notification: info.notification.map(|(method, shape)| NotificationSchema {
                    method,
                    params: (shape.schema)(&mut generator),
                }),
            };
            (info.name, entry)
        })
        .collect();
    let error = generator.subschema_for::<RpcError>();
    let document = Document {
        meta: "https://json-schema.org/draft/2020-12/schema",
        title: "cnspr control socket API",
        description: "JSON-RPC 2.0 over a UNIX socket, one object per line (docs/api.md). \
                      `methods` gives each method's params, result and notifications; \
                      a failed request's `error` is `error`.",
        methods,
        error,
        definitions: generator.take_definitions(true),
    };
    serde_json::to_value(document).unwrap_or_default()
}

/// The schema as the checked-in file holds it: pretty-printed, with a final newline.
pub fn schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&schema()).unwrap_or_default();
    text.push('\n');
    text
}
