//! The daemon's clock: Tokio's monotonic time as the core's [`Timestamp`], counted from
//! when the daemon started.

use std::time::Duration;

use cnspr_proto::time::Timestamp;
use tokio::time::Instant;

/// How far ahead to sleep when the node asks for no timer at all.
const IDLE_WAKE: Duration = Duration::from_secs(3600);

/// Converts between Tokio instants and core timestamps.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    epoch: Instant,
}

impl Clock {
    /// A clock whose epoch is now.
    pub fn start() -> Self {
        Self {
            epoch: Instant::now(),
        }
    }

    /// The core's time now.
    pub fn now(&self) -> Timestamp {
        let micros = u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
        Timestamp::from_micros(micros)
    }

    /// The Tokio instant of a core timestamp (`Timestamp::MAX`: an hour from now).
    pub fn instant(&self, at: Timestamp) -> Instant {
        if at == Timestamp::MAX {
            return Instant::now() + IDLE_WAKE;
        }
        self.epoch + Duration::from_micros(at.as_micros())
    }
}
