//! docs/api.schema.json is what the API's types generate: a change to a type that does not
//! update the checked-in schema fails here.

use std::path::Path;

use cnspr_runtime::api::schema::{schema, schema_text};

#[test]
fn the_checked_in_schema_is_the_generated_one() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/api.schema.json");
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == schema_text(),
        "{} differs from the schema the API's types generate; regenerate it with\n  \
         cargo run -p cnspr-cli -- api-schema > docs/api.schema.json",
        path.display()
    );
}

#[test]
fn every_method_has_params_and_a_result_and_every_reference_resolves() {
    let document = schema();
    let methods = document["methods"].as_object().expect("methods");
    assert!(methods.len() >= 20, "{}", methods.len());
    for (name, method) in methods {
        assert!(
            method["params"].is_object() && method["result"].is_object(),
            "{name}"
        );
    }
    assert_eq!(methods["monitor"]["notification"]["method"], "monitor");
    assert_eq!(methods["query"]["notification"]["method"], "query.answer");
    let definitions = document["$defs"].as_object().expect("$defs");
    let mut references = Vec::new();
    collect_references(&document, &mut references);
    assert!(!references.is_empty());
    for reference in references {
        let name = reference.strip_prefix("#/$defs/").expect("a local definition");
        assert!(definitions.contains_key(name), "{reference} has no definition");
    }
}

fn collect_references(value: &serde_json::Value, found: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::String(reference)) = map.get("$ref") {
                found.push(reference.clone());
            }
            map.values().for_each(|v| collect_references(v, found));
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_references(v, found)),
        _ => {}
    }
}
