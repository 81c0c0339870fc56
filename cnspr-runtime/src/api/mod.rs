//! The control socket's API, defined once for both ends: the daemon's methods deserialize
//! their parameters into these types and answer with these result types; the CLI builds
//! its requests from the same parameter types and reads the answers into the same result
//! types; `docs/api.schema.json` (generated from them, [`schema`]) describes them to
//! clients in other languages. Nothing here does IO: these are the shapes on the wire.
//!
//! This file lists every method (a marker type each, [`Method`]); the types are in:
//!
//! - [`envelope`]: JSON-RPC 2.0 frames: request, response, notification.
//! - [`error`]: error codes, and each kind of failure with its machine-usable data.
//! - [`method`]: what a method is, the shapes several share, the catalogue's entries.
//! - [`peer`]: a device on the wire (ID, name, state) and as people see it.
//! - [`payload`]: bytes as UTF-8 text or base64.
//! - [`members`], [`netcheck`], [`pairing`], [`messaging`], [`handlers`], [`store`], [`notice`]: each
//!   concern's parameters, results and notifications.
//! - [`schema`]: the JSON Schema of it all.

#[macro_use]
mod macros;

pub mod envelope;
pub mod error;
pub mod handlers;
pub mod members;
pub mod messaging;
pub mod method;
pub mod netcheck;
pub mod notice;
pub mod pairing;
pub mod payload;
pub mod peer;
pub mod positional;
pub mod schema;
pub mod store;

pub use error::{ErrorKind, RpcError};
pub use method::{Method, NoParams, Streams, Subscribed};
pub use notice::Notice;
pub use peer::{Peer, PeerLabel, PeerPath, PeerState};

use handlers::{HandlerList, TestParams, TestResult};
use members::{
    Identity, InterfacesResult, MembersResult, PingParams, PingResult, RemoveParams, RemoveResult,
    StatusResult, StopResult,
};
use messaging::{
    EventParams, EventResult, QueryAnswer, QueryParams, QueryResult, SendParams, SendProgress, SendResult,
};
use netcheck::NetcheckResult;
use pairing::{InviteParams, InviteResult, JoinParams, JoinResult};
use store::{
    Change, DeleteParams, Entry, GetParams, ListParams, ListResult, PutParams, WatchParams, Written,
};

methods! {
    // The methods that answer once.
    /// `id`: this device's ID and name.
    Id = "id", NoParams => Identity;
    /// `status`: the daemon, its mesh and its traffic.
    Status = "status", NoParams => StatusResult;
    /// `members`: every device of the roster, this one first.
    Members = "members", NoParams => MembersResult;
    /// `ping`: one round trip through the encrypted session with a peer.
    Ping = "ping", PingParams => PingResult;
    /// `invite`: opens a single-use invite and returns its token.
    Invite = "invite", InviteParams => InviteResult;
    /// `join`: pairs this device with the mesh of the device that made a token.
    Join = "join", JoinParams => JoinResult;
    /// `remove`: revokes a device on every device of the mesh.
    Remove = "remove", RemoveParams => RemoveResult;
    /// `interfaces`: the addresses the daemon listens on and is reachable at.
    Interfaces = "interfaces", NoParams => InterfacesResult;
    /// `netcheck`: what this device sees of its network, and why each peer is reached the
    /// way it is.
    Netcheck = "netcheck", NoParams => NetcheckResult;
    /// `event`: an event for every device of the mesh, this one included.
    Event = "event", EventParams => EventResult;
    /// `handlers.list`: every handler with what it takes, and the files ignored.
    HandlersList = "handlers.list", NoParams => HandlerList;
    /// `handlers.test`: runs now the handlers a user message would run.
    HandlersTest = "handlers.test", TestParams => TestResult;
    /// `kv.put`: writes a key; answers once the write is durable here.
    KvPut = "kv.put", PutParams => Written;
    /// `kv.get`: a key's winning value, and with `all` every concurrent one.
    KvGet = "kv.get", GetParams => Entry;
    /// `kv.delete`: deletes a key everywhere; answers once durable here.
    KvDelete = "kv.delete", DeleteParams => Written;
    /// `kv.list`: the keys under a prefix, with their winning values.
    KvList = "kv.list", ListParams => ListResult;
    /// `stop`: stops the daemon cleanly.
    Stop = "stop", NoParams => StopResult;
    // The methods that stream: notifications before their answer (`send` with
    // `progress`, `query`) or after it (the subscriptions).
    /// `send`: a direct message to one peer; with `progress`, `send.progress`
    /// notifications while it is delivered.
    Send = "send", SendParams => SendResult, notifies "send.progress": SendProgress;
    /// `query`: asks peers' handlers; each answer is a `query.answer` notification, then
    /// the answer says who answered, who is not reachable and who stayed silent.
    Query = "query", QueryParams => QueryResult, notifies "query.answer": QueryAnswer;
    /// `kv.watch`: every change under a prefix, from a cursor on, as notifications.
    KvWatch = "kv.watch", WatchParams => Subscribed, notifies "kv.watch": Change;
    /// `monitor`: a stream of notices for as long as the connection stays open.
    Monitor = "monitor", NoParams => Subscribed, notifies "monitor": Notice;
}

/// The catalogue's entry for method `name`.
pub fn find(name: &str) -> Option<method::MethodInfo> {
    catalogue().into_iter().find(|info| info.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_no_params_is_an_empty_object() {
        let names: std::collections::BTreeSet<&str> = catalogue().iter().map(|m| m.name).collect();
        assert_eq!(names.len(), catalogue().len());
        let status = find("status").expect("listed");
        assert!((status.params.check)(serde_json::json!({})).is_ok());
        assert!(
            (status.params.check)(serde_json::json!({"x": 1})).is_err(),
            "unknown names are refused"
        );
        assert!(find("fly").is_none());
    }
}
