//! The simulation engine: real [`Node`]s on a virtual clock and a virtual network, driven
//! through a deterministic event queue.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use blake2::{Blake2s256, Digest};
use cnspr_proto::crypto::hash::hash;
use cnspr_proto::durable::{MemoryDisk, Write};
use cnspr_proto::identity::{DeviceId, DeviceKey};
use cnspr_proto::membership::{Body, Envelope, MembershipEvent};
use cnspr_proto::messaging::Tag;
use cnspr_proto::node::{Durable, Event, Host, Node, NodeConfig, NodeStats};
use cnspr_proto::rng::Rng;
use cnspr_proto::roster::KnownDevice;
use cnspr_proto::runs::{HandlerTree, JobKind, QueueBounds};
use cnspr_proto::time::Timestamp;
use cnspr_proto::transport::Transmit;

use crate::agenda::Agenda;
use crate::byzantine::{forged_events, forged_store, lies_about, made_up_keys, LIE_INTERVAL};
use crate::clock::Clock;
use crate::faults::{Fault, FaultPlan, Phases, Schedule};
use crate::network::{LinkModel, Network};
use crate::observer::{Bounds, Observer};
use crate::replicas::{WriteLog, KEYS};
use crate::workload::{payload, Ledger, WORKLOAD_INTERVAL, WORKLOAD_STORE_SYNC};

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// How many devices.
    pub nodes: usize,
    /// The seed everything random derives from.
    pub seed: u64,
    /// Virtual time to run.
    pub duration: Duration,
    /// Membership profile: `responsive` or `frugal`.
    pub profile: String,
    /// How links behave.
    pub link: LinkModel,
    /// Which faults.
    pub plan: FaultPlan,
    /// Whether device clocks are skewed (offset up to a minute, drift up to ±500 ppm).
    pub clock_skew: bool,
    /// Print every fault and state change to stderr (for replaying a seed).
    pub trace: bool,
    /// Send direct messages and events all along and check their guarantees
    /// (`workload.rs`).
    pub workload: bool,
    /// Bound the handler run queue to this many messages and events per origin (twice
    /// as many in all), to exercise back-pressure; the daemon's default otherwise.
    pub handler_queue: Option<usize>,
    /// How many devices (the first ones) are hostile: they lie about others' liveness
    /// (`byzantine.rs`).
    pub byzantine: usize,
}

impl SimConfig {
    /// `nodes` devices for `duration` with the responsive profile, a clean LAN, the
    /// standard faults, exact clocks.
    pub fn new(nodes: usize, seed: u64, duration: Duration) -> Self {
        Self {
            nodes,
            seed,
            duration,
            profile: "responsive".to_string(),
            link: LinkModel::default(),
            plan: FaultPlan::Standard,
            clock_skew: false,
            trace: false,
            workload: false,
            handler_queue: None,
            byzantine: 0,
        }
    }

    /// The node configuration of the chosen profile.
    pub fn node_config(&self) -> Result<NodeConfig, String> {
        let mut config = NodeConfig::profile(&self.profile)
            .ok_or_else(|| format!("unknown profile {:?}", self.profile))?;
        if self.workload {
            // Often enough that a run sees many repairs and deletes collected.
            config.store_sync_interval = WORKLOAD_STORE_SYNC;
        }
        if let Some(per_origin) = self.handler_queue {
            config.handler_queue = QueueBounds {
                per_origin,
                total: per_origin * 2,
            };
        }
        Ok(config)
    }

    /// The invariants' bounds for the chosen profile (see `docs/simulator.md`).
    pub fn bounds(&self) -> Result<Bounds, String> {
        let m = self.node_config()?.membership;
        let round = m.probe_interval + m.probe_timeout + m.indirect_timeout;
        let detection = round * 4 + m.suspicion_max * 2;
        Ok(Bounds {
            detection,
            convergence: m.reconnect_interval * 3 + detection,
        })
    }
}

/// What one run measured.
#[derive(Debug, Clone, Default)]
pub struct RunResult {
    /// The seed.
    pub seed: u64,
    /// Devices.
    pub nodes: usize,
    /// Virtual seconds run.
    pub virtual_s: f64,
    /// Seconds until all live devices marked a crashed one unreachable, per crash.
    pub detections: Vec<f64>,
    /// Crashes restarted before everyone noticed.
    pub undetected: usize,
    /// False `unreachable` marks.
    pub false_unreachable: u64,
    /// Device-hours simulated (for the false-alarm rate).
    pub node_hours: f64,
    /// Datagrams sent in the idle window, all devices.
    pub idle_packets: u64,
    /// Their bytes.
    pub idle_bytes: u64,
    /// Length of the idle window in minutes.
    pub idle_minutes: f64,
    /// Seconds from each heal to full convergence.
    pub convergence: Vec<f64>,
    /// Invariant violations.
    pub violations: Vec<String>,
    /// BLAKE2s of every datagram and event, in order: equal for equal seeds.
    pub digest: String,
    /// Datagrams sent in the whole run.
    pub datagrams: u64,
    /// With the workload: direct messages sent, events published, handler runs.
    pub messages: (usize, usize, usize),
    /// With the workload: store writes acknowledged.
    pub store_writes: usize,
    /// With the workload: keys whose deletes were collected (on devices running at the end).
    pub tombstones_collected: u64,
    /// With the workload: handler runs interrupted by their device's crash (reported, not
    /// repeated).
    pub runs_interrupted: usize,
    /// Handler runs owed and waiting their turn on devices as they crashed (each must
    /// start after the restart).
    pub runs_queued_at_crash: usize,
    /// Messages and events refused for a full run queue (by the devices running at the
    /// end).
    pub offers_refused: u64,
    /// Store changes refused and events dropped as forged (by the devices running at the
    /// end): the hostile devices' lies, and any honest change refused.
    pub refused_as_forged: u64,
}

struct Device {
    key: DeviceKey,
    /// Its name, as configured.
    name: String,
    /// The roster with the address last seen for each device, as the daemon keeps it in
    /// `roster.json`: saved on every roster or address change, which is the state at the
    /// moment it stops (a crash falls between steps).
    saved_roster: Vec<KnownDevice>,
    node: Option<Node>,
    paused: bool,
    boot: u32,
    max_incarnation: u64,
    clock: Clock,
    address: SocketAddr,
    roams: u16,
    timer_generation: u64,
    /// When its queued timer (of `timer_generation`) is due, if one is queued.
    timer_due: Option<Timestamp>,
    /// The handshakes completed when its sessions were last checked.
    sessions_checked: u64,
    /// What the daemon would have on disk for the messaging layer.
    disk: MemoryDisk,
}

impl Device {
    /// Makes its queued timer stale (it is ignored when due).
    fn cancel_timer(&mut self) {
        self.timer_generation += 1;
        self.timer_due = None;
    }
}

enum Item {
    Deliver {
        to: usize,
        from: SocketAddr,
        datagram: Vec<u8>,
    },
    Timer {
        node: usize,
        generation: u64,
    },
    Fault(Fault),
    Workload,
    /// The hostile devices lie again.
    Lie,
    /// A handler run of the workload ends (if its device has run all along since).
    RunDone {
        node: usize,
        boot: u32,
        job: u64,
        index: u32,
    },
}

/// A simulation in progress.
pub struct World {
    config: SimConfig,
    node_config: NodeConfig,
    devices: Vec<Device>,
    index: BTreeMap<DeviceId, usize>,
    addresses: BTreeMap<SocketAddr, usize>,
    queue: Agenda<Item>,
    now: Timestamp,
    rng: Rng,
    network: Network,
    observer: Observer,
    phases: Phases,
    digest: Blake2s256,
    idle_packets: u64,
    idle_bytes: u64,
    datagrams: u64,
    runs_queued_at_crash: usize,
    ledger: Ledger,
    writes: WriteLog,
    /// Where the workload's randomness comes from (apart from the network's, so the
    /// same faults happen with and without it).
    workload_rng: Rng,
    /// Whom the hostile devices lie about (apart too).
    byzantine_rng: Rng,
}

/// Unix time of the virtual clock's zero, for the messaging layer's expiry.
const WALL_EPOCH_SECS: u64 = 1_800_000_000;

/// The Unix time, in microseconds, a device's clock reading `local` stands for.
fn unix_micros(local: Timestamp) -> u64 {
    (WALL_EPOCH_SECS * 1_000_000).saturating_add(local.as_micros())
}

fn seed_bytes(seed: u64, purpose: &[u8]) -> [u8; 32] {
    hash(&[b"cnspr-sim", purpose, &seed.to_le_bytes()])
}

fn address_of(node: usize, roams: u16) -> SocketAddr {
    // Addresses of the benchmark range (RFC 2544): virtual, never sent to.
    let ip = Ipv4Addr::new(198, 18, (node >> 8) as u8, (node & 0xff) as u8);
    SocketAddr::from((ip, 3030 + roams))
}

impl World {
    /// Sets up a run.
    pub fn new(config: SimConfig) -> Result<Self, String> {
        if config.nodes == 0 || config.nodes > 65_000 {
            return Err(format!("nodes must be between 1 and 65000, not {}", config.nodes));
        }
        let node_config = config.node_config()?;
        let bounds = config.bounds()?;
        let mut rng = Rng::from_seed(seed_bytes(config.seed, b"world"));
        let calm = bounds.convergence + Duration::from_secs(10);
        let schedule = Schedule::new(config.plan, config.nodes, config.duration, calm, &mut rng);
        let mut devices: Vec<Device> = (0..config.nodes)
            .map(|i| {
                let key = DeviceKey::from_seed(seed_bytes(config.seed, &(i as u64).to_le_bytes()));
                let clock = if config.clock_skew {
                    Clock {
                        offset_micros: rng.next_u64() % 60_000_000,
                        drift_ppm: (rng.next_u64() % 1001) as i64 - 500,
                    }
                } else {
                    Clock::EXACT
                };
                Device {
                    key,
                    name: format!("device-{i}"),
                    saved_roster: Vec::new(),
                    node: None,
                    paused: false,
                    boot: 0,
                    max_incarnation: 0,
                    clock,
                    address: address_of(i, 0),
                    roams: 0,
                    timer_generation: 0,
                    timer_due: None,
                    sessions_checked: 0,
                    disk: MemoryDisk::default(),
                }
            })
            .collect();
        // Every device was paired before the run: each knows every other by its ID and the
        // address it had then, and learns the names from the mesh.
        let paired: Vec<KnownDevice> = devices
            .iter()
            .enumerate()
            .map(|(i, d)| KnownDevice::admitted(d.key.device_id(), Some(address_of(i, 0))))
            .collect();
        for device in &mut devices {
            device.saved_roster = paired.clone();
        }
        let index = devices
            .iter()
            .enumerate()
            .map(|(i, d)| (d.key.device_id(), i))
            .collect();
        let addresses = devices.iter().enumerate().map(|(i, d)| (d.address, i)).collect();
        let mut world = Self {
            network: Network::new(config.link.clone()),
            observer: Observer::new(config.nodes, bounds),
            phases: schedule.phases,
            node_config,
            devices,
            index,
            addresses,
            queue: Agenda::default(),
            now: Timestamp::ZERO,
            rng,
            digest: Blake2s256::new(),
            idle_packets: 0,
            idle_bytes: 0,
            datagrams: 0,
            runs_queued_at_crash: 0,
            ledger: Ledger::default(),
            writes: WriteLog::default(),
            workload_rng: Rng::from_seed(seed_bytes(config.seed, b"workload")),
            byzantine_rng: Rng::from_seed(seed_bytes(config.seed, b"byzantine")),
            config,
        };
        for (at, fault) in schedule.faults {
            world.push(Timestamp::ZERO + at, Item::Fault(fault));
        }
        if world.config.workload {
            world.push(Timestamp::ZERO + WORKLOAD_INTERVAL, Item::Workload);
        }
        if world.config.byzantine > 0 {
            world.push(Timestamp::ZERO + LIE_INTERVAL, Item::Lie);
        }
        Ok(world)
    }

    fn push(&mut self, at: Timestamp, item: Item) {
        self.queue.push(at, item);
    }

    /// Runs the whole schedule and reports.
    pub fn run(mut self) -> RunResult {
        self.start_all();
        self.run_until(self.config.duration);
        self.finish()
    }

    /// Starts every device that has not started yet (at the current virtual time).
    pub fn start_all(&mut self) {
        for node in 0..self.devices.len() {
            if self.devices[node].boot == 0 {
                self.start(node);
            }
        }
    }

    /// Runs deliveries, timers and scheduled faults up to `until` since the start.
    pub fn run_until(&mut self, until: Duration) {
        let end = Timestamp::ZERO + until;
        while let Some((at, item)) = self.queue.pop_by(end) {
            self.now = at;
            match item {
                Item::Deliver { to, from, datagram } => self.deliver(to, from, &datagram),
                Item::Timer { node, generation } => self.timer(node, generation),
                Item::Fault(fault) => self.fault(fault),
                Item::Workload => self.workload(),
                Item::Lie => self.lie(),
                Item::RunDone {
                    node,
                    boot,
                    job,
                    index,
                } => self.run_done(node, boot, job, index),
            }
        }
        self.now = self.now.max(end);
    }

    /// Applies a fault now (scenario tests).
    pub fn inject(&mut self, fault: Fault) {
        self.fault(fault);
    }

    /// `node` stops cleanly: it says goodbye, its last datagrams go out, and it is gone.
    pub fn leave(&mut self, node: usize) {
        let local = self.devices[node].clock.local(self.now);
        if let Some(running) = self.devices[node].node.as_mut() {
            running.leave(local);
            self.drain(node);
            self.save_roster(node);
            self.devices[node].node = None;
            self.devices[node].cancel_timer();
        }
    }

    /// Virtual time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now.saturating_since(Timestamp::ZERO)
    }

    /// The member `target` as device `observer` sees it, if `observer` runs.
    pub fn member(&self, observer: usize, target: usize) -> Option<&cnspr_proto::membership::Member> {
        let node = self.devices[observer].node.as_ref()?;
        node.member(&self.devices[target].key.device_id())
    }

    /// The current address of `node`.
    pub fn address(&self, node: usize) -> SocketAddr {
        self.devices[node].address
    }

    /// Ends the run: checks liveness and reports.
    pub fn finish(mut self) -> RunResult {
        self.observer.check_end(self.now);
        if self.config.workload {
            let running: Vec<bool> = self
                .devices
                .iter()
                .map(|d| d.node.is_some() && !d.paused)
                .collect();
            let deadline = self.elapsed().saturating_sub(self.quiet_end());
            self.ledger.check_end(&running, deadline);
            let replicas: Vec<(usize, &cnspr_proto::store::Store)> = self
                .devices
                .iter()
                .enumerate()
                .filter(|(i, _)| running[*i])
                .filter_map(|(i, d)| d.node.as_ref().map(|n| (i, n.store())))
                .collect();
            let running_ids = self
                .devices
                .iter()
                .enumerate()
                .filter(|(i, _)| running[*i])
                .map(|(_, d)| d.key.device_id())
                .collect();
            let mut found = self.writes.check_end(&replicas, &running_ids);
            self.observer.violations.append(&mut found);
        }
        self.observer.violations.append(&mut self.ledger.violations);
        for (i, device) in self.devices.iter().enumerate() {
            if let Some(node) = device.node.as_ref() {
                let found =
                    made_up_keys(node.store()).map(|key| format!("device {i} holds the made-up {key}"));
                self.observer.violations.extend(found);
            }
        }
        self.result()
    }

    fn result(self) -> RunResult {
        let idle = self
            .phases
            .idle_end
            .saturating_sub(self.phases.idle_start)
            .min(self.config.duration);
        let virtual_s = self.config.duration.as_secs_f64();
        let tombstones_collected = self.sum_stats(|s| s.tombstones_collected);
        let offers_refused = self.sum_stats(|s| s.offers_refused);
        let refused_as_forged = self.sum_stats(|s| s.store_changes_refused + s.events_forged);
        RunResult {
            seed: self.config.seed,
            nodes: self.config.nodes,
            virtual_s,
            detections: self.observer.detections,
            undetected: self.observer.undetected,
            false_unreachable: self.observer.false_unreachable,
            node_hours: self.config.nodes as f64 * virtual_s / 3600.0,
            idle_packets: self.idle_packets,
            idle_bytes: self.idle_bytes,
            idle_minutes: idle.as_secs_f64() / 60.0,
            convergence: self.observer.convergence,
            violations: self.observer.violations,
            digest: self
                .digest
                .finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            datagrams: self.datagrams,
            messages: self.ledger.totals(),
            store_writes: self.writes.len(),
            runs_interrupted: self.ledger.interrupted(),
            runs_queued_at_crash: self.runs_queued_at_crash,
            tombstones_collected,
            offers_refused,
            refused_as_forged,
        }
    }

    /// A figure of the running devices' stats, summed.
    fn sum_stats(&self, figure: impl Fn(&NodeStats) -> u64) -> u64 {
        self.devices
            .iter()
            .filter_map(|d| d.node.as_ref())
            .map(|n| figure(&n.stats()))
            .sum()
    }

    /// Keeps what `node` would have saved of its roster, as it stops.
    fn save_roster(&mut self, node: usize) {
        if let Some(running) = self.devices[node].node.as_ref() {
            self.devices[node].saved_roster = running.known_devices();
        }
    }

    fn start(&mut self, node: usize) {
        let device = &mut self.devices[node];
        device.boot += 1;
        let mut seed = seed_bytes(self.config.seed, b"node");
        seed[..8].copy_from_slice(&(node as u64).to_le_bytes());
        seed[8..12].copy_from_slice(&device.boot.to_le_bytes());
        let local = device.clock.local(self.now);
        let durable = Durable {
            identity: device.key.clone(),
            boot: device.boot,
            name: Some(device.name.clone()),
            roster: device.saved_roster.clone(),
            records: device.disk.records(),
        };
        let unix_secs = unix_micros(local) / 1_000_000;
        let fresh = Node::restore(self.node_config.clone(), durable, seed, local, unix_secs);
        let incarnation = fresh.membership().incarnation();
        if incarnation <= device.max_incarnation {
            let message = format!(
                "device {node} restarted with incarnation {incarnation}, not above {}",
                device.max_incarnation
            );
            self.observer.violations.push(message);
        }
        let mut fresh = fresh;
        if self.config.workload {
            fresh.set_handler_tree(Box::new(WorkloadHandlers));
        }
        device.node = Some(fresh);
        device.paused = false;
        self.drain(node);
    }

    /// Some running device sends a direct message to a random other one, or publishes an
    /// event; then the next one is scheduled.
    fn workload(&mut self) {
        // The last stretch is quiet, so that what was sent can settle before the checks.
        if self.elapsed() + self.quiet_end() >= self.config.duration {
            return;
        }
        let count = self.devices.len();
        let sender = (self.workload_rng.next_u64() % count as u64) as usize;
        let receiver =
            (sender + 1 + (self.workload_rng.next_u64() % (count as u64 - 1).max(1)) as usize) % count;
        let direct = self.workload_rng.next_u64() % 2 == 0 && receiver != sender;
        let at = self.elapsed();
        let id = self.ledger.new_id();
        let to = self.devices[receiver].key.device_id();
        let device = &mut self.devices[sender];
        let local = device.clock.local(self.now);
        if let (Some(node), false) = (device.node.as_mut(), device.paused) {
            let tag = Tag::new("sim.workload").expect("a valid tag");
            let sent = if direct {
                node.send_message(local, to, tag, payload(id))
                    .map(|_| self.ledger.sent(sender, receiver, id, at))
            } else {
                node.publish_event(local, tag, payload(id))
                    .map(|_| self.ledger.published(sender, id, at))
            };
            if let Err(error) = sent {
                self.observer
                    .violations
                    .push(format!("device {sender} could not send: {error}"));
            }
            self.drain(sender);
        }
        self.store_write();
        self.push(self.now + WORKLOAD_INTERVAL, Item::Workload);
    }

    /// A handler run ends: the device says so, unless it stopped since the run began (the
    /// run died with it); a paused device finishes it once it wakes.
    fn run_done(&mut self, node: usize, boot: u32, job: u64, index: u32) {
        let device = &mut self.devices[node];
        if device.boot != boot || device.node.is_none() {
            return;
        }
        if device.paused {
            let item = Item::RunDone {
                node,
                boot,
                job,
                index,
            };
            self.push(self.now + Duration::from_millis(100), item);
            return;
        }
        let local = device.clock.local(self.now);
        if let Some(running) = device.node.as_mut() {
            running.finish_run(local, job, index);
        }
        self.drain(node);
    }

    /// How long before the end the workload stops: two convergence bounds.
    fn quiet_end(&self) -> Duration {
        self.config.bounds().map_or(Duration::ZERO, |b| b.convergence) * 2
    }

    /// A random running device writes or deletes one of a few keys.
    fn store_write(&mut self) {
        let writer = (self.workload_rng.next_u64() % self.devices.len() as u64) as usize;
        let key = format!("k{}", self.workload_rng.next_u64() % KEYS);
        let value = (self.workload_rng.next_u64() % 4 != 0)
            .then(|| self.workload_rng.next_u64().to_le_bytes().to_vec());
        let device = &mut self.devices[writer];
        let local = device.clock.local(self.now);
        let id = device.key.device_id();
        let (Some(node), false) = (device.node.as_mut(), device.paused) else {
            return;
        };
        match node.kv_write(local, &key, value) {
            Ok(seq) => {
                let store = node.store();
                self.writes.written(id, seq, &key, store);
            }
            Err(error) => self
                .observer
                .violations
                .push(format!("device {writer} could not write: {error}")),
        }
        // Acknowledged once what it persisted is on the (virtual) disk: drain applies it.
        self.drain(writer);
    }

    /// Each hostile device tells every other device its lies about one honest device.
    fn lie(&mut self) {
        let hostile = self.config.byzantine.min(self.devices.len());
        let honest = (self.devices.len() - hostile) as u64;
        if honest > 0 {
            for liar in 0..hostile {
                let victim = hostile + (self.byzantine_rng.next_u64() % honest) as usize;
                self.lie_about(liar, victim);
            }
        }
        self.push(self.now + LIE_INTERVAL, Item::Lie);
    }

    fn lie_about(&mut self, liar: usize, victim: usize) {
        let about = self.devices[victim].key.device_id();
        let audience: Vec<DeviceId> = self
            .devices
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != liar)
            .map(|(_, d)| d.key.device_id())
            .collect();
        // Forged events and store states go to one device a turn: each costs its receiver
        // a failed signature check (none is remembered), which at every device every 2 s
        // made the simulation twice as slow.
        if audience.is_empty() {
            return;
        }
        let forged_for = audience[(self.byzantine_rng.next_u64() % audience.len() as u64) as usize];
        let device = &mut self.devices[liar];
        let local = device.clock.local(self.now);
        let Some(node) = device.node.as_mut().filter(|_| !device.paused) else {
            return;
        };
        let Some(updates) = node
            .membership()
            .member(&about)
            .map(|m| lies_about(&device.key, m))
        else {
            return;
        };
        let incarnation = node.membership().incarnation();
        let liar_seq = node.store().last_seq();
        let wall_micros = unix_micros(local);
        for to in audience {
            let envelope = Envelope {
                incarnation,
                body: Body::News,
                updates: updates.clone(),
                view: None,
                claim: None,
            };
            node.send_membership(local, to, envelope);
            if to != forged_for {
                continue;
            }
            let next = node.events_handled_through(&about).saturating_add(1);
            let units = forged_events(&device.key, about, next)
                .into_iter()
                .chain([forged_store(&device.key, liar_seq, about, to, wall_micros)]);
            for unit in units {
                node.send_unit_as_is(local, to, unit);
            }
        }
        self.drain(liar);
    }

    fn deliver(&mut self, to: usize, from: SocketAddr, datagram: &[u8]) {
        let device = &mut self.devices[to];
        if device.paused {
            return;
        }
        let local = device.clock.local(self.now);
        let Some(node) = device.node.as_mut() else { return };
        let _ = node.handle_datagram(local, from, datagram);
        self.drain(to);
    }

    fn timer(&mut self, node: usize, generation: u64) {
        let device = &mut self.devices[node];
        if device.paused || generation != device.timer_generation {
            return;
        }
        device.timer_due = None;
        let local = device.clock.local(self.now);
        let Some(running) = device.node.as_mut() else {
            return;
        };
        running.handle_timeout(local);
        self.drain(node);
    }

    /// Carries out everything `node` wants done, then checks the invariants it touches.
    fn drain(&mut self, node: usize) {
        let Some(mut running) = self.devices[node].node.take() else {
            return;
        };
        let Ok(local) = running.drive(&mut Drain { world: self, node });
        self.devices[node].node = Some(running);
        let device = &mut self.devices[node];
        let due = (local != Timestamp::MAX).then(|| device.clock.global(local).max(self.now));
        // The timer queued for the same moment stands: a new one at every drain left the
        // agenda holding hundreds of thousands of stale timers at formation (21 MB of a
        // 150-device run's 155).
        if due != device.timer_due {
            device.cancel_timer();
            if let Some(at) = due {
                device.timer_due = Some(at);
                let generation = device.timer_generation;
                self.push(at, Item::Timer { node, generation });
            }
        }
        self.check_sessions(node);
        self.observer.check_step(self.now, node);
    }

    fn on_transmit(&mut self, node: usize, transmit: Transmit) {
        self.datagrams += 1;
        self.digest.update(self.now.as_micros().to_le_bytes());
        self.digest.update((node as u64).to_le_bytes());
        // A datagram ends with the AEAD tag or MAC that covers the rest of it: its length
        // and last 32 bytes tell a changed run as well as all of it would, and hashing
        // every byte was a twentieth of a 300-device run.
        let datagram = &transmit.datagram;
        self.digest.update((datagram.len() as u64).to_le_bytes());
        self.digest.update(&datagram[datagram.len().saturating_sub(32)..]);
        let since_start = self.now.saturating_since(Timestamp::ZERO);
        if since_start >= self.phases.idle_start && since_start < self.phases.idle_end {
            self.idle_packets += 1;
            self.idle_bytes += transmit.datagram.len() as u64;
        }
        let from = self.devices[node].address;
        if let Some(&to) = self.addresses.get(&transmit.destination) {
            for delay in self.network.deliveries(&mut self.rng, node, to) {
                let datagram = transmit.datagram.clone();
                self.push(self.now + delay, Item::Deliver { to, from, datagram });
            }
        }
    }

    fn on_membership(&mut self, node: usize, running: &Node, event: MembershipEvent) {
        self.digest.update(format!("{node} {event:?}").as_bytes());
        match event {
            MembershipEvent::StateChanged { member, state, .. } => {
                if let Some(&target) = self.index.get(&member) {
                    self.trace(format_args!("device {node} sees {target} {}", state.as_str()));
                    self.observer.on_state(self.now, node, target, state);
                }
            }
            MembershipEvent::AddressChanged { .. }
            | MembershipEvent::AddressHeard { .. }
            | MembershipEvent::Restarted { .. } => {}
        }
        let incarnation = running.membership().incarnation();
        let device = &mut self.devices[node];
        device.max_incarnation = device.max_incarnation.max(incarnation);
    }

    /// No device holds session keys with anyone outside the roster: looked at whenever a
    /// handshake completed, the only way to new keys. Also notes its incarnation.
    fn check_sessions(&mut self, node: usize) {
        let device = &mut self.devices[node];
        let Some(running) = device.node.as_ref() else {
            return;
        };
        device.max_incarnation = device.max_incarnation.max(running.membership().incarnation());
        let established = running.stats().sessions_established;
        if std::mem::replace(&mut device.sessions_checked, established) == established {
            return;
        }
        let local = device.clock.local(self.now);
        for peer in running.session_peers(local) {
            if !self.index.contains_key(&peer) {
                self.observer.violations.push(format!(
                    "device {node} holds a session with {peer:?}, not on the roster"
                ));
            }
        }
    }

    fn trace(&self, what: std::fmt::Arguments<'_>) {
        if self.config.trace {
            eprintln!(
                "{:>10.3}s  {what}",
                self.now.saturating_since(Timestamp::ZERO).as_secs_f64()
            );
        }
    }

    fn fault(&mut self, fault: Fault) {
        self.digest.update(format!("{fault:?}").as_bytes());
        self.trace(format_args!("fault: {fault:?}"));
        match fault {
            Fault::Crash(node) => {
                self.save_roster(node);
                if let Some(crashed) = self.devices[node].node.take() {
                    // Runs waiting their turn die with it unless the queue is durable.
                    self.runs_queued_at_crash += crashed.queued_runs().0;
                    // A device that dies while asleep is simply dead.
                    self.devices[node].paused = false;
                    self.devices[node].cancel_timer();
                    self.observer.on_crash(self.now, node);
                }
            }
            Fault::Restart(node) => {
                if self.devices[node].node.is_none() {
                    self.observer.on_up(self.now, node, true);
                    self.start(node);
                }
            }
            Fault::Pause(node) => {
                let device = &mut self.devices[node];
                if device.node.is_some() && !device.paused {
                    device.paused = true;
                    device.cancel_timer();
                    self.observer.on_pause(self.now, node);
                }
            }
            Fault::Resume(node) => {
                if self.devices[node].paused && self.devices[node].node.is_some() {
                    self.devices[node].paused = false;
                    self.observer.on_up(self.now, node, false);
                    // Its timers are overdue: it notices it slept.
                    self.drain(node);
                }
            }
            Fault::Partition { from, to, both } => {
                self.network.block(&from, &to);
                if both {
                    self.network.block(&to, &from);
                }
                self.observer.on_partition();
            }
            Fault::Heal => {
                self.network.heal();
                self.observer.on_heal(self.now);
            }
            Fault::Roam(node) => {
                // A move nobody running can see is unrecoverable without discovery (no
                // device would know any current address): such a move is not made.
                let witnessed = (0..self.devices.len()).any(|other| {
                    other != node && self.observer.is_live(other) && self.network.connected(node, other)
                });
                if !witnessed {
                    self.trace(format_args!(
                        "roam of {node} skipped: no running device would see it"
                    ));
                    return;
                }
                let device = &mut self.devices[node];
                self.addresses.remove(&device.address);
                device.roams += 1;
                device.address = address_of(node, device.roams);
                self.addresses.insert(device.address, node);
                self.observer.on_roam(self.now, node);
            }
        }
    }

    /// The state device `observer` shows for device `target` (for scenario tests).
    pub fn view(&self, observer: usize, target: usize) -> Option<cnspr_proto::membership::MemberState> {
        self.member(observer, target).map(|m| m.state())
    }
}

/// One device's outputs, carried out in the world.
struct Drain<'a> {
    world: &'a mut World,
    node: usize,
}

impl Host for Drain<'_> {
    type Error = std::convert::Infallible;

    fn persist(&mut self, writes: Vec<Write>) -> Result<(), Self::Error> {
        self.world.devices[self.node].disk.apply(writes);
        Ok(())
    }

    fn transmit(&mut self, transmit: Transmit) {
        self.world.on_transmit(self.node, transmit);
    }

    fn event(&mut self, running: &Node, event: Event) {
        let (world, node) = (&mut *self.world, self.node);
        match event {
            Event::Membership(event) => world.on_membership(node, running, event),
            Event::Messaging(event) => {
                world.digest.update(format!("{node} {event:?}").as_bytes());
                let index = &world.index;
                world.ledger.on_event(node, &event, |id| index.get(id).copied());
            }
            Event::RunStart(start) => {
                world.digest.update(format!("{node} {start:?}").as_bytes());
                world.ledger.on_run_start(node, &start);
                // Handlers take a while: long enough that crashes catch some mid-run.
                let took = Duration::from_millis(200 + world.workload_rng.next_u64() % 2800);
                let item = Item::RunDone {
                    node,
                    boot: world.devices[node].boot,
                    job: start.job,
                    index: start.index,
                };
                world.push(world.now + took, item);
            }
            Event::RunInterrupted(run) => {
                world.digest.update(format!("{node} {run:?}").as_bytes());
                world.ledger.on_run_interrupted(node, &run);
            }
            // The simulated mesh is formed from a fixed roster: no pairing happens.
            _ => {}
        }
    }
}

/// The workload's handler tree: one handler takes every workload message and event.
struct WorkloadHandlers;

impl HandlerTree for WorkloadHandlers {
    fn handlers_for(&self, _: JobKind, _: &Tag, _: &DeviceId, _: Option<&str>) -> Vec<String> {
        vec!["sim/workload.sh".to_owned()]
    }
}
