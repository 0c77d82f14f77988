//! Checking that a response answers the query it claims to.

use core::fmt;

use super::{Class, Message, Name, Opcode, Rtype};

/// What does not match between a query and a response: a small set of flags. A
/// mismatch is an integrity signal (a late answer to an old query, a broken middlebox, or
/// a spoofing attempt), never a crash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Mismatch(u8);

impl Mismatch {
    /// The ids differ.
    pub const ID: Mismatch = Mismatch(1);
    /// The response does not have QR set.
    pub const NOT_RESPONSE: Mismatch = Mismatch(1 << 1);
    /// The opcodes differ.
    pub const OPCODE: Mismatch = Mismatch(1 << 2);
    /// The response does not carry exactly one question.
    pub const QUESTION_COUNT: Mismatch = Mismatch(1 << 3);
    /// The question names differ (ignoring ASCII case).
    pub const QNAME: Mismatch = Mismatch(1 << 4);
    /// The question types differ.
    pub const QTYPE: Mismatch = Mismatch(1 << 5);
    /// The question classes differ.
    pub const QCLASS: Mismatch = Mismatch(1 << 6);
    /// The response's question section cannot be read.
    pub const MALFORMED_QUESTION: Mismatch = Mismatch(1 << 7);

    const NAMES: [(Mismatch, &'static str); 8] = [
        (Mismatch::ID, "id"),
        (Mismatch::NOT_RESPONSE, "not_response"),
        (Mismatch::OPCODE, "opcode"),
        (Mismatch::QUESTION_COUNT, "question_count"),
        (Mismatch::QNAME, "qname"),
        (Mismatch::QTYPE, "qtype"),
        (Mismatch::QCLASS, "qclass"),
        (Mismatch::MALFORMED_QUESTION, "malformed_question"),
    ];

    /// Whether every flag of `other` is set here.
    pub fn contains(self, other: Mismatch) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }
    /// Whether no flag is set.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// The raw bits.
    pub fn bits(self) -> u8 {
        self.0
    }
    /// A bounded label for the most telling flag (in the order of the constants).
    pub fn kind(self) -> &'static str {
        Mismatch::NAMES
            .iter()
            .find(|(m, _)| self.contains(*m))
            .map_or("none", |(_, n)| n)
    }
    fn insert(&mut self, other: Mismatch) {
        self.0 |= other.0;
    }
}

impl fmt::Debug for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut set = f.debug_set();
        for (m, n) in Mismatch::NAMES {
            if self.contains(m) {
                set.entry(&n);
            }
        }
        set.finish()
    }
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (m, n) in Mismatch::NAMES {
            if self.contains(m) {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(n)?;
                first = false;
            }
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}

/// What a response must echo from its query, small enough to keep per in-flight query
/// (for example in a proxy that forgets the query bytes). Names are compared by
/// [`Name::fingerprint`], a 64-bit hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct QueryKey {
    /// The query id.
    pub id: u16,
    /// The OPCODE.
    pub opcode: Opcode,
    /// [`Name::fingerprint`] of the question name.
    pub qname: u64,
    /// QTYPE.
    pub qtype: Rtype,
    /// QCLASS.
    pub qclass: Class,
}

impl QueryKey {
    /// The key of a query with one question; `None` when the query has no readable
    /// first question.
    pub fn of(query: &Message<'_>) -> Option<QueryKey> {
        let q = query.first_question().ok().flatten()?;
        Some(QueryKey {
            id: query.id(),
            opcode: query.header().opcode(),
            qname: q.name.fingerprint(),
            qtype: q.qtype,
            qclass: q.qclass,
        })
    }

    /// Checks `response` against this key.
    pub fn check(&self, response: &Message<'_>) -> Result<(), Mismatch> {
        check(
            self.id,
            self.opcode,
            response,
            |n| n.fingerprint() == self.qname,
            self.qtype,
            self.qclass,
        )
    }
}

/// Checks that `response` answers `query`: same id, QR set, same opcode, and exactly one
/// question equal to the query's first (name ignoring case, type, class), as RFC 5452 §9
/// asks resolvers to check. Returns every difference at once.
pub fn check_response(query: &Message<'_>, response: &Message<'_>) -> Result<(), Mismatch> {
    let Ok(Some(q)) = query.first_question() else {
        let mut m = Mismatch::default();
        m.insert(Mismatch::MALFORMED_QUESTION);
        return Err(m);
    };
    check(
        query.id(),
        query.header().opcode(),
        response,
        |n| n.eq_name(&q.name),
        q.qtype,
        q.qclass,
    )
}

fn check(
    id: u16,
    opcode: Opcode,
    response: &Message<'_>,
    same_name: impl Fn(&Name<'_>) -> bool,
    qtype: Rtype,
    qclass: Class,
) -> Result<(), Mismatch> {
    let mut m = Mismatch::default();
    let h = response.header();
    if h.id() != id {
        m.insert(Mismatch::ID);
    }
    if !h.qr() {
        m.insert(Mismatch::NOT_RESPONSE);
    }
    if h.opcode() != opcode {
        m.insert(Mismatch::OPCODE);
    }
    if h.qdcount() != 1 {
        m.insert(Mismatch::QUESTION_COUNT);
    }
    match response.first_question() {
        Ok(Some(rq)) => {
            if !same_name(&rq.name) {
                m.insert(Mismatch::QNAME);
            }
            if rq.qtype != qtype {
                m.insert(Mismatch::QTYPE);
            }
            if rq.qclass != qclass {
                m.insert(Mismatch::QCLASS);
            }
        }
        Ok(None) => {}
        Err(_) => m.insert(Mismatch::MALFORMED_QUESTION),
    }
    if m.is_empty() { Ok(()) } else { Err(m) }
}
