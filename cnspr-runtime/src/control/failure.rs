//! From the daemon's errors to the API's: each failure becomes its [`ErrorKind`] (code and
//! data) with the sentence it has always had as the message.

use std::fmt::Display;

use cnspr_proto::identity::DeviceId;
use cnspr_proto::messaging::{MessagingError, TagError};
use cnspr_proto::node::PeerError;
use cnspr_proto::store::{StoreError, MAX_KEY_BYTES, MAX_VALUE_BYTES};

use crate::api::{ErrorKind, RpcError};
use crate::driver::{PingError, Unavailable};
use crate::peer_ref::PeerRefError;

impl From<Unavailable> for RpcError {
    fn from(unavailable: Unavailable) -> Self {
        let kind = match &unavailable {
            Unavailable::Stopping => ErrorKind::Stopping,
            Unavailable::DiskFailed(failure) => ErrorKind::DiskFailed {
                error: failure.error.clone(),
                since_unix_secs: failure.since_unix,
            },
        };
        RpcError::failed(kind, unavailable)
    }
}

impl From<PeerRefError> for RpcError {
    fn from(error: PeerRefError) -> Self {
        let kind = match &error {
            PeerRefError::Unknown(given) => ErrorKind::UnknownPeer { given: given.clone() },
            PeerRefError::Ambiguous { given, candidates } => ErrorKind::AmbiguousPeer {
                given: given.clone(),
                candidates: candidates.clone(),
            },
        };
        RpcError::failed(kind, error)
    }
}

/// `peer` cannot be reached or asked.
pub fn peer(peer: DeviceId, error: PeerError) -> RpcError {
    let kind = match error {
        PeerError::NotAMember => ErrorKind::NotAMember { peer: Some(peer) },
        PeerError::Itself => ErrorKind::ThisDevice,
        PeerError::NoAddress => ErrorKind::NoAddress { peer },
    };
    RpcError::failed(kind, error)
}

/// A ping of `to` that got no answer.
pub fn ping(to: DeviceId, error: PingError) -> RpcError {
    match error {
        PingError::Peer(error) => peer(to, error),
        PingError::Timeout(waited) => RpcError::failed(
            ErrorKind::Timeout {
                timeout_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
            },
            error,
        ),
        PingError::Unavailable(unavailable) => unavailable.into(),
    }
}

/// A payload of `bytes` over `limit`, described by `message`.
pub fn too_large(bytes: usize, limit: usize, message: impl Display) -> RpcError {
    RpcError::failed(ErrorKind::TooLarge { bytes, limit }, message)
}

/// A message, event or query (to `to`, if one peer) that the core refused.
pub fn messaging(to: Option<DeviceId>, error: MessagingError) -> RpcError {
    match error {
        MessagingError::NotAPeer => RpcError::failed(ErrorKind::NotAMember { peer: to }, error),
        MessagingError::TooLarge { len, max } => too_large(len, max, error),
    }
}

/// `tag` is not a tag.
pub fn tag(tag: &str, error: TagError) -> RpcError {
    RpcError::failed(
        ErrorKind::InvalidTag {
            tag: tag.to_owned(),
            reason: error.to_string(),
        },
        format!("invalid tag {tag:?}: {error}"),
    )
}

/// A write of `key` that the store refused.
pub fn store(key: &str, error: StoreError) -> RpcError {
    match error {
        StoreError::KeyLength => RpcError::failed(
            ErrorKind::KeyLength {
                bytes: key.len(),
                limit: MAX_KEY_BYTES,
            },
            error,
        ),
        StoreError::ValueTooLarge(bytes) => too_large(bytes, MAX_VALUE_BYTES, error),
        StoreError::Reserved => RpcError::failed(ErrorKind::KeyReserved { key: key.to_owned() }, error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn sentences_stay_and_kinds_say_what_happened() {
        let laptop = DeviceId::from_bytes([7; 32]);
        let timeout = ping(laptop, PingError::Timeout(Duration::from_millis(500)));
        assert_eq!(timeout.message, "no answer within 500 ms");
        assert_eq!(timeout.data, Some(ErrorKind::Timeout { timeout_ms: 500 }));
        assert_eq!(timeout.code, 15);
        let unknown = RpcError::from(PeerRefError::Unknown("phone".into()));
        assert_eq!(
            unknown.message,
            "no device of the mesh is called or starts with \"phone\""
        );
        assert_eq!(unknown.code, 10);
        let reserved = store("_roster/x", StoreError::Reserved);
        assert_eq!(
            reserved.data,
            Some(ErrorKind::KeyReserved {
                key: "_roster/x".into()
            })
        );
        assert!(reserved
            .message
            .starts_with("keys under _roster/ and _addr/ belong to the mesh"));
        let stopped = RpcError::from(Unavailable::Stopping);
        assert_eq!(
            (stopped.code, stopped.message.as_str()),
            (40, "the daemon is shutting down")
        );
        let bad_tag = tag("daemon.x", TagError::Reserved("daemon".into()));
        assert_eq!(
            bad_tag.message,
            "invalid tag \"daemon.x\": \"daemon\" is reserved for the daemon's own events and cannot be a word of a tag"
        );
        assert_eq!(bad_tag.code, 21);
    }
}
