//! The process groups of durable handler runs, noted on disk while they run, so that a
//! daemon that was killed (and so could not kill its handlers) kills what is left of them
//! when it starts again: an interrupted run never overlaps the runs that follow it, nor
//! pushes the handlers running at once past `handlers_max`.
//!
//! One file per running group, named by its ID, under `data/handler-groups/`. A group ID
//! the kernel has since given to some other process is left alone: only a process whose
//! environment names this device (`CNSPRCY_SELF`, set for every handler) is killed.

use std::path::{Path, PathBuf};

use cnspr_proto::identity::DeviceId;

/// Where the running groups are noted.
#[derive(Debug, Clone)]
pub struct Groups {
    dir: PathBuf,
}

impl Groups {
    /// The notes under `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join("handler-groups"),
        }
    }

    /// Notes that group `id` runs (best effort: a note that cannot be written only means
    /// the group is not killed after a crash).
    pub fn started(&self, id: u32) {
        if std::fs::create_dir_all(&self.dir).is_ok() {
            let _ = std::fs::write(self.dir.join(id.to_string()), b"");
        }
    }

    /// Group `id` is gone.
    pub fn ended(&self, id: u32) {
        let _ = std::fs::remove_file(self.dir.join(id.to_string()));
    }

    /// Kills the groups a previous run of this daemon left (at start, before any handler
    /// runs); returns how many were still there.
    pub fn reap(&self, own: &DeviceId) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        let marker = format!("CNSPRCY_SELF={own}");
        let mut reaped = 0;
        for entry in entries.flatten() {
            let id = entry.file_name().to_string_lossy().parse::<i32>().ok();
            if let Some(group) = id.and_then(rustix::process::Pid::from_raw) {
                if group_is_ours(group.as_raw_nonzero().get(), &marker) {
                    let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
                    reaped += 1;
                }
            }
            let _ = std::fs::remove_file(entry.path());
        }
        reaped
    }
}

/// Whether some process of group `group` is a handler of this device: its leader, or
/// (when the leader already exited and left children running) any other member.
fn group_is_ours(group: i32, marker: &str) -> bool {
    if ours(group, marker) {
        return true;
    }
    let Ok(processes) = std::fs::read_dir("/proc") else {
        return false;
    };
    processes
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .any(|pid| group_of(pid) == Some(group) && ours(pid, marker))
}

/// The process group of `pid`, from `/proc/PID/stat` (the field after the state; the
/// command name before them may hold spaces and parentheses, so it is skipped from the
/// last `)`).
fn group_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, after_name) = stat.rsplit_once(')')?;
    after_name.split_whitespace().nth(2)?.parse().ok()
}

/// Whether process `pid` is a handler of this device (its environment says so).
fn ours(pid: i32, marker: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|environ| environ.split(|b| *b == 0).any(|var| var == marker.as_bytes()))
        .unwrap_or(false)
}
