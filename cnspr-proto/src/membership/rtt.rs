//! Round-trip time per peer: smoothed as TCP does (RFC 6298), for timeouts, and the
//! least of the last few samples, the figure shown to people. What the hosts add (a
//! sync of the database, a busy moment, a handshake the first probe of a session waits
//! for) only ever lengthens a sample, so the least of a few is the network's own round
//! trip, and a slow probe is forgotten at the next fast one; the smoothed value, slow
//! to forget, is right for timeouts and wrong to show.
//!
//! The figure shown also takes in what the peer measured of the same path (its pings
//! carry it): of two devices one mostly probes and the other mostly answers (a probe
//! is skipped when its target was just heard from), so the one that answers would show
//! its own few samples for minutes. The peer reports its own samples only, never what
//! it was told, so no figure goes round between the two.

use std::time::Duration;

/// Samples the least is taken over.
const RECENT: usize = 5;

/// Smoothed round-trip time and its variation, and the last few samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RttEstimate {
    smoothed_micros: u64,
    variation_micros: u64,
    samples: u64,
    /// The last samples, in microseconds (a ring: `samples % RECENT` is the next slot).
    recent: [u32; RECENT],
    /// The last figures the peer reported of its own samples (a ring like `recent`).
    reported: [u32; RECENT],
    reports: u64,
    /// The smoothed value is the peer's figure, standing in until a sample of our own.
    stood_in: bool,
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

    /// The smoothed round trip, once there is a sample (or a figure standing in).
    pub fn smoothed(&self) -> Option<Duration> {
        (self.samples > 0 || self.stood_in).then(|| Duration::from_micros(self.smoothed_micros))
    }

    /// Takes in a round trip the peer measured of the same path: shown, and standing in
    /// for timeouts until this device measures one itself.
    pub fn reported(&mut self, sample: Duration) {
        let micros = u32::try_from(sample.as_micros()).unwrap_or(u32::MAX);
        self.reported[(self.reports % RECENT as u64) as usize] = micros;
        self.reports = self.reports.saturating_add(1);
        if self.samples == 0 {
            self.smoothed_micros = u64::from(micros);
            self.variation_micros = u64::from(micros) / 2;
            self.stood_in = true;
        }
    }

    /// The least of this device's last few samples: what it reports to the peer.
    pub fn own_least(&self) -> Option<Duration> {
        least(&self.recent, self.samples)
    }

    /// The least of the last few round trips measured here and by the peer, once there
    /// is one: what the network takes now.
    pub fn typical(&self) -> Option<Duration> {
        match (self.own_least(), least(&self.reported, self.reports)) {
            (Some(own), Some(theirs)) => Some(own.min(theirs)),
            (own, theirs) => own.or(theirs),
        }
    }

    /// The round-trip variation, once there is a sample.
    pub fn variation(&self) -> Option<Duration> {
        (self.samples > 0).then(|| Duration::from_micros(self.variation_micros))
    }

    /// How many round trips were measured here or reported by the peer.
    pub fn figures(&self) -> u64 {
        self.samples.saturating_add(self.reports)
    }

    /// How many round trips were measured.
    pub fn samples(&self) -> u64 {
        self.samples
    }
}

/// The least of the filled slots of a ring that took `taken` samples.
fn least(ring: &[u32; RECENT], taken: u64) -> Option<Duration> {
    let held = usize::try_from(taken).unwrap_or(RECENT).min(RECENT);
    ring[..held]
        .iter()
        .min()
        .map(|micros| Duration::from_micros(u64::from(*micros)))
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
    fn the_typical_round_trip_forgets_a_slow_sample_at_the_next_fast_one() {
        let mut rtt = RttEstimate::default();
        assert_eq!(rtt.typical(), None);
        rtt.record(Duration::from_millis(9));
        assert_eq!(rtt.typical(), Some(Duration::from_millis(9)));
        rtt.record(Duration::from_micros(300));
        assert_eq!(rtt.typical(), Some(Duration::from_micros(300)));
        // A host's delay (a sync as the probe came in) does not show.
        rtt.record(Duration::from_millis(2));
        rtt.record(Duration::from_micros(310));
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

    #[test]
    fn what_the_peer_measured_shows_but_is_not_reported_back_or_timed_by() {
        let mut rtt = RttEstimate::default();
        rtt.reported(Duration::from_micros(250));
        assert_eq!(
            rtt.typical(),
            Some(Duration::from_micros(250)),
            "before any sample"
        );
        assert_eq!(rtt.own_least(), None, "not reported back");
        assert_eq!(rtt.smoothed(), Some(Duration::from_micros(250)), "stands in");
        assert_eq!(rtt.samples(), 0);
        rtt.record(Duration::from_millis(2));
        assert_eq!(rtt.typical(), Some(Duration::from_micros(250)));
        assert_eq!(rtt.own_least(), Some(Duration::from_millis(2)));
        assert_eq!(rtt.smoothed(), Some(Duration::from_millis(2)));
        // The peer's figures age out as the path slows.
        for _ in 0..RECENT {
            rtt.reported(Duration::from_millis(3));
        }
        assert_eq!(rtt.typical(), Some(Duration::from_millis(2)));
    }
}
