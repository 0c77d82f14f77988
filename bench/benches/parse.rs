//! Wire parsing: dnswarden-core vs hickory-proto vs domain, side by side, with an
//! unvalidated reference walker (`floor`) as the floor any parser of this job can reach.
//!
//! The same job for each implementation and each corpus message: parse, then visit the
//! header, every question and every record (type, class, TTL, owner labels, typed rdata,
//! OPT fields and options) into a checksum (`dnswarden_bench::walk_*`). The three
//! checksums are asserted equal once per message before timing, and each timed iteration
//! asserts its own result.
//!
//! Run: `cargo bench -p dnswarden-bench --bench parse` (add `-- --test` to run every
//! benchmark once as a check, as CI does). Restrict with a filter, e.g. `-- syn/`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dnswarden_bench::{
    Agreement, checksum_core, checksum_domain, checksum_floor, checksum_hickory, corpus,
};

fn parse(c: &mut Criterion) {
    // Responses only: the captured queries (`*.query`) are checked by the agreement test
    // but would double the run time for little information.
    for sample in corpus().into_iter().filter(|s| !s.name.ends_with(".query")) {
        let agreement = Agreement::of(&sample.bytes);
        let Some(expected) = agreement.agreed() else {
            // A fixture that some implementation rejects (for example a truncated
            // capture) is not comparable; say so instead of timing a failure.
            eprintln!(
                "skipping {}: implementations disagree: {}",
                sample.name,
                Agreement::explain(&sample.bytes)
            );
            assert!(
                !sample.name.starts_with("syn/"),
                "synthetic messages must agree"
            );
            continue;
        };
        let bytes = sample.bytes.as_slice();
        let mut group = c.benchmark_group(format!("parse/{}", sample.name));
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function("dnswarden-core", |b| {
            b.iter(|| {
                let sum = checksum_core(black_box(bytes));
                assert!(matches!(sum, Ok(s) if s == expected));
                sum
            })
        });
        group.bench_function("domain", |b| {
            b.iter(|| {
                let sum = checksum_domain(black_box(bytes));
                assert!(matches!(sum, Ok(s) if s == expected));
                sum
            })
        });
        group.bench_function("hickory-proto", |b| {
            b.iter(|| {
                let sum = checksum_hickory(black_box(bytes));
                assert!(matches!(sum, Ok(s) if s == expected));
                sum
            })
        });
        // The reference point: a plain walker that validates nothing (see
        // `dnswarden_bench::walk_floor`), what any parser doing this job can reach.
        group.bench_function("floor", |b| {
            b.iter(|| {
                let sum = checksum_floor(black_box(bytes));
                assert!(matches!(sum, Ok(s) if s == expected));
                sum
            })
        });
        group.finish();
    }
}

fn config() -> Criterion {
    // Short runs: the corpus has ~90 messages times three implementations, on two shared
    // cores. Medians are what BENCHMARKS.md quotes.
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1500))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = parse
}
criterion_main!(benches);
