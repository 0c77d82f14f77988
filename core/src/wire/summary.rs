//! Matching a response to its pending query and summarising it, in one pass.
//!
//! A passive observer (the proxy-wasm filter) keeps, per query in flight, its id, opcode
//! and question octets ([`Asked`]). When a response arrives, [`check_and_summarize`]
//! checks that it answers that query (like [`check_response`]) and reduces it to what
//! the scorer is fed (extended RCODE, TC, the answer-set summary of
//! [`Observation::from_exchange`](crate::score::Observation::from_exchange)) with a
//! single iterator over the message, instead of re-reading the question and the answer
//! section once per question asked of it.
//!
//! The question is compared by raw octets: a response's question comes first, so no
//! pointer can point back into it from before, and when its octets equal the query's
//! (ASCII case aside) the two questions are equal. Anything else (a compressed
//! question, a different one, a different count) takes the general path of
//! [`check_response`], which reports every difference.

use super::{
    Class, Error, HEADER_LEN, MAX_NAME_LEN, Message, Mismatch, Name, Opcode, RData, Rcode, Record,
    Records, Rtype, Section, check_response,
};
use crate::score::{
    AnswerSummary, Fallback, Outcome, member_hash, member_hash_name, member_hash_srv,
};

/// The most octets a question takes on the wire, uncompressed: a 255-octet name, QTYPE
/// and QCLASS.
pub const MAX_QUESTION_LEN: usize = MAX_NAME_LEN + 4;

/// What a response must echo from its query: id, opcode and the question octets (the
/// name uncompressed, then QTYPE and QCLASS). Validated when built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Asked<'q> {
    id: u16,
    opcode: Opcode,
    question: &'q [u8],
    /// Octets of the name, root label included.
    name_len: usize,
}

impl<'q> Asked<'q> {
    /// A pending query from its parts. `question` must be one uncompressed name (labels of
    /// 1..=63 octets, at most 255 octets in all) followed by exactly QTYPE and QCLASS, as
    /// [`question_wire`] writes it; `None` otherwise.
    pub fn new(id: u16, opcode: Opcode, question: &'q [u8]) -> Option<Asked<'q>> {
        let name_len = uncompressed_name_len(question)?;
        if question.len() != name_len + 4 {
            return None;
        }
        Some(Asked {
            id,
            opcode,
            question,
            name_len,
        })
    }

    /// The query id.
    pub fn id(&self) -> u16 {
        self.id
    }

    /// The OPCODE.
    pub fn opcode(&self) -> Opcode {
        self.opcode
    }

    /// The question octets (name, QTYPE, QCLASS).
    pub fn question(&self) -> &'q [u8] {
        self.question
    }

    /// QTYPE.
    pub fn qtype(&self) -> Rtype {
        Rtype(self.tail_u16(0))
    }

    /// QCLASS.
    pub fn qclass(&self) -> Class {
        Class(self.tail_u16(2))
    }

    fn tail_u16(&self, at: usize) -> u16 {
        match self
            .question
            .get(self.name_len + at..self.name_len + at + 2)
        {
            Some(&[a, b]) => u16::from_be_bytes([a, b]),
            _ => 0,
        }
    }

    fn name(&self) -> &'q [u8] {
        self.question.get(..self.name_len).unwrap_or_default()
    }

    /// [`Name::fingerprint`] of the question name, from its octets.
    pub fn name_fingerprint(&self) -> u64 {
        // Length octets are below 0x40 and the root is 0: lower-casing every octet of the
        // uncompressed wire form lower-cases exactly the label octets, which is what
        // `Name::fingerprint` hashes (length octets, lower-cased labels, the root octet).
        let mut h = 0xcbf2_9ce4_8422_2325u64;
        for &b in self.name() {
            h = (h ^ u64::from(b.to_ascii_lowercase())).wrapping_mul(0x0000_0100_0000_01b3);
        }
        h
    }
}

/// The length of the uncompressed name at the start of `bytes`, root label included;
/// `None` for a pointer, a reserved label type, a name over 255 octets or no root.
fn uncompressed_name_len(bytes: &[u8]) -> Option<usize> {
    let mut pos = 0usize;
    loop {
        let b = usize::from(*bytes.get(pos)?);
        if b == 0 {
            return Some(pos + 1);
        }
        if b > super::MAX_LABEL_LEN {
            return None;
        }
        pos += 1 + b;
        if pos >= MAX_NAME_LEN {
            return None;
        }
    }
}

/// Writes the first question of `query` to `out` as [`Asked::new`] takes it (the name
/// uncompressed, QTYPE, QCLASS) and returns its length. In place when the question is
/// not compressed (always, in practice); otherwise label by label. `None` when the
/// query has no readable first question or `out` is shorter than needed
/// ([`MAX_QUESTION_LEN`] always suffices).
pub fn question_wire(query: &Message<'_>, out: &mut [u8]) -> Option<usize> {
    // In place: an uncompressed name followed by QTYPE and QCLASS is exactly what reading
    // the question would accept (same label and length checks), without the general walk.
    let rest = query.as_bytes().get(HEADER_LEN..).unwrap_or_default();
    if query.header().qdcount() > 0
        && let Some(n) = uncompressed_name_len(rest)
        && let Some(raw) = rest.get(..n + 4)
    {
        out.get_mut(..n + 4)?.copy_from_slice(raw);
        return Some(n + 4);
    }
    let q = query.first_question().ok().flatten()?;
    let mut pos = 0usize;
    for label in q.name.labels() {
        let len = u8::try_from(label.len()).ok()?;
        *out.get_mut(pos)? = len;
        out.get_mut(pos + 1..pos + 1 + label.len())?
            .copy_from_slice(label);
        pos += 1 + label.len();
    }
    let [t0, t1] = q.qtype.0.to_be_bytes();
    let [c0, c1] = q.qclass.0.to_be_bytes();
    out.get_mut(pos..pos + 5)?
        .copy_from_slice(&[0, t0, t1, c0, c1]);
    Some(pos + 5)
}

/// A response that answers its query, summarised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    /// The full RCODE (extended by the first OPT record of the additional section).
    pub rcode: Rcode,
    /// TC was set.
    pub truncated: bool,
    /// The answer set, as [`Observation::from_exchange`](crate::score::Observation::from_exchange)
    /// summarises it (without members).
    pub answers: AnswerSummary<'static>,
    /// [`Name::fingerprint`] of the question name.
    pub qname: u64,
}

impl Summary {
    /// The scorer's outcome: [`Outcome::Truncated`] (with [`Fallback::NotAttempted`]: a
    /// passive observer cannot tell) when TC is set, else [`Outcome::Response`].
    pub fn outcome(&self) -> Outcome {
        if self.truncated {
            Outcome::Truncated(Fallback::NotAttempted)
        } else {
            Outcome::Response(self.rcode)
        }
    }
}

/// Why a response could not be summarised.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unanswered {
    /// The octets are not a DNS message (header or counts), see [`Message::parse`].
    Unparseable(Error),
    /// It does not answer the query: every difference, as [`check_response`] gives them.
    Mismatch(Mismatch),
    /// It answers the query, but a record before the first OPT of the additional section
    /// (or that OPT, or the data of an answer record summarised) cannot be read.
    Malformed(Error),
}

impl Unanswered {
    /// The scorer's outcome.
    pub fn outcome(&self) -> Outcome {
        match *self {
            Unanswered::Mismatch(m) => Outcome::Mismatch(m),
            Unanswered::Unparseable(_) | Unanswered::Malformed(_) => Outcome::Malformed,
        }
    }
}

/// Whether `a` and `b`, two names of `msg`, are equal: at once when both start at the
/// same offset once a leading pointer is followed (the owner `c0 0c` of an answer and the
/// question name, a CNAME target and the owner pointing at it), else label by label.
#[inline]
fn same_name(msg: &[u8], a: &Name<'_>, b: &Name<'_>) -> bool {
    let canonical = |n: &Name<'_>| {
        let at = usize::from(n.parts().0);
        match msg.get(at..at + 2) {
            Some(&[hi, lo]) if hi & 0xC0 == 0xC0 => usize::from(hi & 0x3F) << 8 | usize::from(lo),
            _ => at,
        }
    };
    canonical(a) == canonical(b) || a.eq_name(b)
}

/// [`Record::data`], out of line: one copy of its inlined body serves every use here.
#[inline(never)]
fn data_of<'a>(record: &Record<'a>) -> Result<RData<'a>, Error> {
    record.data()
}

/// The member hash of an answer record from its data.
#[inline]
fn member(data: &RData<'_>, rdata: &[u8], qtype: Rtype) -> u64 {
    match data {
        RData::Srv(s) => member_hash_srv(s.priority, s.weight, s.port, s.target.fingerprint()),
        RData::Cname(n) | RData::Ns(n) | RData::Ptr(n) => member_hash_name(qtype, n.fingerprint()),
        _ => member_hash(qtype, rdata),
    }
}

/// Checks that `response` answers `asked` (same id, QR set, same opcode, exactly one
/// question equal to the asked one: RFC 5452 §9) and summarises it, reading the message
/// once: the question, then every record up to the first OPT of the additional section.
///
/// Equivalent to [`Message::parse`], then [`check_response`] against the query, then
/// [`Observation::from_exchange`](crate::score::Observation::from_exchange) (outcome and
/// answer summary without members): a parse error is [`Unanswered::Unparseable`], any
/// difference [`Unanswered::Mismatch`], and what `from_exchange` calls malformed
/// [`Unanswered::Malformed`]. Never panics, never allocates.
pub fn check_and_summarize(response: &[u8], asked: &Asked<'_>) -> Result<Summary, Unanswered> {
    let msg = Message::parse(response).map_err(Unanswered::Unparseable)?;
    let h = msg.header();
    let fast = h.id() == asked.id
        && h.qr()
        && h.opcode() == asked.opcode
        && h.qdcount() == 1
        && question_matches(response, asked);
    if !fast {
        general_check(&msg, asked).map_err(Unanswered::Mismatch)?;
    }
    let qtype = asked.qtype();
    let mut questions = msg.questions();
    let question = match questions.next() {
        Some(Ok(q)) => q,
        // The checks above read this question: unreachable, but not a panic.
        Some(Err(e)) => return Err(Unanswered::Malformed(e)),
        None => return Err(Unanswered::Mismatch(Mismatch::QUESTION_COUNT)),
    };
    let mut tally = walk(
        questions.into_records(),
        response,
        qtype,
        question.name,
        true,
    )?;
    if tally.repass {
        // A record of the question type came before the chain moved on (out of order):
        // the members are those of the final name, wherever they are.
        tally = Tally {
            chain: tally.chain,
            ..walk(msg.answers(), response, qtype, tally.final_name, false)?
        };
    }
    if let Some(e) = tally.bad_member {
        return Err(Unanswered::Malformed(e));
    }
    let qname = asked.name_fingerprint();
    Ok(Summary {
        rcode: Rcode(tally.high << 4 | h.rcode().0),
        truncated: h.tc(),
        answers: AnswerSummary {
            count: tally.count,
            set_fingerprint: tally.fingerprint,
            first: tally.first,
            cname_chain_len: tally.chain,
            final_name: if tally.chain == 0 {
                qname
            } else {
                tally.final_name.fingerprint()
            },
            members: &[],
        },
        qname,
    })
}

/// What one pass over the records learned.
struct Tally<'a> {
    final_name: Name<'a>,
    chain: u8,
    count: u16,
    fingerprint: u64,
    first: u64,
    /// A record of the question type was seen before the chain moved on.
    repass: bool,
    /// The first member whose data cannot be read.
    bad_member: Option<Error>,
    /// The upper 8 bits of the RCODE, from the first OPT of the additional section.
    high: u16,
}

/// One pass over `records` (read up to the first OPT of the additional section): follows
/// the CNAME chain from `name` when `follow`, and sums the members owned by the name the
/// chain has reached (the caller passes again, without `follow`, when the chain moved on
/// after a record of the question type).
#[inline(never)]
fn walk<'a>(
    records: Records<'a>,
    response: &[u8],
    qtype: Rtype,
    name: Name<'a>,
    follow: bool,
) -> Result<Tally<'a>, Unanswered> {
    let mut t = Tally {
        final_name: name,
        chain: 0,
        count: 0,
        fingerprint: 0,
        first: 0,
        repass: false,
        bad_member: None,
        high: 0,
    };
    let mut seen_qtype = false;
    for record in records {
        let record = record.map_err(Unanswered::Malformed)?;
        let rtype = record.rtype();
        // What the record may be: a link of the chain, a member, the OPT record. Its data
        // is read (once) only then.
        let (link, owned, opt) = match record.section() {
            Section::Answer => {
                let link = follow && rtype == Rtype::CNAME && qtype != Rtype::CNAME;
                let is_qtype = rtype == qtype;
                let owned =
                    (link || is_qtype) && same_name(response, &record.name(), &t.final_name);
                seen_qtype |= is_qtype;
                (link && owned, is_qtype && owned, false)
            }
            Section::Authority => continue,
            Section::Additional => (false, false, rtype == Rtype::OPT),
        };
        if !(link || owned || opt) {
            continue;
        }
        let data = data_of(&record);
        if opt {
            let opt = data.map_err(Unanswered::Malformed)?;
            if let RData::Opt(opt) = opt {
                t.high = u16::from(opt.extended_rcode_high());
            }
            break;
        }
        if owned {
            match data {
                Ok(d) => {
                    let m = member(&d, record.rdata(), qtype);
                    if t.count == 0 {
                        t.first = m;
                    }
                    t.count = t.count.saturating_add(1);
                    t.fingerprint = t.fingerprint.wrapping_add(m);
                }
                Err(e) => t.bad_member = t.bad_member.or(Some(e)),
            }
        }
        if link && let Ok(RData::Cname(next)) = data {
            t.final_name = next;
            t.chain = t.chain.saturating_add(1);
            // Records of the question type seen before (this one included) were judged
            // against the previous name.
            t.repass |= seen_qtype;
        }
    }
    Ok(t)
}

/// Whether the response's question octets equal the asked ones: the name ASCII
/// case-insensitively (length octets are below `A`, so they compare exactly), QTYPE and
/// QCLASS exactly.
#[inline]
fn question_matches(response: &[u8], asked: &Asked<'_>) -> bool {
    let want = asked.question;
    let Some(got) = response.get(HEADER_LEN..HEADER_LEN + want.len()) else {
        return false;
    };
    // Servers echo the question as asked: equal octets first.
    if same_octets(got, want) {
        return true;
    }
    let (got_name, got_tail) = got.split_at(asked.name_len);
    let (want_name, want_tail) = want.split_at(asked.name_len);
    got_tail == want_tail && got_name.eq_ignore_ascii_case(want_name)
}

/// Octet equality eight at a time. A slice `==` is a `memcmp` call, which in the wasm
/// filter is wasi-libc's byte loop (~11 instructions per octet, ~470 per answer there).
#[inline]
fn same_octets(a: &[u8], b: &[u8]) -> bool {
    let (a8, a1) = a.as_chunks::<8>();
    let (b8, b1) = b.as_chunks::<8>();
    a.len() == b.len()
        && a8
            .iter()
            .zip(b8)
            .all(|(x, y)| u64::from_ne_bytes(*x) == u64::from_ne_bytes(*y))
        && a1.iter().zip(b1).all(|(x, y)| x == y)
}

/// The general check: the asked query rebuilt as a message (header and question), then
/// [`check_response`].
#[inline(never)]
fn general_check(response: &Message<'_>, asked: &Asked<'_>) -> Result<(), Mismatch> {
    let mut buf = [0u8; HEADER_LEN + MAX_QUESTION_LEN];
    let n = HEADER_LEN + asked.question.len();
    let [i0, i1] = asked.id.to_be_bytes();
    let [f0, f1] = ((u16::from(asked.opcode.0) & 0xF) << 11).to_be_bytes();
    let Some(head) = buf.get_mut(..HEADER_LEN) else {
        return Err(Mismatch::MALFORMED_QUESTION);
    };
    head.copy_from_slice(&[i0, i1, f0, f1, 0, 1, 0, 0, 0, 0, 0, 0]);
    let Some(dst) = buf.get_mut(HEADER_LEN..n) else {
        return Err(Mismatch::MALFORMED_QUESTION);
    };
    dst.copy_from_slice(asked.question);
    let Ok(query) = Message::parse(buf.get(..n).unwrap_or_default()) else {
        return Err(Mismatch::MALFORMED_QUESTION);
    };
    check_response(&query, response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::score::Observation;
    use crate::wire::QueryBuilder;

    fn query(id: u16, name: &str, qtype: Rtype) -> ([u8; 512], usize) {
        let mut buf = [0u8; 512];
        let n = QueryBuilder::new(id, name, qtype).write(&mut buf).unwrap();
        (buf, n)
    }

    /// A response to `q` with these answer records (raw, appended after the question).
    fn response(q: &[u8], flags: u16, records: &[&[u8]]) -> ([u8; 1024], usize) {
        let mut out = [0u8; 1024];
        let m = Message::parse(q).unwrap();
        let qend = HEADER_LEN + question_wire(&m, &mut [0u8; MAX_QUESTION_LEN]).unwrap();
        out[..qend].copy_from_slice(&q[..qend]);
        out[2..4].copy_from_slice(&(0x8000 | flags).to_be_bytes());
        out[6..8].copy_from_slice(&(records.len() as u16).to_be_bytes());
        out[8..12].fill(0);
        let mut at = qend;
        for r in records {
            out[at..at + r.len()].copy_from_slice(r);
            at += r.len();
        }
        (out, at)
    }

    fn asked<'a>(q: &[u8], buf: &'a mut [u8; MAX_QUESTION_LEN]) -> Asked<'a> {
        let m = Message::parse(q).unwrap();
        let n = question_wire(&m, buf).unwrap();
        Asked::new(m.id(), m.header().opcode(), &buf[..n]).unwrap()
    }

    /// The slower path: parse, check, `Observation::from_exchange`.
    fn reference(q: &[u8], r: &[u8]) -> Result<(Outcome, AnswerSummary<'static>), Outcome> {
        let query = Message::parse(q).unwrap();
        let Ok(resp) = Message::parse(r) else {
            return Err(Outcome::Malformed);
        };
        let obs = Observation::from_exchange(0, 0, 0, 0, &query, &resp, &mut []);
        match obs.outcome {
            Outcome::Malformed | Outcome::Mismatch(_) => Err(obs.outcome),
            o => Ok((o, obs.answers)),
        }
    }

    fn ours(q: &[u8], r: &[u8]) -> Result<(Outcome, AnswerSummary<'static>), Outcome> {
        let mut buf = [0u8; MAX_QUESTION_LEN];
        let a = asked(q, &mut buf);
        check_and_summarize(r, &a)
            .map(|s| (s.outcome(), s.answers))
            .map_err(|u| u.outcome())
    }

    const A1: &[u8] = &[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 10, 0, 0, 1];
    const A2: &[u8] = &[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 2];

    #[test]
    fn a_plain_answer_is_summarised_like_the_slow_path() {
        let (q, n) = query(7, "Web.Default.svc.cluster.local", Rtype::A);
        let (r, m) = response(&q[..n], 0, &[A1, A2]);
        let got = ours(&q[..n], &r[..m]).unwrap();
        assert_eq!(got.1.count, 2);
        assert_eq!(got, reference(&q[..n], &r[..m]).unwrap());
        assert_eq!(got.0, Outcome::Response(Rcode::NOERROR));
    }

    #[test]
    fn case_differences_in_the_echoed_question_still_match() {
        let (q, n) = query(7, "web.default.svc.cluster.local", Rtype::A);
        let (mut r, m) = response(&q[..n], 0, &[A1]);
        r[13] = b'W';
        let got = ours(&q[..n], &r[..m]).unwrap();
        assert_eq!(got, reference(&q[..n], &r[..m]).unwrap());
    }

    #[test]
    fn every_mismatch_is_reported_at_once() {
        let (q, n) = query(7, "web.default.svc.cluster.local", Rtype::A);
        let (mut r, m) = response(&q[..n], 0, &[A1]);
        r[0] = 9; // id
        r[13] = b'x'; // qname
        let want = reference(&q[..n], &r[..m]).unwrap_err();
        assert_eq!(ours(&q[..n], &r[..m]).unwrap_err(), want);
        let Outcome::Mismatch(mm) = want else {
            panic!("{want:?}")
        };
        assert!(mm.contains(Mismatch::ID) && mm.contains(Mismatch::QNAME));
        // Not a response, other type.
        let (mut r, m) = response(&q[..n], 0, &[A1]);
        r[2] &= 0x7F;
        let qt = HEADER_LEN + 31;
        r[qt + 1] = 28;
        assert_eq!(
            ours(&q[..n], &r[..m]),
            reference(&q[..n], &r[..m]),
            "not a response + qtype"
        );
    }

    #[test]
    fn a_compressed_question_takes_the_general_path() {
        // Question name: a pointer into the header (legal: strictly backwards). The
        // header octets at 4.. are `00 01 ...`: a root-ended name of one label.
        let (q, n) = query(7, "a", Rtype::A);
        let (mut r, _) = response(&q[..n], 0, &[]);
        let mut msg = [0u8; 64];
        msg[..12].copy_from_slice(&r[..12]);
        msg[12..14].copy_from_slice(&[0xC0, 4]);
        msg[14..18].copy_from_slice(&[0, 1, 0, 1]);
        r[..18].copy_from_slice(&msg[..18]);
        assert_eq!(ours(&q[..n], &r[..18]), reference(&q[..n], &r[..18]));
    }

    #[test]
    fn question_wire_copies_in_place_or_writes_the_labels() {
        let (q, n) = query(7, "Web.default", Rtype::A);
        let m = Message::parse(&q[..n]).unwrap();
        let mut out = [0u8; MAX_QUESTION_LEN];
        assert_eq!(question_wire(&m, &mut out), Some(n - HEADER_LEN));
        assert_eq!(&out[..n - HEADER_LEN], &q[HEADER_LEN..n]);
        // A question name pointing into the header (at `00 01`: the root name).
        let mut c = [0u8; 18];
        c[5] = 1;
        c[12..].copy_from_slice(&[0xC0, 4, 0, 28, 0, 1]);
        let m = Message::parse(&c).unwrap();
        assert_eq!(question_wire(&m, &mut out), Some(5));
        assert_eq!(&out[..5], &[0, 0, 28, 0, 1]);
        // No question.
        c[5] = 0;
        assert_eq!(question_wire(&Message::parse(&c).unwrap(), &mut out), None);
    }

    #[test]
    fn hostile_responses_are_errors_never_panics() {
        let (q, n) = query(7, "web.default.svc.cluster.local", Rtype::A);
        let (r, m) = response(&q[..n], 0, &[A1, A2]);
        // Every truncation.
        for cut in 0..m {
            assert_eq!(
                ours(&q[..n], &r[..cut]),
                reference(&q[..n], &r[..cut]),
                "{cut}"
            );
        }
        // A pointer loop as an owner name, and a forward pointer.
        for owner in [[0xC0u8, 49], [0xC0, 200]] {
            let mut rec = [0u8; 16];
            rec.copy_from_slice(A1);
            rec[..2].copy_from_slice(&owner);
            let (r, m) = response(&q[..n], 0, &[&rec]);
            let got = ours(&q[..n], &r[..m]);
            assert_eq!(got, reference(&q[..n], &r[..m]));
            assert_eq!(got, Err(Outcome::Malformed));
        }
        // An A record with 3 octets of data.
        let bad: &[u8] = &[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 3, 10, 0, 0];
        let (r, m) = response(&q[..n], 0, &[bad]);
        assert_eq!(ours(&q[..n], &r[..m]), reference(&q[..n], &r[..m]));
        // Garbage.
        assert_eq!(
            check_and_summarize(&[0xFF; 5], &asked(&q[..n], &mut [0; MAX_QUESTION_LEN])),
            Err(Unanswered::Unparseable(Error::ShortHeader))
        );
    }

    #[test]
    fn a_cname_chain_out_of_order_matches_the_slow_path() {
        let (q, n) = query(7, "web.default.svc.cluster.local", Rtype::A);
        // CNAME web... -> x. (uncompressed target), and an A record owned by x.
        let cname: &[u8] = &[0xC0, 12, 0, 5, 0, 1, 0, 0, 0, 30, 0, 3, 1, b'x', 0];
        let a_x: &[u8] = &[1, b'x', 0, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 10, 0, 0, 9];
        for records in [
            &[cname, a_x][..],
            &[a_x, cname][..],
            &[A1, cname, a_x][..],
            &[A1, cname][..],
            &[cname, A1][..],
        ] {
            let (r, m) = response(&q[..n], 0, records);
            let got = ours(&q[..n], &r[..m]).unwrap();
            assert_eq!(got, reference(&q[..n], &r[..m]).unwrap(), "{records:?}");
            assert_eq!(got.1.cname_chain_len, 1);
        }
        let (r, m) = response(&q[..n], 0, &[a_x, cname]);
        assert_eq!(ours(&q[..n], &r[..m]).unwrap().1.count, 1);
    }

    #[test]
    fn asked_rejects_bad_question_octets_and_fingerprints_like_name() {
        assert_eq!(Asked::new(1, Opcode(0), &[]), None);
        assert_eq!(Asked::new(1, Opcode(0), &[0xC0, 12, 0, 1, 0, 1]), None);
        assert_eq!(Asked::new(1, Opcode(0), &[1, b'a', 0, 0, 1]), None);
        assert_eq!(Asked::new(1, Opcode(0), &[1, b'a', 0, 0, 1, 0, 1, 9]), None);
        let (q, n) = query(7, "Web.Default.svc.cluster.local", Rtype::AAAA);
        let mut buf = [0u8; MAX_QUESTION_LEN];
        let a = asked(&q[..n], &mut buf);
        let m = Message::parse(&q[..n]).unwrap();
        let fq = m.first_question().unwrap().unwrap();
        assert_eq!(a.name_fingerprint(), fq.name.fingerprint());
        assert_eq!((a.qtype(), a.qclass()), (Rtype::AAAA, Class::IN));
        assert_eq!(question_wire(&m, &mut [0u8; 8]), None);
    }
}
