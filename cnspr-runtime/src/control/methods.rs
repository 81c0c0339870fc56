//! The control socket's methods (docs/api.md lists them with examples). Each takes its
//! parameters as its [`Method::Params`] and answers its [`Method::Result`] or an
//! [`RpcError`]; [`call`] dispatches by name.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use cnspr_proto::identity::DeviceId;
use cnspr_proto::invite::InviteToken;
use cnspr_proto::transport::InviteSecret;
use serde_json::Value;

use super::rpc;
use super::{failure, messaging, netcheck, store, Context};
use crate::api::error::METHOD_NOT_FOUND;
use crate::api::members::{
    CatchUp, Datagrams, DiskHealth, DiskState, HandlerRuns, Identity, InterfacesResult, Member,
    MembersResult, Nat, PingParams, PingResult, RelayStatus, RemoveParams, RemoveResult, StatusResult,
    StopResult, StoreSize,
};
use crate::api::pairing::{InviteParams, InviteResult, JoinParams, JoinResult};
use crate::api::{self, ErrorKind, Method, NoParams, PeerState, RpcError};
use crate::clock::unix_now;
use crate::driver::{os_random, MemberView, Snapshot};
use crate::peer_ref;

/// Longest a ping waits by default.
const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest invite lifetime accepted: a week.
const MAX_INVITE_TTL_SECS: u64 = 7 * 24 * 3600;

/// Runs method `M`: its parameters from `params`, its answer from `run`, as JSON.
async fn run<M: Method, F: Future<Output = Result<M::Result, RpcError>>>(
    params: Option<Value>,
    run: impl FnOnce(M::Params) -> F,
) -> Result<Value, RpcError> {
    let result = run(rpc::params(params)?).await?;
    serde_json::to_value(result).map_err(|e| RpcError::internal(format!("cannot write the answer: {e}")))
}

/// Runs one method (every one but the streaming `monitor`, `kv.watch` and `query`).
pub async fn call(context: &Context, method: &str, params: Option<Value>) -> Result<Value, RpcError> {
    match method {
        api::Id::NAME => run::<api::Id, _>(params, |NoParams {}| id(context)).await,
        api::Status::NAME => run::<api::Status, _>(params, |NoParams {}| status(context)).await,
        api::Members::NAME => run::<api::Members, _>(params, |NoParams {}| members(context)).await,
        api::Ping::NAME => run::<api::Ping, _>(params, |p| ping(context, p)).await,
        api::Invite::NAME => run::<api::Invite, _>(params, |p| invite(context, p)).await,
        api::Join::NAME => run::<api::Join, _>(params, |p| join(context, p)).await,
        api::Remove::NAME => run::<api::Remove, _>(params, |p| remove(context, p)).await,
        api::Interfaces::NAME => {
            run::<api::Interfaces, _>(params, |NoParams {}| async { Ok(interfaces(context)) }).await
        }
        api::Netcheck::NAME => {
            run::<api::Netcheck, _>(params, |NoParams {}| netcheck::netcheck(context)).await
        }
        api::Send::NAME => run::<api::Send, _>(params, |p| messaging::send(context, p, None)).await,
        api::Event::NAME => run::<api::Event, _>(params, |p| messaging::event(context, p)).await,
        api::HandlersList::NAME => {
            run::<api::HandlersList, _>(params, |NoParams {}| async { Ok(messaging::list(context)) }).await
        }
        api::HandlersTest::NAME => run::<api::HandlersTest, _>(params, |p| messaging::test(context, p)).await,
        api::KvPut::NAME => run::<api::KvPut, _>(params, |p| store::put(context, p)).await,
        api::KvGet::NAME => run::<api::KvGet, _>(params, |p| store::get(context, p)).await,
        api::KvDelete::NAME => run::<api::KvDelete, _>(params, |p| store::delete(context, p)).await,
        api::KvList::NAME => run::<api::KvList, _>(params, |p| store::list(context, p)).await,
        api::Stop::NAME => {
            run::<api::Stop, _>(params, |NoParams {}| async {
                context.request_stop();
                Ok(StopResult { stopping: true })
            })
            .await
        }
        _ => Err(RpcError::new(METHOD_NOT_FOUND, format!("no method {method:?}"))),
    }
}

/// The node's state now.
pub(super) async fn snapshot(context: &Context) -> Result<Snapshot, RpcError> {
    Ok(context.driver.snapshot().await?)
}

async fn id(context: &Context) -> Result<Identity, RpcError> {
    let snapshot = snapshot(context).await?;
    Ok(Identity {
        id: snapshot.own_id,
        name: snapshot.own_name,
    })
}

async fn status(context: &Context) -> Result<StatusResult, RpcError> {
    let snapshot = snapshot(context).await?;
    let mut peers: BTreeMap<PeerState, usize> = BTreeMap::new();
    for member in &snapshot.members {
        *peers.entry(member.state.into()).or_default() += 1;
    }
    Ok(StatusResult {
        boot: context.boot,
        datagrams: Datagrams {
            beacons_answered: snapshot.stats.beacons_answered,
            bytes_sent: snapshot.stats.bytes_sent,
            received: snapshot.stats.datagrams_received,
            rejected: snapshot.stats.datagrams_rejected,
            sent: snapshot.stats.datagrams_sent,
        },
        devices: snapshot.members.len() + 1,
        id: snapshot.own_id,
        name: snapshot.own_name.clone(),
        peers,
        removed: snapshot.removed.len(),
        handler_runs: HandlerRuns {
            queued: snapshot.runs.0,
            running: snapshot.runs.1,
            refused: snapshot.stats.offers_refused,
            interrupted: snapshot.stats.runs_interrupted,
        },
        uptime_secs: context.started.elapsed().as_secs(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        protocol_version: cnspr_proto::wire::PROTOCOL_VERSION,
        store: StoreSize {
            keys: snapshot.store_keys,
            bytes_on_disk: context.durability.bytes_on_disk(),
        },
        catching_up: snapshot
            .catching_up
            .iter()
            .map(|(progress, name)| CatchUp {
                peer: progress.from,
                name: name.clone(),
                parts_received: progress.parts_received,
                parts: progress.parts,
                changes: progress.changes,
            })
            .collect(),
        nat: nat(&snapshot),
        relay: relay(&snapshot),
        health_multiplier: snapshot.health_multiplier,
        disk: match context.durability.failure() {
            None => DiskState {
                state: DiskHealth::Ok,
                error: None,
                since_unix_secs: None,
            },
            Some(failure) => DiskState {
                state: DiskHealth::Failed,
                error: Some(failure.error),
                since_unix_secs: Some(failure.since_unix),
            },
        },
    })
}

fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1e6).round() / 1e3
}

/// What lies between this device and its peers (`status`, `netcheck`).
pub(super) fn nat(snapshot: &Snapshot) -> Nat {
    Nat {
        mapping: snapshot.nat.mapping.into(),
        translated: snapshot.nat.translated.clone(),
        keepalive_secs: snapshot.keepalive.0.as_secs(),
        kept_alive: snapshot.keepalive.1,
    }
}

/// What this device carries for others (`status`, `netcheck`).
pub(super) fn relay(snapshot: &Snapshot) -> RelayStatus {
    RelayStatus {
        pairs: snapshot.relayed_pairs,
        bytes: snapshot.stats.relayed_bytes,
        refused: snapshot.stats.relay_refused,
        unsent: snapshot.stats.relay_unsent,
    }
}

fn member(member: &MemberView, names: &BTreeMap<DeviceId, Option<String>>) -> Member {
    Member {
        address: member.address,
        id: member.id,
        last_seen_secs: member.last_seen.map(|d| d.as_secs()),
        name: member.name.clone(),
        rtt_ms: member.rtt.map(millis),
        is_self: false,
        short_id: member.id.short().to_string(),
        state: member.state.into(),
        path: member.path,
        via: member.via,
        via_name: member.via.and_then(|via| names.get(&via).cloned().flatten()),
        protocol_version: member.other_version,
    }
}

async fn members(context: &Context) -> Result<MembersResult, RpcError> {
    let snapshot = snapshot(context).await?;
    let own = Member {
        address: context.driver.sockets().reachable().first().copied(),
        id: snapshot.own_id,
        last_seen_secs: Some(0),
        name: Some(snapshot.own_name.clone()),
        rtt_ms: None,
        is_self: true,
        short_id: snapshot.own_id.short().to_string(),
        state: PeerState::Active,
        path: None,
        via: None,
        via_name: None,
        protocol_version: None,
    };
    let names: BTreeMap<DeviceId, Option<String>> =
        snapshot.members.iter().map(|m| (m.id, m.name.clone())).collect();
    let mut members = vec![own];
    members.extend(snapshot.members.iter().map(|m| member(m, &names)));
    Ok(MembersResult { members })
}

async fn ping(context: &Context, params: PingParams) -> Result<PingResult, RpcError> {
    let snapshot = snapshot(context).await?;
    let peer = peer_ref::resolve(&snapshot, &params.peer)?;
    let timeout = params.timeout_ms.map_or(PING_TIMEOUT, Duration::from_millis);
    let rtt = context
        .driver
        .ping(peer, timeout)
        .await
        .map_err(|e| failure::ping(peer, e))?;
    Ok(PingResult {
        peer,
        rtt_ms: millis(rtt),
    })
}

async fn invite(context: &Context, params: InviteParams) -> Result<InviteResult, RpcError> {
    let ttl_secs = params.ttl_secs.unwrap_or(context.invite_ttl_secs);
    if ttl_secs == 0 || ttl_secs > MAX_INVITE_TTL_SECS {
        return Err(RpcError::params(format!(
            "ttl_secs must be between 1 and {MAX_INVITE_TTL_SECS}"
        )));
    }
    let snapshot = snapshot(context).await?;
    let secret = InviteSecret {
        token_id: os_random().map_err(RpcError::internal)?,
        psk: os_random().map_err(RpcError::internal)?,
    };
    let mut addresses = context.driver.sockets().reachable();
    // The router's mapping reaches this device from anywhere: the joiner tries it too.
    addresses.extend(context.port_mapping.get().external);
    let token = InviteToken {
        inviter: snapshot.own_id,
        addresses: addresses.clone(),
        anchors: context.anchors.clone(),
        token_id: secret.token_id,
        secret: secret.psk,
        expires_unix_secs: unix_now() + ttl_secs,
    };
    context
        .driver
        .invite(secret, Duration::from_secs(ttl_secs))
        .await?;
    tracing::info!(ttl_secs, "invite opened");
    Ok(InviteResult {
        token: token.encode(),
        expires_unix_secs: token.expires_unix_secs,
        addresses,
    })
}

async fn join(context: &Context, params: JoinParams) -> Result<JoinResult, RpcError> {
    let token = InviteToken::decode(&params.token).map_err(|e| {
        let reason = e.to_string();
        RpcError::failed(ErrorKind::InvalidToken { reason }, e)
    })?;
    let snapshot = snapshot(context).await?;
    if token.inviter == snapshot.own_id {
        return Err(RpcError::failed(
            ErrorKind::OwnInvite,
            "that invite was made by this device",
        ));
    }
    if token.expires_unix_secs <= unix_now() {
        return Err(RpcError::failed(
            ErrorKind::InviteExpired {
                expires_unix_secs: token.expires_unix_secs,
            },
            "the invite has expired; ask for a new one",
        ));
    }
    // The token's addresses first; then, if none worked, where its anchors lead now (a
    // lookup takes time, and on the inviter's network it is not needed). Only addresses
    // this device can send to: an IPv6-only device skips IPv4 ones.
    let sockets = context.driver.sockets();
    let usable = |addresses: &[SocketAddr]| -> Vec<SocketAddr> {
        addresses
            .iter()
            .copied()
            .filter(|a| sockets.for_destination(a).is_some())
            .collect()
    };
    let listed = usable(&token.addresses);
    if listed.is_empty() && token.anchors.is_empty() {
        return Err(RpcError::failed(
            ErrorKind::NoUsableAddress {
                addresses: token.addresses.clone(),
            },
            "the invite names no address this device can reach (check the IP versions it listens on)",
        ));
    }
    if let Some(joined) = join_at(context, &token, &listed).await? {
        return Ok(joined);
    }
    let found = usable(&crate::anchors::look_up(&token.anchors).await);
    let found: Vec<SocketAddr> = found.into_iter().filter(|a| !listed.contains(a)).collect();
    if let Some(joined) = join_at(context, &token, &found).await? {
        return Ok(joined);
    }
    let tried: Vec<SocketAddr> = listed.into_iter().chain(found).collect();
    Err(RpcError::failed(
        ErrorKind::PairingFailed { tried },
        "pairing failed: the inviting device did not answer, or refused the invite (wrong, expired or already used)",
    ))
}

/// Joins `token`'s mesh at the first of `addresses` where its inviter answers.
async fn join_at(
    context: &Context,
    token: &InviteToken,
    addresses: &[SocketAddr],
) -> Result<Option<JoinResult>, RpcError> {
    for address in addresses {
        let secret = InviteSecret {
            token_id: token.token_id,
            psk: token.secret,
        };
        if context.driver.join(token.inviter, *address, secret).await? {
            tracing::info!(inviter = %token.inviter, %address, "joined a mesh");
            return Ok(Some(JoinResult {
                inviter: token.inviter,
                address: *address,
            }));
        }
    }
    Ok(None)
}

async fn remove(context: &Context, params: RemoveParams) -> Result<RemoveResult, RpcError> {
    let snapshot = snapshot(context).await?;
    let peer = peer_ref::resolve(&snapshot, &params.peer)?;
    let name = peer_ref::name(&snapshot, &peer);
    context
        .driver
        .remove(peer)
        .await?
        .map_err(|e| failure::peer(peer, e))?;
    tracing::info!(%peer, "device removed from the mesh");
    Ok(RemoveResult { removed: peer, name })
}

fn interfaces(context: &Context) -> InterfacesResult {
    let sockets = context.driver.sockets();
    InterfacesResult {
        listening: sockets.bound(),
        addresses: sockets.reachable(),
        gateways: crate::gateways::read(),
    }
}
