//! Round-trip time per peer, smoothed as TCP does (RFC 6298).

use std::time::Duration;

/// Smoothed round-trip time and its variation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RttEstimate {
    smoothed_micros: u64,
    variation_micros: u64,
    samples: u64,
}

impl RttEstimate {
    /// Folds in one measured round trip.
    pub fn record(&mut self, sample: Duration) {
        let sample = u64::try_from(sample.as_micros()).unwrap_or(u64::MAX);
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
}
