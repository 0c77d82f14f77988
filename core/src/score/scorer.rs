//! The [`Scorer`]: owns every detector, fuses, and moves the verdict.

use core::fmt;

use super::math::{clamp01, entropy_bits, log2, ramp};
use super::observation::{Fallback, Observation, Outcome};
use super::reason::{Cause, Evidence, Reason, Reasons};
use super::rtt::{RTT_SLICES, RttParams, RttSketch};
use super::target::{RrTables, SetMembers, Target};
use super::window::{BUCKETS, Ev, Window};
use super::{ConfigError, Detector, ScoreConfig};
use crate::wire::Rcode;

/// Detectors that run per server (and globally): the first six of [`Detector::ALL`].
const SERVER_DETECTORS: usize = 6;
/// Per-target detectors: drift, round robin.
const TARGET_DETECTORS: usize = 2;

/// The overall health verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Verdict {
    /// Nothing worth attention.
    #[default]
    Ok,
    /// Something is off; clients may notice.
    Degraded,
    /// Lookups are failing or wrong.
    Critical,
}

impl Verdict {
    /// A bounded label (`ok`, `degraded`, `critical`).
    pub const fn name(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Degraded => "degraded",
            Verdict::Critical => "critical",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A verdict transition.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VerdictChange {
    /// Before.
    pub from: Verdict,
    /// After.
    pub to: Verdict,
    /// When (the scorer's clock: the latest time it has seen).
    pub at_us: u64,
    /// The score that caused it.
    pub score: f32,
}

/// The state after an observation or an evaluation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Assessment {
    /// The fused score in `[0, 1]`.
    pub score: f32,
    /// The verdict now.
    pub verdict: Verdict,
    /// Set when this call changed the verdict; then log [`Scorer::reasons`].
    pub change: Option<VerdictChange>,
}

/// An expectation could not be recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapacityError {
    /// Every target slot holds an expectation; forget one or use a larger `T`.
    TargetsFull,
    /// More members than the 64 an expectation holds; use a fingerprint instead.
    TooManyMembers,
}

impl fmt::Display for CapacityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CapacityError::TargetsFull => {
                "every target slot holds an expectation: forget a target or build the scorer with a larger T"
            }
            CapacityError::TooManyMembers => {
                "more than 64 expected members: use expect_fingerprint for larger sets"
            }
        })
    }
}

impl core::error::Error for CapacityError {}

/// One server's own view (for healing decisions: "is this pod sick?").
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ServerHealth {
    /// The server key.
    pub server: u32,
    /// When it was last observed.
    pub last_seen_us: u64,
    /// Noisy-OR of the weighted per-server detectors only, in `[0, 1]`.
    pub score: f32,
    /// Severities by [`Detector::index`] (the per-target ones are 0 here).
    pub severities: [f32; Detector::COUNT],
    /// Whether the server is stale (not observed for `stale_after_us`).
    pub stale: bool,
}

impl ServerHealth {
    /// The severity of one detector for this server.
    pub fn severity(&self, d: Detector) -> f32 {
        self.severities.get(d.index()).copied().unwrap_or(0.0)
    }
}

/// One detector's output for one view.
#[derive(Clone, Copy, Debug)]
struct Component {
    sev: f32,
    cause: Cause,
    evidence: Evidence,
}

/// Event histories and rate window of one view (a server, or all servers).
#[derive(Clone, Copy, Debug)]
struct Counters {
    win: Window,
    /// Clean answers (NOERROR, no spike) not yet added to the newest bucket's total and
    /// response counts nor to the three sequence numbers: [`Counters::record`] only
    /// counts them, [`Counters::flush`] adds them before anything else touches the
    /// window. A clean answer pushes a 0 into every history and ends a run of timeouts,
    /// so readers add `pending` to the sequence numbers and treat `pending > 0` as "no
    /// timeouts in a row". A u64 never wraps in the life of a process, and the window's
    /// u32 counts wrap anyway: adding `pending` truncated to u32 is the same as adding
    /// its answers one by one, so no bound is checked.
    pending: u64,
    /// Items pushed so far into the per-observation, per-response and
    /// per-answered-exchange histories.
    seq_obs: u64,
    seq_resp: u64,
    seq_ans: u64,
    /// Bit histories (see [`Hist`]). A burst is the number of set bits among the last
    /// `burst_window`, counted when a severity is computed. `nx`, `sf`: per response;
    /// `rtt`: per answered exchange (1 = spike); `tcpf`, `integ`, `tcnew` (a TC answer
    /// from a pair that used to answer without TC): per observation.
    nx: Hist,
    sf: Hist,
    rtt: Hist,
    tcpf: Hist,
    integ: Hist,
    tcnew: Hist,
    consec_timeouts: u32,
    /// NXDOMAIN answers the quick path may still add without a look at the NXDOMAIN
    /// detector: each raises every share by at most one answer's worth, and clean
    /// answers only lower them (see [`Counters::nx_eval`]); 0 after anything else.
    nx_slack: u32,
    /// At most how many more NXDOMAIN answers than `nx_slack` the spans of 16–64
    /// allow (as of the last look; both counts go down together, and slides, which
    /// leave the spans alone, only lower the slack): once the slack is used up, the
    /// lean path renews it from the span of 8 and the window ([`Counters::nx_renew`]).
    nx_extra: u32,
    /// Every NXDOMAIN share (of every span and of the window, gates open or not) was
    /// below its threshold at the last look, and only clean answers or answers within
    /// the slack came since: a gate that opens cannot raise the NXDOMAIN detector.
    nx_clear: bool,
}

/// Set bits among the newest 8, 16, 32 and 64 of `bits` (the [`NX_SPANS`]), from one
/// population count: per-byte counts, then their prefix sums by one multiplication
/// (byte `k` of the product is the count of bytes `0..=k`).
#[inline]
fn prefix_counts(bits: u64) -> [u32; 4] {
    let mut x = bits.wrapping_sub((bits >> 1) & 0x5555_5555_5555_5555);
    x = (x & 0x3333_3333_3333_3333) + ((x >> 2) & 0x3333_3333_3333_3333);
    x = x.wrapping_add(x >> 4) & 0x0F0F_0F0F_0F0F_0F0F;
    let p = x.wrapping_mul(0x0101_0101_0101_0101);
    [
        (p & 0xFF) as u32,
        ((p >> 8) & 0xFF) as u32,
        ((p >> 24) & 0xFF) as u32,
        (p >> 56) as u32,
    ]
}

/// The NXDOMAIN horizons (last 8, 16, 32 and 64 responses).
const NX_SPANS: [u32; 4] = [8, 16, 32, 64];

/// A history of the last 64 items of a sequence (newest in bit 0) that costs nothing for
/// a 0: `bits` is the history as it was when item `at` was about to be pushed, so the
/// history after `seq` items is `bits << (seq - at)`, and only a 1 writes.
#[derive(Clone, Copy, Debug)]
struct Hist {
    bits: u64,
    at: u64,
}

impl Hist {
    const EMPTY: Hist = Hist { bits: 0, at: 0 };

    /// The history after `seq` items.
    #[inline]
    fn get(&self, seq: u64) -> u64 {
        // Sequences are u64: they do not wrap in the life of a process.
        let d = seq.wrapping_sub(self.at);
        if d >= 64 { 0 } else { self.bits << d }
    }

    /// Item number `seq` (0-based) is a 1.
    #[inline]
    fn one(&mut self, seq: u64) {
        self.bits = (self.get(seq) << 1) | 1;
        self.at = seq.wrapping_add(1);
    }
}

/// What one observation does to a view's counters, worked out once and applied to the
/// server's view and the global one.
#[derive(Clone, Copy, Debug)]
struct Step {
    /// One bit per [`Ev`] to count in the rate window.
    events: u16,
    /// History bits and flags (the associated constants).
    bits: u16,
}

impl Step {
    /// A response (direct or after a TCP fallback): push the NXDOMAIN/SERVFAIL bits.
    const RESPONSE: u16 = 1;
    const NX: u16 = 2;
    const SF: u16 = 4;
    /// An answered exchange whose RTT was judged: push the spike bit.
    const ANSWERED: u16 = 8;
    const SPIKE: u16 = 16;
    const TCPF: u16 = 32;
    const INTEG: u16 = 64;
    const TCNEW: u16 = 128;
    /// A timeout (one more in a row).
    const TIMEOUT: u16 = 256;
    /// Ends a run of timeouts (an answer).
    const CLEAR_TIMEOUTS: u16 = 512;

    /// A clean answer: NOERROR, not truncated, no spike (its RTT judged).
    const CLEAN: Step = Step {
        events: (1 << Ev::Total as u16) | (1 << Ev::Responses as u16),
        bits: Step::RESPONSE | Step::CLEAR_TIMEOUTS | Step::ANSWERED,
    };

    #[inline(never)]
    fn of(outcome: &Outcome) -> Step {
        let ev = |e: Ev| 1u16 << (e as u16);
        let total = ev(Ev::Total);
        match *outcome {
            Outcome::Response(rc) | Outcome::Truncated(Fallback::Answered(rc)) => {
                let mut events = total | ev(Ev::Responses);
                let mut bits = Step::RESPONSE | Step::CLEAR_TIMEOUTS;
                if rc == Rcode::NXDOMAIN {
                    events |= ev(Ev::Nxdomain);
                    bits |= Step::NX;
                }
                // REFUSED is a server failure too (a broken ACL or zone config).
                if rc == Rcode::SERVFAIL || rc == Rcode::REFUSED {
                    events |= ev(Ev::Servfail);
                    bits |= Step::SF;
                }
                // A TC answer that the TCP retry answered is a working lookup: it counts
                // in the TC rate only when it is new for its pair (added by `observe`),
                // so a name that is always truncated is never a high TC rate.
                Step { events, bits }
            }
            Outcome::Truncated(Fallback::NotAttempted) => Step {
                events: total | ev(Ev::Truncated),
                bits: Step::CLEAR_TIMEOUTS,
            },
            Outcome::Truncated(Fallback::Failed) => Step {
                events: total | ev(Ev::Truncated) | ev(Ev::TcpFailed),
                bits: Step::TCPF,
            },
            Outcome::Timeout => Step {
                events: total | ev(Ev::Timeout),
                bits: Step::TIMEOUT,
            },
            Outcome::Malformed => Step {
                events: total | ev(Ev::Malformed),
                bits: Step::INTEG,
            },
            Outcome::Mismatch(_) => Step {
                events: total | ev(Ev::Mismatch),
                bits: Step::INTEG,
            },
        }
    }
}

impl Step {
    /// The detectors this step can raise in a view with every minimum-sample gate open
    /// and nothing else moving (no slide, no new spike quota; see [`Counters::after`]),
    /// by [`Detector::index`]. Every detector reads its own events only: a history
    /// that is pushed a 0 and a rate whose denominator grows without its numerator can
    /// only fall (the gates are open, so no share starts to count). So an NXDOMAIN
    /// response can raise only the NXDOMAIN detector, a SERVFAIL or REFUSED one only
    /// the SERVFAIL detector, a timeout only loss, a TC answer, a failed fallback or a
    /// new truncation only truncation, a malformed or mismatched response only
    /// integrity, a spike only the RTT detector; a clean answer none.
    #[inline]
    fn rises(self) -> u8 {
        let bit = |on: bool, d: Detector| if on { 1u8 << d.index() } else { 0 };
        let b = self.bits;
        bit(b & Step::SPIKE != 0, Detector::Rtt)
            | bit(b & Step::TIMEOUT != 0, Detector::Loss)
            | bit(b & Step::NX != 0, Detector::Nxdomain)
            | bit(b & Step::SF != 0, Detector::Servfail)
            | bit(
                b & (Step::TCPF | Step::TCNEW) != 0
                    || self.events & (1 << Ev::Truncated as u16) != 0,
                Detector::Truncation,
            )
            | bit(b & Step::INTEG != 0, Detector::Integrity)
    }
}

/// Set bits of `bits` under `mask` (no population count for the common empty case).
#[inline]
fn burst(bits: u64, mask: u64) -> u32 {
    let b = bits & mask;
    if b == 0 { 0 } else { b.count_ones() }
}

/// The newest `burst_window` bits.
#[inline]
fn burst_mask(cfg: &ScoreConfig) -> u64 {
    u64::MAX >> (64 - u32::from(cfg.burst_window.clamp(1, 64)))
}

impl Counters {
    const EMPTY: Counters = Counters {
        win: Window::EMPTY,
        pending: 0,
        seq_obs: 0,
        seq_resp: 0,
        seq_ans: 0,
        nx: Hist::EMPTY,
        sf: Hist::EMPTY,
        rtt: Hist::EMPTY,
        tcpf: Hist::EMPTY,
        integ: Hist::EMPTY,
        tcnew: Hist::EMPTY,
        consec_timeouts: 0,
        nx_slack: 0,
        nx_extra: 0,
        nx_clear: false,
    };

    /// Adds the pending clean answers to the newest bucket and the sequence numbers.
    #[inline]
    fn flush(&mut self) {
        let n = self.pending;
        if n != 0 {
            self.pending = 0;
            self.seq_obs = self.seq_obs.wrapping_add(n);
            self.seq_resp = self.seq_resp.wrapping_add(n);
            self.seq_ans = self.seq_ans.wrapping_add(n);
            self.consec_timeouts = 0;
            // Truncation: the window's counts wrap (see `pending`).
            let n = n as u32;
            self.win.add_n(Ev::Total, n);
            self.win.add_n(Ev::Responses, n);
        }
    }

    /// A flushed copy (for `&self` readers such as [`Scorer::reasons`]).
    fn settled(&self) -> Counters {
        let mut c = *self;
        c.flush();
        c
    }

    /// Responses in the window, pending ones included.
    #[inline]
    fn responses(&self) -> u32 {
        self.win
            .sum(Ev::Responses)
            .wrapping_add(self.pending as u32)
    }

    /// `seq` plus the pending clean answers (each one item of every history).
    #[inline]
    fn at(&self, seq: u64) -> u64 {
        seq.wrapping_add(self.pending)
    }
    fn nx_bits(&self) -> u64 {
        self.nx.get(self.at(self.seq_resp))
    }
    fn sf_bits(&self) -> u64 {
        self.sf.get(self.at(self.seq_resp))
    }
    #[inline]
    fn rtt_bits(&self) -> u64 {
        self.rtt.get(self.at(self.seq_ans))
    }
    fn tcpf_bits(&self) -> u64 {
        self.tcpf.get(self.at(self.seq_obs))
    }
    fn integ_bits(&self) -> u64 {
        self.integ.get(self.at(self.seq_obs))
    }
    fn tcnew_bits(&self) -> u64 {
        self.tcnew.get(self.at(self.seq_obs))
    }

    /// Whether every minimum-sample gate was already open before the last observation,
    /// so that one more clean observation cannot open one.
    #[inline]
    fn gates_open(&self, d: &Derived) -> bool {
        self.win.sum(Ev::Total).wrapping_add(self.pending as u32) > d.gate_total
            && self.responses() > d.gate_responses
    }

    /// Counts one observation (classified once by [`Step::of`]); returns whether the
    /// rate window dropped old buckets.
    #[inline]
    fn record(&mut self, step: Step, now: u64, d: &Derived) -> bool {
        if step.events == Step::CLEAN.events
            && step.bits & !Step::SPIKE == Step::CLEAN.bits
            && now < self.win.next_us()
        {
            // A clean answer, or one whose RTT is a spike: that one also pushes a 1
            // into the spike history (at its item number, `pending` included).
            if step.bits & Step::SPIKE != 0 {
                let item = self.at(self.seq_ans);
                self.rtt.one(item);
            }
            self.pending += 1;
            return false;
        }
        self.record_slow(step, now, d)
    }

    /// [`Counters::record`] for everything but a clean answer within the newest bucket.
    #[inline(never)]
    fn record_slow(&mut self, step: Step, now: u64, d: &Derived) -> bool {
        self.flush();
        let (o, r, a) = (self.seq_obs, self.seq_resp, self.seq_ans);
        self.seq_obs = o.wrapping_add(1);
        self.seq_resp = r.wrapping_add(u64::from(step.bits & Step::RESPONSE != 0));
        self.seq_ans = a.wrapping_add(u64::from(step.bits & Step::ANSWERED != 0));
        if step.bits & Step::CLEAR_TIMEOUTS != 0 {
            self.consec_timeouts = 0;
        }
        let rotated = self.win.advance(now, d.bucket_us);
        // The NXDOMAIN slack and clearance hold through anything that adds no NXDOMAIN
        // and drops no bucket: a response pushes a 0 into the spans and adds to the
        // window's responses (every share falls), anything else leaves them alone.
        // Dropped buckets only close span gates and can raise the window's share: the
        // slack is capped by what the window allows after this observation (as in
        // `quick_slide`), or ends when its share is at `lo − 0.01` or more.
        let nx = step.bits & Step::NX != 0;
        if nx || !LEAN {
            self.nx_reset();
        }
        let mut events = step.events;
        while events != 0 {
            self.win.add_index(events.trailing_zeros() as usize);
            events &= events - 1;
        }
        let b = step.bits;
        if b & Step::NX != 0 {
            self.nx.one(r);
        }
        if b & Step::SF != 0 {
            self.sf.one(r);
        }
        if b & Step::SPIKE != 0 {
            self.rtt.one(a);
        }
        if b & Step::TCPF != 0 {
            self.tcpf.one(o);
        }
        if b & Step::INTEG != 0 {
            self.integ.one(o);
        }
        if b & Step::TCNEW != 0 {
            self.tcnew.one(o);
        }
        if b & Step::TIMEOUT != 0 {
            self.consec_timeouts = self.consec_timeouts.saturating_add(1);
        }
        if LEAN && rotated && !nx {
            self.nx_cap(d);
        }
        rotated
    }

    /// After a slide of the window (the spans unchanged): caps the NXDOMAIN slack by
    /// what the window's share now allows (as in [`Counters::nx_eval`]); no slack and
    /// no clearance when that share is at `lo − 0.01` or more. Returns whether the
    /// share is below `lo − 0.01`.
    #[inline]
    fn nx_cap(&mut self, d: &Derived) -> bool {
        let (x, r) = (self.win.sum(Ev::Nxdomain) as f32, self.responses() as f32);
        let Some(slack) = d.window_slack(x, r) else {
            self.nx_reset();
            return false;
        };
        // `nx_extra` is left as it is: it now understates what the spans allow (they
        // are unchanged), and the renewal caps it by the window again.
        self.nx_slack = self.nx_slack.min(slack);
        true
    }

    /// The view's severities after [`Counters::record`], or `None` when they cannot have
    /// changed: a clean answer into a calm view (no spike, no slide, no new quota, every
    /// severity 0, every minimum-sample gate open) can only keep them at 0.
    ///
    /// More generally, with `steady` (no slide, no new quota) and every gate open, an
    /// observation can raise only the detectors its step counts for (see
    /// [`Step::rises`]: none for a clean answer): only the detectors above 0 in `prev`
    /// and those in `rises` are recomputed.
    #[inline(never)]
    fn after(
        &mut self,
        cfg: &ScoreConfig,
        d: &Derived,
        quota: u8,
        prev: &[f32; SERVER_DETECTORS],
        steady: bool,
        rises: u8,
    ) -> Option<[f32; SERVER_DETECTORS]> {
        let mut only = ALL_DETECTORS;
        if steady && self.gates_open(d) {
            only = raised_mask(prev) | rises;
            if only == 0 {
                return None;
            }
            // One detector to recompute (mostly a fault into a view where only its own
            // detector is raised, or none): that detector's function alone.
            if LEAN && only.is_power_of_two() {
                self.flush();
                let i = only.trailing_zeros();
                let mut out = [0.0; SERVER_DETECTORS];
                if let Some(v) = out.get_mut(i as usize) {
                    *v = self.severity_one(cfg, quota, d.burst_mask, i);
                }
                return Some(out);
            }
        }
        self.recompute(cfg, quota, only)
    }

    /// [`Counters::after`] beyond the calm clean case: the detectors in `only` (bits by
    /// [`Detector::index`]; the others are 0).
    #[cfg_attr(target_arch = "wasm32", inline(never))]
    #[cfg_attr(not(target_arch = "wasm32"), inline(always))]
    fn recompute(
        &mut self,
        cfg: &ScoreConfig,
        quota: u8,
        only: u8,
    ) -> Option<[f32; SERVER_DETECTORS]> {
        self.flush();
        Some(self.severities_of(cfg, quota, only))
    }

    /// The six severities only, with integer early-outs for the common quiet case; equal
    /// to `assess(..).map(|c| c.sev)` (a unit test holds them together).
    fn severities(&self, cfg: &ScoreConfig, quota: u8) -> [f32; SERVER_DETECTORS] {
        self.severities_of(cfg, quota, ALL_DETECTORS)
    }

    /// [`Counters::severities`] of the detectors in `only` (the others are 0).
    fn severities_of(&self, cfg: &ScoreConfig, quota: u8, only: u8) -> [f32; SERVER_DETECTORS] {
        let on = |d: Detector| only & (1 << d.index()) != 0;
        let mask = burst_mask(cfg);
        let mut out = [0.0; SERVER_DETECTORS];
        let [rtt, loss, nx, sf, tc, integ] = &mut out;
        if on(Detector::Rtt) {
            *rtt = self.rtt_severity(cfg, quota, mask);
        }
        if on(Detector::Loss) {
            *loss = self.loss_severity(cfg);
        }
        if on(Detector::Nxdomain) {
            *nx = self.nx_severity(cfg);
        }
        if on(Detector::Servfail) {
            *sf = self.sf_severity(cfg, mask);
        }
        if on(Detector::Truncation) {
            *tc = self.tc_severity(cfg, mask);
        }
        if on(Detector::Integrity) {
            *integ = self.integ_severity(cfg, mask);
        }
        out
    }

    /// The RTT spike detector alone: the spikes among the newest `burst_window` answers
    /// against the quota (at least `rtt_confirm`).
    #[inline(always)]
    fn rtt_severity(&self, cfg: &ScoreConfig, quota: u8, mask: u64) -> f32 {
        let q = quota.max(cfg.rtt_confirm);
        let spikes = burst(self.rtt_bits(), mask);
        if spikes + 2 > u32::from(q) {
            ramp(spikes as f32, f32::from(q) - 2.0, f32::from(q))
        } else {
            0.0
        }
    }

    /// The truncation detector alone: the largest of the failed fallbacks', the TC
    /// share's and the new-truncation rule's ramps.
    #[inline(always)]
    fn tc_severity(&self, cfg: &ScoreConfig, mask: u64) -> f32 {
        let w = &self.win;
        let fails = burst(self.tcpf_bits(), mask);
        if fails == 0 && w.sum(Ev::Truncated) == 0 {
            return 0.0;
        }
        let f = ramp(fails as f32, 0.0, f32::from(cfg.tcp_fail_burst));
        let r = w
            .share(Ev::Truncated, Ev::Total, cfg.tc_min_samples)
            .map_or(0.0, |r| ramp(r, cfg.tc_rate_ok, cfg.tc_rate_bad));
        let n = self.tc_new_severity(cfg, mask);
        let m = if f >= r { f } else { r };
        if m >= n { m } else { n }
    }

    /// The integrity detector alone: malformed and mismatched responses among the
    /// newest `burst_window`.
    #[inline(always)]
    fn integ_severity(&self, cfg: &ScoreConfig, mask: u64) -> f32 {
        let bad = burst(self.integ_bits(), mask);
        if bad > 0 {
            ramp(bad as f32, 1.0, f32::from(cfg.integrity_burst))
        } else {
            0.0
        }
    }

    /// Detector `i` (by [`Detector::index`]) alone, the one copy of its math that
    /// [`Counters::severities_of`] runs too.
    #[inline(always)]
    fn severity_one(&self, cfg: &ScoreConfig, quota: u8, mask: u64, i: u32) -> f32 {
        match i {
            0 => self.rtt_severity(cfg, quota, mask),
            1 => self.loss_severity(cfg),
            2 => self.nx_severity(cfg),
            3 => self.sf_severity(cfg, mask),
            4 => self.tc_severity(cfg, mask),
            _ => self.integ_severity(cfg, mask),
        }
    }

    /// The loss detector alone: the larger of the run of timeouts' and the rate's ramps.
    #[inline(always)]
    fn loss_severity(&self, cfg: &ScoreConfig) -> f32 {
        let w = &self.win;
        if self.consec_timeouts == 0 && w.sum(Ev::Timeout) == 0 {
            return 0.0;
        }
        let c = ramp(
            self.consec_timeouts as f32,
            1.0,
            f32::from(cfg.loss_consecutive),
        );
        let r = w
            .share(Ev::Timeout, Ev::Total, cfg.loss_min_samples)
            .map_or(0.0, |r| ramp(r, cfg.loss_rate_ok, cfg.loss_rate_bad));
        if c >= r { c } else { r }
    }

    /// The SERVFAIL detector alone: the larger of the burst's and the rate's ramps.
    #[inline(always)]
    fn sf_severity(&self, cfg: &ScoreConfig, mask: u64) -> f32 {
        let sf_burst = burst(self.sf_bits(), mask);
        let w = &self.win;
        if sf_burst == 0 && w.sum(Ev::Servfail) == 0 {
            return 0.0;
        }
        let b = ramp(sf_burst as f32, 1.0, f32::from(cfg.servfail_burst));
        let r = w
            .share(Ev::Servfail, Ev::Responses, cfg.servfail_min_samples)
            .map_or(0.0, |r| {
                ramp(r, cfg.servfail_rate_ok, cfg.servfail_rate_bad)
            });
        if b > r { b } else { r }
    }

    /// The new-truncation rule alone (0 when disabled).
    #[inline]
    fn tc_new_severity(&self, cfg: &ScoreConfig, mask: u64) -> f32 {
        if cfg.tc_new_burst == 0 {
            return 0.0;
        }
        ramp(
            burst(self.tcnew_bits(), mask) as f32,
            0.0,
            f32::from(cfg.tc_new_burst),
        )
    }

    /// The NXDOMAIN detector alone: `ramp(share, lo, nx_share)` of
    /// [`Counters::nx_share`], with `lo = nx_share − 0.1`.
    #[inline]
    fn nx_severity(&self, cfg: &ScoreConfig) -> f32 {
        ramp(self.nx_share(cfg), cfg.nx_share - 0.1, cfg.nx_share)
    }

    /// [`Counters::nx_severity`], and how many more NXDOMAIN responses surely keep it
    /// at 0 whatever the gates do, as long as the window does not slide (the quick
    /// path's conditions): a span `n` holding `c` NXDOMAINs needs `⌈lo·n⌉ − c` more to
    /// pass `lo` (each response adds at most one; clean ones only lower the counts),
    /// and the window's `x / r` needs `k > (lo·r − x) / (1 − lo)` (with `lo − 0.01`,
    /// and one answer less, to stay clear of rounding).
    ///
    /// The same integer tests decide whether the severity can be above 0 at all (some
    /// open span with `c ≥ ⌈lo·n⌉`, or the window's share at `lo − 0.01` or more):
    /// only then is [`Counters::nx_severity`] computed.
    #[inline]
    fn nx_eval(&self, cfg: &ScoreConfig, d: &Derived) -> (f32, u32, u32, bool) {
        let responses = self.responses();
        let counts = prefix_counts(self.nx_bits());
        // The span of 8 apart (see `nx_extra`), the others and the window in `safe`.
        let mut safe = u32::MAX;
        let mut safe8 = u32::MAX;
        let (mut maybe, mut clear) = (false, true);
        for ((&need, &c), &n) in d.nx_need.iter().zip(counts.iter()).zip(NX_SPANS.iter()) {
            maybe |= c >= need && responses >= n;
            clear &= c < need;
            let s = need.saturating_sub(c).saturating_sub(1);
            if n == NX_SPANS[0] {
                safe8 = s;
            } else {
                safe = safe.min(s);
            }
        }
        let (x, r) = (self.win.sum(Ev::Nxdomain) as f32, responses as f32);
        if let Some(k) = d.window_slack(x, r) {
            safe = safe.min(k);
        } else {
            maybe = true;
            clear = false;
            safe = 0;
        }
        if maybe {
            let sev = self.nx_severity(cfg);
            if sev > 0.0 {
                return (sev, 0, 0, false);
            }
        }
        let slack = safe8.min(safe);
        (0.0, slack, safe - slack, clear)
    }

    /// [`Counters::nx_eval`], keeping its slack and clearance; returns the severity.
    #[inline(never)]
    fn nx_look(&mut self, cfg: &ScoreConfig, d: &Derived) -> f32 {
        let (sev, safe, extra, clear) = self.nx_eval(cfg, d);
        self.nx_slack = safe;
        self.nx_extra = extra;
        self.nx_clear = clear;
        sev
    }

    /// No NXDOMAIN slack (and no clearance) until the next look.
    #[inline]
    fn nx_reset(&mut self) {
        self.nx_slack = 0;
        self.nx_extra = 0;
        self.nx_clear = false;
    }

    /// Renews a used-up slack without a look (the lean path's NXDOMAIN answer): the
    /// spans of 16–64 still allow `nx_extra` more, the span of 8 holding `c` allows
    /// `⌈lo·8⌉ − c − 1` and the window its `k − 1` (both as in [`Counters::nx_eval`]).
    /// Returns whether there is slack now.
    #[inline(always)]
    fn nx_renew(&mut self, d: &Derived) -> bool {
        if self.nx_slack != 0 {
            return true;
        }
        let rest = self.nx_extra;
        if rest == 0 {
            return false;
        }
        let c8 = (self.nx_bits() as u8).count_ones();
        let need = d.nx_need.first().copied().unwrap_or(u32::MAX);
        let (x, r) = (self.win.sum(Ev::Nxdomain) as f32, self.responses() as f32);
        let Some(k) = d.window_slack(x, r) else {
            return false;
        };
        let slack = need.saturating_sub(c8).saturating_sub(1).min(rest).min(k);
        self.nx_slack = slack;
        self.nx_extra = rest - slack;
        slack != 0
    }

    /// Whether the quick path may take answers into this view for the rest of the
    /// epoch: every gate open, or (with no timeout, SERVFAIL or TC in the window, see
    /// [`Counters::slide_safe`]) no gate that can matter: the NXDOMAIN shares are all
    /// below their thresholds. Looks at the NXDOMAIN detector if needed.
    #[cfg_attr(not(target_arch = "wasm32"), inline(always))]
    #[cfg_attr(target_arch = "wasm32", inline)]
    fn quick_ok(&mut self, cfg: &ScoreConfig, d: &Derived) -> bool {
        self.gates_open(d) || (self.slide_safe() && (self.nx_clear || self.nx_check(cfg, d)))
    }

    /// [`Counters::quick_ok`]'s look at the NXDOMAIN detector (its severity must be 0
    /// already, as stored).
    #[inline(never)]
    fn nx_check(&mut self, cfg: &ScoreConfig, d: &Derived) -> bool {
        self.nx_look(cfg, d);
        self.nx_clear
    }

    /// The largest NXDOMAIN share over the short horizons (each once the window holds
    /// that many responses) and the rate window, pending answers included, or 0 when the
    /// window holds no NXDOMAIN. The window's share is compared with `lo − 0.01` by a
    /// multiplication first and only counts from there (below, it cannot raise the
    /// severity; the margin is far above the rounding of the exact quotient, which is
    /// only computed when it could count).
    fn nx_share(&self, cfg: &ScoreConfig) -> f32 {
        let nx_sum = self.win.sum(Ev::Nxdomain);
        if nx_sum == 0 {
            return 0.0;
        }
        let lo = cfg.nx_share - 0.1;
        let responses = self.responses();
        let counts = prefix_counts(self.nx_bits());
        let mut share = 0.0f32;
        for (&n, &c) in NX_SPANS.iter().zip(counts.iter()) {
            if n >= cfg.nx_min_samples && responses >= n {
                // n is a power of two: the product is the exact quotient.
                let s = c as f32 * (1.0 / n as f32);
                if s > share {
                    share = s;
                }
            }
        }
        if responses != 0
            && responses >= cfg.nx_min_samples
            && nx_sum as f32 >= (lo - 0.01) * responses as f32
        {
            let s = nx_sum as f32 / responses as f32;
            if s > share {
                share = s;
            }
        }
        share
    }

    /// Whether a slide of the window can raise no detector but the NXDOMAIN one: no
    /// timeout, SERVFAIL or TC in the window (slides only lower these counts, so their
    /// shares stay 0; every other detector reads histories, which slides leave alone).
    #[inline]
    fn slide_safe(&self) -> bool {
        (self.win.sum(Ev::Timeout) | self.win.sum(Ev::Servfail) | self.win.sum(Ev::Truncated)) == 0
    }

    /// Slides a calm view (every severity 0, [`Counters::slide_safe`]) to `now`;
    /// returns its NXDOMAIN severity after the slide, the only one that can have moved.
    ///
    /// A slide leaves the per-response histories (the spans' shares) alone and only
    /// closes span gates (fewer responses), so with the severity 0 before it, only the
    /// window's share can raise it: while that share stays below `lo − 0.01` (the test
    /// [`Counters::nx_share`] makes before it counts the window), the severity stays
    /// 0 without a look, the clearance holds, and the slack is capped by what the window
    /// now allows (as in [`Counters::nx_eval`]; the spans' part of it is unchanged).
    // One copy in the wasm filter (size), inline in the two slides elsewhere.
    #[cfg_attr(target_arch = "wasm32", inline(never))]
    #[cfg_attr(not(target_arch = "wasm32"), inline(always))]
    fn quick_slide(&mut self, now: u64, cfg: &ScoreConfig, d: &Derived) -> f32 {
        self.flush();
        self.win.advance(now, d.bucket_us);
        if self.nx_cap(d) {
            return 0.0;
        }
        self.nx_look(cfg, d)
    }

    /// Slides a view that is raised or not [`Counters::slide_safe`] to `now` (no new
    /// RTT quota: the caller checks) and returns its severities after the slide, `prev`
    /// before it. A slide drops old buckets of the rate window and nothing else: the
    /// histories (bursts, the NXDOMAIN spans), the run of timeouts and the quota stay,
    /// so the RTT and integrity detectors, which read only those, keep their
    /// severities, and the four that read the window (its shares and its gates) are
    /// recomputed (the NXDOMAIN one only when it can be above 0). The NXDOMAIN slack is
    /// reset (the next NXDOMAIN answer looks).
    #[inline(never)]
    fn slide_raised(
        &mut self,
        now: u64,
        cfg: &ScoreConfig,
        d: &Derived,
        quota: u8,
        prev: &[f32; SERVER_DETECTORS],
    ) -> [f32; SERVER_DETECTORS] {
        self.flush();
        self.win.advance(now, d.bucket_us);
        let mut only = WINDOW_DETECTORS;
        let nx = Detector::Nxdomain.index();
        // An NXDOMAIN severity at 0 stays 0 while the window's share is below
        // `lo − 0.01` (as in `quick_slide`: the spans are unchanged, their gates only
        // close), and then the slack and clearance hold as there, the slack capped by
        // what the window now allows.
        let below = if LEAN {
            self.nx_cap(d)
        } else {
            self.nx_reset();
            (self.win.sum(Ev::Nxdomain) as f32) < d.nx_lo * self.responses() as f32
        };
        if below && prev.get(nx).is_some_and(|v| *v == 0.0) {
            only &= !(1 << nx);
        }
        if LEAN {
            only = self.quiet_rates(d, prev, only);
        }
        let mut sev = if only == 0 {
            [0.0; SERVER_DETECTORS]
        } else {
            self.severities_of(cfg, quota, only)
        };
        for i in [Detector::Rtt.index(), Detector::Integrity.index()] {
            if let (Some(s), Some(p)) = (sev.get_mut(i), prev.get(i)) {
                *s = *p;
            }
        }
        sev
    }

    /// [`Counters::slide_raised`] after the slide (native only, [`LEAN`]): `only`
    /// without the detectors that surely stay at 0. The loss, SERVFAIL and truncation
    /// detectors at 0 in `prev` read their histories (bursts, the run of timeouts) and
    /// their window's share; the slide leaves the histories alone, so their ramps stay
    /// 0, and the severity stays 0 unless the share passes its `ok` threshold (the
    /// rate's ramp starts there) with its gate open. A share below `ok − 0.01` (tested
    /// without the quotient; the margin is far above its rounding) keeps it at 0
    /// whatever the gate.
    #[inline(always)]
    fn quiet_rates(&self, d: &Derived, prev: &[f32; SERVER_DETECTORS], mut only: u8) -> u8 {
        let w = &self.win;
        let quiet = |i: Detector, num: Ev, den: Ev, ok: f32| {
            prev.get(i.index()).is_some_and(|v| *v == 0.0)
                && (w.sum(num) as f32) < ok * w.sum(den) as f32
        };
        if quiet(Detector::Loss, Ev::Timeout, Ev::Total, d.quiet_loss) {
            only &= !(1 << Detector::Loss.index());
        }
        if quiet(Detector::Servfail, Ev::Servfail, Ev::Responses, d.quiet_sf) {
            only &= !(1 << Detector::Servfail.index());
        }
        if quiet(Detector::Truncation, Ev::Truncated, Ev::Total, d.quiet_tc) {
            only &= !(1 << Detector::Truncation.index());
        }
        only
    }

    /// The quick path's answer (see [`Scorer::quick`]), NOERROR or (`nx`) NXDOMAIN,
    /// into this view with its severities `sev`: one more response in the newest
    /// bucket. A calm view only looks at the NXDOMAIN detector, and only for an
    /// NXDOMAIN answer once its slack is used up; a raised one recomputes the detectors
    /// that are above 0 (and the NXDOMAIN one for an NXDOMAIN answer): nothing else can
    /// rise. Returns whether `sev` changed.
    #[inline(always)]
    fn quick_answer(
        &mut self,
        cfg: &ScoreConfig,
        d: &Derived,
        quota: u8,
        sev: &mut [f32; SERVER_DETECTORS],
        raised: &mut u8,
        nx: bool,
    ) -> bool {
        if nx {
            let item = self.at(self.seq_resp);
            self.nx.one(item);
            self.win.add_n(Ev::Nxdomain, 1);
        }
        self.pending += 1;
        if *raised != 0 {
            return self.quick_raised(cfg, d, quota, sev, raised, nx);
        }
        if !nx {
            return false;
        }
        if self.nx_slack > 0 {
            self.nx_slack -= 1;
            return false;
        }
        self.quick_nx_eval(cfg, d, sev, raised)
    }

    /// An NXDOMAIN answer within the slack into a calm view (as [`Counters::quick_answer`]
    /// for it): its bit, its window count, a pending response and one slack less.
    #[inline(always)]
    fn nx_answer(&mut self) {
        let item = self.at(self.seq_resp);
        self.nx.one(item);
        self.win.add_n(Ev::Nxdomain, 1);
        self.pending += 1;
        self.nx_slack -= 1;
    }

    /// [`Counters::quick_answer`]: an NXDOMAIN answer into a calm view once the slack
    /// is used up.
    #[inline(never)]
    fn quick_nx_eval(
        &mut self,
        cfg: &ScoreConfig,
        d: &Derived,
        sev: &mut [f32; SERVER_DETECTORS],
        raised: &mut u8,
    ) -> bool {
        let v = self.nx_look(cfg, d);
        if v == 0.0 {
            return false;
        }
        *sev = [0.0, 0.0, v, 0.0, 0.0, 0.0];
        *raised = 1 << Detector::Nxdomain.index();
        true
    }

    /// [`Counters::quick_answer`] into a raised view.
    #[inline(never)]
    fn quick_raised(
        &mut self,
        cfg: &ScoreConfig,
        d: &Derived,
        quota: u8,
        sev: &mut [f32; SERVER_DETECTORS],
        raised: &mut u8,
        nx: bool,
    ) -> bool {
        let mut only = *raised;
        // An NXDOMAIN answer within the slack (a bound on the NXDOMAIN answers that
        // keep the NXDOMAIN severity at 0, see `Counters::nx_eval`) into a view whose
        // NXDOMAIN severity is 0 uses one of it, as in the calm path, and leaves that
        // severity at 0; for every other detector it is a clean answer (a response
        // within the RTT threshold: a 0 in every other history, one more response).
        // Else the NXDOMAIN detector is recomputed and the slack ends.
        const NX: u8 = 1 << Detector::Nxdomain.index();
        let mut clean = !nx;
        if nx {
            if LEAN && only & NX == 0 {
                if self.nx_slack > 0 {
                    self.nx_slack -= 1;
                    clean = true;
                } else {
                    clean = self.nx_look(cfg, d) == 0.0;
                }
            } else {
                self.nx_reset();
            }
            if !clean {
                only |= NX;
            }
        }
        // A clean answer right after the last computation (`pending` is this answer
        // alone) into a view whose raised detectors all read bursts (and the TC share).
        // (SERVFAIL, loss and NXDOMAIN severities raised by their rates move with
        // nearly every answer: there the checks would cost more than they save.)
        if LEAN && clean && self.pending == 1 && only & BURST_DETECTORS != 0 {
            self.flush();
            return self.quick_bursts(cfg, d, quota, sev, raised, only);
        }
        // The SERVFAIL or the loss detector alone raised (mostly by its rate, which
        // moves with every answer): computed here, without the general pass.
        const SF: u8 = 1 << Detector::Servfail.index();
        const LOSS: u8 = 1 << Detector::Loss.index();
        if LEAN
            && (only == SF || only == LOSS)
            && let Some(old) = sev.get_mut(only.trailing_zeros() as usize)
        {
            self.flush();
            let v = if only == SF {
                self.sf_severity(cfg, d.burst_mask)
            } else {
                self.loss_severity(cfg)
            };
            if v == *old {
                return false;
            }
            *old = v;
            if v <= 0.0 {
                *raised = 0;
            }
            return true;
        }
        self.flush();
        let new = self.severities_of(cfg, quota, only);
        if new == *sev {
            return false;
        }
        *sev = new;
        *raised = raised_mask(&new);
        true
    }

    /// [`Counters::quick_raised`] for one clean answer into a view whose raised
    /// detectors (`raised`) are all [`BURST_DETECTORS`]: only those that
    /// [`Counters::clean_moves`] finds moving are recomputed (mostly none), the others
    /// keep `sev`.
    #[cfg_attr(target_arch = "wasm32", inline(never))]
    #[cfg_attr(not(target_arch = "wasm32"), inline(always))]
    fn quick_bursts(
        &mut self,
        cfg: &ScoreConfig,
        d: &Derived,
        quota: u8,
        sev: &mut [f32; SERVER_DETECTORS],
        raised: &mut u8,
        only: u8,
    ) -> bool {
        let moves = self.clean_moves(d, only);
        if moves == 0 {
            return false;
        }
        let mut new;
        if LEAN && moves.is_power_of_two() {
            // One detector moves (mostly the SERVFAIL or loss one beside a burst):
            // its own function.
            new = *sev;
            let i = moves.trailing_zeros();
            if let Some(v) = new.get_mut(i as usize) {
                *v = self.severity_one(cfg, quota, d.burst_mask, i);
            }
        } else {
            new = self.severities_of(cfg, quota, moves);
            for (i, (n, o)) in new.iter_mut().zip(sev.iter()).enumerate() {
                if (only & !moves) & (1 << i) != 0 {
                    *n = *o;
                }
            }
        }
        if new == *sev {
            return false;
        }
        *sev = new;
        *raised = raised_mask(&new);
        true
    }

    /// Which of the detectors in `raised` one clean answer (NOERROR within the RTT
    /// threshold, steady, gates open, already flushed: the only answer since the
    /// severities were last computed) can move. The answer pushes a 0 into every
    /// history and adds one to the window's totals, so the RTT spike and integrity
    /// bursts move only when a set bit leaves their window (the bit `burst_window`
    /// back, now), and the truncation detector only then (failed fallbacks, new
    /// truncation) or when its TC share was above `tc_rate_ok − 0.01` before the
    /// answer (below, the rate's ramp was 0 and stays 0: the share only falls; the
    /// margin is far above the rounding of the quotient). The other detectors in
    /// `raised` are always counted as moving.
    #[inline]
    fn clean_moves(&self, d: &Derived, raised: u8) -> u8 {
        let out = d.burst_out;
        let left = |h: u64| out == 0 || h & out != 0;
        let on = |det: Detector| raised & (1 << det.index()) != 0;
        let mut m = raised & !BURST_DETECTORS;
        if on(Detector::Rtt) && left(self.rtt_bits()) {
            m |= 1 << Detector::Rtt.index();
        }
        if on(Detector::Truncation)
            && (left(self.tcpf_bits()) || left(self.tcnew_bits()) || {
                // The TC share before this answer.
                let total = self.win.sum(Ev::Total).saturating_sub(1);
                (self.win.sum(Ev::Truncated) as f32) >= d.quiet_tc * total as f32
            })
        {
            m |= 1 << Detector::Truncation.index();
        }
        if on(Detector::Integrity) && left(self.integ_bits()) {
            m |= 1 << Detector::Integrity.index();
        }
        m
    }

    /// All six per-view detectors, with causes and evidence: the severities are those
    /// of [`Counters::severities`] (one copy of the math), each with the cause and the
    /// evidence behind it.
    fn assess(&self, cfg: &ScoreConfig, quota: u8) -> [Component; SERVER_DETECTORS] {
        let [rtt, loss, nx, sf, tc, integ] = self.severities(cfg, quota);
        let mask = burst_mask(cfg);
        let count = |h: u64| Evidence::Count(burst(h, mask));
        let w = &self.win;
        let share =
            |num: Ev, den: Ev, min: u32| Evidence::Share(w.share(num, den, min).unwrap_or(0.0));
        let c = |sev: f32, cause: Cause, evidence: Evidence| Component {
            sev,
            cause,
            evidence,
        };
        // Loss: the run of timeouts when its ramp is the larger, else the rate.
        let consec = ramp(
            self.consec_timeouts as f32,
            1.0,
            f32::from(cfg.loss_consecutive),
        );
        let loss = if consec >= loss {
            c(
                loss,
                Cause::ConsecutiveTimeouts,
                Evidence::Count(self.consec_timeouts),
            )
        } else {
            c(
                loss,
                Cause::LossRate,
                share(Ev::Timeout, Ev::Total, cfg.loss_min_samples),
            )
        };
        // Truncation: failed fallbacks, else the TC rate, else new truncation (the first
        // of the three at the maximum).
        let fails = burst(self.tcpf_bits(), mask);
        let fail_sev = ramp(fails as f32, 0.0, f32::from(cfg.tcp_fail_burst));
        let tc_rate = w.share(Ev::Truncated, Ev::Total, cfg.tc_min_samples);
        let tc_sev = tc_rate.map_or(0.0, |r| ramp(r, cfg.tc_rate_ok, cfg.tc_rate_bad));
        let truncation = if fail_sev >= tc {
            c(tc, Cause::TcpFallbackFailed, Evidence::Count(fails))
        } else if tc_sev >= self.tc_new_severity(cfg, mask) {
            c(
                tc,
                Cause::TruncationRate,
                Evidence::Share(tc_rate.unwrap_or(0.0)),
            )
        } else {
            c(tc, Cause::TruncationNew, count(self.tcnew_bits()))
        };
        let integrity = if w.sum(Ev::Malformed) > w.sum(Ev::Mismatch) {
            Cause::Malformed
        } else {
            Cause::Mismatch
        };
        [
            // RTT spike (evidence filled in by the caller for a server).
            c(rtt, Cause::RttSpike, count(self.rtt_bits())),
            loss,
            c(
                nx,
                Cause::NxdomainShare,
                Evidence::Share(self.nx_share(cfg)),
            ),
            // SERVFAIL (the cause is refined with the source entropy by `reasons`).
            c(sf, Cause::ServfailSpread, Evidence::None),
            truncation,
            c(integ, integrity, count(self.integ_bits())),
        ]
    }
}

/// Values derived from the config once.
#[derive(Clone, Copy, Debug)]
struct Derived {
    /// Largest minimum-sample gate over all observations / over responses.
    gate_total: u32,
    gate_responses: u32,
    /// The newest `burst_window` bits.
    burst_mask: u64,
    /// The bit `burst_window` back (the item that just left a burst window), 0 when
    /// the window is all 64 bits; and `tc_rate_ok − 0.01` (see
    /// [`Counters::clean_moves`]).
    burst_out: u64,
    quiet_tc: f32,
    /// `loss_rate_ok − 0.01` and `servfail_rate_ok − 0.01` (see
    /// [`Counters::slide_raised`]).
    quiet_loss: f32,
    quiet_sf: f32,
    weights: [f32; Detector::COUNT],
    /// For [`Counters::nx_eval`]: `⌈lo·n⌉` NXDOMAINs per span `n` (`u32::MAX` when the
    /// span is off), `lo − 0.01` and `1 / (1 − (lo − 0.01))` (0 when the window's
    /// share can never pass), with `lo = nx_share − 0.1`.
    nx_need: [u32; 4],
    nx_lo: f32,
    nx_inv: f32,
    bucket_us: u64,
    slice_us: u64,
    rtt: RttParams,
    tables: RrTables,
}

impl Derived {
    /// How many more NXDOMAIN responses surely keep a window's share `x / r` below
    /// `lo − 0.01`: `k − 1` with `k = (lo·r − x) / (1 − lo)` (see [`Counters::nx_eval`]),
    /// or `None` when the share is there already.
    #[inline(always)]
    fn window_slack(&self, x: f32, r: f32) -> Option<u32> {
        if x >= self.nx_lo * r {
            return None;
        }
        // `as` saturates: u32::MAX when the window can never count (inv = +inf).
        Some((((self.nx_lo * r - x) * self.nx_inv) as u32).saturating_sub(1))
    }

    fn new(cfg: &ScoreConfig) -> Self {
        let mut weights = [0.0; Detector::COUNT];
        for (w, d) in weights.iter_mut().zip(Detector::ALL) {
            *w = cfg.weights.get(d);
        }
        let lo = cfg.nx_share - 0.1;
        let nx_need = NX_SPANS.map(|n| {
            if n < cfg.nx_min_samples {
                return u32::MAX;
            }
            let t = lo * n as f32;
            let need = t as u32; // saturating: 0 for t <= 0
            if (need as f32) < t { need + 1 } else { need }
        });
        let nx_lo = lo - 0.01;
        Derived {
            nx_need,
            nx_lo,
            // k = (lo·r − x)·inv: with inv = +inf for lo >= 1 the count saturates
            // (never), and for lo < 0 the product is negative (0: always look).
            nx_inv: if nx_lo < 1.0 {
                1.0 / (1.0 - nx_lo)
            } else {
                f32::INFINITY
            },
            gate_total: cfg.loss_min_samples.max(cfg.tc_min_samples),
            gate_responses: cfg
                .nx_min_samples
                .max(cfg.servfail_min_samples)
                .max(NX_SPANS[3]),
            burst_mask: burst_mask(cfg),
            burst_out: burst_mask(cfg).wrapping_add(1),
            quiet_tc: cfg.tc_rate_ok - 0.01,
            quiet_loss: cfg.loss_rate_ok - 0.01,
            quiet_sf: cfg.servfail_rate_ok - 0.01,
            weights,
            bucket_us: (cfg.rate_window_us / BUCKETS as u64).max(1),
            slice_us: (cfg.rtt_window_us / RTT_SLICES as u64).max(1),
            rtt: RttParams {
                warmup: cfg.rtt_warmup_samples,
                sigmas: cfg.rtt_sigmas,
                floor_us: cfg.rtt_floor_us,
                window: cfg.burst_window,
                min_spikes: cfg.rtt_confirm,
                alpha: f64::from(cfg.rtt_alpha),
            },
            tables: RrTables::new(cfg.rr_alpha),
        }
    }
}

/// One tracked server.
#[derive(Clone, Copy, Debug)]
struct Server {
    c: Counters,
    rtt: RttSketch,
    sev: [f32; SERVER_DETECTORS],
    /// Which of `sev` are above 0 ([`raised_mask`], kept with `sev`: the quiet path
    /// reads one byte, a raised view's recomputation starts from it).
    raised: u8,
    /// The epoch in which the quick path may take this server's clean answers (0:
    /// none), and the largest RTT that is not a spike.
    fast_epoch: u64,
    fast_rtt_max: u32,
}

impl Server {
    const EMPTY: Server = Server {
        c: Counters::EMPTY,
        rtt: RttSketch::EMPTY,
        sev: [0.0; SERVER_DETECTORS],
        raised: 0,
        fast_epoch: 0,
        fast_rtt_max: 0,
    };

    /// Marks the server for the quick path in `epoch` when its counters allow it
    /// ([`Counters::quick_ok`], returned), with the spike threshold (below the
    /// ceiling) as the largest RTT it takes.
    #[inline(always)]
    fn mark_quick(&mut self, cfg: &ScoreConfig, d: &Derived, epoch: u64) -> bool {
        let ok = self.c.quick_ok(cfg, d);
        self.fast_epoch = if ok { epoch } else { 0 };
        self.fast_rtt_max = self.quick_rtt_max(cfg);
        ok
    }

    /// The largest RTT the quick path takes for this server: below its spike threshold
    /// and below the ceiling.
    #[inline(always)]
    fn quick_rtt_max(&self, cfg: &ScoreConfig) -> u32 {
        self.rtt
            .threshold_us
            .min(cfg.rtt_ceiling_us.saturating_sub(1))
    }
}

/// Every per-view detector, as a bit mask by [`Detector::index`].
const ALL_DETECTORS: u8 = (1 << SERVER_DETECTORS) - 1;

/// The per-view detectors whose severity a clean answer moves only when a burst bit
/// leaves its window (and, for truncation, while the TC share is above its lower
/// threshold): see [`Counters::clean_moves`].
const BURST_DETECTORS: u8 = (1 << Detector::Rtt.index())
    | (1 << Detector::Truncation.index())
    | (1 << Detector::Integrity.index());

/// The per-view detectors that read the rate window (loss, NXDOMAIN, SERVFAIL,
/// truncation): the others read histories only.
const WINDOW_DETECTORS: u8 =
    ALL_DETECTORS & !(1 << Detector::Rtt.index()) & !(1 << Detector::Integrity.index());

/// The detectors above 0, as a bit mask by [`Detector::index`].
#[inline]
fn raised_mask(sev: &[f32; SERVER_DETECTORS]) -> u8 {
    sev.iter()
        .enumerate()
        .fold(0, |m, (i, v)| if *v > 0.0 { m | 1 << i } else { m })
}

/// Server/target pairs remembered by the new-truncation rule (direct-mapped by a hash
/// of the pair; a collision replaces the entry, which can only delay a detection).
const TC_PAIRS: usize = 128;

/// One pair's TC memory.
#[derive(Clone, Copy, Debug)]
struct TcPair {
    /// `server << 32 | target`; `FREE` when unused.
    key: u64,
    /// Answers without TC in a row (saturating).
    clean: u8,
    /// Whether the pair is in a TC run, and since when.
    in_run: bool,
    run_since_us: u64,
}

impl TcPair {
    const EMPTY: TcPair = TcPair {
        key: FREE,
        clean: 0,
        in_run: false,
        run_since_us: 0,
    };
}

/// The pair's entry in the new-truncation memory (reset for the pair if another pair
/// held it).
#[inline(always)]
fn tc_entry<'a>(tc: &'a mut [TcPair; TC_PAIRS], obs: &Observation<'_>) -> Option<&'a mut TcPair> {
    let key = (u64::from(obs.server) << 32) | u64::from(obs.target);
    let h = (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 57) as usize; // 0..128
    let e = tc.get_mut(h)?;
    if e.key != key {
        *e = TcPair {
            key,
            ..TcPair::EMPTY
        };
    }
    Some(e)
}

/// Where the largest severity of one detector is.
#[derive(Clone, Copy, Debug, Default)]
struct Best {
    v: f32,
    i: usize,
}

/// Hysteresis state of the verdict.
#[derive(Clone, Copy, Debug, PartialEq)]
struct VerdictState {
    verdict: Verdict,
    since_us: u64,
    /// Since when the score has been below `critical_leave` / `degraded_leave`.
    calm_since: Option<u64>,
    quiet_since: Option<u64>,
}

impl VerdictState {
    /// After a [`VerdictState::step`] with `score`: the earliest time at which another
    /// step with the same score can change anything. Such a step finds the same level
    /// (no escalation: it would have happened) and leaves the leave timers as they are
    /// (set when the score is below their threshold, and already set then); what
    /// remains is a step-down, which needs the minimum dwell and the leave hold of the
    /// timer it reads (critical: `calm_since`, degraded: `quiet_since`) to have
    /// passed. `u64::MAX`: never (ok, or a timer that is not running). Without
    /// [`LEAN`] (the wasm filter, for size) every verdict above ok steps.
    fn due(&self, score: f32, cfg: &ScoreConfig) -> u64 {
        let timer = match self.verdict {
            Verdict::Ok if score < cfg.degraded_enter => return u64::MAX,
            Verdict::Ok => return 0,
            _ if !LEAN => return 0,
            Verdict::Degraded => self.quiet_since,
            Verdict::Critical => self.calm_since,
        };
        match timer {
            Some(t) => t
                .saturating_add(cfg.leave_hold_us)
                .max(self.since_us.saturating_add(cfg.min_dwell_us)),
            None => u64::MAX,
        }
    }

    #[inline]
    fn step(&mut self, score: f32, now: u64, cfg: &ScoreConfig) -> Option<VerdictChange> {
        // Ok and staying Ok: the leave timers only matter above Ok, and the escalating
        // call resets them (the score is then above every leave threshold).
        if self.verdict == Verdict::Ok && score < cfg.degraded_enter {
            return None;
        }
        self.calm_since = if score < cfg.critical_leave {
            self.calm_since.or(Some(now))
        } else {
            None
        };
        self.quiet_since = if score < cfg.degraded_leave {
            self.quiet_since.or(Some(now))
        } else {
            None
        };
        let level = if score >= cfg.critical_enter {
            Verdict::Critical
        } else if score >= cfg.degraded_enter {
            Verdict::Degraded
        } else {
            Verdict::Ok
        };
        let held =
            |since: Option<u64>| since.is_some_and(|s| now.saturating_sub(s) >= cfg.leave_hold_us);
        let dwelt = now.saturating_sub(self.since_us) >= cfg.min_dwell_us;
        let to = if level > self.verdict {
            level
        } else if dwelt && self.verdict == Verdict::Critical && held(self.calm_since) {
            if held(self.quiet_since) {
                Verdict::Ok
            } else {
                Verdict::Degraded
            }
        } else if dwelt && self.verdict == Verdict::Degraded && held(self.quiet_since) {
            Verdict::Ok
        } else {
            return None;
        };
        let change = VerdictChange {
            from: self.verdict,
            to,
            at_us: now,
            score,
        };
        self.verdict = to;
        self.since_us = now;
        Some(change)
    }
}

/// Owns every detector; feed it [`Observation`]s, read a score, a [`Verdict`] and
/// [`Reasons`]. See the [module docs](super) for the math and defaults.
///
/// `S` servers and `T` targets are tracked in fixed slots (eviction: least recently
/// observed; targets with an expectation are pinned). The size is fixed at compile time:
/// about 2.1 KiB per server, 0.85 KiB per target and 4.2 KiB besides (3 KiB of it the
/// new-truncation pair table), 92 KiB for the defaults (`S = 16`, `T = 64`). Build it
/// once (e.g. in a `Box` or a static) rather than on a small stack.
///
/// Typical use: [`observe`](Self::observe) every exchange, [`evaluate`](Self::evaluate)
/// about once a second (time-driven changes: windows sliding, stale servers, drift grace,
/// stepping down without traffic), and on every [`Assessment::change`] log
/// [`reasons`](Self::reasons). A healer asks [`server_health`](Self::server_health).
#[derive(Clone, Debug)]
pub struct Scorer<const S: usize = 16, const T: usize = 64> {
    cfg: ScoreConfig,
    d: Derived,
    now: u64,
    observations: u64,
    evictions: u64,
    untracked_targets: u64,
    global: Counters,
    global_sev: [f32; SERVER_DETECTORS],
    global_raised: u8,
    global_quota: u8,
    /// When any observation last arrived.
    global_last: u64,
    /// Keys widened to u64 so that `FREE` (u64::MAX) can mark a free slot.
    server_keys: [u64; S],
    server_last: [u64; S],
    server_used: [bool; S],
    servers: [Server; S],
    /// One past the highest server slot ever taken: the slots from here on were never
    /// used, so the best-severity rescans stop here.
    server_span: usize,
    server_best: [Best; SERVER_DETECTORS],
    target_keys: [u64; T],
    /// 256-bit presence filter of tracked target keys: most observations are of
    /// targets without a slot, and this answers "not tracked" without a scan.
    target_filter: [u64; 4],
    target_last: [u64; T],
    target_used: [bool; T],
    targets: [Target; T],
    target_best: [Best; TARGET_DETECTORS],
    /// The new-truncation rule's memory.
    tc: [TcPair; TC_PAIRS],
    score: f32,
    /// A best-severity tracker changed outside the observed views (eviction, forget).
    dirty: bool,
    verdict: VerdictState,
    /// The current epoch (see [`Scorer::next_epoch`]) and when it ends; a view may take
    /// the quick path ([`Scorer::quick`]) while its mark equals `epoch` (0: never).
    epoch: u64,
    fast_until: u64,
    global_fast: u64,
    /// From when the verdict step has work to do (`u64::MAX`: not until the score
    /// moves). A step changes the hysteresis state only when the score moved since the
    /// last one (its timers start then) or when a timer can complete: with the score
    /// unchanged, the verdict can only step down, at the earliest once both the
    /// minimum dwell and the leave hold have passed (see [`VerdictState::due`]); an ok
    /// verdict with the score below `degraded_enter` never steps. Kept by
    /// [`Scorer::fuse_score`] (0 when the score moved and the verdict or the score is
    /// above ok) and [`Scorer::step_verdict`].
    step_due: u64,
    /// The latest verdict change (see [`Scorer::last_change`]).
    last_change: Option<VerdictChange>,
}

impl<const S: usize, const T: usize> Scorer<S, T> {
    /// A scorer with this configuration, after [`ScoreConfig::validate`].
    pub fn new(cfg: ScoreConfig) -> Result<Self, ConfigError> {
        cfg.validate()?;
        Ok(Scorer {
            d: Derived::new(&cfg),
            cfg,
            now: 0,
            observations: 0,
            evictions: 0,
            untracked_targets: 0,
            global: Counters::EMPTY,
            global_sev: [0.0; SERVER_DETECTORS],
            global_raised: 0,
            global_quota: cfg.rtt_confirm,
            global_last: 0,
            server_keys: [FREE; S],
            server_last: [0; S],
            server_used: [false; S],
            servers: [Server::EMPTY; S],
            server_span: 0,
            server_best: [Best::default(); SERVER_DETECTORS],
            target_keys: [FREE; T],
            target_filter: [0; 4],
            target_last: [0; T],
            target_used: [false; T],
            targets: [Target::EMPTY; T],
            target_best: [Best::default(); TARGET_DETECTORS],
            tc: [TcPair::EMPTY; TC_PAIRS],
            score: 0.0,
            dirty: false,
            verdict: VerdictState {
                verdict: Verdict::Ok,
                since_us: 0,
                calm_since: None,
                quiet_since: None,
            },
            epoch: 1,
            fast_until: 0,
            global_fast: 0,
            step_due: if 0.0 >= cfg.degraded_enter {
                0
            } else {
                u64::MAX
            },
            last_change: None,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &ScoreConfig {
        &self.cfg
    }

    /// The current fused score in `[0, 1]`.
    pub fn score(&self) -> f32 {
        self.score
    }

    /// The current verdict.
    pub fn verdict(&self) -> Verdict {
        self.verdict.verdict
    }

    /// The scorer's clock: the latest time it has been given.
    pub fn now_us(&self) -> u64 {
        self.now
    }

    /// Observations fed so far.
    pub fn observations(&self) -> u64 {
        self.observations
    }

    /// Servers evicted to make room for new ones (their history was lost).
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// Observations whose target needed a slot but every slot was pinned.
    pub fn untracked_targets(&self) -> u64 {
        self.untracked_targets
    }

    /// The overall severity of one detector in `[0, 1]` (maximum over servers, the global
    /// view, or targets).
    pub fn severity(&self, d: Detector) -> f32 {
        let i = d.index();
        if i < SERVER_DETECTORS {
            let g = self.global_sev.get(i).copied().unwrap_or(0.0);
            let s = self.server_best.get(i).map_or(0.0, |b| b.v);
            clamp01(if g > s { g } else { s })
        } else {
            clamp01(
                self.target_best
                    .get(i - SERVER_DETECTORS)
                    .map_or(0.0, |b| b.v),
            )
        }
    }

    /// Feeds one exchange; O(1) (bounded by `S`, `T` and small constants). Returns the
    /// new score and verdict, and the change if there was one.
    ///
    /// The same as [`record`](Self::record) followed by [`score`](Self::score),
    /// [`verdict`](Self::verdict) and [`last_change`](Self::last_change).
    pub fn observe(&mut self, obs: &Observation<'_>) -> Assessment {
        let change = self.record(obs).and(self.last_change);
        Assessment {
            score: self.score,
            verdict: self.verdict.verdict,
            change,
        }
    }

    /// Feeds one exchange like [`observe`](Self::observe), for callers that do not
    /// need the assessment of every observation: returns the new verdict when this
    /// observation changed it (the whole change is then [`last_change`](Self::last_change)),
    /// else `None`. Read [`score`](Self::score) and [`verdict`](Self::verdict) when
    /// needed.
    ///
    /// ```
    /// use dnswarden_core::score::{Observation, Outcome, ScoreConfig, Scorer, Verdict};
    /// use dnswarden_core::wire::Rcode;
    ///
    /// let mut scorer: Scorer = Scorer::new(ScoreConfig::default())?;
    /// let mut changes = 0;
    /// for i in 1..=50u64 {
    ///     let obs = Observation::new(0, 7, i * 10_000, Outcome::Response(Rcode::SERVFAIL));
    ///     if scorer.record(&obs).is_some() {
    ///         changes += 1;
    ///     }
    /// }
    /// assert!(changes >= 1);
    /// assert_ne!(scorer.verdict(), Verdict::Ok);
    /// assert_eq!(scorer.last_change().map(|c| c.to), Some(scorer.verdict()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn record(&mut self, obs: &Observation<'_>) -> Option<Verdict> {
        let now = self.tick(obs.at_us);
        // u64: does not wrap in the life of a process.
        self.observations = self.observations.wrapping_add(1);
        self.global_last = now;
        if self.lean_views(obs, now) {
            // No target slot needed (single answer, target not tracked) and nothing to
            // fuse or step: done.
            if obs.answers.count < 2
                && !self.dirty
                && now < self.step_due
                && !self.maybe_tracked(obs)
            {
                return None;
            }
            return self.finish_lean(obs, now);
        }
        self.record_views(obs, now)
    }

    /// [`Scorer::finish`] after the lean path (out of line: the lean path itself stays
    /// free of register saves).
    #[inline(never)]
    fn finish_lean(&mut self, obs: &Observation<'_>, now: u64) -> Option<Verdict> {
        self.finish::<true>(obs, now, false)
    }

    /// The lean path of [`Scorer::record`]: the most common observation, a NOERROR
    /// answer within its server's RTT threshold to a calm server (at its home slot) and
    /// into a calm global view, both marked for the quick path in this epoch, with the
    /// RTT baseline not due. Exactly [`Scorer::quick`] for that case (which leaves every
    /// severity unchanged): an RTT histogram increment, a pending count per view, the
    /// server's last-seen time and the new-truncation pair entry. Returns false,
    /// having changed nothing, when it does not apply. (NXDOMAIN answers within the
    /// views' slack were tried here too and cost more than they saved: the register
    /// pressure put saves on every observation.)
    #[inline(always)]
    fn lean_views(&mut self, obs: &Observation<'_>, now: u64) -> bool {
        if !LEAN
            || now >= self.fast_until
            || obs.outcome != Outcome::Response(Rcode::NOERROR)
            || self.global_fast != self.epoch
            || self.global_raised != 0
        {
            return false;
        }
        let Some(h) = self.lean_slot(obs) else {
            return false;
        };
        let Some(server) = self.servers.get_mut(h) else {
            return false;
        };
        server.rtt.add(obs.rtt_us);
        server.c.pending += 1;
        self.global.pending += 1;
        if let Some(l) = self.server_last.get_mut(h) {
            *l = now;
        }
        self.tc_clean(obs);
        true
    }

    /// The home slot of the observation's server when the lean paths may take its
    /// answer: the server sits in its home slot, is marked for the quick path in this
    /// epoch, is calm, its RTT baseline is fresh and the RTT is no spike.
    #[inline(always)]
    fn lean_slot(&self, obs: &Observation<'_>) -> Option<usize> {
        let h = home_slot::<S>(obs.server);
        let (Some(&key), Some(server)) = (self.server_keys.get(h), self.servers.get(h)) else {
            return None;
        };
        (key == u64::from(obs.server)
            && server.fast_epoch == self.epoch
            && server.raised == 0
            && obs.rtt_us <= server.fast_rtt_max
            && server.rtt.fresh())
        .then_some(h)
    }

    /// The lean path's NXDOMAIN answer (at the start of [`Scorer::quick`], out of the
    /// NOERROR path's way; the epoch is current there): the same conditions as
    /// [`Scorer::lean_views`], and both views have NXDOMAIN slack left (see
    /// [`Counters::nx_eval`], renewed by [`Counters::nx_renew`]). Exactly [`Scorer::quick`] for
    /// that case, which changes no severity: the RTT histogram increment, the NXDOMAIN
    /// bit and window count, a pending count and one slack less per view, the
    /// clearance check that can end a view's mark, the server's last-seen time and the
    /// new-truncation pair entry. Returns false, having changed nothing, when it does
    /// not apply.
    #[inline(always)]
    fn lean_nx(&mut self, obs: &Observation<'_>, now: u64) -> bool {
        if !LEAN || self.global_fast != self.epoch || self.global_raised != 0 {
            return false;
        }
        let d = &self.d;
        if !self.global.nx_renew(d) {
            return false;
        }
        let Some(h) = self.lean_slot(obs) else {
            return false;
        };
        let Some(server) = self.servers.get_mut(h) else {
            return false;
        };
        if !server.c.nx_renew(d) {
            return false;
        }
        server.rtt.add(obs.rtt_us);
        let c = &mut server.c;
        c.nx_answer();
        if !(c.nx_clear || c.gates_open(d)) {
            server.fast_epoch = 0;
        }
        let g = &mut self.global;
        g.nx_answer();
        if !(g.nx_clear || g.gates_open(d)) {
            self.global_fast = 0;
        }
        if let Some(l) = self.server_last.get_mut(h) {
            *l = now;
        }
        self.tc_clean(obs);
        true
    }

    /// Whether the observation's target may hold a slot (the presence filter).
    #[inline(always)]
    fn maybe_tracked(&self, obs: &Observation<'_>) -> bool {
        let (word, bit) = filter_bit(obs.target);
        self.target_filter.get(word).is_some_and(|w| w & bit != 0)
    }

    /// [`Scorer::record`] beyond the lean path: the epoch, the server and global views
    /// (quick or full path), then [`Scorer::finish`].
    #[inline(never)]
    fn record_views(&mut self, obs: &Observation<'_>, now: u64) -> Option<Verdict> {
        if now >= self.fast_until {
            self.next_epoch(now);
        }
        let changed = match self.quick(obs, now) {
            Some(changed) => changed,
            None => self.observe_views(obs, now),
        };
        self.finish::<false>(obs, now, changed)
    }

    /// The end of [`Scorer::record`]: the per-target detectors, fusion (when a severity
    /// moved) and the verdict step.
    #[inline(always)]
    fn finish<const INLINE: bool>(
        &mut self,
        obs: &Observation<'_>,
        now: u64,
        mut changed: bool,
    ) -> Option<Verdict> {
        if let Some(ti) = self.target_slot(obs, now)
            && let Some(t) = self.targets.get_mut(ti)
        {
            let before = t.sev;
            if LEAN && INLINE {
                t.observe_inline(obs, now, &self.cfg, &self.d.tables);
            } else {
                t.observe(obs, now, &self.cfg, &self.d.tables);
            }
            let sev = t.sev;
            if sev != before {
                self.update_target_best(ti, &sev);
                changed = true;
            }
        }
        if changed || self.dirty {
            self.fuse_score();
        }
        if now < self.step_due {
            return None;
        }
        self.step_verdict(now).map(|c| c.to)
    }

    /// The latest verdict change (by [`observe`](Self::observe), [`record`](Self::record)
    /// or [`evaluate`](Self::evaluate)), if the verdict ever changed.
    pub fn last_change(&self) -> Option<VerdictChange> {
        self.last_change
    }

    /// Starts the epoch holding `now`: the stretch of time until the next rate-window
    /// bucket or RTT slice begins (both are fixed grids of absolute time), within which
    /// no window of any view slides.
    #[inline(never)]
    fn next_epoch(&mut self, now: u64) {
        let next = |width: u64| (now / width).saturating_add(1).saturating_mul(width);
        self.epoch = self.epoch.wrapping_add(1);
        self.fast_until = next(self.d.bucket_us).min(next(self.d.slice_us));
    }

    /// The quick path: a clean answer (NOERROR, not truncated, RTT within the server's
    /// threshold) to a server and into a global view that are both calm (every severity
    /// 0, every minimum-sample gate open) within the current epoch, with the RTT baseline
    /// not due for a recomputation. Such an answer cannot change any server or global
    /// severity (it can only lower them, and they are 0), so it is only counted: one RTT
    /// histogram increment and a pending count per view. Exactly what the full path
    /// ([`Scorer::observe_views`]) would do; returns false when it does not apply.
    ///
    /// An NXDOMAIN answer in the same conditions takes it too: it can only raise the
    /// NXDOMAIN detector, which is then computed alone (and the view leaves the quick
    /// path if it is raised). Returns whether a severity changed, or `None` when the
    /// quick path does not apply.
    #[inline]
    fn quick(&mut self, obs: &Observation<'_>, now: u64) -> Option<bool> {
        let nx = match obs.outcome {
            Outcome::Response(Rcode::NOERROR) => false,
            Outcome::Response(Rcode::NXDOMAIN) => {
                if self.lean_nx(obs, now) {
                    return Some(false);
                }
                true
            }
            _ => return None,
        };
        let si = self.find_server(obs.server)?;
        if self.servers.get(si)?.fast_epoch != self.epoch && !self.slide_server(si, now) {
            return None;
        }
        if self.global_fast != self.epoch && !self.slide_global(now) {
            return None;
        }
        // The mark is this epoch's (`slide_server` returns true only after setting it).
        let server = self.servers.get_mut(si)?;
        if !server.rtt.fresh() && !self.quick_refresh(si) {
            return None;
        }
        if obs.rtt_us > self.servers.get(si)?.fast_rtt_max && !(LEAN && !nx && self.quick_spike(si))
        {
            return None;
        }
        let (cfg, d) = (&self.cfg, &self.d);
        let server = self.servers.get_mut(si)?;
        server.rtt.add(obs.rtt_us);
        let quota = server.rtt.quota;
        let moved = server
            .c
            .quick_answer(cfg, d, quota, &mut server.sev, &mut server.raised, nx);
        let global_moved = self.global.quick_answer(
            cfg,
            d,
            self.global_quota,
            &mut self.global_sev,
            &mut self.global_raised,
            nx,
        );
        if nx {
            // An NXDOMAIN answer can end the clearance that let a view with a closed
            // gate in (see `Counters::quick_ok`).
            if let Some(server) = self.servers.get_mut(si)
                && !(server.c.nx_clear || server.c.gates_open(d))
            {
                server.fast_epoch = 0;
            }
            if !(self.global.nx_clear || self.global.gates_open(d)) {
                self.global_fast = 0;
            }
        }
        if moved && let Some(sev) = self.servers.get(si).map(|s| s.sev) {
            self.update_server_best(si, &sev);
        }
        if let Some(l) = self.server_last.get_mut(si) {
            *l = now;
        }
        self.tc_answer(obs, false, now);
        Some(moved || global_moved)
    }

    /// A spike (an RTT above the server's threshold, or at the ceiling) in a NOERROR
    /// answer for the quick path (see [`Scorer::quick`]), when the server's and the
    /// global view are calm and the spike leaves both RTT severities at 0: with `b`
    /// spikes among the newest `burst_window` answers before it and `q` the view's
    /// quota (at least `rtt_confirm`), the severity after it stays 0 while
    /// `b + 1 + 2 <= q`, which is also when the full path counts the sample into the
    /// baseline (not "raising"). Pushes the spike into both views' spike histories
    /// (the item the pending answer takes) and returns true; the caller counts the
    /// answer as any other (RTT sample, pending counts). Returns false, having changed
    /// nothing, when it does not apply. Native only ([`LEAN`]).
    #[inline(never)]
    fn quick_spike(&mut self, si: usize) -> bool {
        let (cfg, d) = (&self.cfg, &self.d);
        let Some(server) = self.servers.get_mut(si) else {
            return false;
        };
        let calm = |c: &Counters, quota: u8| {
            burst(c.rtt_bits(), d.burst_mask) + 3 <= u32::from(quota.max(cfg.rtt_confirm))
        };
        if server.raised != 0
            || self.global_raised != 0
            || !calm(&server.c, server.rtt.quota)
            || !calm(&self.global, self.global_quota)
        {
            return false;
        }
        for c in [&mut server.c, &mut self.global] {
            let item = c.at(c.seq_ans);
            c.rtt.one(item);
        }
        true
    }

    /// A new epoch for a calm server view without a full pass: when nothing in its
    /// window but NXDOMAIN answers can raise a detector as old buckets leave
    /// ([`Counters::slide_safe`]) and its RTT slice is current and the baseline fresh,
    /// the window slides here and only the NXDOMAIN detector is recomputed. Returns
    /// whether the server may take the quick path now. The state is complete either
    /// way (severities stored, best trackers updated, the score marked for fusion), so
    /// the full path can take the observation after a `false`.
    #[inline(always)]
    fn slide_server(&mut self, si: usize, now: u64) -> bool {
        if LEAN && self.slide_calm(si, now) {
            return true;
        }
        self.slide_server_full(si, now)
    }

    /// [`Scorer::slide_server`]'s most common case, without calls: a calm,
    /// [`Counters::slide_safe`] server (its RTT slice current, the baseline fresh) whose
    /// window moves one bucket ([`Window::one_step`]), with the window's NXDOMAIN share
    /// below `lo − 0.01` after it (so the severities stay 0 and the clearance holds, as
    /// in [`Counters::quick_slide`]) and every minimum-sample gate open or the
    /// clearance kept (so that [`Counters::quick_ok`] holds without a look). Slides, caps the NXDOMAIN slack and
    /// marks the server exactly as `quick_slide` and [`Server::mark_quick`] do, and
    /// returns true; returns false, having changed nothing, when it does not apply.
    #[inline(always)]
    fn slide_calm(&mut self, si: usize, now: u64) -> bool {
        let (cfg, d, epoch) = (&self.cfg, &self.d, self.epoch);
        let Some(server) = self.servers.get_mut(si) else {
            return false;
        };
        let c = &mut server.c;
        if server.raised != 0
            || !server.rtt.fresh()
            || now >= server.rtt.next_us()
            || cfg.rtt_ceiling_us == 0
            || !c.slide_safe()
            || !c.win.one_step(now, d.bucket_us)
        {
            return false;
        }
        // After the flush and the step, without changing anything yet.
        let next = c.win.next_bucket();
        let left = |e: Ev| next.get(e as usize).copied().unwrap_or(0);
        let pending = c.pending as u32;
        let total = c
            .win
            .sum(Ev::Total)
            .wrapping_add(pending)
            .wrapping_sub(left(Ev::Total));
        let responses = c
            .win
            .sum(Ev::Responses)
            .wrapping_add(pending)
            .wrapping_sub(left(Ev::Responses));
        let x = c.win.sum(Ev::Nxdomain).wrapping_sub(left(Ev::Nxdomain)) as f32;
        let Some(slack) = d.window_slack(x, responses as f32) else {
            return false;
        };
        // `quick_ok` after the slide: the gates open, or the clearance (which the
        // slide keeps) with the window slide-safe (checked).
        if !(c.nx_clear || (total > d.gate_total && responses > d.gate_responses)) {
            return false;
        }
        c.flush();
        c.win.step(d.bucket_us);
        c.nx_slack = c.nx_slack.min(slack);
        server.fast_epoch = epoch;
        server.fast_rtt_max = server.quick_rtt_max(cfg);
        true
    }

    /// [`Scorer::slide_server`] beyond [`Scorer::slide_calm`].
    #[inline(never)]
    fn slide_server_full(&mut self, si: usize, now: u64) -> bool {
        let (cfg, d, epoch) = (&self.cfg, &self.d, self.epoch);
        let Some(server) = self.servers.get_mut(si) else {
            return false;
        };
        // A new RTT slice for a calm, slide-safe, warm server: the slice rotation and
        // the baseline recomputation the full path does first (`RttSketch::advance`,
        // then `refresh`), kept when the spike quota stays the same (as in
        // `quick_refresh`: then no severity reads anything that moved, and the global
        // quota, the largest server quota, stays). With a new quota the full path
        // takes the observation and recomputes the baseline (the rotation done here is
        // the one it would do, and leaves the recomputation due).
        if LEAN
            && now >= server.rtt.next_us()
            && server.raised == 0
            && server.rtt.threshold_us != 0
            && cfg.rtt_ceiling_us != 0
            && server.c.slide_safe()
        {
            server.rtt.advance(now, d.slice_us);
            if !server.rtt.refresh_same_quota(&d.rtt) {
                return false;
            }
        }
        if !server.rtt.fresh() || now >= server.rtt.next_us() || cfg.rtt_ceiling_us == 0 {
            return false;
        }
        if server.raised != 0 || !server.c.slide_safe() {
            return LEAN && self.slide_server_raised(si, now);
        }
        let nx = server.c.quick_slide(now, cfg, d);
        if nx > 0.0 {
            let sev = [0.0, 0.0, nx, 0.0, 0.0, 0.0];
            server.sev = sev;
            server.raised = 1 << Detector::Nxdomain.index();
            server.fast_epoch = 0;
            self.update_server_best(si, &sev);
            self.dirty = true;
            return false;
        }
        server.mark_quick(cfg, d, epoch)
    }

    /// [`Scorer::slide_server`] for a server that is raised or not
    /// [`Counters::slide_safe`] (its RTT slice current, the baseline fresh):
    /// [`Counters::slide_raised`], the severities and best trackers kept, and the mark
    /// as the full path would set it. Native only ([`LEAN`]): the filter leaves these to
    /// the full path.
    #[inline(never)]
    fn slide_server_raised(&mut self, si: usize, now: u64) -> bool {
        let (cfg, d) = (&self.cfg, &self.d);
        let Some(server) = self.servers.get_mut(si) else {
            return false;
        };
        let sev = server
            .c
            .slide_raised(now, cfg, d, server.rtt.quota, &server.sev);
        if sev != server.sev {
            server.sev = sev;
            server.raised = raised_mask(&sev);
            self.update_server_best(si, &sev);
            self.dirty = true;
        }
        let (cfg, d, epoch) = (&self.cfg, &self.d, self.epoch);
        let Some(server) = self.servers.get_mut(si) else {
            return false;
        };
        server.mark_quick(cfg, d, epoch)
    }

    /// The RTT baseline recomputation that is due every 256 samples, within the quick
    /// path: stored when the spike quota stays the same (then no severity can move: they
    /// read the spike history and the quota, and the global quota is unchanged); a new
    /// quota leaves it to the full path. Returns whether the quick path may go on.
    #[inline(never)]
    fn quick_refresh(&mut self, si: usize) -> bool {
        let (cfg, p) = (&self.cfg, &self.d.rtt);
        let Some(server) = self.servers.get_mut(si) else {
            return false;
        };
        if server.rtt.threshold_us == 0 || !server.rtt.refresh_same_quota(p) {
            return false;
        }
        server.fast_rtt_max = server.quick_rtt_max(cfg);
        true
    }

    /// [`Scorer::slide_server`] for the global view.
    #[inline(never)]
    fn slide_global(&mut self, now: u64) -> bool {
        if self.global_raised != 0 || !self.global.slide_safe() {
            if !LEAN {
                return false;
            }
            // As `slide_server_raised` (the global quota is the one of the last full
            // pass: a new server quota goes through the full path).
            let (cfg, d) = (&self.cfg, &self.d);
            let sev = self
                .global
                .slide_raised(now, cfg, d, self.global_quota, &self.global_sev);
            if sev != self.global_sev {
                self.global_sev = sev;
                self.global_raised = raised_mask(&sev);
                self.dirty = true;
            }
        } else {
            let nx = self.global.quick_slide(now, &self.cfg, &self.d);
            if nx > 0.0 {
                self.global_sev = [0.0, 0.0, nx, 0.0, 0.0, 0.0];
                self.global_raised = 1 << Detector::Nxdomain.index();
                self.global_fast = 0;
                self.dirty = true;
                return false;
            }
        }
        let ok = self.global.quick_ok(&self.cfg, &self.d);
        self.global_fast = if ok { self.epoch } else { 0 };
        ok
    }

    /// Everything an observation does to its server's view and the global view; returns
    /// whether a severity changed. Ends by marking which views the quick path may take
    /// for the rest of the epoch.
    #[inline(never)]
    fn observe_views(&mut self, obs: &Observation<'_>, now: u64) -> bool {
        let answered = matches!(
            obs.outcome,
            Outcome::Response(_)
                | Outcome::Truncated(Fallback::NotAttempted | Fallback::Answered(_))
        );

        // A clean answer (NOERROR, no spike) can only lower every severity, unless the
        // window dropped old buckets or the spike quota moved: when all severities of a
        // view are already 0 they stay 0, and the work is skipped. Any other observation
        // likewise can raise only the detectors its step counts for (`Step::rises`).
        let clean = obs.outcome == Outcome::Response(Rcode::NOERROR);
        let mut step = if clean {
            Step::CLEAN
        } else {
            Step::of(&obs.outcome)
        };
        let tc = match obs.outcome {
            Outcome::Truncated(_) => Some(true),
            Outcome::Response(_) => Some(false),
            _ => None,
        };
        if let Some(tc) = tc
            && self.tc_answer(obs, tc, now)
        {
            step.bits |= Step::TCNEW;
            step.events |= 1 << Ev::Truncated as u16;
        }
        let mut refreshed = false;
        let mut changed = false;
        if let Some(si) = self.server_slot(obs.server, now) {
            let cfg = &self.cfg;
            let d = &self.d;
            let mut update = None;
            if let Some(server) = self.servers.get_mut(si) {
                if answered {
                    let rtt = &mut server.rtt;
                    let rotated = rtt.advance(now, d.slice_us);
                    refreshed = rtt.refresh_due(rotated) && rtt.refresh(&d.rtt, rotated);
                    let thr = rtt.threshold_us;
                    let s = obs.rtt_us >= cfg.rtt_ceiling_us || (thr != 0 && obs.rtt_us > thr);
                    // A spike that raises (or keeps raised) the detector is part of a
                    // fault, not of the baseline: kept out so that a repeated fault is
                    // detected again (a lasting shift is learned once the old baseline
                    // has expired and the warm-up starts over).
                    let raising = s && {
                        let q = u32::from(rtt.quota.max(cfg.rtt_confirm));
                        burst(server.c.rtt_bits(), d.burst_mask) + 3 > q
                    };
                    if !raising {
                        rtt.add(obs.rtt_us);
                    }
                    step.bits |= Step::ANSWERED | if s { Step::SPIKE } else { 0 };
                }
                let rotated = server.c.record(step, now, d);
                let steady = !rotated && !refreshed;
                let sev =
                    server
                        .c
                        .after(cfg, d, server.rtt.quota, &server.sev, steady, step.rises());
                if let Some(sev) = sev
                    && sev != server.sev
                {
                    server.sev = sev;
                    server.raised = raised_mask(&sev);
                    update = Some(sev);
                }
            }
            if let Some(sev) = update {
                self.update_server_best(si, &sev);
                changed = true;
            }
            let (epoch, ceiling) = (self.epoch, self.cfg.rtt_ceiling_us);
            if let Some(server) = self.servers.get_mut(si) {
                let rtt = &server.rtt;
                let quick = now < server.c.win.next_us()
                    && now < rtt.next_us()
                    && rtt.threshold_us != 0
                    && ceiling != 0
                    && server.c.quick_ok(&self.cfg, &self.d);
                server.fast_epoch = if quick { epoch } else { 0 };
                server.fast_rtt_max = rtt.threshold_us.min(ceiling.saturating_sub(1));
            }
        }
        if refreshed {
            self.refresh_global_quota();
        }
        let (cfg, d) = (&self.cfg, &self.d);
        let g = &mut self.global;
        let rotated = g.record(step, now, d);
        let steady = !rotated && !refreshed;
        let sev = g.after(
            cfg,
            d,
            self.global_quota,
            &self.global_sev,
            steady,
            step.rises(),
        );
        if let Some(sev) = sev
            && sev != self.global_sev
        {
            self.global_sev = sev;
            self.global_raised = raised_mask(&sev);
            changed = true;
        }
        let g = &mut self.global;
        let quick = now < g.win.next_us() && g.quick_ok(&self.cfg, &self.d);
        self.global_fast = if quick { self.epoch } else { 0 };
        changed
    }

    /// Advances time without an observation: slides every window, retires stale servers
    /// and targets, completes drift grace periods, and lets the verdict step down. Call it
    /// periodically (e.g. every second); O(S + T).
    pub fn evaluate(&mut self, now_us: u64) -> Assessment {
        let now = self.tick(now_us);
        // Windows slide and severities move here: every quick-path mark is void.
        self.epoch = self.epoch.wrapping_add(1);
        let cfg = &self.cfg;
        let d = &self.d;
        self.global.flush();
        self.global.win.advance(now, d.bucket_us);
        self.global.nx_reset();
        for ((server, &used), &last) in self
            .servers
            .iter_mut()
            .zip(self.server_used.iter())
            .zip(self.server_last.iter())
        {
            if !used {
                continue;
            }
            server.c.flush();
            server.c.win.advance(now, d.bucket_us);
            server.c.nx_reset();
            if server.rtt.advance(now, d.slice_us) {
                server.rtt.refresh(&d.rtt, true);
            }
            if now.saturating_sub(last) >= cfg.stale_after_us {
                server.sev = [0.0; SERVER_DETECTORS];
            } else {
                server.sev = server.c.severities(cfg, server.rtt.quota);
            }
            server.raised = raised_mask(&server.sev);
        }
        for ((t, &used), &last) in self
            .targets
            .iter_mut()
            .zip(self.target_used.iter())
            .zip(self.target_last.iter())
        {
            if !used {
                continue;
            }
            if now.saturating_sub(last) >= cfg.stale_after_us {
                t.clear_severities();
            } else {
                t.drift_refresh(now, cfg);
            }
        }
        self.refresh_global_quota();
        self.global_sev = if now.saturating_sub(self.global_last) >= self.cfg.stale_after_us {
            // Nothing observed for a while: old bursts say nothing about now.
            [0.0; SERVER_DETECTORS]
        } else {
            self.global.severities(&self.cfg, self.global_quota)
        };
        self.global_raised = raised_mask(&self.global_sev);
        for i in 0..SERVER_DETECTORS {
            self.rescan_server(i);
        }
        for i in 0..TARGET_DETECTORS {
            self.rescan_target(i);
        }
        self.fuse(now)
    }

    /// The global spike quota: the largest per-server quota (the noisiest baseline
    /// decides, so independent outliers from several servers cannot add up to an alarm).
    fn refresh_global_quota(&mut self) {
        let mut q = self.cfg.rtt_confirm;
        for (s, &u) in self.servers.iter().zip(self.server_used.iter()) {
            if u && s.rtt.quota > q {
                q = s.rtt.quota;
            }
        }
        self.global_quota = q;
    }

    /// Sets the expected answer members of `target` (at most 64 member hashes, e.g.
    /// [`member_hash_ip`](super::member_hash_ip) of the EndpointSlice ready addresses;
    /// order and duplicates do not matter). Setting the same set again keeps the settle
    /// timer; a different set restarts it.
    pub fn expect_members(
        &mut self,
        target: u32,
        now_us: u64,
        members: &[u64],
    ) -> Result<(), CapacityError> {
        if members.len() > super::target::MAX_EXPECTED {
            return Err(CapacityError::TooManyMembers);
        }
        let now = self.tick(now_us);
        let ti = self.pin_target(target, now)?;
        match self
            .targets
            .get_mut(ti)
            .map(|t| t.set_members(members, now))
        {
            Some(SetMembers::TooMany) => Err(CapacityError::TooManyMembers),
            _ => Ok(()),
        }
    }

    /// Sets the expected answer-set fingerprint ([`set_fingerprint`](super::set_fingerprint)
    /// of the member hashes) and, if known, the record count, for sets larger than 64.
    pub fn expect_fingerprint(
        &mut self,
        target: u32,
        now_us: u64,
        fingerprint: u64,
        count: Option<u16>,
    ) -> Result<(), CapacityError> {
        let now = self.tick(now_us);
        let ti = self.pin_target(target, now)?;
        if let Some(t) = self.targets.get_mut(ti) {
            t.set_fingerprint(fingerprint, count, now);
        }
        Ok(())
    }

    /// Sets the name the CNAME chain must end at (an ExternalName service), as a
    /// [`wire::Name::fingerprint`](crate::wire::Name::fingerprint).
    pub fn expect_final_name(
        &mut self,
        target: u32,
        now_us: u64,
        name_fingerprint: u64,
    ) -> Result<(), CapacityError> {
        let now = self.tick(now_us);
        let ti = self.pin_target(target, now)?;
        if let Some(t) = self.targets.get_mut(ti) {
            t.set_final_name(Some(name_fingerprint), now);
        }
        Ok(())
    }

    /// Drops everything known about `target` (expectation and statistics) and frees its
    /// slot. Returns whether it was tracked.
    pub fn forget_target(&mut self, target: u32) -> bool {
        let Some(ti) = self.find_target(target) else {
            return false;
        };
        if let (Some(u), Some(k), Some(t)) = (
            self.target_used.get_mut(ti),
            self.target_keys.get_mut(ti),
            self.targets.get_mut(ti),
        ) {
            *u = false;
            *k = FREE;
            *t = Target::EMPTY;
        }
        self.rebuild_target_filter();
        for i in 0..TARGET_DETECTORS {
            self.rescan_target(i);
        }
        self.fuse_score();
        true
    }

    /// Drops everything known about `server` and frees its slot (e.g. the pod is gone).
    /// Returns whether it was tracked.
    pub fn forget_server(&mut self, server: u32) -> bool {
        let Some(si) = self.find_server(server) else {
            return false;
        };
        if let (Some(u), Some(k), Some(s)) = (
            self.server_used.get_mut(si),
            self.server_keys.get_mut(si),
            self.servers.get_mut(si),
        ) {
            *u = false;
            *k = FREE;
            *s = Server::EMPTY;
        }
        for i in 0..SERVER_DETECTORS {
            self.rescan_server(i);
        }
        self.fuse_score();
        true
    }

    /// The per-server view of `server`, if tracked.
    pub fn server_health(&self, server: u32) -> Option<ServerHealth> {
        let si = self.find_server(server)?;
        let s = self.servers.get(si)?;
        let last = self.server_last.get(si).copied().unwrap_or(0);
        let mut severities = [0.0; Detector::COUNT];
        let mut keep = 1.0f32;
        for ((out, &sev), w) in severities
            .iter_mut()
            .zip(s.sev.iter())
            .zip(self.d.weights.iter())
        {
            *out = clamp01(sev);
            keep *= 1.0 - w * *out;
        }
        Some(ServerHealth {
            server,
            last_seen_us: last,
            score: clamp01(1.0 - keep),
            severities,
            stale: self.now.saturating_sub(last) >= self.cfg.stale_after_us,
        })
    }

    /// Keys of the tracked servers (in slot order).
    pub fn servers(&self) -> impl Iterator<Item = u32> + '_ {
        self.server_keys
            .iter()
            .filter(|k| **k != FREE)
            .map(|k| *k as u32)
    }

    /// The raised detectors with their causes and the server or target concerned, most
    /// weighted first. O(S) (the SERVFAIL source entropy); call it when the verdict
    /// changes or for a periodic log, not per observation.
    pub fn reasons(&self) -> Reasons {
        let mut out = Reasons::new();
        let cfg = &self.cfg;
        let g = self.global.settled().assess(cfg, self.global_quota);
        for (i, (det, gc)) in Detector::ALL.iter().zip(g.iter()).enumerate() {
            let best = self.server_best.get(i).copied().unwrap_or_default();
            let overall = if gc.sev > best.v { gc.sev } else { best.v };
            if overall.is_nan() || overall <= 0.0 {
                continue;
            }
            let mut reason = Reason {
                detector: *det,
                cause: gc.cause,
                severity: clamp01(overall),
                weighted: clamp01(overall * weight(&self.d, i)),
                server: None,
                target: None,
                evidence: gc.evidence,
            };
            if best.v > gc.sev
                && let Some(server) = self.servers.get(best.i)
            {
                let comps = server.c.settled().assess(cfg, server.rtt.quota);
                if let Some(c) = comps.get(i) {
                    reason.cause = c.cause;
                    reason.evidence = c.evidence;
                }
                reason.server = self.server_keys.get(best.i).map(|k| *k as u32);
                if *det == Detector::Rtt {
                    reason.evidence = Evidence::Rtt {
                        median_us: server.rtt.median_us,
                        threshold_us: server.rtt.threshold_us,
                    };
                }
            }
            if *det == Detector::Servfail {
                self.servfail_attribution(&mut reason);
            }
            out.push(reason);
        }
        for (i, det) in [Detector::Drift, Detector::RoundRobin].iter().enumerate() {
            let best = self.target_best.get(i).copied().unwrap_or_default();
            if best.v.is_nan() || best.v <= 0.0 {
                continue;
            }
            let Some(t) = self.targets.get(best.i) else {
                continue;
            };
            let (cause, evidence) = if i == 0 {
                t.drift_reason()
            } else {
                t.rr_reason()
            };
            out.push(Reason {
                detector: *det,
                cause,
                severity: clamp01(best.v),
                weighted: clamp01(best.v * weight(&self.d, SERVER_DETECTORS + i)),
                server: None,
                target: self.target_keys.get(best.i).map(|k| *k as u32),
                evidence,
            });
        }
        out
    }

    /// Shannon entropy (bits) of the SERVFAIL sources in the rate window, and the number
    /// of servers with responses in it.
    pub fn servfail_entropy(&self) -> (f32, u16) {
        let fresh = self.fresh_servers();
        let bits = entropy_bits(fresh.clone().map(|s| s.c.win.sum(Ev::Servfail)));
        let seen = fresh.filter(|s| s.c.responses() > 0).count();
        (bits, u16::try_from(seen).unwrap_or(u16::MAX))
    }

    fn fresh_servers(&self) -> impl Iterator<Item = &Server> + Clone + '_ {
        let now = self.now;
        let stale = self.cfg.stale_after_us;
        self.servers
            .iter()
            .zip(self.server_used.iter().zip(self.server_last.iter()))
            .filter(move |(_, (u, l))| **u && now.saturating_sub(**l) < stale)
            .map(|(s, _)| s)
    }

    fn servfail_attribution(&self, reason: &mut Reason) {
        let (bits, seen) = self.servfail_entropy();
        let normalised = if seen >= 2 {
            bits / log2(f32::from(seen))
        } else {
            0.0
        };
        // The server with the most SERVFAILs in the window (ties: the first slot).
        let mut top: Option<(u32, u32)> = None;
        for ((s, &u), &k) in self
            .servers
            .iter()
            .zip(self.server_used.iter())
            .zip(self.server_keys.iter())
        {
            let n = s.c.win.sum(Ev::Servfail);
            if u && n > 0 && top.is_none_or(|(_, m)| n > m) {
                top = Some((k as u32, n));
            }
        }
        reason.evidence = Evidence::Entropy {
            bits,
            servers: seen,
        };
        match top {
            Some((key, _)) if normalised < self.cfg.servfail_concentrated_entropy => {
                reason.cause = Cause::ServfailConcentrated;
                reason.server = Some(key);
            }
            _ => {
                reason.cause = Cause::ServfailSpread;
                reason.server = None;
            }
        }
    }

    /// The new-truncation rule's per-pair memory, fed with an answer (`tc`: whether it
    /// was truncated): whether this is a TC answer from a server/target pair whose last
    /// `tc_new_after` answers (or more) came without TC, within `tc_new_hold_us` of the
    /// start of its TC run.
    #[inline]
    fn tc_answer(&mut self, obs: &Observation<'_>, tc: bool, now: u64) -> bool {
        let Some(e) = tc_entry(&mut self.tc, obs) else {
            return false;
        };
        if !tc {
            e.clean = e.clean.saturating_add(1);
            e.in_run = false;
            return false;
        }
        if !e.in_run {
            e.in_run = true;
            e.run_since_us = now;
        }
        if e.clean < self.cfg.tc_new_after {
            return false;
        }
        if now.saturating_sub(e.run_since_us) >= self.cfg.tc_new_hold_us {
            // Truncated for long enough: the pair's new normal.
            e.clean = 0;
            return false;
        }
        true
    }

    /// [`Scorer::tc_answer`] for an answer without TC, inline for the lean path.
    #[inline(always)]
    fn tc_clean(&mut self, obs: &Observation<'_>) {
        if let Some(e) = tc_entry(&mut self.tc, obs) {
            // A branch rather than `saturating_add`'s select: a steady pair sits at the
            // cap, where the branch is predictable and the store is skipped.
            #[allow(clippy::implicit_saturating_add)]
            if e.clean != u8::MAX {
                e.clean += 1;
            }
            e.in_run = false;
        }
    }

    /// Moves the clock forward (never back).
    #[inline]
    fn tick(&mut self, at_us: u64) -> u64 {
        if at_us > self.now {
            self.now = at_us;
        }
        self.now
    }

    /// Recomputes the score and steps the verdict.
    fn fuse(&mut self, now: u64) -> Assessment {
        self.fuse_score();
        self.step(now)
    }

    fn step(&mut self, now: u64) -> Assessment {
        let change = if now >= self.step_due {
            self.step_verdict(now)
        } else {
            None
        };
        Assessment {
            score: self.score,
            verdict: self.verdict.verdict,
            change,
        }
    }

    /// Steps the verdict (see [`Scorer::step_due`]), keeping the latest change.
    #[inline]
    fn step_verdict(&mut self, now: u64) -> Option<VerdictChange> {
        let change = self.verdict.step(self.score, now, &self.cfg);
        if change.is_some() {
            self.last_change = change;
        }
        self.step_due = self.verdict.due(self.score, &self.cfg);
        change
    }

    #[inline]
    fn fuse_score(&mut self) {
        let mut keep = 1.0f32;
        let (server_w, target_w) = self.d.weights.split_at(SERVER_DETECTORS);
        for ((w, g), b) in server_w
            .iter()
            .zip(self.global_sev.iter())
            .zip(self.server_best.iter())
        {
            keep *= 1.0 - w * if *g > b.v { *g } else { b.v };
        }
        for (w, b) in target_w.iter().zip(self.target_best.iter()) {
            keep *= 1.0 - w * b.v;
        }
        let score = clamp01(1.0 - keep);
        self.dirty = false;
        if score != self.score {
            self.score = score;
            self.step_due =
                if self.verdict.verdict != Verdict::Ok || score >= self.cfg.degraded_enter {
                    0
                } else {
                    u64::MAX
                };
        }
    }

    /// The slot of `key`: its home slot (see [`home_slot`]) first, else a scan.
    #[inline]
    fn find_server(&self, key: u32) -> Option<usize> {
        let h = home_slot::<S>(key);
        let key = u64::from(key);
        if self.server_keys.get(h) == Some(&key) {
            return Some(h);
        }
        self.server_keys.iter().position(|k| *k == key)
    }

    /// The slot of `key`, taking a free one or evicting the least recently observed.
    #[inline]
    fn server_slot(&mut self, key: u32, now: u64) -> Option<usize> {
        let si = match self.find_server(key) {
            Some(i) => i,
            None => {
                let h = home_slot::<S>(key);
                let free = |i: usize| self.server_used.get(i).is_some_and(|u| !*u);
                let i = match (0..S).find(|&i| free(i)) {
                    // The home slot when it is free: found without a scan later.
                    Some(_) if free(h) => h,
                    Some(i) => i,
                    None => {
                        self.evictions = self.evictions.saturating_add(1);
                        lru(&self.server_last, |_| true)?
                    }
                };
                if let (Some(k), Some(u), Some(s)) = (
                    self.server_keys.get_mut(i),
                    self.server_used.get_mut(i),
                    self.servers.get_mut(i),
                ) {
                    *k = u64::from(key);
                    *u = true;
                    *s = Server::EMPTY;
                }
                self.server_span = self.server_span.max(i + 1);
                for d in 0..SERVER_DETECTORS {
                    if self.server_best.get(d).is_some_and(|b| b.i == i) {
                        self.rescan_server(d);
                    }
                }
                i
            }
        };
        if let Some(l) = self.server_last.get_mut(si) {
            *l = now;
        }
        Some(si)
    }

    #[inline]
    fn find_target(&self, key: u32) -> Option<usize> {
        let (word, bit) = filter_bit(key);
        if self.target_filter.get(word).is_none_or(|w| w & bit == 0) {
            return None;
        }
        let key = u64::from(key);
        self.target_keys.iter().position(|k| *k == key)
    }

    /// The slot of the observation's target: existing, or new if the target needs one.
    #[inline]
    fn target_slot(&mut self, obs: &Observation<'_>, now: u64) -> Option<usize> {
        let ti = match self.find_target(obs.target) {
            Some(i) => i,
            None if Target::wants_slot(obs) => match self.new_target_slot(obs.target) {
                Some(i) => i,
                None => {
                    self.untracked_targets = self.untracked_targets.saturating_add(1);
                    return None;
                }
            },
            None => return None,
        };
        if let Some(l) = self.target_last.get_mut(ti) {
            *l = now;
        }
        Some(ti)
    }

    /// A free slot, or the least recently observed unpinned one (reset).
    fn new_target_slot(&mut self, key: u32) -> Option<usize> {
        let i = match self.target_used.iter().position(|u| !*u) {
            Some(i) => i,
            None => {
                let targets = &self.targets;
                lru(&self.target_last, |i| {
                    targets.get(i).is_some_and(|t| !t.exp.is_set())
                })?
            }
        };
        if let (Some(k), Some(u), Some(t)) = (
            self.target_keys.get_mut(i),
            self.target_used.get_mut(i),
            self.targets.get_mut(i),
        ) {
            *k = u64::from(key);
            *u = true;
            *t = Target::EMPTY;
        }
        self.rebuild_target_filter();
        for d in 0..TARGET_DETECTORS {
            if self.target_best.get(d).is_some_and(|b| b.i == i) {
                self.rescan_target(d);
            }
        }
        Some(i)
    }

    fn rebuild_target_filter(&mut self) {
        self.target_filter = [0; 4];
        for &k in &self.target_keys {
            if k != FREE {
                let (word, bit) = filter_bit(k as u32);
                if let Some(w) = self.target_filter.get_mut(word) {
                    *w |= bit;
                }
            }
        }
    }

    fn pin_target(&mut self, key: u32, now: u64) -> Result<usize, CapacityError> {
        let ti = match self.find_target(key) {
            Some(i) => i,
            None => self
                .new_target_slot(key)
                .ok_or(CapacityError::TargetsFull)?,
        };
        if let Some(l) = self.target_last.get_mut(ti) {
            *l = now;
        }
        Ok(ti)
    }

    #[inline]
    fn update_server_best(&mut self, si: usize, sev: &[f32; SERVER_DETECTORS]) {
        for (d, &v) in sev.iter().enumerate() {
            let Some(b) = self.server_best.get_mut(d) else {
                continue;
            };
            if v >= b.v {
                *b = Best { v, i: si };
            } else if b.i == si {
                self.rescan_server(d);
            }
        }
    }

    fn rescan_server(&mut self, d: usize) {
        self.dirty = true;
        let mut best = Best::default();
        let span = self.server_span.min(S);
        let (Some(servers), Some(used)) = (self.servers.get(..span), self.server_used.get(..span))
        else {
            return;
        };
        for (i, (s, &u)) in servers.iter().zip(used.iter()).enumerate() {
            let v = s.sev.get(d).copied().unwrap_or(0.0);
            if u && v > best.v {
                best = Best { v, i };
            }
        }
        if let Some(b) = self.server_best.get_mut(d) {
            *b = best;
        }
    }

    #[inline]
    fn update_target_best(&mut self, ti: usize, sev: &[f32; TARGET_DETECTORS]) {
        for (d, &v) in sev.iter().enumerate() {
            let Some(b) = self.target_best.get_mut(d) else {
                continue;
            };
            if v >= b.v {
                *b = Best { v, i: ti };
            } else if b.i == ti {
                self.rescan_target(d);
            }
        }
    }

    fn rescan_target(&mut self, d: usize) {
        self.dirty = true;
        let mut best = Best::default();
        for (i, (t, &u)) in self.targets.iter().zip(self.target_used.iter()).enumerate() {
            let v = t.sev.get(d).copied().unwrap_or(0.0);
            if u && v > best.v {
                best = Best { v, i };
            }
        }
        if let Some(b) = self.target_best.get_mut(d) {
            *b = best;
        }
    }
}

/// The key of a free slot.
const FREE: u64 = u64::MAX;

/// The weight of detector index `i` (from the table in [`Derived`]).
fn weight(d: &Derived, i: usize) -> f32 {
    d.weights.get(i).copied().unwrap_or(0.0)
}

/// Whether [`Scorer::record`] has its lean paths. Not in the wasm filter: there the
/// scorer's code size counts against the module budget (the lean paths are about 870
/// bytes of it) and they measured slower per exchange in the module, not faster; every
/// observation then takes the quick path, which does the same for it.
pub(crate) const LEAN: bool = !cfg!(target_arch = "wasm32");

/// The slot a server key takes when it is free (`key mod S`: the key itself for the
/// small keys a caller numbers its servers with), so that the lookup of the common
/// case is one compare; other keys are found by a scan.
#[inline]
fn home_slot<const S: usize>(key: u32) -> usize {
    (key as usize).checked_rem(S).unwrap_or(0)
}

/// Word and bit of a target key in the presence filter.
#[inline]
fn filter_bit(key: u32) -> (usize, u64) {
    let h = key.wrapping_mul(0x9E37_79B1) >> 24; // 0..=255
    ((h >> 6) as usize, 1u64 << (h & 63))
}

/// Index of the smallest `last` among slots accepted by `ok`.
fn lru(last: &[u64], ok: impl Fn(usize) -> bool) -> Option<usize> {
    let mut best: Option<(usize, u64)> = None;
    for (i, &l) in last.iter().enumerate() {
        if ok(i) && best.is_none_or(|(_, b)| l < b) {
            best = Some((i, l));
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Mismatch;

    /// One xorshift64 step of the tests' deterministic streams.
    fn xorshift(x: &mut u64) {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
    }

    /// Every used server's and the global view's stored severities equal a full
    /// recomputation from their settled counters.
    fn assert_settled<const S: usize, const T: usize>(s: &Scorer<S, T>, i: u32) {
        for (srv, &u) in s.servers.iter().zip(s.server_used.iter()) {
            if u {
                assert_eq!(
                    srv.sev,
                    srv.c.settled().severities(&s.cfg, srv.rtt.quota),
                    "step {i}"
                );
            }
        }
        assert_eq!(
            s.global_sev,
            s.global.settled().severities(&s.cfg, s.global_quota),
            "step {i}"
        );
    }

    /// Feeds 200,000 observations of the stream seeded by `seed` (2–10 ms apart,
    /// servers 0–2, RTTs of 0.9–1.1 ms, the outcome from `outcome(x, i)` for the
    /// stream's state `x` at step `i`) into a fresh scorer, asserting after each that
    /// every stored severity equals a full recomputation.
    fn drive_settled(cfg: ScoreConfig, seed: u64, mut outcome: impl FnMut(u64, u32) -> Outcome) {
        let mut s: Scorer<4, 4> = Scorer::new(cfg).unwrap();
        let mut x = seed;
        let mut now = 0u64;
        for i in 0..200_000u32 {
            xorshift(&mut x);
            now += 2_000 + x % 8_000;
            let server = ((x >> 20) % 3) as u32;
            let rtt = 900 + ((x >> 8) % 200) as u32;
            s.record(&Observation::new(server, 0, now, outcome(x, i)).rtt(rtt));
            assert_settled(&s, i);
        }
    }

    /// The quiet-observation shortcut in `observe` must leave every stored severity equal
    /// to a full recomputation.
    #[test]
    fn skipped_recomputation_is_exact() {
        for cfg in [
            ScoreConfig::default(),
            ScoreConfig {
                loss_min_samples: 3,
                nx_min_samples: 2,
                rate_window_us: 200_000,
                ..ScoreConfig::default()
            },
        ] {
            let mut s: Scorer<4, 4> = Scorer::new(cfg).unwrap();
            let mut x = 0x0DDB_1A5E_5BAD_5EEDu64;
            let mut now = 0u64;
            for i in 0..300_000u32 {
                xorshift(&mut x);
                now += x % 20_000;
                // Mostly clean, with bursts of trouble.
                let outcome = if (i / 500) % 4 == 0 {
                    match x % 6 {
                        0 => Outcome::Response(Rcode::SERVFAIL),
                        1 => Outcome::Response(Rcode::NXDOMAIN),
                        2 => Outcome::Timeout,
                        3 => Outcome::Truncated(Fallback::Failed),
                        4 => Outcome::Mismatch(Mismatch::ID),
                        _ => Outcome::Response(Rcode::NOERROR),
                    }
                } else if x.is_multiple_of(50) {
                    Outcome::Response(Rcode::NXDOMAIN)
                } else {
                    Outcome::Response(Rcode::NOERROR)
                };
                let rtt = if x.is_multiple_of(97) {
                    300_000
                } else {
                    900 + (x % 200) as u32
                };
                let server = ((x >> 20) % 5) as u32;
                s.observe(&Observation::new(server, 0, now, outcome).rtt(rtt));
                assert_settled(&s, i);
                let before = s.score;
                s.fuse_score();
                assert_eq!(before, s.score, "step {i}");
            }
        }
    }

    /// NXDOMAIN shares around the detector's thresholds (the lean path's slack and its
    /// renewal, the quick path's looks): every stored severity equals a full
    /// recomputation after each observation.
    #[test]
    fn nxdomain_slack_is_exact() {
        for cfg in [
            ScoreConfig::default(),
            ScoreConfig {
                nx_min_samples: 8,
                rate_window_us: 300_000,
                ..ScoreConfig::default()
            },
            // The spans off: the window's share alone.
            ScoreConfig {
                nx_min_samples: 100,
                ..ScoreConfig::default()
            },
        ] {
            drive_settled(cfg, 0x5EED_0FA1_15AF_E123, |x, i| {
                // NXDOMAIN shares in steps of 2,000 observations, finer near the
                // detector's lower threshold (75 %).
                const SHARES: [u64; 12] = [0, 50, 70, 72, 73, 74, 75, 76, 78, 80, 90, 100];
                let share = SHARES[(i / 2_000) as usize % SHARES.len()];
                if x % 100 < share {
                    Outcome::Response(Rcode::NXDOMAIN)
                } else {
                    Outcome::Response(Rcode::NOERROR)
                }
            });
        }
    }

    /// Feeds `n` observations (2–10 ms apart, servers 0–3, the outcome and RTT from
    /// `outcome(x, i)`) into a scorer and into a reference fed through the full path
    /// only (`observe_views`), asserting after each that every stored severity equals
    /// a full recomputation and that every severity and the score equal the
    /// reference's.
    fn drive_against_full(
        cfg: ScoreConfig,
        seed: u64,
        n: u32,
        mut outcome: impl FnMut(u64, u32) -> (Outcome, u32),
    ) {
        let mut s: Scorer<4, 4> = Scorer::new(cfg).unwrap();
        let mut full = s.clone();
        let mut x = seed;
        let mut now = 0u64;
        for i in 0..n {
            xorshift(&mut x);
            now += 2_000 + x % 8_000;
            let server = ((x >> 20) % 4) as u32;
            let (outcome, rtt) = outcome(x, i);
            let obs = Observation::new(server, 0, now, outcome).rtt(rtt);
            s.record(&obs);
            assert_settled(&s, i);
            let now = full.tick(obs.at_us);
            if now >= full.fast_until {
                full.next_epoch(now);
            }
            let changed = full.observe_views(&obs, now);
            full.finish::<false>(&obs, now, changed);
            assert_eq!(s.global_sev, full.global_sev, "step {i}");
            for (a, b) in s.servers.iter().zip(full.servers.iter()) {
                assert_eq!(a.sev, b.sev, "step {i}");
            }
            assert_eq!(s.score, full.score, "step {i}");
        }
    }

    /// Calm slides (round 9: `slide_calm`, the window one bucket on, the NXDOMAIN
    /// share below `lo − 0.01`, the gates open or the clearance kept): server views
    /// hold about 64 responses (their gates open and close), NXDOMAIN shares step
    /// around the lower threshold, with the spans on and off. Exact against the full
    /// path (see `drive_against_full`).
    #[test]
    fn calm_slides_are_exact() {
        for cfg in [
            ScoreConfig {
                rate_window_us: 1_500_000,
                ..ScoreConfig::default()
            },
            ScoreConfig {
                rate_window_us: 1_500_000,
                nx_min_samples: 65,
                ..ScoreConfig::default()
            },
            ScoreConfig {
                rate_window_us: 3_000_000,
                nx_min_samples: 65,
                loss_min_samples: 130,
                ..ScoreConfig::default()
            },
        ] {
            drive_against_full(cfg, 0xCA1A_5EED_1DE5_6666, 200_000, |x, i| {
                const SHARES: [u64; 10] = [0, 60, 72, 74, 76, 40, 73, 90, 20, 75];
                let share = SHARES[(i / 1_000) as usize % SHARES.len()];
                let rtt = 900 + ((x >> 8) % 200) as u32;
                if (x >> 12) % 100 < share {
                    (Outcome::Response(Rcode::NXDOMAIN), rtt)
                } else {
                    (Outcome::Response(Rcode::NOERROR), rtt)
                }
            });
        }
    }

    /// New RTT slices for calm servers (round 9: the rotation and the baseline
    /// recomputation in `slide_server_full`, kept when the quota stays): short RTT
    /// windows, RTT levels that shift between phases (the thresholds move) and spike
    /// shares that move the quotas, a few NXDOMAIN answers. Exact against the full
    /// path (see `drive_against_full`).
    #[test]
    fn slice_rotations_are_exact() {
        for (window, warmup) in [(600_000, 50), (1_200_000, 20), (6_000_000, 50)] {
            let cfg = ScoreConfig {
                rtt_window_us: window,
                rtt_warmup_samples: warmup,
                rate_window_us: 500_000,
                ..ScoreConfig::default()
            };
            drive_against_full(cfg, 0x5111_CE5E_ED0F_8888, 200_000, |x, i| {
                // Base RTT (µs) and spikes per mille, per phase of 2,500 observations.
                const PHASES: [(u32, u64); 6] = [
                    (1_000, 5),
                    (3_000, 0),
                    (1_000, 60),
                    (800, 20),
                    (20_000, 5),
                    (1_000, 150),
                ];
                let (base, spikes) = PHASES[(i / 2_500) as usize % PHASES.len()];
                let rtt = if (x >> 8) % 1_000 < spikes {
                    base * 20
                } else {
                    base + ((x >> 16) % u64::from(base / 5)) as u32
                };
                if x % 100 < 5 {
                    (Outcome::Response(Rcode::NXDOMAIN), rtt)
                } else {
                    (Outcome::Response(Rcode::NOERROR), rtt)
                }
            });
        }
    }

    /// Spikes into calm views (round 9: `quick_spike` counts them on the quick path
    /// while both RTT severities stay 0): spike shares stepping from rare to bursts,
    /// several quotas and burst windows, a few SERVFAILs so that views are raised at
    /// times. Every stored severity equals a full recomputation after each observation,
    /// and every severity, spike history, RTT threshold and the score equal those of a
    /// scorer that takes every observation through the full path (`observe_views`).
    #[test]
    fn spikes_into_calm_views_are_exact() {
        for (confirm, window) in [(4, 8), (2, 8), (6, 16), (3, 4)] {
            let cfg = ScoreConfig {
                rtt_confirm: confirm,
                burst_window: window,
                ..ScoreConfig::default()
            };
            let mut s: Scorer<4, 4> = Scorer::new(cfg).unwrap();
            let mut full = s.clone();
            let mut x = 0x5B1C_E5EE_D0C0_3333u64;
            let mut now = 0u64;
            for i in 0..150_000u32 {
                xorshift(&mut x);
                now += 2_000 + x % 8_000;
                // Spikes per mille, per phase of 3,000 observations.
                const SHARES: [u64; 6] = [5, 0, 50, 200, 20, 400];
                let server = ((x >> 20) % 3) as u32;
                // Server 0 spikes most and server 2 least: different quotas per view.
                let share =
                    SHARES[(i / 3_000) as usize % SHARES.len()] * [4, 1, 0][server as usize] / 2;
                let rtt = match (x >> 8) % 1_000 {
                    v if v < share / 2 => 20_000,
                    v if v < share => 1_500_000,
                    _ => 900 + ((x >> 24) % 200) as u32,
                };
                let outcome = if x % 1_000 < 3 {
                    Outcome::Response(Rcode::SERVFAIL)
                } else {
                    Outcome::Response(Rcode::NOERROR)
                };
                let obs = Observation::new(server, 0, now, outcome).rtt(rtt);
                s.record(&obs);
                assert_settled(&s, i);
                // The reference: every observation through the full path.
                let now = full.tick(obs.at_us);
                if now >= full.fast_until {
                    full.next_epoch(now);
                }
                let changed = full.observe_views(&obs, now);
                full.finish::<false>(&obs, now, changed);
                assert_eq!(s.global_sev, full.global_sev, "step {i}");
                assert_eq!(
                    s.global.settled().rtt_bits(),
                    full.global.settled().rtt_bits(),
                    "step {i}"
                );
                for (a, b) in s.servers.iter().zip(full.servers.iter()) {
                    assert_eq!(a.sev, b.sev, "step {i}");
                    assert_eq!(
                        a.c.settled().rtt_bits(),
                        b.c.settled().rtt_bits(),
                        "step {i}"
                    );
                    assert_eq!(a.rtt.threshold_us, b.rtt.threshold_us, "step {i}");
                }
                assert_eq!(s.score, full.score, "step {i}");
            }
        }
    }

    /// Views raised by the loss detector alone (round 9: recomputed by
    /// `Counters::loss_severity` without the general pass): timeout shares stepping
    /// across `loss_rate_ok` and `loss_rate_bad`, with runs of timeouts. Every stored
    /// severity equals a full recomputation after each observation.
    #[test]
    fn loss_raised_views_are_exact() {
        for cfg in [
            ScoreConfig::default(),
            ScoreConfig {
                rate_window_us: 500_000,
                loss_consecutive: 2,
                ..ScoreConfig::default()
            },
        ] {
            drive_settled(cfg, 0x1055_0F71_3E0F_2222, |x, i| {
                // Per mille, per phase of 2,000 observations.
                const SHARES: [u64; 8] = [0, 15, 25, 60, 150, 230, 40, 5];
                let share = SHARES[(i / 2_000) as usize % SHARES.len()];
                if x % 1_000 < share || (i % 997 < 3 && (i / 997) % 3 == 0) {
                    Outcome::Timeout
                } else {
                    Outcome::Response(Rcode::NOERROR)
                }
            });
        }
    }

    /// One detector to recompute on the full path (round 10: `Counters::after` with a
    /// single detector raised or rising runs that detector's own function,
    /// `Counters::severity_one`): sparse faults of one class at a time, so that views
    /// hold one raised detector, with RTT spikes; every fault class in turn and, in
    /// between, mixed ones. Every stored severity equals a full recomputation after
    /// each observation, and `severity_one` equals the general pass for every detector.
    #[test]
    fn single_detector_recomputations_are_exact() {
        for cfg in [
            ScoreConfig::default(),
            ScoreConfig {
                rate_window_us: 400_000,
                burst_window: 16,
                tc_new_burst: 2,
                ..ScoreConfig::default()
            },
        ] {
            let mut s: Scorer<4, 4> = Scorer::new(cfg).unwrap();
            let mut x = 0x0E1E_D7EC_7085_1234u64;
            let mut now = 0u64;
            for i in 0..200_000u32 {
                xorshift(&mut x);
                now += 2_000 + x % 8_000;
                let server = ((x >> 20) % 3) as u32;
                let phase = (i / 3_000) % 7;
                let fault = x % 1_000 < 40;
                let class = if phase == 6 {
                    (x >> 30) % 6
                } else {
                    u64::from(phase)
                };
                let outcome = match (fault, class) {
                    (false, _) => Outcome::Response(Rcode::NOERROR),
                    (true, 0) => Outcome::Response(Rcode::SERVFAIL),
                    (true, 1) => Outcome::Timeout,
                    (true, 2) => Outcome::Truncated(Fallback::Failed),
                    (true, 3) => Outcome::Truncated(Fallback::NotAttempted),
                    (true, 4) => Outcome::Mismatch(Mismatch::ID),
                    (true, _) => Outcome::Response(Rcode::NXDOMAIN),
                };
                let rtt = if phase == 5 && fault {
                    200_000
                } else {
                    900 + ((x >> 8) % 200) as u32
                };
                s.record(&Observation::new(server, 0, now, outcome).rtt(rtt));
                assert_settled(&s, i);
                for (srv, &u) in s.servers.iter().zip(s.server_used.iter()) {
                    if !u {
                        continue;
                    }
                    let c = srv.c.settled();
                    let mask = burst_mask(&s.cfg);
                    for d in 0..SERVER_DETECTORS {
                        let general = c.severities_of(&s.cfg, srv.rtt.quota, 1 << d);
                        let one = c.severity_one(&s.cfg, srv.rtt.quota, mask, d as u32);
                        assert_eq!(general.get(d).copied(), Some(one), "step {i}");
                    }
                }
            }
        }
    }

    /// Slides of views with timeouts, SERVFAILs or truncations in their window (round
    /// 10: `Counters::quiet_rates` keeps a detector at 0 without recomputing it while its
    /// share is below `ok − 0.01`): fault shares step around each rate's `ok`
    /// threshold (timeouts and SERVFAILs around 2 %, TC answers around 30 %), with
    /// small windows whose gates open and close. Exact against the full path (see
    /// `drive_against_full`).
    #[test]
    fn quiet_rate_slides_are_exact() {
        for cfg in [
            ScoreConfig::default(),
            ScoreConfig {
                rate_window_us: 600_000,
                loss_min_samples: 40,
                servfail_min_samples: 60,
                tc_min_samples: 30,
                ..ScoreConfig::default()
            },
            ScoreConfig {
                rate_window_us: 1_500_000,
                servfail_burst: 6,
                loss_consecutive: 5,
                tcp_fail_burst: 6,
                ..ScoreConfig::default()
            },
        ] {
            drive_against_full(cfg, 0x51DE_0F2A_7E5A_3333, 150_000, |x, i| {
                // Per mille, per phase of 1,500 observations.
                const LOW: [u64; 8] = [5, 12, 18, 22, 30, 8, 20, 45];
                const TC: [u64; 8] = [200, 280, 295, 305, 320, 250, 300, 400];
                let phase = (i / 1_500) as usize % LOW.len();
                let kind = (i / 12_000) % 4;
                let r = x % 1_000;
                let outcome = match kind {
                    0 if r < LOW[phase] => Outcome::Response(Rcode::SERVFAIL),
                    1 if r < LOW[phase] => Outcome::Timeout,
                    2 if r < TC[phase] => Outcome::Truncated(Fallback::NotAttempted),
                    3 if r < LOW[phase] => match (x >> 40) % 3 {
                        0 => Outcome::Response(Rcode::SERVFAIL),
                        1 => Outcome::Timeout,
                        _ => Outcome::Truncated(Fallback::Failed),
                    },
                    _ => Outcome::Response(Rcode::NOERROR),
                };
                (outcome, 900 + ((x >> 8) % 200) as u32)
            });
        }
    }

    /// Clean answers into views raised by a rate (SERVFAIL, loss) and by a burst (failed
    /// fallbacks, mismatches, RTT spikes) at once (round 10: `Counters::quick_bursts`
    /// takes every raised view with a burst detector, and one moving detector is
    /// recomputed alone): faults in pairs of classes, with NXDOMAIN answers. Exact
    /// against the full path (see `drive_against_full`).
    #[test]
    fn mixed_raised_views_are_exact() {
        for cfg in [
            ScoreConfig::default(),
            ScoreConfig {
                rate_window_us: 700_000,
                burst_window: 16,
                ..ScoreConfig::default()
            },
        ] {
            drive_against_full(cfg, 0x3A1E_D0FF_1CE5_4444, 150_000, |x, i| {
                let phase = (i / 2_500) % 6;
                let r = x % 1_000;
                let rate = if phase % 2 == 0 { 60 } else { 25 };
                let burst = match phase / 2 {
                    0 => Outcome::Truncated(Fallback::Failed),
                    1 => Outcome::Mismatch(Mismatch::ID),
                    _ => Outcome::Response(Rcode::NOERROR),
                };
                let mut rtt = 900 + ((x >> 8) % 200) as u32;
                let outcome = if r < rate {
                    if (x >> 33) % 2 == 0 {
                        Outcome::Response(Rcode::SERVFAIL)
                    } else {
                        Outcome::Timeout
                    }
                } else if r < rate + 20 {
                    if phase / 2 == 2 {
                        rtt = 250_000;
                    }
                    burst
                } else if r < rate + 60 {
                    Outcome::Response(Rcode::NXDOMAIN)
                } else {
                    Outcome::Response(Rcode::NOERROR)
                };
                (outcome, rtt)
            });
        }
    }

    /// NXDOMAIN answers into views raised by bursts (failed TC, mismatches) or by
    /// SERVFAILs (round 9): within the slack they leave the NXDOMAIN severity at 0 and
    /// take the clean answer's paths (`quick_bursts`, the SERVFAIL-only recomputation);
    /// with the slack used up they look at the NXDOMAIN detector (`nx_look`), which
    /// renews it. NXDOMAIN shares step across the thresholds. Every stored severity
    /// equals a full recomputation after each observation.
    #[test]
    fn nxdomain_answers_into_raised_views_are_exact() {
        for cfg in [
            ScoreConfig::default(),
            ScoreConfig {
                rate_window_us: 600_000,
                burst_window: 16,
                ..ScoreConfig::default()
            },
        ] {
            drive_settled(cfg, 0x7E57_0B5E_55ED_9999, |x, i| {
                const SHARES: [u64; 8] = [10, 60, 74, 30, 78, 0, 90, 50];
                let share = SHARES[(i / 2_500) as usize % SHARES.len()];
                match x % 1_000 {
                    0..=14 => Outcome::Truncated(Fallback::Failed),
                    15..=29 => Outcome::Mismatch(Mismatch::ID),
                    30..=49 if (i / 10_000) % 2 == 0 => Outcome::Response(Rcode::SERVFAIL),
                    _ if (x >> 12) % 100 < share => Outcome::Response(Rcode::NXDOMAIN),
                    _ => Outcome::Response(Rcode::NOERROR),
                }
            });
        }
    }

    /// The NXDOMAIN slack kept through raised views (round 9): an NXDOMAIN answer into a
    /// raised view uses one of it, a raised slide (`slide_raised`) and a slide by the
    /// full path (`record_slow`) cap it by what the window allows. With the spans off
    /// (`nx_min_samples` above 64) the slack is the window's alone, and NXDOMAIN shares
    /// that swing between phases of a few hundred observations make slides that drop
    /// clean buckets raise the window's share; SERVFAILs, timeouts and failed TC keep
    /// views raised or not slide-safe. Every stored severity equals a full
    /// recomputation after each observation.
    #[test]
    fn nxdomain_slack_through_raised_views_is_exact() {
        for cfg in [
            ScoreConfig {
                nx_min_samples: 65,
                rate_window_us: 1_000_000,
                ..ScoreConfig::default()
            },
            ScoreConfig {
                nx_min_samples: 65,
                rate_window_us: 2_000_000,
                ..ScoreConfig::default()
            },
            ScoreConfig {
                rate_window_us: 300_000,
                ..ScoreConfig::default()
            },
        ] {
            drive_settled(cfg, 0x0A7C_5EED_2B1D_4444, |x, i| {
                const SHARES: [u64; 10] = [0, 100, 10, 95, 40, 90, 70, 100, 0, 80];
                let share = SHARES[(i / 300) as usize % SHARES.len()];
                match x % 1_000 {
                    0..=39 => Outcome::Response(Rcode::SERVFAIL),
                    40..=59 => Outcome::Timeout,
                    60..=69 => Outcome::Truncated(Fallback::Failed),
                    _ if (x >> 12) % 100 < share => Outcome::Response(Rcode::NXDOMAIN),
                    _ => Outcome::Response(Rcode::NOERROR),
                }
            });
        }
    }

    /// NXDOMAIN shares around the detector's thresholds while SERVFAILs and timeouts
    /// keep views raised or not slide-safe, so that windows slide through
    /// `slide_raised` (where a slide that drops clean buckets raises the NXDOMAIN
    /// share): every stored severity equals a full recomputation after each
    /// observation.
    #[test]
    fn nxdomain_through_raised_slides_is_exact() {
        for cfg in [
            ScoreConfig::default(),
            ScoreConfig {
                rate_window_us: 400_000,
                ..ScoreConfig::default()
            },
        ] {
            drive_settled(cfg, 0x51DE_5EED_0F0F_7777, |x, i| {
                // NXDOMAIN shares in steps of 1,500 observations, alternating low and
                // high so that slides move the window's share across the thresholds.
                const SHARES: [u64; 8] = [0, 95, 60, 90, 74, 100, 50, 85];
                let share = SHARES[(i / 1_500) as usize % SHARES.len()];
                match x % 1_000 {
                    0..=24 => Outcome::Response(Rcode::SERVFAIL),
                    25..=34 => Outcome::Timeout,
                    _ if (x >> 12) % 100 < share => Outcome::Response(Rcode::NXDOMAIN),
                    _ => Outcome::Response(Rcode::NOERROR),
                }
            });
        }
    }

    /// Clean answers into views raised by bursts only (spikes, failed TCP fallbacks,
    /// new truncation, integrity) and by the TC share, where most answers skip the
    /// recomputation: every stored severity equals a full recomputation after each
    /// observation, for burst windows of 3, 8 and 64 and TC rate thresholds at and
    /// near 0.
    #[test]
    fn clean_answers_into_burst_raised_views_are_exact() {
        for (burst_window, tc_rate_ok, tcp_fail_burst) in [
            (8, 0.3, 2),
            (3, 0.0, 1),
            (64, 0.005, 2),
            (64, 0.3, 64),
            (8, 0.05, 8),
        ] {
            let cfg = ScoreConfig {
                burst_window,
                tc_rate_ok,
                tcp_fail_burst,
                servfail_burst: burst_window.min(3),
                integrity_burst: burst_window.min(3),
                tc_new_burst: burst_window.min(2),
                rtt_confirm: burst_window.min(4),
                ..ScoreConfig::default()
            };
            let mut s: Scorer<4, 4> = Scorer::new(cfg).unwrap();
            let mut x = 0xB0B5_7A11_0FFE_12EDu64;
            let mut now = 0u64;
            for i in 0..120_000u32 {
                xorshift(&mut x);
                now += 1_000 + x % 12_000;
                let outcome = match x % 200 {
                    0..=2 => Outcome::Truncated(Fallback::Failed),
                    3 => Outcome::Mismatch(Mismatch::ID),
                    4 => Outcome::Malformed,
                    5 | 6 => Outcome::Truncated(Fallback::Answered(Rcode::NOERROR)),
                    7 => Outcome::Truncated(Fallback::NotAttempted),
                    _ => Outcome::Response(Rcode::NOERROR),
                };
                let rtt = if x % 97 < 2 {
                    40_000
                } else {
                    900 + (x % 200) as u32
                };
                let server = ((x >> 20) % 3) as u32;
                let target = ((x >> 30) % 5) as u32;
                s.record(&Observation::new(server, target, now, outcome).rtt(rtt));
                assert_settled(&s, i);
            }
        }
    }

    /// Every view's raised mask is the mask of its stored severities (the quick and
    /// lean paths read the mask alone), through a stream with every fault class.
    #[test]
    fn raised_masks_match_severities() {
        let mut s: Scorer<4, 4> = Scorer::new(ScoreConfig::default()).unwrap();
        let mut x = 0x0A5C_1157_00FF_1CE5u64;
        let mut now = 0u64;
        for i in 0..200_000u32 {
            xorshift(&mut x);
            now += 2_000 + x % 16_000;
            let outcome = match x % 300 {
                0..=5 => Outcome::Response(Rcode::SERVFAIL),
                6..=8 => Outcome::Timeout,
                9..=10 => Outcome::Truncated(Fallback::Failed),
                11 => Outcome::Mismatch(Mismatch::ID),
                12..=40 => Outcome::Response(Rcode::NXDOMAIN),
                _ => Outcome::Response(Rcode::NOERROR),
            };
            let rtt = if x.is_multiple_of(89) {
                50_000
            } else {
                900 + (x % 200) as u32
            };
            let server = ((x >> 20) % 3) as u32;
            s.record(&Observation::new(server, 0, now, outcome).rtt(rtt));
            for (srv, &u) in s.servers.iter().zip(s.server_used.iter()) {
                if u {
                    assert_eq!(srv.raised, raised_mask(&srv.sev), "step {i}");
                }
            }
            assert_eq!(s.global_raised, raised_mask(&s.global_sev), "step {i}");
        }
    }

    /// A verdict step skipped before [`Scorer::step_due`] would have changed nothing:
    /// after each observation of a stream whose faults come and go, a step forced on a
    /// copy of the scorer leaves the hysteresis state as it is.
    #[test]
    fn skipped_verdict_steps_are_noops() {
        let mut s: Scorer<4, 4> = Scorer::new(ScoreConfig::default()).unwrap();
        let mut x = 0x7E57_D0E5_0F5C_0BE5u64;
        let mut now = 0u64;
        let (mut skipped, mut skipped_raised, mut changes) = (0u32, 0u32, 0u32);
        for i in 0..200_000u32 {
            xorshift(&mut x);
            now += 5_000 + x % 10_000;
            // Phases of 3,000 observations: clean, then faults of one kind at a rate
            // that moves the score around the verdict thresholds.
            let phase = (i / 3_000) % 8;
            let outcome = if phase % 2 == 1 && x % 100 < u64::from(phase) * 6 {
                match phase {
                    1 => Outcome::Response(Rcode::SERVFAIL),
                    3 => Outcome::Timeout,
                    5 => Outcome::Truncated(Fallback::Failed),
                    _ => Outcome::Mismatch(Mismatch::ID),
                }
            } else {
                Outcome::Response(Rcode::NOERROR)
            };
            let server = ((x >> 20) % 3) as u32;
            if s.record(&Observation::new(server, 0, now, outcome).rtt(900))
                .is_some()
            {
                changes += 1;
            }
            if now < s.step_due {
                skipped += 1;
                if s.verdict() != Verdict::Ok {
                    skipped_raised += 1;
                }
                let mut forced = s.clone();
                assert_eq!(forced.step_verdict(now), None, "step {i}");
                assert_eq!(forced.verdict, s.verdict, "step {i}");
            }
        }
        assert!(changes >= 8, "{changes} verdict changes");
        assert!(skipped > 100_000, "{skipped} steps skipped");
        // Skipped above ok too (waiting for the dwell or the hold), not only when ok.
        assert!(skipped_raised > 1_000, "{skipped_raised} skipped above ok");
    }

    #[test]
    fn prefix_counts_match_count_ones() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..10_000 {
            xorshift(&mut x);
            for bits in [x, x & (x >> 1), x | (x >> 3), 0, u64::MAX] {
                let want = NX_SPANS.map(|n| (bits & (u64::MAX >> (64 - n))).count_ones());
                assert_eq!(prefix_counts(bits), want, "{bits:#x}");
            }
        }
    }

    /// The fast `severities` and the explaining `assess` must agree on every input.
    #[test]
    fn fast_severities_match_assess() {
        let edge = ScoreConfig {
            loss_consecutive: 1,
            servfail_burst: 1,
            integrity_burst: 1,
            tcp_fail_burst: 1,
            rtt_confirm: 1,
            nx_min_samples: 1,
            loss_min_samples: 1,
            servfail_min_samples: 1,
            tc_min_samples: 1,
            ..ScoreConfig::default()
        };
        edge.validate().unwrap();
        for cfg in [ScoreConfig::default(), edge] {
            let d = Derived::new(&cfg);
            let mut c = Counters::EMPTY;
            let mut x = 0x1234_5678_9abc_def0u64;
            let mut now = 0u64;
            for _ in 0..200_000 {
                xorshift(&mut x);
                now += x % 300_000;
                let outcome = match x % 11 {
                    0 => Outcome::Response(Rcode::SERVFAIL),
                    1 | 2 => Outcome::Response(Rcode::NXDOMAIN),
                    3 => Outcome::Timeout,
                    4 => Outcome::Truncated(Fallback::Failed),
                    5 => Outcome::Truncated(Fallback::NotAttempted),
                    6 => Outcome::Malformed,
                    7 => Outcome::Mismatch(Mismatch::ID),
                    _ => Outcome::Response(Rcode::NOERROR),
                };
                let spike = match (x >> 8) % 3 {
                    0 => None,
                    1 => Some(true),
                    _ => Some(false),
                };
                let mut step = Step::of(&outcome);
                if let Some(s) = spike {
                    step.bits |= Step::ANSWERED | if s { Step::SPIKE } else { 0 };
                }
                if (x >> 24) & 1 == 0 && matches!(outcome, Outcome::Truncated(_)) {
                    step.bits |= Step::TCNEW;
                }
                c.record(step, now, &d);
                c.flush();
                let quota = ((x >> 16) % 10) as u8;
                let fast = c.severities(&cfg, quota);
                let full = c.assess(&cfg, quota);
                for (f, a) in fast.iter().zip(full.iter()) {
                    assert_eq!(*f, a.sev, "{outcome:?} {c:?}");
                }
            }
        }
    }
}
