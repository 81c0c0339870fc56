//! What one device knows about one member of the mesh.

use std::net::SocketAddr;

use crate::identity::{DeviceId, Signature};
use crate::membership::message::Status;
use crate::membership::rtt::RttEstimate;
use crate::membership::suspicion::Suspicion;
use crate::time::Timestamp;

/// The states `cnspr members` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MemberState {
    /// A direct session works.
    Active,
    /// Missed probes; being checked.
    Suspect,
    /// Not reachable directly, reachable through another device.
    Indirect,
    /// Declared failed (or never heard from yet).
    Unreachable,
    /// Said goodbye.
    Left,
}

impl MemberState {
    /// The lower-case name shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberState::Active => "active",
            MemberState::Suspect => "suspect",
            MemberState::Indirect => "indirect",
            MemberState::Unreachable => "unreachable",
            MemberState::Left => "left",
        }
    }
}

/// One device of the roster, as this device sees it.
#[derive(Debug, Clone)]
pub struct Member {
    /// Its device ID.
    pub id: DeviceId,
    /// The highest incarnation heard of.
    pub incarnation: u64,
    /// Its agreed state at that incarnation.
    pub status: Status,
    /// Whether our last probe reached it only through a relay.
    pub indirect: bool,
    /// Where to reach it.
    pub address: Option<SocketAddr>,
    /// Round trips of our probes.
    pub rtt: RttEstimate,
    /// When an authenticated packet last came from it.
    pub last_heard: Option<Timestamp>,
    /// When it is probed if nothing comes from it before: `recently_heard` after
    /// `last_heard`, give or take a random tenth, so that the devices that heard it at one
    /// moment (it just started) do not probe it in step forever after, all missing the
    /// same stretch of time.
    pub probe_due: Option<Timestamp>,
    /// When a completed handshake last made it be probed at once while unreachable (at
    /// most once a `reconnect_interval`).
    pub probed_on_handshake: Option<Timestamp>,
    /// While it is alive only as far as others know: the device whose probe last reached
    /// it for us.
    pub via: Option<DeviceId>,
    /// When its shown state last changed.
    pub since: Timestamp,
    /// The running suspicion, while suspect.
    pub suspicion: Option<Suspicion>,
    /// Its signature of `incarnation` (of leaving at it while `Left`), when news brought
    /// one: passed on with news of it, for devices that have not heard it there.
    pub proof: Option<Signature>,
    /// Our incarnation whose signed claim went in our messages to it, and how many
    /// times.
    pub claim_sent: (u64, u8),
    /// Whether what we know was learnt since this device last started or woke: only
    /// fresh knowledge is passed on to devices that come back.
    pub fresh: bool,
}

impl Member {
    /// A roster member not heard from yet: unreachable at incarnation zero, so any real
    /// announcement (incarnations start above zero) supersedes it.
    pub fn unheard(id: DeviceId, address: Option<SocketAddr>, now: Timestamp) -> Self {
        Self {
            id,
            incarnation: 0,
            status: Status::Unreachable,
            indirect: false,
            address,
            rtt: RttEstimate::default(),
            last_heard: None,
            probe_due: None,
            probed_on_handshake: None,
            via: None,
            since: now,
            suspicion: None,
            proof: None,
            claim_sent: (0, 0),
            fresh: false,
        }
    }

    /// The state shown to people.
    pub fn state(&self) -> MemberState {
        match self.status {
            Status::Alive if self.indirect => MemberState::Indirect,
            Status::Alive => MemberState::Active,
            Status::Suspect => MemberState::Suspect,
            Status::Unreachable => MemberState::Unreachable,
            Status::Left => MemberState::Left,
        }
    }

    /// Whether it takes part in probing and news (alive or suspect).
    pub fn is_live(&self) -> bool {
        matches!(self.status, Status::Alive | Status::Suspect)
    }
}
