//! Instructions per DNS-over-TCP exchange through the built filter in our wasmtime host,
//! for callgrind (deterministic, unlike time on a shared machine).
//!
//! ```sh
//! cargo build --release -p dnswarden-bench --example wasm_ir
//! DNSWARDEN_WASM=<module> DNSWARDEN_WASM_PERFMAP=1 valgrind --tool=callgrind \
//!     --toggle-collect='*measured*' --dump-instr=yes target/release/examples/wasm_ir 2000
//! ```
use std::hint::black_box;

use dnswarden_core::wire::{QueryBuilder, Rtype};
use dnswarden_wasm_host::{Action, Host, Vm, VmOptions};

fn exchange() -> (Vec<u8>, Vec<u8>) {
    let mut buf = [0u8; 512];
    let n = QueryBuilder::new(0x1234, "kubernetes.default.svc.cluster.local", Rtype::A)
        .rd(true)
        .tcp(true)
        .write(&mut buf)
        .expect("query");
    let query = buf[..n].to_vec();
    let mut answer = query.clone();
    answer[4] |= 0x80;
    answer[5] |= 0x80;
    answer[9] = 2;
    for last in [1u8, 2] {
        answer.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 5, 0, 4, 10, 96, 0, last]);
    }
    let len = u16::try_from(answer.len() - 2).expect("short");
    answer[..2].copy_from_slice(&len.to_be_bytes());
    (query, answer)
}

#[inline(never)]
fn measured(vm: &mut Vm, id: u32, n: usize, query: &[u8], answer: &[u8]) {
    for _ in 0..n {
        vm.advance_ms(1);
        let d = vm
            .downstream_data(id, black_box(query), false)
            .expect("down");
        let u = vm.upstream_data(id, black_box(answer), false).expect("up");
        assert!(d == Action::Continue && u == Action::Continue);
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let path = std::env::var("DNSWARDEN_WASM").expect("DNSWARDEN_WASM=<module>");
    let wasm = std::fs::read(path).expect("read module");
    let host = Host::new(&wasm).expect("compile");
    let mut vm = host.instantiate(VmOptions::default()).expect("instantiate");
    assert!(vm.start(br#"{"log_level":"error"}"#).expect("start"));
    vm.set_property(&["upstream", "address"], b"127.0.0.1:53");
    vm.set_recording(false);
    let (id, _) = vm.new_connection().expect("connection");
    let (query, answer) = exchange();
    measured(&mut vm, id, 200, &query, &answer);
    measured(&mut vm, id, n, &query, &answer);
    println!("{n} exchanges");
}
