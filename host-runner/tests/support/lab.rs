//! The loopback lab (`lab/lab.sh`) for tests and the time-to-detect harness: started
//! on free ports in a private `LAB_DIR`, faults switched through ONE long-lived dnsdist
//! console process, stopped by its recorded PIDs on drop.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

pub static LAB_SEQ: AtomicU32 = AtomicU32::new(0);

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
        || ["/usr/sbin", "/sbin"]
            .iter()
            .any(|d| PathBuf::from(d).join(tool).is_file())
}

/// Whether the lab can run here; prints why not (or panics when
/// `DNSWARDEN_E2E_REQUIRE_LAB=1`).
pub fn lab_available(test: &str) -> bool {
    let missing: Vec<&str> = ["knotd", "kdig", "dnsdist", "python3"]
        .into_iter()
        .filter(|t| !on_path(t))
        .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "SKIPPED {test}: {} not installed (run `sudo lab/install.sh`); the loopback lab cannot start",
        missing.join(", ")
    );
    if std::env::var("DNSWARDEN_E2E_REQUIRE_LAB").is_ok_and(|v| v == "1") {
        panic!("{msg} and DNSWARDEN_E2E_REQUIRE_LAB=1");
    }
    eprintln!("\n*** {msg} ***\n");
    false
}

/// A running lab: stopped (by its recorded PIDs, through `lab.sh stop`) on drop.
pub struct Lab {
    dir: PathBuf,
    env: BTreeMap<String, String>,
    console: Child,
    console_in: ChildStdin,
    console_out: mpsc::Receiver<String>,
}

impl Lab {
    pub fn start() -> Lab {
        let dir = std::env::temp_dir().join(format!(
            "dnswarden-e2e-{}-{}",
            std::process::id(),
            LAB_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("lab dir");
        let script = repo_root().join("lab/lab.sh");
        let out = Command::new("bash")
            .arg(&script)
            .arg("start")
            .env("LAB_DIR", &dir)
            .output()
            .expect("run lab.sh start");
        if !out.status.success() {
            // Stop whatever part did start before failing.
            let _ = Command::new("bash")
                .arg(&script)
                .arg("stop")
                .env("LAB_DIR", &dir)
                .output();
            panic!(
                "lab.sh start failed:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let text = std::fs::read_to_string(dir.join("lab.env")).expect("lab.env");
        let env: BTreeMap<String, String> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
            .collect();
        // ONE long-lived console for every fault switch of this lab.
        let mut console = Command::new("bash")
            .arg(&script)
            .arg("console")
            .env("LAB_DIR", &dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the dnsdist console");
        let console_in = console.stdin.take().expect("console stdin");
        let stdout = console.stdout.take().expect("console stdout");
        let (tx, console_out) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Lab {
            dir,
            env,
            console,
            console_in,
            console_out,
        }
    }

    pub fn port(&self, key: &str) -> u16 {
        self.env
            .get(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{key} missing from lab.env"))
    }

    pub fn addr(&self, key: &str) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port(key)))
    }

    /// Sends one Lua line to the console and waits for its acknowledgement: the rules
    /// are active once it is read.
    pub fn console(&mut self, lua: &str, ack: &str) {
        writeln!(self.console_in, "{lua}").expect("write to the console");
        self.console_in.flush().expect("flush the console");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.console_out.recv_timeout(left) {
                Ok(line) if line.contains(ack) => return,
                Ok(line) if line.to_ascii_lowercase().contains("error") => {
                    panic!("console error for {lua}: {line}")
                }
                Ok(_) => {}
                Err(_) => panic!("no '{ack}' from the console within 10 s after {lua}"),
            }
        }
    }

    pub fn fault(&mut self, rule: &str, action: &str) {
        self.console(&format!("labFault({rule}, {action})"), "fault set");
    }

    pub fn clear(&mut self) {
        self.console("labClear()", "faults cleared");
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // The console is our own child: end it by its handle.
        let _ = self.console.kill();
        let _ = self.console.wait();
        let _ = Command::new("bash")
            .arg(repo_root().join("lab/lab.sh"))
            .arg("stop")
            .env("LAB_DIR", &self.dir)
            .output();
    }
}
