//! The `dnswarden` binary: check-config, and `run` stopping cleanly on SIGTERM.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dnswarden"))
}

fn example() -> String {
    format!("{}/examples/dnswarden.yaml", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn check_config_accepts_the_shipped_example() {
    let out = bin().args(["check-config", &example()]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok: 2 server(s), 5 target(s)"));
}

#[test]
fn check_config_names_the_field_and_the_fix() {
    let dir = std::env::temp_dir().join(format!("dnswarden-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bad.yaml");
    let mut f = std::fs::File::create(&path).unwrap();
    writeln!(
        f,
        "servers: [{{name: a, address: '127.0.0.1:53'}}]\ntargets: [{{name: t, qname: x.cluster.local, type: AAA}}]"
    )
    .unwrap();
    let out = bin()
        .args(["check-config", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("`targets[0].type`") && err.contains("fix:"),
        "{err}"
    );

    // An override from the environment is named as such.
    let out = bin()
        .args(["check-config", &example()])
        .env("DNSWARDEN_TIMEOUT_MS", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("DNSWARDEN_TIMEOUT_MS"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn run_stops_on_sigterm_with_exit_0() {
    // A server that never answers (a bound, silent UDP socket) keeps probes in flight.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dir = std::env::temp_dir().join(format!("dnswarden-cli-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("run.yaml");
    std::fs::write(
        &path,
        format!(
            "listen: 127.0.0.1:0\nservers: [{{name: silent, address: '{}'}}]\ntargets: [{{name: api, qname: kubernetes.default.svc.cluster.local}}]\n",
            silent.local_addr().unwrap()
        ),
    )
    .unwrap();
    let mut child = bin()
        .args(["run", "--config", path.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // Wait for the JSON log line saying it runs, the one saying which clock UDP RTTs come
    // from (on Linux: the kernel's receive stamps), then for a verdict change (the silent
    // server times out): probing is under way.
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut saw_running = false;
    let mut saw_clock = false;
    let mut saw_change = false;
    while !(saw_running && saw_clock && saw_change) {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).expect("log lines within 15 s");
        let v: serde_json::Value = serde_json::from_str(&line).expect("JSON log lines");
        saw_running |= v["message"] == "dnswarden running";
        saw_clock |=
            v["message"] == "UDP RTTs come from kernel receive timestamps (SO_TIMESTAMPNS)";
        if v["event"] == "verdict_change" {
            assert_eq!(v["name"], "silent");
            assert!(v["causes"].as_str().unwrap().contains("timeouts"), "{line}");
            saw_change = true;
        }
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut rest = Vec::new();
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "no exit within 10 s of SIGTERM");
        // Wait for the exit or for more log output, whichever comes first.
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(20)) {
            rest.push(line);
        }
    };
    assert_eq!(code.code(), Some(0));
    // The reader thread sees EOF once the process is gone.
    rest.extend(rx.iter());
    assert!(
        rest.iter().any(|l| l.contains("dnswarden stopped")),
        "{rest:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn probe_reports_a_refused_or_silent_server_without_failing() {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let out = bin()
        .args([
            "probe",
            "kubernetes.default.svc.cluster.local",
            "--server",
            &silent.local_addr().unwrap().to_string(),
            "--json",
            "--timeout-ms",
            "50",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    assert_eq!(v["outcome"], "timeout");
}

#[test]
fn demo_quick_runs_to_completion() {
    let out = bin().args(["demo", "--quick"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for fault in ["latency", "SERVFAIL", "NXDOMAIN", "blackhole", "truncation"] {
        let row = text
            .lines()
            .rev()
            .find(|l| l.contains(fault))
            .unwrap_or_else(|| panic!("no summary row for {fault}: {text}"));
        assert!(!row.contains("not detected"), "{fault} not detected: {row}");
    }
}
