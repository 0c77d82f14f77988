//! Shared test helpers: fixtures, a canonical form of a message that both dnswarden-core
//! and hickory-proto (the oracle) can be reduced to, and a thread-local allocation counter.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use dnswarden_core::wire::{self, RData, Section};

/// Every captured response under `core/tests/fixtures` (queries excluded), sorted.
pub fn fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| is_response_fixture(p))
                .map(|p| (file_name(&p), std::fs::read(&p).expect("read fixture")))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// The query that produced a fixture, when it was captured with one.
pub fn fixture_query(name: &str) -> Option<Vec<u8>> {
    let stem = name.strip_suffix(".bin")?;
    let p: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{stem}.query.bin"));
    std::fs::read(p).ok()
}

fn is_response_fixture(p: &Path) -> bool {
    let n = file_name(p);
    n.ends_with(".bin") && !n.ends_with(".query.bin")
}

fn file_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

/// A name as its raw labels.
pub type Labels = Vec<Vec<u8>>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CanonData {
    A([u8; 4]),
    Aaaa([u8; 16]),
    /// CNAME, NS, PTR: (type, target)
    Name(u16, Labels),
    Mx(u16, Labels),
    Srv(u16, u16, u16, Labels),
    Soa(Labels, Labels, [u32; 5]),
    Txt(Vec<Vec<u8>>),
    Unknown(u16, Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonRecord {
    pub name: Labels,
    pub rtype: u16,
    pub class: u16,
    pub ttl: u32,
    pub data: CanonData,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonEdns {
    pub payload: u16,
    pub version: u8,
    pub dnssec_ok: bool,
    pub options: Vec<(u16, Vec<u8>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanonMsg {
    pub id: u16,
    /// qr, aa, tc, rd, ra, ad, cd
    pub flags: [bool; 7],
    pub opcode: u8,
    /// Full RCODE, extended by OPT.
    pub rcode: u16,
    pub questions: Vec<(Labels, u16, u16)>,
    /// Answer, authority, additional; OPT excluded (see `edns`).
    pub sections: [Vec<CanonRecord>; 3],
    pub edns: Option<CanonEdns>,
}

fn ours_labels(n: &wire::Name<'_>) -> Labels {
    n.labels().map(<[u8]>::to_vec).collect()
}

/// dnswarden-core's reading of a message, with every field visited.
pub fn ours(bytes: &[u8]) -> Result<CanonMsg, wire::Error> {
    let msg = wire::Message::parse(bytes)?;
    let h = msg.header();
    let mut questions = Vec::new();
    for q in msg.questions() {
        let q = q?;
        questions.push((ours_labels(&q.name), q.qtype.0, q.qclass.0));
    }
    let mut sections: [Vec<CanonRecord>; 3] = Default::default();
    let mut edns = None;
    for r in msg.records() {
        let r = r?;
        let data = match r.data()? {
            RData::A(a) => CanonData::A(a.octets()),
            RData::Aaaa(a) => CanonData::Aaaa(a.octets()),
            RData::Cname(n) | RData::Ns(n) | RData::Ptr(n) => {
                CanonData::Name(r.rtype().0, ours_labels(&n))
            }
            RData::Mx(mx) => CanonData::Mx(mx.preference, ours_labels(&mx.exchange)),
            RData::Srv(s) => CanonData::Srv(s.priority, s.weight, s.port, ours_labels(&s.target)),
            RData::Soa(s) => CanonData::Soa(
                ours_labels(&s.mname),
                ours_labels(&s.rname),
                [s.serial, s.refresh, s.retry, s.expire, s.minimum],
            ),
            RData::Txt(t) => CanonData::Txt(t.strings().map(<[u8]>::to_vec).collect()),
            RData::Opt(o) => {
                if edns.is_none() {
                    edns = Some(CanonEdns {
                        payload: o.udp_payload_size(),
                        version: o.version(),
                        dnssec_ok: o.dnssec_ok(),
                        options: o.options().map(|o| (o.code, o.data.to_vec())).collect(),
                    });
                }
                continue;
            }
            RData::Unknown(raw) => CanonData::Unknown(r.rtype().0, raw.to_vec()),
            other => panic!("unexpected rdata {other:?}"),
        };
        let i = match r.section() {
            Section::Answer => 0,
            Section::Authority => 1,
            Section::Additional => 2,
        };
        sections[i].push(CanonRecord {
            name: ours_labels(&r.name()),
            rtype: r.rtype().0,
            class: r.class().0,
            ttl: r.ttl(),
            data,
        });
    }
    Ok(CanonMsg {
        id: h.id(),
        flags: [h.qr(), h.aa(), h.tc(), h.rd(), h.ra(), h.ad(), h.cd()],
        opcode: h.opcode().0,
        rcode: msg.extended_rcode()?.0,
        questions,
        sections,
        edns,
    })
}

fn hickory_labels(n: &hickory_proto::rr::Name) -> Labels {
    n.iter().map(<[u8]>::to_vec).collect()
}

/// hickory-proto's reading of the same message, reduced to the same form.
pub fn hickory(bytes: &[u8]) -> Option<CanonMsg> {
    use hickory_proto::op::{Message, MessageType};
    use hickory_proto::rr::RData as H;
    let msg = Message::from_vec(bytes).ok()?;
    let m = &msg.metadata;
    let rec = |r: &hickory_proto::rr::Record| -> CanonRecord {
        let rtype = u16::from(r.record_type());
        let data = match &r.data {
            H::A(a) => CanonData::A(a.0.octets()),
            H::AAAA(a) => CanonData::Aaaa(a.0.octets()),
            H::CNAME(n) => CanonData::Name(rtype, hickory_labels(&n.0)),
            H::NS(n) => CanonData::Name(rtype, hickory_labels(&n.0)),
            H::PTR(n) => CanonData::Name(rtype, hickory_labels(&n.0)),
            H::MX(mx) => CanonData::Mx(mx.preference, hickory_labels(&mx.exchange)),
            H::SRV(s) => CanonData::Srv(s.priority, s.weight, s.port, hickory_labels(&s.target)),
            H::SOA(s) => CanonData::Soa(
                hickory_labels(&s.mname),
                hickory_labels(&s.rname),
                [
                    s.serial,
                    s.refresh as u32,
                    s.retry as u32,
                    s.expire as u32,
                    s.minimum,
                ],
            ),
            H::TXT(t) => CanonData::Txt(t.txt_data.iter().map(|s| s.to_vec()).collect()),
            H::Unknown { rdata, .. } => CanonData::Unknown(rtype, rdata.anything.clone()),
            other => panic!("oracle: unhandled rdata {other:?}"),
        };
        CanonRecord {
            name: hickory_labels(&r.name),
            rtype,
            class: u16::from(r.dns_class),
            ttl: r.ttl,
            data,
        }
    };
    let edns = msg.edns.as_ref().map(|e| CanonEdns {
        payload: e.max_payload(),
        version: e.version(),
        dnssec_ok: e.flags().dnssec_ok,
        options: e
            .options()
            .options
            .iter()
            .map(|(code, opt)| {
                (
                    u16::from(*code),
                    Vec::<u8>::try_from(opt).expect("option bytes"),
                )
            })
            .collect(),
    });
    Some(CanonMsg {
        id: m.id,
        flags: [
            m.message_type == MessageType::Response,
            m.authoritative,
            m.truncation,
            m.recursion_desired,
            m.recursion_available,
            m.authentic_data,
            m.checking_disabled,
        ],
        opcode: u8::from(m.op_code),
        rcode: u16::from(m.response_code),
        questions: msg
            .queries
            .iter()
            .map(|q| {
                (
                    hickory_labels(&q.name),
                    u16::from(q.query_type),
                    u16::from(q.query_class),
                )
            })
            .collect(),
        sections: [
            msg.answers.iter().map(rec).collect(),
            msg.authorities.iter().map(rec).collect(),
            msg.additionals.iter().map(rec).collect(),
        ],
        edns,
    })
}

/// Counts heap allocations made by the current thread while armed.
// A global allocator is an `unsafe impl` by definition; it only forwards to `System`.
#[allow(unsafe_code)]
pub mod alloc_counter {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    pub struct Counting;

    thread_local! {
        static ARMED: Cell<bool> = const { Cell::new(false) };
        static COUNT: Cell<usize> = const { Cell::new(0) };
    }

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            note();
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            note();
            unsafe { System.alloc_zeroed(layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
            note();
            unsafe { System.realloc(ptr, layout, new) }
        }
    }

    fn note() {
        let _ = ARMED.try_with(|a| {
            if a.get() {
                let _ = COUNT.try_with(|c| c.set(c.get() + 1));
            }
        });
    }

    /// Runs `f` and returns how many allocations this thread made meanwhile.
    pub fn count<R>(f: impl FnOnce() -> R) -> (R, usize) {
        COUNT.with(|c| c.set(0));
        ARMED.with(|a| a.set(true));
        let r = f();
        ARMED.with(|a| a.set(false));
        (r, COUNT.with(Cell::get))
    }
}
