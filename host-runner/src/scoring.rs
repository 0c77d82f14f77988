//! The seam between probe results and the scorer.
//!
//! The runner keeps one [`Scorer`] per server and one per target. Each probe result is
//! turned into an [`Observation`] (pure data: outcome, RTT, answer-set summary, time in
//! microseconds) and fed to both; each returns an [`Assessment`] (score, verdict,
//! reasons). Nothing here knows about sockets or clocks.

use std::fmt;

use dnswarden_core::wire::Rcode;
use serde::Serialize;

use crate::config::ScoringSettings;
use crate::probe::{Outcome, ProbeResult, set_fingerprint};

/// The verdict on a server or a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Healthy.
    Ok,
    /// Something is off.
    Degraded,
    /// Broken.
    Critical,
}

impl Verdict {
    /// A bounded label.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Degraded => "degraded",
            Verdict::Critical => "critical",
        }
    }
    /// The gauge value: 0 ok, 1 degraded, 2 critical.
    pub fn level(self) -> i64 {
        match self {
            Verdict::Ok => 0,
            Verdict::Degraded => 1,
            Verdict::Critical => 2,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a score is what it is: one flag per detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Reasons(u16);

impl Reasons {
    /// RTT far above the recent baseline.
    pub const RTT_SPIKE: Reasons = Reasons(1);
    /// Timeouts / loss.
    pub const LOSS: Reasons = Reasons(1 << 1);
    /// NXDOMAIN concentration.
    pub const NXDOMAIN: Reasons = Reasons(1 << 2);
    /// SERVFAIL burst.
    pub const SERVFAIL: Reasons = Reasons(1 << 3);
    /// Truncated answers / failed TCP fallback.
    pub const TRUNCATION: Reasons = Reasons(1 << 4);
    /// Answer set differs from the expected set.
    pub const DRIFT: Reasons = Reasons(1 << 5);
    /// Round-robin skew.
    pub const SKEW: Reasons = Reasons(1 << 6);
    /// Malformed or mismatched responses.
    pub const INTEGRITY: Reasons = Reasons(1 << 7);
    /// Other error RCODEs (REFUSED, NOTIMP...).
    pub const RCODE: Reasons = Reasons(1 << 8);

    /// Every reason with its label.
    pub const ALL: [(Reasons, &'static str); 9] = [
        (Reasons::RTT_SPIKE, "rtt_spike"),
        (Reasons::LOSS, "loss"),
        (Reasons::NXDOMAIN, "nxdomain"),
        (Reasons::SERVFAIL, "servfail"),
        (Reasons::TRUNCATION, "truncation"),
        (Reasons::DRIFT, "drift"),
        (Reasons::SKEW, "skew"),
        (Reasons::INTEGRITY, "integrity"),
        (Reasons::RCODE, "error_rcode"),
    ];

    /// Whether every flag of `other` is set.
    pub fn contains(self, other: Reasons) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }
    /// Whether no flag is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// Adds the flags of `other`.
    pub fn insert(&mut self, other: Reasons) {
        self.0 |= other.0;
    }
    /// The labels of the flags set.
    pub fn labels(self) -> Vec<&'static str> {
        Reasons::ALL
            .iter()
            .filter(|(r, _)| self.contains(*r))
            .map(|(_, n)| *n)
            .collect()
    }
}

impl fmt::Display for Reasons {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let labels = self.labels();
        if labels.is_empty() {
            f.write_str("-")
        } else {
            f.write_str(&labels.join(","))
        }
    }
}

/// One probe, as the scorer sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    /// Index of the server in the configuration.
    pub server: u16,
    /// Index of the target in the configuration.
    pub target: u16,
    /// When the probe finished, microseconds since the runner started.
    pub at_us: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// Round-trip time in microseconds.
    pub rtt_us: u64,
    /// A TC=1 answer was seen.
    pub truncated: bool,
    /// `Some(false)`: the TCP retry after TC=1 failed.
    pub tcp_fallback: Option<bool>,
    /// Mismatched plus malformed responses seen.
    pub integrity_errors: u32,
    /// Records of the query type in the answer.
    pub answer_count: u16,
    /// Order-independent fingerprint of the answer set.
    pub answer_fingerprint: u64,
    /// Fingerprint of the first answer (for round-robin skew).
    pub first_answer: u64,
    /// Fingerprint of the expected set, when the target has one.
    pub expected_fingerprint: Option<u64>,
    /// This was a retry of a failed probe.
    pub retry: bool,
}

impl Observation {
    /// Builds the observation of a probe result. `expected` is the target's expected
    /// answer set (sorted), empty when any answer will do.
    pub fn from_probe(
        server: u16,
        target: u16,
        at_us: u64,
        res: &ProbeResult,
        qtype: dnswarden_core::wire::Rtype,
        expected: &[String],
        retry: bool,
    ) -> Observation {
        let set = res.answer_set(qtype);
        let first = res
            .answers
            .iter()
            .find(|a| a.rtype == qtype.to_string())
            .map(|a| set_fingerprint(std::slice::from_ref(&a.data)))
            .unwrap_or(0);
        Observation {
            server,
            target,
            at_us,
            outcome: res.outcome,
            rtt_us: u64::try_from(res.rtt.as_micros()).unwrap_or(u64::MAX),
            truncated: res.truncated,
            tcp_fallback: res.tcp_fallback,
            integrity_errors: res.mismatches + res.malformed,
            answer_count: u16::try_from(set.len()).unwrap_or(u16::MAX),
            answer_fingerprint: set_fingerprint(&set),
            first_answer: first,
            expected_fingerprint: (!expected.is_empty()).then(|| set_fingerprint(expected)),
            retry,
        }
    }
}

/// What a scorer thinks after an observation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Assessment {
    /// Fused score in [0, 1].
    pub score: f64,
    /// The verdict (with hysteresis).
    pub verdict: Verdict,
    /// The detectors that contribute.
    pub reasons: Reasons,
}

/// A scorer for one server or one target.
#[derive(Debug)]
pub struct Scorer {
    inner: interim::Interim,
}

impl Scorer {
    /// A scorer with these settings.
    pub fn new(settings: &ScoringSettings) -> Scorer {
        Scorer {
            inner: interim::Interim::new(settings),
        }
    }

    /// Feeds one observation.
    pub fn observe(&mut self, obs: &Observation) -> Assessment {
        self.inner.observe(obs)
    }
}

/// A small runner-side scorer used until the core scorer lands: windowed detectors
/// with the same signals and a verdict with hysteresis.
mod interim {
    use std::collections::VecDeque;

    use super::*;

    /// Observations kept (time-bounded too).
    const WINDOW_US: u64 = 5_000_000;
    const RTT_WINDOW: usize = 600;
    const DWELL_US: u64 = 1_000_000;

    #[derive(Debug)]
    pub(super) struct Interim {
        s: ScoringSettings,
        recent: VecDeque<Observation>,
        rtts: VecDeque<u64>,
        consecutive_fail: u32,
        consecutive_servfail: u32,
        consecutive_nx: u32,
        consecutive_spike: u32,
        consecutive_drift: u32,
        consecutive_tc: u32,
        verdict: Verdict,
        below_since: Option<u64>,
    }

    impl Interim {
        pub(super) fn new(s: &ScoringSettings) -> Self {
            Interim {
                s: *s,
                recent: VecDeque::new(),
                rtts: VecDeque::new(),
                consecutive_fail: 0,
                consecutive_servfail: 0,
                consecutive_nx: 0,
                consecutive_spike: 0,
                consecutive_drift: 0,
                consecutive_tc: 0,
                verdict: Verdict::Ok,
                below_since: None,
            }
        }

        fn baseline(&self) -> Option<(u64, u64)> {
            if self.rtts.len() < 20 {
                return None;
            }
            let mut v: Vec<u64> = self.rtts.iter().copied().collect();
            v.sort_unstable();
            let median = v.get(v.len() / 2).copied()?;
            let mut dev: Vec<u64> = v.iter().map(|x| x.abs_diff(median)).collect();
            dev.sort_unstable();
            let mad = dev.get(dev.len() / 2).copied()?;
            Some((median, mad))
        }

        pub(super) fn observe(&mut self, o: &Observation) -> Assessment {
            while self
                .recent
                .front()
                .is_some_and(|f| f.at_us + WINDOW_US < o.at_us)
            {
                self.recent.pop_front();
            }
            self.recent.push_back(*o);

            let bump = |c: &mut u32, yes: bool| *c = if yes { *c + 1 } else { 0 };
            let failed = !o.outcome.answered();
            bump(&mut self.consecutive_fail, failed);
            bump(
                &mut self.consecutive_servfail,
                o.outcome == Outcome::Answer(Rcode::SERVFAIL),
            );
            bump(
                &mut self.consecutive_nx,
                o.outcome == Outcome::Answer(Rcode::NXDOMAIN),
            );
            let floor_us = u64::try_from(self.s.rtt_floor.as_micros()).unwrap_or(u64::MAX);
            let spike = o.outcome.answered()
                && o.rtt_us > floor_us
                && self
                    .baseline()
                    .is_some_and(|(med, mad)| o.rtt_us > med + 6 * mad.max(med / 4).max(100));
            bump(&mut self.consecutive_spike, spike);
            if o.outcome.answered() && !spike && !o.truncated {
                self.rtts.push_back(o.rtt_us);
                if self.rtts.len() > RTT_WINDOW {
                    self.rtts.pop_front();
                }
            }
            let drift = o.outcome == Outcome::Answer(Rcode::NOERROR)
                && o.expected_fingerprint
                    .is_some_and(|e| e != o.answer_fingerprint);
            bump(&mut self.consecutive_drift, drift);
            bump(&mut self.consecutive_tc, o.truncated);

            let n = self.recent.len() as f64;
            let share = |f: &dyn Fn(&Observation) -> bool| {
                self.recent.iter().filter(|x| f(x)).count() as f64 / n
            };
            let w = self.s.weights;
            let mut reasons = Reasons::default();
            let mut score: f64 = 0.0;
            let mut add = |reason: Reasons, weight: f64, severity: f64| {
                let sev = severity.clamp(0.0, 1.0);
                if sev > 0.0 && weight > 0.0 {
                    reasons.insert(reason);
                    score = score.max((weight * sev).min(1.0));
                }
            };
            let loss = share(&|x| !x.outcome.answered() && x.outcome != Outcome::Truncated);
            add(
                Reasons::LOSS,
                w.loss,
                match self.consecutive_fail {
                    0 => (loss - 0.2).max(0.0) * 2.0,
                    1 => 0.2_f64.max((loss - 0.2) * 2.0),
                    2 => 0.5,
                    _ => 1.0,
                },
            );
            let sf = share(&|x| x.outcome == Outcome::Answer(Rcode::SERVFAIL));
            add(
                Reasons::SERVFAIL,
                w.servfail,
                match self.consecutive_servfail {
                    0 => (sf - 0.1).max(0.0) * 2.5,
                    1 => 0.35_f64.max((sf - 0.1) * 2.5),
                    2 => 0.7,
                    _ => 1.0,
                },
            );
            let nx = share(&|x| x.outcome == Outcome::Answer(Rcode::NXDOMAIN));
            add(
                Reasons::NXDOMAIN,
                w.nxdomain,
                if self.consecutive_nx >= 3 || (nx > 0.85 && n >= 5.0) {
                    1.0
                } else if self.consecutive_nx >= 2 {
                    0.5
                } else {
                    (nx - 0.3).max(0.0)
                },
            );
            let other_rcode = share(&|x| {
                matches!(x.outcome, Outcome::Answer(r)
                    if r != Rcode::NOERROR && r != Rcode::NXDOMAIN && r != Rcode::SERVFAIL)
            });
            add(Reasons::RCODE, w.servfail, other_rcode * 2.0);
            let tc = share(&|x| x.truncated);
            let tc_failed =
                share(&|x| x.tcp_fallback == Some(false) || x.outcome == Outcome::Truncated);
            add(
                Reasons::TRUNCATION,
                w.truncation,
                if tc_failed > 0.0 {
                    0.5 + tc_failed
                } else if self.consecutive_tc >= 3 || (o.truncated && tc >= 0.5) {
                    0.4
                } else {
                    0.0
                },
            );
            add(
                Reasons::RTT_SPIKE,
                w.rtt,
                match self.consecutive_spike {
                    0 => 0.0,
                    1 => 0.2,
                    2 => 0.5,
                    _ => 0.8,
                },
            );
            add(
                Reasons::DRIFT,
                w.drift,
                if self.consecutive_drift >= 3 {
                    0.5
                } else {
                    0.0
                },
            );
            let integ = share(&|x| x.integrity_errors > 0 || x.outcome == Outcome::Malformed);
            add(
                Reasons::INTEGRITY,
                w.integrity,
                if integ > 0.0 { 0.35 + integ } else { 0.0 },
            );

            self.step_verdict(score, o.at_us);
            Assessment {
                score,
                verdict: self.verdict,
                reasons,
            }
        }

        fn step_verdict(&mut self, score: f64, now: u64) {
            let target = if score >= self.s.critical {
                Verdict::Critical
            } else if score >= self.s.degraded {
                Verdict::Degraded
            } else {
                Verdict::Ok
            };
            if target > self.verdict {
                // Worse: move at once.
                self.verdict = target;
                self.below_since = None;
                return;
            }
            // Better: only after the score stayed low for the dwell time.
            let low_enough = match self.verdict {
                Verdict::Critical => score < self.s.degraded,
                Verdict::Degraded => score < self.s.recover,
                Verdict::Ok => false,
            };
            if !low_enough {
                self.below_since = None;
                return;
            }
            let since = *self.below_since.get_or_insert(now);
            if now.saturating_sub(since) >= DWELL_US {
                self.verdict = if self.verdict == Verdict::Critical && score >= self.s.recover {
                    Verdict::Degraded
                } else {
                    Verdict::Ok
                };
                self.below_since = None;
            }
        }
    }
}
