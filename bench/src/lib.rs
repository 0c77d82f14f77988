//! Shared corpus and visitors for the dnswarden wire benchmarks, tests and fuzz targets.
//!
//! Every implementation does the same job: parse a message, then visit its header, every
//! question and every record (type, class, TTL, owner-name labels, typed rdata) and feed
//! what it sees, in one fixed order, into a [`Sink`]. With the [`Checksum`] sink that is
//! the benchmarked work; with the [`Trace`] sink it is a field-by-field record that tests
//! and the differential fuzz target compare.
//!
//! The visiting order is the wire order with one exception forced by hickory-proto, which
//! lifts the OPT record out of the additional section: OPT records are visited last.
//!
//! Normalisations, so that the three views agree on well-formed input:
//! * The header's Z bit (0x0040) is not visited: hickory drops it.
//! * The OPT UDP payload size is visited as `max(size, 512)`: hickory applies RFC 6891's
//!   "values lower than 512 MUST be treated as equal to 512" while decoding.
//! * Record types the visitors have no typed view for are visited as raw rdata; hickory
//!   decodes some of them (CAA, HINFO, SSHFP, ...) and is re-encoded to get the bytes.

use std::path::{Path, PathBuf};

use dnswarden_core::wire as dw;

/// What the visitors report, in order. `num` carries integers (types, classes, TTLs,
/// addresses, ports, ...), `bytes` carries octet strings (labels, TXT strings, option
/// data, raw rdata).
pub trait Sink {
    /// An integer field.
    fn num(&mut self, field: Field, value: u64);
    /// An octet-string field.
    fn bytes(&mut self, field: Field, value: &[u8]);
}

/// The name of a visited field (only used by [`Trace`] for readable diffs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Field {
    Id,
    Flags,
    Section,
    Qtype,
    Qclass,
    Rtype,
    Class,
    Ttl,
    Label,
    NameEnd,
    A,
    Aaaa,
    Preference,
    Priority,
    Weight,
    Port,
    Serial,
    Refresh,
    Retry,
    Expire,
    Minimum,
    TxtString,
    RecordEnd,
    UdpSize,
    ExtRcodeHigh,
    Version,
    DnssecOk,
    OptCode,
    OptData,
    Raw,
}

/// A cheap, order-sensitive checksum: rotate and xor, 8 octets at a time.
///
/// Its job is to make every implementation read every visited field (octet strings in
/// whole), and to make a divergence between implementations visible: each step is a
/// bijection of the state, so a single differing field always changes the result. It is
/// deliberately not a strong hash: a multiply per field would put a 5-cycle dependency
/// chain in every implementation's loop and measure the checksum instead of the parser
/// (tests and the differential fuzz target compare field by field with [`Trace`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Checksum(pub u64);

impl Checksum {
    #[inline(always)]
    fn mix(&mut self, v: u64) {
        self.0 = self.0.rotate_left(5) ^ v;
    }
}

impl Sink for Checksum {
    #[inline(always)]
    fn num(&mut self, _field: Field, value: u64) {
        self.mix(value);
    }
    #[inline(always)]
    fn bytes(&mut self, _field: Field, value: &[u8]) {
        // Whole words only, never a partial copy into a stack buffer (that costs a
        // store-forwarding stall per label and would dominate every implementation's
        // time): the tail is read as an overlapping word, as wyhash does.
        let n = value.len();
        self.mix(n as u64);
        if n >= 8 {
            let mut chunks = value.chunks_exact(8);
            for c in &mut chunks {
                self.mix(word8(c));
            }
            if !chunks.remainder().is_empty() {
                self.mix(word8(&value[n - 8..]));
            }
        } else if n >= 4 {
            self.mix(word4(&value[..4]) << 32 | word4(&value[n - 4..]));
        } else if n > 0 {
            self.mix(
                u64::from(value[0]) << 16 | u64::from(value[n / 2]) << 8 | u64::from(value[n - 1]),
            );
        }
    }
}

#[inline(always)]
fn word8(b: &[u8]) -> u64 {
    match b.first_chunk::<8>() {
        Some(w) => u64::from_le_bytes(*w),
        None => 0,
    }
}

#[inline(always)]
fn word4(b: &[u8]) -> u64 {
    match b.first_chunk::<4>() {
        Some(w) => u64::from(u32::from_le_bytes(*w)),
        None => 0,
    }
}

/// One visited value, as recorded by [`Trace`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// An integer field.
    Num(u64),
    /// An octet-string field.
    Bytes(Vec<u8>),
}

/// A sink that records every field, for tests and fuzzing (allocates).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trace(pub Vec<(Field, Value)>);

impl Sink for Trace {
    fn num(&mut self, field: Field, value: u64) {
        self.0.push((field, Value::Num(value)));
    }
    fn bytes(&mut self, field: Field, value: &[u8]) {
        self.0.push((field, Value::Bytes(value.to_vec())));
    }
}

impl Trace {
    /// The first position where two traces differ, with both sides (for messages).
    pub fn first_difference(&self, other: &Trace) -> Option<String> {
        let n = self.0.len().max(other.0.len());
        (0..n).find_map(|i| {
            let (a, b) = (self.0.get(i), other.0.get(i));
            (a != b).then(|| format!("field #{i}: {a:?} != {b:?}"))
        })
    }
}

/// The UDP payload size as visited (see the crate docs).
fn udp_size(v: u16) -> u64 {
    u64::from(v.max(512))
}

/// The header flags as visited: everything but Z.
fn flags(v: u16) -> u64 {
    u64::from(v & !0x0040)
}

// ------------------------------------------------------------------------------------
// dnswarden-core

/// Why a walk failed, whatever the implementation.
#[derive(Debug)]
pub enum WalkError {
    /// dnswarden-core's error.
    Core(dw::Error),
    /// hickory-proto's error (as text).
    Hickory(String),
    /// domain's error (as text).
    Domain(String),
    /// The floor walker ran out of bytes (it tells nothing else apart).
    Floor,
}

impl std::fmt::Display for WalkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WalkError::Core(e) => write!(f, "dnswarden-core: {e} ({})", e.kind()),
            WalkError::Hickory(e) => write!(f, "hickory-proto: {e}"),
            WalkError::Domain(e) => write!(f, "domain: {e}"),
            WalkError::Floor => f.write_str("floor walker: out of bounds"),
        }
    }
}

impl std::error::Error for WalkError {}

impl From<dw::Error> for WalkError {
    fn from(e: dw::Error) -> Self {
        WalkError::Core(e)
    }
}

#[inline(always)]
fn core_name<S: Sink>(s: &mut S, name: dw::Name<'_>) {
    for label in name.labels() {
        s.bytes(Field::Label, label);
    }
    s.num(Field::NameEnd, 0);
}

/// Parses `bytes` with dnswarden-core and visits everything.
#[inline(never)]
pub fn walk_core<S: Sink>(bytes: &[u8], s: &mut S) -> Result<(), dw::Error> {
    let msg = dw::Message::parse(bytes)?;
    s.num(Field::Id, u64::from(msg.id()));
    s.num(Field::Flags, flags(msg.header().flags()));
    // One pass: the questions, then `into_records` continues where they end.
    let mut questions = msg.questions();
    for q in &mut questions {
        let q = q?;
        core_name(s, q.name);
        s.num(Field::Qtype, u64::from(q.qtype.0));
        s.num(Field::Qclass, u64::from(q.qclass.0));
    }
    // At most a few OPT records are deferred (as their typed view); more than one is
    // visited in order.
    let mut opts: [Option<dw::Opt<'_>>; 2] = [None, None];
    for r in questions.into_records() {
        let r = r?;
        if r.rtype() == dw::Rtype::OPT && r.section() == dw::Section::Additional {
            // `data()` of an OPT record is always `RData::Opt` (or an error).
            let dw::RData::Opt(opt) = r.data()? else {
                continue;
            };
            match opts.iter_mut().find(|o| o.is_none()) {
                Some(slot) => *slot = Some(opt),
                // hickory rejects a second OPT; keep walking so errors still surface.
                None => core_opt(s, &opt),
            }
            continue;
        }
        s.num(Field::Section, r.section() as u64);
        s.num(Field::Rtype, u64::from(r.rtype().0));
        s.num(Field::Class, u64::from(r.class().0));
        s.num(Field::Ttl, u64::from(r.ttl()));
        core_name(s, r.name());
        match r.data()? {
            dw::RData::A(a) => s.num(Field::A, u64::from(u32::from(a))),
            dw::RData::Aaaa(a) => s.bytes(Field::Aaaa, &a.octets()),
            dw::RData::Cname(n) | dw::RData::Ns(n) | dw::RData::Ptr(n) => core_name(s, n),
            dw::RData::Mx(mx) => {
                s.num(Field::Preference, u64::from(mx.preference));
                core_name(s, mx.exchange);
            }
            dw::RData::Srv(srv) => {
                s.num(Field::Priority, u64::from(srv.priority));
                s.num(Field::Weight, u64::from(srv.weight));
                s.num(Field::Port, u64::from(srv.port));
                core_name(s, srv.target);
            }
            dw::RData::Soa(soa) => {
                core_name(s, soa.mname);
                core_name(s, soa.rname);
                s.num(Field::Serial, u64::from(soa.serial));
                s.num(Field::Refresh, u64::from(soa.refresh));
                s.num(Field::Retry, u64::from(soa.retry));
                s.num(Field::Expire, u64::from(soa.expire));
                s.num(Field::Minimum, u64::from(soa.minimum));
            }
            dw::RData::Txt(txt) => {
                for part in txt.strings() {
                    s.bytes(Field::TxtString, part);
                }
            }
            dw::RData::Opt(_) | dw::RData::Unknown(_) => s.bytes(Field::Raw, r.rdata()),
            _ => s.bytes(Field::Raw, r.rdata()),
        }
        s.num(Field::RecordEnd, 0);
    }
    for opt in opts.iter().flatten() {
        core_opt(s, opt);
    }
    Ok(())
}

fn core_opt<S: Sink>(s: &mut S, opt: &dw::Opt<'_>) {
    s.num(Field::UdpSize, udp_size(opt.udp_payload_size()));
    s.num(Field::ExtRcodeHigh, u64::from(opt.extended_rcode_high()));
    s.num(Field::Version, u64::from(opt.version()));
    s.num(Field::DnssecOk, u64::from(opt.dnssec_ok()));
    for o in opt.options() {
        s.num(Field::OptCode, u64::from(o.code));
        s.bytes(Field::OptData, o.data);
    }
    s.num(Field::RecordEnd, 0);
}

// ------------------------------------------------------------------------------------
// hickory-proto

mod hickory {
    use hickory_proto::op::Message;
    use hickory_proto::rr::{Name, RData, Record};
    use hickory_proto::serialize::binary::BinEncodable;

    use super::{Field, Sink, WalkError, flags, udp_size};

    fn name<S: Sink>(s: &mut S, n: &Name) {
        for label in n.iter() {
            s.bytes(Field::Label, label);
        }
        s.num(Field::NameEnd, 0);
    }

    fn record<S: Sink>(s: &mut S, section: u64, r: &Record) -> Result<(), WalkError> {
        s.num(Field::Section, section);
        s.num(Field::Rtype, u64::from(u16::from(r.record_type())));
        s.num(Field::Class, u64::from(u16::from(r.dns_class)));
        s.num(Field::Ttl, u64::from(r.ttl));
        name(s, &r.name);
        match &r.data {
            RData::A(a) => s.num(Field::A, u64::from(u32::from(a.0))),
            RData::AAAA(a) => s.bytes(Field::Aaaa, &a.0.octets()),
            RData::CNAME(n) => name(s, &n.0),
            RData::NS(n) => name(s, &n.0),
            RData::PTR(n) => name(s, &n.0),
            RData::MX(mx) => {
                s.num(Field::Preference, u64::from(mx.preference));
                name(s, &mx.exchange);
            }
            RData::SRV(srv) => {
                s.num(Field::Priority, u64::from(srv.priority));
                s.num(Field::Weight, u64::from(srv.weight));
                s.num(Field::Port, u64::from(srv.port));
                name(s, &srv.target);
            }
            RData::SOA(soa) => {
                name(s, &soa.mname);
                name(s, &soa.rname);
                s.num(Field::Serial, u64::from(soa.serial));
                // hickory keeps these as i32; the wire holds 32 unsigned bits.
                s.num(Field::Refresh, u64::from(soa.refresh as u32));
                s.num(Field::Retry, u64::from(soa.retry as u32));
                s.num(Field::Expire, u64::from(soa.expire as u32));
                s.num(Field::Minimum, u64::from(soa.minimum));
            }
            RData::TXT(txt) => {
                for part in txt.txt_data.iter() {
                    s.bytes(Field::TxtString, part);
                }
            }
            RData::NULL(n) => s.bytes(Field::Raw, &n.anything),
            RData::Unknown { rdata, .. } => s.bytes(Field::Raw, &rdata.anything),
            RData::Update0(_) => s.bytes(Field::Raw, &[]),
            other => {
                let raw = other
                    .to_bytes()
                    .map_err(|e| WalkError::Hickory(e.to_string()))?;
                s.bytes(Field::Raw, &raw);
            }
        }
        s.num(Field::RecordEnd, 0);
        Ok(())
    }

    /// Decodes with `Message::from_vec` and visits everything.
    #[inline(never)]
    pub fn walk<S: Sink>(bytes: &[u8], s: &mut S) -> Result<(), WalkError> {
        let msg = Message::from_vec(bytes).map_err(|e| WalkError::Hickory(e.to_string()))?;
        let m = &msg.metadata;
        s.num(Field::Id, u64::from(m.id));
        let hi = u16::from(m.message_type == hickory_proto::op::MessageType::Response) << 15
            | u16::from(u8::from(m.op_code)) << 11
            | u16::from(m.authoritative) << 10
            | u16::from(m.truncation) << 9
            | u16::from(m.recursion_desired) << 8
            | u16::from(m.recursion_available) << 7
            | u16::from(m.authentic_data) << 5
            | u16::from(m.checking_disabled) << 4
            | u16::from(m.response_code.low());
        s.num(Field::Flags, flags(hi));
        for q in &msg.queries {
            name(s, q.name());
            s.num(Field::Qtype, u64::from(u16::from(q.query_type())));
            s.num(Field::Qclass, u64::from(u16::from(q.query_class())));
        }
        for r in &msg.answers {
            record(s, 0, r)?;
        }
        for r in &msg.authorities {
            record(s, 1, r)?;
        }
        for r in &msg.additionals {
            record(s, 2, r)?;
        }
        if let Some(edns) = &msg.edns {
            s.num(Field::UdpSize, udp_size(edns.max_payload()));
            s.num(Field::ExtRcodeHigh, u64::from(edns.rcode_high()));
            s.num(Field::Version, u64::from(edns.version()));
            s.num(Field::DnssecOk, u64::from(edns.flags().dnssec_ok));
            for (code, option) in edns.options().options.iter() {
                s.num(Field::OptCode, u64::from(u16::from(*code)));
                let data =
                    Vec::<u8>::try_from(option).map_err(|e| WalkError::Hickory(e.to_string()))?;
                s.bytes(Field::OptData, &data);
            }
            s.num(Field::RecordEnd, 0);
        }
        Ok(())
    }
}

/// Decodes `bytes` with hickory-proto (`Message::from_vec`) and visits everything.
pub fn walk_hickory<S: Sink>(bytes: &[u8], s: &mut S) -> Result<(), WalkError> {
    hickory::walk(bytes, s)
}

// ------------------------------------------------------------------------------------
// domain

mod nlnet {
    use domain::base::iana::Rtype;
    use domain::base::message::RecordSection;
    use domain::base::name::ParsedName;
    use domain::base::opt::{Opt, UnknownOptData};
    use domain::base::rdata::{ParseRecordData, UnknownRecordData};
    use domain::base::{Message, ParsedRecord, Record};
    use domain::rdata::{A, Aaaa, Cname, Mx, Ns, Ptr, Soa, Srv, Txt};

    use super::{Field, Sink, WalkError, flags, udp_size};

    type Octs<'a> = &'a [u8];
    type PName<'a> = ParsedName<&'a [u8]>;

    fn err<E: std::fmt::Display>(e: E) -> WalkError {
        WalkError::Domain(e.to_string())
    }

    #[inline(always)]
    fn name<S: Sink, O: AsRef<[u8]>>(s: &mut S, n: &ParsedName<O>) {
        for label in n.iter() {
            if !label.is_root() {
                s.bytes(Field::Label, label.as_slice());
            }
        }
        s.num(Field::NameEnd, 0);
    }

    #[inline(always)]
    fn typed<'a, D>(r: &ParsedRecord<'a, Octs<'a>>) -> Result<Record<PName<'a>, D>, WalkError>
    where
        D: ParseRecordData<'a, Octs<'a>>,
    {
        r.to_record::<D>()
            .map_err(err)?
            .ok_or_else(|| WalkError::Domain("record type mismatch".into()))
    }

    fn opt<S: Sink>(s: &mut S, r: &ParsedRecord<'_, Octs<'_>>) -> Result<(), WalkError> {
        let rec = typed::<Opt<&[u8]>>(r)?;
        let ttl = r.ttl().as_secs();
        s.num(Field::UdpSize, udp_size(r.class().to_int()));
        s.num(Field::ExtRcodeHigh, u64::from(ttl >> 24));
        s.num(Field::Version, u64::from((ttl >> 16) & 0xFF));
        s.num(Field::DnssecOk, u64::from(ttl & 0x8000 != 0));
        for o in rec.data().iter::<UnknownOptData<&[u8]>>() {
            let o = o.map_err(err)?;
            s.num(Field::OptCode, u64::from(o.code().to_int()));
            s.bytes(Field::OptData, o.as_slice());
        }
        s.num(Field::RecordEnd, 0);
        Ok(())
    }

    fn section<'a, S: Sink>(
        s: &mut S,
        index: u64,
        sec: &mut RecordSection<'a, Octs<'a>>,
        opts: &mut Vec<ParsedRecord<'a, Octs<'a>>>,
    ) -> Result<(), WalkError> {
        for r in sec {
            let r = r.map_err(err)?;
            let rtype = r.rtype();
            if rtype == Rtype::OPT && index == 2 {
                opts.push(r);
                continue;
            }
            s.num(Field::Section, index);
            s.num(Field::Rtype, u64::from(rtype.to_int()));
            s.num(Field::Class, u64::from(r.class().to_int()));
            s.num(Field::Ttl, u64::from(r.ttl().as_secs()));
            name(s, &r.owner());
            match rtype {
                Rtype::A => {
                    let a = typed::<A>(&r)?;
                    s.num(Field::A, u64::from(u32::from(a.data().addr())));
                }
                Rtype::AAAA => s.bytes(Field::Aaaa, &typed::<Aaaa>(&r)?.data().addr().octets()),
                Rtype::CNAME => name(s, typed::<Cname<PName<'a>>>(&r)?.data().cname()),
                Rtype::NS => name(s, typed::<Ns<PName<'a>>>(&r)?.data().nsdname()),
                Rtype::PTR => name(s, typed::<Ptr<PName<'a>>>(&r)?.data().ptrdname()),
                Rtype::MX => {
                    let rec = typed::<Mx<PName<'a>>>(&r)?;
                    s.num(Field::Preference, u64::from(rec.data().preference()));
                    name(s, rec.data().exchange());
                }
                Rtype::SRV => {
                    let rec = typed::<Srv<PName<'a>>>(&r)?;
                    let d = rec.data();
                    s.num(Field::Priority, u64::from(d.priority()));
                    s.num(Field::Weight, u64::from(d.weight()));
                    s.num(Field::Port, u64::from(d.port()));
                    name(s, d.target());
                }
                Rtype::SOA => {
                    let rec = typed::<Soa<PName<'a>>>(&r)?;
                    let d = rec.data();
                    name(s, d.mname());
                    name(s, d.rname());
                    s.num(Field::Serial, u64::from(d.serial().into_int()));
                    s.num(Field::Refresh, u64::from(d.refresh().as_secs()));
                    s.num(Field::Retry, u64::from(d.retry().as_secs()));
                    s.num(Field::Expire, u64::from(d.expire().as_secs()));
                    s.num(Field::Minimum, u64::from(d.minimum().as_secs()));
                }
                Rtype::TXT => {
                    let rec = typed::<Txt<&[u8]>>(&r)?;
                    for part in rec.data().iter() {
                        s.bytes(Field::TxtString, part);
                    }
                }
                _ => {
                    let rec = typed::<UnknownRecordData<&[u8]>>(&r)?;
                    s.bytes(Field::Raw, rec.data().data());
                }
            }
            s.num(Field::RecordEnd, 0);
        }
        Ok(())
    }

    /// Views with `Message::from_octets` (zero-copy) and visits everything.
    #[inline(never)]
    pub fn walk<S: Sink>(bytes: &[u8], s: &mut S) -> Result<(), WalkError> {
        let msg = Message::from_octets(bytes).map_err(err)?;
        let h = msg.header();
        s.num(Field::Id, u64::from(h.id()));
        let raw = msg.as_slice();
        let fl = u16::from_be_bytes([raw[2], raw[3]]);
        s.num(Field::Flags, flags(fl));
        let mut questions = msg.question();
        for q in &mut questions {
            let q = q.map_err(err)?;
            name(s, q.qname());
            s.num(Field::Qtype, u64::from(q.qtype().to_int()));
            s.num(Field::Qclass, u64::from(q.qclass().to_int()));
        }
        // OPT is rare and at most one in practice: a tiny Vec that stays empty (no
        // allocation) when there is none.
        let mut opts = Vec::new();
        let mut sec = questions.answer().map_err(err)?;
        for index in 0..3 {
            section(s, index, &mut sec, &mut opts)?;
            if index < 2 {
                sec = sec
                    .next_section()
                    .map_err(err)?
                    .ok_or_else(|| WalkError::Domain("missing section".into()))?;
            }
        }
        for r in &opts {
            opt(s, r)?;
        }
        Ok(())
    }
}

/// Views `bytes` with domain (`Message::from_octets`, zero-copy) and visits everything.
pub fn walk_domain<S: Sink>(bytes: &[u8], s: &mut S) -> Result<(), WalkError> {
    nlnet::walk(bytes, s)
}

// ------------------------------------------------------------------------------------
// floor: a plain, unvalidated byte walker

mod floor {
    use super::{Field, Sink, WalkError, flags, udp_size};

    /// A reference point, not a parser anyone should use: it reads the message the
    /// shortest way that still does the benchmark's whole visit, and checks only what
    /// it must to stay in bounds (every read is a checked slice access, and pointer
    /// chains are cut after 127 hops so a loop cannot hang it). It does not check that
    /// pointers point backwards, that labels are at most 63 octets or of a known type,
    /// that names are at most 255 octets, that rdata ends where its length says, that
    /// counts fit the message, or anything about trailing bytes. Issue 2 quotes such a
    /// walker as the floor ("about 0.4–0.6× domain's time"); measuring it side by side
    /// says what any parser doing this job can reach on this machine.
    fn bad() -> WalkError {
        WalkError::Floor
    }

    #[inline(always)]
    fn u16_at(b: &[u8], i: usize) -> Result<u16, WalkError> {
        match b.get(i..).and_then(|t| t.first_chunk::<2>()) {
            Some(w) => Ok(u16::from_be_bytes(*w)),
            None => Err(bad()),
        }
    }

    #[inline(always)]
    fn u32_at(b: &[u8], i: usize) -> Result<u32, WalkError> {
        match b.get(i..).and_then(|t| t.first_chunk::<4>()) {
            Some(w) => Ok(u32::from_be_bytes(*w)),
            None => Err(bad()),
        }
    }

    /// The offset just past the name at `pos` (labels, then the root or a pointer).
    #[inline(always)]
    fn skip(b: &[u8], mut pos: usize) -> Result<usize, WalkError> {
        loop {
            let len = usize::from(*b.get(pos).ok_or_else(bad)?);
            if len == 0 {
                return Ok(pos + 1);
            }
            if len >= 0xC0 {
                return Ok(pos + 2);
            }
            pos += 1 + len;
        }
    }

    /// Visits the labels of the name at `pos`, following pointers.
    #[inline(always)]
    fn name<S: Sink>(s: &mut S, b: &[u8], mut pos: usize) -> Result<(), WalkError> {
        let mut hops = 0u8;
        loop {
            let len = usize::from(*b.get(pos).ok_or_else(bad)?);
            if len == 0 {
                s.num(Field::NameEnd, 0);
                return Ok(());
            }
            if len >= 0xC0 {
                hops += 1;
                if hops > 127 {
                    return Err(bad());
                }
                pos = (len & 0x3F) << 8 | usize::from(*b.get(pos + 1).ok_or_else(bad)?);
                continue;
            }
            s.bytes(Field::Label, b.get(pos + 1..pos + 1 + len).ok_or_else(bad)?);
            pos += 1 + len;
        }
    }

    /// Visits an OPT record whose fixed fields (type, class, TTL, rdlength) start at
    /// `fixed`.
    fn opt<S: Sink>(s: &mut S, b: &[u8], fixed: usize) -> Result<(), WalkError> {
        let ttl = u32_at(b, fixed + 4)?;
        s.num(Field::UdpSize, udp_size(u16_at(b, fixed + 2)?));
        s.num(Field::ExtRcodeHigh, u64::from(ttl >> 24));
        s.num(Field::Version, u64::from((ttl >> 16) & 0xFF));
        s.num(Field::DnssecOk, u64::from(ttl & 0x8000 != 0));
        let end = fixed + 10 + usize::from(u16_at(b, fixed + 8)?);
        let mut pos = fixed + 10;
        while pos < end {
            let len = usize::from(u16_at(b, pos + 2)?);
            s.num(Field::OptCode, u64::from(u16_at(b, pos)?));
            s.bytes(
                Field::OptData,
                b.get(pos + 4..pos + 4 + len).ok_or_else(bad)?,
            );
            pos += 4 + len;
        }
        s.num(Field::RecordEnd, 0);
        Ok(())
    }

    /// Walks and visits everything, in the same order as the other walkers.
    #[inline(never)]
    pub fn walk<S: Sink>(b: &[u8], s: &mut S) -> Result<(), WalkError> {
        s.num(Field::Id, u64::from(u16_at(b, 0)?));
        s.num(Field::Flags, flags(u16_at(b, 2)?));
        let counts = [u16_at(b, 6)?, u16_at(b, 8)?, u16_at(b, 10)?];
        let mut pos = 12;
        for _ in 0..u16_at(b, 4)? {
            let start = pos;
            pos = skip(b, pos)?;
            let (qtype, qclass) = (u16_at(b, pos)?, u16_at(b, pos + 2)?);
            name(s, b, start)?;
            s.num(Field::Qtype, u64::from(qtype));
            s.num(Field::Qclass, u64::from(qclass));
            pos += 4;
        }
        // The fixed fields' offsets of up to two OPT records, visited last.
        let mut opts = [0usize; 2];
        let mut deferred = 0;
        for (section, count) in counts.into_iter().enumerate() {
            for _ in 0..count {
                let owner = pos;
                let fixed = skip(b, pos)?;
                let rtype = u16_at(b, fixed)?;
                let data = fixed + 10;
                let end = data + usize::from(u16_at(b, fixed + 8)?);
                pos = end;
                if rtype == 41 && section == 2 {
                    if deferred < opts.len() {
                        opts[deferred] = fixed;
                        deferred += 1;
                    } else {
                        opt(s, b, fixed)?;
                    }
                    continue;
                }
                s.num(Field::Section, section as u64);
                s.num(Field::Rtype, u64::from(rtype));
                s.num(Field::Class, u64::from(u16_at(b, fixed + 2)?));
                s.num(Field::Ttl, u64::from(u32_at(b, fixed + 4)?));
                name(s, b, owner)?;
                match rtype {
                    1 => s.num(Field::A, u64::from(u32_at(b, data)?)),
                    28 => s.bytes(Field::Aaaa, b.get(data..data + 16).ok_or_else(bad)?),
                    2 | 5 | 12 => name(s, b, data)?,
                    15 => {
                        s.num(Field::Preference, u64::from(u16_at(b, data)?));
                        name(s, b, data + 2)?;
                    }
                    33 => {
                        s.num(Field::Priority, u64::from(u16_at(b, data)?));
                        s.num(Field::Weight, u64::from(u16_at(b, data + 2)?));
                        s.num(Field::Port, u64::from(u16_at(b, data + 4)?));
                        name(s, b, data + 6)?;
                    }
                    6 => {
                        name(s, b, data)?;
                        let rname = skip(b, data)?;
                        name(s, b, rname)?;
                        let n = skip(b, rname)?;
                        s.num(Field::Serial, u64::from(u32_at(b, n)?));
                        s.num(Field::Refresh, u64::from(u32_at(b, n + 4)?));
                        s.num(Field::Retry, u64::from(u32_at(b, n + 8)?));
                        s.num(Field::Expire, u64::from(u32_at(b, n + 12)?));
                        s.num(Field::Minimum, u64::from(u32_at(b, n + 16)?));
                    }
                    16 => {
                        let mut p = data;
                        while p < end {
                            let len = usize::from(*b.get(p).ok_or_else(bad)?);
                            s.bytes(Field::TxtString, b.get(p + 1..p + 1 + len).ok_or_else(bad)?);
                            p += 1 + len;
                        }
                    }
                    _ => s.bytes(Field::Raw, b.get(data..end).ok_or_else(bad)?),
                }
                s.num(Field::RecordEnd, 0);
            }
        }
        for &fixed in &opts[..deferred] {
            opt(s, b, fixed)?;
        }
        Ok(())
    }
}

/// Walks `bytes` with the unvalidated floor walker (a reference point, see the
/// benchmark docs) and visits everything.
pub fn walk_floor<S: Sink>(bytes: &[u8], s: &mut S) -> Result<(), WalkError> {
    floor::walk(bytes, s)
}

/// The checksum of a floor walk.
pub fn checksum_floor(bytes: &[u8]) -> Result<u64, WalkError> {
    let mut c = Checksum::default();
    walk_floor(bytes, &mut c)?;
    Ok(c.0)
}

/// The checksum of a dnswarden-core walk.
pub fn checksum_core(bytes: &[u8]) -> Result<u64, WalkError> {
    let mut c = Checksum::default();
    walk_core(bytes, &mut c)?;
    Ok(c.0)
}

/// The checksum of a hickory-proto walk.
pub fn checksum_hickory(bytes: &[u8]) -> Result<u64, WalkError> {
    let mut c = Checksum::default();
    walk_hickory(bytes, &mut c)?;
    Ok(c.0)
}

/// The checksum of a domain walk.
pub fn checksum_domain(bytes: &[u8]) -> Result<u64, WalkError> {
    let mut c = Checksum::default();
    walk_domain(bytes, &mut c)?;
    Ok(c.0)
}

// ------------------------------------------------------------------------------------
// corpus

/// One named message of the benchmark corpus.
#[derive(Clone, Debug)]
pub struct Sample {
    /// A short name for reports (`syn/...` for synthetic, `fix/...` for fixtures).
    pub name: String,
    /// The message, without a TCP length prefix.
    pub bytes: Vec<u8>,
}

/// The synthetic messages, encoded by hickory-proto with name compression on.
pub fn synthetic() -> Vec<Sample> {
    synth::all()
}

mod synth {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use hickory_proto::op::{Edns, Message, OpCode, Query, ResponseCode};
    use hickory_proto::rr::rdata::{A, AAAA, CNAME, SOA, SRV};
    use hickory_proto::rr::{Name, RData, Record, RecordType};

    use super::Sample;

    fn n(s: &str) -> Name {
        match Name::from_ascii(s) {
            Ok(n) => n,
            Err(e) => panic!("bad synthetic name {s}: {e}"),
        }
    }

    fn response(id: u16, qname: &str, qtype: RecordType) -> Message {
        let mut m = Message::response(id, OpCode::Query);
        m.metadata.authoritative = true;
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(n(qname), qtype));
        m
    }

    fn a(name: &str, ttl: u32, ip: Ipv4Addr) -> Record {
        Record::from_rdata(n(name), ttl, RData::A(A(ip)))
    }

    fn encode(name: &str, m: &Message) -> Sample {
        match m.to_vec() {
            Ok(bytes) => Sample {
                name: format!("syn/{name}"),
                bytes,
            },
            Err(e) => panic!("encoding {name}: {e}"),
        }
    }

    pub(super) fn all() -> Vec<Sample> {
        let mut out = Vec::new();

        let k8s = "kubernetes.default.svc.cluster.local.";
        let mut m = response(0x1001, k8s, RecordType::A);
        m.add_answer(a(k8s, 30, Ipv4Addr::new(10, 96, 0, 1)));
        out.push(encode("a-kubernetes", &m));

        let headless = "my-headless.default.svc.cluster.local.";
        let mut m = response(0x1002, headless, RecordType::A);
        for i in 0..10u8 {
            m.add_answer(a(headless, 5, Ipv4Addr::new(10, 244, 1, 10 + i)));
        }
        out.push(encode("a-headless-10", &m));

        let srv = "_http._tcp.web.default.svc.cluster.local.";
        let mut m = response(0x1003, srv, RecordType::SRV);
        for i in 0..5u8 {
            let target = format!("web-{i}.web.default.svc.cluster.local.");
            m.add_answer(Record::from_rdata(
                n(srv),
                5,
                RData::SRV(SRV::new(0, 20, 8080, n(&target))),
            ));
            m.add_additional(a(&target, 5, Ipv4Addr::new(10, 244, 2, 20 + i)));
        }
        out.push(encode("srv-5-additional-5", &m));

        let mut m = response(0x1004, "api.example.svc.cluster.local.", RecordType::A);
        let chain = [
            "api.example.svc.cluster.local.",
            "api.example.com.",
            "api.eu-west-1.elb.example.net.",
            "edge-7.lb.example.net.",
        ];
        for w in chain.windows(2) {
            m.add_answer(Record::from_rdata(
                n(w[0]),
                60,
                RData::CNAME(CNAME(n(w[1]))),
            ));
        }
        m.add_answer(a("edge-7.lb.example.net.", 60, Ipv4Addr::new(192, 0, 2, 7)));
        m.add_answer(Record::from_rdata(
            n("edge-7.lb.example.net."),
            60,
            RData::AAAA(AAAA(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7))),
        ));
        out.push(encode("cname-chain-3", &m));

        let missing = "nope.default.svc.cluster.local.";
        let mut m = response(0x1005, missing, RecordType::A);
        m.metadata.response_code = ResponseCode::NXDomain;
        m.add_authority(Record::from_rdata(
            n("cluster.local."),
            5,
            RData::SOA(SOA::new(
                n("ns.dns.cluster.local."),
                n("hostmaster.cluster.local."),
                1_700_000_000,
                7200,
                1800,
                86400,
                5,
            )),
        ));
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        edns.set_dnssec_ok(true);
        m.set_edns(edns);
        out.push(encode("nxdomain-soa-opt", &m));

        let big = "big-headless.default.svc.cluster.local.";
        let mut m = response(0x1006, big, RecordType::A);
        for i in 0..72u8 {
            m.add_answer(a(big, 5, Ipv4Addr::new(10, 244, 3 + i / 64, i)));
        }
        out.push(encode("a-headless-72", &m));

        out
    }
}

/// The directory of the captured real-server fixtures.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/tests/fixtures")
}

/// Every `*.bin` fixture, sorted by file name (none when the directory is missing).
/// Fixtures are whole DNS messages without a TCP length prefix.
pub fn fixtures() -> Vec<Sample> {
    let Ok(dir) = std::fs::read_dir(fixtures_dir()) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = dir
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .filter_map(|p| {
            let bytes = std::fs::read(&p).ok()?;
            let stem = p.file_stem()?.to_string_lossy().into_owned();
            Some(Sample {
                name: format!("fix/{stem}"),
                bytes,
            })
        })
        .collect()
}

/// The benchmark corpus: synthetic messages, then the fixtures.
pub fn corpus() -> Vec<Sample> {
    let mut all = synthetic();
    all.extend(fixtures());
    all
}

/// The benchmarked messages: the corpus's responses (captured queries left out) that
/// all three parsers accept with equal checksums, with that checksum, restricted to
/// names containing one of `filters` when there are any.
pub fn agreed_responses(filters: &[String]) -> Vec<(String, Vec<u8>, u64)> {
    corpus()
        .into_iter()
        .filter(|s| !s.name.ends_with(".query"))
        .filter(|s| filters.is_empty() || filters.iter().any(|f| s.name.contains(f.as_str())))
        .filter_map(|s| {
            let sum = Agreement::of(&s.bytes).agreed()?;
            Some((s.name, s.bytes, sum))
        })
        .collect()
}

/// The checksums of all three walks of one message, or the first error.
#[derive(Debug)]
pub struct Agreement {
    /// dnswarden-core's walk.
    pub core: Result<u64, WalkError>,
    /// hickory-proto's walk.
    pub hickory: Result<u64, WalkError>,
    /// domain's walk.
    pub domain: Result<u64, WalkError>,
}

impl Agreement {
    /// Walks `bytes` with all three implementations.
    pub fn of(bytes: &[u8]) -> Self {
        Agreement {
            core: checksum_core(bytes),
            hickory: checksum_hickory(bytes),
            domain: checksum_domain(bytes),
        }
    }

    /// The common checksum, when all three walks succeeded and agree.
    pub fn agreed(&self) -> Option<u64> {
        match (&self.core, &self.hickory, &self.domain) {
            (Ok(a), Ok(b), Ok(c)) if a == b && b == c => Some(*a),
            _ => None,
        }
    }

    /// A field-level explanation of a disagreement (empty when they agree).
    pub fn explain(bytes: &[u8]) -> String {
        let mut core = Trace::default();
        let mut hick = Trace::default();
        let mut dom = Trace::default();
        let rc = walk_core(bytes, &mut core).map_err(WalkError::Core);
        let rh = walk_hickory(bytes, &mut hick);
        let rd = walk_domain(bytes, &mut dom);
        let mut out = format!("core: {rc:?}, hickory: {rh:?}, domain: {rd:?}");
        if let Some(d) = core.first_difference(&hick) {
            out += &format!("\ncore vs hickory: {d}");
        }
        if let Some(d) = core.first_difference(&dom) {
            out += &format!("\ncore vs domain: {d}");
        }
        out
    }
}

/// Lower-case hex, for reporting inputs.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The benchmark's precondition, as a test CI runs: every synthetic message is parsed
    /// by all three implementations with equal checksums, and so is every fixture that
    /// hickory and domain both accept.
    #[test]
    fn checksums_agree_on_the_corpus() {
        let syn = synthetic();
        assert_eq!(syn.len(), 6);
        for s in &syn {
            let a = Agreement::of(&s.bytes);
            assert!(
                a.agreed().is_some(),
                "{}: {a:?}\n{}",
                s.name,
                Agreement::explain(&s.bytes)
            );
        }
        let Some(big) = syn.iter().find(|s| s.name.ends_with("72")) else {
            panic!("no 72-record sample");
        };
        assert!(
            (1150..=1300).contains(&big.bytes.len()),
            "{}",
            big.bytes.len()
        );
        // The walk really visits every record: 72 owners and 72 addresses.
        let mut trace = Trace::default();
        assert!(walk_core(&big.bytes, &mut trace).is_ok());
        let count = |f: Field| trace.0.iter().filter(|(g, _)| *g == f).count();
        assert_eq!((count(Field::A), count(Field::Rtype)), (72, 72));
        for f in fixtures() {
            let a = Agreement::of(&f.bytes);
            if a.hickory.is_ok() && a.domain.is_ok() {
                assert!(
                    a.agreed().is_some(),
                    "{}: {a:?}\n{}",
                    f.name,
                    Agreement::explain(&f.bytes)
                );
            }
        }
    }

    /// The floor walker is only a reference point if it does the same job: on every
    /// corpus message the three parsers agree on, it visits the very same fields.
    #[test]
    fn the_floor_walker_visits_what_the_parsers_visit() {
        let mut compared = 0;
        for sample in corpus() {
            if Agreement::of(&sample.bytes).agreed().is_none() {
                continue;
            }
            let (mut core, mut floor) = (Trace::default(), Trace::default());
            assert!(walk_core(&sample.bytes, &mut core).is_ok());
            let r = walk_floor(&sample.bytes, &mut floor);
            assert!(r.is_ok(), "{}: {r:?}", sample.name);
            assert_eq!(
                core.first_difference(&floor),
                None,
                "{}: {}",
                sample.name,
                hex(&sample.bytes)
            );
            compared += 1;
            // Unvalidated is not unsafe: every prefix of the message is out of bounds
            // somewhere, and the walker says so instead of panicking.
            for cut in 0..sample.bytes.len() {
                let mut sink = Checksum::default();
                let cut_short = walk_floor(&sample.bytes[..cut], &mut sink);
                assert!(
                    cut_short.is_err() || cut >= 12,
                    "{} cut at {cut}",
                    sample.name
                );
            }
        }
        assert!(compared >= 80, "only {compared} comparable messages");
    }

    #[test]
    fn synthetic_messages_are_compressed() {
        for s in synthetic() {
            // Every answer or authority owner repeats (part of) the question name, so the
            // encoder must emit a pointer into the question (offset 12..) somewhere.
            let has_pointer = s.bytes.windows(2).skip(12).any(|w| {
                w[0] & 0xC0 == 0xC0
                    && (12..64).contains(&(usize::from(w[0] & 0x3F) << 8 | usize::from(w[1])))
            });
            assert!(has_pointer, "{} has no compression pointer", s.name);
        }
    }
}
