//! Per-message cost of the proxy-wasm filter under our wasmtime host, next to the same
//! work done natively with `dnswarden-core`, in one criterion run.
//!
//! One element is one DNS-over-TCP exchange (a query, then its answer, each with its
//! length prefix):
//!
//! * `native_core`: frame the query, parse it, keep its question octets; frame the
//!   answer, match it to the query and summarise it in one pass
//!   (`wire::check_and_summarize`), feed the scorer: what the filter does, as plain Rust.
//! * `native_core_multipass`: the same with the path the filter used before
//!   `check_and_summarize` (`QueryKey::check`, then `Observation::from_exchange`, which
//!   reads the question and the answers again), for comparison.
//! * `wasm_filter`: the built `.wasm` handling `on_downstream_data` + `on_upstream_data`
//!   for the same bytes through `dnswarden-wasm-host` (wasmtime, Cranelift), including
//!   the host calls it makes (buffer copies, metrics, clock).
//!
//! * `per_exchange_pipelined_16/wasm_filter`: the same with 16 queries in flight (one
//!   chunk of 16 queries, then one of their 16 answers), as `dnsperf -q` pipelines them;
//!   reported per exchange.
//!
//! Every iteration asserts the result (a matched NOERROR answer natively; `Continue`
//! from both wasm callbacks).
//!
//! Run: `cargo bench -p dnswarden-bench --bench wasm` (add `-- --test` to run each
//! benchmark once as a check). The filter is built with `wasm-plugin/build-wasm.sh`,
//! or taken from `DNSWARDEN_WASM`.
//!
//! Instruction count (deterministic, unlike time on a shared machine): with
//! `DNSWARDEN_WASM_IR=N` set, the binary skips criterion, warms one connection with 200
//! exchanges and feeds `N` more inside `measured`; run it under callgrind collecting only
//! that function and divide the total by `N`. With `DNSWARDEN_WASM_PERFMAP=1` wasmtime
//! writes `/tmp/perf-<pid>.map`, which names the JIT address ranges of the module's
//! functions (a names-keeping module: `CARGO_PROFILE_WASM_RELEASE_STRIP=false` and
//! `wasm-opt -g`):
//!
//! ```sh
//! cargo bench -p dnswarden-bench --bench wasm --no-run   # prints the binary path
//! DNSWARDEN_WASM=<module> DNSWARDEN_WASM_IR=2000 valgrind --tool=callgrind \
//!     --toggle-collect='*measured*' target/release/deps/wasm-HASH
//! ```

use std::hint::black_box;
use std::path::PathBuf;
use std::process::Command;

use criterion::{Criterion, Throughput, criterion_group};
use dnswarden_core::score::{Observation, Outcome, ScoreConfig, Scorer};
use dnswarden_core::wire::{
    Asked, MAX_QUESTION_LEN, Message, QueryBuilder, QueryKey, Rcode, Rtype, TcpFramer,
    check_and_summarize, question_wire,
};
use dnswarden_wasm_host::{Action, Host, Vm, VmOptions};

const NAME: &str = "kubernetes.default.svc.cluster.local";

fn filter_wasm() -> PathBuf {
    if let Some(p) = std::env::var_os("DNSWARDEN_WASM") {
        return PathBuf::from(p);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = Command::new("bash")
        .arg(root.join("wasm-plugin/build-wasm.sh"))
        .output()
        .expect("run wasm-plugin/build-wasm.sh");
    assert!(out.status.success(), "building the filter failed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    PathBuf::from(stdout.lines().last().expect("artifact path").trim())
}

/// A query and its NOERROR answer (question echoed, QR and RA set, two A records as a
/// small headless service would answer), both with the TCP length prefix.
fn exchange() -> (Vec<u8>, Vec<u8>) {
    let mut buf = [0u8; 512];
    let n = QueryBuilder::new(0x1234, NAME, Rtype::A)
        .rd(true)
        .tcp(true)
        .write(&mut buf)
        .expect("query");
    let query = buf[..n].to_vec();
    let mut answer = query.clone();
    answer[4] |= 0x80; // QR (byte 2 of the message, after the 2-byte prefix)
    answer[5] |= 0x80; // RA
    answer[9] = 2; // ANCOUNT (bytes 6..8 of the message)
    for last in [1u8, 2] {
        // Owner: pointer to the question name; A, IN, TTL 5, 10.96.0.<last>.
        answer.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 10, 96, 0, last]);
    }
    let len = u16::try_from(answer.len() - 2).expect("short");
    answer[..2].copy_from_slice(&len.to_be_bytes());
    (query, answer)
}

/// The built filter in our wasmtime host, configured, with a known upstream and no
/// call recording.
fn started_filter() -> Vm {
    let wasm = std::fs::read(filter_wasm()).expect("read .wasm");
    let host = Host::new(&wasm).expect("compile filter");
    let mut vm = host.instantiate(VmOptions::default()).expect("instantiate");
    assert!(vm.start(br#"{"log_level":"error"}"#).expect("start"));
    vm.set_property(&["upstream", "address"], b"127.0.0.1:53");
    vm.set_recording(false);
    vm
}

/// One millisecond later, the queries through the filter downstream and the answers
/// upstream, on connection `id`; the filter must let both pass.
fn filter_round_trip(vm: &mut Vm, id: u32, queries: &[u8], answers: &[u8]) {
    vm.advance_ms(1);
    let down = vm
        .downstream_data(id, black_box(queries), false)
        .expect("downstream");
    let up = vm
        .upstream_data(id, black_box(answers), false)
        .expect("upstream");
    assert!(down == Action::Continue && up == Action::Continue);
}

fn bench(c: &mut Criterion) {
    let (query, answer) = exchange();
    let mut group = c.benchmark_group("per_exchange");
    group.throughput(Throughput::Elements(1));

    // Native: the same steps the filter takes, without the proxy-wasm boundary.
    let mut q_framer = TcpFramer::new(vec![0u8; 4096]);
    let mut r_framer = TcpFramer::new(vec![0u8; 4096]);
    let mut scorer: Box<Scorer<16, 32>> =
        Box::new(Scorer::new(ScoreConfig::default()).expect("config"));
    let mut t = 0u64;
    group.bench_function("native_core_multipass", |b| {
        b.iter(|| {
            t += 1_000;
            let mut key = None;
            q_framer
                .push(black_box(&query), |msg| {
                    key = Message::parse(msg).ok().and_then(|m| QueryKey::of(&m));
                })
                .expect("frame query");
            let key = key.expect("query key");
            let mut obs = None;
            r_framer
                .push(black_box(&answer), |msg| {
                    let Ok(r) = Message::parse(msg) else { return };
                    obs = Some(match key.check(&r) {
                        // As the filter does: the matched response stands in for its query.
                        Ok(()) => Observation::from_exchange(0, 1, t, 700, &r, &r, &mut []),
                        Err(m) => Observation::new(0, 1, t, Outcome::Mismatch(m)),
                    });
                })
                .expect("frame answer");
            let obs = obs.expect("answer");
            assert_eq!(obs.outcome, Outcome::Response(Rcode::NOERROR));
            assert_eq!(obs.answers.count, 2);
            let a = scorer.observe(&obs);
            black_box(a.score)
        });
    });

    let mut t = 0u64;
    group.bench_function("native_core", |b| {
        b.iter(|| {
            t += 1_000;
            let mut question = [0u8; MAX_QUESTION_LEN];
            let mut asked = None;
            q_framer
                .push(black_box(&query), |msg| {
                    let Ok(m) = Message::parse(msg) else { return };
                    let n = question_wire(&m, &mut question);
                    asked = n.map(|n| (m.id(), m.header().opcode(), n));
                })
                .expect("frame query");
            let (id, opcode, n) = asked.expect("query");
            let asked = Asked::new(id, opcode, &question[..n]).expect("question");
            let mut obs = None;
            r_framer
                .push(black_box(&answer), |msg| {
                    obs = Some(match check_and_summarize(msg, &asked) {
                        Ok(s) => Observation::new(0, 1, t, s.outcome())
                            .rtt(700)
                            .answers(s.answers),
                        Err(u) => Observation::new(0, 1, t, u.outcome()),
                    });
                })
                .expect("frame answer");
            let obs = obs.expect("answer");
            assert_eq!(obs.outcome, Outcome::Response(Rcode::NOERROR));
            assert_eq!(obs.answers.count, 2);
            let a = scorer.observe(&obs);
            black_box(a.score)
        });
    });

    // The built filter in our wasmtime host, one long-lived connection.
    let mut vm = started_filter();
    let (id, _) = vm.new_connection().expect("connection");
    group.bench_function("wasm_filter", |b| {
        b.iter(|| filter_round_trip(&mut vm, id, &query, &answer));
    });
    group.finish();

    // Pipelined, as dnsperf -c 4 -q 64 drives Envoy: 16 queries in flight on the
    // connection (one chunk), then their 16 answers in order (one chunk).
    const IN_FLIGHT: u16 = 16;
    let with_id = |msg: &[u8], id: u16| {
        let mut m = msg.to_vec();
        m[2..4].copy_from_slice(&id.to_be_bytes()); // after the 2-byte length prefix
        m
    };
    let queries: Vec<u8> = (0..IN_FLIGHT).flat_map(|i| with_id(&query, i)).collect();
    let answers: Vec<u8> = (0..IN_FLIGHT).flat_map(|i| with_id(&answer, i)).collect();
    let mut group = c.benchmark_group("per_exchange_pipelined_16");
    group.throughput(Throughput::Elements(u64::from(IN_FLIGHT)));
    let (id2, _) = vm.new_connection().expect("connection");
    group.bench_function("wasm_filter", |b| {
        b.iter(|| filter_round_trip(&mut vm, id2, &queries, &answers));
    });
    group.finish();
    // The filter batches counter increments until its next tick.
    vm.tick().expect("tick");
    assert!(vm.failure().is_none());
    let answered = vm
        .metric("dnswarden.responses.transport.tcp.upstream.127_0_0_1_53.rcode.NOERROR")
        .map_or(0, |m| m.value);
    assert!(answered > 0, "the filter matched no answer");
}

/// Feeds `n` exchanges through the filter on connection `id`; the only function
/// collected by the callgrind run.
#[inline(never)]
fn measured(vm: &mut Vm, id: u32, n: usize, query: &[u8], answer: &[u8]) {
    for _ in 0..n {
        filter_round_trip(vm, id, query, answer);
    }
}

fn instruction_count(n: usize) {
    let (query, answer) = exchange();
    let mut vm = started_filter();
    let (id, _) = vm.new_connection().expect("connection");
    for _ in 0..200 {
        filter_round_trip(&mut vm, id, &query, &answer);
    }
    measured(&mut vm, id, n, &query, &answer);
    assert!(vm.failure().is_none());
    println!("fed {n} exchanges through the filter");
}

criterion_group!(benches, bench);

fn main() {
    if let Ok(n) = std::env::var("DNSWARDEN_WASM_IR") {
        let n = n.parse().expect("DNSWARDEN_WASM_IR: a number of exchanges");
        instruction_count(n);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
