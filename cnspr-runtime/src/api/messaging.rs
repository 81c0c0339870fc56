//! Messages between devices: `send` (to one peer; with `progress`, how far it is comes
//! as `send.progress` notifications), `event` (to every device), `query` (ask peers'
//! handlers; their answers stream back as `query.answer` notifications).

use cnspr_proto::identity::DeviceId;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::payload::Message;
use super::peer::{DeviceIdText, Peer};

fn yes() -> bool {
    true
}

/// `send`'s parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendParams {
    /// A device name, device ID or unique prefix of one.
    pub peer: String,
    /// What kind of message (`util.clipboard.set`).
    pub tag: String,
    /// The payload (none: empty).
    #[serde(flatten)]
    pub payload: Message,
    /// Answer once delivered (default), or at once once durably queued.
    #[serde(default = "yes")]
    pub wait: bool,
    /// While waiting for delivery, say how far the message is as `send.progress`
    /// notifications, a few a second (default: no).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub progress: bool,
}

/// How far a message being delivered is (a `send.progress` notification's `params`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SendProgress {
    /// The receiver.
    #[schemars(with = "DeviceIdText")]
    pub peer: DeviceId,
    /// The message's number.
    pub seq: u64,
    /// Bytes the receiver acknowledged so far, of `bytes`.
    pub bytes_acknowledged: u64,
    /// The message's bytes on the wire (its payload and a few bytes more).
    pub bytes: u64,
}

/// `send`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SendResult {
    /// Whether the receiver recorded it (with `wait`).
    pub delivered: bool,
    /// The receiver.
    #[schemars(with = "DeviceIdText")]
    pub peer: DeviceId,
    /// `true` when it was queued without waiting (absent otherwise).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub queued: bool,
    /// The message's number.
    pub seq: u64,
}

/// `event`'s parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventParams {
    /// What kind of event.
    pub tag: String,
    /// The payload (none: empty).
    #[serde(flatten)]
    pub payload: Message,
}

/// `event`'s answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EventResult {
    /// The event's number.
    pub seq: u64,
}

/// `query`'s parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryParams {
    /// What kind of question.
    pub tag: String,
    /// The question (none: empty).
    #[serde(flatten)]
    pub payload: Message,
    /// Whom to ask: names, IDs or prefixes (absent or empty: every peer).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<String>,
    /// How long to collect answers (default 5000, at most 600000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

/// One answer to a query (a `query.answer` notification's `params`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct QueryAnswer {
    /// Who answered.
    #[serde(flatten)]
    pub from: Peer,
    /// What its handler wrote.
    #[serde(flatten)]
    pub answer: Message,
}

/// Why an asked peer will not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum QueryFailureReason {
    /// It restarted after it was asked and before it answered (queries are not kept
    /// through a restart).
    Restarted,
    /// It became unreachable before it answered.
    Unreachable,
}

/// An asked peer that will not answer, reported as soon as that is known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct QueryFailed {
    /// The peer.
    #[serde(flatten)]
    pub peer: Peer,
    /// Why.
    pub reason: QueryFailureReason,
}

/// `query`'s answer, once the answers are in or the time is up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct QueryResult {
    /// How many answers came.
    pub answers: usize,
    /// Peers that were asked and restarted or became unreachable before their first
    /// answer: they will not answer.
    pub failed: Vec<QueryFailed>,
    /// Peers that were asked and gave no answer in time.
    pub no_answer: Vec<Peer>,
    /// Peers that could not be asked (reported at once, not waited for).
    pub unreachable: Vec<Peer>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn params_with_a_payload_still_refuse_unknown_names() {
        let send: SendParams =
            serde_json::from_value(json!({"peer": "laptop", "tag": "a", "message_b64": "AAE="}))
                .expect("valid");
        assert_eq!(send.payload.bytes(), Ok(Some(vec![0, 1])));
        assert!(send.wait, "waits by default");
        for typo in [
            json!({"peer": "laptop", "tag": "a", "mesage": "x"}),
            json!({"tag": "a", "message": "x", "peers": []}),
        ] {
            let refused = serde_json::from_value::<SendParams>(typo.clone()).map(|_| ());
            assert!(refused.is_err(), "{typo}");
        }
        let event = serde_json::from_value::<EventParams>(json!({"tag": "a", "timeout_ms": 5}));
        assert!(event.is_err(), "event takes no timeout");
        let query: QueryParams = serde_json::from_value(json!({"tag": "a"})).expect("valid");
        assert_eq!(
            serde_json::to_value(&query).expect("serializes"),
            json!({"tag": "a"})
        );
    }
}
