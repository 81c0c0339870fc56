//! A client of the control socket: one JSON-RPC request per line, blocking. The CLI uses
//! nothing else to talk to the daemon.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use serde_json::{json, Value};

use crate::CliError;

/// A connection to the daemon.
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_id: u64,
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

    fn send(&mut self, method: &str, params: Value) -> Result<u64, CliError> {
        let id = self.next_id;
        self.next_id += 1;
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let mut line = request.to_string();
        line.push('\n');
        self.writer.write_all(line.as_bytes()).map_err(lost)?;
        Ok(id)
    }

    /// The next line from the daemon as JSON.
    pub fn read(&mut self) -> Result<Value, CliError> {
        let mut line = String::new();
        let read = self.reader.read_line(&mut line).map_err(lost)?;
        if read == 0 {
            return Err(CliError::new(
                "the daemon closed the connection (is it stopping?)",
            ));
        }
        serde_json::from_str(&line).map_err(|e| CliError::new(format!("the daemon answered nonsense: {e}")))
    }

    /// Calls `method` and returns its result, or its error as a [`CliError`].
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, CliError> {
        self.call_streaming(method, params, |_| {})
    }

    /// Calls `method`, handing every notification that comes before the answer to
    /// `notified` (a query's answers).
    pub fn call_streaming(
        &mut self,
        method: &str,
        params: Value,
        mut notified: impl FnMut(&Value),
    ) -> Result<Value, CliError> {
        let id = self.send(method, params)?;
        loop {
            let answer = self.read()?;
            if answer.get("id").is_none() && answer.get("method").is_some() {
                notified(&answer);
                continue;
            }
            if answer.get("id") != Some(&json!(id)) {
                continue;
            }
            if let Some(error) = answer.get("error") {
                let message = error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown error");
                return Err(CliError::new(message.to_owned()));
            }
            return Ok(answer.get("result").cloned().unwrap_or(Value::Null));
        }
    }

    /// Starts a subscription; read its notifications with [`Client::read`].
    pub fn subscribe(&mut self, method: &str) -> Result<(), CliError> {
        self.call(method, json!({})).map(|_| ())
    }
}

fn lost(error: std::io::Error) -> CliError {
    CliError::new(format!("lost the connection to the daemon: {error}"))
}
