//! Property tests for the scorer: arbitrary observation streams (hostile keys, rcodes,
//! RTTs, answer summaries, clocks that jump and go backwards, expectations that come and
//! go) never panic, keep every severity and score in [0, 1], and allocate nothing; a
//! million hostile observations leave the scorer's size and allocation count unchanged.

mod common_sim;

use common_sim::Rng;
use common_sim::alloc_counter::{Counting, count};
use dnswarden_core::score::{
    AnswerSummary, CapacityError, Detector, Fallback, Observation, Outcome, ScoreConfig, Scorer,
};
use dnswarden_core::wire::{Mismatch, Rcode};
use proptest::prelude::*;

#[global_allocator]
static ALLOC: Counting = Counting;

#[derive(Clone, Debug)]
enum Op {
    Observe {
        server: u32,
        target: u32,
        dt: i64,
        outcome: Outcome,
        rtt: u32,
        count: u16,
        fingerprint: u64,
        first: u64,
        chain: u8,
        final_name: u64,
        members: Vec<u64>,
    },
    Evaluate {
        dt: i64,
    },
    Expect {
        target: u32,
        members: Vec<u64>,
    },
    ExpectFingerprint {
        target: u32,
        fingerprint: u64,
    },
    ExpectName {
        target: u32,
        name: u64,
    },
    ForgetTarget(u32),
    ForgetServer(u32),
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        4 => prop_oneof![Just(0u16), Just(2), Just(3), any::<u16>()].prop_map(|r| Outcome::Response(Rcode(r))),
        1 => Just(Outcome::Timeout),
        1 => prop_oneof![
            Just(Fallback::NotAttempted),
            Just(Fallback::Failed),
            any::<u16>().prop_map(|r| Fallback::Answered(Rcode(r)))
        ]
        .prop_map(Outcome::Truncated),
        1 => Just(Outcome::Malformed),
        1 => Just(Outcome::Mismatch(Mismatch::ID)),
    ]
}

/// Keys from a small set (so state accumulates and slots are evicted) or anything.
fn key() -> impl Strategy<Value = u32> {
    prop_oneof![4 => 0u32..6, 1 => any::<u32>()]
}

fn dt() -> impl Strategy<Value = i64> {
    prop_oneof![
        8 => 0i64..20_000,
        1 => -5_000_000i64..0,
        1 => 0i64..120_000_000,
        1 => Just(i64::MAX),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let observe = (
        key(),
        key(),
        dt(),
        outcome(),
        prop_oneof![0u32..3_000, any::<u32>()],
        prop_oneof![0u16..6, any::<u16>()],
        prop_oneof![0u64..4, any::<u64>()],
        prop_oneof![0u64..4, any::<u64>()],
        any::<u8>(),
        0u64..3,
        prop::collection::vec(0u64..8, 0..6),
    )
        .prop_map(
            |(
                server,
                target,
                dt,
                outcome,
                rtt,
                count,
                fingerprint,
                first,
                chain,
                final_name,
                members,
            )| {
                Op::Observe {
                    server,
                    target,
                    dt,
                    outcome,
                    rtt,
                    count,
                    fingerprint,
                    first,
                    chain,
                    final_name,
                    members,
                }
            },
        );
    prop_oneof![
        20 => observe,
        2 => dt().prop_map(|dt| Op::Evaluate { dt }),
        1 => (key(), prop::collection::vec(0u64..8, 0..70)).prop_map(|(target, members)| Op::Expect { target, members }),
        1 => (key(), 0u64..4).prop_map(|(target, fingerprint)| Op::ExpectFingerprint { target, fingerprint }),
        1 => (key(), 0u64..3).prop_map(|(target, name)| Op::ExpectName { target, name }),
        1 => key().prop_map(Op::ForgetTarget),
        1 => key().prop_map(Op::ForgetServer),
    ]
}

fn in_unit(x: f32) -> bool {
    (0.0..=1.0).contains(&x)
}

fn check_invariants<const S: usize, const T: usize>(s: &Scorer<S, T>) {
    assert!(in_unit(s.score()), "score {}", s.score());
    for d in Detector::ALL {
        assert!(in_unit(s.severity(d)), "{d}: {}", s.severity(d));
    }
    let reasons = s.reasons();
    for r in &reasons {
        assert!(in_unit(r.severity) && in_unit(r.weighted), "{r:?}");
    }
    for k in s.servers() {
        let h = s.server_health(k).expect("listed servers are tracked");
        assert!(in_unit(h.score));
        assert!(h.severities.iter().all(|x| in_unit(*x)));
    }
}

fn run<const S: usize, const T: usize>(ops: &[Op]) {
    let mut s: Scorer<S, T> = Scorer::new(ScoreConfig::default()).unwrap();
    let size = size_of_val(&s);
    let ((), allocations) = count(|| {
        let mut now: u64 = 1_000_000;
        let step = |now: &mut u64, dt: i64| {
            *now = if dt >= 0 {
                now.saturating_add(dt as u64)
            } else {
                now.saturating_sub(dt.unsigned_abs())
            };
        };
        for op in ops {
            match op {
                Op::Observe {
                    server,
                    target,
                    dt,
                    outcome,
                    rtt,
                    count,
                    fingerprint,
                    first,
                    chain,
                    final_name,
                    members,
                } => {
                    step(&mut now, *dt);
                    let answers = AnswerSummary {
                        count: *count,
                        set_fingerprint: *fingerprint,
                        first: *first,
                        cname_chain_len: *chain,
                        final_name: *final_name,
                        members,
                    };
                    let obs = Observation::new(*server, *target, now, *outcome)
                        .rtt(*rtt)
                        .answers(answers);
                    let a = s.observe(&obs);
                    assert!(in_unit(a.score));
                    if let Some(c) = a.change {
                        assert_ne!(c.from, c.to);
                        assert_eq!(c.to, a.verdict);
                    }
                }
                Op::Evaluate { dt } => {
                    step(&mut now, *dt);
                    assert!(in_unit(s.evaluate(now).score));
                }
                Op::Expect { target, members } => {
                    let r = s.expect_members(*target, now, members);
                    if members.len() > 64 {
                        assert_eq!(r, Err(CapacityError::TooManyMembers));
                    } else {
                        assert!(matches!(r, Ok(()) | Err(CapacityError::TargetsFull)));
                    }
                }
                Op::ExpectFingerprint {
                    target,
                    fingerprint,
                } => {
                    let _ = s.expect_fingerprint(*target, now, *fingerprint, None);
                }
                Op::ExpectName { target, name } => {
                    let _ = s.expect_final_name(*target, now, *name);
                }
                Op::ForgetTarget(t) => {
                    s.forget_target(*t);
                }
                Op::ForgetServer(k) => {
                    s.forget_server(*k);
                }
            }
            check_invariants(&s);
        }
    });
    assert_eq!(allocations, 0, "the scorer allocated");
    assert_eq!(size, size_of_val(&s));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn arbitrary_streams_small_tables(ops in prop::collection::vec(op(), 0..400)) {
        run::<2, 2>(&ops);
    }

    #[test]
    fn arbitrary_streams_default_tables(ops in prop::collection::vec(op(), 0..400)) {
        run::<16, 64>(&ops);
    }

    #[test]
    fn oversized_member_sets_are_rejected(n in 65usize..200) {
        let mut s: Scorer<2, 2> = Scorer::new(ScoreConfig::default()).unwrap();
        let members: Vec<u64> = (0..n as u64).collect();
        prop_assert!(s.expect_members(1, 0, &members).is_err());
    }
}

/// A million hostile observations: nothing allocates, the size is a compile-time
/// constant, and the invariants hold at the end.
#[test]
fn a_million_observations_in_fixed_memory() {
    let mut s: Scorer = Scorer::new(ScoreConfig::default()).unwrap();
    let before = size_of_val(&s);
    let mut rng = Rng::new(42);
    let members = [1u64, 2, 3, 4, 5, 6, 7, 8];
    let ((), allocations) = count(|| {
        let mut now = 0u64;
        for i in 0..1_000_000u32 {
            let r = rng.next_u64();
            now = match r % 1000 {
                0 => now.saturating_sub(r % 10_000_000),
                1 => now.saturating_add(r % 600_000_000),
                _ => now.saturating_add(r % 20_000),
            };
            let outcome = match (r >> 10) % 12 {
                0 => Outcome::Timeout,
                1 => Outcome::Malformed,
                2 => Outcome::Mismatch(Mismatch::ID),
                3 => Outcome::Truncated(Fallback::Failed),
                4 => Outcome::Truncated(Fallback::Answered(Rcode((r >> 20) as u16))),
                5 => Outcome::Response(Rcode::SERVFAIL),
                6 => Outcome::Response(Rcode::NXDOMAIN),
                _ => Outcome::Response(Rcode((r >> 40) as u16 % 24)),
            };
            let n = ((r >> 30) % 9) as usize;
            let answers = AnswerSummary::from_members(&members[..n]);
            let server = if r.is_multiple_of(7) {
                (r >> 32) as u32
            } else {
                (r >> 32) as u32 % 20
            };
            let target = if r.is_multiple_of(5) {
                (r >> 16) as u32
            } else {
                (r >> 16) as u32 % 100
            };
            let obs = Observation::new(server, target, now, outcome)
                .rtt((r >> 8) as u32 % 2_000_000)
                .answers(answers);
            let a = s.observe(&obs);
            assert!(in_unit(a.score));
            if i.is_multiple_of(10_000) {
                s.evaluate(now);
                if i.is_multiple_of(100_000) {
                    let _ = s.expect_members(i % 100, now, &members[..(i as usize % 8)]);
                }
            }
        }
    });
    assert_eq!(allocations, 0);
    assert_eq!(before, size_of_val(&s));
    assert_eq!(s.observations(), 1_000_000);
    assert!(
        s.evictions() > 0,
        "the stream was meant to churn server slots"
    );
    check_invariants(&s);
    eprintln!(
        "size_of::<Scorer>() = {before} bytes; evictions {}; untracked targets {}",
        s.evictions(),
        s.untracked_targets()
    );
}
