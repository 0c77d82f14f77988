//! Per-target state: the caller's expectation, answer-set drift and round-robin skew.

use super::math::{chi2_critical, log2, ramp};
use super::observation::{Observation, Outcome};
use super::scorer::LEAN;
use super::{Cause, Evidence, ScoreConfig};
use crate::wire::Rcode;

/// Expected members per target (EndpointSlice ready addresses).
pub(crate) const MAX_EXPECTED: usize = 64;
/// Distinct first-position records tracked per target (answers with more records are not
/// tested for skew).
pub(crate) const RR_SLOTS: usize = 16;
/// First-position answers in the skew window.
pub(crate) const RR_WINDOW: usize = 64;

/// Critical values for the round-robin tests, computed once from `rr_alpha`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RrTables {
    /// `chi2[k]`: critical χ² for `k` positions (`k − 1` degrees of freedom).
    chi2: [f32; RR_SLOTS + 1],
    /// `run[k]`: stuck run length for `k` positions.
    run: [u16; RR_SLOTS + 1],
    /// `quiet_full[k]`: the largest `k·S` that [`RoundRobin::update`]'s quiet test
    /// passes with a full window (`n` = [`RR_WINDOW`]), as an integer (see
    /// [`quiet_limit`]). Native only (the filter keeps one path).
    quiet_full: [u32; RR_SLOTS + 1],
}

impl RrTables {
    pub(crate) fn new(alpha: f32) -> Self {
        let mut t = RrTables {
            chi2: [f32::INFINITY; RR_SLOTS + 1],
            run: [u16::MAX; RR_SLOTS + 1],
            quiet_full: [0; RR_SLOTS + 1],
        };
        let bits = -log2(alpha); // log2(1/α)
        for k in 2..=RR_SLOTS {
            if let Some(c) = t.chi2.get_mut(k) {
                *c = chi2_critical((k - 1) as u32, alpha);
            }
            if let Some(r) = t.run.get_mut(k) {
                // Smallest r with k^-(r-1) <= α, i.e. r - 1 >= log2(1/α) / log2(k).
                let need = bits / log2(k as f32);
                let mut whole = need as u32;
                if (whole as f32) < need {
                    whole += 1;
                }
                *r = u16::try_from(whole.saturating_add(1)).unwrap_or(u16::MAX);
            }
            if LEAN && let (Some(q), Some(&crit)) = (t.quiet_full.get_mut(k), t.chi2.get(k)) {
                *q = quiet_limit(RR_WINDOW as f32, crit);
            }
        }
        t
    }

    fn chi2(&self, k: usize) -> f32 {
        self.chi2.get(k).copied().unwrap_or(f32::INFINITY)
    }

    fn run(&self, k: usize) -> u16 {
        self.run.get(k).copied().unwrap_or(u16::MAX)
    }
}

/// The quiet bound of the round-robin test as an integer: for every integer `x` up to
/// 2²⁴, `x as f32 <= n·(n + 0.74·crit)` (computed in f32, as [`RoundRobin::update`]
/// does) exactly when `x <= quiet_limit(n, crit)`. A finite non-negative bound's floor
/// is that integer; `as` saturates an infinite one to `u32::MAX` (every `x` passes) and
/// maps NaN to 0 (no `x` passes but 0, and `k·S` is at least `k` once a window holds a
/// sample).
fn quiet_limit(nf: f32, crit: f32) -> u32 {
    (nf * (nf + 0.74 * crit)) as u32
}

/// Whether the client finally got NOERROR (`rcode() == Some(NOERROR)`), with the common
/// plain response tested first (native only: in the filter the test costs bytes).
#[inline(always)]
fn noerror(obs: &Observation<'_>) -> bool {
    (LEAN && obs.outcome == Outcome::Response(Rcode::NOERROR))
        || obs.outcome.rcode() == Some(Rcode::NOERROR)
}

/// What the caller expects a target to answer.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Expectation {
    /// Sorted, deduplicated member hashes (`len` of them), when given.
    members: [u64; MAX_EXPECTED],
    len: u8,
    has_members: bool,
    fingerprint: Option<u64>,
    count: Option<u16>,
    final_name: Option<u64>,
    since_us: u64,
}

impl Expectation {
    const NONE: Expectation = Expectation {
        members: [0; MAX_EXPECTED],
        len: 0,
        has_members: false,
        fingerprint: None,
        count: None,
        final_name: None,
        since_us: 0,
    };

    pub(crate) fn is_set(&self) -> bool {
        self.fingerprint.is_some() || self.final_name.is_some()
    }

    fn members(&self) -> &[u64] {
        self.members.get(..usize::from(self.len)).unwrap_or(&[])
    }
}

#[derive(Clone, Copy, Debug)]
struct Drift {
    streak: u16,
    mismatch_since: Option<u64>,
    cname_only: bool,
    missing: Option<u16>,
    extra: Option<u16>,
}

impl Drift {
    const CLEAR: Drift = Drift {
        streak: 0,
        mismatch_since: None,
        cname_only: false,
        missing: None,
        extra: None,
    };
}

#[derive(Clone, Copy, Debug)]
struct RoundRobin {
    set_fp: u64,
    k: u8,
    slots: [u64; RR_SLOTS],
    nslots: u8,
    ring: [u8; RR_WINDOW],
    ring_len: u8,
    ring_pos: u8,
    counts: [u8; RR_SLOTS],
    sumsq: u32,
    last_slot: u8,
    run: u16,
    chi2: f32,
    crit: f32,
    stuck: bool,
    chi_sev: f32,
}

impl RoundRobin {
    const EMPTY: RoundRobin = RoundRobin {
        set_fp: 0,
        k: 0,
        slots: [0; RR_SLOTS],
        nslots: 0,
        ring: [0; RR_WINDOW],
        ring_len: 0,
        ring_pos: 0,
        counts: [0; RR_SLOTS],
        sumsq: 0,
        last_slot: 0,
        run: 0,
        chi2: 0.0,
        crit: f32::INFINITY,
        stuck: false,
        chi_sev: 0.0,
    };

    fn severity(&self) -> f32 {
        if self.stuck { 1.0 } else { self.chi_sev }
    }

    /// A new answer set (fingerprint or record count changed): the window starts over.
    #[cold]
    #[inline(never)]
    fn restart(&mut self, fp: u64, count: u16) {
        *self = RoundRobin {
            set_fp: fp,
            k: u8::try_from(count).unwrap_or(u8::MAX),
            ..RoundRobin::EMPTY
        };
    }

    /// Records one first-position answer and recomputes the severity.
    #[inline]
    fn update(&mut self, first: u64, fp: u64, count: u16, cfg: &ScoreConfig, tables: &RrTables) {
        if LEAN
            && self.set_fp == fp
            && u16::from(self.k) == count
            && usize::from(self.ring_len) == RR_WINDOW
            && let Some(slot) = self
                .slots
                .get(..usize::from(self.nslots))
                .and_then(|s| s.iter().position(|&h| h == first))
        {
            self.update_full(slot, tables);
            return;
        }
        self.update_general(first, fp, count, cfg, tables);
    }

    /// [`RoundRobin::update`] in the steady state: same answer set, a known first
    /// record and a full window. Exactly what [`RoundRobin::update_general`] does
    /// there: the window holds `n` = [`RR_WINDOW`] ≥ `rr_min_samples` answers (the
    /// config caps it at 64), so the test always runs, and its quiet case compares
    /// `k·S` with the integer bound `quiet_full[k]` ([`quiet_limit`]) instead of the
    /// f32 product. Ring entries are slots below [`RR_SLOTS`] (masks only drop bounds
    /// checks).
    #[inline]
    fn update_full(&mut self, slot: usize, tables: &RrTables) {
        let slot = slot & (RR_SLOTS - 1);
        let slot8 = slot as u8;
        self.run = if self.last_slot == slot8 {
            self.run.saturating_add(1)
        } else {
            1
        };
        self.last_slot = slot8;
        let pos = usize::from(self.ring_pos) & (RR_WINDOW - 1);
        if let Some(r) = self.ring.get_mut(pos) {
            let old = usize::from(*r) & (RR_SLOTS - 1);
            if let Some(c) = self.counts.get_mut(old)
                && *c > 0
            {
                self.sumsq = self.sumsq.saturating_sub(2 * u32::from(*c) - 1);
                *c -= 1;
            }
            *r = slot8;
        }
        self.ring_pos = ((pos + 1) & (RR_WINDOW - 1)) as u8;
        if let Some(c) = self.counts.get_mut(slot) {
            self.sumsq = self.sumsq.saturating_add(2 * u32::from(*c) + 1);
            *c = c.saturating_add(1);
        }
        let k = usize::from(self.k.max(self.nslots)).clamp(2, RR_SLOTS);
        self.stuck = self.run >= tables.run(k);
        let crit = tables.chi2(k);
        self.crit = crit;
        let quiet = tables.quiet_full.get(k).copied().unwrap_or(0);
        if k as u32 * self.sumsq <= quiet {
            self.chi_sev = 0.0;
        } else {
            let nf = RR_WINDOW as f32;
            self.chi2 = (k as f32 / nf) * self.sumsq as f32 - nf;
            self.chi_sev = ramp(self.chi2 / crit, 0.75, 1.0);
        }
    }

    /// [`RoundRobin::update`] in every state (the filter's only path).
    fn update_general(
        &mut self,
        first: u64,
        fp: u64,
        count: u16,
        cfg: &ScoreConfig,
        tables: &RrTables,
    ) {
        if self.set_fp != fp || u16::from(self.k) != count {
            self.restart(fp, count);
        }
        let n_slots = usize::from(self.nslots);
        let slot = match self
            .slots
            .get(..n_slots)
            .and_then(|s| s.iter().position(|&h| h == first))
        {
            Some(i) => i,
            None if n_slots < RR_SLOTS => {
                if let Some(s) = self.slots.get_mut(n_slots) {
                    *s = first;
                }
                self.nslots += 1;
                n_slots
            }
            None => return,
        };
        let slot8 = slot as u8; // < RR_SLOTS
        self.run = if self.ring_len > 0 && self.last_slot == slot8 {
            self.run.saturating_add(1)
        } else {
            1
        };
        self.last_slot = slot8;
        let pos = usize::from(self.ring_pos);
        if usize::from(self.ring_len) == RR_WINDOW {
            let old = usize::from(self.ring.get(pos).copied().unwrap_or(0));
            if let Some(c) = self.counts.get_mut(old)
                && *c > 0
            {
                self.sumsq = self.sumsq.saturating_sub(2 * u32::from(*c) - 1);
                *c -= 1;
            }
        } else {
            self.ring_len += 1;
        }
        if let Some(r) = self.ring.get_mut(pos) {
            *r = slot8;
        }
        self.ring_pos = ((pos + 1) % RR_WINDOW) as u8;
        if let Some(c) = self.counts.get_mut(slot) {
            self.sumsq = self.sumsq.saturating_add(2 * u32::from(*c) + 1);
            *c = c.saturating_add(1);
        }

        let k = usize::from(self.k.max(self.nslots)).clamp(2, RR_SLOTS);
        self.stuck = self.run >= tables.run(k);
        let n = u32::from(self.ring_len);
        let need = cfg.rr_min_samples.max((5 * k as u32).min(RR_WINDOW as u32));
        if n >= need {
            let nf = n as f32;
            let crit = tables.chi2(k);
            self.crit = crit;
            // Quiet (the common case) without a division: χ² = k·S/n − n ≤ 0.74·crit
            // exactly when k·S ≤ n·(n + 0.74·crit). k·S ≤ 16·64² and n·n are exact in
            // f32, and the margin to the ramp's 0.75 (0.01·crit ≥ 0.19) is far above
            // the rounding of either side, so the severity is 0 as computed below.
            // `chi2` is then left as it was: it is only read while the severity is
            // above 0 (as the reason's evidence).
            if (k as u32 * self.sumsq) as f32 <= nf * (nf + 0.74 * crit) {
                self.chi_sev = 0.0;
            } else {
                self.chi2 = (k as f32 / nf) * self.sumsq as f32 - nf;
                self.chi_sev = ramp(self.chi2 / crit, 0.75, 1.0);
            }
        } else {
            self.chi2 = 0.0;
            self.chi_sev = 0.0;
        }
    }
}

/// All per-target state.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Target {
    pub(crate) exp: Expectation,
    drift: Drift,
    rr: RoundRobin,
    /// Severities: drift, round robin.
    pub(crate) sev: [f32; 2],
}

/// Why `expect_*` could not record an expectation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SetMembers {
    Ok,
    TooMany,
}

impl Target {
    pub(crate) const EMPTY: Target = Target {
        exp: Expectation::NONE,
        drift: Drift::CLEAR,
        rr: RoundRobin::EMPTY,
        sev: [0.0; 2],
    };

    /// Whether an observation needs a slot for this target when it has none.
    #[inline]
    pub(crate) fn wants_slot(obs: &Observation<'_>) -> bool {
        obs.answers.count >= 2
            && noerror(obs)
            && (2..=RR_SLOTS as u16).contains(&obs.answers.count)
            && obs.answers.first != 0
    }

    pub(crate) fn set_members(&mut self, members: &[u64], now_us: u64) -> SetMembers {
        if members.len() > MAX_EXPECTED {
            return SetMembers::TooMany;
        }
        let mut sorted = [0u64; MAX_EXPECTED];
        let mut len = 0usize;
        for &m in members {
            if let Some(s) = sorted.get_mut(len) {
                *s = m;
                len += 1;
            }
        }
        let view = sorted.get_mut(..len).unwrap_or(&mut []);
        view.sort_unstable();
        // Deduplicate in place.
        let mut w = 0usize;
        for r in 0..view.len() {
            let (Some(&cur), prev) = (
                view.get(r),
                w.checked_sub(1).and_then(|p| view.get(p)).copied(),
            ) else {
                continue;
            };
            if prev != Some(cur) {
                if let Some(d) = view.get_mut(w) {
                    *d = cur;
                }
                w += 1;
            }
        }
        let uniq = view.get(..w).unwrap_or(&[]);
        let fp = super::set_fingerprint(uniq);
        let count = w as u16;
        let same = self.exp.has_members
            && self.exp.fingerprint == Some(fp)
            && self.exp.count == Some(count);
        self.exp.members = sorted;
        self.exp.len = w as u8;
        self.exp.has_members = true;
        self.exp.fingerprint = Some(fp);
        self.exp.count = Some(count);
        if !same {
            self.restart(now_us);
        }
        SetMembers::Ok
    }

    pub(crate) fn set_fingerprint(&mut self, fp: u64, count: Option<u16>, now_us: u64) {
        let same =
            self.exp.fingerprint == Some(fp) && self.exp.count == count && !self.exp.has_members;
        self.exp.members = [0; MAX_EXPECTED];
        self.exp.len = 0;
        self.exp.has_members = false;
        self.exp.fingerprint = Some(fp);
        self.exp.count = count;
        if !same {
            self.restart(now_us);
        }
    }

    pub(crate) fn set_final_name(&mut self, name_fp: Option<u64>, now_us: u64) {
        if self.exp.final_name != name_fp {
            self.exp.final_name = name_fp;
            self.restart(now_us);
        }
    }

    fn restart(&mut self, now_us: u64) {
        self.exp.since_us = now_us;
        self.drift = Drift::CLEAR;
        if let Some(s) = self.sev.get_mut(0) {
            *s = 0.0;
        }
    }

    /// Feeds one observation of this target.
    pub(crate) fn observe(
        &mut self,
        obs: &Observation<'_>,
        now_us: u64,
        cfg: &ScoreConfig,
        tables: &RrTables,
    ) {
        self.observe_inline(obs, now_us, cfg, tables);
    }

    /// [`Target::observe`], inlined into the scorer's lean target path.
    #[inline(always)]
    pub(crate) fn observe_inline(
        &mut self,
        obs: &Observation<'_>,
        now_us: u64,
        cfg: &ScoreConfig,
        tables: &RrTables,
    ) {
        if Target::wants_slot(obs) {
            let a = &obs.answers;
            self.rr
                .update(a.first, a.set_fingerprint, a.count, cfg, tables);
            if let Some(s) = self.sev.get_mut(1) {
                *s = self.rr.severity();
            }
        }
        if self.exp.is_set() && !self.drift_observe(obs, now_us) {
            self.drift_refresh(now_us, cfg);
        }
    }

    /// Returns true when the answer matched and there was no drift to clear: the
    /// drift severity is then 0 already (a drift without a mismatch time is clear, and
    /// every path that clears it sets the severity to 0).
    fn drift_observe(&mut self, obs: &Observation<'_>, now_us: u64) -> bool {
        let ok = noerror(obs);
        let nx = !ok && obs.outcome.rcode() == Some(Rcode::NXDOMAIN);
        if !(nx || ok) {
            return false;
        }
        let a = &obs.answers;
        let (count, fp) = if nx {
            (0, 0)
        } else {
            (a.count, a.set_fingerprint)
        };
        let set_ok = match self.exp.fingerprint {
            None => true,
            Some(f) => f == fp && self.exp.count.is_none_or(|c| c == count),
        };
        let name_ok = match self.exp.final_name {
            None => true,
            Some(n) => !nx && n == a.final_name,
        };
        if set_ok && name_ok {
            if self.drift.mismatch_since.is_none() {
                // Only the mismatch branch below sets any field of a clear drift, and
                // it sets the mismatch time too.
                return true;
            }
            self.drift = Drift::CLEAR;
            return false;
        }
        self.drift.streak = self.drift.streak.saturating_add(1);
        if self.drift.mismatch_since.is_none() {
            self.drift.mismatch_since = Some(now_us);
        }
        self.drift.cname_only = set_ok;
        self.drift.missing = None;
        self.drift.extra = None;
        if !set_ok && self.exp.has_members {
            let expected = self.exp.members();
            let observed: &[u64] = if nx { &[] } else { a.members };
            // Members are only trusted when they describe the whole answer.
            if observed.len() == usize::from(count) && observed.len() <= 4 * MAX_EXPECTED {
                let extra = observed
                    .iter()
                    .filter(|m| expected.binary_search(m).is_err())
                    .count();
                let present = observed.len().saturating_sub(extra);
                let missing = expected.len().saturating_sub(present);
                self.drift.missing = Some(missing as u16);
                self.drift.extra = Some(extra as u16);
            }
        }
        false
    }

    /// Recomputes the drift severity at `now_us` (time alone can complete the grace).
    pub(crate) fn drift_refresh(&mut self, now_us: u64, cfg: &ScoreConfig) {
        let sev = match self.drift.mismatch_since {
            Some(since)
                if self.exp.is_set()
                    && self.drift.streak >= u16::from(cfg.drift_confirm)
                    && now_us.saturating_sub(since) >= cfg.drift_grace_us
                    && now_us.saturating_sub(self.exp.since_us) >= cfg.drift_settle_us =>
            {
                1.0
            }
            _ => 0.0,
        };
        if let Some(s) = self.sev.get_mut(0) {
            *s = sev;
        }
    }

    pub(crate) fn clear_severities(&mut self) {
        self.sev = [0.0; 2];
    }

    pub(crate) fn drift_reason(&self) -> (Cause, Evidence) {
        if self.drift.cname_only {
            (Cause::CnameDrift, Evidence::None)
        } else {
            (
                Cause::AnswerSetDrift,
                Evidence::SetDiff {
                    missing: self.drift.missing,
                    extra: self.drift.extra,
                },
            )
        }
    }

    pub(crate) fn rr_reason(&self) -> (Cause, Evidence) {
        if self.rr.stuck {
            (
                Cause::RoundRobinStuck,
                Evidence::Count(u32::from(self.rr.run)),
            )
        } else {
            (
                Cause::RoundRobinSkew,
                Evidence::ChiSquare {
                    statistic: self.rr.chi2,
                    critical: self.rr.crit,
                },
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_lengths_follow_alpha() {
        let t = RrTables::new(1e-5);
        // 4^-(r-1) <= 1e-5 first at r - 1 = 9 (4^-9 = 3.8e-6, 4^-8 = 1.5e-5).
        assert_eq!(t.run(4), 10);
        // 2^-(r-1) <= 1e-5 first at r - 1 = 17.
        assert_eq!(t.run(2), 18);
        assert!(t.chi2(4) > 20.0 && t.chi2(4) < 28.0, "{}", t.chi2(4));
    }

    /// Every field of a round-robin window, floats by their bits.
    #[allow(clippy::type_complexity)]
    fn rr_state(
        r: &RoundRobin,
    ) -> (
        (u64, u8, [u64; RR_SLOTS], u8),
        ([u8; RR_WINDOW], u8, u8, [u8; RR_SLOTS]),
        (u32, u8, u16, u32, u32, bool, u32),
    ) {
        (
            (r.set_fp, r.k, r.slots, r.nslots),
            (r.ring, r.ring_len, r.ring_pos, r.counts),
            (
                r.sumsq,
                r.last_slot,
                r.run,
                r.chi2.to_bits(),
                r.crit.to_bits(),
                r.stuck,
                r.chi_sev.to_bits(),
            ),
        )
    }

    /// The steady-state path (`update_full`: same set, known first record, full window)
    /// leaves every field exactly as the general path does: first positions from
    /// uniform to stuck for 2 to 16 records (and more distinct first records than the
    /// set's count), answer sets that change, three `rr_alpha`s and `rr_min_samples`
    /// at both ends, with severities across the whole ramp.
    #[test]
    fn full_window_update_matches_general() {
        let (mut full, mut ramped, mut stuck) = (0u32, 0u32, 0u32);
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for min_samples in [2, 64] {
            let cfg = ScoreConfig {
                rr_min_samples: min_samples,
                ..ScoreConfig::default()
            };
            for alpha in [1e-5f32, 0.01, 0.3] {
                let tables = RrTables::new(alpha);
                for (k, firsts) in [(2u16, 2u64), (3, 5), (4, 4), (7, 7), (16, 16), (16, 18)] {
                    for skew in [0u64, 1, 2, 3, 5, 8, 16] {
                        let (mut fast, mut general) = (RoundRobin::EMPTY, RoundRobin::EMPTY);
                        for i in 0..1500u32 {
                            let r = next();
                            // Runs of one record now and then (the stuck test).
                            let first = if (i / 100) % 5 == 4 {
                                1
                            } else if r % 16 < skew {
                                1 + (r >> 40) % 2
                            } else {
                                1 + (r >> 8) % firsts
                            };
                            let fp = if i == 700 { 2 } else { 1 + u64::from(i > 700) };
                            let known = fast.set_fp == fp
                                && u16::from(fast.k) == k
                                && usize::from(fast.ring_len) == RR_WINDOW
                                && fast
                                    .slots
                                    .get(..usize::from(fast.nslots))
                                    .is_some_and(|s| s.contains(&first));
                            fast.update(first, fp, k, &cfg, &tables);
                            general.update_general(first, fp, k, &cfg, &tables);
                            assert_eq!(
                                rr_state(&fast),
                                rr_state(&general),
                                "alpha {alpha} k {k} skew {skew} step {i}"
                            );
                            full += u32::from(known);
                            ramped += u32::from(fast.chi_sev > 0.0 && fast.chi_sev < 1.0);
                            stuck += u32::from(fast.stuck);
                        }
                    }
                }
            }
        }
        assert!(full > 200_000, "{full} steady-state updates");
        assert!(
            ramped > 1_000 && stuck > 1_000,
            "{ramped} ramped, {stuck} stuck"
        );
    }

    #[test]
    fn members_are_sorted_and_deduplicated() {
        let mut t = Target::EMPTY;
        assert_eq!(t.set_members(&[5, 3, 5, 1], 0), SetMembers::Ok);
        assert_eq!(t.exp.members(), &[1, 3, 5]);
        assert_eq!(t.exp.count, Some(3));
        assert_eq!(t.exp.fingerprint, Some(9));
        assert_eq!(
            t.set_members(&[0; MAX_EXPECTED + 1], 0),
            SetMembers::TooMany
        );
    }
}
