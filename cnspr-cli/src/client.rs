//! A client of the control socket: one JSON-RPC request per line, blocking, built from the
//! API's parameter types and read back into its result types ([`cnspr_runtime::api`]).
//! The CLI uses nothing else to talk to the daemon.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use cnspr_runtime::api::envelope::{Notification, Request, Response};
use cnspr_runtime::api::{Method, RpcError, Streams};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use crate::CliError;

/// A connection to the daemon.
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_id: u64,
}

/// One line from the daemon.
#[derive(Deserialize)]
#[serde(untagged)]
enum Incoming {
    /// An item of a stream.
    Notification(Notification),
    /// The answer to a request.
    Response(Response),
}

fn nonsense(error: serde_json::Error) -> CliError {
    CliError::new(format!("the daemon answered nonsense: {error}"))
}

/// A JSON value as `T`, or why the daemon's answer makes no sense.
fn typed<T: DeserializeOwned>(value: Value) -> Result<T, CliError> {
    serde_json::from_value(value).map_err(nonsense)
}

impl Client {
    /// Connects, or explains plainly that no daemon runs.
    pub fn connect(socket: &Path) -> Result<Self, CliError> {
        let stream = UnixStream::connect(socket).map_err(|_| {
            CliError::new(format!(
                "cnspr is not running (nothing answers at {}); start it with `cnspr serve`",
                socket.display()
            ))
        })?;
        let writer = stream
            .try_clone()
            .map_err(|e| CliError::new(format!("cannot use the control socket: {e}")))?;
        Ok(Self {
            reader: BufReader::new(stream),
            writer,
            next_id: 1,
        })
    }

    fn send<M: Method>(&mut self, params: &M::Params) -> Result<u64, CliError> {
        let id = self.next_id;
        self.next_id += 1;
        let mut line = serde_json::to_string(&Request::new(id, M::NAME, params))?;
        line.push('\n');
        self.writer.write_all(line.as_bytes()).map_err(lost)?;
        Ok(id)
    }

    fn read(&mut self) -> Result<Incoming, CliError> {
        let mut line = String::new();
        let read = self.reader.read_line(&mut line).map_err(lost)?;
        if read == 0 {
            return Err(CliError::new(
                "the daemon closed the connection (is it stopping?)",
            ));
        }
        serde_json::from_str(&line).map_err(nonsense)
    }

    /// Calls `M`; the inner error is the daemon's refusal, with its code and data.
    pub fn try_call<M: Method>(
        &mut self,
        params: &M::Params,
    ) -> Result<Result<M::Result, RpcError>, CliError> {
        self.exchange::<M>(params, |_| Ok(()))
    }

    /// Calls `M` and returns its result; a refusal is a [`CliError`] with its message.
    pub fn call<M: Method>(&mut self, params: &M::Params) -> Result<M::Result, CliError> {
        Ok(self.try_call::<M>(params)??)
    }

    /// Calls `M`, handing every notification of it that comes before the answer to
    /// `notified` (a query's answers).
    pub fn call_streaming<M: Streams>(
        &mut self,
        params: &M::Params,
        mut notified: impl FnMut(M::Notification) -> Result<(), CliError>,
    ) -> Result<M::Result, CliError> {
        let result = self.exchange::<M>(params, |notification| {
            if notification.method == M::NOTIFICATION {
                notified(typed(notification.params)?)?;
            }
            Ok(())
        })?;
        Ok(result?)
    }

    fn exchange<M: Method>(
        &mut self,
        params: &M::Params,
        mut notified: impl FnMut(Notification) -> Result<(), CliError>,
    ) -> Result<Result<M::Result, RpcError>, CliError> {
        let id = Value::from(self.send::<M>(params)?);
        loop {
            match self.read()? {
                Incoming::Notification(notification) => notified(notification)?,
                Incoming::Response(response) if response.id.as_ref() != Some(&id) => {}
                Incoming::Response(Response {
                    error: Some(error), ..
                }) => return Ok(Err(error)),
                Incoming::Response(Response { result, .. }) => {
                    return typed(result.unwrap_or(Value::Null)).map(Ok);
                }
            }
        }
    }

    /// Starts subscription `M`; read its notifications with [`Client::next`].
    pub fn subscribe<M: Streams>(&mut self, params: &M::Params) -> Result<(), CliError> {
        self.call::<M>(params).map(|_| ())
    }

    /// The next notification of subscription `M`.
    pub fn next<M: Streams>(&mut self) -> Result<M::Notification, CliError> {
        loop {
            if let Incoming::Notification(notification) = self.read()? {
                if notification.method == M::NOTIFICATION {
                    return typed(notification.params);
                }
            }
        }
    }
}

fn lost(error: std::io::Error) -> CliError {
    CliError::new(format!("lost the connection to the daemon: {error}"))
}
