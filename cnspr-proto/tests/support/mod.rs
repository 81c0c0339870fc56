//! Devices on a virtual network for the core's integration tests: instant delivery with an
//! optional loss rate, virtual time, crashes and restarts from exactly what was persisted.
#![allow(dead_code)]

mod insider;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use cnspr_proto::durable::{MemoryDisk, Write};
use cnspr_proto::identity::{DeviceId, DeviceKey};
use cnspr_proto::membership::{MemberState, MembershipEvent};
use cnspr_proto::node::{Durable, Event, Host, Node, NodeConfig};
use cnspr_proto::roster::mesh_secret::{StoredSecrets, MESH_SECRET_KEY};
use cnspr_proto::roster::sealed_secret::SealedSecrets;
use cnspr_proto::roster::KnownDevice;
use cnspr_proto::time::Timestamp;
use cnspr_proto::transport::{InviteSecret, Transmit};
pub use insider::Insider;

/// Unix time at the start of every test.
pub const WALL_START_SECS: u64 = 1_800_000_000;

/// One device: its node while it runs, and its disk.
pub struct Device {
    pub node: Option<Node>,
    pub name: String,
    pub keys: [u8; 32],
    pub boot: u32,
    pub disk: MemoryDisk,
}

/// Devices on an instant network.
pub struct Mesh {
    pub now: Timestamp,
    pub devices: BTreeMap<SocketAddr, Device>,
    pub events: Vec<(SocketAddr, Event)>,
    /// Stolen devices ([`Mesh::steal`]), by address.
    pub insiders: BTreeMap<SocketAddr, Insider>,
    /// Percent of datagrams lost.
    pub loss_percent: u64,
    rng: u64,
    start: Timestamp,
    /// Seconds the wall clock was moved on beyond virtual time ([`Mesh::skip_wall_clock`]).
    wall_skipped_secs: u64,
    /// What every device starts with.
    pub config: NodeConfig,
    /// Pairs of addresses between which nothing passes, either way ([`Mesh::cut`]).
    pub cuts: std::collections::BTreeSet<(SocketAddr, SocketAddr)>,
}

pub fn address(n: u8) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, n], 3030))
}

/// One device's side of a round: its disk, and the datagrams and events it puts out.
struct Wire<'a> {
    from: SocketAddr,
    disk: &'a mut MemoryDisk,
    in_flight: &'a mut Vec<(SocketAddr, SocketAddr, Vec<u8>)>,
    events: &'a mut Vec<(SocketAddr, Event)>,
}

impl Host for Wire<'_> {
    type Error = std::convert::Infallible;

    fn persist(&mut self, writes: Vec<Write>) -> Result<(), Self::Error> {
        self.disk.apply(writes);
        Ok(())
    }

    fn transmit(&mut self, transmit: Transmit) {
        self.in_flight
            .push((self.from, transmit.destination, transmit.datagram));
    }

    fn event(&mut self, _node: &Node, event: Event) {
        self.events.push((self.from, event));
    }
}

impl Mesh {
    pub fn new() -> Self {
        let start = Timestamp::from_micros(1_000_000);
        Self {
            now: start,
            devices: BTreeMap::new(),
            events: Vec::new(),
            insiders: BTreeMap::new(),
            loss_percent: 0,
            rng: 0x9e37_79b9_7f4a_7c15,
            start,
            wall_skipped_secs: 0,
            config: NodeConfig::default(),
            cuts: Default::default(),
        }
    }

    /// The devices' wall clock now (Unix seconds).
    pub fn unix_now(&self) -> u64 {
        WALL_START_SECS + self.wall_skipped_secs + self.now.saturating_since(self.start).as_secs()
    }

    /// Moves every device's wall clock `secs` ahead (weeks pass, without simulating them),
    /// the devices started later included.
    pub fn skip_wall_clock(&mut self, secs: u64) {
        self.wall_skipped_secs += secs;
        let (now, unix) = (self.now, self.unix_now());
        for node in self.devices.values_mut().filter_map(|d| d.node.as_mut()) {
            node.set_wall_clock(now, unix);
        }
    }

    /// A device alone in its own mesh.
    pub fn add(&mut self, n: u8, name: &str) -> DeviceId {
        let keys = [n; 32];
        let mut device = Device {
            node: None,
            name: name.to_owned(),
            keys,
            boot: 0,
            disk: MemoryDisk::default(),
        };
        let node = self.boot(&mut device, Vec::new());
        let id = node.own_id();
        device.node = Some(node);
        self.devices.insert(address(n), device);
        id
    }

    fn boot(&self, device: &mut Device, roster: Vec<(DeviceId, cnspr_proto::roster::RosterEntry)>) -> Node {
        device.boot += 1;
        let mut seed = device.keys;
        seed[0] ^= device.boot as u8;
        let durable = Durable {
            identity: DeviceKey::from_seed(device.keys),
            boot: device.boot,
            name: Some(device.name.clone()),
            roster: roster
                .into_iter()
                .map(|(id, entry)| KnownDevice {
                    id,
                    entry,
                    address: self.address_of(&id),
                })
                .collect(),
            records: device.disk.records(),
        };
        Node::restore(self.config.clone(), durable, seed, self.now, self.unix_now())
    }

    fn address_of(&self, id: &DeviceId) -> Option<SocketAddr> {
        self.devices
            .iter()
            .find(|(_, d)| DeviceKey::from_seed(d.keys).device_id() == *id)
            .map(|(a, _)| *a)
    }

    pub fn node(&self, n: u8) -> &Node {
        self.devices[&address(n)]
            .node
            .as_ref()
            .expect("device is running")
    }

    pub fn node_mut(&mut self, n: u8) -> &mut Node {
        self.devices
            .get_mut(&address(n))
            .and_then(|d| d.node.as_mut())
            .expect("device is running")
    }

    /// Stops a device as `kill -9` would: only its disk remains.
    pub fn crash(&mut self, n: u8) {
        if let Some(device) = self.devices.get_mut(&address(n)) {
            device.node = None;
        }
    }

    /// Starts a crashed device again from its disk and the roster it had.
    pub fn restart(&mut self, n: u8, roster: Vec<(DeviceId, cnspr_proto::roster::RosterEntry)>) {
        let mut device = self.devices.remove(&address(n)).expect("device exists");
        let node = self.boot(&mut device, roster);
        device.node = Some(node);
        self.devices.insert(address(n), device);
    }

    /// A device's roster entries (to restart it with).
    pub fn roster_of(&self, n: u8) -> Vec<(DeviceId, cnspr_proto::roster::RosterEntry)> {
        self.node(n)
            .roster()
            .entries()
            .map(|(id, e)| (*id, e.clone()))
            .collect()
    }

    fn lost(&mut self) -> bool {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng % 100 < self.loss_percent
    }

    /// Delivers everything and runs timers for `duration` of virtual time.
    pub fn run(&mut self, duration: Duration) {
        let end = self.now + duration;
        loop {
            let mut in_flight = Vec::new();
            let mut next = end;
            for (from, device) in &mut self.devices {
                let Some(node) = device.node.as_mut() else {
                    continue;
                };
                let mut host = Wire {
                    from: *from,
                    disk: &mut device.disk,
                    in_flight: &mut in_flight,
                    events: &mut self.events,
                };
                let Ok(at) = node.drive(&mut host);
                next = next.min(at);
            }
            for (from, insider) in &mut self.insiders {
                while let Some(transmit) = insider.endpoint.poll_transmit() {
                    in_flight.push((*from, transmit.destination, transmit.datagram));
                }
                // What it received is read and dropped: it answers nothing on its own.
                while insider.endpoint.poll_event().is_some() {}
                if let Some(at) = insider.endpoint.poll_timeout() {
                    next = next.min(at);
                }
            }
            if !in_flight.is_empty() {
                for (from, to, datagram) in in_flight {
                    if self.lost() || self.cuts.contains(&(from, to)) {
                        continue;
                    }
                    let now = self.now;
                    if let Some(node) = self.devices.get_mut(&to).and_then(|d| d.node.as_mut()) {
                        let _ = node.handle_datagram(now, from, &datagram);
                    } else if let Some(insider) = self.insiders.get_mut(&to) {
                        let _ = insider.endpoint.handle_datagram(now, from, &datagram);
                    }
                }
                continue;
            }
            if next >= end {
                self.now = end;
                return;
            }
            self.now = next.max(self.now);
            let now = self.now;
            for node in self.devices.values_mut().filter_map(|d| d.node.as_mut()) {
                node.handle_timeout(now);
            }
            for insider in self.insiders.values_mut() {
                insider.endpoint.handle_timeout(now);
            }
        }
    }

    pub fn invite(&mut self, inviter: u8, secret_byte: u8) -> InviteSecret {
        let secret = InviteSecret {
            token_id: [secret_byte; 16],
            psk: [secret_byte; 32],
        };
        let expires = self.now + Duration::from_secs(600);
        self.node_mut(inviter).invite(&secret, expires);
        secret
    }

    pub fn join(&mut self, joiner: u8, inviter: u8, secret: InviteSecret) {
        let inviter_id = self.node(inviter).own_id();
        let now = self.now;
        self.node_mut(joiner)
            .join(now, inviter_id, address(inviter), secret);
    }

    /// Devices `1..=count`, all paired through device 1, run until all see each other.
    pub fn paired(count: u8) -> (Self, Vec<DeviceId>) {
        Self::paired_with(count, NodeConfig::default())
    }

    /// As [`Mesh::paired`], every device with `config`.
    pub fn paired_with(count: u8, config: NodeConfig) -> (Self, Vec<DeviceId>) {
        let mut mesh = Self::new();
        mesh.config = config;
        let ids: Vec<DeviceId> = (1..=count).map(|n| mesh.add(n, &format!("device-{n}"))).collect();
        for n in 2..=count {
            let invite = mesh.invite(1, n);
            mesh.join(n, 1, invite);
            mesh.run(Duration::from_secs(1));
        }
        mesh.run(Duration::from_secs(10));
        for n in 1..=count {
            for id in ids.iter().filter(|id| **id != mesh.node(n).own_id()) {
                assert_eq!(
                    mesh.state(n, id),
                    Some(MemberState::Active),
                    "device {n} sees all active"
                );
            }
        }
        mesh.events.clear();
        (mesh, ids)
    }

    /// Nothing passes between devices `a` and `b` from now on, either way (each still
    /// reaches the others).
    pub fn cut(&mut self, a: u8, b: u8) {
        self.cuts.insert((address(a), address(b)));
        self.cuts.insert((address(b), address(a)));
    }

    /// The stored mesh secret values of device `n` (every sibling), as device `n` opens
    /// them.
    pub fn secrets_of(&self, n: u8) -> Vec<StoredSecrets> {
        let key = DeviceKey::from_seed(self.devices[&address(n)].keys);
        self.sealed_secrets_of(n)
            .iter()
            .filter_map(|sealed| sealed.open(key.noise(), &key.device_id()))
            .collect()
    }

    /// The stored mesh secret values of device `n` (every sibling), sealed.
    pub fn sealed_secrets_of(&self, n: u8) -> Vec<SealedSecrets> {
        let Some(read) = self.node(n).store().read(MESH_SECRET_KEY) else {
            return Vec::new();
        };
        read.register
            .siblings()
            .iter()
            .filter_map(|s| SealedSecrets::decode(s.value.as_deref()?).ok())
            .collect()
    }

    pub fn state(&self, observer: u8, of: &DeviceId) -> Option<MemberState> {
        self.node(observer).member(of).map(|m| m.state())
    }

    /// The states device `observer` reported for `of`: the detector's own
    /// ([`Event::Membership`]) and those shown to people ([`Event::PeerState`]).
    pub fn reported_states(&self, observer: u8, of: &DeviceId) -> (Vec<MemberState>, Vec<MemberState>) {
        let mut detected = Vec::new();
        let mut shown = Vec::new();
        for (from, event) in &self.events {
            if *from != address(observer) {
                continue;
            }
            match event {
                Event::Membership(MembershipEvent::StateChanged { member, state, .. }) if member == of => {
                    detected.push(*state)
                }
                Event::PeerState { member, state, .. } if member == of => shown.push(*state),
                _ => {}
            }
        }
        (detected, shown)
    }
}
