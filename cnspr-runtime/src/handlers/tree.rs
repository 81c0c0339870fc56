//! The handler directory: which executable takes which events, read from its path.
//!
//! - Path components are split at `/`, names into words at `.`; a word starting with `#`
//!   is a comment; the file's extension is dropped when it is a script or program
//!   extension (`set.sh` → `set`, but `media.mpd` keeps `mpd`).
//! - `@NAME` or `@[ID-PREFIX]` restricts the handler to one device: the sender for user
//!   tags, the device the event is about for `peer` events.
//! - The first word chooses the family: `daemon` (then optionally `start`, `stop`,
//!   `active` or `inactive`), `peer` (then optionally `seen`, `new_address` or
//!   `state_changed`), anything else is a user tag that must match the whole tag.
//!
//! The directory is read again for every event, so changes take effect at once.

use std::path::{Path, PathBuf};

use cnspr_proto::identity::DeviceId;
use cnspr_proto::messaging::Tag;

/// Extensions dropped from the file name (script and program suffixes).
const EXTENSIONS: [&str; 17] = [
    "sh", "bash", "zsh", "fish", "py", "rb", "pl", "js", "mjs", "ts", "lua", "php", "tcl", "awk", "exe",
    "bin", "nu",
];
/// Deepest directory nesting walked (a symlink loop ends there).
const MAX_DEPTH: usize = 16;
/// Most handlers taken from one directory tree.
const MAX_HANDLERS: usize = 4096;

/// The daemon's own event states.
pub const DAEMON_STATES: [&str; 4] = ["start", "stop", "active", "inactive"];
/// The kinds of peer event.
pub const PEER_KINDS: [&str; 3] = ["seen", "new_address", "state_changed"];

/// Which device a handler is restricted to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceFilter {
    /// A device name.
    Name(String),
    /// A device ID prefix.
    IdPrefix(String),
}

/// What events a handler takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Family {
    /// The daemon's own events, all or one state.
    Daemon(Option<String>),
    /// Events about peers, all or one kind.
    Peer(Option<String>),
    /// Messages, events and queries with exactly this tag.
    User(Tag),
}

/// One handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handler {
    /// The executable.
    pub path: PathBuf,
    /// Its path relative to the handler directory (how it is shown).
    pub relative: String,
    /// The events it takes.
    pub family: Family,
    /// The device it is restricted to.
    pub device: Option<DeviceFilter>,
}

/// A file that looks like a handler but cannot be one, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// Its relative path.
    pub relative: String,
    /// Why.
    pub reason: String,
}

/// What an event is, for matching.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    /// A daemon state.
    Daemon(&'a str),
    /// A peer event of `kind` about `peer`.
    Peer {
        /// `seen`, `new_address` or `state_changed`.
        kind: &'a str,
        /// The device it is about.
        peer: &'a DeviceId,
        /// Its name.
        name: Option<&'a str>,
    },
    /// A user message, event or query.
    User {
        /// Its tag.
        tag: &'a Tag,
        /// The sender.
        origin: &'a DeviceId,
        /// The sender's name.
        name: Option<&'a str>,
    },
}

impl DeviceFilter {
    fn matches(&self, id: &DeviceId, name: Option<&str>) -> bool {
        match self {
            DeviceFilter::Name(wanted) => name == Some(wanted.as_str()),
            DeviceFilter::IdPrefix(prefix) => id.matches_prefix(prefix),
        }
    }
}

impl Handler {
    /// Whether this handler takes `subject`.
    pub fn takes(&self, subject: &Subject<'_>) -> bool {
        match (&self.family, subject) {
            (Family::Daemon(state), Subject::Daemon(actual)) => state.as_deref().is_none_or(|s| s == *actual),
            (
                Family::Peer(kind),
                Subject::Peer {
                    kind: actual,
                    peer,
                    name,
                },
            ) => {
                kind.as_deref().is_none_or(|k| k == *actual)
                    && self.device.as_ref().is_none_or(|d| d.matches(peer, *name))
            }
            (
                Family::User(tag),
                Subject::User {
                    tag: actual,
                    origin,
                    name,
                },
            ) => tag == *actual && self.device.as_ref().is_none_or(|d| d.matches(origin, *name)),
            _ => false,
        }
    }
}

/// Reads a path (relative to the handler directory) into a handler's filters.
pub fn parse(relative: &str) -> Result<(Family, Option<DeviceFilter>), String> {
    let components: Vec<&str> = relative.split('/').collect();
    let mut words = Vec::new();
    let mut device = None;
    for (i, component) in components.iter().enumerate() {
        let mut parts: Vec<&str> = component.split('.').collect();
        let is_file = i + 1 == components.len();
        if is_file && parts.len() > 1 && parts.last().is_some_and(|ext| EXTENSIONS.contains(ext)) {
            parts.pop();
        }
        for word in parts {
            if word.starts_with('#') {
                continue;
            }
            if let Some(selector) = word.strip_prefix('@') {
                let filter = match selector.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
                    Some(prefix) if !prefix.is_empty() => DeviceFilter::IdPrefix(prefix.to_owned()),
                    Some(_) => return Err("empty device ID prefix in @[...]".into()),
                    None if !selector.is_empty() => DeviceFilter::Name(selector.to_owned()),
                    None => return Err("empty device name after @".into()),
                };
                if device.replace(filter).is_some() {
                    return Err("more than one @ restriction".into());
                }
                continue;
            }
            words.push(word);
        }
    }
    let family = match words.as_slice() {
        [] => return Err("no event words in the path".into()),
        ["daemon"] => Family::Daemon(None),
        ["daemon", state] if DAEMON_STATES.contains(state) => Family::Daemon(Some((*state).to_owned())),
        ["daemon", ..] => return Err(format!("daemon events are {}", DAEMON_STATES.join(", "))),
        ["peer"] => Family::Peer(None),
        ["peer", kind] if PEER_KINDS.contains(kind) => Family::Peer(Some((*kind).to_owned())),
        ["peer", ..] => return Err(format!("peer events are {}", PEER_KINDS.join(", "))),
        user => Family::User(Tag::new(&user.join(".")).map_err(|e| e.to_string())?),
    };
    if device.is_some() && matches!(family, Family::Daemon(_)) {
        return Err("daemon events come from this device; @ does not apply".into());
    }
    Ok((family, device))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The handler at `relative` under `dir`, as [`scan`] would list it, if it is still
/// there: one lookup rather than a walk of the tree (for a run owed to it since it was
/// chosen).
pub fn find(dir: &Path, relative: &str) -> Option<Handler> {
    let components: Vec<&str> = relative.split('/').collect();
    let hidden_or_up = components.iter().any(|c| c.is_empty() || c.starts_with('.'));
    if hidden_or_up || components.len() > MAX_DEPTH + 1 {
        return None;
    }
    let path = dir.join(relative);
    let metadata = std::fs::metadata(&path).ok()?;
    if metadata.is_dir() || !is_executable(&path) {
        return None;
    }
    let (family, device) = parse(relative).ok()?;
    Some(Handler {
        path,
        relative: relative.to_owned(),
        family,
        device,
    })
}

/// Every handler under `dir` (following symbolic links), and the executables whose path
/// does not name events. A missing directory has no handlers.
pub fn scan(dir: &Path) -> (Vec<Handler>, Vec<Rejected>) {
    let mut handlers = Vec::new();
    let mut rejected = Vec::new();
    let mut pending = vec![(dir.to_path_buf(), String::new(), 0usize)];
    while let Some((current, prefix, depth)) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else {
            continue;
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            let relative = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            // `metadata` follows symbolic links: a link to a directory is walked, a link
            // to an executable is a handler with the link's own path as its filters.
            let Ok(metadata) = std::fs::metadata(&path) else {
                continue;
            };
            if metadata.is_dir() {
                if depth < MAX_DEPTH {
                    pending.push((path, relative, depth + 1));
                }
                continue;
            }
            if !is_executable(&path) || handlers.len() >= MAX_HANDLERS {
                continue;
            }
            match parse(&relative) {
                Ok((family, device)) => handlers.push(Handler {
                    path,
                    relative,
                    family,
                    device,
                }),
                Err(reason) => rejected.push(Rejected { relative, reason }),
            }
        }
    }
    handlers.sort_by(|a, b| a.relative.cmp(&b.relative));
    (handlers, rejected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(text: &str) -> Tag {
        Tag::new(text).expect("valid")
    }

    #[test]
    fn find_sees_what_scan_lists_and_nothing_else() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("cnspr-find-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("util")).expect("mkdir");
        for (name, mode) in [("util/notify.sh", 0o755), ("util/plain.txt", 0o644)] {
            std::fs::write(dir.join(name), "#!/bin/sh\n").expect("write");
            std::fs::set_permissions(dir.join(name), std::fs::Permissions::from_mode(mode)).expect("chmod");
        }
        let (listed, _) = scan(&dir);
        let found = find(&dir, "util/notify.sh").expect("a handler");
        assert_eq!(
            listed.iter().map(|h| &h.relative).collect::<Vec<_>>(),
            [&found.relative]
        );
        assert_eq!(
            (found.path.clone(), found.family.clone()),
            (listed[0].path.clone(), listed[0].family.clone())
        );
        for missing in ["util/plain.txt", "util", "util/../util/notify.sh", "gone.sh", ""] {
            assert!(find(&dir, missing).is_none(), "{missing}");
        }
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn the_example_tree() {
        let name = |n: &str| Some(DeviceFilter::Name(n.into()));
        let cases = [
            (
                "util/clipboard/set.sh",
                Family::User(tag("util.clipboard.set")),
                None,
            ),
            ("util/notify.py", Family::User(tag("util.notify")), None),
            ("media.mpd", Family::User(tag("media.mpd")), None),
            ("#testing/daemon.#notify.py", Family::Daemon(None), None),
            (
                "#testing/peer/new_address.sh",
                Family::Peer(Some("new_address".into())),
                None,
            ),
            (
                "#testing/@laptop/test.log.sh",
                Family::User(tag("test.log")),
                name("laptop"),
            ),
            (
                "#testing/@laptop/peer.seen.#log.sh",
                Family::Peer(Some("seen".into())),
                name("laptop"),
            ),
            ("sync.file.send.py", Family::User(tag("sync.file.send")), None),
            (
                "util.clipboard.set.sh",
                Family::User(tag("util.clipboard.set")),
                None,
            ),
            (
                "@[ABCD]/x.sh",
                Family::User(tag("x")),
                Some(DeviceFilter::IdPrefix("ABCD".into())),
            ),
        ];
        for (path, family, device) in cases {
            assert_eq!(parse(path), Ok((family, device)), "{path}");
        }
    }

    #[test]
    fn paths_that_name_no_event_are_refused() {
        for bad in [
            "#only-a-comment.sh",
            "daemon.reboot.sh",
            "peer.left.sh",
            "a b.sh",
            "@/x.sh",
            "@a/@b/x.sh",
            "@laptop/daemon.sh",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn matching() {
        let laptop = DeviceId::from_bytes([1; 32]);
        let desk = DeviceId::from_bytes([2; 32]);
        let (family, device) = parse("#testing/@laptop/test.log.sh").expect("valid");
        let handler = Handler {
            path: PathBuf::new(),
            relative: String::new(),
            family,
            device,
        };
        let test_log = tag("test.log");
        let from_laptop = Subject::User {
            tag: &test_log,
            origin: &laptop,
            name: Some("laptop"),
        };
        let from_desk = Subject::User {
            tag: &test_log,
            origin: &desk,
            name: Some("desk"),
        };
        assert!(handler.takes(&from_laptop));
        assert!(!handler.takes(&from_desk));
        assert!(!handler.takes(&Subject::Daemon("start")));
        let (family, device) = parse("#testing/daemon.#notify.py").expect("valid");
        let every_daemon_event = Handler {
            path: PathBuf::new(),
            relative: String::new(),
            family,
            device,
        };
        assert!(DAEMON_STATES
            .iter()
            .all(|s| every_daemon_event.takes(&Subject::Daemon(s))));
    }
}
