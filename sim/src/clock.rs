//! Each simulated device's own clock: offset and drift against the simulator's global
//! time, so devices disagree about time as real ones do.

use cnspr_proto::time::Timestamp;

/// `local = global + offset + global * drift_ppm / 10^6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    /// Microseconds this clock is ahead (never negative, so local time stays positive).
    pub offset_micros: u64,
    /// Parts per million this clock runs fast (negative: slow). Bounded to ±1000.
    pub drift_ppm: i64,
}

impl Clock {
    /// A clock that agrees with global time.
    pub const EXACT: Clock = Clock {
        offset_micros: 0,
        drift_ppm: 0,
    };

    /// What this device's clock reads at global time `global`.
    pub fn local(&self, global: Timestamp) -> Timestamp {
        let g = i128::from(global.as_micros());
        let local = g + i128::from(self.offset_micros) + g * i128::from(self.drift_ppm) / 1_000_000;
        Timestamp::from_micros(u64::try_from(local.max(0)).unwrap_or(u64::MAX))
    }

    /// The earliest global time at which this clock reads at least `local`.
    pub fn global(&self, local: Timestamp) -> Timestamp {
        if local == Timestamp::MAX {
            return Timestamp::MAX;
        }
        let since_offset = i128::from(local.as_micros()) - i128::from(self.offset_micros);
        let scale = 1_000_000 + i128::from(self.drift_ppm);
        let mut global = (since_offset.max(0) * 1_000_000 + scale - 1) / scale;
        // Integer rounding can land a microsecond off either way: settle on the earliest.
        while self.local(Timestamp::from_micros(global as u64)) < local {
            global += 1;
        }
        while global > 0 && self.local(Timestamp::from_micros(global as u64 - 1)) >= local {
            global -= 1;
        }
        Timestamp::from_micros(u64::try_from(global).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_inverts_local() {
        let clock = Clock {
            offset_micros: 5_000_000,
            drift_ppm: -300,
        };
        for micros in [0u64, 1, 999, 10_000_000, 3_600_000_000] {
            let local = clock.local(Timestamp::from_micros(micros));
            let back = clock.global(local);
            assert!(clock.local(back) >= local);
            assert!(back.as_micros() <= micros, "{micros} -> {back:?}");
        }
    }
}
