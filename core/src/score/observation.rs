//! [`Observation`]: what the scorer learns from one DNS exchange.

use core::net::IpAddr;

use crate::wire::{self, Message, Mismatch, RData, Rcode, Rtype};

/// How an exchange ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A response that answers the query, with its full (extended, 12-bit) RCODE.
    Response(Rcode),
    /// No response in time.
    Timeout,
    /// A response with TC=1, and what the TCP retry did.
    Truncated(Fallback),
    /// A response that could not be parsed.
    Malformed,
    /// A response that does not answer the query (id, question, QR, opcode...).
    Mismatch(Mismatch),
}

/// What happened after a truncated (TC=1) response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fallback {
    /// No TCP retry was made (or the caller does not know, e.g. a passive observer).
    NotAttempted,
    /// The TCP retry failed (connect error, timeout, reset, bad response).
    Failed,
    /// The TCP retry answered with this RCODE; the observation's answers and RTT should
    /// describe that answer.
    Answered(Rcode),
}

impl Outcome {
    /// The RCODE the client finally got, if any.
    pub const fn rcode(&self) -> Option<Rcode> {
        match *self {
            Outcome::Response(r) | Outcome::Truncated(Fallback::Answered(r)) => Some(r),
            _ => None,
        }
    }
}

/// An order-independent summary of the answer section.
///
/// Members are per-record hashes ([`member_hash`] and friends) of the records that answer
/// the question (after following CNAMEs); the set fingerprint is their wrapping sum
/// ([`set_fingerprint`]), so it does not depend on record order. `members` optionally
/// lists them (borrowed from the caller's buffer): the drift detector then reports how
/// many expected members are missing and how many are extra.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AnswerSummary<'a> {
    /// Records answering the question (CNAMEs not included).
    pub count: u16,
    /// [`set_fingerprint`] of all those records (0 for none).
    pub set_fingerprint: u64,
    /// Member hash of the first such record (0 for none).
    pub first: u64,
    /// Number of CNAME hops from the question name to the final name.
    pub cname_chain_len: u8,
    /// [`wire::Name::fingerprint`] of the final name (the question name without CNAMEs;
    /// 0 when unknown).
    pub final_name: u64,
    /// The member hashes, if the caller kept them (may be empty, or a prefix when the
    /// caller's buffer was too small: then it is left empty).
    pub members: &'a [u64],
}

impl AnswerSummary<'static> {
    /// No answers.
    pub const EMPTY: AnswerSummary<'static> = AnswerSummary {
        count: 0,
        set_fingerprint: 0,
        first: 0,
        cname_chain_len: 0,
        final_name: 0,
        members: &[],
    };
}

impl<'a> AnswerSummary<'a> {
    /// The summary of these members, in answer order (the first one is `first`).
    pub fn from_members(members: &'a [u64]) -> Self {
        AnswerSummary {
            count: u16::try_from(members.len()).unwrap_or(u16::MAX),
            set_fingerprint: set_fingerprint(members),
            first: members.first().copied().unwrap_or(0),
            cname_chain_len: 0,
            final_name: 0,
            members,
        }
    }
}

/// The order-independent fingerprint of a set of member hashes: their wrapping sum.
/// Because member hashes are well mixed, two different small sets collide with
/// probability about 2⁻⁶⁴.
pub fn set_fingerprint(members: &[u64]) -> u64 {
    members.iter().fold(0u64, |acc, &m| acc.wrapping_add(m))
}

/// splitmix64's finaliser: a bijective avalanche mix.
const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn fnv(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
    for &b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The member hash of a record whose data is compared as raw octets (A: the 4 address
/// octets, AAAA: 16). Never 0.
pub fn member_hash(rtype: Rtype, rdata: &[u8]) -> u64 {
    let h = mix(fnv(u64::from(rtype.0) << 32, rdata));
    if h == 0 { 1 } else { h }
}

/// The member hash of an address, equal to [`member_hash`] of the matching A or AAAA
/// record, so an expected set built from EndpointSlice addresses matches the answers.
pub fn member_hash_ip(addr: IpAddr) -> u64 {
    match addr {
        IpAddr::V4(a) => member_hash(Rtype::A, &a.octets()),
        IpAddr::V6(a) => member_hash(Rtype::AAAA, &a.octets()),
    }
}

/// The member hash of a record whose data is a name (CNAME, NS, PTR), from the name's
/// [`wire::Name::fingerprint`] (or [`wire::fingerprint_str`]).
pub fn member_hash_name(rtype: Rtype, name_fingerprint: u64) -> u64 {
    member_hash(rtype, &name_fingerprint.to_be_bytes())
}

/// The member hash of an SRV record.
pub fn member_hash_srv(priority: u16, weight: u16, port: u16, target_fingerprint: u64) -> u64 {
    let mut b = [0u8; 14];
    let parts = [
        priority.to_be_bytes(),
        weight.to_be_bytes(),
        port.to_be_bytes(),
    ];
    for (dst, src) in b.chunks_exact_mut(2).zip(parts.iter()) {
        dst.copy_from_slice(src);
    }
    if let Some(tail) = b.get_mut(6..) {
        tail.copy_from_slice(&target_fingerprint.to_be_bytes());
    }
    member_hash(Rtype::SRV, &b)
}

/// One DNS exchange as the scorer sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Observation<'a> {
    /// The server (e.g. CoreDNS pod) key, chosen by the caller.
    pub server: u32,
    /// The target (question) key, chosen by the caller.
    pub target: u32,
    /// When the exchange completed, in microseconds on the caller's clock.
    pub at_us: u64,
    /// How it ended.
    pub outcome: Outcome,
    /// Round-trip time in microseconds (for a timeout: the time waited; not used).
    pub rtt_us: u32,
    /// What the answer section said.
    pub answers: AnswerSummary<'a>,
}

impl Observation<'static> {
    /// An observation with no RTT and no answers; see [`rtt`](Self::rtt) and
    /// [`answers`](Self::answers).
    pub const fn new(server: u32, target: u32, at_us: u64, outcome: Outcome) -> Self {
        Observation {
            server,
            target,
            at_us,
            outcome,
            rtt_us: 0,
            answers: AnswerSummary::EMPTY,
        }
    }
}

impl<'a> Observation<'a> {
    /// With this RTT.
    pub const fn rtt(mut self, rtt_us: u32) -> Self {
        self.rtt_us = rtt_us;
        self
    }

    /// With these answers.
    pub const fn answers<'b>(self, answers: AnswerSummary<'b>) -> Observation<'b> {
        Observation {
            server: self.server,
            target: self.target,
            at_us: self.at_us,
            outcome: self.outcome,
            rtt_us: self.rtt_us,
            answers,
        }
    }

    /// Builds the observation of `response` to `query` (both wire views): the matcher
    /// decides [`Outcome::Mismatch`], TC=1 gives [`Outcome::Truncated`] with
    /// [`Fallback::NotAttempted`] (set [`Fallback::Answered`] yourself after a TCP retry,
    /// or build the observation from the TCP response and wrap its outcome), an unreadable
    /// OPT or answer section gives [`Outcome::Malformed`], anything else
    /// [`Outcome::Response`] with the extended RCODE.
    ///
    /// The answer summary follows the CNAME chain from the question name; records of the
    /// question type owned by the final name are members (SRV by priority, weight, port
    /// and target; names by fingerprint; others by raw rdata). Their hashes are written to
    /// `members` (pass an empty slice to skip; if it is too small, `answers.members` is
    /// left empty but count and fingerprint still cover every record).
    pub fn from_exchange(
        server: u32,
        target: u32,
        at_us: u64,
        rtt_us: u32,
        query: &Message<'_>,
        response: &Message<'_>,
        members: &'a mut [u64],
    ) -> Observation<'a> {
        let base = Observation::new(server, target, at_us, Outcome::Malformed).rtt(rtt_us);
        if let Err(m) = wire::check_response(query, response) {
            return Observation {
                outcome: Outcome::Mismatch(m),
                ..base
            };
        }
        let Ok(rcode) = response.extended_rcode() else {
            return base;
        };
        let Ok(Some(question)) = query.first_question() else {
            return base;
        };
        let Some(answers) = summarize(response, question.name, question.qtype, members) else {
            return base;
        };
        let outcome = if response.header().tc() {
            Outcome::Truncated(Fallback::NotAttempted)
        } else {
            Outcome::Response(rcode)
        };
        Observation {
            server,
            target,
            at_us,
            outcome,
            rtt_us,
            answers,
        }
    }

    /// Like [`from_exchange`](Self::from_exchange), from the raw response octets: a
    /// response that does not even parse is [`Outcome::Malformed`].
    pub fn from_response_bytes(
        server: u32,
        target: u32,
        at_us: u64,
        rtt_us: u32,
        query: &Message<'_>,
        response: &[u8],
        members: &'a mut [u64],
    ) -> Observation<'a> {
        match Message::parse(response) {
            Ok(msg) => {
                Observation::from_exchange(server, target, at_us, rtt_us, query, &msg, members)
            }
            Err(_) => Observation::new(server, target, at_us, Outcome::Malformed).rtt(rtt_us),
        }
    }
}

/// Summarises the answer section; `None` if it cannot be read.
fn summarize<'m>(
    response: &Message<'_>,
    qname: wire::Name<'_>,
    qtype: Rtype,
    members: &'m mut [u64],
) -> Option<AnswerSummary<'m>> {
    // Pass 1: follow the CNAME chain (records usually come in chain order; a chain that
    // is out of order is followed as far as the order allows).
    let mut final_name = qname;
    let mut chain: u8 = 0;
    for record in response.answers() {
        let record = record.ok()?;
        if record.rtype() == Rtype::CNAME
            && qtype != Rtype::CNAME
            && record.name().eq_name(&final_name)
            && let Ok(RData::Cname(next)) = record.data()
        {
            final_name = next;
            chain = chain.saturating_add(1);
        }
    }
    // Pass 2: members owned by the final name.
    let mut count: u16 = 0;
    let mut fingerprint = 0u64;
    let mut first = 0u64;
    let mut overflow = false;
    for record in response.answers() {
        let record = record.ok()?;
        if record.rtype() != qtype || !record.name().eq_name(&final_name) {
            continue;
        }
        let h = match record.data().ok()? {
            RData::Srv(s) => member_hash_srv(s.priority, s.weight, s.port, s.target.fingerprint()),
            RData::Cname(n) | RData::Ns(n) | RData::Ptr(n) => {
                member_hash_name(qtype, n.fingerprint())
            }
            _ => member_hash(qtype, record.rdata()),
        };
        if count == 0 {
            first = h;
        }
        match members.get_mut(usize::from(count)) {
            Some(slot) => *slot = h,
            None => overflow = true,
        }
        count = count.saturating_add(1);
        fingerprint = fingerprint.wrapping_add(h);
    }
    let kept = if overflow { 0 } else { usize::from(count) };
    Some(AnswerSummary {
        count,
        set_fingerprint: fingerprint,
        first,
        cname_chain_len: chain,
        final_name: final_name.fingerprint(),
        members: members.get(..kept).unwrap_or(&[]),
    })
}
