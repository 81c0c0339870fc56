//! The control socket's messaging methods: `send`, `event`, `query` (which streams its
//! answers), `handlers.list` and `handlers.test`.

use std::time::Duration;

use cnspr_proto::identity::DeviceId;
use cnspr_proto::messaging::Tag;
use data_encoding::BASE64;
use serde::Deserialize;
use serde_json::{json, Value};

use tokio::net::unix::OwnedWriteHalf;

use super::rpc::{self, RpcError};
use super::Context;
use crate::handlers::{tree, Invocation, Outcome, Topic};
use crate::peer_ref;

/// A query's default time to collect answers.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a query may collect answers.
const MAX_QUERY_TIMEOUT: Duration = Duration::from_secs(600);

/// A payload as clients give it: UTF-8 text, or any bytes in base64.
#[derive(Deserialize, Default)]
pub struct PayloadParams {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    message_b64: Option<String>,
}

impl PayloadParams {
    fn bytes(self, max: usize) -> Result<Vec<u8>, RpcError> {
        let bytes = match (self.message, self.message_b64) {
            (Some(_), Some(_)) => return Err(RpcError::params("give message or message_b64, not both")),
            (Some(text), None) => text.into_bytes(),
            (None, Some(b64)) => BASE64
                .decode(b64.as_bytes())
                .map_err(|e| RpcError::params(format!("message_b64 is not base64: {e}")))?,
            (None, None) => Vec::new(),
        };
        if bytes.len() > max {
            return Err(RpcError::failed(format!(
                "the message is {} bytes, over the limit of {max}",
                bytes.len()
            )));
        }
        Ok(bytes)
    }
}

/// A payload as it is shown to clients.
pub fn payload_json(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(text) => json!({ "message": text }),
        Err(_) => json!({ "message_b64": BASE64.encode(bytes) }),
    }
}

fn tag(text: &str) -> Result<Tag, RpcError> {
    Tag::new(text).map_err(|e| RpcError::failed(format!("invalid tag {text:?}: {e}")))
}

async fn resolve(context: &Context, peer: &str) -> Result<DeviceId, RpcError> {
    let snapshot = context.driver.snapshot().await.map_err(RpcError::failed)?;
    peer_ref::resolve(&snapshot, peer).map_err(RpcError::failed)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendParams {
    peer: String,
    tag: String,
    #[serde(flatten)]
    payload: PayloadParams,
    #[serde(default = "yes")]
    wait: bool,
}

fn yes() -> bool {
    true
}

/// `send`: a direct message; waits for delivery unless `wait` is false.
pub async fn send(context: &Context, params: SendParams) -> Result<Value, RpcError> {
    let tag = tag(&params.tag)?;
    let payload = params.payload.bytes(context.payload_bytes_max)?;
    let peer = resolve(context, &params.peer).await?;
    let (seq, delivered) = context
        .driver
        .send(peer, tag, payload, params.wait)
        .await
        .map_err(RpcError::failed)?
        .map_err(RpcError::failed)?;
    match delivered {
        None => Ok(json!({"peer": peer, "seq": seq, "delivered": false, "queued": true})),
        Some(outcome) => match outcome.await {
            Ok(true) => Ok(json!({"peer": peer, "seq": seq, "delivered": true})),
            Ok(false) => Err(RpcError::failed(
                "the message expired before the device came back",
            )),
            Err(_) => Err(RpcError::failed("the daemon stopped; the message stays queued")),
        },
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventParams {
    tag: String,
    #[serde(flatten)]
    payload: PayloadParams,
}

/// `event`: to every device, this one included.
pub async fn event(context: &Context, params: EventParams) -> Result<Value, RpcError> {
    let tag = tag(&params.tag)?;
    let payload = params.payload.bytes(context.payload_bytes_max)?;
    let seq = context
        .driver
        .publish(tag, payload)
        .await
        .map_err(RpcError::failed)?
        .map_err(RpcError::failed)?;
    Ok(json!({ "seq": seq }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryParams {
    tag: String,
    #[serde(flatten)]
    payload: PayloadParams,
    #[serde(default)]
    peers: Vec<String>,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

/// `query`: writes one `query.answer` notification per answer to `writer` as it arrives,
/// then answers with who answered, who was unreachable and who stayed silent.
pub async fn query(
    context: &Context,
    params: Option<Value>,
    writer: &mut OwnedWriteHalf,
) -> Result<Value, RpcError> {
    let params: QueryParams = rpc::params(params)?;
    let tag = tag(&params.tag)?;
    let payload = params.payload.bytes(context.payload_bytes_max)?;
    let timeout = params.timeout_ms.map_or(QUERY_TIMEOUT, Duration::from_millis);
    if timeout > MAX_QUERY_TIMEOUT {
        return Err(RpcError::params("timeout_ms is at most 600000"));
    }
    let snapshot = context.driver.snapshot().await.map_err(RpcError::failed)?;
    let targets = if params.peers.is_empty() {
        None
    } else {
        let ids = params
            .peers
            .iter()
            .map(|p| peer_ref::resolve(&snapshot, p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(RpcError::failed)?;
        Some(ids)
    };
    let asked: Vec<DeviceId> = targets
        .clone()
        .unwrap_or_else(|| snapshot.members.iter().map(|m| m.id).collect());
    let name = |id: &DeviceId| {
        snapshot
            .members
            .iter()
            .find(|m| m.id == *id)
            .and_then(|m| m.name.clone())
    };
    let ((id, unreachable), mut answers) = context
        .driver
        .query(targets, tag, payload)
        .await
        .map_err(RpcError::failed)?
        .map_err(RpcError::failed)?;
    let mut answered = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while let Ok(Some((from, answer))) = tokio::time::timeout_at(deadline, answers.recv()).await {
        answered.push(from);
        let mut params = json!({"peer": from, "name": name(&from)});
        if let (Some(fields), Value::Object(shown)) = (params.as_object_mut(), payload_json(&answer)) {
            fields.extend(shown);
        }
        if super::write_line(writer, &rpc::notification("query.answer", params))
            .await
            .is_err()
        {
            break;
        }
    }
    context.driver.query_done(id).await;
    let silent: Vec<DeviceId> = asked
        .iter()
        .filter(|d| !answered.contains(d) && !unreachable.contains(d))
        .copied()
        .collect();
    let list = |ids: &[DeviceId]| -> Vec<Value> {
        ids.iter().map(|d| json!({"peer": d, "name": name(d)})).collect()
    };
    Ok(json!({
        "answers": answered.len(),
        "unreachable": list(&unreachable),
        "no_answer": list(&silent),
    }))
}

fn family_json(handler: &tree::Handler) -> Value {
    let device = match &handler.device {
        Some(tree::DeviceFilter::Name(name)) => json!(name),
        Some(tree::DeviceFilter::IdPrefix(prefix)) => json!(format!("[{prefix}]")),
        None => Value::Null,
    };
    let (family, takes) = match &handler.family {
        tree::Family::Daemon(state) => ("daemon", state.clone()),
        tree::Family::Peer(kind) => ("peer", kind.clone()),
        tree::Family::User(tag) => ("user", Some(tag.to_string())),
    };
    json!({"handler": handler.relative, "family": family, "takes": takes, "device": device})
}

/// `handlers.list`: every handler and what it takes, and files that name no event.
pub fn list(context: &Context) -> Value {
    let (handlers, rejected) = tree::scan(context.dispatcher.dir());
    let rejected: Vec<Value> = rejected
        .iter()
        .map(|r| json!({"handler": r.relative, "reason": r.reason}))
        .collect();
    json!({
        "directory": context.dispatcher.dir(),
        "handlers": handlers.iter().map(family_json).collect::<Vec<_>>(),
        "ignored": rejected,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestParams {
    tag: String,
    #[serde(flatten)]
    payload: PayloadParams,
    #[serde(default)]
    from: Option<String>,
}

fn outcome_json(outcome: &Outcome) -> Value {
    let mut value = serde_json::to_value(outcome).unwrap_or_default();
    if let (Some(fields), Value::Object(stdout)) = (value.as_object_mut(), payload_json(&outcome.stdout)) {
        for (key, shown) in stdout {
            fields.insert(key.replace("message", "stdout"), shown);
        }
    }
    value
}

/// `handlers.test`: runs the handlers a user message would run, now, and reports them.
pub async fn test(context: &Context, params: TestParams) -> Result<Value, RpcError> {
    let tag = tag(&params.tag)?;
    let payload = params.payload.bytes(context.payload_bytes_max)?;
    let snapshot = context.driver.snapshot().await.map_err(RpcError::failed)?;
    let (origin, origin_name) = match &params.from {
        Some(peer) => {
            let id = peer_ref::resolve(&snapshot, peer).map_err(RpcError::failed)?;
            let name = snapshot
                .members
                .iter()
                .find(|m| m.id == id)
                .and_then(|m| m.name.clone());
            (id, name)
        }
        None => (snapshot.own_id, Some(snapshot.own_name.clone())),
    };
    let invocation = Invocation {
        event: "user",
        tag: tag.to_string(),
        origin,
        origin_name: origin_name.clone().unwrap_or_default(),
        own: snapshot.own_id,
        own_name: snapshot.own_name.clone(),
        peer: None,
        stdin: payload,
    };
    let topic = Topic::User {
        tag,
        origin,
        name: origin_name,
    };
    let outcomes = context.dispatcher.run_now(&topic, &invocation).await;
    Ok(json!({ "runs": outcomes.iter().map(outcome_json).collect::<Vec<_>>() }))
}
