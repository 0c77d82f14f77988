//! One pass of one implementation's benchmark walk over the wire corpus, for counting
//! instructions with callgrind (deterministic, unlike wall-clock time on a shared box).
//!
//! `bench/callgrind.py` builds this in the bench profile and runs it under
//! `valgrind --tool=callgrind`, collecting only inside [`measure`] and dumping after each
//! call, which gives the instruction count per message and implementation. By hand:
//!
//! ```sh
//! cargo build --profile bench -p dnswarden-bench --example wire_ir
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect=wire_ir::measure --dump-after=wire_ir::measure \
//!     target/release/examples/wire_ir core
//! ```
//!
//! Arguments: the implementation (`core`, `domain`, `hickory` or `floor`, the unvalidated
//! reference walker), then optional
//! substrings; only messages whose name contains one of them are walked. It prints the
//! names of the walked messages, in order, one per line.

use std::hint::black_box;

use dnswarden_bench::{
    agreed_responses, checksum_core, checksum_domain, checksum_floor, checksum_hickory,
};

#[derive(Clone, Copy)]
enum Imp {
    Core,
    Domain,
    Hickory,
    Floor,
}

/// The measured call: exactly what one criterion iteration does.
#[inline(never)]
fn measure(imp: Imp, bytes: &[u8], expected: u64) {
    walk(imp, bytes, expected);
}

/// The same calls, not collected: runs every code path once first (lazy statics,
/// first-touch page faults) so the measured pass sees a warm process. (A loop, so that
/// the linker cannot fold it with `measure`.)
#[inline(never)]
fn warm(imp: Imp, samples: &[(String, Vec<u8>, u64)]) {
    for (_, bytes, sum) in samples {
        walk(imp, bytes, *sum);
    }
}

#[inline(always)]
fn walk(imp: Imp, bytes: &[u8], expected: u64) {
    let sum = match imp {
        Imp::Core => checksum_core(black_box(bytes)),
        Imp::Domain => checksum_domain(black_box(bytes)),
        Imp::Hickory => checksum_hickory(black_box(bytes)),
        Imp::Floor => checksum_floor(black_box(bytes)),
    };
    assert!(matches!(sum, Ok(s) if s == expected));
}

fn main() {
    let mut args = std::env::args().skip(1);
    let imp = match args.next().as_deref() {
        Some("core") => Imp::Core,
        Some("domain") => Imp::Domain,
        Some("hickory") => Imp::Hickory,
        Some("floor") => Imp::Floor,
        other => {
            eprintln!(
                "usage: wire_ir core|domain|hickory|floor [NAME-SUBSTRING...] (got {other:?})"
            );
            std::process::exit(2);
        }
    };
    let filters: Vec<String> = args.collect();
    // The same messages as benches/parse.rs: responses that all three agree on.
    let samples = agreed_responses(&filters);
    warm(imp, &samples);
    for (name, bytes, sum) in &samples {
        measure(imp, bytes, *sum);
        println!("{name}");
    }
}
