//! The per-server RTT baseline: a sliding window of log-scale histograms.

/// Histogram buckets: 4 per octave ("quarter-octave", each about 19 % wide), exact below
/// 4 µs, the last one open-ended at 2²⁵ µs (33.5 s).
pub(crate) const RTT_BUCKETS: usize = 96;
/// Time slices in the baseline window; the oldest slice is dropped as a whole.
pub(crate) const RTT_SLICES: usize = 6;
/// The baseline (median, MAD, threshold) is recomputed after this many new samples, and
/// whenever a slice expires.
const RECOMPUTE_EVERY: u16 = 256;
/// Consistency constant: `1.4826 · MAD` estimates σ for normally distributed data.
const MAD_TO_SIGMA: f32 = 1.4826;

/// Bucket index of an RTT in µs: below 4 µs the value itself, else `4·(e − 1) + sub`
/// with `e = ⌊log2 v⌋` and `sub` the two bits below the leading one, capped at the last
/// bucket. Those are the exponent and the two top mantissa bits of `v` as an f32: the
/// bits above them read `4·(127 + e) + sub`. Below 2²⁴ the conversion is exact; above,
/// the low byte is cleared first (it is below the three bits that count), so that
/// rounding cannot carry into them.
#[inline]
pub(crate) fn bucket_of(v: u32) -> usize {
    if v.wrapping_sub(4) < (1 << 24) - 4 {
        return f32_bucket(v);
    }
    if v < 4 {
        return v as usize;
    }
    f32_bucket(v & !0xFF).min(RTT_BUCKETS - 1)
}

/// `4·(127 + e) + sub − 512` from the bits of `v` (exact in an f32, at least 4).
#[inline(always)]
fn f32_bucket(v: u32) -> usize {
    ((v as f32).to_bits() >> 21).wrapping_sub(512) as usize
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

/// Lower bound (µs) of a bucket.
#[cfg(test)]
pub(crate) fn bucket_low(idx: usize) -> u64 {
    if idx < 4 {
        return idx as u64;
    }
    let e = (idx / 4 + 1) as u32;
    let sub = (idx % 4) as u64;
    (4 + sub) << (e - 2)
}

/// What [`RttSketch::refresh`] needs from the configuration.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RttParams {
    pub(crate) warmup: u32,
    pub(crate) sigmas: f32,
    pub(crate) floor_us: u32,
    /// Burst window length `W` and the minimum spike count.
    pub(crate) window: u8,
    pub(crate) min_spikes: u8,
    /// Per-observation false-alarm budget of the spike count.
    pub(crate) alpha: f64,
}

/// The smallest `k >= min` with `P(Bin(w, p) >= k) <= alpha`, or `w + 1` if none.
pub(crate) fn spike_quota(w: u8, p: f64, alpha: f64, min: u8) -> u8 {
    let w32 = u32::from(w);
    let p = if p > 0.5 {
        0.5
    } else if p > 0.0 {
        p
    } else {
        0.0
    };
    // pmf(i) by the recurrence pmf(i+1) = pmf(i)·(w−i)/(i+1)·p/(1−p); tail summed from
    // the top so tiny tails keep their precision.
    let mut pmf = [0f64; 65];
    let mut q = 1.0f64;
    for _ in 0..w32 {
        q *= 1.0 - p;
    }
    let ratio = if p < 1.0 { p / (1.0 - p) } else { 0.0 };
    let mut cur = q;
    for (i, slot) in pmf.iter_mut().enumerate().take(w32 as usize + 1) {
        *slot = cur;
        cur = cur * (w32 as f64 - i as f64) / (i as f64 + 1.0) * ratio;
    }
    let mut tail = 0.0f64;
    let mut k = w32 + 1;
    for i in (0..=w32).rev() {
        tail += pmf.get(i as usize).copied().unwrap_or(0.0);
        if tail > alpha {
            break;
        }
        k = i;
    }
    let k = k.max(u32::from(min));
    u8::try_from(k).unwrap_or(u8::MAX)
}

/// What a recomputation of the baseline yields (see [`RttSketch::refresh`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Baseline {
    pub(crate) median_us: u32,
    pub(crate) mad_us: u32,
    pub(crate) threshold_us: u32,
    pub(crate) quota: u8,
}

/// Counts per bucket for `RTT_SLICES` consecutive time slices. A sample costs one
/// increment; the window's histogram (the sum of the slices) is only formed when the
/// baseline is recomputed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RttSketch {
    slices: [[u16; RTT_BUCKETS]; RTT_SLICES],
    head: u64,
    /// `(head % RTT_SLICES) · RTT_BUCKETS` (where the newest slice starts in the
    /// flattened slices) and the start of slice `head + 1` (see `Window`).
    base: usize,
    next_us: u64,
    /// Samples since the last recomputation; `RECOMPUTE_EVERY` (due) whenever the
    /// sketch is not warm (threshold 0), so that [`fresh`](Self::fresh) is one test.
    since_recompute: u16,
    /// Baseline median (µs), `MAD` (µs) and the spike threshold (µs); threshold 0 = not
    /// warm yet.
    pub(crate) median_us: u32,
    pub(crate) mad_us: u32,
    pub(crate) threshold_us: u32,
    /// Spikes among the last `W` answers that the baseline's own outlier rate explains
    /// with probability at most `alpha` (never below the configured minimum).
    pub(crate) quota: u8,
}

impl RttSketch {
    pub(crate) const EMPTY: RttSketch = RttSketch {
        slices: [[0; RTT_BUCKETS]; RTT_SLICES],
        head: 0,
        base: 0,
        next_us: 0,
        since_recompute: RECOMPUTE_EVERY,
        median_us: 0,
        mad_us: 0,
        threshold_us: 0,
        quota: 0,
    };

    /// Samples currently in the window.
    #[cfg(test)]
    pub(crate) fn samples(&self) -> u32 {
        self.histogram().1
    }

    /// The window's histogram (every slice summed) and its sample count.
    fn histogram(&self) -> ([u32; RTT_BUCKETS], u32) {
        let mut agg = [0u32; RTT_BUCKETS];
        for slice in &self.slices {
            for (a, &c) in agg.iter_mut().zip(slice.iter()) {
                *a += u32::from(c);
            }
        }
        // At most 6 · 96 · 65 535 samples: no overflow.
        let n = agg.iter().sum();
        (agg, n)
    }

    /// Drops expired slices so that the slice holding `now_us` is the newest.
    #[inline]
    pub(crate) fn advance(&mut self, now_us: u64, slice_us: u64) -> bool {
        if now_us < self.next_us {
            return false;
        }
        let width = slice_us.max(1);
        let idx = now_us / width;
        self.next_us = idx.saturating_add(1).saturating_mul(width);
        if idx <= self.head {
            return false;
        }
        let steps = idx - self.head;
        if steps >= RTT_SLICES as u64 {
            *self = RttSketch {
                head: idx,
                base: (idx % RTT_SLICES as u64) as usize * RTT_BUCKETS,
                next_us: self.next_us,
                quota: self.quota,
                ..RttSketch::EMPTY
            };
            return true;
        }
        for s in 1..=steps {
            let slot = ((self.head + s) % RTT_SLICES as u64) as usize;
            if let Some(slice) = self.slices.get_mut(slot) {
                *slice = [0; RTT_BUCKETS];
            }
        }
        self.head = idx;
        self.base = (idx % RTT_SLICES as u64) as usize * RTT_BUCKETS;
        self.since_recompute = RECOMPUTE_EVERY;
        true
    }

    /// Adds a sample to the newest slice. A slice bucket that is full (65 535 samples in
    /// one slice) ignores further samples; the window stays consistent.
    #[inline(always)]
    pub(crate) fn add(&mut self, rtt_us: u32) {
        let b = bucket_of(rtt_us);
        if let Some(c) = self.slices.as_flattened_mut().get_mut(self.base + b)
            && *c != u16::MAX
        {
            *c += 1;
        }
        // At most `RECOMPUTE_EVERY` + 1: every caller refreshes (which restarts the
        // count) once it reaches `RECOMPUTE_EVERY`, before the next sample.
        self.since_recompute = self.since_recompute.wrapping_add(1);
    }

    /// When the newest slice ends.
    #[inline]
    pub(crate) fn next_us(&self) -> u64 {
        self.next_us
    }

    /// Warm and not due for a recomputation: a sample within the newest slice needs no
    /// [`refresh`](Self::refresh) before it is judged.
    #[inline]
    pub(crate) fn fresh(&self) -> bool {
        // Not warm (threshold 0) keeps the count at `RECOMPUTE_EVERY` or more.
        self.since_recompute < RECOMPUTE_EVERY
    }

    /// Whether [`refresh`](Self::refresh) has work to do: a cheap inline check, so the
    /// out-of-line recomputation is only called every `RECOMPUTE_EVERY` samples.
    #[inline]
    pub(crate) fn refresh_due(&self, force: bool) -> bool {
        force || self.since_recompute >= RECOMPUTE_EVERY || self.threshold_us == 0
    }

    /// Recomputes median, MAD and threshold if due (or if `force`).
    ///
    /// Median: the bucket holding rank ⌈n/2⌉, at its midpoint. MAD: walking outwards from
    /// the median bucket, always taking the nearer neighbour (by midpoint distance), until
    /// half the samples are covered; the last distance taken is the MAD.
    ///
    /// The spike quota: `p̂`, the share of baseline samples above the threshold (with a
    /// Laplace prior, `(above + 1) / (n + 2)`), gives the smallest spike count among the
    /// last `W` answers whose binomial tail probability is at most `alpha`. A baseline
    /// with more natural outliers thus needs more spikes before it alarms.
    pub(crate) fn refresh(&mut self, p: &RttParams, force: bool) -> bool {
        if !force && self.since_recompute < RECOMPUTE_EVERY && self.threshold_us != 0 {
            return false;
        }
        let b = self.baseline(p);
        self.apply(b);
        true
    }

    /// Recomputes the baseline and stores it only when the spike quota stays the same
    /// (and the sketch is warm); returns whether it was stored. With a new quota the
    /// caller leaves the recomputation to its full path.
    #[inline]
    pub(crate) fn refresh_same_quota(&mut self, p: &RttParams) -> bool {
        let b = self.baseline(p);
        if b.quota != self.quota || b.threshold_us == 0 {
            return false;
        }
        self.apply(b);
        true
    }

    /// Stores a [`baseline`](Self::baseline) and restarts the recompute count.
    #[inline]
    pub(crate) fn apply(&mut self, b: Baseline) {
        self.median_us = b.median_us;
        self.mad_us = b.mad_us;
        self.threshold_us = b.threshold_us;
        self.quota = b.quota;
        self.since_recompute = if b.threshold_us == 0 {
            RECOMPUTE_EVERY
        } else {
            0
        };
    }

    /// The baseline of the current window (see [`refresh`](Self::refresh)), without
    /// storing it. Before warm-up, threshold 0 and the configured minimum quota (median
    /// and MAD kept).
    #[inline(never)]
    pub(crate) fn baseline(&self, p: &RttParams) -> Baseline {
        let (warmup, sigmas, floor_us) = (p.warmup, p.sigmas, p.floor_us);
        let (agg, n) = self.histogram();
        if n < warmup.max(1) {
            return Baseline {
                median_us: self.median_us,
                mad_us: self.mad_us,
                threshold_us: 0,
                quota: p.min_spikes,
            };
        }
        let half = n.div_ceil(2);
        // Sums of `agg` stay within `n` (see `histogram`): plain additions, no
        // saturation to test.
        let mut cum = 0u32;
        let mut m = 0usize;
        for (i, &c) in agg.iter().enumerate() {
            cum += c;
            if cum >= half {
                m = i;
                break;
            }
        }
        let med = bucket_mid(m);
        // Outward walk for the MAD.
        let mut covered = agg.get(m).copied().unwrap_or(0);
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
                covered += agg.get(lo).copied().unwrap_or(0);
                mad = dl;
            } else {
                covered += agg.get(hi).copied().unwrap_or(0);
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
        // `as` saturates; never 0 once warm so "0 = not warm" stays unambiguous.
        let threshold_us = ((med + margin) as u32).max(1);
        // Buckets wholly above the threshold: those after the one holding it.
        let above: u32 = agg
            .get(bucket_of(threshold_us) + 1..)
            .unwrap_or(&[])
            .iter()
            .sum();
        let p_hat = (f64::from(above) + 1.0) / (f64::from(n) + 2.0);
        Baseline {
            median_us: med as u32,
            mad_us: mad as u32,
            threshold_us,
            quota: spike_quota(p.window, p_hat, p.alpha, p.min_spikes),
        }
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
        let mut p = RttParams {
            warmup: 10,
            sigmas: 3.0,
            floor_us: 0,
            window: 8,
            min_spikes: 4,
            alpha: 1e-9,
        };
        s.refresh(&p, true);
        assert!((900..1100).contains(&s.median_us), "{}", s.median_us);
        assert!(s.mad_us > 100 && s.mad_us < 300, "{}", s.mad_us);
        assert!(s.threshold_us > 1300 && s.threshold_us < 2500);
        // The floor dominates a tiny spread.
        p.floor_us = 5000;
        s.refresh(&p, true);
        assert!(s.threshold_us > 5900);
        // Not warm: no threshold.
        p.warmup = 1000;
        s.refresh(&p, true);
        assert_eq!(s.threshold_us, 0);
    }

    #[test]
    fn spike_quota_grows_with_the_outlier_rate() {
        // Clean baseline: the configured minimum.
        assert_eq!(spike_quota(8, 1e-4, 1e-9, 4), 4);
        // P(Bin(8, 0.01) >= 5) = 5.4e-9 > 1e-9, P(>= 6) = 2.7e-11.
        assert_eq!(spike_quota(8, 0.01, 1e-9, 4), 6);
        assert_eq!(spike_quota(8, 0.05, 1e-9, 4), 8);
        // Nothing is unlikely enough: never alarms on counts.
        assert_eq!(spike_quota(8, 0.3, 1e-9, 4), 9);
        assert_eq!(spike_quota(8, f64::NAN, 1e-9, 4), 4);
    }

    /// The f32 shortcut of `bucket_of` against the integer formula, at and around every
    /// bucket boundary.
    #[test]
    fn float_buckets_match_the_integer_formula() {
        let int = |v: u32| {
            if v < 4 {
                return v as usize;
            }
            let e = 31 - v.leading_zeros();
            (4 * (e as usize - 1) + ((v >> (e - 2)) & 3) as usize).min(RTT_BUCKETS - 1)
        };
        for i in 0..RTT_BUCKETS {
            let low = bucket_low(i).min(u64::from(u32::MAX)) as u32;
            for v in [low.saturating_sub(1), low, low.saturating_add(1)] {
                assert_eq!(bucket_of(v), int(v), "{v}");
            }
        }
        for v in (0..70_000u32).chain([(1 << 24) - 1, 1 << 24, u32::MAX - 1, u32::MAX]) {
            assert_eq!(bucket_of(v), int(v), "{v}");
        }
    }

    #[test]
    fn buckets_after_a_value_are_wholly_above_it() {
        for v in (0..5000u32).chain([65_535, 1 << 20, 33_554_431, 33_554_432, u32::MAX]) {
            let b = bucket_of(v);
            for i in 0..RTT_BUCKETS {
                assert_eq!(bucket_low(i) > u64::from(v), i > b, "{v} bucket {i}");
            }
        }
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
