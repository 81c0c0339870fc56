//! `cnspr monitor` reads the daemon's notices into the API's one notice type and shows
//! each in one line, every device by its label (`name (SHORTID)`).

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Instant;

use support::{cnspr_binary, pair, Device, Root, DEADLINE};

#[test]
fn monitor_shows_a_pairing_as_it_happens() {
    let root = Root::new();
    let desk = Device::started(&root, "desk");
    let mut monitor = Command::new(cnspr_binary())
        .arg("--home")
        .arg(&desk.home)
        .arg("monitor")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("monitor runs");
    // It says so on stderr once it is subscribed: nothing after that is missed.
    let mut said = String::new();
    BufReader::new(monitor.stderr.take().expect("piped"))
        .read_line(&mut said)
        .expect("reads");
    assert_eq!(said, "Watching the daemon; Ctrl-C to stop.\n");
    let (lines, received) = mpsc::channel();
    let stdout = monitor.stdout.take().expect("piped");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let laptop = Device::started(&root, "laptop");
    pair(&desk, &laptop);
    let laptop_id = laptop.id();
    let short = &laptop_id[..7];
    let started = Instant::now();
    let mut seen = Vec::new();
    let joined = format!("{short} joined the mesh");
    // Its name may not have reached the mesh yet when it turns active: then its label is
    // the short ID alone.
    let labels = [format!("laptop ({short}): "), format!("{short}: ")];
    let shown = |seen: &[String]| {
        seen.iter().any(|l| l == &joined)
            && seen
                .iter()
                .any(|l| labels.iter().any(|label| l.starts_with(label.as_str())) && l.ends_with("-> active"))
    };
    while !shown(&seen) {
        let left = DEADLINE.saturating_sub(started.elapsed());
        match received.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("monitor did not show the pairing; it showed {seen:?}"),
        }
    }
    let _ = monitor.kill();
    let _ = monitor.wait();
}
