//! A sliding time window of event counters in fixed buckets.

/// Number of buckets in every rate window: the window slides in steps of a tenth of its
/// length, so a rate "over the last 5 s" really covers between 4.5 s and 5 s.
pub(crate) const BUCKETS: usize = 10;

/// Event kinds counted in a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub(crate) enum Ev {
    /// Every observation.
    Total,
    /// Observations that carried an rcode (direct or after a TCP fallback).
    Responses,
    Timeout,
    Servfail,
    Nxdomain,
    Truncated,
    TcpFailed,
    Malformed,
    Mismatch,
}

pub(crate) const EVENTS: usize = 9;

/// `BUCKETS` buckets of `EVENTS` counters plus running sums; `head` is the absolute bucket
/// number (`time / width`) of the newest bucket. Time that goes backwards lands in the
/// newest bucket (the window never rewinds).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    counts: [[u32; EVENTS]; BUCKETS],
    sums: [u32; EVENTS],
    head: u64,
    /// `head % BUCKETS`, and the time at which bucket `head + 1` starts: the common
    /// case (same bucket) costs one comparison and no division.
    slot: usize,
    next_us: u64,
}

impl Window {
    pub(crate) const EMPTY: Window = Window {
        counts: [[0; EVENTS]; BUCKETS],
        sums: [0; EVENTS],
        head: 0,
        slot: 0,
        next_us: 0,
    };

    /// Slides the window so that the bucket holding `now_us` is the newest; returns
    /// whether old counts were dropped.
    #[inline(never)]
    pub(crate) fn advance(&mut self, now_us: u64, width_us: u64) -> bool {
        if now_us < self.next_us {
            return false;
        }
        // The common slide, into the next bucket (`next_us` is where it starts), needs
        // no division: the bucket after `slot` is cleared.
        if self.one_step(now_us, width_us) {
            self.step(width_us);
            return true;
        }
        let width = width_us.max(1);
        let idx = now_us / width;
        self.next_us = idx.saturating_add(1).saturating_mul(width);
        if idx <= self.head {
            return false;
        }
        let steps = idx - self.head;
        if steps >= BUCKETS as u64 {
            *self = Window {
                head: idx,
                slot: (idx % BUCKETS as u64) as usize,
                next_us: self.next_us,
                ..Window::EMPTY
            };
            return true;
        }
        for s in 1..=steps {
            let slot = ((self.head + s) % BUCKETS as u64) as usize;
            if let Some(bucket) = self.counts.get_mut(slot) {
                for (sum, c) in self.sums.iter_mut().zip(bucket.iter_mut()) {
                    *sum = sum.wrapping_sub(*c);
                    *c = 0;
                }
            }
        }
        self.head = idx;
        self.slot = (idx % BUCKETS as u64) as usize;
        true
    }

    /// Counts one event of kind `ev` in the newest bucket (wrapping: a bucket would need
    /// 2³² events to wrap, and bucket and sum wrap together).
    /// Whether [`advance`](Self::advance) to `now_us` is one step (the bucket right
    /// after the newest), the case [`step`](Self::step) does.
    #[inline(always)]
    pub(crate) fn one_step(&self, now_us: u64, width_us: u64) -> bool {
        let width = width_us.max(1);
        now_us >= self.next_us
            && self.next_us == self.head.wrapping_add(1).wrapping_mul(width)
            && now_us - self.next_us < width
    }

    /// The slot after the newest: the oldest bucket, which [`step`](Self::step) drops.
    #[inline(always)]
    fn next_slot(&self) -> usize {
        if self.slot + 1 < BUCKETS {
            self.slot + 1
        } else {
            0
        }
    }

    /// The counts of the bucket that [`step`](Self::step) drops.
    #[inline(always)]
    pub(crate) fn next_bucket(&self) -> [u32; EVENTS] {
        let slot = self.next_slot();
        self.counts.get(slot).copied().unwrap_or([0; EVENTS])
    }

    /// [`advance`](Self::advance) when [`one_step`](Self::one_step) holds: drops the
    /// oldest bucket, which becomes the newest.
    #[inline(always)]
    pub(crate) fn step(&mut self, width_us: u64) {
        let slot = self.next_slot();
        if let Some(bucket) = self.counts.get_mut(slot) {
            for (sum, c) in self.sums.iter_mut().zip(bucket.iter_mut()) {
                *sum = sum.wrapping_sub(*c);
                *c = 0;
            }
        }
        self.head += 1;
        self.slot = slot;
        self.next_us = self.next_us.saturating_add(width_us.max(1));
    }

    #[cfg(test)]
    pub(crate) fn add(&mut self, ev: Ev) {
        self.add_index(ev as usize);
    }

    /// Counts one event of kind index `k` (an [`Ev`] as `usize`) in the newest bucket.
    #[inline]
    pub(crate) fn add_index(&mut self, k: usize) {
        self.add_n_index(k, 1);
    }

    /// Counts `n` events of kind `ev` in the newest bucket.
    #[inline]
    pub(crate) fn add_n(&mut self, ev: Ev, n: u32) {
        self.add_n_index(ev as usize, n);
    }

    fn add_n_index(&mut self, k: usize, n: u32) {
        if let (Some(c), Some(s)) = (
            self.counts.get_mut(self.slot).and_then(|b| b.get_mut(k)),
            self.sums.get_mut(k),
        ) {
            *c = c.wrapping_add(n);
            *s = s.wrapping_add(n);
        }
    }

    /// When the newest bucket ends: until then an event lands in it without sliding.
    #[inline]
    pub(crate) fn next_us(&self) -> u64 {
        self.next_us
    }

    /// Events of kind `ev` in the whole window.
    #[inline]
    pub(crate) fn sum(&self, ev: Ev) -> u32 {
        self.sums.get(ev as usize).copied().unwrap_or(0)
    }

    /// `sum(num) / sum(den)` when `sum(den) >= min`, else `None`.
    #[inline]
    pub(crate) fn share(&self, num: Ev, den: Ev, min: u32) -> Option<f32> {
        let d = self.sum(den);
        if d == 0 || d < min {
            None
        } else {
            Some(self.sum(num) as f32 / d as f32)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sums against a naive count of the events in the newest `BUCKETS` buckets, with
    /// steps of every size (within the bucket, into the next one, several, past the
    /// whole window).
    #[test]
    fn sums_match_a_naive_count() {
        const WIDTH: u64 = 1_000;
        let mut w = Window::EMPTY;
        let mut times = [0u64; 512];
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut now = 0u64;
        for i in 0..20_000usize {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            now += match x % 10 {
                0..=5 => x % 300,
                6..=8 => WIDTH + x % 300,
                _ => x % (15 * WIDTH),
            };
            w.advance(now, WIDTH);
            w.add(Ev::Total);
            times[i % times.len()] = now;
            let head = now / WIDTH;
            let seen = &times[..(i + 1).min(times.len())];
            let naive = seen
                .iter()
                .filter(|&&t| t / WIDTH + BUCKETS as u64 > head)
                .count();
            // Events older than the kept 512 are far outside the window by then.
            assert_eq!(w.sum(Ev::Total) as usize, naive, "step {i}");
        }
    }

    #[test]
    fn window_slides_and_forgets() {
        let mut w = Window::EMPTY;
        w.advance(0, 500);
        w.add(Ev::Total);
        w.advance(499, 500);
        w.add(Ev::Total);
        assert_eq!(w.sum(Ev::Total), 2);
        w.advance(500 * 9, 500);
        w.add(Ev::Total);
        assert_eq!(w.sum(Ev::Total), 3);
        // Bucket 0 falls out when bucket 10 becomes the newest.
        w.advance(500 * 10, 500);
        assert_eq!(w.sum(Ev::Total), 1);
        // Backwards time does not rewind.
        w.advance(0, 500);
        w.add(Ev::Nxdomain);
        assert_eq!(w.sum(Ev::Nxdomain), 1);
        w.advance(500 * 100, 500);
        assert_eq!(w.sum(Ev::Total), 0);
        assert_eq!(w.share(Ev::Nxdomain, Ev::Total, 1), None);
    }
}
