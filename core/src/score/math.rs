//! Small numeric helpers for `no_std`: clamping that swallows NaN, a `log2` from the float
//! bit layout plus an odd polynomial, a Newton `sqrt`, an upper-tail normal quantile and
//! the Wilson–Hilferty chi-square critical value. Accuracy is a few parts in 10⁴, far
//! finer than any threshold they feed.

/// Clamps to `[0, 1]`; NaN becomes 0 so a severity can never be NaN.
#[inline]
pub(crate) fn clamp01(x: f32) -> f32 {
    if x > 1.0 {
        1.0
    } else if x > 0.0 {
        x
    } else {
        0.0
    }
}

/// Linear ramp: 0 at or below `lo`, 1 at or above `hi`, clamped (and NaN-safe).
#[inline]
pub(crate) fn ramp(x: f32, lo: f32, hi: f32) -> f32 {
    if x >= hi {
        1.0
    } else if x > lo {
        clamp01((x - lo) / (hi - lo))
    } else {
        0.0
    }
}

/// `log2(x)` for finite `x > 0`; returns `f32::NEG_INFINITY` for `x <= 0` or NaN.
///
/// Splits `x = m·2^e` with `m ∈ [1, 2)` from the IEEE-754 bits, then
/// `log2(m) = (2/ln 2)·atanh(t)` with `t = (m-1)/(m+1) ∈ [0, 1/3)`, using the series up to
/// `t⁹/9` (truncation error below 1e-6).
pub(crate) fn log2(x: f32) -> f32 {
    if x.is_nan() || x <= 0.0 || x == f32::INFINITY {
        return if x == f32::INFINITY {
            128.0
        } else {
            f32::NEG_INFINITY
        };
    }
    let mut bits = x.to_bits();
    let mut e: i32 = ((bits >> 23) & 0xFF) as i32 - 127;
    if (bits >> 23) & 0xFF == 0 {
        // Subnormal: scale up by 2^23 first.
        bits = (x * 8_388_608.0).to_bits();
        e = ((bits >> 23) & 0xFF) as i32 - 127 - 23;
    }
    let m = f32::from_bits((bits & 0x007F_FFFF) | 0x3F80_0000);
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    let series = t * (1.0 + t2 * (1.0 / 3.0 + t2 * (1.0 / 5.0 + t2 * (1.0 / 7.0 + t2 / 9.0))));
    e as f32 + series * (2.0 / core::f32::consts::LN_2)
}

/// Natural logarithm via [`log2`].
pub(crate) fn ln(x: f32) -> f32 {
    log2(x) * core::f32::consts::LN_2
}

/// Square root by Newton's method from a bit-trick first guess; 0 for `x <= 0` or NaN.
pub(crate) fn sqrt(x: f32) -> f32 {
    if x.is_nan() || x <= 0.0 {
        return 0.0;
    }
    if x == f32::INFINITY {
        return x;
    }
    let mut y = f32::from_bits((x.to_bits() >> 1).wrapping_add(0x1FBD_1DF5));
    for _ in 0..4 {
        y = 0.5 * (y + x / y);
    }
    y
}

/// Upper-tail standard normal quantile: `z` with `P(Z > z) = alpha`, for `alpha ∈ (0, 0.5]`.
///
/// Abramowitz & Stegun 26.2.23 (absolute error < 4.5e-4).
pub(crate) fn normal_upper_quantile(alpha: f32) -> f32 {
    let p = if alpha > 0.5 { 0.5 } else { alpha };
    if p.is_nan() || p <= 0.0 {
        return 8.0;
    }
    let t = sqrt(-2.0 * ln(p));
    let num = 2.515_517 + t * (0.802_853 + t * 0.010_328);
    let den = 1.0 + t * (1.432_788 + t * (0.189_269 + t * 0.001_308));
    t - num / den
}

/// Upper-tail chi-square critical value for `df` degrees of freedom at significance
/// `alpha` (Wilson–Hilferty cube approximation: `df·(1 − 2/(9df) + z·√(2/(9df)))³`).
/// Slightly conservative (too high, by up to ~5 %) for small `df` in far tails, which
/// only makes the test stricter.
pub(crate) fn chi2_critical(df: u32, alpha: f32) -> f32 {
    let k = if df == 0 { 1.0 } else { df as f32 };
    let z = normal_upper_quantile(alpha);
    let a = 2.0 / (9.0 * k);
    let c = 1.0 - a + z * sqrt(a);
    k * c * c * c
}

/// Shannon entropy in bits of the distribution given by `counts` (zeros ignored).
pub(crate) fn entropy_bits<I: IntoIterator<Item = u32> + Clone>(counts: I) -> f32 {
    let total: u64 = counts.clone().into_iter().map(u64::from).sum();
    if total == 0 {
        return 0.0;
    }
    let n = total as f32;
    let mut h = 0.0;
    for c in counts {
        if c > 0 {
            let p = c as f32 / n;
            h -= p * log2(p);
        }
    }
    if h > 0.0 { h } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f32, b: f32, tol: f32) -> bool {
        let d = a - b;
        d < tol && -d < tol
    }

    #[test]
    fn log2_matches_known_values() {
        for (x, want) in [
            (1.0, 0.0),
            (2.0, 1.0),
            (8.0, 3.0),
            (0.5, -1.0),
            (3.0, 1.584_962_5),
            (1e-3, -9.965_784),
        ] {
            assert!(
                close(log2(x), want, 1e-4),
                "log2({x}) = {} want {want}",
                log2(x)
            );
        }
        assert!(close(log2(1e-40), -132.877_12, 1e-3));
        assert_eq!(log2(0.0), f32::NEG_INFINITY);
        assert_eq!(log2(-1.0), f32::NEG_INFINITY);
        assert_eq!(log2(f32::NAN), f32::NEG_INFINITY);
    }

    #[test]
    fn sqrt_matches_known_values() {
        for x in [1e-6f32, 0.25, 2.0, 9.0, 1e6, 12345.678] {
            let s = sqrt(x);
            assert!(close(s * s / x, 1.0, 1e-5), "sqrt({x}) = {s}");
        }
        assert_eq!(sqrt(-4.0), 0.0);
        assert_eq!(sqrt(f32::NAN), 0.0);
    }

    #[test]
    fn normal_quantile_and_chi2_are_close_to_tables() {
        assert!(close(normal_upper_quantile(0.05), 1.645, 2e-3));
        assert!(close(normal_upper_quantile(0.001), 3.090, 2e-3));
        // Tables: chi2(0.001; 2) = 13.82, (0.001; 10) = 29.59, (1e-5; 3) = 25.90.
        assert!(close(chi2_critical(10, 0.001), 29.59, 0.5));
        // Wilson–Hilferty errs on the high (strict) side in far tails of small df.
        let c = chi2_critical(3, 1e-5);
        assert!((25.90..27.5).contains(&c), "{c}");
        assert!(chi2_critical(1, 0.001) >= 10.83);
    }

    #[test]
    fn entropy_of_uniform_and_point_mass() {
        assert!(close(entropy_bits([5u32, 5, 5, 5]), 2.0, 1e-4));
        assert_eq!(entropy_bits([0u32, 7, 0]), 0.0);
        assert_eq!(entropy_bits([0u32; 3]), 0.0);
    }

    #[test]
    fn ramp_and_clamp_swallow_nan() {
        assert_eq!(clamp01(f32::NAN), 0.0);
        assert_eq!(ramp(f32::NAN, 0.0, 1.0), 0.0);
        assert_eq!(ramp(0.5, 0.0, 1.0), 0.5);
        assert_eq!(ramp(3.0, 1.0, 3.0), 1.0);
    }
}
