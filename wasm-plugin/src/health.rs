//! Per-upstream health: outcomes in, a score, a verdict and its reasons out.
//!
//! This is the filter's thin seam onto scoring. It keeps, per upstream, a small ring of
//! recent outcomes and derives one severity per signal; the fused score is the largest
//! weighted severity, and the verdict moves with hysteresis (entering a state needs the
//! threshold, leaving it needs the score to fall below 80 % of it).

use crate::config::Config;

/// What happened to one query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An answer with this (extended) rcode.
    Response(u16),
    /// An answer with TC=1.
    Truncated,
    /// No answer in time, or none before the connection closed.
    Timeout,
    /// The answer could not be parsed.
    Malformed,
    /// The answer did not match its query (id or question).
    Mismatch,
}

/// Overall state of an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// Healthy.
    Ok,
    /// Some signal is elevated.
    Degraded,
    /// Sick.
    Critical,
}

impl Verdict {
    /// Lower-case name for logs.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Degraded => "degraded",
            Self::Critical => "critical",
        }
    }

    /// Gauge value: 0, 1, 2.
    #[must_use]
    pub fn gauge(self) -> i64 {
        match self {
            Self::Ok => 0,
            Self::Degraded => 1,
            Self::Critical => 2,
        }
    }
}

/// A verdict change, to be logged once.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Previous verdict.
    pub from: Verdict,
    /// New verdict.
    pub to: Verdict,
    /// Fused score in [0, 1].
    pub score: f32,
    /// Signals that contributed, strongest first, e.g. `servfail=1.00 rtt=0.40`.
    pub reasons: String,
}

const RING: usize = 32;
const WINDOW_US: u64 = 10_000_000;
const MIN_SAMPLES: usize = 3;

#[derive(Debug, Clone, Copy)]
struct Sample {
    at_us: u64,
    outcome: Outcome,
    rtt_us: u32,
}

/// Health of one upstream.
#[derive(Debug, Clone)]
pub struct Health {
    ring: Vec<Sample>,
    next: usize,
    consecutive_timeouts: u32,
    verdict: Verdict,
    score: f32,
}

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

impl Health {
    /// A healthy upstream with no history.
    #[must_use]
    pub fn new() -> Self {
        Self {
            ring: Vec::with_capacity(RING),
            next: 0,
            consecutive_timeouts: 0,
            verdict: Verdict::Ok,
            score: 0.0,
        }
    }

    /// Current verdict.
    #[must_use]
    pub fn verdict(&self) -> Verdict {
        self.verdict
    }

    /// Current score.
    #[must_use]
    pub fn score(&self) -> f32 {
        self.score
    }

    /// Records an outcome and re-evaluates. Returns the change, if the verdict moved.
    pub fn observe(
        &mut self,
        config: &Config,
        outcome: Outcome,
        rtt_us: u32,
        at_us: u64,
    ) -> Option<Change> {
        let sample = Sample {
            at_us,
            outcome,
            rtt_us,
        };
        if self.ring.len() < RING {
            self.ring.push(sample);
        } else if let Some(slot) = self.ring.get_mut(self.next) {
            *slot = sample;
        }
        self.next = (self.next + 1) % RING;
        if outcome == Outcome::Timeout {
            self.consecutive_timeouts = self.consecutive_timeouts.saturating_add(1);
        } else {
            self.consecutive_timeouts = 0;
        }
        self.evaluate(config, at_us)
    }

    /// Re-evaluates at `now_us` (old samples age out). Returns the change, if any.
    pub fn evaluate(&mut self, config: &Config, now_us: u64) -> Option<Change> {
        let severities =
            self.severities(config, now_us, rtt_of(&sample_last(&self.ring, self.next)));
        let w = &config.weights;
        let s = &config.signals;
        let weighted = [
            ("rtt", s.rtt, w.rtt * severities[0]),
            ("timeouts", s.timeouts, w.timeouts * severities[1]),
            ("servfail", s.servfail, w.servfail * severities[2]),
            ("nxdomain", s.nxdomain, w.nxdomain * severities[3]),
            ("truncation", s.truncation, w.truncation * severities[4]),
            ("integrity", s.integrity, w.integrity * severities[5]),
        ];
        let score = weighted
            .iter()
            .filter(|(_, on, _)| *on)
            .map(|(_, _, v)| *v)
            .fold(0.0f32, f32::max)
            .min(1.0);
        self.score = score;
        let t = &config.thresholds;
        let target = if score >= t.critical {
            Verdict::Critical
        } else if score >= t.degraded {
            Verdict::Degraded
        } else {
            Verdict::Ok
        };
        let next = match target.cmp(&self.verdict) {
            std::cmp::Ordering::Greater => target,
            std::cmp::Ordering::Equal => return None,
            std::cmp::Ordering::Less => {
                // Leave a state only once clearly below its threshold.
                let leave = match self.verdict {
                    Verdict::Critical => t.critical,
                    _ => t.degraded,
                } * 0.8;
                if score >= leave {
                    return None;
                }
                target
            }
        };
        let mut parts: Vec<(&str, f32)> = weighted
            .iter()
            .filter(|(_, on, v)| *on && *v > 0.0)
            .map(|(n, _, v)| (*n, *v))
            .collect();
        // Strongest first (at most six entries: an insertion sort keeps the .wasm small).
        for i in 1..parts.len() {
            let mut j = i;
            while j > 0 && parts[j - 1].1 < parts[j].1 {
                parts.swap(j - 1, j);
                j -= 1;
            }
        }
        let mut reasons = String::new();
        for (n, v) in &parts {
            if !reasons.is_empty() {
                reasons.push(' ');
            }
            reasons.push_str(n);
            reasons.push('=');
            reasons.push_str(&fixed2(*v));
        }
        if reasons.is_empty() {
            reasons.push_str("no elevated signal");
        }
        let change = Change {
            from: self.verdict,
            to: next,
            score,
            reasons,
        };
        self.verdict = next;
        Some(change)
    }

    /// Severity in [0, 1] for rtt, timeouts, servfail, nxdomain, truncation, integrity.
    fn severities(&self, config: &Config, now_us: u64, last_rtt: Option<u32>) -> [f32; 6] {
        let recent = || {
            self.ring
                .iter()
                .filter(|s| now_us.saturating_sub(s.at_us) < WINDOW_US)
        };
        let n = recent().count();
        let mut out = [0.0f32; 6];
        if n == 0 {
            return out;
        }
        let share = |pred: &dyn Fn(Outcome) -> bool| {
            recent().filter(|s| pred(s.outcome)).count() as f32 / n as f32
        };
        let enough = n >= MIN_SAMPLES;
        // RTT: the newest answer far above the window's median, and above the floor.
        let rtts = || {
            recent()
                .filter(|s| matches!(s.outcome, Outcome::Response(_)))
                .map(|s| s.rtt_us)
        };
        let answered = rtts().count();
        if let Some(last) = last_rtt
            && answered >= MIN_SAMPLES
        {
            // Median by counting (at most 32 samples): the smallest value with at least
            // half of the samples at or below it.
            let median = rtts()
                .filter(|&c| 2 * rtts().filter(|&o| o <= c).count() > answered)
                .min()
                .unwrap_or(0);
            let floor = config.thresholds.rtt_floor_ms.saturating_mul(1000);
            if last > floor && last > median.saturating_mul(4) {
                out[0] = 1.0;
            }
        }
        out[1] = if self.consecutive_timeouts >= 3 {
            1.0
        } else if enough {
            share(&|o| o == Outcome::Timeout)
        } else {
            0.0
        };
        if enough {
            out[2] = share(&|o| o == Outcome::Response(2));
            let nx = share(&|o| o == Outcome::Response(3));
            out[3] = ((nx - 0.85) / 0.15).clamp(0.0, 1.0);
            out[4] = share(&|o| o == Outcome::Truncated);
            out[5] = share(&|o| matches!(o, Outcome::Malformed | Outcome::Mismatch));
        }
        out
    }
}

/// `x` with two decimals, without pulling float formatting into the `.wasm`.
#[must_use]
pub fn fixed2(x: f32) -> String {
    let hundredths = (x.clamp(0.0, 1_000.0) * 100.0 + 0.5) as u32;
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

fn sample_last(ring: &[Sample], next: usize) -> Option<Sample> {
    let at = if next == 0 {
        ring.len().checked_sub(1)?
    } else {
        next - 1
    };
    ring.get(at).copied()
}

fn rtt_of(sample: &Option<Sample>) -> Option<u32> {
    sample
        .filter(|s| matches!(s.outcome, Outcome::Response(_)))
        .map(|s| s.rtt_us)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servfail_burst_goes_critical_then_recovers_once() {
        let c = Config::default();
        let mut h = Health::new();
        let mut t = 0;
        for _ in 0..5 {
            t += 1_000;
            assert!(h.observe(&c, Outcome::Response(0), 1_000, t).is_none());
        }
        let mut changes = Vec::new();
        for _ in 0..15 {
            t += 1_000;
            changes.extend(h.observe(&c, Outcome::Response(2), 1_000, t));
        }
        assert_eq!(h.verdict(), Verdict::Critical);
        assert!(
            changes.iter().all(|ch| ch.reasons.starts_with("servfail=")),
            "{changes:?}"
        );
        // Aging out: after the window only healthy answers remain.
        t += WINDOW_US + 1;
        let mut back = Vec::new();
        for _ in 0..5 {
            t += 1_000;
            back.extend(h.observe(&c, Outcome::Response(0), 1_000, t));
        }
        assert_eq!(h.verdict(), Verdict::Ok);
        assert_eq!(back.len(), 1, "{back:?}");
    }

    #[test]
    fn fixed2_rounds() {
        assert_eq!(fixed2(0.0), "0.00");
        assert_eq!(fixed2(0.625), "0.63");
        assert_eq!(fixed2(1.0), "1.00");
        assert_eq!(fixed2(-1.0), "0.00");
    }

    #[test]
    fn three_timeouts_in_a_row_are_critical() {
        let c = Config::default();
        let mut h = Health::new();
        h.observe(&c, Outcome::Timeout, 0, 1);
        h.observe(&c, Outcome::Timeout, 0, 2);
        let ch = h.observe(&c, Outcome::Timeout, 0, 3).expect("changes");
        assert_eq!(ch.to, Verdict::Critical);
        assert!(ch.reasons.contains("timeouts=1.00"));
    }

    #[test]
    fn disabled_signal_does_not_count() {
        let mut c = Config::default();
        c.signals.servfail = false;
        let mut h = Health::new();
        for t in 0..10 {
            assert!(h.observe(&c, Outcome::Response(2), 1_000, t).is_none());
        }
    }

    #[test]
    fn rtt_spike_above_floor() {
        let c = Config::default();
        let mut h = Health::new();
        for t in 0..5 {
            h.observe(&c, Outcome::Response(0), 1_000, t);
        }
        let ch = h
            .observe(&c, Outcome::Response(0), 200_000, 6)
            .expect("spike");
        assert!(ch.reasons.starts_with("rtt="));
    }
}
