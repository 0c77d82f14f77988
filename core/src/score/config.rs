//! [`ScoreConfig`]: every threshold, window and weight, with documented defaults.

use core::fmt;

use super::Detector;

/// Per-detector weights for the fusion (each in `[0, 1]`; 0 disables a detector's effect
/// on the score, its severity is still computed and reported).
///
/// A detector at full severity with weight `w` alone yields score `w`, so with the
/// default thresholds weight ≥ 0.85 can make a verdict critical on its own, ≥ 0.5
/// degraded.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Weights {
    /// RTT spike. Default 0.7 (degraded on its own: slow is not down).
    pub rtt: f32,
    /// Timeouts / loss. Default 1.0.
    pub loss: f32,
    /// NXDOMAIN concentration. Default 0.7.
    pub nxdomain: f32,
    /// SERVFAIL burst. Default 1.0.
    pub servfail: f32,
    /// Truncation and failed TCP fallback. Default 0.8.
    pub truncation: f32,
    /// Answer-set drift. Default 0.6.
    pub drift: f32,
    /// Round-robin skew. Default 0.5 (a soft signal: degraded at most).
    pub round_robin: f32,
    /// Integrity (malformed, id/question mismatch). Default 0.9.
    pub integrity: f32,
}

impl Weights {
    /// The weight of one detector.
    pub const fn get(&self, d: Detector) -> f32 {
        match d {
            Detector::Rtt => self.rtt,
            Detector::Loss => self.loss,
            Detector::Nxdomain => self.nxdomain,
            Detector::Servfail => self.servfail,
            Detector::Truncation => self.truncation,
            Detector::Drift => self.drift,
            Detector::RoundRobin => self.round_robin,
            Detector::Integrity => self.integrity,
        }
    }
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            rtt: 0.7,
            loss: 1.0,
            nxdomain: 0.7,
            servfail: 1.0,
            truncation: 0.8,
            drift: 0.6,
            round_robin: 0.5,
            integrity: 0.9,
        }
    }
}

/// Everything the scorer can be tuned with. Times are microseconds. `Default` gives the
/// values documented on each field; [`ScoreConfig::validate`] rejects impossible
/// combinations with the field name and the fix.
///
/// "Burst" rules look at the last [`burst_window`](Self::burst_window) observations of a
/// server (and, separately, of all servers together), which is what makes them react
/// within a few observations; "rate" rules look at the last
/// [`rate_window_us`](Self::rate_window_us) of time and need a minimum sample count.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreConfig {
    /// Fusion weights.
    pub weights: Weights,
    /// Score at or above which the verdict becomes degraded. Default 0.5.
    pub degraded_enter: f32,
    /// Score below which a degraded verdict may return to ok. Default 0.3.
    pub degraded_leave: f32,
    /// Score at or above which the verdict becomes critical. Default 0.85.
    pub critical_enter: f32,
    /// Score below which a critical verdict may step down. Default 0.6.
    pub critical_leave: f32,
    /// Minimum time a verdict is held before it may step down (escalation is immediate).
    /// Default 2 s.
    pub min_dwell_us: u64,
    /// The score must stay below the leave threshold this long before stepping down.
    /// Default 1 s.
    pub leave_hold_us: u64,

    /// Length of the sliding window for rates (loss, SERVFAIL, NXDOMAIN, TC shares), kept
    /// in 10 buckets. Default 5 s.
    pub rate_window_us: u64,
    /// How many recent observations the burst rules look at (1..=64). Default 8.
    pub burst_window: u8,
    /// A server not observed for this long no longer contributes (its state is kept
    /// until its slot is needed). Default 60 s.
    pub stale_after_us: u64,

    /// RTT baseline window, kept in 6 slices. Default 60 s.
    pub rtt_window_us: u64,
    /// Samples a server's baseline needs before spikes are judged against it. Default 50.
    pub rtt_warmup_samples: u32,
    /// How many robust standard deviations (`1.4826·MAD`) above the median count as a
    /// spike. Default 3.0.
    pub rtt_sigmas: f32,
    /// Absolute floor of the spike margin above the median: microsecond jitter on a quiet
    /// loopback never alarms. Default 5 ms.
    pub rtt_floor_us: u32,
    /// Any answer slower than this is a spike, warm or not. Default 1 s.
    pub rtt_ceiling_us: u32,
    /// Minimum spikes among the last `burst_window` answers for full severity. The
    /// actual quota is the larger of this and the count the baseline's own outlier rate
    /// reaches with probability at most `rtt_alpha`; severity ramps up over the two
    /// counts below the quota. Default 4.
    pub rtt_confirm: u8,
    /// Per-observation false-alarm budget of the spike count (binomial tail). Default
    /// 1e-9: about one false spike alarm in 10⁹ answers.
    pub rtt_alpha: f32,

    /// Consecutive timeouts for full severity (ramp from 1 = 0). Default 3.
    pub loss_consecutive: u8,
    /// Timeout rate over the rate window that is still fine. Default 0.02.
    pub loss_rate_ok: f32,
    /// Timeout rate over the rate window at full severity. Default 0.2.
    pub loss_rate_bad: f32,
    /// Observations a server needs in the rate window before its loss rate counts.
    /// Default 10.
    pub loss_min_samples: u32,

    /// NXDOMAIN share of responses at which the detector is at full severity (it ramps
    /// up over the 0.1 below). Default 0.85.
    pub nx_share: f32,
    /// Minimum responses for an NXDOMAIN share to count. Default 8.
    pub nx_min_samples: u32,

    /// SERVFAILs among the last `burst_window` responses of a server for full severity
    /// (ramp from 1 = 0). Default 3.
    pub servfail_burst: u8,
    /// SERVFAIL rate that is still fine. Default 0.02.
    pub servfail_rate_ok: f32,
    /// SERVFAIL rate at full severity. Default 0.2.
    pub servfail_rate_bad: f32,
    /// Minimum responses for a SERVFAIL rate to count. Default 10.
    pub servfail_min_samples: u32,
    /// Normalised source entropy (`H / log2(servers seen)`) below which a burst is
    /// attributed to one server. Default 0.5.
    pub servfail_concentrated_entropy: f32,

    /// TC rate that is still fine (large answers are truncated by design). The rate
    /// counts TC answers without a TCP answer (no retry, or a failed one) and *new* TC
    /// answers (see `tc_new_burst`); a TC answer that the TCP retry answered, from a pair
    /// for which TC is normal, is a working lookup and does not count. Default 0.3.
    pub tc_rate_ok: f32,
    /// TC rate at full severity. Default 0.8.
    pub tc_rate_bad: f32,
    /// Minimum observations for a TC rate to count. Default 10.
    pub tc_min_samples: u32,
    /// Failed TCP fallbacks among the last `burst_window` observations for full
    /// severity (ramp from 0). Default 2.
    pub tcp_fail_burst: u8,
    /// *New* truncation: TC answers among the last `burst_window` observations of a
    /// server (or of all servers) from a server/target pair that used to answer without
    /// TC, for full severity (ramp from 0). Catches a TC storm within two answers even
    /// when the TCP fallback works, while a name that is always truncated (a large
    /// headless service over UDP) never counts. 0 disables the rule. Default 2.
    pub tc_new_burst: u8,
    /// How many answers in a row without TC make a server/target pair "used to answer
    /// without TC". Default 8.
    pub tc_new_after: u8,
    /// How long a pair's TC run counts as new; after that, TC is its new normal (and
    /// `tc_new_after` clean answers re-arm it). Default 30 s.
    pub tc_new_hold_us: u64,

    /// Malformed or mismatched responses among the last `burst_window` observations for
    /// full severity (ramp from 1 = 0). Default 3.
    pub integrity_burst: u8,

    /// After the caller changes a target's expectation, mismatches are ignored this long
    /// (DNS caches and the EndpointSlice watch catch up). Default 30 s.
    pub drift_settle_us: u64,
    /// A mismatch must persist this long ... Default 50 ms.
    pub drift_grace_us: u64,
    /// ... and for this many consecutive answers before it counts. Default 3.
    pub drift_confirm: u8,

    /// Significance level of the round-robin tests (chi-square and stuck-first run).
    /// Default 1e-5.
    pub rr_alpha: f32,
    /// Minimum answers in the 64-answer window before the chi-square test runs (it also
    /// waits for 5 expected per position). Default 32.
    pub rr_min_samples: u32,
}

impl Default for ScoreConfig {
    fn default() -> Self {
        ScoreConfig {
            weights: Weights::default(),
            degraded_enter: 0.5,
            degraded_leave: 0.3,
            critical_enter: 0.85,
            critical_leave: 0.6,
            min_dwell_us: 2_000_000,
            leave_hold_us: 1_000_000,
            rate_window_us: 5_000_000,
            burst_window: 8,
            stale_after_us: 60_000_000,
            rtt_window_us: 60_000_000,
            rtt_warmup_samples: 50,
            rtt_sigmas: 3.0,
            rtt_floor_us: 5_000,
            rtt_ceiling_us: 1_000_000,
            rtt_confirm: 4,
            rtt_alpha: 1e-9,
            loss_consecutive: 3,
            loss_rate_ok: 0.02,
            loss_rate_bad: 0.2,
            loss_min_samples: 10,
            nx_share: 0.85,
            nx_min_samples: 8,
            servfail_burst: 3,
            servfail_rate_ok: 0.02,
            servfail_rate_bad: 0.2,
            servfail_min_samples: 10,
            servfail_concentrated_entropy: 0.5,
            tc_rate_ok: 0.3,
            tc_rate_bad: 0.8,
            tc_min_samples: 10,
            tcp_fail_burst: 2,
            tc_new_burst: 2,
            tc_new_after: 8,
            tc_new_hold_us: 30_000_000,
            integrity_burst: 3,
            drift_settle_us: 30_000_000,
            drift_grace_us: 50_000,
            drift_confirm: 3,
            rr_alpha: 1e-5,
            rr_min_samples: 32,
        }
    }
}

/// A rejected [`ScoreConfig`]: which field, what is wrong, how to fix it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The field's name as written in the struct (`weights.rtt`, `degraded_leave`...).
    pub field: &'static str,
    /// What is wrong.
    pub problem: &'static str,
    /// What to do instead.
    pub fix: &'static str,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid score config `{}`: {}; {}",
            self.field, self.problem, self.fix
        )
    }
}

impl core::error::Error for ConfigError {}

impl ScoreConfig {
    /// Checks every field; the first problem found is returned. NaN is rejected by the
    /// range checks, which run before the ordering checks.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let w = &self.weights;
        // Every check, in order (each a plain comparison, so one table of messages
        // serves them all and the code stays small in the wasm filter).
        let failed = [
            !(0.0..=1.0).contains(&w.rtt),
            !(0.0..=1.0).contains(&w.loss),
            !(0.0..=1.0).contains(&w.nxdomain),
            !(0.0..=1.0).contains(&w.servfail),
            !(0.0..=1.0).contains(&w.truncation),
            !(0.0..=1.0).contains(&w.drift),
            !(0.0..=1.0).contains(&w.round_robin),
            !(0.0..=1.0).contains(&w.integrity),
            !(self.degraded_enter > 0.0 && self.degraded_enter <= 1.0),
            !(self.critical_enter > 0.0 && self.critical_enter <= 1.0),
            !(0.0..=1.0).contains(&self.degraded_leave),
            !(0.0..=1.0).contains(&self.critical_leave),
            self.degraded_leave >= self.degraded_enter,
            self.critical_enter <= self.degraded_enter,
            self.critical_leave >= self.critical_enter,
            self.critical_leave < self.degraded_leave,
            self.rate_window_us == 0,
            self.rate_window_us < 10,
            self.burst_window == 0 || self.burst_window > 64,
            self.stale_after_us == 0,
            self.rtt_window_us == 0,
            self.rtt_window_us < 6,
            !(self.rtt_sigmas > 0.0 && self.rtt_sigmas <= 100.0),
            self.rtt_ceiling_us == 0,
            self.rtt_confirm == 0 || self.rtt_confirm > self.burst_window,
            !(self.rtt_alpha > 0.0 && self.rtt_alpha < 0.5),
            self.loss_consecutive == 0,
            !(0.0..=1.0).contains(&self.loss_rate_ok),
            !(self.loss_rate_bad > 0.0 && self.loss_rate_bad <= 1.0),
            self.loss_rate_ok >= self.loss_rate_bad,
            !(self.nx_share > 0.0 && self.nx_share <= 1.0),
            self.nx_min_samples == 0,
            self.servfail_burst == 0 || self.servfail_burst > self.burst_window,
            !(0.0..=1.0).contains(&self.servfail_rate_ok),
            !(self.servfail_rate_bad > 0.0 && self.servfail_rate_bad <= 1.0),
            self.servfail_rate_ok >= self.servfail_rate_bad,
            !(0.0..=1.0).contains(&self.servfail_concentrated_entropy),
            !(0.0..=1.0).contains(&self.tc_rate_ok),
            !(self.tc_rate_bad > 0.0 && self.tc_rate_bad <= 1.0),
            self.tc_rate_ok >= self.tc_rate_bad,
            self.tcp_fail_burst == 0 || self.tcp_fail_burst > self.burst_window,
            self.tc_new_burst > 0 && (self.tc_new_burst > self.burst_window),
            self.tc_new_after == 0,
            self.tc_new_hold_us == 0,
            self.integrity_burst == 0 || self.integrity_burst > self.burst_window,
            self.drift_confirm == 0,
            !(self.rr_alpha > 0.0 && self.rr_alpha < 0.5),
            self.rr_min_samples < 2 || self.rr_min_samples > 64,
        ];
        match failed.iter().position(|f| *f).and_then(|i| CHECKS.get(i)) {
            Some(&(field, problem, fix)) => Err(ConfigError {
                field,
                problem,
                fix,
            }),
            None => Ok(()),
        }
    }
}

/// What [`ScoreConfig::validate`] says for each of its checks, in order: field, problem,
/// fix.
const CHECKS: [(&str, &str, &str); 48] = [
    (
        "weights.rtt",
        "must be a number in [0, 1]",
        "use a value between 0 and 1, such as the default",
    ),
    (
        "weights.loss",
        "must be a number in [0, 1]",
        "use a value between 0 and 1, such as the default",
    ),
    (
        "weights.nxdomain",
        "must be a number in [0, 1]",
        "use a value between 0 and 1, such as the default",
    ),
    (
        "weights.servfail",
        "must be a number in [0, 1]",
        "use a value between 0 and 1, such as the default",
    ),
    (
        "weights.truncation",
        "must be a number in [0, 1]",
        "use a value between 0 and 1, such as the default",
    ),
    (
        "weights.drift",
        "must be a number in [0, 1]",
        "use a value between 0 and 1, such as the default",
    ),
    (
        "weights.round_robin",
        "must be a number in [0, 1]",
        "use a value between 0 and 1, such as the default",
    ),
    (
        "weights.integrity",
        "must be a number in [0, 1]",
        "use a value between 0 and 1, such as the default",
    ),
    (
        "degraded_enter",
        "must be a number in (0, 1]",
        "use a value above 0 and at most 1, such as the default",
    ),
    (
        "critical_enter",
        "must be a number in (0, 1]",
        "use a value above 0 and at most 1, such as the default",
    ),
    (
        "degraded_leave",
        "must be a number in [0, 1]",
        "use a value between 0 and 1, such as the default",
    ),
    (
        "critical_leave",
        "must be a number in [0, 1]",
        "use a value between 0 and 1, such as the default",
    ),
    (
        "degraded_leave",
        "must be below degraded_enter (hysteresis)",
        "set it lower than degraded_enter, e.g. 0.3 with degraded_enter 0.5",
    ),
    (
        "critical_enter",
        "must be above degraded_enter",
        "set it higher than degraded_enter, e.g. 0.85 with degraded_enter 0.5",
    ),
    (
        "critical_leave",
        "must be below critical_enter (hysteresis)",
        "set it lower than critical_enter, e.g. 0.6 with critical_enter 0.85",
    ),
    (
        "critical_leave",
        "must not be below degraded_leave",
        "set it between degraded_leave and critical_enter",
    ),
    (
        "rate_window_us",
        "must not be 0",
        "use a positive duration in microseconds, such as the default",
    ),
    (
        "rate_window_us",
        "is shorter than its 10 buckets",
        "use at least 10 µs (default 5 s)",
    ),
    (
        "burst_window",
        "must be between 1 and 64",
        "use a count such as 8",
    ),
    (
        "stale_after_us",
        "must not be 0",
        "use a positive duration in microseconds, such as the default",
    ),
    (
        "rtt_window_us",
        "must not be 0",
        "use a positive duration in microseconds, such as the default",
    ),
    (
        "rtt_window_us",
        "is shorter than its 6 slices",
        "use at least 6 µs (default 60 s)",
    ),
    (
        "rtt_sigmas",
        "must be in (0, 100]",
        "use a spread multiplier such as 3.0",
    ),
    (
        "rtt_ceiling_us",
        "must not be 0",
        "use an RTT that is always a failure, e.g. 1000000 (1 s)",
    ),
    (
        "rtt_confirm",
        "must be between 1 and burst_window",
        "use a count of at least 1 and at most burst_window (default 8)",
    ),
    (
        "rtt_alpha",
        "must be in (0, 0.5)",
        "use a small probability such as 1e-9",
    ),
    (
        "loss_consecutive",
        "must be at least 1",
        "use a count such as 3",
    ),
    (
        "loss_rate_ok",
        "must be a number in [0, 1]",
        "use a value between 0 and 1, such as the default",
    ),
    (
        "loss_rate_bad",
        "must be a number in (0, 1]",
        "use a value above 0 and at most 1, such as the default",
    ),
    (
        "loss_rate_bad",
        "must be above loss_rate_ok",
        "e.g. loss_rate_ok 0.02 and loss_rate_bad 0.2",
    ),
    (
        "nx_share",
        "must be a number in (0, 1]",
        "use a value above 0 and at most 1, such as the default",
    ),
    (
        "nx_min_samples",
        "must be at least 1",
        "use a count such as 8",
    ),
    (
        "servfail_burst",
        "must be between 1 and burst_window",
        "use a count of at least 1 and at most burst_window (default 8)",
    ),
    (
        "servfail_rate_ok",
        "must be a number in [0, 1]",
        "use a value between 0 and 1, such as the default",
    ),
    (
        "servfail_rate_bad",
        "must be a number in (0, 1]",
        "use a value above 0 and at most 1, such as the default",
    ),
    (
        "servfail_rate_bad",
        "must be above servfail_rate_ok",
        "e.g. servfail_rate_ok 0.02 and servfail_rate_bad 0.2",
    ),
    (
        "servfail_concentrated_entropy",
        "must be a number in [0, 1]",
        "use a value between 0 and 1, such as the default",
    ),
    (
        "tc_rate_ok",
        "must be a number in [0, 1]",
        "use a value between 0 and 1, such as the default",
    ),
    (
        "tc_rate_bad",
        "must be a number in (0, 1]",
        "use a value above 0 and at most 1, such as the default",
    ),
    (
        "tc_rate_bad",
        "must be above tc_rate_ok",
        "e.g. tc_rate_ok 0.3 and tc_rate_bad 0.8",
    ),
    (
        "tcp_fail_burst",
        "must be between 1 and burst_window",
        "use a count of at least 1 and at most burst_window (default 8)",
    ),
    (
        "tc_new_burst",
        "must be between 1 and burst_window",
        "use a count of at least 1 and at most burst_window (default 8)",
    ),
    (
        "tc_new_after",
        "must be at least 1",
        "use a count such as 8 (set tc_new_burst to 0 to disable the rule)",
    ),
    (
        "tc_new_hold_us",
        "must not be 0",
        "use a positive duration in microseconds, such as the default",
    ),
    (
        "integrity_burst",
        "must be between 1 and burst_window",
        "use a count of at least 1 and at most burst_window (default 8)",
    ),
    (
        "drift_confirm",
        "must be at least 1",
        "use a count such as 3",
    ),
    (
        "rr_alpha",
        "must be in (0, 0.5)",
        "use a small significance level such as 1e-5",
    ),
    (
        "rr_min_samples",
        "must be between 2 and 64 (the window)",
        "use a count such as 32",
    ),
];
