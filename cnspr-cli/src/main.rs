//! The `cnspr` command: `cnspr serve` runs the daemon; every other command that needs the
//! daemon is a client of its control socket. `init`, `id`, `config` and `completions`
//! work from the files alone; `demo` runs a whole mesh on loopback.
#![forbid(unsafe_code)]

#[macro_use]
mod output;

mod client;
mod demo;
mod payload;
mod show;
mod table;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand};
use cnspr_proto::duration::parse_duration;
use cnspr_runtime::api::handlers::TestParams;
use cnspr_runtime::api::members::{Identity, RemoveParams};
use cnspr_runtime::api::messaging::{EventParams, QueryParams, SendParams};
use cnspr_runtime::api::pairing::{InviteParams, JoinParams};
use cnspr_runtime::api::payload::{Message, StoredValue};
use cnspr_runtime::api::store::{DeleteParams, GetParams, ListParams, PutParams, WatchParams};
use cnspr_runtime::api::{
    Event, HandlersList, HandlersTest, Interfaces, Invite, Join, KvDelete, KvGet, KvList, KvPut, Members,
    Netcheck, NoParams, Remove, Status, Stop,
};
use cnspr_runtime::paths::Paths;

use client::Client;

/// Your own devices, one private encrypted mesh.
#[derive(Parser)]
#[command(name = "cnspr", version, about, propagate_version = true)]
struct Cli {
    /// Keep everything of this device under DIR (config, data, socket, handlers).
    #[arg(long, global = true, value_name = "DIR", env = "CNSPRCY_HOME")]
    home: Option<PathBuf>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create this device's identity (refuses if one exists).
    Init {
        /// The device's name (default: the host name).
        #[arg(long)]
        name: Option<String>,
    },
    /// Run the daemon in the foreground.
    Serve {
        /// UDP address to listen on (repeatable; default: port 3030 on all IPv4 and IPv6 addresses).
        #[arg(long, value_name = "ADDR:PORT")]
        listen: Vec<SocketAddr>,
    },
    /// This device's name and device ID.
    Id,
    /// Print a single-use pairing token.
    Invite {
        /// How long the token stays valid (e.g. 10m, 1h).
        #[arg(long, value_parser = parse_duration)]
        ttl: Option<Duration>,
        /// Also draw the token as a QR code.
        #[arg(long)]
        qr: bool,
    },
    /// Pair this device with the mesh of the device that made TOKEN.
    Join {
        /// The token `cnspr invite` printed on the other device.
        token: String,
    },
    /// Every device of the mesh: name, ID, state, address, RTT, last seen.
    Members,
    /// Round trips through the mesh connection to PEER.
    Ping {
        /// A device name, device ID or unique prefix of one.
        peer: String,
        /// How many round trips.
        #[arg(long, default_value_t = 4)]
        count: u32,
    },
    /// This daemon: uptime, version, counts.
    Status,
    /// The addresses the daemon listens on.
    Interfaces,
    /// What this device sees of its network: addresses, IPv6, NAT, relaying, and why each
    /// peer is reached the way it is.
    Netcheck,
    /// Message one peer (MESSAGE, or stdin when it is `-` or missing); waits for delivery.
    Send {
        /// A device name, device ID or unique prefix of one.
        peer: String,
        /// What kind of message (`util.clipboard.set`).
        tag: String,
        /// The message; `-` or nothing reads stdin.
        message: Option<String>,
        /// Return once the message is durably queued, without waiting for delivery.
        #[arg(long)]
        no_wait: bool,
    },
    /// Message every device of the mesh, this one included.
    Event {
        /// What kind of event.
        tag: String,
        /// The message; `-` or nothing reads stdin.
        message: Option<String>,
    },
    /// Ask peers' handlers; print each answer as it comes.
    Query {
        /// What kind of question.
        tag: String,
        /// The question (default: empty).
        message: Option<String>,
        /// Ask only this peer (repeatable; default: every peer).
        #[arg(long = "peer")]
        peers: Vec<String>,
        /// How long to wait for answers.
        #[arg(long, default_value = "5s", value_parser = parse_duration)]
        timeout: Duration,
    },
    /// List handlers and what they take, or run them by hand.
    Handlers {
        #[command(subcommand)]
        action: Option<HandlersAction>,
    },
    /// The replicated store: every device holds it in full, writable offline.
    Kv {
        #[command(subcommand)]
        action: KvAction,
    },
    /// Revoke a device: every device drops it and refuses it from then on.
    Remove {
        /// A device name, device ID or unique prefix of one.
        peer: String,
    },
    /// Stop the daemon cleanly (peers learn it left).
    Stop,
    /// Stream what the daemon sees.
    Monitor,
    /// Print the effective configuration.
    Config,
    /// Print shell completions.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the JSON Schema of the control socket's API (docs/api.schema.json).
    #[command(hide = true)]
    ApiSchema,
    /// Print the manual page, cnspr.1, in roff (the Debian package ships it).
    #[command(hide = true)]
    ManPage,
    /// Run several devices on loopback, paired, until Ctrl-C.
    Demo {
        /// How many devices.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(2..=16))]
        devices: u16,
    },
}

#[derive(Subcommand)]
enum KvAction {
    /// Write a value (VALUE, or stdin when it is `-` or missing); returns once durable.
    Put {
        /// The key (up to 1 KiB of UTF-8).
        key: String,
        /// The value (up to 1 MiB).
        value: Option<String>,
    },
    /// Read a key: the winning value; `--all` shows every concurrent value.
    Get {
        /// The key.
        key: String,
        /// Every concurrent value, with who wrote it and when.
        #[arg(long)]
        all: bool,
        /// The value's bytes exactly, even on a terminal (which otherwise gets a
        /// newline after a value that lacks one).
        #[arg(long, conflicts_with = "all")]
        raw: bool,
    },
    /// Delete a key everywhere.
    Del {
        /// The key.
        key: String,
    },
    /// Keys under a prefix, with their values.
    Ls {
        /// The prefix (default: every key).
        prefix: Option<String>,
    },
    /// Stream every change under a prefix, local or remote; resume after a cursor.
    Watch {
        /// The prefix (default: every key).
        prefix: Option<String>,
        /// Start after this change number (each change printed carries one; 0: every
        /// key's latest change first).
        #[arg(long, default_value_t = 0)]
        cursor: u64,
    },
}

#[derive(Subcommand)]
enum HandlersAction {
    /// Run the handlers a message with TAG would run, now, and show how they ended.
    Test {
        /// The tag.
        tag: String,
        /// The message (default: empty).
        message: Option<String>,
        /// Pretend it comes from this peer (default: this device).
        #[arg(long)]
        from: Option<String>,
    },
}

/// A failed command: one sentence for standard error, exit status 1.
#[derive(Debug)]
pub struct CliError(String);

impl CliError {
    /// A failure with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl<E: std::error::Error + 'static> From<E> for CliError {
    fn from(error: E) -> Self {
        // The reader of our output went away (`| head`): done, quietly.
        let as_io = (&error as &dyn std::error::Error).downcast_ref::<std::io::Error>();
        if as_io.is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) {
            std::process::exit(0);
        }
        Self(error.to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError(message)) => {
            eprintln!("cnspr: {message}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn kv(json: bool, client: &mut Client, action: KvAction) -> Result<(), CliError> {
    match action {
        KvAction::Put { key, value } => {
            let value = StoredValue::new(payload::bytes(value.as_deref(), true)?);
            let result = client.call::<KvPut>(&PutParams { key, value })?;
            show::sentence(json, &result, "Stored.")
        }
        KvAction::Get { key, all, raw } => {
            show::kv_get(json, raw, &client.call::<KvGet>(&GetParams { key, all })?)
        }
        KvAction::Del { key } => {
            let result = client.call::<KvDelete>(&DeleteParams { key })?;
            show::sentence(json, &result, "Deleted.")
        }
        KvAction::Watch { prefix, cursor } => {
            let prefix = prefix.unwrap_or_default();
            show::kv_watch(json, client, &WatchParams { prefix, cursor })
        }
        KvAction::Ls { prefix } => {
            let prefix = prefix.unwrap_or_default();
            show::kv_list(json, &client.call::<KvList>(&ListParams { prefix })?)
        }
    }
}

/// A message argument (or stdin) as the payload of a request.
fn message(argument: Option<&str>, stdin_when_missing: bool) -> Result<Message, CliError> {
    Ok(Message::new(payload::bytes(argument, stdin_when_missing)?))
}

fn run(cli: Cli) -> Result<(), CliError> {
    let paths = Paths::resolve(cli.home.as_deref())?;
    let json = cli.json;
    let connect = || Client::connect(&paths.socket);
    match cli.command {
        Command::Init { name } => {
            let (id, name) = cnspr_runtime::daemon::init(&paths, name.as_deref())?;
            show::identity(json, &Identity { id, name }, "Created this device:")?;
        }
        Command::Serve { listen } => runtime()?.block_on(cnspr_runtime::daemon::serve(&paths, &listen))?,
        Command::Id => {
            let (id, name) = cnspr_runtime::daemon::identity(&paths)?;
            show::identity(json, &Identity { id, name }, "")?;
        }
        Command::Invite { ttl, qr } => {
            let params = InviteParams {
                ttl_secs: ttl.map(|ttl| ttl.as_secs().max(1)),
            };
            show::invite(json, qr, &connect()?.call::<Invite>(&params)?)?;
        }
        Command::Join { token } => show::joined(json, &connect()?.call::<Join>(&JoinParams { token })?)?,
        Command::Members => show::members(json, &connect()?.call::<Members>(&NoParams {})?)?,
        Command::Ping { peer, count } => show::ping(json, &mut connect()?, &peer, count)?,
        Command::Status => show::status(json, &connect()?.call::<Status>(&NoParams {})?)?,
        Command::Interfaces => show::interfaces(json, &connect()?.call::<Interfaces>(&NoParams {})?)?,
        Command::Netcheck => show::netcheck(json, &connect()?.call::<Netcheck>(&NoParams {})?)?,
        Command::Send {
            peer,
            tag,
            message: argument,
            no_wait,
        } => {
            let params = SendParams {
                peer,
                tag,
                payload: message(argument.as_deref(), true)?,
                wait: !no_wait,
                // How far it is, on a terminal, while it is delivered.
                progress: !no_wait && std::io::IsTerminal::is_terminal(&std::io::stderr()),
            };
            show::sent(json, &show::send(&mut connect()?, &params)?)?;
        }
        Command::Event {
            tag,
            message: argument,
        } => {
            let params = EventParams {
                tag,
                payload: message(argument.as_deref(), true)?,
            };
            show::sentence(json, &connect()?.call::<Event>(&params)?, "Event published.")?;
        }
        Command::Query {
            tag,
            message: argument,
            peers,
            timeout,
        } => {
            let params = QueryParams {
                tag,
                payload: message(argument.as_deref(), false)?,
                peers,
                timeout_ms: Some(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX)),
            };
            show::query(json, &mut connect()?, &params)?;
        }
        Command::Handlers { action: None } => {
            show::handlers(json, &connect()?.call::<HandlersList>(&NoParams {})?)?
        }
        Command::Handlers {
            action:
                Some(HandlersAction::Test {
                    tag,
                    message: argument,
                    from,
                }),
        } => {
            let params = TestParams {
                tag,
                payload: message(argument.as_deref(), false)?,
                from,
            };
            show::handler_runs(json, &connect()?.call::<HandlersTest>(&params)?)?;
        }
        Command::Kv { action } => kv(json, &mut connect()?, action)?,
        Command::Remove { peer } => show::removed(json, &connect()?.call::<Remove>(&RemoveParams { peer })?)?,
        Command::Stop => {
            let result = connect()?.call::<Stop>(&NoParams {})?;
            show::sentence(json, &result, "The daemon is stopping.")?;
        }
        Command::Monitor => show::monitor(json, connect()?)?,
        Command::Config => {
            let mut config = cnspr_runtime::config::Config::load(&paths.config_file)?;
            // The name this device goes by: the configured one, else the one it was
            // given at `init` (kept with its identity), else the host name.
            if let Ok((_, name)) = cnspr_runtime::daemon::identity(&paths) {
                config.name = Some(name);
            }
            show::config(json, &config)?;
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "cnspr", &mut std::io::stdout());
        }
        Command::ApiSchema => out!("{}", cnspr_runtime::api::schema::schema_text()),
        Command::ManPage => clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?,
        Command::Demo { devices } => demo::run(usize::from(devices))?,
    }
    Ok(())
}
