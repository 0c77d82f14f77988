//! The per-server RTT baseline: a sliding window of log-scale histograms.

/// Histogram buckets: 4 per octave ("quarter-octave", each about 19 % wide), exact below
/// 4 µs, the last one open-ended at 2²⁵ µs (33.5 s).
pub(crate) const RTT_BUCKETS: usize = 96;
/// Time slices in the baseline window; the oldest slice is dropped as a whole.
pub(crate) const RTT_SLICES: usize = 6;
/// The baseline (median, MAD, threshold) is recomputed after this many new samples, and
/// whenever a slice expires.
const RECOMPUTE_EVERY: u16 = 64;
/// Consistency constant: `1.4826 · MAD` estimates σ for normally distributed data.
const MAD_TO_SIGMA: f32 = 1.4826;

/// Bucket index of an RTT in µs.
#[inline]
pub(crate) fn bucket_of(v: u32) -> usize {
    if v < 4 {
        return v as usize;
    }
    let e = 31 - v.leading_zeros(); // floor(log2 v) >= 2
    let sub = (v >> (e - 2)) & 3;
    let idx = 4 * (e as usize - 1) + sub as usize;
    if idx >= RTT_BUCKETS {
        RTT_BUCKETS - 1
    } else {
        idx
    }
}

/// Midpoint (µs) of a bucket.
pub(crate) fn bucket_mid(idx: usize) -> f32 {
    if idx < 4 {
        return idx as f32 + 0.5;
    }
    let e = (idx / 4 + 1) as u32;
    let sub = (idx % 4) as u32;
    let width = 1u64 << (e - 2);
    let low = u64::from(4 + sub) << (e - 2);
    low as f32 + width as f32 * 0.5
}

/// Counts per bucket for `RTT_SLICES` consecutive time slices, plus their running sum.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RttSketch {
    slices: [[u16; RTT_BUCKETS]; RTT_SLICES],
    agg: [u32; RTT_BUCKETS],
    n: u32,
    head: u64,
    since_recompute: u16,
    /// Baseline median (µs), `MAD` (µs) and the spike threshold (µs); threshold 0 = not
    /// warm yet.
    pub(crate) median_us: u32,
    pub(crate) mad_us: u32,
    pub(crate) threshold_us: u32,
}

impl RttSketch {
    pub(crate) const EMPTY: RttSketch = RttSketch {
        slices: [[0; RTT_BUCKETS]; RTT_SLICES],
        agg: [0; RTT_BUCKETS],
        n: 0,
        head: 0,
        since_recompute: 0,
        median_us: 0,
        mad_us: 0,
        threshold_us: 0,
    };

    /// Samples currently in the window.
    #[cfg(test)]
    pub(crate) fn samples(&self) -> u32 {
        self.n
    }

    /// Drops expired slices so that the slice holding `now_us` is the newest.
    #[inline]
    pub(crate) fn advance(&mut self, now_us: u64, slice_us: u64) -> bool {
        let idx = now_us / slice_us.max(1);
        if idx <= self.head {
            return false;
        }
        let steps = idx - self.head;
        if steps >= RTT_SLICES as u64 {
            *self = RttSketch {
                head: idx,
                ..RttSketch::EMPTY
            };
            return true;
        }
        for s in 1..=steps {
            let slot = ((self.head + s) % RTT_SLICES as u64) as usize;
            if let Some(slice) = self.slices.get_mut(slot) {
                for (a, c) in self.agg.iter_mut().zip(slice.iter_mut()) {
                    let c32 = u32::from(*c);
                    *a = a.saturating_sub(c32);
                    self.n = self.n.saturating_sub(c32);
                    *c = 0;
                }
            }
        }
        self.head = idx;
        self.since_recompute = RECOMPUTE_EVERY;
        true
    }

    /// Adds a sample to the newest slice. A slice bucket that is full (65 535 samples in
    /// one slice) ignores further samples; the window stays consistent.
    #[inline]
    pub(crate) fn add(&mut self, rtt_us: u32) {
        let b = bucket_of(rtt_us);
        let slot = (self.head % RTT_SLICES as u64) as usize;
        if let (Some(c), Some(a)) = (
            self.slices.get_mut(slot).and_then(|s| s.get_mut(b)),
            self.agg.get_mut(b),
        ) && *c < u16::MAX
        {
            *c += 1;
            *a = a.saturating_add(1);
            self.n = self.n.saturating_add(1);
        }
        self.since_recompute = self.since_recompute.saturating_add(1);
    }

    /// Recomputes median, MAD and threshold if due (or if `force`).
    ///
    /// Median: the bucket holding rank ⌈n/2⌉, at its midpoint. MAD: walking outwards from
    /// the median bucket, always taking the nearer neighbour (by midpoint distance), until
    /// half the samples are covered; the last distance taken is the MAD.
    pub(crate) fn refresh(&mut self, warmup: u32, sigmas: f32, floor_us: u32, force: bool) {
        if !force && self.since_recompute < RECOMPUTE_EVERY && self.threshold_us != 0 {
            return;
        }
        if self.n < warmup.max(1) {
            self.threshold_us = 0;
            self.since_recompute = 0;
            return;
        }
        self.since_recompute = 0;
        let half = self.n.div_ceil(2);
        let mut cum = 0u32;
        let mut m = 0usize;
        for (i, &c) in self.agg.iter().enumerate() {
            cum = cum.saturating_add(c);
            if cum >= half {
                m = i;
                break;
            }
        }
        let med = bucket_mid(m);
        // Outward walk for the MAD.
        let mut covered = self.agg.get(m).copied().unwrap_or(0);
        let mut lo = m; // next candidate below is lo - 1
        let mut hi = m + 1; // next candidate above
        let mut mad = 0.0f32;
        while covered < half {
            let dl = if lo > 0 {
                med - bucket_mid(lo - 1)
            } else {
                f32::INFINITY
            };
            let dh = if hi < RTT_BUCKETS {
                bucket_mid(hi) - med
            } else {
                f32::INFINITY
            };
            if dl == f32::INFINITY && dh == f32::INFINITY {
                break;
            }
            if dl <= dh {
                lo -= 1;
                covered = covered.saturating_add(self.agg.get(lo).copied().unwrap_or(0));
                mad = dl;
            } else {
                covered = covered.saturating_add(self.agg.get(hi).copied().unwrap_or(0));
                hi += 1;
                mad = dh;
            }
        }
        let spread = sigmas * MAD_TO_SIGMA * mad;
        let margin = if spread > floor_us as f32 {
            spread
        } else {
            floor_us as f32
        };
        self.median_us = med as u32;
        self.mad_us = mad as u32;
        // `as` saturates; never 0 once warm so "0 = not warm" stays unambiguous.
        self.threshold_us = ((med + margin) as u32).max(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotone_and_cover_their_values() {
        let mut last = 0;
        for v in [
            0u32,
            1,
            3,
            4,
            5,
            7,
            8,
            100,
            1000,
            1_000_000,
            33_000_000,
            u32::MAX,
        ] {
            let b = bucket_of(v);
            assert!(b >= last && b < RTT_BUCKETS);
            last = b;
        }
        for v in [5u32, 100, 1000, 12345, 1_000_000] {
            let mid = bucket_mid(bucket_of(v));
            let r = mid / v as f32;
            assert!(r > 0.85 && r < 1.15, "{v}: mid {mid}");
        }
    }

    #[test]
    fn median_and_mad_of_a_known_sample() {
        let mut s = RttSketch::EMPTY;
        s.advance(0, 10_000_000);
        // True median 1000, true MAD 200 (30 exact, 70 at distance 200).
        for _ in 0..30 {
            s.add(1000);
        }
        for _ in 0..35 {
            s.add(1200);
        }
        for _ in 0..35 {
            s.add(800);
        }
        s.refresh(10, 3.0, 0, true);
        assert!((900..1100).contains(&s.median_us), "{}", s.median_us);
        assert!(s.mad_us > 100 && s.mad_us < 300, "{}", s.mad_us);
        assert!(s.threshold_us > 1300 && s.threshold_us < 2500);
        // The floor dominates a tiny spread.
        s.refresh(10, 3.0, 5000, true);
        assert!(s.threshold_us > 5900);
        // Not warm: no threshold.
        s.refresh(1000, 3.0, 0, true);
        assert_eq!(s.threshold_us, 0);
    }

    #[test]
    fn slices_expire() {
        let mut s = RttSketch::EMPTY;
        s.advance(0, 10);
        s.add(5);
        s.advance(15, 10);
        s.add(5);
        assert_eq!(s.samples(), 2);
        s.advance(60, 10);
        assert_eq!(s.samples(), 1);
        s.advance(1000, 10);
        assert_eq!(s.samples(), 0);
    }
}
