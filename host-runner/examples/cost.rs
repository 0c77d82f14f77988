//! Cost per probe, side by side in one run: `dnswarden run` (release binary) and
//! Prometheus blackbox_exporter (Debian package, `dns` module) probing the same knot
//! server for the same name at 200 and 1000 probes/s. Reports CPU microseconds per probe
//! (utime + stime from /proc over the measured window) and RSS (VmRSS at the end,
//! VmHWM peak).
//!
//! ```text
//! cargo build --release -p dnswarden
//! cargo run --release -p dnswarden --example cost            # 20 s per measurement
//! cargo run --release -p dnswarden --example cost -- 10      # shorter
//! ```
//!
//! The blackbox exporter probes when scraped, so this harness drives its `/probe`
//! endpoint at the rate over keep-alive connections; the driver's own CPU is not counted
//! (only the exporter's process is measured). Loopback only.

#[path = "../tests/support/lab.rs"]
mod lab;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

const QNAME: &str = "kubernetes.default.svc.cluster.local";

fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime of a process, in seconds.
fn cpu_secs(pid: u32, tck: f64) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces) start after ")".
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // After ")": state is field 3, utime field 14, stime field 15 (1-based in proc(5)).
    let utime: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let stime: f64 = f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    (utime + stime) / tck
}

/// (VmRSS, VmHWM) in KiB.
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let get = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    (get("VmRSS:"), get("VmHWM:"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        // Our own child, by its handle.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn http_get(stream: &mut TcpStream, host: SocketAddr, path: &str) -> Option<String> {
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n");
    stream.write_all(req.as_bytes()).await.ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            if body.len() >= len {
                return Some(body.to_string());
            }
        }
    }
}

async fn wait_http(addr: SocketAddr, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut s) = TcpStream::connect(addr).await
            && http_get(&mut s, addr, path).await.is_some()
        {
            return;
        }
        assert!(Instant::now() < deadline, "{addr}{path} not up within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

struct Row {
    who: &'static str,
    rate: u32,
    probes: u64,
    cpu_us_per_probe: f64,
    cpu_pct: f64,
    rss_kib: u64,
    hwm_kib: u64,
}

/// dnswarden probing `server` at `rate` probes/s for `secs` (after a warm-up).
async fn measure_dnswarden(
    bin: &PathBuf,
    server: SocketAddr,
    rate: u32,
    secs: u64,
    tck: f64,
) -> Row {
    let dir = std::env::temp_dir().join(format!("dnswarden-cost-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let cfg = dir.join("cost.yaml");
    let port = free_port();
    // Same server and name as the exporter: rate/10 targets (one loop each) asking for
    // the same name every 100 ms, with the per-server budget lifted so that one server
    // gets the whole rate.
    let targets: Vec<String> = (0..(rate / 10).max(1))
        .map(|i| format!("{{name: api-{i}, qname: {QNAME}, type: A}}"))
        .collect();
    std::fs::write(
        &cfg,
        format!(
            "listen: 127.0.0.1:{port}\nservers: [{{name: knot, address: '{server}'}}]\n\
             targets: [{}]\n\
             probe: {{interval_ms: 100, server_qps: 100000}}\n\
             rate_limit: {{global_qps: 100000, namespace_qps: 100000}}\n",
            targets.join(", ")
        ),
    )
    .expect("config");
    let child = Proc(
        Command::new(bin)
            .args(["run", "--config"])
            .arg(&cfg)
            .env("DNSWARDEN_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dnswarden"),
    );
    let pid = child.0.id();
    let http = SocketAddr::from(([127, 0, 0, 1], port));
    wait_http(http, "/metrics").await;
    let count = || async move {
        let mut s = TcpStream::connect(http).await.ok()?;
        let body = http_get(&mut s, http, "/metrics").await?;
        Some(
            body.lines()
                .filter(|l| l.starts_with("dnswarden_probe_duration_seconds_count"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>() as u64,
        )
    };
    tokio::time::sleep(Duration::from_secs(3)).await; // warm-up, not a wait for a condition
    let (p0, c0) = (count().await.unwrap_or(0), cpu_secs(pid, tck));
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await; // the measurement window
    let (p1, c1) = (count().await.unwrap_or(0), cpu_secs(pid, tck));
    let elapsed = t0.elapsed().as_secs_f64();
    let (rss, hwm) = rss_kib(pid);
    drop(child);
    let probes = p1.saturating_sub(p0);
    Row {
        who: "dnswarden",
        rate,
        probes,
        cpu_us_per_probe: (c1 - c0) * 1e6 / probes.max(1) as f64,
        cpu_pct: (c1 - c0) / elapsed * 100.0,
        rss_kib: rss,
        hwm_kib: hwm,
    }
}

async fn measure_blackbox(server: SocketAddr, rate: u32, secs: u64, tck: f64) -> Row {
    let dir = std::env::temp_dir().join(format!("dnswarden-cost-bb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let cfg = dir.join("blackbox.yml");
    std::fs::write(
        &cfg,
        format!(
            "modules:\n  dns:\n    prober: dns\n    timeout: 1s\n    dns:\n      query_name: {QNAME}\n      query_type: A\n      transport_protocol: udp\n      preferred_ip_protocol: ip4\n"
        ),
    )
    .expect("config");
    let port = free_port();
    let child = Proc(
        Command::new("prometheus-blackbox-exporter")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus-blackbox-exporter"),
    );
    let pid = child.0.id();
    let http = SocketAddr::from(([127, 0, 0, 1], port));
    wait_http(http, "/metrics").await;
    let path = format!("/probe?module=dns&target={server}");
    let done = Arc::new(AtomicU64::new(0));
    let ok = Arc::new(AtomicU64::new(0));
    let (tx, rx) = async_channel(256);
    let mut workers = Vec::new();
    for _ in 0..32 {
        let (rx, done, ok, path) = (rx.clone(), done.clone(), ok.clone(), path.clone());
        workers.push(tokio::spawn(async move {
            let mut conn = TcpStream::connect(http).await.ok();
            while rx.recv().await.is_some() {
                if conn.is_none() {
                    conn = TcpStream::connect(http).await.ok();
                }
                let Some(s) = conn.as_mut() else { continue };
                match http_get(s, http, &path).await {
                    Some(body) => {
                        done.fetch_add(1, Ordering::Relaxed);
                        if body.contains("probe_success 1") {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    None => conn = None,
                }
            }
        }));
    }
    let driver = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1) / rate);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        loop {
            tick.tick().await;
            if tx.send(()).await.is_err() {
                return;
            }
        }
    });
    tokio::time::sleep(Duration::from_secs(3)).await; // warm-up
    let (p0, c0) = (done.load(Ordering::Relaxed), cpu_secs(pid, tck));
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await; // the measurement window
    let (p1, c1) = (done.load(Ordering::Relaxed), cpu_secs(pid, tck));
    let elapsed = t0.elapsed().as_secs_f64();
    let (rss, hwm) = rss_kib(pid);
    driver.abort();
    for w in workers {
        w.abort();
    }
    drop(child);
    let probes = p1.saturating_sub(p0);
    let okn = ok.load(Ordering::Relaxed);
    let donen = done.load(Ordering::Relaxed);
    assert!(
        okn * 10 >= donen * 9,
        "blackbox probes mostly failed ({okn} ok of {donen}): check the dns module"
    );
    Row {
        who: "blackbox_exporter",
        rate,
        probes,
        cpu_us_per_probe: (c1 - c0) * 1e6 / probes.max(1) as f64,
        cpu_pct: (c1 - c0) / elapsed * 100.0,
        rss_kib: rss,
        hwm_kib: hwm,
    }
}

/// A tiny multi-consumer channel on tokio primitives.
fn async_channel(cap: usize) -> (tokio::sync::mpsc::Sender<()>, SharedRx) {
    let (tx, rx) = tokio::sync::mpsc::channel(cap);
    (tx, SharedRx(Arc::new(tokio::sync::Mutex::new(rx))))
}

#[derive(Clone)]
struct SharedRx(Arc<tokio::sync::Mutex<tokio::sync::mpsc::Receiver<()>>>);
impl SharedRx {
    async fn recv(&self) -> Option<()> {
        self.0.lock().await.recv().await
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    if !lab::lab_available("cost") || !lab::on_path("prometheus-blackbox-exporter") {
        eprintln!("cost: needs knot, dnsdist and prometheus-blackbox-exporter (lab/install.sh)");
        std::process::exit(1);
    }
    // This example lives in target/<profile>/examples/; the binary one level up.
    let bin = std::env::var_os("DNSWARDEN_BIN")
        .map(PathBuf::from)
        .or_else(|| {
            let exe = std::env::current_exe().ok()?;
            Some(exe.parent()?.parent()?.join("dnswarden"))
        })
        .filter(|p| p.is_file())
        .expect(
            "build the binary first: cargo build --release -p dnswarden (or set DNSWARDEN_BIN)",
        );
    let lab = lab::Lab::start();
    let server = lab.addr("LAB_KNOT_PORT");
    let tck = clk_tck();
    let mut rows = Vec::new();
    for rate in [200u32, 1000] {
        rows.push(measure_dnswarden(&bin, server, rate, secs, tck).await);
        rows.push(measure_blackbox(server, rate, secs, tck).await);
    }
    println!(
        "cost per probe, knot on {server}, {QNAME} A over UDP, {secs} s windows, binary {}",
        bin.display()
    );
    println!(
        "\n{:<18} {:>8} {:>8} {:>14} {:>8} {:>10} {:>10}",
        "prober", "target/s", "probes", "CPU us/probe", "CPU %", "RSS MiB", "peak MiB"
    );
    println!("{}", "-".repeat(84));
    for r in &rows {
        println!(
            "{:<18} {:>8} {:>8} {:>14.1} {:>8.1} {:>10.1} {:>10.1}",
            r.who,
            r.rate,
            r.probes,
            r.cpu_us_per_probe,
            r.cpu_pct,
            r.rss_kib as f64 / 1024.0,
            r.hwm_kib as f64 / 1024.0
        );
    }
    for pair in rows.chunks(2) {
        if let [d, b] = pair {
            println!(
                "at {}/s: dnswarden uses {:.1}x less CPU per probe than blackbox_exporter",
                d.rate,
                b.cpu_us_per_probe / d.cpu_us_per_probe.max(f64::MIN_POSITIVE)
            );
        }
    }
}
