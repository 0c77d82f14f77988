//! Time to detect, on the loopback lab at default settings: for each fault class, the
//! milliseconds from the fault switch (just before the console command is written) to
//! the verdict change of the faulty server (or name), over N trials, then p50 / p99.
//!
//! ```text
//! cargo run --release -p dnswarden --example ttd            # 20 trials per class
//! cargo run --release -p dnswarden --example ttd -- 5       # quicker
//! cargo run --release -p dnswarden --example ttd -- 20 SERVFAIL   # some classes
//! TTD_FRESH=1 cargo run --release -p dnswarden --example ttd # a new runner per trial
//! TTD_CONFIRM=0 cargo run --release -p dnswarden --example ttd # suspicion cadence off
//! ```
//!
//! Needs knot and dnsdist (`lab/install.sh`). Traffic goes to loopback only.

#[path = "../tests/support/lab.rs"]
mod lab;

use std::collections::BTreeMap;
use std::time::Duration;

use dnswarden::config::{Config, ConfirmSettings, Overrides};
use dnswarden::runner::{Event, Runner, Scope, VerdictChange};
use dnswarden::scoring::Verdict;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::Instant;

struct Class {
    name: &'static str,
    rule: &'static str,
    action: &'static str,
    /// Which scorer must change: (scope, name).
    who: (Scope, &'static str),
    /// The answer carries the fault (target p99 ≤ 100 ms) or not (drops: ≤ timeout +
    /// one interval).
    answer_carrying: bool,
    /// Each trial on a fresh runner (no class needs it since the core keeps spikes out of
    /// its RTT baseline; `TTD_FRESH=1` still forces it for every class).
    fresh: bool,
}

const CLASSES: &[Class] = &[
    Class {
        name: "+200 ms delay (> timeout)",
        rule: "AllRule()",
        action: "DelayAction(200)",
        who: (Scope::Server, "dnsdist"),
        answer_carrying: false,
        fresh: false,
    },
    Class {
        name: "+30 ms delay (RTT spike)",
        rule: "AllRule()",
        action: "DelayAction(30)",
        who: (Scope::Server, "dnsdist"),
        answer_carrying: true,
        fresh: false,
    },
    Class {
        name: "SERVFAIL",
        rule: "AllRule()",
        action: "RCodeAction(DNSRCode.SERVFAIL)",
        who: (Scope::Server, "dnsdist"),
        answer_carrying: true,
        fresh: false,
    },
    Class {
        name: "NXDOMAIN flood (empty zone)",
        rule: "AllRule()",
        action: "PoolAction('nx')",
        who: (Scope::Server, "dnsdist"),
        answer_carrying: true,
        fresh: false,
    },
    Class {
        name: "drop",
        rule: "AllRule()",
        action: "DropAction()",
        who: (Scope::Server, "dnsdist"),
        answer_carrying: false,
        fresh: false,
    },
    Class {
        name: "TC storm (TCP answers)",
        rule: "AllRule()",
        action: "TCAction()",
        who: (Scope::Server, "dnsdist"),
        answer_carrying: true,
        fresh: false,
    },
    Class {
        name: "SERVFAIL for one name",
        rule: "QNameRule('kubernetes.default.svc.cluster.local.')",
        action: "RCodeAction(DNSRCode.SERVFAIL)",
        who: (Scope::Target, "kubernetes"),
        answer_carrying: true,
        fresh: false,
    },
    Class {
        name: "30 % random SERVFAIL",
        rule: "ProbaRule(0.3)",
        action: "RCodeAction(DNSRCode.SERVFAIL)",
        who: (Scope::Server, "dnsdist"),
        answer_carrying: true,
        fresh: false,
    },
];

fn drain(rx: &mut broadcast::Receiver<Event>) {
    while !matches!(rx.try_recv(), Err(broadcast::error::TryRecvError::Empty)) {}
}

async fn wait_change(
    rx: &mut broadcast::Receiver<Event>,
    who: (Scope, &str),
    limit: Duration,
) -> Option<VerdictChange> {
    let deadline = Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Err(_) | Ok(Err(RecvError::Closed)) => return None,
            Ok(Err(RecvError::Lagged(_))) | Ok(Ok(Event::Probe(_))) => {}
            Ok(Ok(Event::Verdict(v))) => {
                if v.scope == who.0 && v.name == who.1 && v.to != Verdict::Ok {
                    return Some(v);
                }
            }
        }
    }
}

async fn wait_all_ok(rx: &mut broadcast::Receiver<Event>, scorers: usize, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut verdicts: BTreeMap<(Scope, String), Verdict> = BTreeMap::new();
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Err(_) | Ok(Err(RecvError::Closed)) => return false,
            Ok(Err(RecvError::Lagged(_))) => {}
            Ok(Ok(Event::Verdict(v))) => {
                verdicts.insert((v.scope, v.name.clone()), v.to);
            }
            Ok(Ok(Event::Probe(p))) => {
                verdicts.insert(
                    (Scope::Server, p.server.clone()),
                    p.server_assessment.verdict,
                );
                verdicts.insert(
                    (Scope::Target, p.target.clone()),
                    p.target_assessment.verdict,
                );
            }
        }
        if verdicts.len() == scorers && verdicts.values().all(|v| *v == Verdict::Ok) {
            return true;
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    // Nearest rank.
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let trials: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    if !lab::lab_available("ttd") {
        std::process::exit(1);
    }
    let mut lab = lab::Lab::start();
    // Default probe settings (interval 25 ms within a 200/s per-server budget, timeout
    // 100 ms); round robin off because
    // knot never rotates answers.
    let yaml = format!(
        "listen: 127.0.0.1:0
servers:
  - {{name: dnsdist, address: '{}'}}
  - {{name: knot, address: '{}'}}
targets:
  - {{name: kubernetes, qname: kubernetes.default.svc.cluster.local, type: A, expect: [10.96.0.1]}}
  - {{name: my-svc, qname: my-svc.default.svc.cluster.local, type: A, expect: [10.96.12.34]}}
  - {{name: my-headless, qname: my-headless.default.svc.cluster.local, type: A,
     expect: [10.244.1.10, 10.244.1.11, 10.244.2.12, 10.244.2.13, 10.244.3.14]}}
  - {{name: my-svc-srv, qname: _http._tcp.my-svc.default.svc.cluster.local, type: SRV}}
scoring: {{weights: {{round_robin: 0}}}}
",
        lab.addr("LAB_DNSDIST_PORT"),
        lab.addr("LAB_KNOT_PORT")
    );
    let mut config = Config::from_yaml_str(&yaml, &Overrides::default()).expect("config");
    // For comparison: the runner without its suspicion cadence (`probe.confirm`).
    if std::env::var("TTD_CONFIRM").is_ok_and(|v| v == "0") {
        config.probe.confirm = ConfirmSettings::OFF;
    }
    let confirm = config.probe.confirm;
    let (interval, timeout) = (config.probe.interval, config.probe.timeout);
    let scorers = config.servers.len() + config.targets.len();
    let fresh_mode = std::env::var("TTD_FRESH").is_ok_and(|v| v == "1");
    let mut session = Session::start(config.clone(), scorers).await;
    println!(
        "time to detect on the loopback lab (dnsdist 127.0.0.1, interval {} ms, timeout {} ms, 2 servers x 4 targets), {trials} trials per class",
        interval.as_millis(),
        timeout.as_millis()
    );
    if confirm.rounds == 0 {
        println!("suspicion cadence: off");
    } else {
        println!(
            "suspicion cadence: {} rounds {} ms apart, cool-down {} ms",
            confirm.rounds,
            confirm.spacing.as_millis(),
            confirm.cooldown.as_millis()
        );
    }
    // p50/p99/max from the write of the fault command (an upper bound); "ack" is how long
    // dnsdist took to acknowledge it (p50/max), "p99 ack" the p99 from the
    // acknowledgement (a lower bound): the rule went live in between.
    println!(
        "\n{:<30} {:>8} {:>9} {:>9} {:>9}  {:<8} {:>11} {:>9}  cause(s)",
        "fault", "detected", "p50 ms", "p99 ms", "max ms", "target", "ack ms", "p99 ack"
    );
    println!("{}", "-".repeat(124));
    // An optional second argument keeps only the classes whose name contains it.
    let only = std::env::args().nth(2).unwrap_or_default();
    for class in CLASSES.iter().filter(|c| c.name.contains(only.as_str())) {
        let mut ms = Vec::new();
        let mut acks = Vec::new();
        let mut from_ack = Vec::new();
        let mut causes = BTreeMap::<&str, usize>::new();
        for _ in 0..trials {
            // Fresh mode: a new runner (new scorers, new RTT baselines) per trial, so a
            // trial does not see the previous trials' faults in its 60 s windows.
            if fresh_mode || class.fresh {
                session.stop().await;
                session = Session::start(config.clone(), scorers).await;
            }
            let rx = &mut session.rx;
            if !wait_all_ok(rx, scorers, Duration::from_secs(30)).await {
                eprintln!(
                    "{}: not back to ok within 30 s, skipping a trial",
                    class.name
                );
                continue;
            }
            drain(rx);
            let t0 = Instant::now();
            lab.fault(class.rule, class.action);
            // dnsdist installed the rule somewhere between the write and its
            // acknowledgement: the TTD from the write is an upper bound, from the
            // acknowledgement a lower one.
            let acked = Instant::now();
            if let Some(v) = wait_change(rx, class.who, Duration::from_secs(15)).await {
                ms.push(v.at.duration_since(t0).as_secs_f64() * 1000.0);
                acks.push(acked.duration_since(t0).as_secs_f64() * 1000.0);
                from_ack.push(v.at.saturating_duration_since(acked).as_secs_f64() * 1000.0);
                for c in v.causes {
                    *causes.entry(c).or_default() += 1;
                }
            }
            lab.clear();
        }
        ms.sort_by(f64::total_cmp);
        acks.sort_by(f64::total_cmp);
        from_ack.sort_by(f64::total_cmp);
        let target = if class.answer_carrying {
            "<=100".to_string()
        } else {
            format!("<={}", (timeout + interval).as_millis())
        };
        let (p50, p99, max) = if ms.is_empty() {
            (f64::NAN, f64::NAN, f64::NAN)
        } else {
            (
                percentile(&ms, 0.5),
                percentile(&ms, 0.99),
                ms.last().copied().unwrap_or(f64::NAN),
            )
        };
        let (ack_p50, ack_max, ack_p99) = if ms.is_empty() {
            (f64::NAN, f64::NAN, f64::NAN)
        } else {
            (
                percentile(&acks, 0.5),
                acks.last().copied().unwrap_or(f64::NAN),
                percentile(&from_ack, 0.99),
            )
        };
        println!(
            "{:<30} {:>5}/{:<2} {:>9.1} {:>9.1} {:>9.1}  {:<8} {:>5.1}/{:<5.1} {:>9.1}  {}",
            if fresh_mode || class.fresh {
                format!("{} [fresh]", class.name)
            } else {
                class.name.to_string()
            },
            ms.len(),
            trials,
            p50,
            p99,
            max,
            target,
            ack_p50,
            ack_max,
            ack_p99,
            causes
                .iter()
                .map(|(c, n)| format!("{c} x{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    session.stop().await;
}

/// A running runner and its event stream.
struct Session {
    rx: broadcast::Receiver<Event>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<dnswarden::Result<()>>,
}

impl Session {
    /// Starts a runner and waits until it is warm: every verdict ok and 3 s of probes
    /// (RTT baselines need 50 samples per server).
    async fn start(config: Config, scorers: usize) -> Session {
        let runner = Runner::new(config).await.expect("runner");
        let mut rx = runner.subscribe();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(runner.run(async move {
            let _ = stop_rx.await;
        }));
        assert!(wait_all_ok(&mut rx, scorers, Duration::from_secs(20)).await);
        let warm = Instant::now() + Duration::from_secs(3);
        while tokio::time::timeout_at(warm, rx.recv()).await.is_ok() {}
        Session { rx, stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}
