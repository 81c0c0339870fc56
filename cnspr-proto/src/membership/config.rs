//! Every membership parameter in one place, with two profiles.

use std::time::Duration;

/// Timers and fan-outs of failure detection. See `docs/membership.md` for how they combine
/// into detection time and traffic.
#[derive(Debug, Clone, PartialEq)]
pub struct MembershipConfig {
    /// Time between two probes sent by this device (scaled up by local health).
    pub probe_interval: Duration,
    /// How long to wait for a direct probe's answer (scaled up by local health).
    pub probe_timeout: Duration,
    /// How long to wait for relays to report on an indirect probe, after the direct one
    /// failed (scaled up by local health).
    pub indirect_timeout: Duration,
    /// Relays asked to probe a target that did not answer directly.
    pub indirect_relays: usize,
    /// Devices each device monitors (its successors on the monitoring ring), and so also
    /// how many monitor it. Capped by the mesh size.
    pub monitors: usize,
    /// A probe is skipped when the target was heard from (any authenticated packet) within
    /// this long: it just proved itself alive.
    pub recently_heard: Duration,
    /// Suspicion timeout with no confirmations.
    pub suspicion_max: Duration,
    /// Suspicion timeout once `suspicion_confirmations` other devices confirmed.
    pub suspicion_min: Duration,
    /// Independent confirmations that bring the suspicion timeout down to its minimum.
    pub suspicion_confirmations: u32,
    /// Highest value of the local health multiplier (Lifeguard's LHM).
    pub health_max: u32,
    /// How often to try unreachable devices again (as many at a time as
    /// `indirect_relays`), so partitions heal.
    pub reconnect_interval: Duration,
    /// Updates piggybacked on one probe message at most.
    pub piggyback_max: usize,
    /// How many times each update is piggybacked, times log2 of the mesh size.
    pub retransmit_mult: u32,
    /// A timer that fires this much later than asked means this device was asleep (lid
    /// closed, process stopped): its view is stale and its suspicions are restarted.
    pub sleep_threshold: Duration,
}

impl MembershipConfig {
    /// For mains-powered devices: a crashed device is known to every other within about
    /// three seconds, for about one packet per second per device.
    pub fn responsive() -> Self {
        Self {
            probe_interval: Duration::from_millis(500),
            probe_timeout: Duration::from_millis(200),
            indirect_timeout: Duration::from_millis(300),
            indirect_relays: 2,
            monitors: 4,
            recently_heard: Duration::from_millis(5400),
            suspicion_max: Duration::from_secs(6),
            suspicion_min: Duration::from_millis(250),
            suspicion_confirmations: 2,
            health_max: 8,
            reconnect_interval: Duration::from_secs(10),
            piggyback_max: 8,
            retransmit_mult: 1,
            sleep_threshold: Duration::from_secs(5),
        }
    }

    /// For batteries: about a fifth of the traffic, detection in about fifteen seconds.
    pub fn frugal() -> Self {
        Self {
            probe_interval: Duration::from_secs(5),
            probe_timeout: Duration::from_millis(500),
            indirect_timeout: Duration::from_millis(800),
            recently_heard: Duration::from_secs(20),
            suspicion_max: Duration::from_secs(20),
            suspicion_min: Duration::from_secs(4),
            reconnect_interval: Duration::from_secs(60),
            sleep_threshold: Duration::from_secs(20),
            ..Self::responsive()
        }
    }

    /// A profile by name: `responsive` or `frugal`.
    pub fn profile(name: &str) -> Option<Self> {
        match name {
            "responsive" => Some(Self::responsive()),
            "frugal" => Some(Self::frugal()),
            _ => None,
        }
    }
}

impl Default for MembershipConfig {
    fn default() -> Self {
        Self::responsive()
    }
}
