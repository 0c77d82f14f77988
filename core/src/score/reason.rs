//! Explanations: which detector, which server or target, and why.

use core::fmt;

use super::Detector;

/// Why a detector is raised; [`description`](Cause::description) is a short static text
/// for logs, [`kind`](Cause::kind) a bounded metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cause {
    /// Answers far above the server's own RTT baseline.
    RttSpike,
    /// Several timeouts in a row.
    ConsecutiveTimeouts,
    /// A high share of timeouts over the rate window.
    LossRate,
    /// NXDOMAIN share of responses above the threshold.
    NxdomainShare,
    /// SERVFAILs (or REFUSED) coming mostly from one server (low source entropy).
    ServfailConcentrated,
    /// SERVFAILs (or REFUSED) coming from several servers.
    ServfailSpread,
    /// Truncated answers whose TCP retry failed.
    TcpFallbackFailed,
    /// A high share of truncated (TC=1) answers.
    TruncationRate,
    /// Truncated answers for names that used to answer without TC.
    TruncationNew,
    /// Malformed responses.
    Malformed,
    /// Responses whose id or question does not match the query.
    Mismatch,
    /// The answer set differs from the expected set.
    AnswerSetDrift,
    /// The CNAME chain ends at an unexpected name.
    CnameDrift,
    /// The same record comes first again and again.
    RoundRobinStuck,
    /// First-position records far from uniform.
    RoundRobinSkew,
}

impl Cause {
    /// A short description for a log line.
    pub const fn description(self) -> &'static str {
        match self {
            Cause::RttSpike => "RTT far above the server's baseline",
            Cause::ConsecutiveTimeouts => "consecutive timeouts",
            Cause::LossRate => "high timeout rate",
            Cause::NxdomainShare => "NXDOMAIN share above threshold",
            Cause::ServfailConcentrated => "SERVFAIL/REFUSED burst concentrated on one server",
            Cause::ServfailSpread => "SERVFAIL/REFUSED burst across servers",
            Cause::TcpFallbackFailed => "truncated answers and failing TCP fallback",
            Cause::TruncationRate => "high share of truncated answers",
            Cause::TruncationNew => "names that answered without TC are now truncated",
            Cause::Malformed => "malformed responses",
            Cause::Mismatch => "responses with mismatched id or question (possible spoofing)",
            Cause::AnswerSetDrift => "answer set differs from the expected set",
            Cause::CnameDrift => "CNAME chain ends at an unexpected name",
            Cause::RoundRobinStuck => "round robin stuck: the same record always comes first",
            Cause::RoundRobinSkew => "round-robin first answers far from uniform",
        }
    }

    /// A bounded snake_case label for metrics.
    pub const fn kind(self) -> &'static str {
        match self {
            Cause::RttSpike => "rtt_spike",
            Cause::ConsecutiveTimeouts => "consecutive_timeouts",
            Cause::LossRate => "loss_rate",
            Cause::NxdomainShare => "nxdomain_share",
            Cause::ServfailConcentrated => "servfail_concentrated",
            Cause::ServfailSpread => "servfail_spread",
            Cause::TcpFallbackFailed => "tcp_fallback_failed",
            Cause::TruncationRate => "truncation_rate",
            Cause::TruncationNew => "truncation_new",
            Cause::Malformed => "malformed",
            Cause::Mismatch => "mismatch",
            Cause::AnswerSetDrift => "answer_set_drift",
            Cause::CnameDrift => "cname_drift",
            Cause::RoundRobinStuck => "round_robin_stuck",
            Cause::RoundRobinSkew => "round_robin_skew",
        }
    }
}

/// The numbers behind a reason.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Evidence {
    /// Nothing more to say.
    None,
    /// A share of observations in `[0, 1]`.
    Share(f32),
    /// A count of events (consecutive timeouts, events in the burst window, a run).
    Count(u32),
    /// The server's RTT baseline median and spike threshold.
    Rtt {
        /// Baseline median (µs).
        median_us: u32,
        /// Spike threshold (µs).
        threshold_us: u32,
    },
    /// Source entropy of SERVFAILs over the servers that answered in the window.
    Entropy {
        /// Shannon entropy in bits.
        bits: f32,
        /// Servers with responses in the window.
        servers: u16,
    },
    /// Expected members missing from the answer and answer members not expected (`None`
    /// when the observation did not carry its members).
    SetDiff {
        /// Expected but absent.
        missing: Option<u16>,
        /// Present but not expected.
        extra: Option<u16>,
    },
    /// Pearson's chi-square statistic and its critical value.
    ChiSquare {
        /// The statistic.
        statistic: f32,
        /// The critical value at `rr_alpha`.
        critical: f32,
    },
}

/// One raised detector, explained.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reason {
    /// Which detector.
    pub detector: Detector,
    /// Why.
    pub cause: Cause,
    /// The detector's severity in `[0, 1]`.
    pub severity: f32,
    /// Severity times the detector's weight: its share in the score.
    pub weighted: f32,
    /// The server concerned, when one server stands out (`None`: all servers together).
    pub server: Option<u32>,
    /// The target concerned (per-target detectors).
    pub target: Option<u32>,
    /// The numbers behind it.
    pub evidence: Evidence,
}

impl Reason {
    pub(crate) const EMPTY: Reason = Reason {
        detector: Detector::Rtt,
        cause: Cause::RttSpike,
        severity: 0.0,
        weighted: 0.0,
        server: None,
        target: None,
        evidence: Evidence::None,
    };
}

impl fmt::Display for Reason {
    /// `SERVFAIL/REFUSED burst concentrated on one server (server 2; entropy 0.00 bits over 3
    /// servers; severity 1.00)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.cause.description())?;
        f.write_str(" (")?;
        let mut sep = "";
        if let Some(s) = self.server {
            write!(f, "server {s}")?;
            sep = "; ";
        }
        if let Some(t) = self.target {
            write!(f, "{sep}target {t}")?;
            sep = "; ";
        }
        match self.evidence {
            Evidence::None => {}
            Evidence::Share(s) => write!(f, "{sep}share {:.0}%", s * 100.0)?,
            Evidence::Count(c) => write!(f, "{sep}count {c}")?,
            Evidence::Rtt {
                median_us,
                threshold_us,
            } => write!(
                f,
                "{sep}baseline median {median_us} µs, threshold {threshold_us} µs"
            )?,
            Evidence::Entropy { bits, servers } => write!(
                f,
                "{sep}source entropy {bits:.2} bits over {servers} servers"
            )?,
            Evidence::SetDiff { missing, extra } => match (missing, extra) {
                (Some(m), Some(e)) => write!(f, "{sep}{m} missing, {e} extra")?,
                _ => write!(f, "{sep}fingerprint differs")?,
            },
            Evidence::ChiSquare {
                statistic,
                critical,
            } => write!(f, "{sep}chi-square {statistic:.1} > {critical:.1}")?,
        }
        if !matches!(self.evidence, Evidence::None) {
            sep = "; ";
        }
        write!(f, "{sep}severity {:.2})", self.severity)
    }
}

/// The raised detectors, most weighted first (at most one reason per detector).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reasons {
    items: [Reason; Detector::COUNT],
    len: usize,
}

impl Reasons {
    pub(crate) const fn new() -> Self {
        Reasons {
            items: [Reason::EMPTY; Detector::COUNT],
            len: 0,
        }
    }

    /// Inserts keeping the order (most weighted first).
    pub(crate) fn push(&mut self, r: Reason) {
        if self.len >= Detector::COUNT {
            return;
        }
        let mut i = self.len;
        while i > 0 {
            let prev = self.items.get(i - 1).map_or(f32::INFINITY, |p| p.weighted);
            if prev >= r.weighted {
                break;
            }
            if let Some(p) = self.items.get(i - 1).copied()
                && let Some(slot) = self.items.get_mut(i)
            {
                *slot = p;
            }
            i -= 1;
        }
        if let Some(slot) = self.items.get_mut(i) {
            *slot = r;
        }
        self.len += 1;
    }

    /// The reasons as a slice, most weighted first.
    pub fn as_slice(&self) -> &[Reason] {
        self.items.get(..self.len).unwrap_or(&[])
    }

    /// Iterates most weighted first.
    pub fn iter(&self) -> core::slice::Iter<'_, Reason> {
        self.as_slice().iter()
    }

    /// The most weighted reason.
    pub fn top(&self) -> Option<&Reason> {
        self.as_slice().first()
    }

    /// The reason of one detector, if raised.
    pub fn get(&self, d: Detector) -> Option<&Reason> {
        self.iter().find(|r| r.detector == d)
    }

    /// Number of raised detectors.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no detector is raised.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<'r> IntoIterator for &'r Reasons {
    type Item = &'r Reason;
    type IntoIter = core::slice::Iter<'r, Reason>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl fmt::Display for Reasons {
    /// Reasons joined with `, `; `ok` when there are none.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("no detector raised");
        }
        for (i, r) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}
