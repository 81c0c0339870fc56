//! JSON-RPC 2.0 batches: an array of requests on one line, answered by one array holding
//! the answer of each request (notifications get none), written once every call in it
//! has finished. The calls run one after another, in order. Methods that stream on the
//! connection (`monitor`, `kv.watch`, `query`) cannot be batched: each gets an error.

use serde_json::Value;

use super::{methods, rpc, Context};
use crate::api::error::INVALID_REQUEST;
use crate::api::{KvWatch, Method, Monitor, Query, RpcError};

/// Most requests in one batch.
pub const MAX_BATCH: usize = 100;

/// The line answering batch `items`; nothing if it held only notifications.
pub async fn answer(context: &Context, items: Vec<Value>) -> Option<String> {
    if items.is_empty() {
        return Some(rpc::failure(
            None,
            &RpcError::new(INVALID_REQUEST, "an empty batch"),
        ));
    }
    if items.len() > MAX_BATCH {
        let error = RpcError::new(
            INVALID_REQUEST,
            format!("a batch of {} requests; at most {MAX_BATCH}", items.len()),
        );
        return Some(rpc::failure(None, &error));
    }
    let mut responses = Vec::new();
    for item in items {
        let response = match rpc::request(item) {
            Err((id, error)) => Some(rpc::failure_response(id.as_ref(), &error)),
            Ok(request) if streams(&request.method) => request.id.as_ref().map(|id| {
                let error = RpcError::new(
                    INVALID_REQUEST,
                    format!(
                        "{} streams on the connection: send it alone, not in a batch",
                        request.method
                    ),
                );
                rpc::failure_response(Some(id), &error)
            }),
            Ok(request) => {
                let result = methods::call(context, &request.method, request.params).await;
                request.id.map(|id| rpc::response(&id, result))
            }
        };
        responses.extend(response);
    }
    (!responses.is_empty()).then(|| rpc::batch(&responses))
}

/// Whether `method` writes notifications on its connection.
fn streams(method: &str) -> bool {
    [Monitor::NAME, KvWatch::NAME, Query::NAME].contains(&method)
}
