//! Real `cnspr` processes on loopback for the daemon tests: each device has its own home
//! directory under a temporary root, listens on 127.0.0.1 with a port of the kernel's
//! choosing, and is driven through the CLI exactly as a person would.
#![allow(dead_code)]

pub mod lab;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long any awaited condition may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(40);

static NEXT_ROOT: AtomicUsize = AtomicUsize::new(0);

/// A temporary directory removed on drop, unless a test failed: then it stays, with the
/// daemons' logs, and its path is printed.
pub struct Root(pub PathBuf);

impl Root {
    pub fn new() -> Self {
        let n = NEXT_ROOT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("cnspr-t{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("temp root");
        Self(path)
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept for a look: {}", self.0.display());
            return;
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn cnspr_binary() -> &'static str {
    env!("CARGO_BIN_EXE_cnspr")
}

/// Waits for `condition`, failing with `what` after [`DEADLINE`].
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < DEADLINE, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One device: a home directory and, while running, its daemon.
pub struct Device {
    pub name: String,
    pub home: PathBuf,
    child: Option<Child>,
    /// The UDP address of the first start, kept on restarts as a device with a configured
    /// port would (peers find it where they last saw it).
    address: Option<String>,
    /// The network namespace its daemon runs in (a [`lab::Lab`]'s); `None`: this one.
    pub netns: Option<String>,
}

impl Device {
    /// A device with an identity, not running.
    pub fn new(root: &Root, name: &str) -> Self {
        let device = Self {
            name: name.to_owned(),
            home: root.0.join(name),
            child: None,
            address: None,
            netns: None,
        };
        let output = device.run(&["init", "--name", name]);
        assert!(output.status.success(), "init {name}: {}", stderr(&output));
        device
    }

    /// A device started and answering.
    pub fn started(root: &Root, name: &str) -> Self {
        let mut device = Self::new(root, name);
        device.start();
        device
    }

    /// Starts the daemon on loopback IPv4 (on the port of its first start) and waits until
    /// its control socket answers.
    pub fn start(&mut self) {
        let address = self.address.clone().unwrap_or_else(|| "127.0.0.1:0".to_owned());
        self.start_on(&[&address]);
        if self.address.is_none() {
            let interfaces = self.json(&["interfaces"]);
            self.address = interfaces["listening"][0].as_str().map(str::to_owned);
        }
    }

    /// Starts the daemon listening on `addresses` and waits until it answers.
    pub fn start_on(&mut self, addresses: &[&str]) {
        let listen: Vec<&str> = addresses.iter().flat_map(|a| ["--listen", *a]).collect();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.home.join("daemon.log"))
            .expect("log file");
        let mut command = match &self.netns {
            None => Command::new(cnspr_binary()),
            Some(ns) => {
                let mut inside = Command::new("ip");
                inside.args(["netns", "exec", ns, cnspr_binary()]);
                inside
            }
        };
        let child = command
            .arg("--home")
            .arg(&self.home)
            .arg("serve")
            .args(&listen)
            .env("RUST_LOG", "debug,fjall=debug,lsm_tree=info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("cnspr serve starts");
        self.child = Some(child);
        wait_until(&format!("{} answers", self.name), || {
            self.run(&["status"]).status.success()
        });
    }

    /// The lines of `file` in the device's home (none if it does not exist yet): what
    /// the tests' handlers note.
    pub fn lines_of(&self, file: &str) -> Vec<String> {
        std::fs::read_to_string(self.home.join(file))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Runs `cnspr --home HOME ARGS`.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(cnspr_binary())
            .arg("--home")
            .arg(&self.home)
            .args(args)
            .output()
            .expect("cnspr runs")
    }

    /// Runs `cnspr --home HOME ARGS` with `input` on its standard input (a megabyte is more
    /// than one command-line argument may hold).
    pub fn run_with_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        let mut child = Command::new(cnspr_binary())
            .arg("--home")
            .arg(&self.home)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cnspr runs");
        child
            .stdin
            .take()
            .expect("piped")
            .write_all(input)
            .expect("stdin");
        child.wait_with_output().expect("cnspr ends")
    }

    /// Runs a command with `--json` and returns its output, which must be a success.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut with_json = vec!["--json"];
        with_json.extend_from_slice(args);
        let output = self.run(&with_json);
        assert!(
            output.status.success(),
            "{} {args:?} failed: {}",
            self.name,
            stderr(&output)
        );
        serde_json::from_slice(&output.stdout).expect("--json prints JSON")
    }

    pub fn id(&self) -> String {
        self.json(&["id"])["id"].as_str().expect("id").to_owned()
    }

    /// `members` as (name → member) rows.
    pub fn members(&self) -> Vec<Value> {
        self.json(&["members"])["members"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// What this device's `members` says of `other` (its row; `null` when not listed).
    pub fn member_view(&self, other: &Device) -> Value {
        let id = other.id();
        self.members()
            .into_iter()
            .find(|m| m["id"] == id.as_str())
            .unwrap_or_default()
    }

    /// The state this device shows for the device called `name`, if listed.
    pub fn state_of(&self, name: &str) -> Option<String> {
        self.members()
            .into_iter()
            .find(|m| m["name"] == name)
            .and_then(|m| m["state"].as_str().map(str::to_owned))
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends a signal by name (`KILL`, `STOP`, `CONT`, `TERM`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits for the daemon process to end.
    pub fn wait_exit(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }

    /// The control socket.
    pub fn socket(&self) -> PathBuf {
        self.home.join("cnspr.sock")
    }

    pub fn home(&self) -> &Path {
        &self.home
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether the tests run as root (network namespaces, mounts).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `joiner` joins the mesh of `inviter`.
pub fn pair(inviter: &Device, joiner: &Device) {
    let token = inviter.json(&["invite"])["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let joined = joiner.run(&["join", &token]);
    assert!(joined.status.success(), "join: {}", stderr(&joined));
}

/// Started devices, all paired through the first.
pub fn mesh(root: &Root, names: &[&str]) -> Vec<Device> {
    let devices: Vec<Device> = names.iter().map(|n| Device::started(root, n)).collect();
    for joiner in &devices[1..] {
        pair(&devices[0], joiner);
    }
    wait_all_active(&devices);
    devices
}

/// Waits until every device shows every other `active` with an RTT.
pub fn wait_all_active(devices: &[Device]) {
    wait_until("every device shows every other active with an RTT", || {
        devices.iter().all(|d| {
            let members = d.members();
            members.len() == devices.len()
                && members
                    .iter()
                    .filter(|m| m["self"] == false)
                    .all(|m| m["state"] == "active" && m["rtt_ms"].is_number() && m["name"].is_string())
        })
    });
}

/// A raw connection to a daemon's control socket, one JSON line each way.
pub struct Connection {
    /// The daemon's lines.
    pub reader: BufReader<UnixStream>,
    /// Ours.
    pub writer: UnixStream,
}

impl Connection {
    /// Connects to `device`'s socket; reads give up after [`DEADLINE`].
    pub fn open(device: &Device) -> Self {
        let stream = UnixStream::connect(device.socket()).expect("connects");
        stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
        Self {
            writer: stream.try_clone().expect("clone"),
            reader: BufReader::new(stream),
        }
    }

    /// Writes one line.
    pub fn send(&mut self, line: &str) {
        self.writer.write_all(line.as_bytes()).expect("writes");
        self.writer.write_all(b"\n").expect("writes");
    }

    /// The next line as JSON; `None` once the daemon hung up.
    pub fn read(&mut self) -> Option<Value> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(serde_json::from_str(&line).expect("the daemon writes JSON lines")),
        }
    }

    /// Writes one line and reads the next.
    pub fn ask(&mut self, line: &str) -> Value {
        self.send(line);
        self.read().expect("an answer")
    }
}
