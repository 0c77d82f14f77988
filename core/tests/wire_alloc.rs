//! Proves that the wire layer allocates nothing: parsing and walking every fixture (and a
//! set of hand-made hostile messages), building queries and framing a TCP stream, under a
//! counting global allocator.

mod common;

use common::alloc_counter::{Counting, count};
use dnswarden_core::wire::{
    Message, QueryBuilder, QueryKey, RData, Rtype, TcpFramer, check_response,
};

#[global_allocator]
static ALLOC: Counting = Counting;

/// Visits everything a consumer could ask for and folds it into a number, so that
/// nothing is optimised away.
fn visit(bytes: &[u8]) -> u64 {
    let mut sum = 0u64;
    let mut mix = |x: u64| sum = sum.wrapping_mul(31).wrapping_add(x);
    let Ok(msg) = Message::parse(bytes) else {
        return 1;
    };
    mix(u64::from(msg.id()));
    let mut out = [0u8; 1024];
    for q in msg.questions() {
        let Ok(q) = q else { return 2 };
        mix(q.name.fingerprint() ^ u64::from(q.qtype.0));
        mix(q.name.write_to(&mut out).unwrap_or(0) as u64);
    }
    let mut records = msg.records();
    for r in &mut records {
        let Ok(r) = r else { return 3 };
        mix(u64::from(r.ttl()));
        for label in r.name().labels() {
            mix(label.len() as u64);
        }
        match r.data() {
            Ok(RData::A(a)) => mix(u64::from(u32::from(a))),
            Ok(RData::Cname(n) | RData::Ns(n) | RData::Ptr(n)) => mix(n.fingerprint()),
            Ok(RData::Srv(s)) => mix(s.target.fingerprint() ^ u64::from(s.port)),
            Ok(RData::Soa(s)) => mix(s.mname.fingerprint() ^ u64::from(s.serial)),
            Ok(RData::Txt(t)) => mix(t.strings().count() as u64),
            Ok(RData::Opt(o)) => {
                mix(o.options().count() as u64);
                mix(o.extended_error().map_or(0, |e| u64::from(e.info_code)));
            }
            Ok(_) => mix(1),
            Err(e) => mix(e.kind().len() as u64),
        }
    }
    mix(records.trailing_len().unwrap_or(0) as u64);
    mix(u64::from(msg.extended_rcode().map_or(0, |r| r.0)));
    sum
}

#[test]
fn parsing_building_and_framing_allocate_nothing() {
    let fixtures = common::fixtures();
    assert!(
        fixtures.len() >= 40,
        "only {} fixtures found",
        fixtures.len()
    );
    let queries: Vec<Vec<u8>> = fixtures
        .iter()
        .filter_map(|(n, _)| common::fixture_query(n))
        .collect();
    let hostile: Vec<Vec<u8>> = vec![
        vec![0; 11],
        vec![0, 0, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1],
        vec![
            0, 0, 0x80, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 9, 1,
        ],
    ];
    // A TCP stream of every fixture, length-prefixed.
    let mut stream = Vec::new();
    for (_, f) in &fixtures {
        stream.extend_from_slice(&(f.len() as u16).to_be_bytes());
        stream.extend_from_slice(f);
    }
    let mut framer_buf = vec![0u8; 65535];

    let (sum, allocations) = count(|| {
        let mut sum = 0u64;
        for (_, f) in &fixtures {
            sum = sum.wrapping_add(visit(f));
        }
        for h in &hostile {
            sum = sum.wrapping_add(visit(h));
        }
        // Queries matched against their responses.
        for ((_, resp), q) in fixtures.iter().zip(&queries) {
            if let (Ok(q), Ok(r)) = (Message::parse(q), Message::parse(resp)) {
                sum = sum.wrapping_add(u64::from(check_response(&q, &r).is_ok()));
                sum = sum
                    .wrapping_add(QueryKey::of(&q).map_or(0, |k| u64::from(k.check(&r).is_ok())));
            }
        }
        // Building.
        let mut buf = [0u8; 512];
        for (i, name) in [
            "kubernetes.default.svc.cluster.local",
            "_http._tcp.my-headless.default.svc.cluster.local",
        ]
        .iter()
        .enumerate()
        {
            let n = QueryBuilder::new(i as u16, name, Rtype::SRV)
                .edns(1232)
                .tcp(true)
                .write(&mut buf)
                .unwrap();
            sum = sum.wrapping_add(visit(&buf[2..n]));
        }
        // Framing, in chunks of 1 and of 7 octets and all at once.
        for chunk in [1usize, 7, stream.len().max(1)] {
            let mut framer = TcpFramer::new(framer_buf.as_mut_slice());
            for c in stream.chunks(chunk) {
                framer
                    .push(c, |m| sum = sum.wrapping_add(visit(m)))
                    .unwrap();
            }
            assert!(framer.is_idle());
        }
        sum
    });
    assert_eq!(
        allocations, 0,
        "the wire layer allocated {allocations} times"
    );
    assert_ne!(sum, 0);
    eprintln!(
        "walked {} fixtures, {} stream octets, zero allocations",
        fixtures.len(),
        stream.len()
    );
}

#[test]
fn the_counter_does_count() {
    // Guards the guard: if counting were broken, the test above could not fail.
    let (v, n) = count(|| vec![1u8; 32]);
    assert_eq!(v.len(), 32);
    assert!(n >= 1);
}
