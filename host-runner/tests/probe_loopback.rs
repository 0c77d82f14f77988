//! The prober against real servers on loopback: the demo's embedded hickory server
//! (with its fault switch), and a hand-made UDP responder for the integrity cases.

use std::net::SocketAddr;
use std::time::Duration;

use dnswarden::demo::{DemoServer, Fault};
use dnswarden::probe::{Outcome, ProbeSpec, Prober, Transport};
use dnswarden_core::wire::{Message, Rcode, Rtype};
use tokio::net::UdpSocket;

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
