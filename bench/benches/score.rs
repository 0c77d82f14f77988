//! The full scorer (all eight detectors, fusion and verdict) per observation.
//!
//! Streams of observations are generated once (seeded, deterministic; answer
//! fingerprints computed up front, as the adapters do before they call the scorer), then
//! each timed iteration feeds the next one with a clock that advances 10 ms (so windows
//! slide and baselines refresh as in production) through [`Scorer::record`] and asserts
//! the score is in [0, 1]. One case feeds the clean stream through [`Scorer::observe`]
//! (which also returns the whole `Assessment`) for comparison.
//!
//! Run: `cargo bench -p dnswarden-bench --bench score` (add `-- --test` to run every
//! benchmark once as a check). Target: ≤ 50 ns per observation.
//!
//! Instruction count (deterministic, unlike time on a shared machine): with
//! `DNSWARDEN_SCORE_IR=N` set, the binary skips criterion, warms a scorer on the clean
//! 3-server stream (and, with `DNSWARDEN_SCORE_IR_FAULTS=1`, the 5 % fault stream; with
//! `DNSWARDEN_SCORE_IR_WIDE=1`, the clean 16-server, 62-target stream) and
//! feeds `N` more observations inside `measured` (through `record`; with
//! `DNSWARDEN_SCORE_IR_OBSERVE=1` through `observe`); run it under callgrind collecting
//! only that function and divide the total by `N`:
//!
//! ```sh
//! cargo bench -p dnswarden-bench --bench score --no-run   # prints the binary path
//! DNSWARDEN_SCORE_IR=100000 valgrind --tool=callgrind --toggle-collect='*measured*' \
//!     --callgrind-out-file=/tmp/score.cg target/release/deps/score-HASH
//! callgrind_annotate /tmp/score.cg | head   # "PROGRAM TOTALS" Ir / 100000
//! ```
//!
//! The loop copies a pre-built observation and sets its time (a few instructions per
//! observation); everything else counted is `Scorer::record` (or `Scorer::observe`).

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{BatchSize, Criterion, Throughput, criterion_group};
use dnswarden_core::score::{
    AnswerSummary, Fallback, Observation, Outcome, ScoreConfig, Scorer, member_hash_ip,
};
use dnswarden_core::wire::{Mismatch, Rcode};

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One pre-generated exchange; the members live here so the stream owns them.
struct Item {
    server: u32,
    target: u32,
    outcome: Outcome,
    rtt_us: u32,
    members: [u64; 4],
    n: usize,
}

impl Item {
    fn observation(&self, at_us: u64) -> Observation<'_> {
        let answers = match self.members.get(..self.n) {
            Some(m) if !m.is_empty() => AnswerSummary::from_members(m),
            _ => AnswerSummary::EMPTY,
        };
        Observation::new(self.server, self.target, at_us, self.outcome)
            .rtt(self.rtt_us)
            .answers(answers)
    }
}

fn pod(i: u8) -> u64 {
    member_hash_ip(Ipv4Addr::new(10, 244, 1, i).into())
}

/// A stream over `servers` servers and `targets` single-answer targets plus one headless
/// service (4 shuffled pods) and a missing name. `fault` is the share of observations
/// that carry a fault (SERVFAIL, timeout, failed TC, mismatch, slow), spread over all.
fn stream(len: usize, servers: u32, targets: u32, fault: f64, seed: u64) -> Vec<Item> {
    let mut rng = Rng(seed);
    (0..len)
        .map(|i| {
            let server = i as u32 % servers;
            let pick = rng.next() % u64::from(targets + 2);
            let mut item = Item {
                server,
                target: pick as u32,
                outcome: Outcome::Response(Rcode::NOERROR),
                rtt_us: (800.0 + 400.0 * rng.unit()) as u32,
                members: [0; 4],
                n: 0,
            };
            if rng.unit() < 0.01 {
                item.rtt_us = 15_000;
            }
            if pick == u64::from(targets) {
                let mut m = [pod(1), pod(2), pod(3), pod(4)];
                m.rotate_left((rng.next() % 4) as usize);
                item.members = m;
                item.n = 4;
            } else if pick == u64::from(targets) + 1 {
                item.outcome = Outcome::Response(Rcode::NXDOMAIN);
            } else {
                item.members[0] = member_hash_ip(Ipv4Addr::new(10, 96, 0, pick as u8).into());
                item.n = 1;
            }
            if rng.unit() < fault {
                item.n = 0;
                item.outcome = match rng.next() % 5 {
                    0 => Outcome::Response(Rcode::SERVFAIL),
                    1 => Outcome::Timeout,
                    2 => Outcome::Truncated(Fallback::Failed),
                    3 => Outcome::Mismatch(Mismatch::ID),
                    _ => {
                        item.rtt_us = 200_000;
                        Outcome::Response(Rcode::NOERROR)
                    }
                };
            }
            item
        })
        .collect()
}

fn warmed<const S: usize, const T: usize>(items: &[Item], targets: u32) -> (Scorer<S, T>, u64) {
    let mut scorer = Scorer::<S, T>::new(ScoreConfig::default()).expect("default config");
    scorer
        .expect_members(targets, 0, &[pod(1), pod(2), pod(3), pod(4)])
        .expect("slot");
    let mut t = 0;
    for _ in 0..4 {
        for item in items {
            t += 10_000;
            scorer.observe(&item.observation(t));
        }
    }
    (scorer, t)
}

fn bench_stream<const S: usize, const T: usize>(
    c: &mut Criterion,
    name: &str,
    servers: u32,
    targets: u32,
    fault: f64,
    assessment: bool,
) {
    let items = stream(4096, servers, targets, fault, 0x5EED);
    let (scorer, t0) = warmed::<S, T>(&items, targets);
    let obs: Vec<Observation<'_>> = items.iter().map(|i| i.observation(0)).collect();
    let mut group = c.benchmark_group("score/observe");
    group.throughput(Throughput::Elements(1));
    group.bench_function(name, |b| {
        let mut scorer = scorer.clone();
        let mut t = t0;
        let mut i = 0usize;
        b.iter(|| {
            t += 10_000;
            i = (i + 1) & 4095;
            let o = Observation { at_us: t, ..obs[i] };
            if assessment {
                let a = scorer.observe(black_box(&o));
                assert!((0.0..=1.0).contains(&a.score));
                return a.score;
            }
            black_box(scorer.record(black_box(&o)));
            let score = scorer.score();
            assert!((0.0..=1.0).contains(&score));
            score
        })
    });
    group.finish();
}

fn observe(c: &mut Criterion) {
    // The runner's shape: 3 CoreDNS pods, a handful of names.
    bench_stream::<16, 64>(c, "3-servers-8-targets-clean", 3, 6, 0.0, false);
    bench_stream::<16, 64>(c, "3-servers-8-targets-5pct-faults", 3, 6, 0.05, false);
    // Every slot in use: 16 servers, 60 targets (lookups scan full tables).
    bench_stream::<16, 64>(c, "16-servers-62-targets-clean", 16, 60, 0.0, false);
    // The clean stream through `observe` (the whole `Assessment` per observation).
    bench_stream::<16, 64>(c, "3-servers-8-targets-clean-assessment", 3, 6, 0.0, true);
}

fn evaluate_and_reasons(c: &mut Criterion) {
    let items = stream(4096, 3, 6, 0.05, 7);
    let (scorer, t0) = warmed::<16, 64>(&items, 6);
    let mut group = c.benchmark_group("score");
    group.bench_function("evaluate", |b| {
        b.iter_batched_ref(
            || scorer.clone(),
            |s| {
                let a = s.evaluate(black_box(t0 + 1_000_000));
                assert!((0.0..=1.0).contains(&a.score));
                a
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("reasons", |b| {
        b.iter(|| {
            let r = black_box(&scorer).reasons();
            assert!(r.len() <= 8);
            r
        })
    });
    group.finish();
}

/// Feeds `n` observations (cycling through `obs`, 10 ms apart from `t0`); the only
/// function collected by the callgrind run.
#[inline(never)]
fn measured<const S: usize, const T: usize>(
    scorer: &mut Scorer<S, T>,
    obs: &[Observation<'_>],
    t0: u64,
    n: usize,
    assessment: bool,
) -> f32 {
    let mut t = t0;
    let mut acc = 0.0f32;
    for o in obs.iter().cycle().take(n) {
        t += 10_000;
        let o = Observation { at_us: t, ..*o };
        if assessment {
            acc += scorer.observe(black_box(&o)).score;
        } else {
            black_box(scorer.record(black_box(&o)));
            acc += scorer.score();
        }
    }
    acc
}

fn instruction_count(n: usize, faults: bool, wide: bool, assessment: bool) {
    let fault = if faults { 0.05 } else { 0.0 };
    let (servers, targets) = if wide { (16, 60) } else { (3, 6) };
    let items = stream(4096, servers, targets, fault, 0x5EED);
    let (mut scorer, t0) = warmed::<16, 64>(&items, targets);
    let obs: Vec<Observation<'_>> = items.iter().map(|i| i.observation(0)).collect();
    let acc = measured(&mut scorer, &obs, t0, n, assessment);
    println!(
        "fed {n} observations ({}, {servers} servers), score sum {acc}, verdict {}",
        if faults { "5 % faults" } else { "clean" },
        scorer.verdict()
    );
}

criterion_group!(benches, observe, evaluate_and_reasons);

fn main() {
    if let Ok(n) = std::env::var("DNSWARDEN_SCORE_IR") {
        let n = n
            .parse()
            .expect("DNSWARDEN_SCORE_IR: a number of observations");
        let faults = std::env::var_os("DNSWARDEN_SCORE_IR_FAULTS").is_some();
        let wide = std::env::var_os("DNSWARDEN_SCORE_IR_WIDE").is_some();
        let assessment = std::env::var_os("DNSWARDEN_SCORE_IR_OBSERVE").is_some();
        instruction_count(n, faults, wide, assessment);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
