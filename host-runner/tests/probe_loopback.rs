//! The prober against real servers on loopback: the demo's embedded hickory server
//! (with its fault switch), and a hand-made UDP responder for the integrity cases; and
//! the runner's suspicion cadence (`probe.confirm`) against the embedded server.

use std::net::SocketAddr;
use std::time::Duration;

use dnswarden::config::{Config, ConfirmSettings};
use dnswarden::demo::{DemoServer, Fault, demo_targets};
use dnswarden::metrics::{PairLabels, ServerLabels};
use dnswarden::probe::{Outcome, ProbeSpec, Prober, RttClock, Transport};
use dnswarden::runner::{Event, Runner, Scope};
use dnswarden::scoring::Verdict;
use dnswarden_core::wire::{Message, Rcode, Rtype};
use tokio::net::UdpSocket;
use tokio::sync::broadcast::error::RecvError;

fn spec(server: SocketAddr, qname: &str, tcp: bool) -> ProbeSpec<'_> {
    ProbeSpec {
        server,
        qname,
        qtype: Rtype::A,
        tcp,
        timeout: Duration::from_millis(300),
        edns_udp_size: 1232,
    }
}

const API: &str = "kubernetes.default.svc.cluster.local";

#[tokio::test]
async fn answers_over_udp_and_tcp_with_random_ids_and_edns() {
    let server = DemoServer::start().await.unwrap();
    let prober = Prober::new(true);
    let a = prober.probe(&spec(server.addr(), API, false)).await;
    assert_eq!(a.outcome, Outcome::Answer(Rcode::NOERROR));
    assert_eq!(a.transport, Transport::Udp);
    assert_eq!(a.answer_set(Rtype::A), vec!["10.96.0.1".to_string()]);
    let q = Message::parse(&a.query).unwrap();
    assert!(q.edns().unwrap().is_some(), "queries carry EDNS");
    let b = prober.probe(&spec(server.addr(), API, false)).await;
    assert_ne!(a.id, b.id, "ids are random");

    let t1 = prober.probe(&spec(server.addr(), API, true)).await;
    assert_eq!(t1.outcome, Outcome::Answer(Rcode::NOERROR));
    assert_eq!(t1.transport, Transport::Tcp);
    assert!(!t1.tcp_reused);
    let t2 = prober.probe(&spec(server.addr(), API, true)).await;
    assert_eq!(t2.outcome, Outcome::Answer(Rcode::NOERROR));
    assert!(t2.tcp_reused, "the second TCP probe reuses the connection");
}

#[tokio::test]
async fn truncated_answers_are_retried_over_tcp() {
    let server = DemoServer::start().await.unwrap();
    server.set_fault(Fault::Truncate);
    let r = Prober::new(true)
        .probe(&spec(server.addr(), API, false))
        .await;
    assert!(r.truncated);
    assert_eq!(r.tcp_fallback, Some(true));
    assert_eq!(r.transport, Transport::Tcp);
    assert_eq!(r.outcome, Outcome::Answer(Rcode::NOERROR));
    assert_eq!(r.answer_set(Rtype::A), vec!["10.96.0.1".to_string()]);
}

#[tokio::test]
async fn faults_become_outcomes() {
    let server = DemoServer::start().await.unwrap();
    let prober = Prober::new(true);
    server.set_fault(Fault::Servfail);
    let r = prober.probe(&spec(server.addr(), API, false)).await;
    assert_eq!(r.outcome, Outcome::Answer(Rcode::SERVFAIL));
    server.set_fault(Fault::Nxdomain);
    let r = prober.probe(&spec(server.addr(), API, false)).await;
    assert_eq!(r.outcome, Outcome::Answer(Rcode::NXDOMAIN));
    server.set_fault(Fault::Blackhole);
    let r = prober.probe(&spec(server.addr(), API, false)).await;
    assert_eq!(r.outcome, Outcome::Timeout);
    assert!(r.rtt >= Duration::from_millis(300));
}

/// A responder that first sends garbage and an answer to another query id, then the
/// right answer (built by echoing the query with QR set).
async fn tricky_responder(right_answer: bool) -> SocketAddr {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((n, peer)) = sock.recv_from(&mut buf).await {
            let mut resp = buf[..n].to_vec();
            resp[2] |= 0x80; // QR
            let _ = sock.send_to(b"\x00\x01garbage", peer).await;
            let mut wrong = resp.clone();
            wrong[0] ^= 0xff; // another id
            let _ = sock.send_to(&wrong, peer).await;
            if right_answer {
                let _ = sock.send_to(&resp, peer).await;
            }
        }
    });
    addr
}

#[tokio::test]
async fn mismatched_and_malformed_responses_are_counted_and_skipped() {
    let addr = tricky_responder(true).await;
    let r = Prober::new(false).probe(&spec(addr, API, false)).await;
    assert_eq!(r.outcome, Outcome::Answer(Rcode::NOERROR));
    assert_eq!(r.mismatches, 1);
    assert_eq!(r.malformed, 1);
    assert!(r.last_mismatch.is_some());
}

#[tokio::test]
async fn only_mismatches_until_the_deadline_is_a_mismatch_outcome() {
    let addr = tricky_responder(false).await;
    let r = Prober::new(false).probe(&spec(addr, API, false)).await;
    assert_eq!(r.outcome, Outcome::Mismatch);
}

// ---- the runner's suspicion cadence (probe.confirm) on the embedded server ----------

/// What happened on one pair between a fault and the server's verdict change.
#[derive(Debug, Default)]
struct Seen {
    /// Scheduled (not retry, not confirmation) probes that answered SERVFAIL.
    scheduled_servfails: usize,
    /// Confirmation probes scored.
    confirmations: usize,
    /// The server's verdict left ok.
    changed: bool,
}

/// One server, one target probed every `interval`, SERVFAIL switched on once the pair
/// answered NOERROR; events are read until the server's verdict changes (or `limit`).
async fn servfail_on_one_pair(confirm: ConfirmSettings, interval: Duration) -> (Seen, Finished) {
    let server = DemoServer::start().await.unwrap();
    let mut config = Config::single(
        server.addr(),
        demo_targets(interval).into_iter().take(1).collect(),
    );
    config.probe.interval = interval;
    config.probe.confirm = confirm;
    config.scoring.weights.round_robin = 0.0;
    let runner = Runner::new(config).await.unwrap();
    let metrics = runner.metrics();
    let mut rx = runner.subscribe();
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(runner.run(async move {
        let _ = stop_rx.await;
    }));
    let limit = tokio::time::Instant::now() + interval * 10;
    // A clean answer first.
    loop {
        match tokio::time::timeout_at(limit, rx.recv()).await {
            Ok(Ok(Event::Probe(p))) if p.result.outcome == Outcome::Answer(Rcode::NOERROR) => {
                break;
            }
            Ok(Ok(_) | Err(RecvError::Lagged(_))) => {}
            other => panic!("no clean answer: {other:?}"),
        }
    }
    server.set_fault(Fault::Servfail);
    let mut seen = Seen::default();
    // A probe's verdict change is published before the probe itself: read on to the
    // probe that caused the change.
    let mut probes_after_change = 0;
    while probes_after_change == 0 {
        match tokio::time::timeout_at(limit, rx.recv()).await {
            Ok(Ok(Event::Probe(p))) => {
                if p.confirm {
                    seen.confirmations += 1;
                } else if !p.retry && p.result.outcome == Outcome::Answer(Rcode::SERVFAIL) {
                    seen.scheduled_servfails += 1;
                }
                if seen.changed {
                    probes_after_change += 1;
                }
            }
            Ok(Ok(Event::Verdict(v))) => {
                seen.changed |= v.scope == Scope::Server && v.to != Verdict::Ok;
            }
            Ok(Err(RecvError::Lagged(_))) => {}
            _ => break,
        }
    }
    // Let the burst finish, then stop: its probes are scored before run() returns.
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    drop(server);
    (seen, Finished { metrics })
}

/// The metrics of a finished runner.
struct Finished {
    metrics: std::sync::Arc<dnswarden::metrics::Metrics>,
}

impl Finished {
    fn confirm_probes(&self) -> u64 {
        self.metrics
            .confirm_probes
            .get_or_create(&PairLabels {
                server: "server".into(),
                target: "kubernetes".into(),
            })
            .get()
    }

    fn confirm_bursts(&self) -> u64 {
        self.metrics
            .confirm_bursts
            .get_or_create(&ServerLabels {
                server: "server".into(),
            })
            .get()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_servfail_is_confirmed_before_the_next_scheduled_probe() {
    // The interval is long (the next scheduled probe of the only pair is at least
    // 0.8 s away), so a change after a single scheduled SERVFAIL comes from the burst.
    let (seen, m) =
        servfail_on_one_pair(ConfirmSettings::DEFAULT, Duration::from_millis(1000)).await;
    assert!(seen.changed, "{seen:?}");
    assert_eq!(seen.scheduled_servfails, 1, "{seen:?}");
    assert!(seen.confirmations >= 1, "{seen:?}");
    // One burst (the clean answers before the fault started none), its probes counted.
    assert_eq!(m.confirm_bursts(), 1);
    assert!(m.confirm_probes() >= 1);
    assert!(m.confirm_probes() <= u64::from(ConfirmSettings::DEFAULT.rounds));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_cadence_the_scorer_waits_for_scheduled_probes() {
    let (seen, m) = servfail_on_one_pair(ConfirmSettings::OFF, Duration::from_millis(300)).await;
    assert!(seen.changed, "{seen:?}");
    assert!(seen.scheduled_servfails >= 2, "{seen:?}");
    assert_eq!(seen.confirmations, 0);
    assert_eq!(m.confirm_bursts(), 0);
    assert_eq!(m.confirm_probes(), 0);
}

/// A responder on its own OS thread that echoes every query back as its answer at once,
/// then stores when it sent the answer (µs since the Unix epoch, wall clock) in
/// `replied_us` and raises `asked`.
fn thread_responder(
    asked: std::sync::Arc<std::sync::atomic::AtomicBool>,
    replied_us: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> SocketAddr {
    use std::sync::atomic::Ordering;
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, peer)) = sock.recv_from(&mut buf) {
            buf[2] |= 0x80; // QR
            let _ = sock.send_to(&buf[..n], peer);
            replied_us.store(epoch_us(std::time::SystemTime::now()), Ordering::SeqCst);
            asked.store(true, Ordering::SeqCst);
        }
    });
    addr
}

/// [`thread_responder`] over TCP: one connection at a time, each answered message
/// echoed back with QR set (length prefix included) before `replied_us` and `asked`.
fn thread_tcp_responder(
    asked: std::sync::Arc<std::sync::atomic::AtomicBool>,
    replied_us: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> SocketAddr {
    use std::io::{Read, Write};
    use std::sync::atomic::Ordering;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { break };
            let _ = conn.set_nodelay(true);
            let mut len = [0u8; 2];
            while conn.read_exact(&mut len).is_ok() {
                let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
                if conn.read_exact(&mut msg).is_err() || msg.len() < 3 {
                    break;
                }
                msg[2] |= 0x80; // QR
                let mut framed = len.to_vec();
                framed.extend_from_slice(&msg);
                let _ = conn.write_all(&framed);
                replied_us.store(epoch_us(std::time::SystemTime::now()), Ordering::SeqCst);
                asked.store(true, Ordering::SeqCst);
            }
        }
    });
    addr
}

/// The runner's own stall is not server latency: the answer is in the kernel as soon as
/// the responder sends it, but the probing thread is blocked for 150 ms before it reads
/// it. With the kernel's receive timestamp (SO_TIMESTAMPNS) the RTT stays about the
/// responder's own time; a clock read after the wake-up would add the whole stall.
///
/// Five probes 50 ms apart, each from its own short-lived socket: Linux turns packet
/// stamping off lazily once no socket wants it and on again lazily, and an answer that
/// arrives while it is off is stamped when it is read, stall included. The prober keeps
/// stamping on for its whole life; without that, later rounds here fail (and so did this
/// test on CI, where no other process on the machine happened to keep stamping on).
#[tokio::test(flavor = "current_thread")]
async fn a_stalled_runner_does_not_count_its_stall_as_rtt() {
    stalled_rounds(false, false).await;
}

/// The same over TCP, on a fresh connection each time and on a reused one: the kernel
/// stamps the segment that completes the answer.
#[tokio::test(flavor = "current_thread")]
async fn a_stalled_runner_does_not_count_its_stall_as_rtt_over_tcp() {
    stalled_rounds(true, false).await;
    stalled_rounds(true, true).await;
}

async fn stalled_rounds(tcp: bool, tcp_reuse: bool) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let asked = Arc::new(AtomicBool::new(false));
    let replied_us = Arc::new(AtomicU64::new(0));
    let server = if tcp {
        thread_tcp_responder(asked.clone(), replied_us.clone())
    } else {
        thread_responder(asked.clone(), replied_us.clone())
    };
    let prober = Prober::new(tcp_reuse);
    // The kernel turns stamping on a moment after the prober asks for it.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !prober.kernel_stamps_live() {
        assert!(
            std::time::Instant::now() < deadline,
            "the kernel does not stamp received packets (SO_TIMESTAMPNS)"
        );
        tokio::task::yield_now().await;
    }
    for round in 0..5 {
        if round > 0 {
            // The idle gap of a probe schedule (not a wait for anything): no socket of
            // this process wants stamps in it but the prober's own.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        asked.store(false, Ordering::SeqCst);
        let flag = asked.clone();
        let stall = tokio::spawn(async move {
            // Wait (cooperatively) until the answer is sent, then block the only
            // runtime thread, as a CPU-throttled or starved runner would be.
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while !flag.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
                tokio::task::yield_now().await;
            }
            std::thread::sleep(Duration::from_millis(150));
        });
        let mut s = spec(server, API, tcp);
        s.timeout = Duration::from_secs(5);
        let before = epoch_us(std::time::SystemTime::now());
        let r = prober.probe(&s).await;
        stall.await.unwrap();
        assert_eq!(r.outcome, Outcome::Answer(Rcode::NOERROR), "{r:?}");
        assert_eq!(r.tcp_reused, tcp_reuse && round > 0, "round {round}: {r:?}");
        // The answer was in the kernel before the responder noted `replied_us`: the
        // RTT can be no longer than that (whatever delayed the responder's thread on a
        // loaded machine), while a clock read after the wake-up adds the stall on top.
        let answered =
            Duration::from_micros(replied_us.load(Ordering::SeqCst).saturating_sub(before));
        assert_eq!(r.rtt_clock, RttClock::Kernel, "round {round}: {r:?}");
        assert!(
            r.rtt < answered + Duration::from_millis(50),
            "round {round}: RTT {:?} includes the runner's own 150 ms stall (answer sent \
             {answered:?} after the probe began)",
            r.rtt
        );
    }
}

fn epoch_us(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}
