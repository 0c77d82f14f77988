//! Simulated-time scenarios for the scorer: a long clean run, every fault class of the
//! issue (time to detect, reason, server, recovery), single odd answers and a flapping
//! fault. Everything runs under a counting allocator and must allocate nothing.

mod common_sim;

use common_sim::alloc_counter::{Counting, count};
use common_sim::{Fault, HEADLESS, Noise, SERVERS, Sim, expect_headless};
use dnswarden_core::score::{
    Cause, Detector, Evidence, Outcome, Reasons, ScoreConfig, Scorer, Verdict,
};
use dnswarden_core::wire::Rcode;

#[global_allocator]
static ALLOC: Counting = Counting;

const MS: u64 = 1_000;
const S: u64 = 1_000_000;
/// Fault scenarios: one observation every 10 ms, servers in turn.
const STEP: u64 = 10 * MS;
const WARMUP: u64 = 40 * S;
const FAULT_LEN: u64 = 3 * S;
const AFTER: u64 = 60 * S;
/// Recovery bound: the 5 s rate window, plus the 1 s leave hold, plus slack for the
/// 2 s minimum dwell and bucket granularity.
const RECOVERY_BOUND: u64 = 10 * S;

#[derive(Debug)]
struct FaultRun {
    fault_start: u64,
    detected_at: Option<u64>,
    verdict_at_detection: Verdict,
    reasons_at_detection: Reasons,
    worst: Verdict,
    reasons_late: Reasons,
    fault_end: u64,
    recovered_at: Option<u64>,
    relapsed: bool,
    clean_max_score: f32,
}

fn run_fault(fault: Fault, seed: u64) -> FaultRun {
    let mut scorer: Scorer = Scorer::new(ScoreConfig::default()).unwrap();
    let mut sim = Sim::new(seed, Noise::REALISTIC);
    let focus = matches!(fault, Fault::Drift | Fault::StuckRoundRobin);
    let (run, allocations) = count(|| {
        expect_headless(&mut scorer, 0);
        let mut t = 0u64;
        let mut i = 0u32;
        let mut clean_max_score = 0f32;
        let mut next_eval = S;
        let step = |scorer: &mut Scorer, sim: &mut Sim, t: u64, i: u32, fault: Fault| {
            let server = i % SERVERS;
            let target = if focus { HEADLESS } else { sim.pick_target() };
            let o = sim.faulty(fault, server, target, t);
            scorer.observe(&o.observation())
        };
        // Phase 1: clean.
        while t < WARMUP {
            t += STEP;
            i += 1;
            let a = step(&mut scorer, &mut sim, t, i, Fault::None);
            assert_eq!(
                a.verdict,
                Verdict::Ok,
                "false alarm at {t} µs: {}",
                scorer.reasons()
            );
            clean_max_score = clean_max_score.max(a.score);
            if t >= next_eval {
                next_eval += S;
                assert_eq!(scorer.evaluate(t).verdict, Verdict::Ok);
            }
        }
        // Phase 2: fault.
        let fault_start = t + STEP;
        let mut detected_at = None;
        let mut verdict_at_detection = Verdict::Ok;
        let mut reasons_at_detection = scorer.reasons();
        let mut worst = Verdict::Ok;
        while t < fault_start + FAULT_LEN {
            t += STEP;
            i += 1;
            let a = step(&mut scorer, &mut sim, t, i, fault);
            if a.verdict != Verdict::Ok && detected_at.is_none() {
                detected_at = Some(t);
                verdict_at_detection = a.verdict;
                reasons_at_detection = scorer.reasons();
            }
            worst = worst.max(a.verdict);
            if t >= next_eval {
                next_eval += S;
                scorer.evaluate(t);
            }
        }
        let reasons_late = scorer.reasons();
        let fault_end = t;
        // Phase 3: clean again.
        let mut recovered_at = None;
        let mut relapsed = false;
        while t < fault_end + AFTER {
            t += STEP;
            i += 1;
            let a = step(&mut scorer, &mut sim, t, i, Fault::None);
            match (recovered_at, a.verdict) {
                (None, Verdict::Ok) => recovered_at = Some(t),
                (Some(_), v) if v != Verdict::Ok => relapsed = true,
                _ => {}
            }
            if t >= next_eval {
                next_eval += S;
                scorer.evaluate(t);
            }
        }
        FaultRun {
            fault_start,
            detected_at,
            verdict_at_detection,
            reasons_at_detection,
            worst,
            reasons_late,
            fault_end,
            recovered_at,
            relapsed,
            clean_max_score,
        }
    });
    assert_eq!(allocations, 0, "the scorer allocated");
    run
}

/// Asserts the acceptance criteria and returns the top reason at detection.
fn check(
    fault: Fault,
    detector: Detector,
    cause: Cause,
    server: Option<u32>,
    target: Option<u32>,
) -> FaultRun {
    for seed in [1, 2, 3] {
        let run = run_fault(fault, seed);
        let detected = run
            .detected_at
            .unwrap_or_else(|| panic!("{fault:?} seed {seed}: never detected"));
        let ttd = detected - run.fault_start;
        assert!(
            ttd <= 100 * MS,
            "{fault:?} seed {seed}: detected after {ttd} µs"
        );
        let top = run.reasons_at_detection.top().copied().expect("a reason");
        assert_eq!(
            top.detector, detector,
            "{fault:?} seed {seed}: {}",
            run.reasons_at_detection
        );
        assert_eq!(
            top.cause, cause,
            "{fault:?} seed {seed}: {}",
            run.reasons_at_detection
        );
        assert_eq!(
            top.server, server,
            "{fault:?} seed {seed}: {}",
            run.reasons_at_detection
        );
        assert_eq!(
            top.target, target,
            "{fault:?} seed {seed}: {}",
            run.reasons_at_detection
        );
        // Still the same story once the fault has lasted.
        let late = run
            .reasons_late
            .get(detector)
            .copied()
            .expect("still raised");
        assert_eq!(
            (late.cause, late.server, late.target),
            (cause, server, target),
            "{}",
            run.reasons_late
        );
        let recovered = run
            .recovered_at
            .unwrap_or_else(|| panic!("{fault:?} seed {seed}: never recovered"));
        let ttr = recovered - run.fault_end;
        assert!(
            ttr <= RECOVERY_BOUND,
            "{fault:?} seed {seed}: recovered after {ttr} µs"
        );
        assert!(
            !run.relapsed,
            "{fault:?} seed {seed}: verdict flapped after recovery"
        );
        eprintln!(
            "{fault:?} seed {seed}: detected after {} ms ({}), worst {}, recovered {:.1} s after the fault; clean max score {:.2}; {}",
            ttd / MS,
            run.verdict_at_detection,
            run.worst,
            ttr as f64 / S as f64,
            run.clean_max_score,
            top
        );
        if seed == 3 {
            return run;
        }
    }
    unreachable!()
}

#[test]
fn servfail_on_all_servers() {
    let run = check(
        Fault::ServfailAll,
        Detector::Servfail,
        Cause::ServfailSpread,
        None,
        None,
    );
    assert_eq!(run.worst, Verdict::Critical);
}

#[test]
fn servfail_on_one_of_three_names_the_server() {
    let run = check(
        Fault::ServfailOne(2),
        Detector::Servfail,
        Cause::ServfailConcentrated,
        Some(2),
        None,
    );
    let top = run.reasons_late.get(Detector::Servfail).copied().unwrap();
    match top.evidence {
        Evidence::Entropy { bits, servers } => {
            assert_eq!(servers, 3);
            assert!(bits < 0.1, "{bits}");
        }
        e => panic!("{e:?}"),
    }
    assert_eq!(run.worst, Verdict::Critical);
}

#[test]
fn nxdomain_flood() {
    check(
        Fault::NxFlood,
        Detector::Nxdomain,
        Cause::NxdomainShare,
        None,
        None,
    );
}

#[test]
fn latency_plus_200ms() {
    check(
        Fault::Latency { extra_us: 200_000 },
        Detector::Rtt,
        Cause::RttSpike,
        None,
        None,
    );
}

#[test]
fn blackhole_timeouts() {
    let run = check(
        Fault::Blackhole,
        Detector::Loss,
        Cause::ConsecutiveTimeouts,
        None,
        None,
    );
    assert_eq!(run.worst, Verdict::Critical);
}

#[test]
fn tc_storm_with_failing_tcp() {
    check(
        Fault::TcStorm,
        Detector::Truncation,
        Cause::TcpFallbackFailed,
        None,
        None,
    );
}

#[test]
fn answer_set_drift_counts_missing_and_extra() {
    let run = check(
        Fault::Drift,
        Detector::Drift,
        Cause::AnswerSetDrift,
        None,
        Some(HEADLESS),
    );
    let r = run
        .reasons_at_detection
        .get(Detector::Drift)
        .copied()
        .unwrap();
    assert_eq!(
        r.evidence,
        Evidence::SetDiff {
            missing: Some(2),
            extra: Some(1)
        }
    );
}

#[test]
fn stuck_round_robin() {
    check(
        Fault::StuckRoundRobin,
        Detector::RoundRobin,
        Cause::RoundRobinStuck,
        None,
        Some(HEADLESS),
    );
}

#[test]
fn spoofed_ids() {
    check(
        Fault::SpoofedIds,
        Detector::Integrity,
        Cause::Mismatch,
        None,
        None,
    );
}

/// 10 simulated minutes, 3 servers at 20 observations/s each, log-normal RTT around
/// 1 ms with 1 % outliers of 10-20 ms, 2 % legitimate NXDOMAIN, a shuffled headless
/// service with its expectation set: never anything but ok.
fn clean_run(noise: Noise, seed: u64) -> f32 {
    let mut scorer: Scorer = Scorer::new(ScoreConfig::default()).unwrap();
    let mut sim = Sim::new(seed, noise);
    let (max, allocations) = count(|| {
        expect_headless(&mut scorer, 0);
        let mut max = 0f32;
        // Per server: one observation every 50 ms, servers offset and jittered.
        for tick in 0..(10 * 60 * 20u64) {
            for server in 0..SERVERS {
                let t = tick * 50 * MS + u64::from(server) * 16 * MS + sim.rng.below(5 * MS);
                let target = sim.pick_target();
                let o = sim.clean(server, target, t);
                let a = scorer.observe(&o.observation());
                assert_eq!(
                    a.verdict,
                    Verdict::Ok,
                    "false alarm at {t} µs: {}",
                    scorer.reasons()
                );
                assert!(a.change.is_none());
                max = max.max(a.score);
            }
            if tick % 20 == 0 {
                let a = scorer.evaluate(tick * 50 * MS);
                assert_eq!(a.verdict, Verdict::Ok);
            }
        }
        max
    });
    assert_eq!(allocations, 0);
    assert_eq!(scorer.observations(), 10 * 60 * 20 * u64::from(SERVERS));
    max
}

#[test]
fn clean_ten_minutes_is_always_ok() {
    for seed in [11, 12, 13] {
        let max = clean_run(Noise::REALISTIC, seed);
        eprintln!("clean seed {seed}: max score {max:.3}");
        assert!(max < ScoreConfig::default().degraded_enter);
    }
}

#[test]
fn clean_with_isolated_timeouts_and_servfails_is_always_ok() {
    let max = clean_run(Noise::NOISY, 21);
    eprintln!("noisy clean: max score {max:.3}");
}

#[test]
fn single_odd_answers_do_not_move_the_verdict() {
    let mut scorer: Scorer = Scorer::new(ScoreConfig::default()).unwrap();
    let mut sim = Sim::new(5, Noise::REALISTIC);
    let (_, allocations) = count(|| {
        let mut t = 0;
        let odd = [
            Outcome::Response(Rcode::SERVFAIL),
            Outcome::Timeout,
            Outcome::Malformed,
            Outcome::Mismatch(dnswarden_core::wire::Mismatch::ID),
            Outcome::Truncated(dnswarden_core::score::Fallback::Failed),
            Outcome::Response(Rcode::NXDOMAIN),
        ];
        for (n, outcome) in odd.iter().cycle().take(60).enumerate() {
            // 2 s of clean traffic, then one odd answer (also a 500 ms RTT every time).
            for _ in 0..200 {
                t += STEP;
                let o = sim.clean(t as u32 % SERVERS, 0, t);
                assert_eq!(scorer.observe(&o.observation()).verdict, Verdict::Ok);
            }
            t += STEP;
            let mut o = sim.clean(n as u32 % SERVERS, 0, t);
            o.outcome = *outcome;
            o.rtt_us = 500_000;
            let a = scorer.observe(&o.observation());
            assert_eq!(a.verdict, Verdict::Ok, "{outcome:?}: {}", scorer.reasons());
        }
    });
    assert_eq!(allocations, 0);
}

#[test]
fn flapping_fault_does_not_flap_the_verdict() {
    // SERVFAIL on all servers, 300 ms on / 300 ms off for 30 s: the verdict escalates
    // at once and then holds (dwell + leave hold), instead of following every flap.
    let mut scorer: Scorer = Scorer::new(ScoreConfig::default()).unwrap();
    let mut sim = Sim::new(9, Noise::REALISTIC);
    let (changes, allocations) = count(|| {
        let mut t = 0;
        for i in 0..2_000u32 {
            t += STEP;
            let o = sim.clean(i % SERVERS, 0, t);
            scorer.observe(&o.observation());
        }
        let mut changes = 0;
        for i in 0..3_000u32 {
            t += STEP;
            let on = (i / 30) % 2 == 0;
            let fault = if on { Fault::ServfailAll } else { Fault::None };
            let o = sim.faulty(fault, i % SERVERS, 0, t);
            if scorer.observe(&o.observation()).change.is_some() {
                changes += 1;
            }
        }
        changes
    });
    assert_eq!(allocations, 0);
    assert!(changes <= 2, "{changes} verdict changes");
    assert_ne!(scorer.verdict(), Verdict::Ok);
}

#[test]
fn latency_on_one_server_names_it() {
    let mut scorer: Scorer = Scorer::new(ScoreConfig::default()).unwrap();
    let mut sim = Sim::new(17, Noise::REALISTIC);
    let ((start, detected), allocations) = count(|| {
        let mut t = 0;
        let mut i = 0u32;
        while t < WARMUP {
            t += STEP;
            i += 1;
            let o = sim.clean(i % SERVERS, 0, t);
            scorer.observe(&o.observation());
        }
        let start = t + STEP;
        loop {
            t += STEP;
            i += 1;
            let server = i % SERVERS;
            let mut o = sim.clean(server, 0, t);
            if server == 1 {
                o.rtt_us += 200_000;
            }
            if scorer.observe(&o.observation()).verdict != Verdict::Ok {
                return (start, t);
            }
            assert!(t < start + S, "not detected");
        }
    });
    assert_eq!(allocations, 0);
    let r = scorer.reasons();
    let top = r.top().unwrap();
    assert_eq!((top.detector, top.server), (Detector::Rtt, Some(1)), "{r}");
    assert!(
        matches!(top.evidence, Evidence::Rtt { median_us, threshold_us } if median_us < 2_000 && threshold_us < 10_000)
    );
    // The sick server is seen every 30 ms here; with 1 % natural outliers its spike quota
    // is 6 of the last 8 answers (binomial tail <= 1e-9), so 6 of its turns at most.
    assert!(detected - start <= 6 * 3 * STEP, "{} µs", detected - start);
    eprintln!(
        "latency on server 1 named after {} ms: {top}",
        (detected - start) / MS
    );
}

/// Feeds clean traffic (servers in turn, the usual target mix) until `until`.
fn clean_until(scorer: &mut Scorer, sim: &mut Sim, t: &mut u64, i: &mut u32, until: u64) {
    while *t < until {
        *t += STEP;
        *i += 1;
        let target = sim.pick_target();
        let o = sim.clean(*i % SERVERS, target, *t);
        scorer.observe(&o.observation());
    }
}

#[test]
fn repeated_rtt_spikes_are_detected_every_time() {
    // +30 ms on every server for 10 s (as long as the runner's time-to-detect trials
    // wait), back to ok, and again, three times within the 60 s baseline window: the
    // spike samples of one fault must not become the baseline of the next.
    let mut scorer: Scorer = Scorer::new(ScoreConfig::default()).unwrap();
    let mut sim = Sim::new(23, Noise::REALISTIC);
    let (delays, allocations) = count(|| {
        let (mut t, mut i) = (0u64, 0u32);
        clean_until(&mut scorer, &mut sim, &mut t, &mut i, WARMUP);
        let mut delays = [u64::MAX; 3];
        for delay in &mut delays {
            let start = t + STEP;
            let end = start + 10 * S;
            while t < end {
                t += STEP;
                i += 1;
                let target = sim.pick_target();
                let fault = Fault::Latency { extra_us: 30_000 };
                let o = sim.faulty(fault, i % SERVERS, target, t);
                let a = scorer.observe(&o.observation());
                if a.verdict != Verdict::Ok && *delay == u64::MAX {
                    *delay = t - start;
                    let top = scorer.reasons().top().copied();
                    assert_eq!(top.map(|r| r.detector), Some(Detector::Rtt), "{top:?}");
                }
                // Once detected, a lasting fault stays reported.
                if *delay != u64::MAX {
                    assert_ne!(a.verdict, Verdict::Ok, "fault forgotten at {t} µs");
                }
            }
            // Back to ok within the recovery bound, then a little calm.
            let deadline = t + RECOVERY_BOUND;
            while scorer.verdict() != Verdict::Ok {
                assert!(t < deadline, "no recovery: {}", scorer.reasons());
                t += STEP;
                i += 1;
                let target = sim.pick_target();
                let o = sim.clean(i % SERVERS, target, t);
                scorer.observe(&o.observation());
            }
            let calm_until = t + S;
            clean_until(&mut scorer, &mut sim, &mut t, &mut i, calm_until);
        }
        delays
    });
    assert_eq!(allocations, 0);
    eprintln!("repeated +30 ms: detected after {delays:?} µs");
    for (n, d) in delays.iter().enumerate() {
        assert!(
            *d <= 100 * MS,
            "fault {n} detected after {d} µs (all: {delays:?})"
        );
    }
}

/// A TC storm whose TCP fallback works: `Truncated(Answered(NOERROR))`.
const TC_ANSWERED: Outcome =
    Outcome::Truncated(dnswarden_core::score::Fallback::Answered(Rcode::NOERROR));

#[test]
fn new_truncation_with_working_fallback_is_detected_within_100ms() {
    // The scorer's shape: 3 servers, every 10 ms.
    let mut scorer: Scorer = Scorer::new(ScoreConfig::default()).unwrap();
    let mut sim = Sim::new(29, Noise::REALISTIC);
    let ((start, detected), allocations) = count(|| {
        let (mut t, mut i) = (0u64, 0u32);
        clean_until(&mut scorer, &mut sim, &mut t, &mut i, WARMUP);
        let start = t + STEP;
        loop {
            t += STEP;
            i += 1;
            let target = sim.pick_target();
            let mut o = sim.clean(i % SERVERS, target, t);
            o.outcome = TC_ANSWERED;
            if scorer.observe(&o.observation()).verdict != Verdict::Ok {
                return (start, t);
            }
            assert!(t < start + S, "not detected: {}", scorer.reasons());
        }
    });
    assert_eq!(allocations, 0);
    let r = scorer.reasons();
    let top = r.top().copied().unwrap();
    assert_eq!(
        (top.detector, top.cause),
        (Detector::Truncation, Cause::TruncationNew),
        "{r}"
    );
    assert!(detected - start <= 100 * MS, "{} µs", detected - start);

    // The runner's per-name scorer: one name, two servers, 20 observations/s.
    let mut scorer: Scorer = Scorer::new(ScoreConfig::default()).unwrap();
    let step = 50 * MS;
    let mut t = 0;
    for i in 0..400u32 {
        t += step;
        let o = sim.clean(i % 2, 0, t);
        assert_eq!(scorer.observe(&o.observation()).verdict, Verdict::Ok);
    }
    let start = t + step;
    let detected = loop {
        t += step;
        let mut o = sim.clean((t / step) as u32 % 2, 0, t);
        o.outcome = TC_ANSWERED;
        if scorer.observe(&o.observation()).verdict != Verdict::Ok {
            break t;
        }
        assert!(t < start + S, "not detected: {}", scorer.reasons());
    };
    assert!(detected - start <= 100 * MS, "{} µs", detected - start);
    eprintln!(
        "new truncation (one name, 20/s) detected after {} ms",
        (detected - start) / MS
    );
}

#[test]
fn always_truncated_name_is_not_new_truncation() {
    // The headless service is always truncated over UDP (answered over TCP), from its
    // first answer on; the other names never are. Two minutes stay ok, and the
    // truncation detector never rises.
    let mut scorer: Scorer = Scorer::new(ScoreConfig::default()).unwrap();
    let mut sim = Sim::new(31, Noise::REALISTIC);
    let (max_tc, allocations) = count(|| {
        let (mut t, mut i) = (0u64, 0u32);
        let mut max_tc = 0f32;
        while t < 120 * S {
            t += STEP;
            i += 1;
            let target = sim.pick_target();
            let mut o = sim.clean(i % SERVERS, target, t);
            if target == HEADLESS {
                o.outcome = TC_ANSWERED;
            }
            let a = scorer.observe(&o.observation());
            assert_eq!(a.verdict, Verdict::Ok, "at {t} µs: {}", scorer.reasons());
            max_tc = max_tc.max(scorer.severity(Detector::Truncation));
        }
        max_tc
    });
    assert_eq!(allocations, 0);
    assert_eq!(max_tc, 0.0);
}

#[test]
fn always_truncated_only_name_with_working_fallback_stays_ok() {
    // The runner's per-name scorer for a big headless service: every answer is truncated
    // over UDP and the TCP retry answers, from the first answer on, so TC is 100 % of
    // what this scorer sees. That is how the name works, not a fault: neither the TC
    // rate nor new truncation may rise (two servers, 20 observations/s, 2 minutes).
    let mut scorer: Scorer<16, 1> = Scorer::new(ScoreConfig::default()).unwrap();
    let mut sim = Sim::new(37, Noise::REALISTIC);
    let step = 50 * MS;
    let (max_tc, allocations) = count(|| {
        let (mut t, mut max_tc) = (0u64, 0f32);
        for i in 0..2400u32 {
            t += step;
            let mut o = sim.clean(i % 2, HEADLESS, t);
            o.outcome = TC_ANSWERED;
            let a = scorer.observe(&o.observation());
            assert_eq!(a.verdict, Verdict::Ok, "at {t} µs: {}", scorer.reasons());
            max_tc = max_tc.max(scorer.severity(Detector::Truncation));
            if i % 20 == 0 {
                assert_eq!(scorer.evaluate(t).verdict, Verdict::Ok);
            }
        }
        max_tc
    });
    assert_eq!(allocations, 0);
    assert_eq!(max_tc, 0.0);
}
