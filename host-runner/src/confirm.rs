//! The suspicion cadence's bookkeeping (see [`ConfirmSettings`]): what counts as news
//! for a (server, target) pair, and when a server may start a confirmation burst.
//!
//! The scorer's burst and share rules need a few bad answers before they raise (two
//! SERVFAILs, seven NXDOMAINs out of eight, ...). At the default 100 ms interval those
//! arrive over several intervals; when a pair answers in a way that is new for it, the
//! runner probes that server's targets again right away (see `runner::confirm_burst`),
//! so the evidence arrives within tens of milliseconds. A clean pair that keeps
//! answering the same way never starts a burst, and a server starts at most one burst
//! per `rounds · spacing + cooldown`.
//!
//! Everything here is pure state (atomics and a mutex, the caller passes the time), so
//! it is tested without sockets or clocks.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};

use dnswarden_core::wire::Rcode;
use tokio::time::Instant;

use crate::config::ConfirmSettings;
use crate::probe::{Outcome, ProbeResult};

/// How a probe ended, coarsely: a change between two classes is news.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Class {
    /// Not probed yet.
    Unknown = 0,
    /// NOERROR over UDP, with the expected answers (or any, when none are expected).
    Good = 1,
    /// NXDOMAIN.
    Nxdomain = 2,
    /// SERVFAIL.
    Servfail = 3,
    /// REFUSED, NOTIMP, FORMERR or another RCODE.
    OtherRcode = 4,
    /// TC=1 over UDP (whatever the TCP retry gave).
    Truncated = 5,
    /// NOERROR with answers other than the expected ones.
    Drift = 6,
    /// Mismatched or malformed responses.
    Integrity = 7,
    /// No answer (timeout, network error).
    Lost = 8,
    /// A good answer, but far slower than the pair's usual (see [`Confirm::note_answer`]).
    Slow = 9,
}

impl Class {
    fn from_u8(v: u8) -> Class {
        match v {
            1 => Class::Good,
            2 => Class::Nxdomain,
            3 => Class::Servfail,
            4 => Class::OtherRcode,
            5 => Class::Truncated,
            6 => Class::Drift,
            7 => Class::Integrity,
            8 => Class::Lost,
            9 => Class::Slow,
            _ => Class::Unknown,
        }
    }

    /// Whether an answer of this class, new for a pair, is worth confirming at once.
    /// Losses are not: a confirmation waits for its own timeout, no sooner than the
    /// next scheduled probes, and on a stalled machine it would only add timeouts.
    pub fn suspicious(self) -> bool {
        !matches!(self, Class::Unknown | Class::Good | Class::Lost)
    }
}

/// Classifies one probe result; `drift` says whether its answers differ from the
/// target's expected ones (see [`ProbeResult::answer_drift`]).
pub fn classify(res: &ProbeResult, drift: bool) -> Class {
    if res.truncated || res.outcome == Outcome::Truncated {
        return Class::Truncated;
    }
    if res.mismatches > 0 || res.malformed > 0 {
        return Class::Integrity;
    }
    match res.outcome {
        Outcome::Answer(Rcode::NOERROR) if drift => Class::Drift,
        Outcome::Answer(Rcode::NOERROR) => Class::Good,
        Outcome::Answer(Rcode::NXDOMAIN) => Class::Nxdomain,
        Outcome::Answer(Rcode::SERVFAIL) => Class::Servfail,
        Outcome::Answer(_) => Class::OtherRcode,
        Outcome::Mismatch | Outcome::Malformed => Class::Integrity,
        Outcome::Truncated => Class::Truncated,
        Outcome::Timeout | Outcome::NetworkError(_) => Class::Lost,
    }
}

/// Good answers a pair needs before its RTT baseline can call an answer slow.
const RTT_WARM: u8 = 8;
/// An answer is slow when it takes longer than `RTT_SLOW_FACTOR` times the pair's
/// usual RTT plus `RTT_SLOW_MARGIN_US`: the +tens of milliseconds of a sick server,
/// not the few milliseconds of scheduling jitter on a busy machine.
const RTT_SLOW_FACTOR: u32 = 4;
const RTT_SLOW_MARGIN_US: u32 = 10_000;

/// Per pair: the class of its last probe and its usual RTT; per server: when it may
/// start a burst.
#[derive(Debug)]
pub struct Confirm {
    settings: ConfirmSettings,
    targets: usize,
    last: Vec<AtomicU8>,
    /// Per pair: moving average (1/8) of good answers' RTT, microseconds.
    rtt_us: Vec<AtomicU32>,
    /// Per pair: good answers in that average, up to [`RTT_WARM`].
    rtt_seen: Vec<AtomicU8>,
    next_burst: Vec<Mutex<Option<Instant>>>,
}

impl Confirm {
    /// State for `servers × targets` pairs.
    pub fn new(settings: ConfirmSettings, servers: usize, targets: usize) -> Confirm {
        let pairs = servers.saturating_mul(targets);
        Confirm {
            settings,
            targets,
            last: (0..pairs)
                .map(|_| AtomicU8::new(Class::Unknown as u8))
                .collect(),
            rtt_us: (0..pairs).map(|_| AtomicU32::new(0)).collect(),
            rtt_seen: (0..pairs).map(|_| AtomicU8::new(0)).collect(),
            next_burst: (0..servers).map(|_| Mutex::new(None)).collect(),
        }
    }

    fn pair(&self, server: usize, target: usize) -> Option<usize> {
        server
            .checked_mul(self.targets)
            .and_then(|b| b.checked_add(target))
            .filter(|&i| target < self.targets && i < self.last.len())
    }

    /// [`Confirm::note`] for a probe that took `rtt_us`: a good answer far slower than
    /// the pair's usual (4x its moving average + 10 ms, once it has 8 good answers) is
    /// [`Class::Slow`], so the first slow answer of a delay fault starts a burst that
    /// gives the core's RTT spike rule its samples at once. Only good answers that are
    /// not slow update the pair's usual RTT, so a lasting delay stays slow until it ends.
    pub fn note_answer(&self, server: usize, target: usize, class: Class, rtt_us: u32) -> bool {
        let class = match (class, self.pair(server, target)) {
            (Class::Good, Some(i)) => self.judge_rtt(i, rtt_us),
            (c, _) => c,
        };
        self.note(server, target, class)
    }

    fn judge_rtt(&self, i: usize, rtt_us: u32) -> Class {
        let (Some(avg), Some(seen)) = (self.rtt_us.get(i), self.rtt_seen.get(i)) else {
            return Class::Good;
        };
        let (usual, n) = (avg.load(Ordering::Relaxed), seen.load(Ordering::Relaxed));
        let limit = usual
            .saturating_mul(RTT_SLOW_FACTOR)
            .saturating_add(RTT_SLOW_MARGIN_US);
        if n >= RTT_WARM && rtt_us > limit {
            return Class::Slow;
        }
        let next = if n == 0 {
            rtt_us
        } else {
            usual - usual / 8 + rtt_us / 8
        };
        avg.store(next, Ordering::Relaxed);
        seen.store(n.saturating_add(1).min(RTT_WARM), Ordering::Relaxed);
        Class::Good
    }

    /// The settings.
    pub fn settings(&self) -> ConfirmSettings {
        self.settings
    }

    /// Records the class of a pair's latest probe; `true` when it is suspicious and
    /// differs from the pair's previous one (news worth confirming).
    pub fn note(&self, server: usize, target: usize, class: Class) -> bool {
        let Some(slot) = self.pair(server, target).and_then(|i| self.last.get(i)) else {
            return false;
        };
        let prev = Class::from_u8(slot.swap(class as u8, Ordering::Relaxed));
        class.suspicious() && class != prev
    }

    /// Claims a burst for `server` at `now`: `false` when the cadence is off, or the
    /// server's previous burst (plus its cool-down) is not over.
    pub fn claim(&self, server: usize, now: Instant) -> bool {
        if self.settings.rounds == 0 {
            return false;
        }
        let Some(Ok(mut next)) = self.next_burst.get(server).map(Mutex::lock) else {
            return false;
        };
        if next.is_some_and(|t| now < t) {
            return false;
        }
        let length = self
            .settings
            .spacing
            .saturating_mul(self.settings.rounds.saturating_sub(1));
        *next = Some(now + length + self.settings.cooldown);
        true
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::probe::Transport;

    fn result(outcome: Outcome) -> ProbeResult {
        ProbeResult::for_tests(outcome, Transport::Udp)
    }

    #[test]
    fn classes_follow_rcode_tc_integrity_and_drift() {
        assert_eq!(
            classify(&result(Outcome::Answer(Rcode::NOERROR)), false),
            Class::Good
        );
        assert_eq!(
            classify(&result(Outcome::Answer(Rcode::NOERROR)), true),
            Class::Drift
        );
        assert_eq!(
            classify(&result(Outcome::Answer(Rcode::NXDOMAIN)), false),
            Class::Nxdomain
        );
        assert_eq!(
            classify(&result(Outcome::Answer(Rcode::SERVFAIL)), false),
            Class::Servfail
        );
        assert_eq!(
            classify(&result(Outcome::Answer(Rcode::REFUSED)), false),
            Class::OtherRcode
        );
        let mut tc = result(Outcome::Answer(Rcode::NOERROR));
        tc.truncated = true;
        assert_eq!(classify(&tc, false), Class::Truncated);
        assert_eq!(
            classify(&result(Outcome::Truncated), false),
            Class::Truncated
        );
        let mut mm = result(Outcome::Answer(Rcode::NOERROR));
        mm.mismatches = 1;
        assert_eq!(classify(&mm, false), Class::Integrity);
        assert_eq!(
            classify(&result(Outcome::Malformed), false),
            Class::Integrity
        );
        assert_eq!(classify(&result(Outcome::Timeout), false), Class::Lost);
        assert_eq!(
            classify(&result(Outcome::NetworkError("refused")), false),
            Class::Lost
        );
    }

    #[test]
    fn only_a_new_bad_class_is_news() {
        let c = Confirm::new(ConfirmSettings::DEFAULT, 2, 3);
        assert!(!c.note(0, 1, Class::Good));
        assert!(!c.note(0, 1, Class::Good));
        assert!(c.note(0, 1, Class::Servfail));
        // The same fault again is not news; another pair's first one is.
        assert!(!c.note(0, 1, Class::Servfail));
        assert!(c.note(1, 1, Class::Servfail));
        assert!(c.note(0, 1, Class::Nxdomain));
        // Recovery is not suspicious; the fault coming back is news again.
        assert!(!c.note(0, 1, Class::Good));
        assert!(c.note(0, 1, Class::Servfail));
        // Losses never start a burst.
        assert!(!c.note(0, 2, Class::Lost));
        // A name that is NXDOMAIN from the start is news once.
        assert!(c.note(1, 2, Class::Nxdomain));
        assert!(!c.note(1, 2, Class::Nxdomain));
        // Out of range keys are ignored.
        assert!(!c.note(0, 3, Class::Servfail));
        assert!(!c.note(2, 0, Class::Servfail));
    }

    #[test]
    fn a_good_answer_far_slower_than_usual_is_news_once() {
        let c = Confirm::new(ConfirmSettings::DEFAULT, 1, 2);
        // Cold: even a slow answer is just good (no baseline to judge it against).
        assert!(!c.note_answer(0, 0, Class::Good, 40_000));
        for _ in 0..RTT_WARM {
            assert!(!c.note_answer(0, 1, Class::Good, 300));
        }
        // Jitter of a few milliseconds on a busy machine is not slow.
        assert!(!c.note_answer(0, 1, Class::Good, 8_000));
        // +30 ms is; the delay lasting is not news again, and does not become usual.
        assert!(c.note_answer(0, 1, Class::Good, 30_500));
        for _ in 0..50 {
            assert!(!c.note_answer(0, 1, Class::Good, 30_500));
        }
        // Back to normal, then slow again: news again.
        assert!(!c.note_answer(0, 1, Class::Good, 300));
        assert!(c.note_answer(0, 1, Class::Good, 30_500));
        // Other classes keep their own meaning.
        assert!(c.note_answer(0, 1, Class::Servfail, 300));
        assert!(!c.note_answer(0, 1, Class::Lost, 100_000));
        assert!(!c.note_answer(3, 0, Class::Good, 30_500));
    }

    #[test]
    fn a_server_bursts_at_most_once_per_burst_and_cooldown() {
        let s = ConfirmSettings {
            rounds: 3,
            spacing: Duration::from_millis(10),
            cooldown: Duration::from_millis(100),
        };
        let c = Confirm::new(s, 2, 1);
        let t0 = Instant::now();
        assert!(c.claim(0, t0));
        assert!(!c.claim(0, t0 + Duration::from_millis(119)));
        // Another server is independent.
        assert!(c.claim(1, t0 + Duration::from_millis(5)));
        assert!(c.claim(0, t0 + Duration::from_millis(120)));
        assert!(!c.claim(5, t0));
        let off = Confirm::new(ConfirmSettings::OFF, 1, 1);
        assert!(!off.claim(0, t0));
    }
}
