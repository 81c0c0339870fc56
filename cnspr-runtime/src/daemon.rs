//! `cnspr serve` and `cnspr init`: sets up the device's files, binds the sockets, starts
//! the node task and the control socket, and runs until `stop`, SIGTERM or SIGINT (then
//! says goodbye to the mesh). SIGHUP reloads the configuration: the name and the log
//! filter take effect at once; listen addresses and the profile at the next start.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cnspr_proto::identity::{DeviceId, DeviceKey};
use cnspr_proto::node::NodeConfig;
use cnspr_proto::roster::Roster;
use cnspr_proto::runs::QueueBounds;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, Notify};

use crate::api::Notice;
use crate::config::{Config, ConfigError};
use crate::control::{self, Context};
use crate::driver::{self, NodeSetup};
use crate::durability::Durability;
use crate::handlers::groups::Groups;
use crate::handlers::{Dispatcher, Outcome, RunLimits};
use crate::logging::LogControl;
use crate::paths::Paths;
use crate::port_mapping::PortMapper;
use crate::sockets::Sockets;
use crate::state::{self, SavedRoster, StateError};

/// Why the daemon could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The configuration.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The device's files.
    #[error("{0}")]
    State(#[from] StateError),
    /// Sockets or directories.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Creates this device's identity, named `name` (default: the host name); refuses if it
/// has one.
pub fn init(paths: &Paths, name: Option<&str>) -> Result<(DeviceId, String), DaemonError> {
    paths.create_dirs()?;
    let config = Config::load(&paths.config_file)?;
    let identity = state::create_identity(&paths.data_dir)?;
    let name = name.map_or_else(|| config.device_name(), str::to_owned);
    save_own_entry(paths, &identity, &name)?;
    Ok((identity.device_id(), name))
}

fn save_own_entry(paths: &Paths, identity: &DeviceKey, name: &str) -> Result<(), DaemonError> {
    let mut roster = Roster::new();
    roster.rename(identity.device_id(), name);
    SavedRoster::new(&roster, &Default::default()).save(&paths.data_dir)?;
    Ok(())
}

/// This device's ID and name as stored, without a daemon.
pub fn identity(paths: &Paths) -> Result<(DeviceId, String), DaemonError> {
    let identity = state::load_identity(&paths.data_dir)?;
    let id = identity.device_id();
    let config = Config::load(&paths.config_file)?;
    let saved = SavedRoster::load(&paths.data_dir)?;
    let name = config
        .name
        .clone()
        .or_else(|| {
            saved
                .devices
                .iter()
                .find(|d| d.id == id)
                .map(|d| d.entry.name.clone())
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| config.device_name());
    Ok((id, name))
}

/// Lifts the soft limit on open files to the hard one (as far as 65536): every control
/// client is a file descriptor, and the common default of 1024 is within reach of a busy
/// machine. Best effort.
fn raise_open_files_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    let wanted = limit.maximum.map_or(65_536, |hard| hard.min(65_536));
    if limit.current.is_some_and(|soft| soft < wanted) {
        let raised = Rlimit {
            current: Some(wanted),
            maximum: limit.maximum,
        };
        if let Err(error) = setrlimit(Resource::Nofile, raised) {
            tracing::debug!(%error, "open files limit not raised");
        }
    }
}

fn log_run(outcome: &Outcome) {
    let failed = !outcome.succeeded();
    let run = &outcome.run;
    if failed {
        tracing::warn!(
            handler = run.handler,
            exit = ?run.exit_code,
            timed_out = run.timed_out,
            error = ?run.error,
            duration_ms = run.duration_ms,
            stderr = run.stderr_tail,
            "handler failed"
        );
    } else {
        tracing::info!(
            handler = run.handler,
            duration_ms = run.duration_ms,
            "handler ran"
        );
    }
}

/// Runs the daemon in the foreground until it is stopped.
pub async fn serve(paths: &Paths, listen: &[SocketAddr]) -> Result<(), DaemonError> {
    paths.create_dirs()?;
    let mut config = Config::load(&paths.config_file)?;
    let log = LogControl::init(&config.log);
    raise_open_files_limit();
    let identity = match state::load_identity(&paths.data_dir) {
        Ok(identity) => identity,
        Err(StateError::NoIdentity) => {
            let (id, name) = init(paths, None)?;
            tracing::info!(%id, name, "created this device's identity");
            state::load_identity(&paths.data_dir)?
        }
        Err(error) => return Err(error.into()),
    };
    let (own_id, name) = self::identity(paths)?;
    // Persisted before the core uses it: incarnations must grow across restarts.
    let boot = state::next_boot(&paths.data_dir)?;
    let roster = SavedRoster::load(&paths.data_dir)?;
    let listen = if listen.is_empty() {
        config.listen.clone()
    } else {
        listen.to_vec()
    };
    let sockets = Sockets::bind(&listen)?;
    let listener = control::bind(&paths.socket).await?;
    let mut node_config = NodeConfig::profile(&config.profile).unwrap_or_default();
    node_config.messaging.message_ttl = Duration::from_secs(config.limits.message_ttl_secs);
    node_config.handlers_max = config.limits.handlers_max;
    node_config.nat_keepalive = Duration::from_secs(config.nat_keepalive_secs);
    node_config.relay = config.relay.to_core();
    node_config.handler_queue = QueueBounds {
        per_origin: config.limits.handler_queue_per_origin,
        total: config.limits.handler_queue_max,
    };
    let durability = Arc::new(Durability::open(paths.data_dir.clone()).map_err(std::io::Error::other)?);
    let (finished, mut finished_runs) = mpsc::unbounded_channel();
    let limits = RunLimits {
        timeout: Duration::from_secs(config.limits.handler_timeout_secs),
        stdout_bytes_max: config.limits.query_answer_bytes_max,
    };
    // Handlers a killed daemon left running die before anything else runs.
    let groups = Groups::new(&paths.data_dir);
    let reaped = groups.reap(&own_id);
    if reaped > 0 {
        tracing::warn!(reaped, "killed handlers left running by the daemon's last run");
    }
    let dispatcher = Dispatcher::new(
        paths.handlers_dir.clone(),
        config.limits.handlers_max,
        limits,
        finished,
    )
    .with_groups(groups);
    let setup = NodeSetup {
        config: node_config,
        identity,
        name: name.clone(),
        roster,
        boot,
        data_dir: paths.data_dir.clone(),
        durability: durability.clone(),
        dispatcher: dispatcher.clone(),
        discovery: config.discovery.clone(),
        anchors: config.anchors.clone(),
    };
    let driver = driver::spawn(sockets.clone(), setup)?;
    let reporter = driver.clone();
    tokio::spawn(async move {
        while let Some(outcome) = finished_runs.recv().await {
            log_run(&outcome);
            reporter.notify(Notice::HandlerRun(outcome.run));
        }
    });
    // Only a port the router's LAN can reach is worth mapping: a daemon on loopback alone
    // (every test outside the network lab) asks no gateway anything.
    let ipv4_port = sockets
        .bound()
        .iter()
        .find(|a| a.is_ipv4() && !a.ip().is_loopback())
        .map_or(0, SocketAddr::port);
    let port_mapper = PortMapper::spawn(ipv4_port, config.port_mapping, driver.clone());
    let stop = Arc::new(Notify::new());
    let context = Arc::new(Context {
        driver: driver.clone(),
        started: Instant::now(),
        boot,
        invite_ttl_secs: config.limits.invite_ttl_secs,
        line_bytes_max: config.limits.request_line_bytes_max,
        idle: Duration::from_secs(config.limits.control_idle_secs.max(1)),
        stop: stop.clone(),
        dispatcher,
        durability,
        payload_bytes_max: config.limits.payload_bytes_max,
        anchors: config.anchors.clone(),
        port_mapping: port_mapper.watch(),
    });
    let control_task = tokio::spawn(control::serve(listener, context));
    tracing::info!(id = %own_id, name, listening = ?sockets.bound(), socket = %paths.socket.display(), boot, "cnspr is running");
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut hangup = signal(SignalKind::hangup())?;
    loop {
        tokio::select! {
            () = stop.notified() => break,
            _ = terminate.recv() => break,
            _ = interrupt.recv() => break,
            _ = hangup.recv() => match Config::load(&paths.config_file) {
                Ok(reloaded) => {
                    log.set(&reloaded.log);
                    if let Some(name) = reloaded.name.clone().filter(|n| Some(n) != config.name.as_ref()) {
                        let _ = driver.rename(name).await;
                    }
                    config = reloaded;
                    tracing::info!("configuration reloaded");
                }
                Err(error) => tracing::error!(%error, "configuration not reloaded"),
            },
        }
    }
    tracing::info!("stopping: telling the mesh this device leaves");
    port_mapper.stop().await;
    let _ = driver.leave().await;
    control_task.abort();
    let _ = std::fs::remove_file(&paths.socket);
    Ok(())
}
