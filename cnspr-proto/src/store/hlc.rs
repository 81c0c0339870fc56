//! Hybrid logical clock: physical time in microseconds with a counter, never going
//! backwards and always ahead of every clock it has seen, so that "later write" means the
//! same thing on every device even when their clocks disagree a little.

use serde::{Deserialize, Serialize};

/// How far ahead of this device's own clock another device's reading may be. A write
/// stamped further ahead is refused: taken in, it would move this clock there for good
/// and win every later conflict. Clocks of devices that keep time differ by far less.
pub const MAX_AHEAD_MICROS: u64 = 10 * 60 * 1_000_000;

/// One reading of a hybrid logical clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Hlc {
    /// Microseconds since the Unix epoch (the largest seen).
    pub micros: u64,
    /// Orders readings within one microsecond.
    pub counter: u32,
}

impl Hlc {
    /// The next reading for a local event at physical time `wall_micros`.
    pub fn tick(&mut self, wall_micros: u64) -> Hlc {
        if wall_micros > self.micros {
            self.micros = wall_micros;
            self.counter = 0;
        } else {
            self.counter = self.counter.saturating_add(1);
        }
        *self
    }

    /// Takes in a reading from another device, so that later local readings exceed it.
    pub fn observe(&mut self, remote: Hlc) {
        if remote > *self {
            *self = remote;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_only_grow_and_pass_what_was_seen() {
        let mut clock = Hlc::default();
        let first = clock.tick(1_000);
        let same_instant = clock.tick(1_000);
        let clock_went_back = clock.tick(500);
        assert!(first < same_instant && same_instant < clock_went_back);
        clock.observe(Hlc {
            micros: 9_000,
            counter: 3,
        });
        let after = clock.tick(2_000);
        assert!(
            after
                > Hlc {
                    micros: 9_000,
                    counter: 3
                }
        );
    }
}
