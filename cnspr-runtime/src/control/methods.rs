//! The control socket's methods (docs/api.md lists them with examples). Each takes its
//! parameters as a JSON object and answers a JSON value or an [`RpcError`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use cnspr_proto::invite::InviteToken;
use cnspr_proto::transport::InviteSecret;
use serde::Deserialize;
use serde_json::{json, Value};

use super::rpc::{self, RpcError, METHOD_NOT_FOUND};
use super::Context;
use crate::clock::unix_now;
use crate::driver::{os_random, MemberView, Snapshot};
use crate::peer_ref;

/// Longest a ping waits by default.
const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest invite lifetime accepted: a week.
const MAX_INVITE_TTL_SECS: u64 = 7 * 24 * 3600;

/// Runs one method.
pub async fn call(context: &Context, method: &str, params: Option<Value>) -> Result<Value, RpcError> {
    match method {
        "id" => id(context).await,
        "status" => status(context).await,
        "members" => members(context).await,
        "ping" => ping(context, rpc::params(params)?).await,
        "invite" => invite(context, rpc::params(params)?).await,
        "join" => join(context, rpc::params(params)?).await,
        "remove" => remove(context, rpc::params(params)?).await,
        "interfaces" => Ok(interfaces(context)),
        "send" => super::messaging::send(context, rpc::params(params)?).await,
        "event" => super::messaging::event(context, rpc::params(params)?).await,
        "handlers.list" => Ok(super::messaging::list(context)),
        "kv.put" => super::store::put(context, rpc::params(params)?).await,
        "kv.get" => super::store::get(context, rpc::params(params)?).await,
        "kv.delete" => super::store::delete(context, rpc::params(params)?).await,
        "kv.list" => super::store::list(context, rpc::params(params)?).await,
        "handlers.test" => super::messaging::test(context, rpc::params(params)?).await,
        "stop" => {
            context.request_stop();
            Ok(json!({"stopping": true}))
        }
        _ => Err(RpcError::new(METHOD_NOT_FOUND, format!("no method {method:?}"))),
    }
}

async fn snapshot(context: &Context) -> Result<Snapshot, RpcError> {
    context.driver.snapshot().await.map_err(RpcError::failed)
}

async fn id(context: &Context) -> Result<Value, RpcError> {
    let snapshot = snapshot(context).await?;
    Ok(json!({"id": snapshot.own_id, "name": snapshot.own_name}))
}

async fn status(context: &Context) -> Result<Value, RpcError> {
    let snapshot = snapshot(context).await?;
    let mut states: BTreeMap<&str, usize> = BTreeMap::new();
    for member in &snapshot.members {
        *states.entry(member.state.as_str()).or_default() += 1;
    }
    Ok(json!({
        "id": snapshot.own_id,
        "name": snapshot.own_name,
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_secs": context.started.elapsed().as_secs(),
        "boot": context.boot,
        "devices": snapshot.members.len() + 1,
        "peers": states,
        "removed": snapshot.removed.len(),
        "datagrams": {
            "sent": snapshot.stats.datagrams_sent,
            "received": snapshot.stats.datagrams_received,
            "rejected": snapshot.stats.datagrams_rejected,
            "bytes_sent": snapshot.stats.bytes_sent,
        },
    }))
}

fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1e6).round() / 1e3
}

fn member_json(member: &MemberView) -> Value {
    json!({
        "id": member.id,
        "short_id": member.id.short().to_string(),
        "name": member.name,
        "state": member.state.as_str(),
        "address": member.address,
        "rtt_ms": member.rtt.map(millis),
        "last_seen_secs": member.last_seen.map(|d| d.as_secs()),
        "self": false,
    })
}

async fn members(context: &Context) -> Result<Value, RpcError> {
    let snapshot = snapshot(context).await?;
    let own = json!({
        "id": snapshot.own_id,
        "short_id": snapshot.own_id.short().to_string(),
        "name": snapshot.own_name,
        "state": "active",
        "address": context.driver.sockets().reachable().first(),
        "rtt_ms": null,
        "last_seen_secs": 0,
        "self": true,
    });
    let mut members: Vec<Value> = vec![own];
    members.extend(snapshot.members.iter().map(member_json));
    Ok(json!({ "members": members }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PingParams {
    peer: String,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

async fn ping(context: &Context, params: PingParams) -> Result<Value, RpcError> {
    let snapshot = snapshot(context).await?;
    let peer = peer_ref::resolve(&snapshot, &params.peer).map_err(RpcError::failed)?;
    let timeout = params.timeout_ms.map_or(PING_TIMEOUT, Duration::from_millis);
    let rtt = context
        .driver
        .ping(peer, timeout)
        .await
        .map_err(RpcError::failed)?;
    Ok(json!({"peer": peer, "rtt_ms": millis(rtt)}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InviteParams {
    #[serde(default)]
    ttl_secs: Option<u64>,
}

async fn invite(context: &Context, params: InviteParams) -> Result<Value, RpcError> {
    let ttl_secs = params.ttl_secs.unwrap_or(context.invite_ttl_secs);
    if ttl_secs == 0 || ttl_secs > MAX_INVITE_TTL_SECS {
        return Err(RpcError::params(format!(
            "ttl_secs must be between 1 and {MAX_INVITE_TTL_SECS}"
        )));
    }
    let snapshot = snapshot(context).await?;
    let secret = InviteSecret {
        token_id: os_random().map_err(RpcError::failed)?,
        psk: os_random().map_err(RpcError::failed)?,
    };
    let addresses = context.driver.sockets().reachable();
    let token = InviteToken {
        inviter: snapshot.own_id,
        addresses: addresses.clone(),
        token_id: secret.token_id,
        secret: secret.psk,
        expires_unix_secs: unix_now() + ttl_secs,
    };
    context
        .driver
        .invite(secret, Duration::from_secs(ttl_secs))
        .await
        .map_err(RpcError::failed)?;
    tracing::info!(ttl_secs, "invite opened");
    Ok(json!({
        "token": token.encode(),
        "expires_unix_secs": token.expires_unix_secs,
        "addresses": token.addresses,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinParams {
    token: String,
}

async fn join(context: &Context, params: JoinParams) -> Result<Value, RpcError> {
    let token = InviteToken::decode(&params.token).map_err(RpcError::failed)?;
    let snapshot = snapshot(context).await?;
    if token.inviter == snapshot.own_id {
        return Err(RpcError::failed("that invite was made by this device"));
    }
    if token.expires_unix_secs <= unix_now() {
        return Err(RpcError::failed("the invite has expired; ask for a new one"));
    }
    // Only addresses this device can send to: an IPv6-only device skips IPv4 ones.
    let sockets = context.driver.sockets();
    let usable: Vec<SocketAddr> = token
        .addresses
        .iter()
        .copied()
        .filter(|a| sockets.for_destination(a).is_some())
        .collect();
    if usable.is_empty() {
        return Err(RpcError::failed(
            "the invite names no address this device can reach (check the IP versions it listens on)",
        ));
    }
    for address in &usable {
        let secret = InviteSecret {
            token_id: token.token_id,
            psk: token.secret,
        };
        let joined = context
            .driver
            .join(token.inviter, *address, secret)
            .await
            .map_err(RpcError::failed)?;
        if joined {
            tracing::info!(inviter = %token.inviter, %address, "joined a mesh");
            return Ok(json!({"inviter": token.inviter, "address": address}));
        }
    }
    Err(RpcError::failed(
        "pairing failed: the inviting device did not answer, or refused the invite (wrong, expired or already used)",
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoveParams {
    peer: String,
}

async fn remove(context: &Context, params: RemoveParams) -> Result<Value, RpcError> {
    let snapshot = snapshot(context).await?;
    let peer = peer_ref::resolve(&snapshot, &params.peer).map_err(RpcError::failed)?;
    let name = snapshot
        .members
        .iter()
        .find(|m| m.id == peer)
        .and_then(|m| m.name.clone());
    context
        .driver
        .remove(peer)
        .await
        .map_err(RpcError::failed)?
        .map_err(RpcError::failed)?;
    tracing::info!(%peer, "device removed from the mesh");
    Ok(json!({"removed": peer, "name": name}))
}

fn interfaces(context: &Context) -> Value {
    let sockets = context.driver.sockets();
    json!({"listening": sockets.bound(), "addresses": sockets.reachable()})
}
