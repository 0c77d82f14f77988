//! Differential: where hickory-proto (and domain) decode a message and dnswarden-core's
//! walk succeeds, every visited field must agree (`dnswarden_bench::walk_*` with a
//! recording sink). Expected disagreements are masked, see `fuzz/README.md`.
#![no_main]

use dnswarden_bench::{Field, Trace, Value, walk_core, walk_domain, walk_hickory};
use libfuzzer_sys::fuzz_target;

/// Record types all three visitors decode into the same typed fields.
const TYPED: [u64; 10] = [1, 2, 5, 6, 12, 15, 16, 28, 33, 41];
/// EDNS Client Subnet (RFC 7871): hickory decodes and re-encodes it, normalising it.
const EDNS_ECS: u64 = 8;

/// Masks the fields whose disagreement is expected: raw rdata of types that a peer
/// decodes into its own typed form (re-encoding is not byte-exact), and ECS option data.
fn normalise(t: &Trace) -> Vec<(Field, Value)> {
    let mut rtype = 0;
    let mut opt_code = 0;
    t.0.iter()
        .map(|(f, v)| {
            match (f, v) {
                (Field::Rtype, Value::Num(n)) => rtype = *n,
                (Field::OptCode, Value::Num(n)) => opt_code = *n,
                (Field::Raw, _) if !TYPED.contains(&rtype) && rtype != 10 => {
                    return (*f, Value::Num(0));
                }
                (Field::OptData, _) if opt_code == EDNS_ECS => return (*f, Value::Num(0)),
                _ => {}
            }
            (*f, v.clone())
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let mut core = Trace::default();
    if walk_core(data, &mut core).is_err() {
        return;
    }
    let ours = normalise(&core);
    let mut hick = Trace::default();
    if walk_hickory(data, &mut hick).is_ok() {
        let theirs = normalise(&hick);
        if ours != theirs {
            panic!(
                "core vs hickory-proto: {}",
                Trace(ours)
                    .first_difference(&Trace(theirs))
                    .unwrap_or_default()
            );
        }
    }
    let mut dom = Trace::default();
    if walk_domain(data, &mut dom).is_ok() {
        let theirs = normalise(&dom);
        if ours != theirs {
            panic!(
                "core vs domain: {}",
                Trace(ours)
                    .first_difference(&Trace(theirs))
                    .unwrap_or_default()
            );
        }
    }
});
