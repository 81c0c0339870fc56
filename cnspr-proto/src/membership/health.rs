//! Lifeguard's local health multiplier: a device that misses answers, or has to refute
//! suspicions of itself, is probably the one in trouble (overloaded, on a bad link, just
//! woken). It then probes more slowly and waits longer before accusing anyone.

/// A saturating score from 0 (healthy) to a maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalHealth {
    score: u32,
    max: u32,
}

impl LocalHealth {
    /// Healthy, with the given ceiling.
    pub fn new(max: u32) -> Self {
        Self { score: 0, max }
    }

    /// Something went wrong on our side (a probe got no answer at all, a relay did not
    /// answer, we had to refute a suspicion of ourselves).
    pub fn worse(&mut self) {
        self.score = (self.score + 1).min(self.max);
    }

    /// A probe round-trip succeeded.
    pub fn better(&mut self) {
        self.score = self.score.saturating_sub(1);
    }

    /// The factor that stretches probe intervals and timeouts: `score + 1`.
    pub fn multiplier(&self) -> u32 {
        self.score + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturates_both_ways() {
        let mut health = LocalHealth::new(2);
        health.better();
        assert_eq!(health.multiplier(), 1);
        for _ in 0..5 {
            health.worse();
        }
        assert_eq!(health.multiplier(), 3);
    }
}
