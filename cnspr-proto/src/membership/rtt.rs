//! Round-trip time per peer: smoothed as TCP does (RFC 6298), for timeouts, and the
//! median of the last few samples, the figure shown to people. A probe every few
//! seconds makes the smoothed value slow to forget one outlier (the first probe of a
//! session, which may wait for its handshake, can take ten times the network's round
//! trip); the median forgets it after a few probes.

use std::time::Duration;

/// Samples the median is taken over.
const RECENT: usize = 5;

/// Smoothed round-trip time and its variation, and the last few samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RttEstimate {
    smoothed_micros: u64,
    variation_micros: u64,
    samples: u64,
    /// The last samples, in microseconds (a ring: `samples % RECENT` is the next slot).
    recent: [u32; RECENT],
}

impl RttEstimate {
    /// Folds in one measured round trip.
    pub fn record(&mut self, sample: Duration) {
        let sample = u64::try_from(sample.as_micros()).unwrap_or(u64::MAX);
        self.recent[(self.samples % RECENT as u64) as usize] = u32::try_from(sample).unwrap_or(u32::MAX);
        if self.samples == 0 {
            self.smoothed_micros = sample;
            self.variation_micros = sample / 2;
        } else {
            let deviation = self.smoothed_micros.abs_diff(sample);
            // RFC 6298: beta = 1/4, alpha = 1/8.
            self.variation_micros = (3 * self.variation_micros + deviation) / 4;
            self.smoothed_micros = (7 * self.smoothed_micros + sample) / 8;
        }
        self.samples = self.samples.saturating_add(1);
    }

    /// The smoothed round trip, once there is a sample.
    pub fn smoothed(&self) -> Option<Duration> {
        (self.samples > 0).then(|| Duration::from_micros(self.smoothed_micros))
    }

    /// The median of the last few round trips, once there is a sample: what the network
    /// takes now.
    pub fn typical(&self) -> Option<Duration> {
        let held = usize::try_from(self.samples).unwrap_or(RECENT).min(RECENT);
        let mut recent = self.recent[..held].to_vec();
        recent.sort_unstable();
        recent
            .get(held / 2)
            .map(|micros| Duration::from_micros(u64::from(*micros)))
    }

    /// The round-trip variation, once there is a sample.
    pub fn variation(&self) -> Option<Duration> {
        (self.samples > 0).then(|| Duration::from_micros(self.variation_micros))
    }

    /// How many round trips were measured.
    pub fn samples(&self) -> u64 {
        self.samples
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_sample_sets_the_estimate_and_later_ones_smooth_it() {
        let mut rtt = RttEstimate::default();
        assert_eq!(rtt.smoothed(), None);
        rtt.record(Duration::from_millis(8));
        assert_eq!(rtt.smoothed(), Some(Duration::from_millis(8)));
        assert_eq!(rtt.variation(), Some(Duration::from_millis(4)));
        rtt.record(Duration::from_millis(16));
        assert_eq!(rtt.smoothed(), Some(Duration::from_millis(9)));
        assert_eq!(rtt.variation(), Some(Duration::from_millis(5)));
        for _ in 0..100 {
            rtt.record(Duration::from_millis(2));
        }
        let settled = rtt.smoothed().expect("has samples");
        assert!(
            settled < Duration::from_micros(2100),
            "converges to the new level: {settled:?}"
        );
    }

    #[test]
    fn the_typical_round_trip_forgets_an_outlier_within_a_few_samples() {
        let mut rtt = RttEstimate::default();
        assert_eq!(rtt.typical(), None);
        rtt.record(Duration::from_millis(9));
        assert_eq!(rtt.typical(), Some(Duration::from_millis(9)));
        for _ in 0..3 {
            rtt.record(Duration::from_micros(300));
        }
        assert_eq!(rtt.typical(), Some(Duration::from_micros(300)));
        assert!(
            rtt.smoothed().expect("has samples") > Duration::from_millis(5),
            "the smoothed value still remembers"
        );
        for _ in 0..RECENT {
            rtt.record(Duration::from_micros(200));
        }
        assert_eq!(rtt.typical(), Some(Duration::from_micros(200)));
    }
}
