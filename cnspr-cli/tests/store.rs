//! The replicated store with real processes: writes reach every device, writes made apart
//! converge with the conflict visible and one winner everywhere, deletes propagate, and an
//! acknowledged write survives `kill -9`; the roster is a namespace of the store.

mod support;

use support::{mesh, stderr, wait_until, Connection, Device, Root};

fn get(device: &Device, key: &str) -> Option<String> {
    let output = device.run(&["kv", "get", key]);
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

fn put(device: &Device, key: &str, value: &str) {
    let output = device.run(&["kv", "put", key, value]);
    assert!(output.status.success(), "{}: {}", device.name, stderr(&output));
}

fn stop(device: &mut Device) {
    let output = device.run(&["stop"]);
    assert!(output.status.success(), "{}", stderr(&output));
    device.wait_exit();
}

#[test]
fn a_put_on_one_device_is_read_on_the_others() {
    let root = Root::new();
    let devices = mesh(&root, &["desk", "laptop", "phone"]);
    put(&devices[0], "greeting", "hello");
    for device in &devices[1..] {
        wait_until(&format!("{} reads the value", device.name), || {
            get(device, "greeting").as_deref() == Some("hello")
        });
    }
    let listed = devices[2].json(&["kv", "ls"]);
    assert_eq!(listed["keys"][0]["key"], "greeting");
    // status counts the key, the roster's three and its mesh secret, the three address
    // records (each device's own, replicated), and the database's files.
    wait_until("the phone holds every device's address record", || {
        devices[2].json(&["kv", "ls", "_addr/"])["keys"]
            .as_array()
            .map(Vec::len)
            == Some(3)
    });
    let store = &devices[2].json(&["status"])["store"];
    assert_eq!(store["keys"], 8, "{store}");
    assert!(store["bytes_on_disk"].as_u64().is_some_and(|b| b > 0), "{store}");
    // A delete propagates, and the key is gone everywhere.
    let deleted = devices[1].run(&["kv", "del", "greeting"]);
    assert!(deleted.status.success());
    for device in &devices {
        wait_until(&format!("{} no longer has the key", device.name), || {
            get(device, "greeting").is_none()
        });
    }
    let missing = devices[0].run(&["kv", "get", "greeting"]);
    assert_eq!(missing.status.code(), Some(1));
    // The roster is data in the store (three devices and the mesh secret): listed when
    // asked for, never writable.
    let roster = devices[2].json(&["kv", "ls", "_roster/"]);
    assert_eq!(roster["keys"].as_array().map(Vec::len), Some(4), "{roster}");
    // Nor are the address records, nor any key of the mesh's own.
    for forged in ["_roster/anything", "_addr/anything"] {
        let refused = devices[0].run(&["kv", "put", forged, "x"]);
        assert_eq!(refused.status.code(), Some(1), "{forged}");
        assert!(
            stderr(&refused).contains("belong to the mesh"),
            "{}",
            stderr(&refused)
        );
    }
}

#[test]
fn writes_made_apart_converge_with_the_conflict_visible_and_the_same_winner() {
    let root = Root::new();
    let mut devices = mesh(&root, &["desk", "laptop", "phone"]);
    stop(&mut devices[2]);
    stop(&mut devices[1]);
    put(&devices[0], "k", "written on desk");
    stop(&mut devices[0]);
    devices[1].start();
    put(&devices[1], "k", "written on laptop");
    devices[0].start();
    devices[2].start();
    support::wait_all_active(&devices);
    let all_values = |device: &Device| -> Vec<String> {
        let read = device.json(&["kv", "get", "k", "--all"]);
        let mut values: Vec<String> = read["values"]
            .as_array()
            .map(|v| {
                v.iter()
                    .filter_map(|x| x["value"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        values.sort();
        values
    };
    for device in &devices {
        wait_until(&format!("{} holds both concurrent values", device.name), || {
            all_values(device) == vec!["written on desk".to_owned(), "written on laptop".to_owned()]
        });
        assert_eq!(device.json(&["kv", "get", "k"])["conflict"], true);
    }
    let winners: Vec<Option<String>> = devices.iter().map(|d| get(d, "k")).collect();
    assert!(
        winners.iter().all(|w| w == &winners[0] && w.is_some()),
        "{winners:?}"
    );
    let conflict_note = devices[0].run(&["kv", "get", "k"]);
    assert!(
        stderr(&conflict_note).contains("concurrent writes"),
        "{}",
        stderr(&conflict_note)
    );
}

#[test]
fn acknowledged_puts_survive_kill_9_twenty_times() {
    let root = Root::new();
    let mut device = Device::started(&root, "desk");
    for round in 0..20 {
        for i in 0..5 {
            put(
                &device,
                &format!("round{round}/key{i}"),
                &format!("value {round}.{i}"),
            );
        }
        device.signal("KILL");
        device.wait_exit();
        device.start();
    }
    let keys = device.json(&["kv", "ls"])["keys"].as_array().map(Vec::len);
    assert_eq!(keys, Some(100));
    assert_eq!(get(&device, "round19/key4").as_deref(), Some("value 19.4"));
    assert_eq!(get(&device, "round0/key0").as_deref(), Some("value 0.0"));
}

/// A value of exactly the documented limit (1 MiB), text so that `--json` shows it whole,
/// different for each `seed`.
fn largest_value(seed: u8) -> Vec<u8> {
    (0..1usize << 20)
        .map(|i| b'a' + ((i / 4096 + usize::from(seed)) % 26) as u8)
        .collect()
}

fn put_large(device: &Device, key: &str, value: &[u8]) {
    let output = device.run_with_stdin(&["kv", "put", key, "-"], value);
    assert!(output.status.success(), "{}: {}", device.name, stderr(&output));
}

/// Every value `device` holds for `key`, concurrent ones included, in order.
fn all_values(device: &Device, key: &str) -> Vec<Vec<u8>> {
    let output = device.run(&["--json", "kv", "get", key, "--all"]);
    if !output.status.success() {
        return Vec::new();
    }
    let read: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let mut values: Vec<Vec<u8>> = read["values"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v["value"].as_str().map(|s| s.as_bytes().to_vec()))
        .collect();
    values.sort();
    values
}

#[test]
fn values_and_keys_of_the_documented_limits_replicate_catch_up_and_survive_kill_9() {
    let root = Root::new();
    let mut devices = mesh(&root, &["desk", "laptop", "phone"]);
    let long_key = "k".repeat(1024);
    let first = largest_value(0);
    put_large(&devices[0], &long_key, &first);
    for device in &devices[1..] {
        wait_until(&format!("{} reads the 1 MiB value", device.name), || {
            all_values(device, &long_key) == vec![first.clone()]
        });
    }
    // Two 1 MiB siblings, written apart; the phone, away for both, catches up.
    stop(&mut devices[2]);
    stop(&mut devices[1]);
    let (desk_value, laptop_value) = (largest_value(1), largest_value(2));
    put_large(&devices[0], "both", &desk_value);
    stop(&mut devices[0]);
    devices[1].start();
    put_large(&devices[1], "both", &laptop_value);
    devices[0].start();
    devices[2].start();
    let mut siblings = vec![desk_value, laptop_value];
    siblings.sort();
    for device in &devices {
        wait_until(&format!("{} holds both 1 MiB siblings", device.name), || {
            all_values(device, "both") == siblings
        });
    }
    devices[2].signal("KILL");
    devices[2].wait_exit();
    devices[2].start();
    assert_eq!(all_values(&devices[2], "both"), siblings);
    assert_eq!(all_values(&devices[2], &long_key), vec![first]);
}

/// Reads `count` `kv.watch` notifications from a `cnspr --json kv watch` process.
fn watch_lines(device: &Device, prefix: &str, cursor: u64, count: usize) -> Vec<serde_json::Value> {
    use std::io::{BufRead, BufReader};
    let mut watch = std::process::Command::new(support::cnspr_binary())
        .arg("--home")
        .arg(&device.home)
        .args(["--json", "kv", "watch", prefix, "--cursor", &cursor.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("watch runs");
    let stdout = watch.stdout.take().expect("piped");
    let lines: Vec<serde_json::Value> = BufReader::new(stdout)
        .lines()
        .take(count)
        .map(|l| serde_json::from_str(&l.expect("a line")).expect("JSON"))
        .collect();
    let _ = watch.kill();
    let _ = watch.wait();
    lines
}

#[test]
fn watch_streams_local_and_remote_changes_and_resumes_from_a_cursor() {
    let root = Root::new();
    let devices = mesh(&root, &["desk", "laptop"]);
    put(&devices[0], "notes/a", "1");
    put(&devices[1], "other", "x");
    put(&devices[1], "notes/b", "2");
    wait_until("desk has laptop's note", || get(&devices[0], "notes/b").is_some());
    let first = watch_lines(&devices[0], "notes/", 0, 2);
    let keys: Vec<&str> = first.iter().filter_map(|c| c["key"].as_str()).collect();
    assert_eq!(keys, vec!["notes/a", "notes/b"]);
    let resume_at = first[1]["cursor"].as_u64().expect("a cursor");
    // Changes while nobody watched: one local, one remote, one delete.
    put(&devices[0], "notes/c", "3");
    put(&devices[1], "notes/d", "4");
    assert!(devices[1].run(&["kv", "del", "notes/a"]).status.success());
    wait_until("desk saw laptop's changes", || {
        get(&devices[0], "notes/d").is_some() && get(&devices[0], "notes/a").is_none()
    });
    let resumed = watch_lines(&devices[0], "notes/", resume_at, 3);
    let seen: Vec<(String, bool)> = resumed
        .iter()
        .map(|c| {
            (
                c["key"].as_str().unwrap_or_default().to_owned(),
                c["deleted"] == true,
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("notes/c".into(), false),
            ("notes/d".into(), false),
            ("notes/a".into(), true)
        ],
        "every change after the cursor, once, in order"
    );
    assert!(resumed.iter().all(|c| c["cursor"].as_u64() > Some(resume_at)));
}

/// `kv get KEY ARGS` run on a pseudo-terminal (util-linux `script`): what the terminal got.
fn get_on_a_terminal(device: &Device, key: &str, args: &[&str]) -> Vec<u8> {
    let command = format!(
        "{} --home {} kv get {key} {}",
        support::cnspr_binary(),
        device.home().display(),
        args.join(" ")
    );
    let output = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .output()
        .expect("script runs");
    assert!(output.status.success(), "{}", stderr(&output));
    output.stdout
}

#[test]
fn a_value_ends_its_line_on_a_terminal_and_stays_exact_when_piped_or_raw() {
    let root = Root::new();
    let device = Device::started(&root, "desk");
    put(&device, "k", "abc");
    // The terminal turns "\n" into "\r\n".
    assert_eq!(get_on_a_terminal(&device, "k", &[]), b"abc\r\n");
    assert_eq!(get_on_a_terminal(&device, "k", &["--raw"]), b"abc");
    assert_eq!(
        get(&device, "k").as_deref(),
        Some("abc"),
        "piped: the bytes alone"
    );
}

#[test]
fn a_reader_that_goes_away_ends_the_command_quietly() {
    let root = Root::new();
    let device = Device::started(&root, "desk");
    // More than a pipe holds, so the command is still writing when its reader leaves.
    let value = vec![b'v'; 256 << 10];
    let output = device.run_with_stdin(&["kv", "put", "big", "-"], &value);
    assert!(output.status.success(), "{}", stderr(&output));
    let mut get = std::process::Command::new(support::cnspr_binary())
        .arg("--home")
        .arg(device.home())
        .args(["kv", "get", "big"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("cnspr runs");
    let mut first = [0u8; 16];
    std::io::Read::read_exact(get.stdout.as_mut().expect("piped"), &mut first).expect("reads");
    drop(get.stdout.take());
    let output = get.wait_with_output().expect("ends");
    assert!(
        output.status.success(),
        "{:?}: {}",
        output.status,
        stderr(&output)
    );
    assert_eq!(stderr(&output), "", "no panic, no error: the reader simply left");
}

#[test]
fn status_shows_a_catch_up_after_a_time_apart_until_its_last_part() {
    let root = Root::new();
    let mut devices = mesh(&root, &["desk", "laptop"]);
    let desk_id = devices[0].id();
    stop(&mut devices[1]);
    // 24 MiB written while the laptop is away: an answer of at least 24 parts.
    for i in 0..24 {
        put_large(&devices[0], &format!("photos/{i:02}"), &largest_value(i));
    }
    devices[1].start();
    let mut laptop = Connection::open(&devices[1]);
    let status = r#"{"jsonrpc":"2.0","id":1,"method":"status"}"#;
    // Asked without pause: the whole answer takes a few seconds.
    let started = std::time::Instant::now();
    let mut seen = None;
    while seen.is_none() {
        assert!(
            started.elapsed() < support::DEADLINE,
            "status never showed the catch-up"
        );
        let answer = laptop.ask(status);
        if let Some(first) = answer["result"]["catching_up"].get(0) {
            seen = Some(first.clone());
        } else {
            assert!(
                get(&devices[1], "photos/23").is_none(),
                "the laptop caught up before status showed it: {answer}"
            );
        }
    }
    // Freeze the desk mid-answer: the laptop shows where it stands.
    devices[0].signal("STOP");
    let first = seen.expect("seen");
    let held = laptop.ask(status)["result"]["catching_up"][0].clone();
    for progress in [&first, &held] {
        assert_eq!(progress["name"], "desk", "{progress}");
        assert_eq!(progress["peer"], desk_id, "{progress}");
        let (received, parts) = (progress["parts_received"].as_u64(), progress["parts"].as_u64());
        assert!(parts.is_some_and(|p| p >= 24), "{progress}");
        assert!(received.is_some_and(|r| r >= 1 && Some(r) < parts), "{progress}");
        assert!(progress["changes"].as_u64() >= received, "{progress}");
    }
    assert!(held["parts_received"].as_u64() >= first["parts_received"].as_u64());
    let text = String::from_utf8_lossy(&devices[1].run(&["status"]).stdout).into_owned();
    let line = format!(
        "from desk: {} of {} parts, {} changes",
        held["parts_received"], held["parts"], held["changes"]
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("catching up") && l.ends_with(&line)),
        "{text}"
    );
    devices[0].signal("CONT");
    wait_until("the answer is complete and no longer shown", || {
        laptop.ask(status)["result"]["catching_up"] == serde_json::json!([])
    });
    let photos = devices[1].json(&["kv", "ls", "photos/"])["keys"]
        .as_array()
        .map(Vec::len);
    assert_eq!(photos, Some(24), "the laptop holds every photo");
}
