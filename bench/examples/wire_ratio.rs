//! Speed-up ratios of the wire benchmark's job, measured side by side and interleaved.
//!
//! Criterion times one implementation after the other (each for a second or two), so a
//! burst of load from a neighbour on this shared machine lands on one implementation
//! and moves that message's ratio. This harness times all four walkers of
//! `dnswarden_bench` (dnswarden-core, domain, hickory-proto and the unvalidated `floor`
//! reference) in short batches, taken in turn within each round (the order rotates
//! from round to round), and reports per message the median over the rounds of each
//! round's ratio, next to each walker's median time per message. A load burst then
//! spoils one round's ratio, not the message's result.
//!
//! ```sh
//! cargo run --release -p dnswarden-bench --example wire_ratio             # all messages
//! cargo run --release -p dnswarden-bench --example wire_ratio -- 41 200 syn/ knot-a
//! ```
//!
//! Arguments: rounds (default 41), batch length in µs (default 200), then optional
//! substrings; only messages whose name contains one of them are measured. Each timed
//! iteration asserts its checksum, as the criterion bench does.

use std::hint::black_box;
use std::time::Instant;

use dnswarden_bench::{
    agreed_responses, checksum_core, checksum_domain, checksum_floor, checksum_hickory,
};

type Walk = fn(&[u8]) -> Result<u64, dnswarden_bench::WalkError>;

const WALKS: [Walk; 4] = [
    checksum_core,
    checksum_domain,
    checksum_hickory,
    checksum_floor,
];

/// Runs `iters` iterations of one walker and returns the time per iteration, in ns.
#[inline(never)]
fn batch(walk: Walk, bytes: &[u8], expected: u64, iters: u32) -> f64 {
    let start = Instant::now();
    for _ in 0..iters {
        let sum = walk(black_box(bytes));
        assert!(matches!(sum, Ok(s) if s == expected));
    }
    start.elapsed().as_nanos() as f64 / f64::from(iters)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn usage(what: &str) -> ! {
    eprintln!("usage: wire_ratio [ROUNDS [BATCH_US [NAME-SUBSTRING...]]] ({what})");
    std::process::exit(2);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = match args.next() {
        None => 41,
        Some(a) => a
            .parse()
            .unwrap_or_else(|_| usage("ROUNDS must be a number")),
    };
    let batch_us: f64 = match args.next() {
        None => 200.0,
        Some(a) => a
            .parse()
            .unwrap_or_else(|_| usage("BATCH_US must be a number")),
    };
    if rounds == 0 || batch_us <= 0.0 {
        usage("ROUNDS and BATCH_US must be positive");
    }
    let filters: Vec<String> = args.collect();
    let samples = agreed_responses(&filters);
    println!(
        "| message | bytes | core ns | domain ns | hickory ns | floor ns | vs domain (≥2×) \
         | vs hickory (≥10×) | floor vs domain | floor vs hickory |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    let mut summary: [Vec<f64>; 4] = Default::default();
    for (name, bytes, expected) in &samples {
        // Calibrate: iterations per batch so that one batch lasts about `batch_us`.
        let iters: [u32; 4] = std::array::from_fn(|i| {
            let ns =
                batch(WALKS[i], bytes, *expected, 200).min(batch(WALKS[i], bytes, *expected, 200));
            ((batch_us * 1e3 / ns.max(1.0)) as u32).max(10)
        });
        let mut per_round: [Vec<f64>; 4] = Default::default();
        let mut ratios: [Vec<f64>; 4] = Default::default();
        for round in 0..rounds {
            let mut t = [0.0; 4];
            for k in 0..4 {
                let i = (round + k) % 4;
                t[i] = batch(WALKS[i], bytes, *expected, iters[i]);
            }
            for i in 0..4 {
                per_round[i].push(t[i]);
            }
            ratios[0].push(t[1] / t[0]); // domain / core
            ratios[1].push(t[2] / t[0]); // hickory / core
            ratios[2].push(t[1] / t[3]); // domain / floor
            ratios[3].push(t[2] / t[3]); // hickory / floor
        }
        let ns: Vec<f64> = per_round.into_iter().map(median).collect();
        let r: Vec<f64> = ratios.into_iter().map(median).collect();
        let mark = |v: f64, goal: f64| if v >= goal { "" } else { " ✗" };
        println!(
            "| {name} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2}×{} | {:.1}×{} | {:.2}× | {:.1}× |",
            bytes.len(),
            ns[0],
            ns[1],
            ns[2],
            ns[3],
            r[0],
            mark(r[0], 2.0),
            r[1],
            mark(r[1], 10.0),
            r[2],
            r[3],
        );
        for (s, v) in summary.iter_mut().zip(r) {
            s.push(v);
        }
    }
    println!();
    let labels = [
        ("dnswarden-core vs domain", 2.0),
        ("dnswarden-core vs hickory-proto", 10.0),
        ("floor (unvalidated) vs domain", 2.0),
        ("floor (unvalidated) vs hickory-proto", 10.0),
    ];
    for ((label, goal), mut v) in labels.into_iter().zip(summary) {
        if v.is_empty() {
            continue;
        }
        v.sort_by(f64::total_cmp);
        let q = |f: f64| v[((f * v.len() as f64) as usize).min(v.len() - 1)];
        println!(
            "{label} (median of {rounds} interleaved rounds per message, {} messages): min {:.2}×, \
             quartiles {:.2}× / {:.2}× / {:.2}×, max {:.2}×; {} at ≥ {goal}×",
            v.len(),
            v[0],
            q(0.25),
            q(0.5),
            q(0.75),
            v[v.len() - 1],
            v.iter().filter(|&&x| x >= goal).count(),
        );
    }
}
