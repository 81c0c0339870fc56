//! The virtual network: latency with jitter (which reorders), loss, duplication, and
//! partitions that may be one-way.

use std::collections::BTreeSet;
use std::time::Duration;

use cnspr_proto::rng::Rng;

/// How links behave.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkModel {
    /// Latency every datagram has at least.
    pub base_latency: Duration,
    /// Extra latency drawn uniformly from zero to this, per datagram (reorders them).
    pub jitter: Duration,
    /// Each direction of each link has its own fixed extra latency, up to this: links
    /// differ, and a path can be slower one way than the other.
    pub link_spread: Duration,
    /// Probability a datagram is lost.
    pub loss: f64,
    /// Probability a datagram arrives twice.
    pub duplicate: f64,
}

impl Default for LinkModel {
    fn default() -> Self {
        Self {
            base_latency: Duration::from_micros(500),
            jitter: Duration::from_millis(3),
            link_spread: Duration::from_millis(1),
            loss: 0.0,
            duplicate: 0.0,
        }
    }
}

/// The network between the simulated devices.
#[derive(Debug, Clone)]
pub struct Network {
    /// How links behave.
    pub link: LinkModel,
    blocked: BTreeSet<(usize, usize)>,
}

fn chance(rng: &mut Rng, probability: f64) -> bool {
    let unit = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    unit < probability
}

impl Network {
    /// A network with the given link behaviour and no partitions.
    pub fn new(link: LinkModel) -> Self {
        Self {
            link,
            blocked: BTreeSet::new(),
        }
    }

    /// Delays of the copies of one datagram from `from` to `to`: none if lost or blocked.
    pub fn deliveries(&self, rng: &mut Rng, from: usize, to: usize) -> Vec<Duration> {
        if self.blocked.contains(&(from, to)) || chance(rng, self.link.loss) {
            return Vec::new();
        }
        let copies = if chance(rng, self.link.duplicate) { 2 } else { 1 };
        let link_micros = self.link.link_spread.as_micros() as u64;
        // A fixed function of the direction: the same every run, different per link.
        let link_extra = if link_micros == 0 {
            0
        } else {
            let mixed = (from as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
                ^ (to as u64).wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
            (mixed >> 17) % link_micros
        };
        (0..copies)
            .map(|_| {
                let jitter_micros = self.link.jitter.as_micros() as u64;
                let extra = if jitter_micros == 0 {
                    0
                } else {
                    rng.next_u64() % jitter_micros
                };
                self.link.base_latency + Duration::from_micros(link_extra + extra)
            })
            .collect()
    }

    /// Blocks every datagram from a device in `from` to a device in `to`.
    pub fn block(&mut self, from: &[usize], to: &[usize]) {
        for a in from {
            for b in to {
                self.blocked.insert((*a, *b));
            }
        }
    }

    /// Removes every partition.
    pub fn heal(&mut self) {
        self.blocked.clear();
    }

    /// Whether any partition is in place.
    pub fn is_partitioned(&self) -> bool {
        !self.blocked.is_empty()
    }

    /// Whether datagrams flow both ways between `a` and `b`.
    pub fn connected(&self, a: usize, b: usize) -> bool {
        !self.blocked.contains(&(a, b)) && !self.blocked.contains(&(b, a))
    }
}
