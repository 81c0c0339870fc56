//! The control socket's store methods: `kv.put`, `kv.get`, `kv.delete`, `kv.list`.
//! Values are UTF-8 text in `value` or any bytes in `value_b64`.

use data_encoding::BASE64;
use serde::Deserialize;
use serde_json::{json, Value};

use super::rpc::RpcError;
use super::Context;
use crate::driver::KvEntry;

fn value_json(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(text) => json!({ "value": text }),
        Err(_) => json!({ "value_b64": BASE64.encode(bytes) }),
    }
}

fn with(mut base: Value, extra: Value) -> Value {
    if let (Some(fields), Value::Object(more)) = (base.as_object_mut(), extra) {
        fields.extend(more);
    }
    base
}

async fn entry_json(context: &Context, entry: &KvEntry, all: bool) -> Value {
    let mut shown = json!({"key": entry.key, "conflict": entry.conflict, "deleted": entry.value.is_none()});
    if let Some(value) = &entry.value {
        shown = with(shown, value_json(value));
    }
    if all {
        let names = context.driver.snapshot().await.ok();
        let name_of = |id| {
            names.as_ref().and_then(|s| {
                if s.own_id == id {
                    Some(s.own_name.clone())
                } else {
                    s.members.iter().find(|m| m.id == id).and_then(|m| m.name.clone())
                }
            })
        };
        let values: Vec<Value> = entry
            .siblings
            .iter()
            .map(|(device, micros, value)| {
                let base = json!({"device": device, "name": name_of(*device), "written_unix_micros": micros, "deleted": value.is_none()});
                value.as_deref().map_or(base.clone(), |v| with(base, value_json(v)))
            })
            .collect();
        shown = with(shown, json!({ "values": values }));
    }
    shown
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutParams {
    key: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    value_b64: Option<String>,
}

/// `kv.put`: answers once the write is durable on this device.
pub async fn put(context: &Context, params: PutParams) -> Result<Value, RpcError> {
    let value = match (params.value, params.value_b64) {
        (Some(text), None) => text.into_bytes(),
        (None, Some(b64)) => BASE64
            .decode(b64.as_bytes())
            .map_err(|e| RpcError::params(format!("value_b64 is not base64: {e}")))?,
        _ => return Err(RpcError::params("give exactly one of value and value_b64")),
    };
    write(context, params.key, Some(value)).await
}

async fn write(context: &Context, key: String, value: Option<Vec<u8>>) -> Result<Value, RpcError> {
    let seq = context
        .driver
        .kv_write(key.clone(), value)
        .await
        .map_err(RpcError::failed)?
        .map_err(RpcError::failed)?;
    Ok(json!({"key": key, "seq": seq}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyParams {
    key: String,
    #[serde(default)]
    all: bool,
}

/// `kv.get`: the winner, whether there is a conflict, and with `all` every value.
pub async fn get(context: &Context, params: KeyParams) -> Result<Value, RpcError> {
    let entry = context
        .driver
        .kv_read(params.key.clone())
        .await
        .map_err(RpcError::failed)?;
    match entry {
        Some(entry) if entry.value.is_some() || params.all => {
            Ok(entry_json(context, &entry, params.all).await)
        }
        _ => Err(RpcError::failed(format!("no key {:?}", params.key))),
    }
}

/// `kv.delete`: a delete is a write; it answers once durable.
pub async fn delete(context: &Context, params: KeyParams) -> Result<Value, RpcError> {
    write(context, params.key, None).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    #[serde(default)]
    prefix: String,
}

/// `kv.list`: keys under a prefix with their winning values.
pub async fn list(context: &Context, params: ListParams) -> Result<Value, RpcError> {
    let entries = context
        .driver
        .kv_list(params.prefix)
        .await
        .map_err(RpcError::failed)?;
    let mut keys = Vec::new();
    for entry in &entries {
        keys.push(entry_json(context, entry, false).await);
    }
    Ok(json!({ "keys": keys }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchParams {
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    cursor: u64,
}

/// Checks `kv.watch` parameters before the subscription starts.
pub fn watch_start(_context: &Context, params: Option<Value>) -> Result<WatchParams, RpcError> {
    super::rpc::params(params)
}

async fn change_json(context: &Context, cursor: u64, key: &str) -> Option<Value> {
    let entry = context.driver.kv_read(key.to_owned()).await.ok()?;
    let shown = match entry {
        Some(entry) => entry_json(context, &entry, false).await,
        None => json!({"key": key, "deleted": true, "conflict": false}),
    };
    Some(with(json!({ "cursor": cursor }), shown))
}

/// Sends one change; `false` once the client is gone.
async fn send_change(
    context: &Context,
    writer: &mut tokio::net::unix::OwnedWriteHalf,
    cursor: u64,
    key: &str,
) -> bool {
    let Some(change) = change_json(context, cursor, key).await else {
        return false;
    };
    let line = super::rpc::notification("kv.watch", change);
    super::write_line(writer, &line).await.is_ok()
}

/// Sends every logged change after `*last` under the prefix, advancing `*last`.
async fn send_logged(
    context: &Context,
    writer: &mut tokio::net::unix::OwnedWriteHalf,
    prefix: &str,
    last: &mut u64,
) -> bool {
    let logged = context.disk.changes_after(*last).unwrap_or_default();
    for (cursor, key) in logged.into_iter().filter(|(_, k)| k.starts_with(prefix)) {
        if !send_change(context, writer, cursor, &key).await {
            return false;
        }
        *last = (*last).max(cursor);
    }
    true
}

/// `kv.watch`: every key under the prefix changed after `cursor` (its current state, in
/// change order), then every change as it happens, each with its cursor, until the client
/// hangs up. A client that resumes from the last cursor it saw misses nothing and sees
/// nothing twice.
pub async fn watch(
    context: &Context,
    params: WatchParams,
    mut reader: tokio::io::BufReader<tokio::net::unix::OwnedReadHalf>,
    mut writer: tokio::net::unix::OwnedWriteHalf,
    mut notices: tokio::sync::broadcast::Receiver<crate::driver::Notice>,
) {
    let mut last = params.cursor;
    if !send_logged(context, &mut writer, &params.prefix, &mut last).await {
        return;
    }
    loop {
        let notice = tokio::select! {
            () = super::hung_up(&mut reader) => return,
            notice = notices.recv() => notice,
        };
        let (cursor, key) = match notice {
            Ok(crate::driver::Notice::StoreChanged { key, cursor }) => (cursor, key),
            Ok(_) => continue,
            // Fell behind: catch up from the log, which has every key's latest change.
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                if !send_logged(context, &mut writer, &params.prefix, &mut last).await {
                    return;
                }
                continue;
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        };
        if cursor <= last || !key.starts_with(&params.prefix) {
            continue;
        }
        if !send_change(context, &mut writer, cursor, &key).await {
            return;
        }
        last = cursor;
    }
}
