//! The handler runs a device owes, kept durably so that "exactly once" survives a crash
//! while handlers are busy.
//!
//! When a direct message or an event is accepted, the runs it is owed (one per handler
//! that takes it, as the handler tree is at that moment) are recorded as one [`Job`], in
//! the same round of durable writes as the acceptance itself. Jobs of one origin run in
//! the order they arrived (every run of one job finishes before the next job's start);
//! jobs of different origins run side by side, at most `max_running` runs at once.
//!
//! A run is marked started durably before its process is spawned: the node hands out
//! [`RunStart`] as an event, which comes after the round's writes (the start mark among
//! them). When the process exits the caller says so ([`RunQueue::finish`]). After a
//! restart, every run recorded and not started starts, in the original order; a run that
//! was started and did not finish is not started again: it is reported as interrupted.
//!
//! The queue is bounded per origin and in total ([`QueueBounds`], counted in jobs). A
//! full queue refuses what it would not hold ([`Intake`]): the messaging layer then does
//! not accept the message or event, so its sender keeps it and offers it again later.
//!
//! Deterministic and in memory like the rest of the core; its durable state is
//! [`RunRecord`]s.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::durable::Write;
use crate::identity::DeviceId;
use crate::messaging::Tag;
use crate::wire::cbor::CborError;

/// What a job is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobKind {
    /// A direct message.
    Message,
    /// An event (from this device too).
    Event,
}

/// The runs one message or event is owed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// What for.
    pub kind: JobKind,
    /// Who sent or published it.
    pub origin: DeviceId,
    /// Its tag.
    pub tag: Tag,
    /// Its payload.
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
    /// The handlers that take it (relative paths in the handler tree), one run each.
    pub handlers: Vec<String>,
}

/// One run to start now: the handler and what it is run for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunStart {
    /// Names the run (with `index`) when it finishes.
    pub job: u64,
    /// Which of the job's handlers.
    pub index: u32,
    /// The handler.
    pub handler: String,
    /// What for.
    pub kind: JobKind,
    /// Who sent or published it.
    pub origin: DeviceId,
    /// Its tag.
    pub tag: Tag,
    /// Its payload.
    pub payload: Vec<u8>,
}

/// A run that was running when its device stopped: it is not started again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInterrupted {
    /// The job it was a run of.
    pub job: u64,
    /// Which run.
    pub index: u32,
    /// The handler.
    pub handler: String,
    /// What for.
    pub kind: JobKind,
    /// Who sent or published it.
    pub origin: DeviceId,
    /// Its tag.
    pub tag: Tag,
}

/// Which handlers take a message or event: the handler tree as it is at the moment of
/// acceptance (the daemon's directory; a fixed set in the simulator). Runs are owed to
/// those, and to no handler added later.
pub trait HandlerTree: Send {
    /// The handlers (relative paths) that take `tag` from `origin` (named `origin_name`).
    fn handlers_for(
        &self,
        kind: JobKind,
        tag: &Tag,
        origin: &DeviceId,
        origin_name: Option<&str>,
    ) -> Vec<String>;
}

/// How many jobs (messages and events owed runs) may wait at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueBounds {
    /// Jobs of one origin (the device that sent or published them).
    pub per_origin: usize,
    /// Jobs of all origins.
    pub total: usize,
}

impl Default for QueueBounds {
    fn default() -> Self {
        Self {
            per_origin: 256,
            total: 4096,
        }
    }
}

/// Whether this device takes in another message or event now. The messaging layer asks
/// before it accepts one from a peer; what is refused stays with its sender.
pub trait Intake {
    /// Whether one more from `origin` may be accepted now. A yes holds a place until the
    /// job is enqueued ([`RunQueue::enqueue`]).
    fn admit(&mut self, origin: &DeviceId) -> bool;
    /// Whether there is room again for `origin` after a refusal: its queue and the total
    /// are at most half full, so that offers resume in batches rather than one at a time.
    fn has_room(&self, origin: &DeviceId) -> bool;
}

/// Takes everything (the core's tests of the messaging layer alone).
pub struct Unbounded;

impl Intake for Unbounded {
    fn admit(&mut self, _: &DeviceId) -> bool {
        true
    }

    fn has_room(&self, _: &DeviceId) -> bool {
        true
    }
}

/// No handlers at all: nothing is owed (the default, and the core's tests).
pub struct NoHandlers;

impl HandlerTree for NoHandlers {
    fn handlers_for(&self, _: JobKind, _: &Tag, _: &DeviceId, _: Option<&str>) -> Vec<String> {
        Vec::new()
    }
}

/// The durable state of the run queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunRecord {
    /// A job, with its number (arrival order on this device).
    Job {
        /// Its number.
        number: u64,
        /// The job.
        job: Job,
    },
    /// Run `index` of job `number` was started.
    Started {
        /// The job.
        number: u64,
        /// The run.
        index: u32,
    },
    /// Run `index` of job `number` finished (or was skipped, or reported interrupted).
    Finished {
        /// The job.
        number: u64,
        /// The run.
        index: u32,
    },
}

/// The first byte of each kind's disk key (the messaging layer's are 1–6, the store's
/// 7, 8 and 12).
const JOB: u8 = 9;
const STARTED: u8 = 10;
const FINISHED: u8 = 11;

/// Largest record read back: a job carries a payload of at most 1 MiB and its handlers.
const MAX_RECORD_BYTES: usize = crate::messaging::MAX_PAYLOAD_BYTES + (256 << 10);

fn key(kind: u8, number: u64, index: Option<u32>) -> Vec<u8> {
    let mut key = vec![kind];
    key.extend_from_slice(&number.to_be_bytes());
    if let Some(index) = index {
        key.extend_from_slice(&index.to_be_bytes());
    }
    key
}

impl RunRecord {
    /// The key it is stored under.
    pub fn key(&self) -> Vec<u8> {
        match self {
            RunRecord::Job { number, .. } => key(JOB, *number, None),
            RunRecord::Started { number, index } => key(STARTED, *number, Some(*index)),
            RunRecord::Finished { number, index } => key(FINISHED, *number, Some(*index)),
        }
    }

    /// The record's bytes (CBOR).
    pub fn encode(&self) -> Result<Vec<u8>, CborError> {
        crate::wire::cbor::encode(self)
    }

    /// Parses stored bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, CborError> {
        crate::wire::cbor::decode_bounded(bytes, MAX_RECORD_BYTES)
    }

    /// Whether stored bytes under `key` can only be a run record.
    pub fn is_run_key(key: &[u8]) -> bool {
        matches!(key.first(), Some(&JOB | &STARTED | &FINISHED))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Owed,
    Running,
    Done,
}

#[derive(Debug)]
struct Queued {
    job: Job,
    states: Vec<State>,
}

impl Queued {
    fn done(&self) -> bool {
        self.states.iter().all(|s| *s == State::Done)
    }
}

/// The runs this device owes.
#[derive(Debug)]
pub struct RunQueue {
    max_running: usize,
    bounds: QueueBounds,
    /// Places held by admitted messages and events whose jobs are not enqueued yet.
    admitted: BTreeMap<DeviceId, usize>,
    next_number: u64,
    jobs: BTreeMap<u64, Queued>,
    /// Per origin, its jobs in arrival order: only the first may run.
    origins: BTreeMap<DeviceId, VecDeque<u64>>,
    running: BTreeSet<(u64, u32)>,
    starts: VecDeque<RunStart>,
    interrupted: VecDeque<RunInterrupted>,
    /// Runs found interrupted at restore.
    interrupted_count: usize,
    writes: VecDeque<Write>,
}

impl RunQueue {
    /// An empty queue running at most `max_running` runs at once and holding jobs within
    /// `bounds`.
    pub fn new(max_running: usize, bounds: QueueBounds) -> Self {
        Self {
            max_running: max_running.max(1),
            // A bound of zero would refuse everything for ever: one job at least.
            bounds: QueueBounds {
                per_origin: bounds.per_origin.max(1),
                total: bounds.total.max(1),
            },
            admitted: BTreeMap::new(),
            next_number: 1,
            jobs: BTreeMap::new(),
            origins: BTreeMap::new(),
            running: BTreeSet::new(),
            starts: VecDeque::new(),
            interrupted: VecDeque::new(),
            interrupted_count: 0,
            writes: VecDeque::new(),
        }
    }

    /// Takes back the records a previous run left (at start): runs started and not
    /// finished are reported interrupted and not started again; the others start in
    /// their original order.
    pub fn restore(&mut self, records: impl IntoIterator<Item = RunRecord>) {
        let mut started = BTreeSet::new();
        let mut finished = BTreeSet::new();
        for record in records {
            match record {
                RunRecord::Job { number, job } => {
                    self.next_number = self.next_number.max(number.saturating_add(1));
                    let states = vec![State::Owed; job.handlers.len()];
                    self.origins.entry(job.origin).or_default().push_back(number);
                    self.jobs.insert(number, Queued { job, states });
                }
                RunRecord::Started { number, index } => {
                    started.insert((number, index));
                }
                RunRecord::Finished { number, index } => {
                    finished.insert((number, index));
                }
            }
        }
        for queue in self.origins.values_mut() {
            queue.make_contiguous().sort_unstable();
        }
        for (&number, queued) in &mut self.jobs {
            for (index, state) in queued.states.iter_mut().enumerate() {
                let run = (number, index as u32);
                if finished.contains(&run) {
                    *state = State::Done;
                } else if started.contains(&run) {
                    *state = State::Done;
                    self.interrupted_count += 1;
                    self.interrupted.push_back(RunInterrupted {
                        job: run.0,
                        index: run.1,
                        handler: queued.job.handlers[index].clone(),
                        kind: queued.job.kind,
                        origin: queued.job.origin,
                        tag: queued.job.tag.clone(),
                    });
                    self.writes.push_back(Write::put(RunRecord::Finished {
                        number: run.0,
                        index: run.1,
                    }));
                }
            }
        }
        let done: Vec<u64> = self
            .jobs
            .iter()
            .filter(|(_, q)| q.done())
            .map(|(n, _)| *n)
            .collect();
        for number in done {
            self.retire(number);
        }
        self.start_what_may();
    }

    /// Records the runs `job` is owed (none if no handler takes it) and starts what may.
    pub fn enqueue(&mut self, job: Job) {
        if let Some(held) = self.admitted.get_mut(&job.origin) {
            *held -= 1;
            if *held == 0 {
                self.admitted.remove(&job.origin);
            }
        }
        if job.handlers.is_empty() {
            return;
        }
        let number = self.next_number;
        self.next_number += 1;
        self.writes.push_back(Write::put(RunRecord::Job {
            number,
            job: job.clone(),
        }));
        let states = vec![State::Owed; job.handlers.len()];
        self.origins.entry(job.origin).or_default().push_back(number);
        self.jobs.insert(number, Queued { job, states });
        self.start_what_may();
    }

    /// Run `index` of job `job` finished (exited, was killed, or could not start);
    /// the next runs start.
    pub fn finish(&mut self, job: u64, index: u32) {
        if !self.running.remove(&(job, index)) {
            return;
        }
        let Some(queued) = self.jobs.get_mut(&job) else {
            return;
        };
        if let Some(state) = queued.states.get_mut(index as usize) {
            *state = State::Done;
        }
        if queued.done() {
            self.retire(job);
        } else {
            self.writes
                .push_back(Write::put(RunRecord::Finished { number: job, index }));
        }
        self.start_what_may();
    }

    /// Runs recorded and not started yet.
    pub fn owed(&self) -> usize {
        self.jobs
            .values()
            .map(|q| q.states.iter().filter(|s| **s == State::Owed).count())
            .sum()
    }

    /// Jobs waiting or running of `origin`, counting admitted ones not yet enqueued.
    fn queued_of(&self, origin: &DeviceId) -> usize {
        self.origins.get(origin).map_or(0, VecDeque::len) + self.admitted.get(origin).copied().unwrap_or(0)
    }

    /// Jobs waiting or running of all origins, counting admitted ones not yet enqueued.
    fn queued_total(&self) -> usize {
        self.jobs.len() + self.admitted.values().sum::<usize>()
    }

    /// Runs started and not finished.
    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// The next run to start.
    pub fn poll_start(&mut self) -> Option<RunStart> {
        self.starts.pop_front()
    }

    /// Runs found interrupted at restore (they were running when the device stopped).
    pub fn interrupted_count(&self) -> usize {
        self.interrupted_count
    }

    /// The next run found interrupted at restore.
    pub fn poll_interrupted(&mut self) -> Option<RunInterrupted> {
        self.interrupted.pop_front()
    }

    /// The next durable write.
    pub fn poll_write(&mut self) -> Option<Write> {
        self.writes.pop_front()
    }

    /// Drops a finished job and its records.
    fn retire(&mut self, number: u64) {
        let Some(queued) = self.jobs.remove(&number) else {
            return;
        };
        if let Some(queue) = self.origins.get_mut(&queued.job.origin) {
            queue.retain(|n| *n != number);
            if queue.is_empty() {
                self.origins.remove(&queued.job.origin);
            }
        }
        self.writes.push_back(Write::Delete(key(JOB, number, None)));
        for index in 0..queued.states.len() as u32 {
            self.writes
                .push_back(Write::Delete(key(STARTED, number, Some(index))));
            self.writes
                .push_back(Write::Delete(key(FINISHED, number, Some(index))));
        }
    }

    /// Starts the owed runs of each origin's first job, oldest job first, while there is
    /// room.
    fn start_what_may(&mut self) {
        let mut heads: Vec<u64> = self.origins.values().filter_map(|q| q.front().copied()).collect();
        heads.sort_unstable();
        for number in heads {
            let Some(queued) = self.jobs.get_mut(&number) else {
                continue;
            };
            for (index, state) in queued.states.iter_mut().enumerate() {
                if self.running.len() >= self.max_running {
                    return;
                }
                if *state != State::Owed {
                    continue;
                }
                *state = State::Running;
                let index = index as u32;
                self.running.insert((number, index));
                self.writes
                    .push_back(Write::put(RunRecord::Started { number, index }));
                let job = &queued.job;
                self.starts.push_back(RunStart {
                    job: number,
                    index,
                    handler: job.handlers[index as usize].clone(),
                    kind: job.kind,
                    origin: job.origin,
                    tag: job.tag.clone(),
                    payload: job.payload.clone(),
                });
            }
        }
    }
}

impl Intake for RunQueue {
    fn admit(&mut self, origin: &DeviceId) -> bool {
        if self.queued_of(origin) >= self.bounds.per_origin || self.queued_total() >= self.bounds.total {
            return false;
        }
        *self.admitted.entry(*origin).or_default() += 1;
        true
    }

    fn has_room(&self, origin: &DeviceId) -> bool {
        self.queued_of(origin) <= self.bounds.per_origin / 2 && self.queued_total() <= self.bounds.total / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::durable::{MemoryDisk, Record};

    fn job(origin: u8, handlers: &[&str], payload: u8) -> Job {
        Job {
            kind: JobKind::Event,
            origin: DeviceId::from_bytes([origin; 32]),
            tag: Tag::new("t").expect("valid"),
            payload: vec![payload],
            handlers: handlers.iter().map(|h| (*h).to_owned()).collect(),
        }
    }

    fn persist(queue: &mut RunQueue, disk: &mut MemoryDisk) {
        disk.apply(std::iter::from_fn(|| queue.poll_write()));
    }

    fn starts(queue: &mut RunQueue) -> Vec<(u64, u32, u8)> {
        std::iter::from_fn(|| queue.poll_start())
            .map(|s| (s.job, s.index, s.payload[0]))
            .collect()
    }

    fn runs_of(disk: &MemoryDisk) -> Vec<RunRecord> {
        disk.records()
            .into_iter()
            .filter_map(|r| match r {
                Record::Runs(run) => Some(run),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn one_origin_runs_in_order_and_origins_side_by_side() {
        let mut queue = RunQueue::new(8, QueueBounds::default());
        queue.enqueue(job(1, &["a", "b"], 1));
        queue.enqueue(job(1, &["a"], 2));
        queue.enqueue(job(2, &["a"], 3));
        assert_eq!(starts(&mut queue), vec![(1, 0, 1), (1, 1, 1), (3, 0, 3)]);
        queue.finish(1, 0);
        assert!(starts(&mut queue).is_empty(), "job 2 waits for all of job 1");
        queue.finish(1, 1);
        assert_eq!(starts(&mut queue), vec![(2, 0, 2)]);
        queue.finish(9, 9);
        assert_eq!(queue.running(), 2);
    }

    #[test]
    fn at_most_max_running_at_once() {
        let mut queue = RunQueue::new(2, QueueBounds::default());
        for origin in 1..=3 {
            queue.enqueue(job(origin, &["a"], origin));
        }
        assert_eq!(starts(&mut queue).len(), 2);
        assert_eq!((queue.running(), queue.owed()), (2, 1));
        queue.finish(1, 0);
        assert_eq!(starts(&mut queue), vec![(3, 0, 3)]);
    }

    #[test]
    fn after_a_crash_owed_runs_start_once_and_running_ones_are_reported() {
        let mut disk = MemoryDisk::default();
        let mut queue = RunQueue::new(1, QueueBounds::default());
        queue.enqueue(job(1, &["a"], 1));
        queue.enqueue(job(1, &["a"], 2));
        queue.enqueue(job(1, &["a"], 3));
        persist(&mut queue, &mut disk);
        assert_eq!(starts(&mut queue), vec![(1, 0, 1)]);
        queue.finish(1, 0);
        persist(&mut queue, &mut disk);
        assert_eq!(starts(&mut queue), vec![(2, 0, 2)]);
        // The device dies while job 2 runs.
        let mut restarted = RunQueue::new(1, QueueBounds::default());
        restarted.restore(runs_of(&disk));
        let interrupted: Vec<RunInterrupted> = std::iter::from_fn(|| restarted.poll_interrupted()).collect();
        assert_eq!(interrupted.len(), 1);
        assert_eq!(starts(&mut restarted), vec![(3, 0, 3)], "job 2 is not run again");
        persist(&mut restarted, &mut disk);
        restarted.finish(3, 0);
        persist(&mut restarted, &mut disk);
        assert!(runs_of(&disk).is_empty(), "nothing left: {:?}", runs_of(&disk));
        // A job enqueued now gets a number after every earlier one.
        let mut again = RunQueue::new(1, QueueBounds::default());
        again.restore(runs_of(&disk));
        again.enqueue(job(1, &["a"], 4));
        assert_eq!(starts(&mut again).len(), 1);
    }

    #[test]
    fn a_full_queue_refuses_per_origin_and_in_total_until_half_empty() {
        let bounds = QueueBounds {
            per_origin: 4,
            total: 6,
        };
        let mut queue = RunQueue::new(1, bounds);
        let (one, two, three) = (
            job(1, &["a"], 0).origin,
            job(2, &["a"], 0).origin,
            job(3, &["a"], 0).origin,
        );
        for payload in 0..4 {
            assert!(queue.admit(&one), "place {payload} of origin 1");
            queue.enqueue(job(1, &["a"], payload));
        }
        assert!(!queue.admit(&one), "origin 1 is full");
        assert!(queue.admit(&two) && queue.admit(&two), "others still have room");
        assert!(
            !queue.admit(&three),
            "admitted places count before their jobs are enqueued"
        );
        queue.enqueue(job(2, &[], 0));
        queue.enqueue(job(2, &["a"], 1));
        assert!(
            queue.admit(&three),
            "a job no handler takes holds no place once enqueued"
        );
        queue.enqueue(job(3, &["a"], 0));
        assert!(!queue.has_room(&one));
        for _ in 0..2 {
            let start = queue.poll_start().expect("a run of origin 1 runs");
            queue.finish(start.job, start.index);
        }
        assert!(!queue.has_room(&one), "origin 1 at half, the total above it");
        let start = queue.poll_start().expect("the next run");
        queue.finish(start.job, start.index);
        assert!(queue.has_room(&one), "origin 1 and the total at most half full");
    }

    #[test]
    fn nothing_is_recorded_for_a_message_no_handler_takes() {
        let mut queue = RunQueue::new(8, QueueBounds::default());
        queue.enqueue(job(1, &[], 1));
        assert!(queue.poll_write().is_none());
        assert!(queue.poll_start().is_none());
    }

    #[test]
    fn records_round_trip() {
        let records = [
            RunRecord::Job {
                number: 7,
                job: job(1, &["util/clip.sh"], 9),
            },
            RunRecord::Started { number: 7, index: 0 },
            RunRecord::Finished { number: 7, index: 0 },
        ];
        for record in &records {
            assert!(RunRecord::is_run_key(&record.key()));
            assert_eq!(
                RunRecord::decode(&record.encode().expect("encodes")).as_ref(),
                Ok(record)
            );
        }
    }
}
