//! Event handlers: the user's executables, chosen by their path in the handler directory
//! ([`tree`]), run as processes ([`run`]).
//!
//! Everything from one origin is handled in the order it arrived (one queue per origin:
//! the handlers of one message all finish before those of the next start); across
//! origins, runs go on in parallel, at most `handlers_max` processes at once.

pub mod groups;
pub mod run;
pub mod tree;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use cnspr_proto::identity::DeviceId;
use cnspr_proto::messaging::Tag;
use tokio::sync::{mpsc, oneshot, Semaphore};

pub use run::{Invocation, Outcome, RunLimits};
pub use tree::{Handler, Subject};

use cnspr_proto::runs::{HandlerTree, JobKind};

/// What an event is, owned (for matching once the directory is read).
#[derive(Debug, Clone)]
pub enum Topic {
    /// A daemon state.
    Daemon(&'static str),
    /// A peer event.
    Peer {
        /// `seen`, `new_address` or `state_changed`.
        kind: &'static str,
        /// About whom.
        peer: DeviceId,
        /// Its name.
        name: Option<String>,
    },
    /// A message, event or query.
    User {
        /// Its tag.
        tag: Tag,
        /// Who sent it.
        origin: DeviceId,
        /// Its name.
        name: Option<String>,
    },
}

impl Topic {
    fn subject(&self) -> Subject<'_> {
        match self {
            Topic::Daemon(state) => Subject::Daemon(state),
            Topic::Peer { kind, peer, name } => Subject::Peer {
                kind,
                peer,
                name: name.as_deref(),
            },
            Topic::User { tag, origin, name } => Subject::User {
                tag,
                origin,
                name: name.as_deref(),
            },
        }
    }

    /// Events with the same key are handled in order.
    fn queue_key(&self) -> String {
        match self {
            Topic::Daemon(_) => "daemon".into(),
            Topic::Peer { .. } => "peer".into(),
            Topic::User { origin, .. } => origin.to_string(),
        }
    }
}

struct Job {
    topic: Topic,
    invocation: Invocation,
    done: Option<oneshot::Sender<Vec<Outcome>>>,
}

/// Runs the handlers of events as they come.
#[derive(Clone)]
pub struct Dispatcher {
    dir: PathBuf,
    slots: Arc<Semaphore>,
    limits: RunLimits,
    queues: Arc<Mutex<BTreeMap<String, mpsc::UnboundedSender<Job>>>>,
    finished: mpsc::UnboundedSender<Outcome>,
    /// Where durable runs note their process groups.
    groups: Option<groups::Groups>,
}

impl Dispatcher {
    /// A dispatcher for the handlers under `dir`; every finished run is also sent to
    /// `finished` (for the log and `monitor`).
    pub fn new(
        dir: PathBuf,
        handlers_max: usize,
        limits: RunLimits,
        finished: mpsc::UnboundedSender<Outcome>,
    ) -> Self {
        Self {
            dir,
            slots: Arc::new(Semaphore::new(handlers_max.max(1))),
            limits,
            queues: Arc::default(),
            finished,
            groups: None,
        }
    }

    /// Notes the process groups of durable runs in `groups` (see [`groups`]).
    pub fn with_groups(mut self, groups: groups::Groups) -> Self {
        self.groups = Some(groups);
        self
    }

    /// The handler directory.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Queues the handlers of an event; `done` gets their outcomes once all finished.
    pub fn dispatch(
        &self,
        topic: Topic,
        invocation: Invocation,
        done: Option<oneshot::Sender<Vec<Outcome>>>,
    ) {
        let key = topic.queue_key();
        let job = Job {
            topic,
            invocation,
            done,
        };
        let Ok(mut queues) = self.queues.lock() else {
            return;
        };
        let queue = queues.entry(key).or_insert_with(|| {
            let (sender, receiver) = mpsc::unbounded_channel();
            tokio::spawn(self.clone().work(receiver));
            sender
        });
        let _ = queue.send(job);
    }

    /// The handler directory as the core asks it, at each message or event it accepts:
    /// which handlers a run is owed to is decided then.
    pub fn tree(&self) -> DirectoryTree {
        DirectoryTree {
            dir: self.dir.clone(),
        }
    }

    /// Runs one handler of a durable run (named by its path in the directory, as it was
    /// when the run was owed) with a slot of `handlers_max`. A handler removed since is
    /// reported as not run.
    pub async fn run_owed(&self, relative: &str, invocation: &Invocation) -> Outcome {
        let outcome = match tree::find(&self.dir, relative) {
            Some(handler) => {
                // The semaphore lives as long as the dispatcher: acquiring cannot fail.
                let _slot = self.slots.clone().acquire_owned().await;
                run::run(&handler, invocation, self.limits, self.groups.as_ref()).await
            }
            None => Outcome::not_run(relative, "the handler was removed before its turn"),
        };
        let _ = self.finished.send(outcome.clone());
        outcome
    }

    /// Runs the handlers `topic` selects now, waiting for all of them.
    pub async fn run_now(&self, topic: &Topic, invocation: &Invocation) -> Vec<Outcome> {
        let (handlers, _) = tree::scan(&self.dir);
        let subject = topic.subject();
        let chosen: Vec<Handler> = handlers.into_iter().filter(|h| h.takes(&subject)).collect();
        let mut runs = Vec::new();
        for handler in chosen {
            let (slots, limits, invocation) = (self.slots.clone(), self.limits, invocation.clone());
            let groups = self.groups.clone();
            runs.push(tokio::spawn(async move {
                // The semaphore lives as long as the dispatcher: acquiring cannot fail.
                let _slot = slots.acquire_owned().await;
                run::run(&handler, &invocation, limits, groups.as_ref()).await
            }));
        }
        let mut outcomes = Vec::new();
        for run in runs {
            if let Ok(outcome) = run.await {
                let _ = self.finished.send(outcome.clone());
                outcomes.push(outcome);
            }
        }
        outcomes
    }

    async fn work(self, mut jobs: mpsc::UnboundedReceiver<Job>) {
        while let Some(job) = jobs.recv().await {
            let outcomes = self.run_now(&job.topic, &job.invocation).await;
            if let Some(done) = job.done {
                let _ = done.send(outcomes);
            }
        }
    }
}

/// The handler directory, read whenever the core accepts a message or event.
pub struct DirectoryTree {
    dir: PathBuf,
}

impl HandlerTree for DirectoryTree {
    fn handlers_for(
        &self,
        _kind: JobKind,
        tag: &Tag,
        origin: &DeviceId,
        origin_name: Option<&str>,
    ) -> Vec<String> {
        let subject = Subject::User {
            tag,
            origin,
            name: origin_name,
        };
        let (handlers, _) = tree::scan(&self.dir);
        handlers
            .into_iter()
            .filter(|h| h.takes(&subject))
            .map(|h| h.relative)
            .collect()
    }
}
