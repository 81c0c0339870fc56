//! Fail-stop storage on a real full disk: the device's data directory is a small tmpfs
//! that fills up. No write is acknowledged that is not durable; once the disk is full the
//! daemon says so and refuses writes, keeps serving reads, and takes writes again by
//! itself once there is room (the tmpfs grows), with no restart. After `kill -9` every
//! acknowledged write is there.
//!
//! Mounting needs root: skipped with a message otherwise, and a failure under CI.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::{is_root, stderr, wait_until, Device, Root};

/// Size of the tmpfs at first, and what each cycle adds besides the room a refusal said
/// was missing (the daemon keeps room for its database to rewrite itself).
const START_MIB: u64 = 4;
const GROWTH_MIB: u64 = 3;
/// Full-disk cycles (`bench/full-disk` runs 20 through `CNSPR_FULL_DISK_CYCLES`).
fn cycles() -> u64 {
    std::env::var("CNSPR_FULL_DISK_CYCLES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3)
}
/// Puts tried per cycle before the disk must have filled.
const MAX_PUTS_PER_CYCLE: usize = 200;

/// A tmpfs mounted for the test, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, mib: u64) -> Self {
        std::fs::create_dir_all(at).expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m,mode=0700"), "tmpfs"])
            .arg(at)
            .status()
            .expect("mount runs");
        assert!(status.success(), "mount tmpfs at {}", at.display());
        Self(at.to_owned())
    }

    fn grow_to(&self, mib: u64) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={mib}m")])
            .arg(&self.0)
            .status()
            .expect("mount runs");
        assert!(status.success(), "remount tmpfs at {}", self.0.display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// 64 KiB that do not compress (the database compresses its tables), different for
/// each `n`.
fn value(n: usize) -> Vec<u8> {
    let mut state = (n as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..64 << 10)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u8
        })
        .collect()
}

/// The MiB missing by a refusal's "N bytes free, M needed", rounded up (0 if it does
/// not say).
fn missing_mib(refused: &str) -> u64 {
    let number_before = |word: &str| -> Option<u64> {
        let before = &refused[..refused.find(word)?];
        before.split_whitespace().last()?.parse().ok()
    };
    match (number_before(" bytes free"), number_before(" needed")) {
        (Some(free), Some(needed)) => needed.saturating_sub(free).div_ceil(1 << 20),
        _ => 0,
    }
}

fn disk_state(device: &Device) -> String {
    device.json(&["status"])["disk"]["state"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn a_full_disk_acknowledges_nothing_it_loses_and_recovers_in_process() {
    if !is_root() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the full-disk test needs root (to mount a tmpfs), and CI runs as root"
        );
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    }
    let root = Root::new();
    let tmpfs = Tmpfs::mount(&root.0.join("desk").join("data"), START_MIB);
    let mut device = Device::started(&root, "desk");
    let mut acknowledged: Vec<usize> = Vec::new();
    let mut size = START_MIB;
    let mut n = 0;
    for cycle in 0..cycles() {
        // Fill the disk: puts are acknowledged until one is refused for the disk.
        let mut refused = None;
        for _ in 0..MAX_PUTS_PER_CYCLE {
            n += 1;
            let output = device.run_with_stdin(&["kv", "put", &format!("k{n}"), "-"], &value(n));
            if output.status.success() {
                acknowledged.push(n);
            } else {
                refused = Some(stderr(&output));
                break;
            }
        }
        let refused = refused.unwrap_or_else(|| panic!("cycle {cycle}: the disk never filled"));
        assert!(refused.contains("database failed"), "cycle {cycle}: {refused}");
        assert_eq!(disk_state(&device), "failed");
        // Reads go on while the disk is full.
        let last = *acknowledged.last().expect("some puts were acknowledged");
        let read = device.run(&["kv", "get", &format!("k{last}")]);
        assert!(
            read.status.success() && read.stdout == value(last),
            "cycle {cycle}"
        );
        // Room again, as much as the refusal said was missing and more: the daemon
        // takes writes by itself.
        size += missing_mib(&refused) + GROWTH_MIB;
        tmpfs.grow_to(size);
        wait_until("the database works again", || disk_state(&device) == "ok");
    }
    // Room for the restart: a daemon counts its starts on the disk, and does not start
    // on a full one; replaying the journal may flush it all into tables (the write
    // buffer is 16 MiB), and the background flush may have taken the last growth.
    tmpfs.grow_to(size + 32);
    device.signal("KILL");
    device.wait_exit();
    device.start();
    let listed = device.json(&["kv", "ls"]);
    let keys = listed["keys"].as_array().map_or(0, Vec::len);
    assert!(
        keys >= acknowledged.len(),
        "{keys} keys, {} acknowledged",
        acknowledged.len()
    );
    eprintln!(
        "{} cycles: {} puts acknowledged, {keys} keys after kill -9, final tmpfs {size} MiB",
        cycles(),
        acknowledged.len()
    );
    for n in acknowledged {
        let read = device.run(&["kv", "get", &format!("k{n}")]);
        assert!(read.status.success(), "acknowledged k{n} lost: {}", stderr(&read));
        assert!(read.stdout == value(n), "k{n} has another value");
    }
    drop(device);
    drop(tmpfs);
}
