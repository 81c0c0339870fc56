//! The control socket: a UNIX socket (mode 0600) speaking JSON-RPC 2.0, one object per
//! line. Every connection has its own task, so a slow, broken or hostile client never
//! holds up another; a line over the limit gets an error and the connection is closed.

pub mod batch;
pub mod failure;
pub mod messaging;
pub mod methods;
pub mod netcheck;
pub mod rpc;
pub mod store;

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, Notify, Semaphore};

use crate::api::error::INVALID_REQUEST;
use crate::api::store::WatchParams;
use crate::api::{KvWatch, Method, Monitor, NoParams, Notice, Query, RpcError, Send, Streams, Subscribed};
use crate::driver::DriverHandle;
use rpc::Incoming;

/// What the methods need.
pub struct Context {
    /// The node task.
    pub driver: DriverHandle,
    /// When the daemon started.
    pub started: Instant,
    /// This start's number.
    pub boot: u32,
    /// Default invite lifetime.
    pub invite_ttl_secs: u64,
    /// Longest request line.
    pub line_bytes_max: usize,
    /// How long a client may send nothing before it is disconnected.
    pub idle: std::time::Duration,
    /// Rung by `stop`.
    pub stop: Arc<Notify>,
    /// Runs handlers (for `handlers.test`) and lists them.
    pub dispatcher: crate::handlers::Dispatcher,
    /// The database (the store's change log, for `kv.watch`).
    pub durability: Arc<crate::durability::Durability>,
    /// Largest message, event or query payload.
    pub payload_bytes_max: usize,
    /// This device's static anchors, which its invites carry.
    pub anchors: Vec<cnspr_proto::anchor::Anchor>,
    /// The port mapping on the router (`netcheck`; invites carry its address).
    pub port_mapping: crate::port_mapping::PortMappingWatch,
}

impl Context {
    /// Asks the daemon to stop.
    pub fn request_stop(&self) {
        self.stop.notify_one();
    }
}

/// Binds the control socket at `path`, owner-only. A socket file left by a daemon that
/// died is replaced; one that a running daemon answers on is an error.
pub async fn bind(path: &Path) -> io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(directory) = path.parent() {
        check_directory(directory)?;
    }
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!(
                    "a cnspr daemon is already running (control socket {})",
                    path.display()
                ),
            ));
        }
        std::fs::remove_file(path)?;
    }
    // Created owner-only: no other user can connect even for the instant before the
    // mode is set (nothing else creates files while the daemon starts).
    let before = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let bound = UnixListener::bind(path);
    rustix::process::umask(before);
    let listener = bound?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Refuses a socket directory that another user owns or may write to: whoever can
/// write there can put a socket of their own in the daemon's place.
fn check_directory(directory: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(directory)?;
    let own = rustix::process::geteuid().as_raw();
    if metadata.uid() != own {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "the control socket's directory {} belongs to user {}, not to this one ({own})",
                directory.display(),
                metadata.uid()
            ),
        ));
    }
    if metadata.mode() & 0o022 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "other users may write to the control socket's directory {} (mode {:o}); \
                 make it writable by its owner only (chmod go-w)",
                directory.display(),
                metadata.mode() & 0o7777
            ),
        ));
    }
    Ok(())
}

/// Clients served at once. Each may buffer up to a request line, so this bounds the
/// daemon's memory; more clients wait in the socket's backlog until one leaves.
pub const MAX_CLIENTS: usize = 512;

/// Accepts clients until the task is dropped.
pub async fn serve(listener: UnixListener, context: Arc<Context>) {
    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((stream, _)) => {
                let context = context.clone();
                tokio::spawn(async move {
                    connection(stream, context).await;
                    drop(slot);
                });
            }
            Err(error) => {
                // Out of file descriptors, most likely: wait for clients to leave.
                tracing::warn!(%error, "cannot accept a control connection");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

enum Line {
    Complete(Vec<u8>),
    TooLong,
    End,
}

/// Reads one line of at most `max` bytes (without its newline). Memory stays bounded:
/// an overlong line is not kept.
async fn read_line(
    reader: &mut BufReader<impl tokio::io::AsyncRead + Unpin>,
    max: usize,
) -> io::Result<Line> {
    let mut line = Vec::new();
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(if line.is_empty() {
                Line::End
            } else {
                Line::Complete(line)
            });
        }
        let (chunk, found) = match available.iter().position(|b| *b == b'\n') {
            Some(end) => (&available[..end], Some(end + 1)),
            None => (available, None),
        };
        if line.len() + chunk.len() > max {
            return Ok(Line::TooLong);
        }
        line.extend_from_slice(chunk);
        let consumed = found.unwrap_or(chunk.len());
        reader.consume(consumed);
        if found.is_some() {
            return Ok(Line::Complete(line));
        }
    }
}

pub(crate) async fn write_line(writer: &mut OwnedWriteHalf, line: &str) -> io::Result<()> {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    writer.write_all(&bytes).await
}

async fn connection(stream: UnixStream, context: Arc<Context>) {
    let (read, mut writer) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        // A client that sends nothing gives its slot back after a while.
        let Ok(read) =
            tokio::time::timeout(context.idle, read_line(&mut reader, context.line_bytes_max)).await
        else {
            return;
        };
        let line = match read {
            Ok(Line::Complete(line)) => line,
            Ok(Line::End) | Err(_) => return,
            Ok(Line::TooLong) => {
                let error = RpcError::new(
                    INVALID_REQUEST,
                    format!(
                        "request line longer than {} bytes; closing",
                        context.line_bytes_max
                    ),
                );
                let _ = write_line(&mut writer, &rpc::failure(None, &error)).await;
                return;
            }
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let answer = match rpc::parse(&line) {
            Err((id, error)) => Some(rpc::failure(id.as_ref(), &error)),
            Ok(Incoming::Batch(items)) => batch::answer(&context, items).await,
            Ok(Incoming::Single(request)) if request.method == Monitor::NAME => {
                match rpc::params::<NoParams>(request.params) {
                    Err(error) => Some(rpc::failure(request.id.as_ref(), &error)),
                    Ok(NoParams {}) => {
                        let notices = context.driver.subscribe();
                        if subscribed(&mut writer, request.id.as_ref()).await {
                            monitor(reader, writer, notices).await;
                        }
                        return;
                    }
                }
            }
            Ok(Incoming::Single(request)) if request.method == KvWatch::NAME => {
                match rpc::params::<WatchParams>(request.params) {
                    Err(error) => Some(rpc::failure(request.id.as_ref(), &error)),
                    Ok(params) => {
                        // Subscribed before answering: no change between the two is missed.
                        let notices = context.driver.subscribe();
                        if subscribed(&mut writer, request.id.as_ref()).await {
                            store::watch(&context, params, reader, writer, notices).await;
                        }
                        return;
                    }
                }
            }
            Ok(Incoming::Single(request)) if request.method == Query::NAME => {
                let result = messaging::query(&context, request.params, &mut writer).await;
                request.id.map(|id| rpc::answer(&id, result))
            }
            Ok(Incoming::Single(request)) if request.method == Send::NAME => {
                let result = match rpc::params(request.params) {
                    Ok(params) => messaging::send(&context, params, Some(&mut writer)).await,
                    Err(error) => Err(error),
                };
                request.id.map(|id| rpc::answer(&id, result))
            }
            Ok(Incoming::Single(request)) => {
                let result = methods::call(&context, &request.method, request.params).await;
                request.id.map(|id| rpc::answer(&id, result))
            }
        };
        if let Some(answer) = answer {
            if write_line(&mut writer, &answer).await.is_err() {
                return;
            }
        }
    }
}

/// Waits until the client hangs up (anything it writes is ignored).
pub(crate) async fn hung_up(reader: &mut BufReader<tokio::net::unix::OwnedReadHalf>) {
    let mut ignored = [0u8; 1024];
    loop {
        match reader.read(&mut ignored).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Answers a subscription request `id` with `{"subscribed": true}` (nothing for a
/// notification); `false` if the client is gone.
async fn subscribed(writer: &mut OwnedWriteHalf, id: Option<&serde_json::Value>) -> bool {
    match id {
        Some(id) => write_line(writer, &rpc::answer(id, Ok(Subscribed::YES)))
            .await
            .is_ok(),
        None => true,
    }
}

/// Streams notices until the client hangs up.
async fn monitor(
    mut reader: BufReader<tokio::net::unix::OwnedReadHalf>,
    mut writer: OwnedWriteHalf,
    mut notices: broadcast::Receiver<Notice>,
) {
    let mut ignored = [0u8; 1024];
    loop {
        let line = tokio::select! {
            read = reader.read(&mut ignored) => match read {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            },
            notice = notices.recv() => match notice {
                Ok(notice) => rpc::notification(Monitor::NOTIFICATION, notice),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    rpc::notification(Monitor::NOTIFICATION, Notice::Lagged { missed })
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        if write_line(&mut writer, &line).await.is_err() {
            return;
        }
    }
}
