//! The daemon's clock: the core's [`Timestamp`] counted from when the daemon started, on
//! `CLOCK_BOOTTIME`, which keeps counting while the machine is suspended. A laptop that
//! sleeps an hour must look an hour later to the core (which then knows it slept, renews
//! its sessions and refutes what others concluded meanwhile); Tokio's clock
//! (`CLOCK_MONOTONIC`) stops during suspend and would hide the sleep.
//!
//! Timers are still armed on Tokio's clock, by the distance from now to the deadline.
//!
//! Wall-clock time, for what outlives the daemon or crosses devices (invite expiry, the
//! core's message and event lifetimes), is [`unix_now`]: the one reading of it in the
//! runtime and the CLI.

use std::time::Duration;

use cnspr_proto::time::Timestamp;
use rustix::time::{clock_gettime, ClockId};
use tokio::time::Instant;

/// How far ahead to sleep when the node asks for no timer at all.
const IDLE_WAKE: Duration = Duration::from_secs(3600);

fn boot_time() -> Duration {
    let now = clock_gettime(ClockId::Boottime);
    let secs = u64::try_from(now.tv_sec).unwrap_or(0);
    let nanos = u32::try_from(now.tv_nsec).unwrap_or(0);
    Duration::new(secs, nanos)
}

/// Unix time now, in whole seconds (0 if the system clock is set before 1970).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Converts between the machine's clock and core timestamps.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch: Duration,
}

impl Clock {
    /// A clock whose epoch is now.
    pub fn start() -> Self {
        Self { epoch: boot_time() }
    }

    /// The core's time now.
    pub fn now(&self) -> Timestamp {
        let elapsed = boot_time().saturating_sub(self.epoch);
        Timestamp::from_micros(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX))
    }

    /// The Tokio instant at which the core's clock reads `at` (`Timestamp::MAX`: an hour
    /// from now).
    pub fn instant(&self, at: Timestamp) -> Instant {
        if at == Timestamp::MAX {
            return Instant::now() + IDLE_WAKE;
        }
        let now = self.now();
        Instant::now() + Duration::from_micros(at.as_micros().saturating_sub(now.as_micros()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_moves_forward_and_deadlines_map_to_the_future() {
        let clock = Clock::start();
        let first = clock.now();
        let deadline = first + Duration::from_millis(500);
        let instant = clock.instant(deadline);
        let wait = instant.saturating_duration_since(Instant::now());
        assert!(wait <= Duration::from_millis(500), "{wait:?}");
        let far = clock.instant(first + Duration::from_secs(60));
        assert!(far > Instant::now() + Duration::from_secs(30));
        assert!(clock.instant(first) <= Instant::now());
        assert!(clock.now() >= first);
    }

    #[test]
    fn unix_time_is_after_this_code_was_written() {
        // 2024-01-01T00:00:00Z: any machine that runs this test is later.
        assert!(unix_now() > 1_704_067_200);
    }
}
