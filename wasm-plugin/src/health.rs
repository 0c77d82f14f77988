//! Health of the upstreams behind one filter instance: the core [`Scorer`], fed with one
//! observation per exchange, keyed by upstream index.
//!
//! The core scorer keeps a global verdict (all upstreams together, with hysteresis) and
//! per-upstream severities, so a sick upstream is named in the reasons. This module maps
//! the filter's outcomes and configuration onto it and formats reasons without float
//! formatting code (which would cost the `.wasm` ~15 KiB).

use dnswarden_core::score::{
    Fallback, Observation, Outcome as CoreOutcome, ScoreConfig, Scorer, Verdict,
};
use dnswarden_core::wire::{Mismatch, Rcode};

use crate::config::Config;

/// Upstreams the scorer tracks at once (least recently seen evicted beyond that).
pub const SERVERS: usize = 16;
/// Target slots (the filter sets no expectations and passes no answer sets).
const TARGETS: usize = 4;

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
    /// The answer did not match its query.
    Mismatch(Mismatch),
}

/// A change of the overall verdict, to be logged once.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Previous verdict.
    pub from: Verdict,
    /// New verdict.
    pub to: Verdict,
    /// Fused score in [0, 1].
    pub score: f32,
}

/// Gauge value of a verdict: 0 ok, 1 degraded, 2 critical.
#[must_use]
pub fn gauge(v: Verdict) -> i64 {
    match v {
        Verdict::Ok => 0,
        Verdict::Degraded => 1,
        Verdict::Critical => 2,
    }
}

/// `x` with two decimals, without pulling float formatting into the `.wasm`.
#[must_use]
pub fn fixed2(x: f32) -> String {
    let hundredths = (x.clamp(0.0, 1_000.0) * 100.0 + 0.5) as u32;
    let mut out = (hundredths / 100).to_string();
    out.push('.');
    out.push(char::from(b'0' + (hundredths / 10 % 10) as u8));
    out.push(char::from(b'0' + (hundredths % 10) as u8));
    out
}

/// The core scorer configuration for a plugin configuration.
///
/// # Errors
/// The core's validation message, naming its field.
pub fn score_config(config: &Config) -> Result<ScoreConfig, dnswarden_core::score::ConfigError> {
    let mut sc = ScoreConfig::default();
    let (s, w, t) = (&config.signals, &config.weights, &config.thresholds);
    let on = |enabled: bool, weight: f32| if enabled { weight } else { 0.0 };
    sc.weights.rtt = on(s.rtt, w.rtt);
    sc.weights.loss = on(s.timeouts, w.timeouts);
    sc.weights.servfail = on(s.servfail, w.servfail);
    sc.weights.nxdomain = on(s.nxdomain, w.nxdomain);
    sc.weights.truncation = on(s.truncation, w.truncation);
    sc.weights.integrity = on(s.integrity, w.integrity);
    // The filter passes neither expected answer sets nor answer summaries.
    sc.weights.drift = 0.0;
    sc.weights.round_robin = 0.0;
    sc.degraded_enter = t.degraded;
    sc.critical_enter = t.critical;
    // Hysteresis at the core's default ratios (0.3 / 0.5 and 0.6 / 0.85).
    sc.degraded_leave = t.degraded * 0.6;
    sc.critical_leave = t.degraded.max(t.critical * 0.7);
    sc.rtt_floor_us = t.rtt_floor_ms.saturating_mul(1000);
    sc.validate()?;
    Ok(sc)
}

/// The scorer for one filter instance.
#[derive(Debug)]
pub struct Health {
    scorer: Box<Scorer<SERVERS, TARGETS>>,
}

impl Health {
    /// A scorer for this configuration.
    ///
    /// # Errors
    /// See [`score_config`].
    pub fn new(config: &Config) -> Result<Self, dnswarden_core::score::ConfigError> {
        let scorer = Scorer::new(score_config(config)?)?;
        Ok(Self {
            scorer: Box::new(scorer),
        })
    }

    /// Overall verdict.
    #[must_use]
    pub fn verdict(&self) -> Verdict {
        self.scorer.verdict()
    }

    /// Overall score.
    #[must_use]
    pub fn score(&self) -> f32 {
        self.scorer.score()
    }

    /// One upstream's own score (0 when not tracked).
    #[must_use]
    pub fn server_score(&self, server: u32) -> f32 {
        self.scorer.server_health(server).map_or(0.0, |h| h.score)
    }

    /// One upstream's verdict from its own score (no hysteresis: the overall verdict
    /// carries that).
    #[must_use]
    pub fn server_verdict(&self, server: u32) -> Verdict {
        let score = self.server_score(server);
        let cfg = self.scorer.config();
        if score >= cfg.critical_enter {
            Verdict::Critical
        } else if score >= cfg.degraded_enter {
            Verdict::Degraded
        } else {
            Verdict::Ok
        }
    }

    /// Feeds one exchange; returns the overall verdict change, if any.
    pub fn observe(
        &mut self,
        server: u32,
        target: u32,
        outcome: Outcome,
        rtt_us: u32,
        at_us: u64,
    ) -> Option<Change> {
        let outcome = match outcome {
            Outcome::Response(rcode) => CoreOutcome::Response(Rcode(rcode)),
            Outcome::Truncated => CoreOutcome::Truncated(Fallback::NotAttempted),
            Outcome::Timeout => CoreOutcome::Timeout,
            Outcome::Malformed => CoreOutcome::Malformed,
            Outcome::Mismatch(m) => CoreOutcome::Mismatch(m),
        };
        let a = self
            .scorer
            .observe(&Observation::new(server, target, at_us, outcome).rtt(rtt_us));
        a.change.map(|c| Change {
            from: c.from,
            to: c.to,
            score: c.score,
        })
    }

    /// Re-evaluates at `now_us` (windows age, verdicts step down).
    pub fn evaluate(&mut self, now_us: u64) -> Option<Change> {
        let a = self.scorer.evaluate(now_us);
        a.change.map(|c| Change {
            from: c.from,
            to: c.to,
            score: c.score,
        })
    }

    /// The raised detectors, strongest first: `servfail=1.00@<upstream>`, with the
    /// upstream named when one stands out.
    pub fn reasons(&self, label: impl Fn(u32) -> String) -> String {
        let mut out = String::new();
        for r in self.scorer.reasons().iter() {
            if !out.is_empty() {
                out.push_str(", ");
            }
            out.push_str(r.detector.name());
            out.push('=');
            out.push_str(&fixed2(r.weighted));
            out.push_str(" (");
            out.push_str(r.cause.description());
            if let Some(server) = r.server {
                out.push_str(", upstream ");
                out.push_str(&label(server));
            }
            out.push(')');
        }
        if out.is_empty() {
            out.push_str("no detector raised");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed2_rounds() {
        assert_eq!(fixed2(0.0), "0.00");
        assert_eq!(fixed2(0.625), "0.63");
        assert_eq!(fixed2(1.0), "1.00");
        assert_eq!(fixed2(-1.0), "0.00");
    }

    #[test]
    fn default_config_is_valid_for_the_core() {
        assert!(score_config(&Config::default()).is_ok());
    }

    #[test]
    fn servfail_burst_on_one_upstream_goes_critical_and_is_named() {
        let mut h = Health::new(&Config::default()).expect("valid");
        let mut t = 0;
        let mut changes = Vec::new();
        for i in 0..30u32 {
            t += 10_000;
            let server = i % 3;
            let rcode = if server == 2 && i >= 15 { 2 } else { 0 };
            changes.extend(h.observe(server, 0, Outcome::Response(rcode), 900, t));
        }
        assert_eq!(h.verdict(), Verdict::Critical, "{changes:?}");
        assert_eq!(changes.last().map(|c| c.to), Some(Verdict::Critical));
        assert_eq!(h.server_verdict(2), Verdict::Critical);
        assert_eq!(h.server_verdict(0), Verdict::Ok);
        let reasons = h.reasons(|s| format!("u{s}"));
        assert!(reasons.starts_with("servfail="), "{reasons}");
        assert!(reasons.contains("upstream u2"), "{reasons}");
    }

    #[test]
    fn disabled_signal_does_not_count() {
        let mut c = Config::default();
        c.signals.servfail = false;
        let mut h = Health::new(&c).expect("valid");
        for t in 0..20 {
            assert!(
                h.observe(0, 0, Outcome::Response(2), 1_000, t * 1_000)
                    .is_none()
            );
        }
        assert_eq!(h.verdict(), Verdict::Ok);
    }

    #[test]
    fn three_timeouts_in_a_row_are_critical() {
        let mut h = Health::new(&Config::default()).expect("valid");
        for t in 1..=3 {
            h.observe(0, 0, Outcome::Timeout, 0, t);
        }
        assert_eq!(h.verdict(), Verdict::Critical);
        assert!(h.reasons(|s| s.to_string()).starts_with("loss="));
    }
}
