//! `cnspr demo`: several devices on loopback under a temporary directory, paired with
//! invites, shown with `members`; runs until Ctrl-C, then stops them and cleans up.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cnspr_runtime::api::pairing::{InviteParams, JoinParams};
use cnspr_runtime::api::{Invite, Join, Members, NoParams, PeerState, Stop};

use crate::client::Client;
use crate::CliError;

/// How long a daemon may take to start answering.
const START_DEADLINE: Duration = Duration::from_secs(10);
/// How long the devices may take to see each other active.
const ACTIVE_DEADLINE: Duration = Duration::from_secs(15);

struct Device {
    home: PathBuf,
    child: Child,
}

impl Device {
    fn client(&self) -> Result<Client, CliError> {
        Client::connect(&self.home.join("cnspr.sock"))
    }
}

fn cnspr(home: &Path) -> Result<Command, CliError> {
    let mut command = Command::new(std::env::current_exe()?);
    command.arg("--home").arg(home);
    Ok(command)
}

fn start(root: &Path, number: usize) -> Result<Device, CliError> {
    let home = root.join(format!("device-{number}"));
    let name = format!("demo-{number}");
    let init = cnspr(&home)?
        .args(["init", "--name", &name])
        .stdout(Stdio::null())
        .status()?;
    if !init.success() {
        return Err(CliError::new(format!("could not create {name}")));
    }
    let log = std::fs::File::create(root.join(format!("device-{number}.log")))?;
    let child = cnspr(&home)?
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()?;
    let device = Device { home, child };
    let started = Instant::now();
    while device.client().is_err() {
        if started.elapsed() > START_DEADLINE {
            return Err(CliError::new(format!(
                "{name} did not start; see its log in {}",
                root.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(device)
}

fn all_active(device: &Device, expected: usize) -> bool {
    let Ok(members) = device.client().and_then(|mut c| c.call::<Members>(&NoParams {})) else {
        return false;
    };
    members.members.len() == expected
        && members
            .members
            .iter()
            .all(|m| m.state == PeerState::Active && m.name.is_some())
}

/// Runs the demo.
pub fn run(count: usize) -> Result<(), CliError> {
    let root = std::env::temp_dir().join(format!("cnspr-demo-{}", std::process::id()));
    std::fs::create_dir_all(&root)?;
    let mut devices = Vec::new();
    let outcome = (|| {
        for number in 1..=count {
            devices.push(start(&root, number)?);
            eprintln!("started demo-{number}");
        }
        for joiner in &devices[1..] {
            let token = devices[0]
                .client()?
                .call::<Invite>(&InviteParams::default())?
                .token;
            joiner.client()?.call::<Join>(&JoinParams { token })?;
        }
        let started = Instant::now();
        while !devices.iter().all(|d| all_active(d, count)) && started.elapsed() < ACTIVE_DEADLINE {
            std::thread::sleep(Duration::from_millis(100));
        }
        let members = devices[0].client()?.call::<Members>(&NoParams {})?;
        // Before saying how to stop it: a Ctrl-C right after the message must be caught.
        let interrupt = Interrupt::install()?;
        outln!();
        crate::show::members(false, &members)?;
        outln!("\n{count} devices are running under {}.", root.display());
        outln!("Try:  cnspr --home {} members", devices[count - 1].home.display());
        outln!("      cnspr --home {} monitor", devices[0].home.display());
        outln!("Ctrl-C stops them all.");
        interrupt.wait()
    })();
    for device in &mut devices {
        let _ = device.client().and_then(|mut c| c.call::<Stop>(&NoParams {}));
    }
    for device in &mut devices {
        let _ = device.child.wait();
    }
    let _ = std::fs::remove_dir_all(&root);
    outcome
}

/// SIGINT and SIGTERM, caught from the moment it is installed.
struct Interrupt {
    runtime: tokio::runtime::Runtime,
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Interrupt {
    fn install() -> Result<Self, CliError> {
        use tokio::signal::unix::{signal, SignalKind};
        let runtime = crate::runtime()?;
        let (interrupt, terminate) = runtime.block_on(async {
            Ok::<_, std::io::Error>((signal(SignalKind::interrupt())?, signal(SignalKind::terminate())?))
        })?;
        Ok(Self {
            runtime,
            interrupt,
            terminate,
        })
    }

    fn wait(mut self) -> Result<(), CliError> {
        self.runtime.block_on(async {
            tokio::select! {
                _ = self.interrupt.recv() => {}
                _ = self.terminate.recv() => {}
            }
        });
        eprintln!("\nstopping the demo devices");
        Ok(())
    }
}
