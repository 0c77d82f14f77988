//! The scorer's public API: config validation names the field and the fix, observations
//! built from real wire messages, hysteresis, capacity limits and eviction.

use std::net::Ipv4Addr;

use dnswarden_core::score::{
    AnswerSummary, CapacityError, Cause, Detector, Fallback, Observation, Outcome, ScoreConfig,
    Scorer, Verdict, Weights, member_hash_ip, member_hash_srv, set_fingerprint,
};
use dnswarden_core::wire::{Message, Mismatch, QueryBuilder, Rcode, Rtype, fingerprint_str};

// ---------------------------------------------------------------- configuration

#[test]
fn default_config_is_valid() {
    ScoreConfig::default().validate().unwrap();
    Scorer::<16, 64>::new(ScoreConfig::default()).unwrap();
}

#[test]
fn invalid_configs_name_the_field_and_the_fix() {
    let d = ScoreConfig::default();
    let cases: Vec<(ScoreConfig, &str)> = vec![
        (
            ScoreConfig {
                weights: Weights {
                    rtt: 1.5,
                    ..d.weights
                },
                ..d
            },
            "weights.rtt",
        ),
        (
            ScoreConfig {
                weights: Weights {
                    integrity: f32::NAN,
                    ..d.weights
                },
                ..d
            },
            "weights.integrity",
        ),
        (
            ScoreConfig {
                weights: Weights {
                    round_robin: -0.1,
                    ..d.weights
                },
                ..d
            },
            "weights.round_robin",
        ),
        (
            ScoreConfig {
                degraded_leave: 0.6,
                ..d
            },
            "degraded_leave",
        ),
        (
            ScoreConfig {
                degraded_enter: 0.0,
                ..d
            },
            "degraded_enter",
        ),
        (
            ScoreConfig {
                critical_enter: 0.4,
                ..d
            },
            "critical_enter",
        ),
        (
            ScoreConfig {
                critical_leave: 0.9,
                ..d
            },
            "critical_leave",
        ),
        (
            ScoreConfig {
                critical_leave: 0.2,
                ..d
            },
            "critical_leave",
        ),
        (
            ScoreConfig {
                rate_window_us: 0,
                ..d
            },
            "rate_window_us",
        ),
        (
            ScoreConfig {
                burst_window: 0,
                ..d
            },
            "burst_window",
        ),
        (
            ScoreConfig {
                burst_window: 65,
                ..d
            },
            "burst_window",
        ),
        (
            ScoreConfig {
                stale_after_us: 0,
                ..d
            },
            "stale_after_us",
        ),
        (
            ScoreConfig {
                rtt_window_us: 5,
                ..d
            },
            "rtt_window_us",
        ),
        (
            ScoreConfig {
                rtt_sigmas: 0.0,
                ..d
            },
            "rtt_sigmas",
        ),
        (
            ScoreConfig {
                rtt_ceiling_us: 0,
                ..d
            },
            "rtt_ceiling_us",
        ),
        (
            ScoreConfig {
                rtt_confirm: 9,
                ..d
            },
            "rtt_confirm",
        ),
        (
            ScoreConfig {
                rtt_alpha: 0.0,
                ..d
            },
            "rtt_alpha",
        ),
        (
            ScoreConfig {
                loss_consecutive: 0,
                ..d
            },
            "loss_consecutive",
        ),
        (
            ScoreConfig {
                loss_rate_ok: 0.5,
                ..d
            },
            "loss_rate_bad",
        ),
        (ScoreConfig { nx_share: 0.0, ..d }, "nx_share"),
        (
            ScoreConfig {
                nx_min_samples: 0,
                ..d
            },
            "nx_min_samples",
        ),
        (
            ScoreConfig {
                servfail_burst: 0,
                ..d
            },
            "servfail_burst",
        ),
        (
            ScoreConfig {
                servfail_rate_bad: 0.01,
                ..d
            },
            "servfail_rate_bad",
        ),
        (
            ScoreConfig {
                servfail_concentrated_entropy: 2.0,
                ..d
            },
            "servfail_concentrated_entropy",
        ),
        (
            ScoreConfig {
                tc_rate_ok: 0.9,
                ..d
            },
            "tc_rate_bad",
        ),
        (
            ScoreConfig {
                tcp_fail_burst: 20,
                ..d
            },
            "tcp_fail_burst",
        ),
        (
            ScoreConfig {
                integrity_burst: 0,
                ..d
            },
            "integrity_burst",
        ),
        (
            ScoreConfig {
                drift_confirm: 0,
                ..d
            },
            "drift_confirm",
        ),
        (ScoreConfig { rr_alpha: 0.7, ..d }, "rr_alpha"),
        (
            ScoreConfig {
                rr_min_samples: 65,
                ..d
            },
            "rr_min_samples",
        ),
    ];
    for (cfg, field) in cases {
        let e = cfg.validate().expect_err(field);
        assert_eq!(e.field, field, "{e}");
        let text = e.to_string();
        assert!(
            text.contains(field) && text.contains(e.fix) && !e.fix.is_empty(),
            "{text}"
        );
        assert_eq!(Scorer::<2, 2>::new(cfg).err(), Some(e));
    }
}

// ---------------------------------------------------------------- from_exchange

/// Appends a name in uncompressed wire form.
fn put_name(buf: &mut Vec<u8>, name: &str) {
    for label in name.split('.').filter(|l| !l.is_empty()) {
        buf.push(label.len() as u8);
        buf.extend_from_slice(label.as_bytes());
    }
    buf.push(0);
}

struct Resp {
    id: u16,
    flags: u16,
    qname: String,
    qtype: u16,
    /// (owner, type, rdata); owner "" = pointer to the question name.
    answers: Vec<(String, u16, Vec<u8>)>,
}

impl Resp {
    fn new(id: u16, qname: &str, qtype: Rtype) -> Self {
        Resp {
            id,
            flags: 0x8180, // QR, RD, RA, NOERROR
            qname: qname.into(),
            qtype: qtype.0,
            answers: vec![],
        }
    }
    fn a(mut self, owner: &str, ip: [u8; 4]) -> Self {
        self.answers.push((owner.into(), 1, ip.to_vec()));
        self
    }
    fn cname(mut self, owner: &str, target: &str) -> Self {
        let mut rdata = vec![];
        put_name(&mut rdata, target);
        self.answers.push((owner.into(), 5, rdata));
        self
    }
    fn bytes(&self) -> Vec<u8> {
        let mut b = vec![];
        b.extend_from_slice(&self.id.to_be_bytes());
        b.extend_from_slice(&self.flags.to_be_bytes());
        for n in [1u16, self.answers.len() as u16, 0, 0] {
            b.extend_from_slice(&n.to_be_bytes());
        }
        put_name(&mut b, &self.qname);
        b.extend_from_slice(&self.qtype.to_be_bytes());
        b.extend_from_slice(&1u16.to_be_bytes());
        for (owner, t, rdata) in &self.answers {
            if owner.is_empty() {
                b.extend_from_slice(&[0xC0, 12]);
            } else {
                put_name(&mut b, owner);
            }
            b.extend_from_slice(&t.to_be_bytes());
            b.extend_from_slice(&1u16.to_be_bytes());
            b.extend_from_slice(&30u32.to_be_bytes());
            b.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
            b.extend_from_slice(rdata);
        }
        b
    }
}

fn query(id: u16, name: &str, qtype: Rtype) -> Vec<u8> {
    let mut buf = [0u8; 512];
    let n = QueryBuilder::new(id, name, qtype)
        .rd(true)
        .write(&mut buf)
        .unwrap();
    buf[..n].to_vec()
}

fn ip(a: [u8; 4]) -> u64 {
    member_hash_ip(Ipv4Addr::from(a).into())
}

#[test]
fn from_exchange_summarises_an_order_independent_answer_set() {
    let name = "web.default.svc.cluster.local";
    let q = query(7, name, Rtype::A);
    let q = Message::parse(&q).unwrap();
    let r1 = Resp::new(7, name, Rtype::A)
        .a("", [10, 0, 0, 1])
        .a("", [10, 0, 0, 2])
        .a("", [10, 0, 0, 3])
        .bytes();
    let r2 = Resp::new(7, name, Rtype::A)
        .a("", [10, 0, 0, 3])
        .a("", [10, 0, 0, 1])
        .a("", [10, 0, 0, 2])
        .bytes();
    let mut m1 = [0u64; 8];
    let mut m2 = [0u64; 8];
    let o1 = Observation::from_response_bytes(1, 2, 100, 900, &q, &r1, &mut m1);
    let o2 = Observation::from_response_bytes(1, 2, 100, 900, &q, &r2, &mut m2);
    assert_eq!(o1.outcome, Outcome::Response(Rcode::NOERROR));
    assert_eq!(
        (o1.server, o1.target, o1.at_us, o1.rtt_us),
        (1, 2, 100, 900)
    );
    assert_eq!(o1.answers.count, 3);
    let expected = [ip([10, 0, 0, 1]), ip([10, 0, 0, 2]), ip([10, 0, 0, 3])];
    assert_eq!(o1.answers.set_fingerprint, set_fingerprint(&expected));
    assert_eq!(
        o1.answers.set_fingerprint, o2.answers.set_fingerprint,
        "order-independent"
    );
    assert_eq!(o1.answers.first, ip([10, 0, 0, 1]));
    assert_eq!(o2.answers.first, ip([10, 0, 0, 3]));
    assert_eq!(o1.answers.members, &expected[..]);
    assert_eq!(o1.answers.cname_chain_len, 0);
    assert_eq!(o1.answers.final_name, fingerprint_str(name).unwrap());

    // A buffer too small: count and fingerprint still cover everything, members do not.
    let mut small = [0u64; 2];
    let o3 = Observation::from_response_bytes(1, 2, 100, 900, &q, &r1, &mut small);
    assert_eq!(o3.answers.count, 3);
    assert_eq!(o3.answers.set_fingerprint, o1.answers.set_fingerprint);
    assert!(o3.answers.members.is_empty());
}

#[test]
fn from_exchange_follows_cname_chains() {
    let name = "ext.default.svc.cluster.local";
    let q = query(9, name, Rtype::A);
    let q = Message::parse(&q).unwrap();
    let r = Resp::new(9, name, Rtype::A)
        .cname("", "a.example.net")
        .cname("a.example.net", "b.example.net")
        .a("b.example.net", [192, 0, 2, 7])
        .a("unrelated.example", [192, 0, 2, 8])
        .bytes();
    let mut m = [0u64; 4];
    let o = Observation::from_response_bytes(0, 0, 0, 0, &q, &r, &mut m);
    assert_eq!(o.answers.cname_chain_len, 2);
    assert_eq!(
        o.answers.final_name,
        fingerprint_str("b.example.net").unwrap()
    );
    assert_eq!(o.answers.count, 1, "only records owned by the final name");
    assert_eq!(o.answers.first, ip([192, 0, 2, 7]));
}

#[test]
fn from_exchange_classifies_failures() {
    let name = "web.default.svc.cluster.local";
    let qb = query(7, name, Rtype::A);
    let q = Message::parse(&qb).unwrap();
    let mut m = [0u64; 4];
    // Wrong id: a mismatch, an integrity signal.
    let r = Resp::new(8, name, Rtype::A).a("", [10, 0, 0, 1]).bytes();
    let o = Observation::from_response_bytes(0, 0, 0, 0, &q, &r, &mut m);
    assert!(
        matches!(o.outcome, Outcome::Mismatch(x) if x.contains(Mismatch::ID)),
        "{o:?}"
    );
    // Wrong question.
    let r = Resp::new(7, "other.default.svc.cluster.local", Rtype::A).bytes();
    let o = Observation::from_response_bytes(0, 0, 0, 0, &q, &r, &mut m);
    assert!(
        matches!(o.outcome, Outcome::Mismatch(x) if x.contains(Mismatch::QNAME)),
        "{o:?}"
    );
    // SERVFAIL.
    let mut resp = Resp::new(7, name, Rtype::A);
    resp.flags = 0x8182;
    let o = Observation::from_response_bytes(0, 0, 0, 0, &q, &resp.bytes(), &mut m);
    assert_eq!(o.outcome, Outcome::Response(Rcode::SERVFAIL));
    // TC=1.
    resp.flags = 0x8380;
    let o = Observation::from_response_bytes(0, 0, 0, 0, &q, &resp.bytes(), &mut m);
    assert_eq!(o.outcome, Outcome::Truncated(Fallback::NotAttempted));
    // Garbage and a cut answer section.
    let o = Observation::from_response_bytes(0, 0, 0, 0, &q, &[1, 2, 3], &mut m);
    assert_eq!(o.outcome, Outcome::Malformed);
    let mut cut = Resp::new(7, name, Rtype::A).a("", [10, 0, 0, 1]).bytes();
    cut.truncate(cut.len() - 2);
    let o = Observation::from_response_bytes(0, 0, 0, 0, &q, &cut, &mut m);
    assert_eq!(o.outcome, Outcome::Malformed);
}

#[test]
fn srv_member_hashes_are_order_independent_too() {
    let t = fingerprint_str("web-0.web.default.svc.cluster.local").unwrap();
    let a = member_hash_srv(0, 50, 8080, t);
    let b = member_hash_srv(0, 50, 8081, t);
    assert_ne!(a, b);
    assert_eq!(set_fingerprint(&[a, b]), set_fingerprint(&[b, a]));
}

// ---------------------------------------------------------------- behaviour

const MS: u64 = 1_000;

fn ok(server: u32, t: u64) -> Observation<'static> {
    Observation::new(server, 0, t, Outcome::Response(Rcode::NOERROR)).rtt(900)
}

#[test]
fn hysteresis_escalates_at_once_and_steps_down_after_dwell_and_hold() {
    let cfg = ScoreConfig::default();
    let mut s: Scorer = Scorer::new(cfg).unwrap();
    let mut t = 0;
    for _ in 0..100 {
        t += 10 * MS;
        s.observe(&ok(0, t));
    }
    // Three timeouts in a row: loss at full severity -> critical on the third.
    let mut changes = vec![];
    for _ in 0..3 {
        t += 10 * MS;
        let a = s.observe(&Observation::new(0, 0, t, Outcome::Timeout));
        changes.extend(a.change);
    }
    assert_eq!(s.verdict(), Verdict::Critical);
    assert_eq!(changes.last().unwrap().to, Verdict::Critical);
    let escalated = t;
    let r = s.reasons();
    assert_eq!(r.top().unwrap().detector, Detector::Loss);
    assert_eq!(r.top().unwrap().cause, Cause::ConsecutiveTimeouts);
    // Clean again: the score drops below the leave thresholds at once (the burst
    // resets), but the verdict holds for the dwell and the leave hold.
    let mut recovered = None;
    while t < escalated + 20_000 * MS {
        t += 10 * MS;
        let a = s.observe(&ok(0, t));
        if let Some(c) = a.change {
            assert_eq!(c.from, Verdict::Critical);
            recovered = Some((c.to, t));
            break;
        }
    }
    let (to, at) = recovered.expect("recovers");
    assert!(at - escalated >= cfg.min_dwell_us, "held for the dwell");
    assert!(at - escalated >= cfg.leave_hold_us);
    // The timeout rate is still in the 5 s window until it slides out: a 3/103 rate is
    // under degraded_leave after weighting, so the step goes straight to ok.
    assert_eq!(to, Verdict::Ok);
}

#[test]
fn evaluate_alone_lets_the_verdict_recover_and_servers_go_stale() {
    let cfg = ScoreConfig::default();
    let mut s: Scorer = Scorer::new(cfg).unwrap();
    let mut t = 0;
    for i in 0..50 {
        t += 10 * MS;
        s.observe(&Observation::new(
            i % 2,
            0,
            t,
            Outcome::Response(Rcode::SERVFAIL),
        ));
    }
    assert_eq!(s.verdict(), Verdict::Critical);
    // No more observations: only time passes.
    let mut last = s.verdict();
    for _ in 0..120 {
        t += 1_000 * MS;
        last = s.evaluate(t).verdict;
    }
    assert_eq!(last, Verdict::Ok);
    let h = s.server_health(0).unwrap();
    assert!(h.stale);
    assert_eq!(h.score, 0.0);
}

#[test]
fn time_going_backwards_is_treated_as_now() {
    let mut s: Scorer = Scorer::new(ScoreConfig::default()).unwrap();
    s.observe(&ok(0, 1_000_000));
    let a = s.observe(&ok(0, 5));
    assert_eq!(s.now_us(), 1_000_000);
    assert_eq!(a.verdict, Verdict::Ok);
}

#[test]
fn expectations_are_bounded_and_pinned() {
    let mut s: Scorer<2, 2> = Scorer::new(ScoreConfig::default()).unwrap();
    let too_many: Vec<u64> = (1..=65).collect();
    assert_eq!(
        s.expect_members(1, 0, &too_many),
        Err(CapacityError::TooManyMembers)
    );
    s.expect_members(1, 0, &[1, 2]).unwrap();
    s.expect_fingerprint(2, 0, 42, Some(3)).unwrap();
    assert_eq!(
        s.expect_final_name(3, 0, 7),
        Err(CapacityError::TargetsFull)
    );
    // Multi-record answers for other targets cannot evict pinned targets.
    let members = [5u64, 6];
    let obs = Observation::new(0, 9, 10, Outcome::Response(Rcode::NOERROR))
        .answers(AnswerSummary::from_members(&members));
    s.observe(&obs);
    assert_eq!(s.untracked_targets(), 1);
    assert!(s.forget_target(2));
    assert!(!s.forget_target(2));
    s.expect_final_name(3, 0, 7).unwrap();
    assert!(CapacityError::TargetsFull.to_string().contains("larger T"));
}

#[test]
fn servers_are_evicted_least_recently_seen_first() {
    let mut s: Scorer<2, 2> = Scorer::new(ScoreConfig::default()).unwrap();
    s.observe(&ok(10, 1));
    s.observe(&ok(11, 2));
    s.observe(&ok(10, 3));
    s.observe(&ok(12, 4)); // evicts 11
    assert_eq!(s.evictions(), 1);
    let mut keys: Vec<u32> = s.servers().collect();
    keys.sort();
    assert_eq!(keys, vec![10, 12]);
    assert!(s.server_health(11).is_none());
    assert!(s.forget_server(10));
    assert_eq!(s.servers().collect::<Vec<_>>(), vec![12]);
}

#[test]
fn reasons_read_well_in_a_log_line() {
    let mut s: Scorer = Scorer::new(ScoreConfig::default()).unwrap();
    let mut t = 0;
    for i in 0..300u32 {
        t += 10 * MS;
        let server = i % 3;
        let rcode = if server == 2 && i > 150 {
            Rcode::SERVFAIL
        } else {
            Rcode::NOERROR
        };
        s.observe(&Observation::new(server, 0, t, Outcome::Response(rcode)).rtt(900));
    }
    let line = s.reasons().to_string();
    assert!(
        line.starts_with("SERVFAIL/REFUSED burst concentrated on one server (server 2;"),
        "{line}"
    );
    assert!(
        line.contains("source entropy 0.00 bits over 3 servers"),
        "{line}"
    );
    let h = s.server_health(2).unwrap();
    assert_eq!(h.severity(Detector::Servfail), 1.0);
    assert_eq!(
        s.server_health(1).unwrap().severity(Detector::Servfail),
        0.0
    );
}

#[test]
fn chi_square_catches_partial_round_robin_skew() {
    // Four records; the first position goes to pod 1 70 % of the time (not stuck, so only
    // the chi-square test can see it).
    let pods: Vec<u64> = (1..=4).map(|i| ip([10, 244, 0, i])).collect();
    let mut s: Scorer = Scorer::new(ScoreConfig::default()).unwrap();
    let mut t = 0;
    let mut x = 12345u64;
    let mut detected = None;
    for i in 0..400u32 {
        t += 10 * MS;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let skewed = i >= 100;
        let first = if skewed && x % 10 < 7 {
            0
        } else {
            (x >> 8) as usize % 4
        };
        let mut order = pods.clone();
        order.swap(0, first);
        let obs = Observation::new(0, 5, t, Outcome::Response(Rcode::NOERROR))
            .rtt(900)
            .answers(AnswerSummary::from_members(&order));
        let a = s.observe(&obs);
        if !skewed {
            assert_eq!(a.verdict, Verdict::Ok);
        } else if a.verdict != Verdict::Ok && detected.is_none() {
            detected = Some(i - 100);
        }
    }
    let n = detected.expect("skew detected");
    assert!(n <= 64, "after {n} skewed answers");
    let r = s.reasons();
    let rr = r.get(Detector::RoundRobin).unwrap();
    assert_eq!(
        (rr.cause, rr.target),
        (Cause::RoundRobinSkew, Some(5)),
        "{r}"
    );
}

#[test]
fn refused_counts_as_a_server_failure() {
    let mut s: Scorer = Scorer::new(ScoreConfig::default()).unwrap();
    let mut t = 0;
    for i in 0..300u32 {
        t += 10 * MS;
        let server = i % 3;
        let rcode = if server == 1 && i > 150 {
            Rcode::REFUSED
        } else {
            Rcode::NOERROR
        };
        s.observe(&Observation::new(server, 0, t, Outcome::Response(rcode)).rtt(900));
    }
    assert_ne!(s.verdict(), Verdict::Ok);
    let r = s.reasons();
    let top = r.top().unwrap();
    assert_eq!(
        (top.cause, top.server),
        (Cause::ServfailConcentrated, Some(1)),
        "{r}"
    );
}

// ---------------------------------------------------------------- record and observe

/// `record` is `observe` without the assessment: fed the same stream (small and hashed
/// server keys, clean stretches and fault bursts, multi-record answers), two scorers
/// agree on score, verdict, every severity and every change, and `last_change` holds
/// the change `observe` returned.
#[test]
fn record_matches_observe() {
    let mut a: Scorer<4, 8> = Scorer::new(ScoreConfig::default()).unwrap();
    let mut b = a.clone();
    let pods = [1u8, 2, 3, 4].map(|i| member_hash_ip(Ipv4Addr::new(10, 244, 0, i).into()));
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut now = 0u64;
    let mut changes = 0;
    for i in 0..60_000u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        now += 2_000 + x % 15_000;
        let outcome = if (i / 3_000) % 5 == 4 {
            match x % 5 {
                0 => Outcome::Response(Rcode::SERVFAIL),
                1 => Outcome::Timeout,
                2 => Outcome::Truncated(Fallback::Failed),
                3 => Outcome::Response(Rcode::NXDOMAIN),
                _ => Outcome::Response(Rcode::NOERROR),
            }
        } else if x.is_multiple_of(9) {
            Outcome::Response(Rcode::NXDOMAIN)
        } else {
            Outcome::Response(Rcode::NOERROR)
        };
        // Keys 0..3 sit at their home slots; the hashed ones (and 6) do not.
        let server = [0, 1, 2, 3, 0x9E37_79B9, 0xDEAD_BEEF, 6][((x >> 20) % 7) as usize];
        let rtt = if x.is_multiple_of(61) {
            250_000
        } else {
            700 + (x % 600) as u32
        };
        let mut members = pods;
        members.rotate_left(((x >> 8) % 4) as usize);
        let target = ((x >> 32) % 6) as u32;
        let answers = if target == 5 && outcome == Outcome::Response(Rcode::NOERROR) {
            AnswerSummary::from_members(&members)
        } else {
            AnswerSummary::EMPTY
        };
        let obs = Observation::new(server, target, now, outcome)
            .rtt(rtt)
            .answers(answers);
        let assessed = a.observe(&obs);
        let recorded = b.record(&obs);
        assert_eq!(recorded, assessed.change.map(|c| c.to), "step {i}");
        if assessed.change.is_some() {
            changes += 1;
            assert_eq!(b.last_change(), assessed.change, "step {i}");
        }
        assert_eq!(b.score(), assessed.score, "step {i}");
        assert_eq!(b.verdict(), assessed.verdict, "step {i}");
        for d in Detector::ALL {
            assert_eq!(a.severity(d), b.severity(d), "step {i} {d}");
        }
    }
    assert!(changes > 0, "the fault bursts move the verdict");
    assert_eq!(a.evictions(), b.evictions());
}
