//! The command line without a mesh: exit codes, plain errors, files and their modes,
//! completions, configuration.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use support::{cnspr_binary, stderr, Device, Root};

#[test]
fn init_creates_a_private_identity_once() {
    let root = Root::new();
    let device = Device::new(&root, "desk");
    let key_mode = std::fs::metadata(device.home.join("data/device.key"))
        .expect("key")
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600);
    let data_mode = std::fs::metadata(device.home.join("data"))
        .expect("data")
        .permissions()
        .mode();
    assert_eq!(data_mode & 0o777, 0o700);
    let again = device.run(&["init"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("already has an identity"),
        "{}",
        stderr(&again)
    );
    let id = device.json(&["id"]);
    assert_eq!(id["name"], "desk");
    assert!(id["id"].as_str().is_some_and(|s| s.len() == 63));
}

#[test]
fn without_a_daemon_commands_say_so_and_exit_1() {
    let root = Root::new();
    let device = Device::new(&root, "desk");
    for command in [
        &["members"][..],
        &["status"],
        &["invite"],
        &["stop"],
        &["ping", "x"],
    ] {
        let output = device.run(command);
        assert_eq!(output.status.code(), Some(1), "{command:?}");
        let message = stderr(&output);
        assert!(
            message.contains("not running") && message.lines().count() == 1,
            "{message}"
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    let output = Command::new(cnspr_binary())
        .arg("frobnicate")
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    let output = Command::new(cnspr_binary())
        .args(["invite", "--ttl", "soon"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn home_comes_from_the_environment_too() {
    let root = Root::new();
    let device = Device::new(&root, "desk");
    let output = Command::new(cnspr_binary())
        .args(["--json", "id"])
        .env("CNSPRCY_HOME", &device.home)
        .output()
        .expect("runs");
    assert!(output.status.success(), "{}", stderr(&output));
    let id: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(id["name"], "desk");
}

#[test]
fn completions_and_config_print() {
    for shell in ["bash", "zsh", "fish"] {
        let output = Command::new(cnspr_binary())
            .args(["completions", shell])
            .output()
            .expect("runs");
        assert!(output.status.success());
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("invite"),
            "{shell}"
        );
    }
    let root = Root::new();
    // A name that is not the host's: `config` shows the name the device goes by.
    let device = Device::new(&root, "demo-1");
    let config = device.run(&["config"]);
    assert!(config.status.success());
    let text = String::from_utf8_lossy(&config.stdout);
    assert!(
        text.contains("name = \"demo-1\"")
            && text.contains("profile = \"responsive\"")
            && text.contains("handler_timeout_secs = 30")
            && text.contains("control_idle_secs = 300"),
        "{text}"
    );
    std::fs::write(device.home.join("config.toml"), "profle = 1\n").expect("write");
    let broken = device.run(&["config"]);
    assert_eq!(broken.status.code(), Some(1));
    assert!(stderr(&broken).contains("config.toml"), "{}", stderr(&broken));
}

#[test]
fn demo_runs_a_paired_mesh_until_interrupted_and_cleans_up() {
    use std::io::{BufRead, BufReader};
    let mut demo = Command::new(cnspr_binary())
        .args(["demo", "--devices", "3"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("demo starts");
    let stdout = demo.stdout.take().expect("piped");
    let mut lines = BufReader::new(stdout).lines();
    let mut active_rows = 0;
    let root = loop {
        let line = lines
            .next()
            .expect("the demo prints until it is ready")
            .expect("UTF-8");
        if line.contains(" active ") || line.contains(" self ") {
            active_rows += 1;
        }
        if let Some(rest) = line.split(" devices are running under ").nth(1) {
            break std::path::PathBuf::from(rest.trim_end_matches('.'));
        }
    };
    assert_eq!(
        active_rows, 3,
        "the members table shows three devices, all active"
    );
    assert!(root.exists());
    let status = Command::new("kill")
        .args(["-INT", &demo.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = demo.wait().expect("demo exits");
    assert!(exit.success());
    assert!(!root.exists(), "the demo removed its directory");
}

#[test]
fn api_schema_prints_the_checked_in_schema() {
    let output = Command::new(cnspr_binary())
        .arg("api-schema")
        .output()
        .expect("runs");
    assert!(output.status.success(), "{}", stderr(&output));
    let checked_in = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/api.schema.json"))
        .expect("docs/api.schema.json");
    assert!(
        output.stdout == checked_in,
        "`cnspr api-schema` differs from docs/api.schema.json"
    );
    let help = Command::new(cnspr_binary()).arg("--help").output().expect("runs");
    assert!(
        !String::from_utf8_lossy(&help.stdout).contains("api-schema"),
        "a hidden command"
    );
}
