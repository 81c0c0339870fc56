//! Handler runs survive a crash: runs owed to messages and events are durable, so a
//! receiver killed while its handlers are busy starts each owed run exactly once after its
//! restart, and reports the one that was running instead of repeating it.

mod support;

use std::os::unix::fs::PermissionsExt;

use support::{mesh, wait_until, Device, Root};

/// A handler of `tag` that takes a second: it notes `start PAYLOAD`, sleeps, then notes
/// `end PAYLOAD`, in `DEVICE_HOME/runs`.
fn slow_handler(device: &Device, tag: &str) {
    let dir = device.home.join("handlers");
    std::fs::create_dir_all(&dir).expect("handler dir");
    let path = dir.join(format!("{tag}.sh"));
    let runs = device.home.join("runs");
    let script = format!(
        "#!/bin/sh\np=$(cat)\necho \"start $p\" >> {runs}\nsleep 1\necho \"end $p\" >> {runs}\n",
        runs = runs.display()
    );
    std::fs::write(&path, script).expect("write handler");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

fn runs(device: &Device) -> Vec<String> {
    device.lines_of("runs")
}

/// Publishes a `slow` event.
fn publish(sender: &Device, payload: &str) {
    let published = sender.run(&["event", "slow", payload]);
    assert!(published.status.success(), "{}", support::stderr(&published));
}

/// Sends a `slow` message to the receiver and waits until it is delivered.
fn send_and_wait(sender: &Device, payload: &str) {
    let sent = sender.run(&["send", "receiver", "slow", payload]);
    assert!(sent.status.success(), "{}", support::stderr(&sent));
}

/// Sends a `slow` message to the receiver without waiting (it may stay in the outbox).
fn send_queued(sender: &Device, payload: &str) {
    let sent = sender.run(&["send", "--no-wait", "receiver", "slow", payload]);
    assert!(sent.status.success(), "{}", support::stderr(&sent));
}

fn count(lines: &[String], line: &str) -> usize {
    lines.iter().filter(|l| *l == line).count()
}

/// Restarts `device` with a run queue of `per_origin` messages and events per origin.
fn restart_with_queue_bound(devices: &mut [Device], index: usize, per_origin: usize) {
    std::fs::write(
        devices[index].home.join("config.toml"),
        format!("[limits]\nhandler_queue_per_origin = {per_origin}\n"),
    )
    .expect("config");
    devices[index].signal("TERM");
    devices[index].wait_exit();
    devices[index].start();
    support::wait_all_active(devices);
}

/// How the queue of [`crash_mid_queue`]'s receiver is set up.
#[derive(Clone, Copy)]
enum Queue {
    /// The default bounds, ten short payloads: all of them wait in the receiver's queue.
    Default,
    /// Two per origin, payloads of three chunks: most wait at the sender, some refused
    /// with their first chunks at the receiver when it dies.
    Full,
}

/// Ten messages or events for a busy handler, the receiver killed while the second runs:
/// after its restart every one has started exactly once, in order, and the interrupted one
/// is reported and not repeated.
fn crash_mid_queue(queue: Queue, send: impl Fn(&Device, &str)) {
    let root = Root::new();
    let mut devices = mesh(&root, &["sender", "receiver"]);
    let pad = match queue {
        Queue::Default => 0,
        Queue::Full => {
            restart_with_queue_bound(&mut devices, 1, 2);
            3000
        }
    };
    slow_handler(&devices[1], "slow");
    let payloads: Vec<String> = (0..10).map(|i| format!("m{i}{}", "x".repeat(pad))).collect();
    let line = |what: &str, i: usize| format!("{what} {}", payloads[i]);
    for payload in &payloads {
        send(&devices[0], payload);
    }
    wait_until("the second run started", || {
        count(&runs(&devices[1]), &line("start", 1)) == 1
    });
    devices[1].signal("KILL");
    devices[1].wait_exit();
    devices[1].start();
    wait_until("every owed run started", || {
        let lines = runs(&devices[1]);
        payloads.iter().all(|p| count(&lines, &format!("start {p}")) >= 1)
            && count(&lines, &line("end", 9)) == 1
    });
    let lines = runs(&devices[1]);
    for payload in &payloads {
        assert_eq!(
            count(&lines, &format!("start {payload}")),
            1,
            "{payload} started once: {lines:?}"
        );
    }
    let starts: Vec<&String> = lines.iter().filter(|l| l.starts_with("start ")).collect();
    let expected: Vec<String> = payloads.iter().map(|p| format!("start {p}")).collect();
    assert_eq!(starts, expected.iter().collect::<Vec<_>>(), "in order");
    assert_eq!(count(&lines, &line("end", 0)), 1);
    let log = std::fs::read_to_string(devices[1].home.join("daemon.log")).expect("log");
    assert!(
        log.contains("not run again"),
        "the interrupted run is reported: {log}"
    );
    let status = devices[1].json(&["status"]);
    assert_eq!(status["handler_runs"]["queued"], 0);
    assert_eq!(status["handler_runs"]["running"], 0);
    assert_eq!(status["handler_runs"]["interrupted"], 1, "{status}");
    assert_eq!(
        count(&lines, &line("end", 1)),
        0,
        "the interrupted run died with its daemon"
    );
}

#[test]
fn events_queued_behind_a_busy_handler_survive_kill_9() {
    crash_mid_queue(Queue::Default, publish);
}

#[test]
fn messages_queued_behind_a_busy_handler_survive_kill_9() {
    crash_mid_queue(Queue::Default, send_and_wait);
}

/// A receiver whose run queue holds two messages or events per origin, and eight for a
/// busy handler at once (each `pad` bytes longer than its name, so that it can take
/// several chunks): the queue never holds more than its bound, what it refuses stays
/// with the sender and comes later, and every one runs exactly once, in order.
fn full_queue_holds_and_delivers_later(pad: usize, send: impl Fn(&Device, &str)) {
    let root = Root::new();
    let mut devices = mesh(&root, &["sender", "receiver"]);
    restart_with_queue_bound(&mut devices, 1, 2);
    slow_handler(&devices[1], "slow");
    let payloads: Vec<String> = (0..8).map(|i| format!("m{i}{}", "x".repeat(pad))).collect();
    for payload in &payloads {
        send(&devices[0], payload);
    }
    let last_end = format!("end {}", payloads[7]);
    let mut most_held = 0;
    wait_until("every run started and ended", || {
        let status = devices[1].json(&["status"]);
        let held = status["handler_runs"]["queued"].as_u64().unwrap_or(0)
            + status["handler_runs"]["running"].as_u64().unwrap_or(0);
        most_held = most_held.max(held);
        count(&runs(&devices[1]), &last_end) == 1
    });
    assert!(
        most_held <= 2,
        "the queue held {most_held} runs, over its bound of 2"
    );
    let lines = runs(&devices[1]);
    let starts: Vec<&String> = lines.iter().filter(|l| l.starts_with("start ")).collect();
    let expected: Vec<String> = payloads.iter().map(|p| format!("start {p}")).collect();
    assert_eq!(starts, expected.iter().collect::<Vec<_>>(), "each once, in order");
    let refused = devices[1].json(&["status"])["handler_runs"]["refused"].as_u64();
    assert!(
        refused.is_some_and(|n| n > 0),
        "the full queue refused offers: {refused:?}"
    );
}

#[test]
fn a_full_queue_holds_events_at_their_senders_until_there_is_room() {
    full_queue_holds_and_delivers_later(0, publish);
}

#[test]
fn a_full_queue_holds_messages_in_the_senders_outbox_until_there_is_room() {
    // Three chunks each: a refused message keeps its first chunks at the receiver.
    full_queue_holds_and_delivers_later(3000, send_queued);
}

#[test]
fn messages_held_at_the_sender_by_a_full_queue_survive_kill_9_of_the_receiver() {
    crash_mid_queue(Queue::Full, send_queued);
}

#[test]
fn events_held_at_the_sender_by_a_full_queue_survive_kill_9_of_the_receiver() {
    crash_mid_queue(Queue::Full, publish);
}

/// Twenty `kill -9` of the receiver at random moments while events stream in: no event's
/// handler starts twice, and every event is handled; at most the runs reported as
/// interrupted may have been cut before their first line.
#[test]
fn twenty_kills_at_random_moments_repeat_nothing_and_lose_nothing() {
    let root = Root::new();
    let mut devices = mesh(&root, &["sender", "receiver"]);
    let dir = devices[1].home.join("handlers");
    std::fs::create_dir_all(&dir).expect("handler dir");
    let path = dir.join("quick.sh");
    let runs_file = devices[1].home.join("runs");
    let script = format!(
        "#!/bin/sh\np=$(cat)\necho \"start $p\" >> {runs}\nsleep 0.2\necho \"end $p\" >> {runs}\n",
        runs = runs_file.display()
    );
    std::fs::write(&path, script).expect("write handler");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    // A fixed generator: the kill moments differ from cycle to cycle, the same in every
    // run of the test.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut random_millis = |max: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % max
    };
    let mut payloads = Vec::new();
    for cycle in 0..20 {
        for burst in 0..3 {
            let payload = format!("c{cycle}b{burst}");
            let published = devices[0].run(&["event", "quick", &payload]);
            assert!(published.status.success());
            payloads.push(payload);
        }
        // The kill lands anywhere in the bursts' runs, or between them.
        std::thread::sleep(std::time::Duration::from_millis(random_millis(700)));
        devices[1].signal("KILL");
        devices[1].wait_exit();
        devices[1].start();
    }
    let started = |lines: &[String], payload: &str| count(lines, &format!("start {payload}"));
    wait_until("every owed run started or was reported", || {
        let status = devices[1].json(&["status"]);
        let idle = status["handler_runs"]["queued"] == 0 && status["handler_runs"]["running"] == 0;
        let lines = runs(&devices[1]);
        idle && started(&lines, "c19b2") == 1
    });
    let lines = runs(&devices[1]);
    let log = std::fs::read_to_string(devices[1].home.join("daemon.log")).expect("log");
    let interrupted = log.matches("not run again").count();
    let (mut never, mut cut) = (0, 0);
    for payload in &payloads {
        let n = started(&lines, payload);
        assert!(n <= 1, "{payload} started {n} times");
        never += usize::from(n == 0);
        // Started and never ended: killed with its daemon, so it must be one of the runs
        // reported interrupted.
        cut += usize::from(n == 1 && count(&lines, &format!("end {payload}")) == 0);
    }
    eprintln!(
        "{} events, {never} never started, {cut} cut short, {interrupted} runs reported interrupted",
        payloads.len()
    );
    assert!(
        never + cut <= interrupted,
        "{never} events never started and {cut} cut short, but {interrupted} runs reported interrupted"
    );
}
