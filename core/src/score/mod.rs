//! Anomaly detectors and the fused score.
//!
//! One [`Observation`] per DNS exchange goes into a [`Scorer`]; the scorer keeps a few
//! kilobytes of fixed state per server and per target, runs eight detectors, fuses their
//! severities into one score in `[0, 1]` and moves a [`Verdict`] (ok / degraded /
//! critical) with hysteresis. Every verdict can be explained: [`Scorer::reasons`] says
//! which detector, which server or target, and why, e.g. *"SERVFAIL/REFUSED burst concentrated
//! on one server (server 2, ...)"*.
//!
//! Nothing here allocates, reads a clock or panics: the caller passes the time (u64
//! microseconds, ideally monotonic; time that goes backwards is treated as "now") and
//! small integer keys for servers and targets. `size_of::<Scorer<S, T>>()` is fixed by
//! the const parameters `S` (servers tracked, default 16) and `T` (targets tracked,
//! default 64).
//!
//! ```
//! use dnswarden_core::score::{Observation, Outcome, ScoreConfig, Scorer, Verdict};
//! use dnswarden_core::wire::Rcode;
//!
//! let mut scorer: Scorer = Scorer::new(ScoreConfig::default())?;
//! let mut t = 0;
//! for i in 0..300u32 {
//!     t += 10_000; // one observation every 10 ms
//!     let rcode = if i < 200 { Rcode::NOERROR } else { Rcode::SERVFAIL };
//!     let server = i % 3;
//!     // Server 2 starts failing after 2 s.
//!     let rcode = if server == 2 { rcode } else { Rcode::NOERROR };
//!     scorer.observe(&Observation::new(server, 7, t, Outcome::Response(rcode)).rtt(900));
//! }
//! assert_ne!(scorer.verdict(), Verdict::Ok);
//! let top = scorer.reasons().iter().next().copied().ok_or("no reason")?;
//! assert_eq!(top.server, Some(2));
//! assert_eq!(top.cause.description(), "SERVFAIL/REFUSED burst concentrated on one server");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Detectors
//!
//! Six detectors run per server *and* over all servers together (the "global" view), so a
//! fault on every server is seen within a few observations overall while a fault on one
//! server is attributed to it. Two run per target. Each keeps, per view, bit histories of
//! the last 64 observations (newest first; a "burst" counts set bits among the last
//! [`ScoreConfig::burst_window`]) and a 5 s window of event counts in 10 buckets (a
//! "rate"). Each detector's severity is in `[0, 1]`; the detector's overall severity is
//! the maximum over views.
//!
//! * **RTT spike** ([`Detector::Rtt`]). Each server keeps a 60 s baseline (6 slices of 10
//!   s, each a histogram of 96 quarter-octave buckets, about 19 % wide, from 1 µs to 33
//!   s). Every 256 samples (and when a slice expires) it recomputes the median `m` and
//!   the median absolute deviation `MAD` (walking outwards from the median bucket), and
//!   the threshold `m + max(3 · 1.4826 · MAD, 5 ms)`: `1.4826·MAD` estimates σ robustly,
//!   so this is a "3 sigma" rule that outliers cannot inflate, and the 5 ms floor keeps
//!   microsecond jitter on a quiet loopback from ever counting. Until a server has 50
//!   samples (warm-up) only the absolute ceiling (1 s) counts. A sample above the
//!   threshold is a *spike*. How many spikes among the last 8 answers are alarming
//!   depends on how often the baseline itself exceeds its threshold: with `p̂` the share
//!   of baseline samples above it (Laplace prior `(above + 1)/(n + 2)`), the *quota* is
//!   the smallest `k ≥ 4` with binomial tail `P(Bin(8, p̂) ≥ k) ≤ 1e-9`. A pristine
//!   loopback needs 4 spikes, a cluster with 1 % natural 10-20 ms outliers needs 6.
//!   Severity ramps from `quota − 2` (0) to `quota` (1); the global view uses the
//!   largest quota of any server. One odd answer never alarms; a shifted distribution
//!   does within `quota` answers. A spike that raises the server's detector (or keeps
//!   it raised: with it, more than `quota − 2` spikes among the last 8) is part of a
//!   fault, not of the baseline: it is kept out of the histogram (and so out of `p̂` and
//!   the quota), so a fault that lasts, or repeats within the 60 s window, is detected
//!   again as fast as the first time instead of being learned as normal. Isolated
//!   outliers still enter the baseline (they are what `p̂` measures). A lasting shift
//!   therefore alarms until the old baseline has expired (at most 60 s); the server then
//!   warms up again on the new level.
//! * **Timeouts / loss** ([`Detector::Loss`]). Consecutive timeouts ramp from 1 (0) to 3
//!   (1); the timeout rate over the 5 s window (with at least 10 observations) ramps from
//!   2 % (0) to 20 % (1). Severity is the larger.
//! * **NXDOMAIN concentration** ([`Detector::Nxdomain`]). The NXDOMAIN share of responses,
//!   over the last 8, 16, 32 and 64 responses (each only once the 5 s window holds at
//!   least that many, and at least 8) and over the whole 5 s window. The largest share
//!   `s` gives severity `ramp(s, 0.75, 0.85)`: full at 85 %. The short horizons make a
//!   sudden flood visible within 8 responses, the window catches a slow one.
//! * **SERVFAIL burst and source entropy** ([`Detector::Servfail`]). REFUSED counts as
//!   SERVFAIL here (both mean the server will not answer). Burst: SERVFAILs among
//!   the last 8 responses ramp from 1 (0) to 3 (1); rate over the 5 s window ramps from 2
//!   % to 20 %. The reason computes the Shannon entropy `H = −Σ pᵢ log2 pᵢ` of which
//!   servers produced the SERVFAILs in the window, normalised by `log2(servers seen)`:
//!   below 0.5 the burst is *concentrated* and the reason names the server
//!   ([`Cause::ServfailConcentrated`]); above, it is *spread* ([`Cause::ServfailSpread`]).
//! * **Truncation** ([`Detector::Truncation`]). A failed TCP fallback is a failed lookup:
//!   failures among the last 8 observations ramp from 0 to 2 (1). A TC *rate* over the
//!   window ramps from 30 % (0) to 80 % (1); it counts TC answers that no TCP retry
//!   answered (none attempted, or a failed one) and new ones (below). A TC answer that
//!   the TCP retry answered is a working lookup, normal for large answers: a name that
//!   is always truncated is never a high TC rate, even for a scorer that sees only that
//!   name. What is not normal is *new* truncation
//!   ([`Cause::TruncationNew`]): the scorer remembers, per server/target pair (128
//!   direct-mapped entries keyed by the pair; a collision replaces an entry, which can
//!   only delay a detection, never cause one), how many answers in a row came without
//!   TC. A TC answer from a pair with at least [`ScoreConfig::tc_new_after`] (8) such
//!   answers counts as new, for [`ScoreConfig::tc_new_hold_us`] (30 s) after the pair's
//!   TC run started; then TC is the pair's new normal and 8 clean answers re-arm it. New
//!   TC answers among the last 8 observations of a view ramp from 0 to
//!   [`ScoreConfig::tc_new_burst`] (2) → severity 1: a TC storm is seen at the second
//!   truncated answer (50 ms at 20 observations/s per name), while a name that is
//!   always truncated (a large headless service over UDP) never counts.
//! * **Integrity** ([`Detector::Integrity`]). Malformed responses and id/question
//!   mismatches (late answers, broken middleboxes, spoofing): among the last 8
//!   observations, from 1 (0) to 3 (1).
//! * **Answer-set drift** ([`Detector::Drift`]), per target, only where the caller set an
//!   expectation ([`Scorer::expect_members`], [`Scorer::expect_fingerprint`],
//!   [`Scorer::expect_final_name`]). An answer (NOERROR or NXDOMAIN) whose order-independent
//!   set fingerprint, count or CNAME target differs is a mismatch. Severity 1 once
//!   mismatches persist for 3 consecutive answers and 50 ms (the grace) and the
//!   expectation is older than 30 s (the settle time for caches and watches). With the
//!   expected members known and the observation carrying its members, the reason says
//!   how many are missing and extra.
//! * **Round-robin skew** ([`Detector::RoundRobin`]), per target, for NOERROR answers with
//!   2 to 16 records. The first record's hash is counted over a sliding window of the last
//!   64 such answers (statistics restart when the answer set changes). **Bounds**: answers
//!   with more than 16 records are not tested for skew at all (neither test); the
//!   chi-square test has its textbook 5 expected answers per position only up to 12
//!   records (`5k ≤ 64`); for 13 to 16 records it runs on the full window of 64 (4 to 5
//!   expected per position, where the Wilson–Hilferty critical value is still on the
//!   strict side), and the stuck test is exact for every size up to 16. Two tests at
//!   significance α = 1e-5: Pearson's `χ² = (k/n)·Σ cᵢ² − n` against uniform over the `k`
//!   positions, compared with the Wilson–Hilferty critical value for `k − 1` degrees of
//!   freedom (once `n ≥ max(32, 5k)`; severity ramps from 0.75× to 1× the critical
//!   value); and a *stuck* test: the same first record `r` times in a row, with `r` the
//!   smallest run whose probability under uniform rotation, `k^−(r−1)`, is below α (10 for
//!   4 records). Severity is the larger.
//!
//! # Fusion and verdict
//!
//! The score is a weighted noisy-OR, `1 − Π (1 − wᵢ·sᵢ)`: in `[0, 1]`, equal to `wᵢ` when
//! one detector is at full severity, and growing as independent detectors agree. The
//! verdict escalates as soon as the score reaches `degraded_enter` (0.5) or
//! `critical_enter` (0.85) and steps down only after the score stayed below
//! `degraded_leave` (0.3) / `critical_leave` (0.6) for `leave_hold_us` (1 s) *and* the
//! verdict was held for `min_dwell_us` (2 s).
//!
//! # Cost
//!
//! `observe` is O(1): a few table lookups (a 256-bit filter answers "target not
//! tracked" without a scan), one histogram increment, the new-truncation pair entry, and
//! per view (the server's and the global one) a few counter increments. The work is
//! shaped for the common case, and none of the shortcuts changes a severity (a unit test
//! compares the stored severities with a full recomputation after every observation of
//! a long random stream):
//!
//! * **Epochs and the quick path.** Time is cut into *epochs*, the stretches between two
//!   boundaries of the rate-window buckets or the RTT slices (both fixed grids of
//!   absolute time, so no window slides within an epoch). A view (a server's or the
//!   global one) that passed the full path in this epoch with its minimum-sample gates
//!   open (or no gate that can matter: nothing but NXDOMAIN answers in its window and
//!   every NXDOMAIN share below its threshold) is marked, and a NOERROR or NXDOMAIN
//!   answer whose RTT is within the server's threshold then takes the quick path: one
//!   RTT histogram increment, a *pending* count per view (added to the window and to
//!   the histories' sequence numbers when something else needs them: a clean answer
//!   pushes a 0 into every history, which costs nothing), and no detector at all when
//!   the view's severities are 0 (a clean answer can only lower them). A raised view
//!   recomputes only the detectors above 0; an NXDOMAIN answer can raise only the
//!   NXDOMAIN detector, which keeps a *slack*: how many more NXDOMAIN answers surely
//!   keep every NXDOMAIN share below its threshold, so it is looked at once every
//!   few NXDOMAIN answers.
//! * **Lean path.** The most common observation of all, a NOERROR answer within the
//!   RTT threshold to a calm server and into a calm global view, both marked in this
//!   epoch, with the baseline not due and a single-answer target without a slot, costs
//!   what the quick path costs it and nothing around it: the server is looked up at its
//!   home slot (`key mod S`, which a new server takes when it is free), a `busy` flag
//!   says whether the verdict step has work, and [`Scorer::record`] returns only a
//!   verdict change (what [`Scorer::observe`] calls before it builds the
//!   [`Assessment`]). It is left out of `wasm32` builds, where code size counts more.
//! * **Slides.** At a new epoch a calm view whose window holds no timeout, SERVFAIL or
//!   TC slides without a full pass: only its NXDOMAIN share can rise as old buckets
//!   leave, and only the window's share at that (the spans of the last 8–64 responses
//!   do not move), so the NXDOMAIN detector is looked at only when that share reaches
//!   `lo − 0.01`; otherwise the slack is capped by what the window now allows.
//! * **Full path.** Anything else (a fault, a spike, a new or evicted server, a slide
//!   with other events in the window) runs every detector of both views, or, when the
//!   view is steady (no slide, no new quota), only those above 0 and those the
//!   observation can raise (a spike: the RTT one). A spike within the newest bucket is
//!   counted like a clean answer (pending), plus its bit in the spike history.
//! * **Targets.** The round-robin test decides a quiet window (χ² at most 0.74 of the
//!   critical value) by one multiplication, without the divisions of the statistic, and
//!   a target whose answers match its expectation with no drift to clear skips the
//!   drift refresh.
//! * **RTT baseline.** A sample is one increment in the newest slice; every 256 samples
//!   (and when a slice expires) the slices are summed and the median, MAD, threshold
//!   and quota recomputed (O(6 · 96)), within the quick path when the quota stays.
//!
//! `evaluate` is O(S + T), `reasons` O(S). Measured figures are in the bench
//! (`cargo bench -p dnswarden-bench --bench score`).
//!
//! # Fixed memory and eviction
//!
//! Servers live in `S` slots: a new server takes a free slot or evicts the least
//! recently observed one (its history is lost; [`Scorer::evictions`] counts it). Targets
//! live in `T` slots; a target needs a slot only for expectations or multi-record
//! answers. A target with an expectation is pinned (only [`Scorer::forget_target`] frees
//! it); others are evicted least recently observed first. When every target slot is
//! pinned, the per-target detectors ignore other targets (counted too).

mod config;
mod math;
mod observation;
mod reason;
mod rtt;
mod scorer;
mod target;
mod window;

pub use config::{ConfigError, ScoreConfig, Weights};
pub use observation::{
    AnswerSummary, Fallback, Observation, Outcome, member_hash, member_hash_ip, member_hash_name,
    member_hash_srv, set_fingerprint,
};
pub use reason::{Cause, Evidence, Reason, Reasons};
pub use scorer::{Assessment, CapacityError, Scorer, ServerHealth, Verdict, VerdictChange};

/// The detectors, in a fixed order (see the [module docs](self) for the math).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Detector {
    /// RTT far above a server's own baseline.
    Rtt,
    /// Timeouts: consecutive and rate.
    Loss,
    /// NXDOMAIN share of responses.
    Nxdomain,
    /// SERVFAIL burst and rate, with source entropy.
    Servfail,
    /// TC rate and failed TCP fallbacks.
    Truncation,
    /// Malformed responses and id/question mismatches.
    Integrity,
    /// Answer set differs from the expected one.
    Drift,
    /// First-position answers far from uniform.
    RoundRobin,
}

impl Detector {
    /// Number of detectors.
    pub const COUNT: usize = 8;
    /// All detectors, in index order.
    pub const ALL: [Detector; Detector::COUNT] = [
        Detector::Rtt,
        Detector::Loss,
        Detector::Nxdomain,
        Detector::Servfail,
        Detector::Truncation,
        Detector::Integrity,
        Detector::Drift,
        Detector::RoundRobin,
    ];

    /// A bounded, stable label for metrics and logs.
    pub const fn name(self) -> &'static str {
        match self {
            Detector::Rtt => "rtt",
            Detector::Loss => "loss",
            Detector::Nxdomain => "nxdomain",
            Detector::Servfail => "servfail",
            Detector::Truncation => "truncation",
            Detector::Integrity => "integrity",
            Detector::Drift => "drift",
            Detector::RoundRobin => "round_robin",
        }
    }

    /// Index in [`Detector::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl core::fmt::Display for Detector {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}
