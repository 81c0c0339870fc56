//! Messages, events, queries and handlers with real processes: handlers run once per
//! message with the documented stdin and environment, across restarts and absences.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Stdio;

use support::{mesh, stderr, wait_until, Device, Root};

/// Installs an executable handler script at `relative` under the device's handler dir.
fn handler(device: &Device, relative: &str, script: &str) -> PathBuf {
    let path = device.home.join("handlers").join(relative);
    std::fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
    std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).expect("write handler");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// A handler that appends one line per run to `DEVICE_HOME/runs`: the event, tag,
/// origin name, own name and stdin.
fn recorder(device: &Device, relative: &str) {
    let log = device.home.join("runs");
    handler(
        device,
        relative,
        &format!(
            "printf '%s %s %s %s %s\\n' \"$CNSPRCY_EVENT\" \"$CNSPRCY_TAG\" \"$CNSPRCY_ORIGIN_NAME\" \"$CNSPRCY_SELF_NAME\" \"$(cat)\" >> {}",
            log.display()
        ),
    );
}

fn runs(device: &Device) -> Vec<String> {
    device.lines_of("runs")
}

fn count(device: &Device, line: &str) -> usize {
    runs(device).iter().filter(|l| *l == line).count()
}

fn succeed(device: &Device, args: &[&str]) {
    let output = device.run(args);
    assert!(
        output.status.success(),
        "{} {args:?}: {}",
        device.name,
        stderr(&output)
    );
}

#[test]
fn an_event_runs_the_handlers_of_every_device_once() {
    let root = Root::new();
    let devices = mesh(&root, &["desk", "laptop", "phone"]);
    for device in &devices {
        recorder(device, "util/notify.sh");
    }
    succeed(&devices[0], &["event", "util.notify", "hello"]);
    for device in &devices {
        let expected = format!("user util.notify desk {} hello", device.name);
        wait_until(&format!("{} ran its handler", device.name), || {
            count(device, &expected) >= 1
        });
    }
    // Barrier: a later event from the same device is handled after the first, so once
    // it ran, a second run of the first would have shown.
    succeed(&devices[0], &["event", "util.notify", "barrier"]);
    for device in &devices {
        let barrier = format!("user util.notify desk {} barrier", device.name);
        wait_until(&format!("{} ran the barrier", device.name), || {
            count(device, &barrier) == 1
        });
        assert_eq!(
            count(device, &format!("user util.notify desk {} hello", device.name)),
            1
        );
    }
}

#[test]
fn a_message_to_a_stopped_device_is_handled_once_after_it_starts() {
    let root = Root::new();
    let mut devices = mesh(&root, &["desk", "laptop"]);
    recorder(&devices[1], "test.log.sh");
    succeed(&devices[1], &["stop"]);
    devices[1].wait_exit();
    succeed(
        &devices[0],
        &["send", "laptop", "test.log", "while you were away", "--no-wait"],
    );
    let expected = "user test.log desk laptop while you were away";
    devices[1].start();
    wait_until("laptop handled the queued message", || {
        count(&devices[1], expected) == 1
    });
    // Restarts of both sides, then a barrier message: still handled once.
    for device in devices.iter_mut() {
        succeed(device, &["stop"]);
        device.wait_exit();
        device.start();
    }
    succeed(&devices[0], &["send", "laptop", "test.log", "barrier"]);
    wait_until("the barrier arrived", || {
        count(&devices[1], "user test.log desk laptop barrier") == 1
    });
    assert_eq!(count(&devices[1], expected), 1);
}

#[test]
fn a_query_gathers_answers_and_reports_a_stopped_device() {
    let root = Root::new();
    let mut devices = mesh(&root, &["desk", "laptop", "phone", "tablet"]);
    for device in &devices[1..3] {
        handler(
            device,
            "who.sh",
            "echo \"I am $CNSPRCY_SELF_NAME, asked $(cat) by $CNSPRCY_ORIGIN_NAME\"",
        );
    }
    devices[3].signal("KILL");
    devices[3].wait_exit();
    wait_until("desk sees tablet unreachable", || {
        devices[0].state_of("tablet").as_deref() == Some("unreachable")
    });
    let output = devices[0].run(&["query", "who", "?", "--timeout", "3s"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("laptop: I am laptop, asked ? by desk"), "{text}");
    assert!(text.contains("phone: I am phone, asked ? by desk"), "{text}");
    assert!(text.contains("tablet: (not reachable)"), "{text}");
}

/// A device that restarts while its handler works on a query lost the question: the
/// asker reports it as failed for that query, with the reason, rather than as silent.
#[test]
fn a_query_reports_a_device_that_restarted_before_answering_as_failed() {
    let root = Root::new();
    let mut devices = mesh(&root, &["desk", "laptop"]);
    let started = devices[1].home.join("query-started");
    handler(
        &devices[1],
        "slow.sh",
        &format!("touch {}\nsleep 5\necho late", started.display()),
    );
    let asking = std::process::Command::new(support::cnspr_binary())
        .arg("--home")
        .arg(&devices[0].home)
        .args(["query", "slow", "--timeout", "8s", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("query starts");
    wait_until("the laptop's handler works on the query", || started.exists());
    devices[1].signal("KILL");
    devices[1].wait_exit();
    devices[1].start();
    let output = asking.wait_with_output().expect("query ends");
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8_lossy(&output.stdout);
    let done: serde_json::Value = text
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find_map(|value| value.get("done").cloned())
        .unwrap_or_else(|| panic!("a final result: {text}"));
    assert_eq!(done["answers"], 0, "{done}");
    assert_eq!(done["failed"][0]["name"], "laptop", "{done}");
    assert_eq!(done["failed"][0]["reason"], "restarted", "{done}");
    assert_eq!(done["no_answer"], serde_json::json!([]), "{done}");
}

#[test]
fn a_megabyte_of_binary_arrives_intact() {
    let root = Root::new();
    let devices = mesh(&root, &["desk", "laptop"]);
    let received = devices[1].home.join("received");
    handler(
        &devices[1],
        "sync.file.send.py",
        &format!("cat > {}", received.display()),
    );
    let payload: Vec<u8> = (0..(1u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let output = devices[0].run_with_stdin(&["send", "laptop", "sync.file.send", "-"], &payload);
    assert!(output.status.success(), "{}", stderr(&output));
    wait_until("the handler wrote the whole payload", || {
        std::fs::metadata(&received).is_ok_and(|m| m.len() == payload.len() as u64)
    });
    assert!(
        std::fs::read(&received).expect("read") == payload,
        "the bytes are intact"
    );
}

#[test]
fn a_send_that_asks_for_progress_hears_how_far_it_is_until_delivered() {
    let root = Root::new();
    let devices = mesh(&root, &["desk", "laptop"]);
    // The receiver is paused: the chunks go out and wait for acknowledgements.
    devices[1].signal("STOP");
    let mut connection = support::Connection::open(&devices[0]);
    let payload = "x".repeat(512 << 10);
    connection.send(
        &serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "send",
            "params": {"peer": "laptop", "tag": "big", "message": payload, "progress": true}})
        .to_string(),
    );
    let first = connection.read().expect("a progress notification");
    assert_eq!(first["method"], "send.progress", "{first}");
    let total = first["params"]["bytes"].as_u64().expect("bytes");
    assert!(total > payload.len() as u64, "{first}");
    assert!(
        first["params"]["bytes_acknowledged"].as_u64() < Some(total),
        "{first}"
    );
    devices[1].signal("CONT");
    let mut acknowledged = 0;
    let answer = loop {
        let line = connection.read().expect("the answer");
        if line["method"] != "send.progress" {
            break line;
        }
        let now = line["params"]["bytes_acknowledged"].as_u64().expect("a count");
        assert!(now >= acknowledged && now <= total, "{line}");
        acknowledged = now;
    };
    assert_eq!(answer["id"], 1, "{answer}");
    assert_eq!(answer["result"]["delivered"], true, "{answer}");
    // Without `progress`, and from the command line when stderr is not a terminal, the
    // answer alone.
    let mut plain = support::Connection::open(&devices[0]);
    let answer = plain.ask(
        &serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "send",
            "params": {"peer": "laptop", "tag": "small", "message": "hi"}})
        .to_string(),
    );
    assert_eq!(answer["result"]["delivered"], true, "{answer}");
    let output = devices[0].run(&["send", "laptop", "small", "hello"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(output.stderr.is_empty(), "{}", stderr(&output));
}

#[test]
fn a_hanging_handler_is_killed_at_its_timeout_and_the_daemon_carries_on() {
    let root = Root::new();
    let mut desk = Device::new(&root, "desk");
    std::fs::write(
        desk.home.join("config.toml"),
        "[limits]\nhandler_timeout_secs = 1\n",
    )
    .expect("config");
    handler(&desk, "hang.sh", "sleep 60");
    handler(&desk, "loud.sh", "head -c 5000000 /dev/zero; echo done >&2");
    desk.start();
    let hung = desk.json(&["handlers", "test", "hang"]);
    let run = &hung["runs"][0];
    assert_eq!(run["timed_out"], true, "{hung}");
    assert!(
        run["duration_ms"].as_u64().is_some_and(|ms| ms < 10_000),
        "{hung}"
    );
    let loud = desk.json(&["handlers", "test", "loud"]);
    assert_eq!(loud["runs"][0]["exit_code"], 0, "{loud}");
    assert_eq!(loud["runs"][0]["stdout_truncated"], true, "{loud}");
    assert!(desk.run(&["status"]).status.success());
}

#[test]
fn the_example_tree_and_daemon_and_peer_handlers() {
    let root = Root::new();
    let desk = Device::new(&root, "desk");
    let example = [
        "util/clipboard/set.sh",
        "util/notify.py",
        "media.mpd",
        "#testing/daemon.#notify.py",
        "#testing/peer/new_address.sh",
        "#testing/@laptop/test.log.sh",
        "#testing/@laptop/peer.seen.#log.sh",
        "sync.file.send.py",
    ];
    for path in example {
        recorder(&desk, path);
    }
    let not_executable = desk.home.join("handlers/notes.txt");
    std::fs::write(&not_executable, "not a handler").expect("write");
    let mut devices = vec![desk];
    devices[0].start();
    let listed = devices[0].json(&["handlers"]);
    let takes: Vec<(String, String, String)> = listed["handlers"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|h| {
            let text = |k: &str| h[k].as_str().unwrap_or("-").to_owned();
            (text("handler"), text("takes"), text("device"))
        })
        .collect();
    let expect = |path: &str, what: &str, device: &str| (path.to_owned(), what.to_owned(), device.to_owned());
    for entry in [
        expect("util/clipboard/set.sh", "util.clipboard.set", "-"),
        expect("util/notify.py", "util.notify", "-"),
        expect("media.mpd", "media.mpd", "-"),
        expect("#testing/daemon.#notify.py", "-", "-"),
        expect("#testing/peer/new_address.sh", "new_address", "-"),
        expect("#testing/@laptop/test.log.sh", "test.log", "laptop"),
        expect("#testing/@laptop/peer.seen.#log.sh", "seen", "laptop"),
        expect("sync.file.send.py", "sync.file.send", "-"),
    ] {
        assert!(takes.contains(&entry), "{entry:?} not in {takes:?}");
    }
    assert_eq!(takes.len(), 8, "notes.txt is not executable");
    wait_until("the daemon.start handler ran", || {
        count(&devices[0], "daemon daemon.start desk desk ") == 1
    });
    let laptop = Device::started(&root, "laptop");
    let phone = Device::started(&root, "phone");
    support::pair(&devices[0], &laptop);
    support::pair(&devices[0], &phone);
    devices.push(laptop);
    devices.push(phone);
    support::wait_all_active(&devices);
    wait_until("peer.seen ran for laptop only", || {
        count(&devices[0], "peer peer.seen laptop desk ") == 1
    });
    // test.log only from laptop.
    succeed(&devices[2], &["send", "desk", "test.log", "from phone"]);
    succeed(&devices[1], &["send", "desk", "test.log", "from laptop"]);
    wait_until("test.log ran for laptop", || {
        count(&devices[0], "user test.log laptop desk from laptop") == 1
    });
    assert_eq!(count(&devices[0], "user test.log phone desk from phone"), 0);
    assert!(runs(&devices[0])
        .iter()
        .all(|l| !l.starts_with("peer peer.seen phone")));
    // Handlers added while running take effect at once.
    recorder(&devices[0], "late/arrival.sh");
    succeed(&devices[1], &["send", "desk", "late.arrival", "new"]);
    wait_until("the new handler ran", || {
        count(&devices[0], "user late.arrival laptop desk new") == 1
    });
}

#[test]
fn bad_tags_and_oversized_payloads_are_refused_plainly() {
    let root = Root::new();
    let devices = mesh(&root, &["desk", "laptop"]);
    for (args, says) in [
        (&["event", "daemon.start", "x"][..], "reserved"),
        (&["event", "a..b", "x"], "empty word"),
        (&["send", "laptop", "no/slash", "x"], "not allowed"),
        (&["send", "nobody", "util.notify", "x"], "no device"),
    ] {
        let output = devices[0].run(args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let message = stderr(&output);
        assert!(
            message.contains(says) && message.lines().count() == 1,
            "{args:?}: {message}"
        );
    }
    // Through stdin: a megabyte is more than one command-line argument may hold.
    let oversized = vec![b'x'; (1 << 20) + 1];
    let output = devices[0].run_with_stdin(&["event", "big", "-"], &oversized);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("over the limit"), "{}", stderr(&output));
}
