//! The sliding anti-replay window of RFC 6479, sized as WireGuard's: a ring of 128 64-bit
//! blocks; the newest block is always being filled, so 127 blocks (8128 counters) behind
//! the greatest counter seen are remembered exactly.
//!
//! Checking and recording are separate steps: a counter is recorded only after its packet
//! authenticated, so forged packets can never move the window.

const BLOCK_BITS: u64 = 64;
const BLOCKS: usize = 128;
const RING_BITS: u64 = BLOCK_BITS * BLOCKS as u64;

/// How far behind the greatest counter seen a counter may be and still be accepted.
pub const WINDOW_COUNTERS: u64 = RING_BITS - BLOCK_BITS;

/// Remembers which counters have been received.
#[derive(Clone)]
pub struct ReplayWindow {
    blocks: [u64; BLOCKS],
    greatest: u64,
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self {
            blocks: [0; BLOCKS],
            greatest: 0,
        }
    }
}

impl std::fmt::Debug for ReplayWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayWindow")
            .field("greatest", &self.greatest)
            .finish()
    }
}

fn slot(counter: u64) -> (usize, u64) {
    // The modulo keeps the block index below BLOCKS, so the cast cannot truncate.
    let block = ((counter / BLOCK_BITS) % BLOCKS as u64) as usize;
    (block, 1 << (counter % BLOCK_BITS))
}

impl ReplayWindow {
    /// Whether `counter` is new and recent enough. Changes nothing.
    pub fn would_accept(&self, counter: u64) -> bool {
        if counter > self.greatest {
            return true;
        }
        if self.greatest - counter >= WINDOW_COUNTERS {
            return false;
        }
        let (block, bit) = slot(counter);
        self.blocks[block] & bit == 0
    }

    /// Records `counter` as received; returns false (and changes nothing) if it would not
    /// be accepted. Call only after the packet carrying it authenticated.
    pub fn record(&mut self, counter: u64) -> bool {
        if !self.would_accept(counter) {
            return false;
        }
        if counter > self.greatest {
            let current_block = self.greatest / BLOCK_BITS;
            let new_block = counter / BLOCK_BITS;
            // Clear the blocks the window slides over; at most the whole ring.
            let cleared = (new_block - current_block).min(BLOCKS as u64);
            for step in 1..=cleared {
                let (block, _) = slot((current_block + step) * BLOCK_BITS);
                self.blocks[block] = 0;
            }
            self.greatest = counter;
        }
        let (block, bit) = slot(counter);
        self.blocks[block] |= bit;
        true
    }

    /// The greatest counter recorded so far (zero before any).
    pub fn greatest(&self) -> u64 {
        self.greatest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn duplicate_is_rejected() {
        let mut window = ReplayWindow::default();
        assert!(window.record(0));
        assert!(!window.record(0));
        assert!(window.record(5));
        assert!(!window.record(5));
        assert!(window.record(3));
        assert!(!window.would_accept(3));
    }

    #[test]
    fn reordering_inside_the_window_is_accepted_exactly_once() {
        let mut window = ReplayWindow::default();
        assert!(window.record(10_000));
        for counter in (10_000 - WINDOW_COUNTERS + 1..10_000).rev() {
            assert!(window.record(counter), "{counter} is inside the window");
            assert!(!window.record(counter), "{counter} twice");
        }
    }

    #[test]
    fn too_old_is_rejected() {
        let mut window = ReplayWindow::default();
        assert!(window.record(WINDOW_COUNTERS + 100));
        assert!(!window.would_accept(100));
        assert!(!window.record(99));
        assert!(window.record(101));
    }

    #[test]
    fn a_big_jump_forgets_everything_old() {
        let mut window = ReplayWindow::default();
        for counter in 0..200 {
            assert!(window.record(counter));
        }
        assert!(window.record(1_000_000));
        assert!(window.record(1_000_000 - 1));
        assert!(!window.record(150));
    }

    #[test]
    fn the_largest_counters_do_not_overflow() {
        let mut window = ReplayWindow::default();
        assert!(window.record(u64::MAX - 1));
        assert!(!window.record(u64::MAX - 1));
        assert!(window.record(u64::MAX - 2));
    }

    proptest! {
        /// Against a model: accept a counter iff never accepted before and within the
        /// window of the greatest accepted counter.
        #[test]
        fn never_accepts_a_duplicate(counters in proptest::collection::vec(0u64..20_000, 1..400)) {
            let mut window = ReplayWindow::default();
            let mut seen = BTreeSet::new();
            let mut greatest = 0u64;
            for counter in counters {
                let fresh = !seen.contains(&counter)
                    && (counter > greatest || greatest - counter < WINDOW_COUNTERS);
                prop_assert_eq!(window.record(counter), fresh, "counter {}", counter);
                if fresh {
                    seen.insert(counter);
                    greatest = greatest.max(counter);
                }
            }
        }
    }
}
