//! Any line on the control socket, read as the daemon reads it: framing, batches,
//! positional parameters and each method's typed parameters never panic; whatever is
//! refused gets an error answer that is one line of JSON; parameters that are accepted
//! write back to a value that is accepted the same.
#![no_main]

use cnspr_runtime::api;
use cnspr_runtime::control::rpc::{self, Incoming};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|line: &[u8]| {
    let requests = match rpc::parse(line) {
        Ok(Incoming::Single(request)) => vec![Ok(request)],
        Ok(Incoming::Batch(items)) => items.into_iter().map(rpc::request).collect(),
        Err(refused) => vec![Err(refused)],
    };
    for request in requests {
        match request {
            Ok(request) => check_params(&request.method, request.params),
            Err((id, error)) => answer_is_one_line(&rpc::failure(id.as_ref(), &error)),
        }
    }
});

fn check_params(method: &str, params: Option<Value>) {
    let Some(info) = api::find(method) else {
        return;
    };
    let params = params.unwrap_or_else(|| Value::Object(Default::default()));
    match (info.params.check)(params) {
        Ok(written) => {
            let again = (info.params.check)(written.clone()).expect("accepted params stay accepted");
            assert_eq!(again, written);
        }
        Err(e) => answer_is_one_line(&rpc::failure(None, &api::RpcError::params(e.to_string()))),
    }
}

fn answer_is_one_line(answer: &str) {
    assert!(!answer.contains('\n'), "an answer spans lines: {answer}");
    let parsed: Value = serde_json::from_str(answer).expect("an answer is JSON");
    assert!(
        parsed.get("error").is_some(),
        "a refusal carries an error: {answer}"
    );
}
