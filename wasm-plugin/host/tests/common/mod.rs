//! Shared helpers: build (or locate) the filter, start VMs, make DNS messages.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use dnswarden_core::wire::{QueryBuilder, Rtype};
use dnswarden_wasm_host::{Host, LogLevel, Vm, VmOptions};

/// Workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// Path of the built filter. `DNSWARDEN_WASM` points at a prebuilt `.wasm`; otherwise
/// `wasm-plugin/build-wasm.sh` builds it (cargo skips the work when it is fresh) in its
/// own target dir (`DNSWARDEN_WASM_TARGET_DIR`, default `target/wasm-filter`) so it never
/// waits on the lock of the build running the tests, and runs `wasm-opt` when present.
pub fn filter_wasm() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Some(p) = std::env::var_os("DNSWARDEN_WASM") {
            return PathBuf::from(p);
        }
        let root = workspace_root();
        let out = Command::new("bash")
            .arg(root.join("wasm-plugin/build-wasm.sh"))
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("run wasm-plugin/build-wasm.sh");
        assert!(
            out.status.success(),
            "building the filter failed (is the wasm32-wasip1 target installed?)"
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        PathBuf::from(stdout.lines().last().expect("artifact path").trim())
    })
}

/// The compiled filter (compiled once per test binary).
pub fn host() -> &'static Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    HOST.get_or_init(|| {
        let bytes = std::fs::read(filter_wasm()).expect("read filter .wasm");
        Host::new(&bytes).expect("compile filter")
    })
}

/// A VM started with `config`; panics if configuration is rejected.
pub fn vm(config: &str) -> Vm {
    let mut vm = host()
        .instantiate(VmOptions {
            log_level: LogLevel::Trace,
            ..VmOptions::default()
        })
        .expect("instantiate");
    assert!(
        vm.start(config.as_bytes()).expect("start"),
        "config rejected: {:?}",
        vm.logs()
    );
    vm
}

/// A query for `name`/A with id `id`, optionally with the TCP length prefix.
pub fn query(id: u16, name: &str, tcp: bool) -> Vec<u8> {
    let mut buf = [0u8; 512];
    let n = QueryBuilder::new(id, name, Rtype::A)
        .rd(true)
        .tcp(tcp)
        .write(&mut buf)
        .expect("build query");
    buf[..n].to_vec()
}

/// The response to an (unprefixed) query: same id and question, QR=1, `rcode`, `tc`.
pub fn response(query: &[u8], rcode: u8, tc: bool) -> Vec<u8> {
    let mut r = query.to_vec();
    r[2] |= 0x80; // QR
    if tc {
        r[2] |= 0x02;
    }
    r[3] = (r[3] & 0xF0) | 0x80 | (rcode & 0x0F); // RA + rcode
    r
}

/// Adds the 2-byte TCP length prefix.
pub fn framed(msg: &[u8]) -> Vec<u8> {
    let mut out = (msg.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(msg);
    out
}

/// Unpadded base64url (RFC 4648 §5), for DoH GET.
pub fn base64url(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Deterministic pseudo-random bytes (xorshift), for garbage streams.
pub fn garbage(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

/// `dnswarden.<metric>.transport.<t>.upstream.<u>(.<k>.<v>)*` as the filter names it.
pub fn metric(metric: &str, transport: &str, upstream: &str, extra: &[(&str, &str)]) -> String {
    let mut s = format!("dnswarden.{metric}.transport.{transport}.upstream.{upstream}");
    for (k, v) in extra {
        s.push_str(&format!(".{k}.{v}"));
    }
    s
}
