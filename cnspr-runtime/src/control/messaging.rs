//! The control socket's messaging methods: `send`, `event`, `query` (which streams its
//! answers), `handlers.list` and `handlers.test`.

use std::time::Duration;

use cnspr_proto::identity::DeviceId;
use cnspr_proto::messaging::Tag;
use serde_json::Value;
use tokio::net::unix::OwnedWriteHalf;

use super::methods::snapshot;
use super::rpc;
use super::{failure, Context};
use crate::api::handlers::{Family, HandlerEntry, HandlerList, Ignored, TestParams, TestResult, TestRun};
use crate::api::messaging::{
    EventParams, EventResult, QueryAnswer, QueryFailed, QueryFailureReason, QueryResult, SendParams,
    SendProgress, SendResult,
};
use crate::api::payload::{Message, Stdout};
use crate::api::{ErrorKind, Peer, Query, RpcError, Send, Streams};
use crate::driver::QueryReply;
use crate::driver::Snapshot;
use crate::handlers::{tree, Invocation, Topic};
use crate::peer_ref;
use cnspr_proto::node::QueryFailure;

/// A query's default time to collect answers.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest a query may collect answers.
const MAX_QUERY_TIMEOUT: Duration = Duration::from_secs(600);

/// The bytes of a payload, refused over `max`.
fn payload(message: &Message, max: usize) -> Result<Vec<u8>, RpcError> {
    let bytes = message.bytes().map_err(RpcError::params)?.unwrap_or_default();
    if bytes.len() > max {
        let sentence = format!("the message is {} bytes, over the limit of {max}", bytes.len());
        return Err(failure::too_large(bytes.len(), max, sentence));
    }
    Ok(bytes)
}

fn tag(text: &str) -> Result<Tag, RpcError> {
    Tag::new(text).map_err(|e| failure::tag(text, e))
}

/// `id` with its name.
fn peer(snapshot: &Snapshot, id: DeviceId) -> Peer {
    Peer {
        name: peer_ref::name(snapshot, &id),
        peer: id,
    }
}

/// How often `send` with `progress` says how far the message is.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);

/// `send`: a direct message; waits for delivery unless `wait` is false. With `progress`
/// and a `writer` (not inside a batch), writes `send.progress` notifications meanwhile.
pub async fn send(
    context: &Context,
    params: SendParams,
    writer: Option<&mut OwnedWriteHalf>,
) -> Result<SendResult, RpcError> {
    let tag = tag(&params.tag)?;
    let payload = payload(&params.payload, context.payload_bytes_max)?;
    let peer = peer_ref::resolve(&snapshot(context).await?, &params.peer)?;
    let (seq, delivered) = context
        .driver
        .send(peer, tag, payload, params.wait)
        .await?
        .map_err(|e| failure::messaging(Some(peer), e))?;
    let Some(mut outcome) = delivered else {
        return Ok(SendResult {
            delivered: false,
            peer,
            queued: true,
            seq,
        });
    };
    let delivered = match writer.filter(|_| params.progress) {
        Some(writer) => loop {
            match tokio::time::timeout(PROGRESS_INTERVAL, &mut outcome).await {
                Ok(delivered) => break delivered,
                Err(_) => tell_progress(context, peer, seq, writer).await,
            }
        },
        None => outcome.await,
    };
    match delivered {
        Ok(true) => Ok(SendResult {
            delivered: true,
            peer,
            queued: false,
            seq,
        }),
        Ok(false) => Err(RpcError::failed(
            ErrorKind::MessageExpired { peer, seq },
            "the message expired before the device came back",
        )),
        Err(_) => Err(RpcError::failed(
            ErrorKind::Stopping,
            "the daemon stopped; the message stays queued",
        )),
    }
}

/// Writes how far message `seq` to `peer` is, if it is on its way (a client that went
/// away is noticed when the answer is written).
async fn tell_progress(context: &Context, peer: DeviceId, seq: u64, writer: &mut OwnedWriteHalf) {
    let Ok(Some((bytes_acknowledged, bytes))) = context.driver.delivery_progress(peer, seq).await else {
        return;
    };
    let notice = SendProgress {
        peer,
        seq,
        bytes_acknowledged,
        bytes,
    };
    let _ = super::write_line(writer, &rpc::notification(Send::NOTIFICATION, notice)).await;
}

/// `event`: to every device, this one included.
pub async fn event(context: &Context, params: EventParams) -> Result<EventResult, RpcError> {
    let tag = tag(&params.tag)?;
    let payload = payload(&params.payload, context.payload_bytes_max)?;
    let seq = context
        .driver
        .publish(tag, payload)
        .await?
        .map_err(|e| failure::messaging(None, e))?;
    Ok(EventResult { seq })
}

/// `query`: writes one `query.answer` notification per answer to `writer` as it arrives,
/// then answers with who answered, who was unreachable and who stayed silent.
pub async fn query(
    context: &Context,
    params: Option<Value>,
    writer: &mut OwnedWriteHalf,
) -> Result<QueryResult, RpcError> {
    let params: <Query as crate::api::Method>::Params = rpc::params(params)?;
    let tag = tag(&params.tag)?;
    let payload = payload(&params.payload, context.payload_bytes_max)?;
    let timeout = params.timeout_ms.map_or(QUERY_TIMEOUT, Duration::from_millis);
    if timeout > MAX_QUERY_TIMEOUT {
        return Err(RpcError::params("timeout_ms is at most 600000"));
    }
    let snapshot = snapshot(context).await?;
    let targets = if params.peers.is_empty() {
        None
    } else {
        let ids = params
            .peers
            .iter()
            .map(|p| peer_ref::resolve(&snapshot, p))
            .collect::<Result<Vec<_>, _>>()?;
        Some(ids)
    };
    let asked: Vec<DeviceId> = targets
        .clone()
        .unwrap_or_else(|| snapshot.members.iter().map(|m| m.id).collect());
    let ((id, unreachable), mut answers) = context
        .driver
        .query(targets, tag, payload)
        .await?
        .map_err(|e| failure::messaging(None, e))?;
    let mut answered = Vec::new();
    let mut failed = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while let Ok(Some(reply)) = tokio::time::timeout_at(deadline, answers.recv()).await {
        let (from, answer) = match reply {
            QueryReply::Answer(from, answer) => {
                // An answer after all (the question reached it again after its restart).
                failed.retain(|(peer, _)| *peer != from);
                (from, answer)
            }
            QueryReply::Failed(peer, reason) => {
                failed.push((peer, reason));
                continue;
            }
        };
        answered.push(from);
        let notice = QueryAnswer {
            from: peer(&snapshot, from),
            answer: Message::new(answer),
        };
        if super::write_line(writer, &rpc::notification(Query::NOTIFICATION, notice))
            .await
            .is_err()
        {
            break;
        }
    }
    context.driver.query_done(id).await;
    let silent = asked
        .iter()
        .filter(|d| !answered.contains(d) && !unreachable.contains(d))
        .filter(|d| !failed.iter().any(|(f, _)| f == *d))
        .map(|d| peer(&snapshot, *d))
        .collect();
    let failed = failed
        .into_iter()
        .map(|(device, reason)| QueryFailed {
            peer: peer(&snapshot, device),
            reason: match reason {
                QueryFailure::Restarted => QueryFailureReason::Restarted,
                QueryFailure::Unreachable => QueryFailureReason::Unreachable,
            },
        })
        .collect();
    Ok(QueryResult {
        answers: answered.len(),
        failed,
        unreachable: unreachable.iter().map(|d| peer(&snapshot, *d)).collect(),
        no_answer: silent,
    })
}

fn entry(handler: &tree::Handler) -> HandlerEntry {
    let device = match &handler.device {
        Some(tree::DeviceFilter::Name(name)) => Some(name.clone()),
        Some(tree::DeviceFilter::IdPrefix(prefix)) => Some(format!("[{prefix}]")),
        None => None,
    };
    let (family, takes) = match &handler.family {
        tree::Family::Daemon(state) => (Family::Daemon, state.clone()),
        tree::Family::Peer(kind) => (Family::Peer, kind.clone()),
        tree::Family::User(tag) => (Family::User, Some(tag.to_string())),
    };
    HandlerEntry {
        device,
        family,
        handler: handler.relative.clone(),
        takes,
    }
}

/// `handlers.list`: every handler and what it takes, and files that name no event.
pub fn list(context: &Context) -> HandlerList {
    let (handlers, rejected) = tree::scan(context.dispatcher.dir());
    HandlerList {
        directory: context.dispatcher.dir().to_string_lossy().into_owned(),
        handlers: handlers.iter().map(entry).collect(),
        ignored: rejected
            .into_iter()
            .map(|r| Ignored {
                handler: r.relative,
                reason: r.reason,
            })
            .collect(),
    }
}

/// `handlers.test`: runs the handlers a user message would run, now, and reports them.
pub async fn test(context: &Context, params: TestParams) -> Result<TestResult, RpcError> {
    let tag = tag(&params.tag)?;
    let payload = payload(&params.payload, context.payload_bytes_max)?;
    let snapshot = snapshot(context).await?;
    let origin = match &params.from {
        Some(given) => peer_ref::resolve(&snapshot, given)?,
        None => snapshot.own_id,
    };
    let origin_name = peer_ref::name(&snapshot, &origin);
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
    let runs = outcomes
        .into_iter()
        .map(|outcome| TestRun {
            run: outcome.run,
            stdout: Stdout::new(outcome.stdout),
        })
        .collect();
    Ok(TestResult { runs })
}
