//! Lifeguard's dynamic suspicion timeout: it starts long and shortens logarithmically as
//! other devices independently confirm the suspicion, so a real failure is declared fast
//! while a lone, possibly misinformed accuser has to wait.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::identity::DeviceId;
use crate::time::Timestamp;

/// One suspicion of one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suspicion {
    started: Timestamp,
    accusers: BTreeSet<DeviceId>,
}

impl Suspicion {
    /// A suspicion raised by `accuser` at `started`.
    pub fn new(started: Timestamp, accuser: DeviceId) -> Self {
        Self {
            started,
            accusers: BTreeSet::from([accuser]),
        }
    }

    /// Adds an accuser; returns whether it was new. The set is bounded by the confirmations
    /// that still matter, so a flood of accusations costs nothing.
    pub fn confirm(&mut self, accuser: DeviceId, confirmations_needed: u32) -> bool {
        if self.confirmations() >= confirmations_needed {
            return false;
        }
        self.accusers.insert(accuser)
    }

    /// Independent accusers beyond the first.
    pub fn confirmations(&self) -> u32 {
        u32::try_from(self.accusers.len().saturating_sub(1)).unwrap_or(u32::MAX)
    }

    /// When the suspected device is to be declared unreachable.
    pub fn deadline(&self, min: Duration, max: Duration, confirmations_needed: u32) -> Timestamp {
        self.started + timeout(min, max, self.confirmations(), confirmations_needed)
    }

    /// Starts the clock again (after this device slept and could not have heard a
    /// refutation).
    pub fn restart(&mut self, now: Timestamp) {
        self.started = now;
    }
}

/// `max - (max - min) * log(c + 1) / log(k + 1)`, never below `min`.
pub fn timeout(min: Duration, max: Duration, confirmations: u32, needed: u32) -> Duration {
    if needed == 0 || confirmations >= needed {
        return min;
    }
    let fraction = f64::from(confirmations + 1).ln() / f64::from(needed + 1).ln();
    let span = max.saturating_sub(min).as_secs_f64();
    max.saturating_sub(Duration::from_secs_f64(span * fraction))
        .max(min)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_shrinks_with_confirmations_from_max_to_min() {
        let (min, max) = (Duration::from_secs(1), Duration::from_secs(6));
        assert_eq!(timeout(min, max, 0, 3), max);
        let one = timeout(min, max, 1, 3);
        let two = timeout(min, max, 2, 3);
        assert!(max > one && one > two && two > min, "{one:?} {two:?}");
        assert_eq!(timeout(min, max, 3, 3), min);
        assert_eq!(timeout(min, max, 9, 3), min);
    }

    #[test]
    fn the_same_accuser_twice_is_one_confirmation() {
        let a = DeviceId::from_bytes([1; 32]);
        let b = DeviceId::from_bytes([2; 32]);
        let mut suspicion = Suspicion::new(Timestamp::ZERO, a);
        assert!(!suspicion.confirm(a, 2));
        assert!(suspicion.confirm(b, 2));
        assert!(!suspicion.confirm(b, 2));
        assert_eq!(suspicion.confirmations(), 1);
    }
}
