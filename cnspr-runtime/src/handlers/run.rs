//! Running one handler: a process in its own process group, the payload on stdin, the
//! documented environment, bounded capture of stdout (a query's answer) and of the tail of
//! stderr (for the log), and the whole group killed at the timeout. Nothing a handler does
//! can block or crash the daemon.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use cnspr_proto::identity::DeviceId;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use super::tree::Handler;
use crate::api::handlers::HandlerRun;

/// Bytes of stderr kept (the end of it).
const STDERR_TAIL_BYTES: usize = 2048;
/// How long output may keep flowing after the handler exited (a background child holding
/// the pipe open) before the daemon stops reading.
const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// What a handler is run for: its stdin and environment.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// `user`, `query`, `peer` or `daemon` (`CNSPRCY_EVENT`).
    pub event: &'static str,
    /// The tag (`daemon.start`, `peer.seen` for those families).
    pub tag: String,
    /// Who it comes from.
    pub origin: DeviceId,
    /// Its name.
    pub origin_name: String,
    /// This device.
    pub own: DeviceId,
    /// Its name.
    pub own_name: String,
    /// For peer events: the peer, its state and address.
    pub peer: Option<(DeviceId, String, Option<SocketAddr>)>,
    /// The payload.
    pub stdin: Vec<u8>,
}

/// Bounds of one run.
#[derive(Debug, Clone, Copy)]
pub struct RunLimits {
    /// Killed after this long.
    pub timeout: Duration,
    /// Stdout bytes kept (the rest is read and dropped).
    pub stdout_bytes_max: usize,
}

/// How a run ended: what `monitor` and `handlers.test` report, and its stdout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Handler, exit status, timeout, error, duration, stderr tail.
    pub run: HandlerRun,
    /// Its stdout (up to the limit; `run.stdout_truncated` says whether there was more).
    pub stdout: Vec<u8>,
}

impl Outcome {
    /// A run of `handler` that did not start, and why.
    pub fn not_run(handler: &str, why: &str) -> Self {
        Outcome {
            run: HandlerRun {
                duration_ms: 0,
                error: Some(why.to_owned()),
                exit_code: None,
                handler: handler.to_owned(),
                stderr_tail: String::new(),
                stdout_truncated: false,
                timed_out: false,
            },
            stdout: Vec::new(),
        }
    }

    /// Exited with status 0.
    pub fn succeeded(&self) -> bool {
        self.run.exit_code == Some(0) && !self.run.timed_out
    }
}

fn environment(invocation: &Invocation) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("CNSPRCY_EVENT", invocation.event.to_owned()),
        ("CNSPRCY_TAG", invocation.tag.clone()),
        ("CNSPRCY_ORIGIN", invocation.origin.to_string()),
        ("CNSPRCY_ORIGIN_NAME", invocation.origin_name.clone()),
        ("CNSPRCY_SELF", invocation.own.to_string()),
        ("CNSPRCY_SELF_NAME", invocation.own_name.clone()),
    ];
    if let Some((peer, state, address)) = &invocation.peer {
        env.push(("CNSPRCY_PEER", peer.to_string()));
        env.push(("CNSPRCY_PEER_STATE", state.clone()));
        env.push((
            "CNSPRCY_PEER_ADDRESS",
            address.map(|a| a.to_string()).unwrap_or_default(),
        ));
    }
    env
}

/// Reads everything, keeping the first `max` bytes; returns them and whether more came.
async fn read_head(mut source: impl AsyncRead + Unpin, max: usize) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut buffer = [0u8; 8192];
    let mut truncated = false;
    while let Ok(n) = source.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        let room = max.saturating_sub(kept.len());
        kept.extend_from_slice(&buffer[..n.min(room)]);
        truncated |= n > room;
    }
    (kept, truncated)
}

/// Reads everything, keeping the last `max` bytes.
async fn read_tail(mut source: impl AsyncRead + Unpin, max: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buffer = [0u8; 8192];
    while let Ok(n) = source.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&buffer[..n]);
        if kept.len() > max {
            kept.drain(..kept.len() - max);
        }
    }
    kept
}

fn kill_group(pid: Option<u32>) {
    let group = pid
        .and_then(|p| i32::try_from(p).ok())
        .and_then(rustix::process::Pid::from_raw);
    if let Some(group) = group {
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    }
}

/// Runs `handler` for `invocation`; `groups`, if given, notes its process group while it
/// runs.
pub async fn run(
    handler: &Handler,
    invocation: &Invocation,
    limits: RunLimits,
    groups: Option<&super::groups::Groups>,
) -> Outcome {
    let started = Instant::now();
    let mut outcome = Outcome::not_run(&handler.relative, "");
    outcome.run.error = None;
    let mut command = Command::new(&handler.path);
    command
        .envs(environment(invocation))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(dir) = handler.path.parent() {
        command.current_dir(dir);
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            outcome.run.error = Some(error.to_string());
            return outcome;
        }
    };
    let pid = child.id();
    if let (Some(groups), Some(pid)) = (groups, pid) {
        groups.started(pid);
    }
    if let Some(mut stdin) = child.stdin.take() {
        let payload = invocation.stdin.clone();
        // A handler that does not read its stdin is fine: the write just fails.
        tokio::spawn(async move {
            let _ = stdin.write_all(&payload).await;
        });
    }
    let stdout = child
        .stdout
        .take()
        .map(|out| tokio::spawn(read_head(out, limits.stdout_bytes_max)));
    let stderr = child
        .stderr
        .take()
        .map(|err| tokio::spawn(read_tail(err, STDERR_TAIL_BYTES)));
    match tokio::time::timeout(limits.timeout, child.wait()).await {
        Ok(Ok(status)) => outcome.run.exit_code = status.code(),
        Ok(Err(error)) => outcome.run.error = Some(error.to_string()),
        Err(_) => {
            outcome.run.timed_out = true;
            kill_group(pid);
            let _ = child.wait().await;
        }
    }
    // Children the handler left behind die with it: nothing outlives its run.
    kill_group(pid);
    if let (Some(groups), Some(pid)) = (groups, pid) {
        groups.ended(pid);
    }
    if let Some(stdout) = stdout {
        if let Ok(Ok((bytes, truncated))) = tokio::time::timeout(DRAIN_GRACE, stdout).await {
            outcome.stdout = bytes;
            outcome.run.stdout_truncated = truncated;
        }
    }
    if let Some(stderr) = stderr {
        if let Ok(Ok(bytes)) = tokio::time::timeout(DRAIN_GRACE, stderr).await {
            outcome.run.stderr_tail = String::from_utf8_lossy(&bytes).into_owned();
        }
    }
    outcome.run.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    outcome
}
