//! Health of the upstreams behind one filter instance: the core [`Scorer`], fed with one
//! observation per exchange, keyed by upstream index.
//!
//! The core scorer keeps a global verdict (all upstreams together, with hysteresis) and
//! per-upstream severities, so a sick upstream is named in the reasons. This module maps
//! the filter's outcomes and configuration onto it and formats reasons without float
//! formatting code (which would cost the `.wasm` ~15 KiB).

use dnswarden_core::score::{
    AnswerSummary, CapacityError, Observation, ScoreConfig, Scorer, Verdict,
};
#[cfg(test)]
use dnswarden_core::wire::Rcode;

use crate::config::Config;

/// Upstreams the scorer tracks at once (least recently seen evicted beyond that).
pub const SERVERS: usize = 16;
/// Target slots: questions (name + type) with per-target detectors (round-robin skew,
/// answer-set drift); [`crate::targets::Targets`] decides which questions get one.
pub const TARGETS: usize = 32;

/// What happened to one query: the core's outcome (a truncated answer is
/// `Truncated(Fallback::NotAttempted)`: a passive observer cannot tell).
pub use dnswarden_core::score::Outcome;

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
    sc.weights.drift = on(s.drift, w.drift);
    sc.weights.round_robin = on(s.round_robin, w.round_robin);
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

    /// Sets the expected answer set of `target`: distinct member hashes. Given to the core
    /// as a fingerprint and count ([`Scorer::expect_fingerprint`]): the filter passes no
    /// members with its answers, and this keeps the core's member-set code (a sort) out
    /// of the `.wasm`.
    ///
    /// # Errors
    /// The core's capacity error (no free target slot).
    pub fn expect(
        &mut self,
        target: u32,
        now_us: u64,
        members: &[u64],
    ) -> Result<(), CapacityError> {
        let count = u16::try_from(members.len()).ok();
        let fingerprint = dnswarden_core::score::set_fingerprint(members);
        self.scorer
            .expect_fingerprint(target, now_us, fingerprint, count)
    }

    /// Forgets what the scorer knows about `target` (its slot is given to another question).
    pub fn forget_target(&mut self, target: u32) {
        self.scorer.forget_target(target);
    }

    /// Feeds one exchange; returns the overall verdict change, if any. `target` 0 with
    /// [`AnswerSummary::EMPTY`] scores the exchange per server only.
    pub fn observe(
        &mut self,
        server: u32,
        target: u32,
        outcome: Outcome,
        rtt_us: u32,
        at_us: u64,
        answers: AnswerSummary<'_>,
    ) -> Option<Change> {
        let a = self.scorer.observe(
            &Observation::new(server, target, at_us, outcome)
                .rtt(rtt_us)
                .answers(answers),
        );
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

    /// The raised detectors, strongest first: `servfail=1.00 (<cause>, upstream <label>)`,
    /// with the upstream named when one stands out and the target (`target`: its label)
    /// for the per-target detectors.
    pub fn reasons(&self, label: impl Fn(u32) -> String, target: impl Fn(u32) -> String) -> String {
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
            if let Some(t) = r.target {
                out.push_str(", name ");
                out.push_str(&target(t));
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
            changes.extend(h.observe(
                server,
                0,
                Outcome::Response(Rcode(rcode)),
                900,
                t,
                AnswerSummary::EMPTY,
            ));
        }
        assert_eq!(h.verdict(), Verdict::Critical, "{changes:?}");
        assert_eq!(changes.last().map(|c| c.to), Some(Verdict::Critical));
        assert_eq!(h.server_verdict(2), Verdict::Critical);
        assert_eq!(h.server_verdict(0), Verdict::Ok);
        let reasons = h.reasons(|s| format!("u{s}"), |t| t.to_string());
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
                h.observe(
                    0,
                    0,
                    Outcome::Response(Rcode::SERVFAIL),
                    1_000,
                    t * 1_000,
                    AnswerSummary::EMPTY
                )
                .is_none()
            );
        }
        assert_eq!(h.verdict(), Verdict::Ok);
    }

    #[test]
    fn three_timeouts_in_a_row_are_critical() {
        let mut h = Health::new(&Config::default()).expect("valid");
        for t in 1..=3 {
            h.observe(0, 0, Outcome::Timeout, 0, t, AnswerSummary::EMPTY);
        }
        assert_eq!(h.verdict(), Verdict::Critical);
        assert!(
            h.reasons(|s| s.to_string(), |t| t.to_string())
                .starts_with("loss=")
        );
    }
}
