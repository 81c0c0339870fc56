//! The control socket's store methods: `kv.put`, `kv.get`, `kv.delete`, `kv.list`, and the
//! `kv.watch` subscription. Values are UTF-8 text in `value` or any bytes in `value_b64`.

use tokio::io::BufReader;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::broadcast::{self, error::RecvError};

use super::{failure, Context};
use crate::api::payload::StoredValue;
use crate::api::store::{
    Change, DeleteParams, Entry, GetParams, ListParams, ListResult, PutParams, Sibling, WatchParams, Written,
};
use crate::api::{ErrorKind, KvWatch, Notice, RpcError, Streams};
use crate::driver::KvEntry;
use crate::peer_ref;

/// A key as clients see it; with `all`, every sibling with its writer's name.
async fn entry(context: &Context, entry: &KvEntry, all: bool) -> Entry {
    let values = if all {
        let names = context.driver.snapshot().await.ok();
        let siblings = entry
            .siblings
            .iter()
            .map(|(device, micros, value)| Sibling {
                deleted: value.is_none(),
                device: *device,
                name: names.as_ref().and_then(|s| peer_ref::name(s, device)),
                value: value.clone().map(StoredValue::new).unwrap_or_default(),
                written_unix_micros: *micros,
            })
            .collect();
        Some(siblings)
    } else {
        None
    };
    Entry {
        conflict: entry.conflict,
        deleted: entry.value.is_none(),
        key: entry.key.clone(),
        value: entry.value.clone().map(StoredValue::new).unwrap_or_default(),
        values,
    }
}

/// `kv.put`: answers once the write is durable on this device.
pub async fn put(context: &Context, params: PutParams) -> Result<Written, RpcError> {
    let exactly_one = || RpcError::params("give exactly one of value and value_b64");
    let value = match params.value.bytes() {
        Ok(Some(value)) => value,
        Ok(None) | Err(crate::api::payload::PayloadError::Both(..)) => return Err(exactly_one()),
        Err(error) => return Err(RpcError::params(error)),
    };
    write(context, params.key, Some(value)).await
}

async fn write(context: &Context, key: String, value: Option<Vec<u8>>) -> Result<Written, RpcError> {
    let seq = context
        .driver
        .kv_write(key.clone(), value)
        .await?
        .map_err(|e| failure::store(&key, e))?;
    Ok(Written { key, seq })
}

/// `kv.get`: the winner, whether there is a conflict, and with `all` every value.
pub async fn get(context: &Context, params: GetParams) -> Result<Entry, RpcError> {
    match context.driver.kv_read(params.key.clone()).await? {
        Some(found) if found.value.is_some() || params.all => Ok(entry(context, &found, params.all).await),
        _ => {
            let message = format!("no key {:?}", params.key);
            Err(RpcError::failed(ErrorKind::NoKey { key: params.key }, message))
        }
    }
}

/// `kv.delete`: a delete is a write; it answers once durable.
pub async fn delete(context: &Context, params: DeleteParams) -> Result<Written, RpcError> {
    write(context, params.key, None).await
}

/// `kv.list`: keys under a prefix with their winning values.
pub async fn list(context: &Context, params: ListParams) -> Result<ListResult, RpcError> {
    let entries = context.driver.kv_list(params.prefix).await?;
    let mut keys = Vec::new();
    for found in &entries {
        keys.push(entry(context, found, false).await);
    }
    Ok(ListResult { keys })
}

/// The change numbered `cursor`: `key`'s state now (`None`: the daemon is stopping).
async fn change(context: &Context, cursor: u64, key: &str) -> Option<Change> {
    let found = context.driver.kv_read(key.to_owned()).await.ok()?;
    let entry = match found {
        Some(found) => entry(context, &found, false).await,
        None => Entry {
            conflict: false,
            deleted: true,
            key: key.to_owned(),
            value: StoredValue::default(),
            values: None,
        },
    };
    Some(Change { cursor, entry })
}

/// Sends one change; `false` once the client is gone.
async fn send_change(context: &Context, writer: &mut OwnedWriteHalf, cursor: u64, key: &str) -> bool {
    let Some(change) = change(context, cursor, key).await else {
        return false;
    };
    let line = super::rpc::notification(KvWatch::NOTIFICATION, change);
    super::write_line(writer, &line).await.is_ok()
}

/// Sends every logged change after `*last` under the prefix, advancing `*last`.
async fn send_logged(context: &Context, writer: &mut OwnedWriteHalf, prefix: &str, last: &mut u64) -> bool {
    let logged = context
        .durability
        .disk()
        .and_then(|disk| disk.changes_after(*last).ok())
        .unwrap_or_default();
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
    mut reader: BufReader<OwnedReadHalf>,
    mut writer: OwnedWriteHalf,
    mut notices: broadcast::Receiver<Notice>,
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
            Ok(Notice::StoreChanged { key, cursor }) => (cursor, key),
            Ok(_) => continue,
            // Fell behind: catch up from the log, which has every key's latest change.
            Err(RecvError::Lagged(_)) => {
                if !send_logged(context, &mut writer, &params.prefix, &mut last).await {
                    return;
                }
                continue;
            }
            Err(RecvError::Closed) => return,
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
