//! The message view: header, questions and records over a borrowed `&[u8]`.

use super::name::NameMemo;
use super::{Class, Error, Mx, Name, Opcode, Opt, RData, Rcode, Rtype, Section, Srv};

/// Length of the fixed header (RFC 1035 §4.1.1).
pub const HEADER_LEN: usize = 12;
/// Smallest question: the root name, QTYPE and QCLASS.
const MIN_QUESTION_LEN: usize = 5;
/// Smallest record: the root name, TYPE, CLASS, TTL and RDLENGTH.
const MIN_RECORD_LEN: usize = 11;

#[inline]
pub(crate) fn be16(b: &[u8], at: usize) -> Option<u16> {
    match b.get(at..at + 2)? {
        &[h, l] => Some(u16::from_be_bytes([h, l])),
        _ => None,
    }
}

/// The 12-octet header of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    id: u16,
    flags: u16,
    counts: [u16; 4],
}

impl Header {
    /// Reads the header at the start of `bytes`.
    #[inline]
    pub fn parse(bytes: &[u8]) -> Result<Header, Error> {
        // One bounds check for the 12 octets.
        let Some(&[i0, i1, f0, f1, q0, q1, a0, a1, n0, n1, r0, r1]) =
            bytes.first_chunk::<HEADER_LEN>()
        else {
            return Err(Error::ShortHeader);
        };
        let word = u16::from_be_bytes;
        Ok(Header {
            id: word([i0, i1]),
            flags: word([f0, f1]),
            counts: [
                word([q0, q1]),
                word([a0, a1]),
                word([n0, n1]),
                word([r0, r1]),
            ],
        })
    }

    /// The query id.
    pub fn id(&self) -> u16 {
        self.id
    }
    /// The raw flags word (QR, OPCODE, AA, TC, RD, RA, Z, AD, CD, RCODE).
    pub fn flags(&self) -> u16 {
        self.flags
    }
    /// QR: this message is a response.
    pub fn qr(&self) -> bool {
        self.flags & 0x8000 != 0
    }
    /// The OPCODE.
    pub fn opcode(&self) -> Opcode {
        Opcode(((self.flags >> 11) & 0x0F) as u8)
    }
    /// AA: authoritative answer.
    pub fn aa(&self) -> bool {
        self.flags & 0x0400 != 0
    }
    /// TC: the message was truncated.
    pub fn tc(&self) -> bool {
        self.flags & 0x0200 != 0
    }
    /// RD: recursion desired.
    pub fn rd(&self) -> bool {
        self.flags & 0x0100 != 0
    }
    /// RA: recursion available.
    pub fn ra(&self) -> bool {
        self.flags & 0x0080 != 0
    }
    /// AD: authentic data (RFC 4035).
    pub fn ad(&self) -> bool {
        self.flags & 0x0020 != 0
    }
    /// CD: checking disabled (RFC 4035).
    pub fn cd(&self) -> bool {
        self.flags & 0x0010 != 0
    }
    /// The low 4 bits of the RCODE, as carried in the header. See
    /// [`Message::extended_rcode`] for the full 12-bit value.
    pub fn rcode(&self) -> Rcode {
        Rcode(self.flags & 0x000F)
    }
    /// QDCOUNT.
    pub fn qdcount(&self) -> u16 {
        self.counts[0]
    }
    /// ANCOUNT.
    pub fn ancount(&self) -> u16 {
        self.counts[1]
    }
    /// NSCOUNT.
    pub fn nscount(&self) -> u16 {
        self.counts[2]
    }
    /// ARCOUNT.
    pub fn arcount(&self) -> u16 {
        self.counts[3]
    }
}

/// A read-only view of one DNS message.
///
/// [`Message::parse`] checks the header and that the counts can fit (O(1)); sections are
/// read lazily by the iterators, which validate each question and record as they reach
/// it and stop at the first error. The view never copies and never allocates.
#[derive(Clone, Copy, Debug)]
pub struct Message<'a> {
    bytes: &'a [u8],
    header: Header,
}

impl<'a> Message<'a> {
    /// Views `bytes` as a DNS message (without the TCP length prefix).
    ///
    /// Errors: [`Error::ShortHeader`], [`Error::MessageTooLong`], and
    /// [`Error::CountsTooLarge`] when the counts promise more than the message could hold.
    #[inline]
    pub fn parse(bytes: &'a [u8]) -> Result<Message<'a>, Error> {
        let header = Header::parse(bytes)?;
        if bytes.len() > usize::from(u16::MAX) {
            return Err(Error::MessageTooLong);
        }
        let [qd, an, ns, ar] = header.counts.map(usize::from);
        let need = qd * MIN_QUESTION_LEN + (an + ns + ar) * MIN_RECORD_LEN;
        if need > bytes.len() - HEADER_LEN {
            return Err(Error::CountsTooLarge);
        }
        Ok(Message { bytes, header })
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The id (shortcut for `header().id()`).
    pub fn id(&self) -> u16 {
        self.header.id
    }

    /// The whole message.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The questions, in order.
    #[inline]
    pub fn questions(&self) -> Questions<'a> {
        let h = &self.header;
        Questions {
            msg: self.bytes,
            pos: HEADER_LEN,
            left: h.qdcount(),
            record_counts: [h.ancount(), h.nscount(), h.arcount()],
            memo: NameMemo::default(),
        }
    }

    /// The first question, if there is one.
    pub fn first_question(&self) -> Result<Option<Question<'a>>, Error> {
        self.questions().next().transpose()
    }

    /// Every record of the answer, authority and additional sections, in wire order.
    /// After the last one, [`Records::trailing_len`] tells how many octets follow.
    #[inline]
    pub fn records(&self) -> Records<'a> {
        self.records_until(Section::Additional)
    }

    /// The records of the answer section.
    pub fn answers(&self) -> Records<'a> {
        self.records_until(Section::Answer)
    }

    /// The records of one section (earlier sections are validated and skipped).
    pub fn section(
        &self,
        section: Section,
    ) -> impl Iterator<Item = Result<Record<'a>, Error>> + use<'a> {
        self.records_until(section)
            .filter(move |r| r.as_ref().map_or(true, |r| r.section == section))
    }

    #[inline]
    fn records_until(&self, last: Section) -> Records<'a> {
        self.questions().records_until(last)
    }

    /// The EDNS OPT record of the additional section, if any (RFC 6891). With several, the
    /// first one is returned.
    pub fn edns(&self) -> Result<Option<Opt<'a>>, Error> {
        for record in self.section(Section::Additional) {
            let record = record?;
            if record.rtype == Rtype::OPT
                && let RData::Opt(opt) = record.data()?
            {
                return Ok(Some(opt));
            }
        }
        Ok(None)
    }

    /// The full 12-bit RCODE: the header's 4 bits extended with the OPT record's upper 8
    /// bits (RFC 6891 §6.1.3). Without OPT, the header's RCODE.
    pub fn extended_rcode(&self) -> Result<Rcode, Error> {
        let low = self.header.rcode().0;
        Ok(match self.edns()? {
            Some(opt) => Rcode(u16::from(opt.extended_rcode_high()) << 4 | low),
            None => Rcode(low),
        })
    }

    /// Reads every question and record and returns the number of octets after the last
    /// record: 0 for a well-formed message. Non-zero is worth counting as a signal
    /// ([`Error::TrailingBytes`]), but it leaves the records readable.
    pub fn trailing_len(&self) -> Result<usize, Error> {
        let mut records = self.records();
        for r in &mut records {
            r?;
        }
        Ok(records.trailing_len().unwrap_or(0))
    }
}

/// One entry of the question section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Question<'a> {
    /// QNAME.
    pub name: Name<'a>,
    /// QTYPE.
    pub qtype: Rtype,
    /// QCLASS.
    pub qclass: Class,
}

/// Iterator over the question section; stops after the first error.
#[derive(Clone, Debug)]
pub struct Questions<'a> {
    msg: &'a [u8],
    pos: usize,
    left: u16,
    record_counts: [u16; 3],
    memo: NameMemo,
}

impl<'a> Iterator for Questions<'a> {
    type Item = Result<Question<'a>, Error>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.left = self.left.checked_sub(1)?;
        let item = self.read();
        if item.is_err() {
            self.left = 0;
        }
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(usize::from(self.left)))
    }
}

impl<'a> Questions<'a> {
    /// Continues with the records of every section, where the questions end: a single
    /// pass over the message (questions not yet read are read and validated first). Names
    /// compressed against the questions are resolved from what was learned reading them.
    #[inline]
    pub fn into_records(self) -> Records<'a> {
        self.records_until(Section::Additional)
    }

    #[inline]
    fn records_until(self, last: Section) -> Records<'a> {
        Records {
            left: self.record_counts,
            questions: self,
            section: 0,
            last: last as usize,
        }
    }

    #[inline]
    fn read(&mut self) -> Result<Question<'a>, Error> {
        let (name, at) = Name::read_question(self.msg, self.pos, &mut self.memo)?;
        let (Some(qtype), Some(qclass)) = (be16(self.msg, at), be16(self.msg, at + 2)) else {
            return Err(Error::Truncated);
        };
        self.pos = at + 4;
        Ok(Question {
            name,
            qtype: Rtype(qtype),
            qclass: Class(qclass),
        })
    }
}

/// One resource record.
#[derive(Clone, Copy, Debug)]
pub struct Record<'a> {
    msg: &'a [u8],
    /// The owner name: start, uncompressed length, labels.
    name_at: u16,
    name_len: u8,
    name_labels: u8,
    rtype: Rtype,
    class: Class,
    ttl: u32,
    rdata_at: u16,
    rdata_len: u16,
    section: Section,
    /// The rdata name of NS / CNAME / PTR / MX / SRV when the iterator validated it (see
    /// [`rdata_name`]): `len << 8 | labels`. 0: not validated, [`Record::data`] parses
    /// the rdata.
    rdata_name: u16,
}

impl<'a> Record<'a> {
    /// The owner name.
    #[inline]
    pub fn name(&self) -> Name<'a> {
        Name::from_parts(self.msg, self.name_at, self.name_len, self.name_labels)
    }
    /// TYPE.
    pub fn rtype(&self) -> Rtype {
        self.rtype
    }
    /// CLASS (for OPT: the requestor's UDP payload size).
    pub fn class(&self) -> Class {
        self.class
    }
    /// TTL in seconds (for OPT: extended RCODE, version and flags).
    pub fn ttl(&self) -> u32 {
        self.ttl
    }
    /// The section the record was read from.
    pub fn section(&self) -> Section {
        self.section
    }
    /// The raw rdata, exactly RDLENGTH octets.
    #[inline]
    pub fn rdata(&self) -> &'a [u8] {
        let at = usize::from(self.rdata_at);
        self.msg
            .get(at..at + usize::from(self.rdata_len))
            .unwrap_or_default()
    }
    /// The rdata parsed by type. Names in rdata may be compressed against the whole
    /// message; the parse must consume exactly RDLENGTH octets.
    #[inline(always)]
    pub fn data(&self) -> Result<RData<'a>, Error> {
        let at = usize::from(self.rdata_at);
        if self.rtype.0 == Rtype::A.0
            && let Some(&[a, b, c, d]) = self.msg.get(at..at + usize::from(self.rdata_len))
        {
            return Ok(RData::A(core::net::Ipv4Addr::new(a, b, c, d)));
        }
        // (The type test lets a caller that knows the type drop this branch.)
        if self.rdata_name != 0
            && matches!(
                self.rtype,
                Rtype::NS | Rtype::CNAME | Rtype::PTR | Rtype::MX | Rtype::SRV
            )
        {
            return Ok(named_data(
                self.msg,
                self.rtype,
                self.rdata_at,
                self.rdata_len,
                self.rdata_name,
            ));
        }
        if self.rtype.0 == Rtype::OPT.0 {
            return RData::opt(self.rdata(), self.class, self.ttl);
        }
        RData::parse(
            self.msg,
            self.rtype,
            self.class,
            self.ttl,
            usize::from(self.rdata_at),
            usize::from(self.rdata_len),
        )
    }
}

/// The rdata of a record whose name the iterator validated: built from the name's shape,
/// without a second walk.
#[inline(never)]
fn named_data(msg: &[u8], rtype: Rtype, at: u16, rdlen: u16, shape: u16) -> RData<'_> {
    let [len1, labels1] = shape.to_be_bytes();
    let name = |off: u16, len, labels| Name::from_parts(msg, at + off, len, labels);
    let u16_at = |off: u16| be16(msg, usize::from(at + off)).unwrap_or_default();
    match rtype {
        Rtype::CNAME => RData::Cname(name(0, len1, labels1)),
        Rtype::NS => RData::Ns(name(0, len1, labels1)),
        Rtype::PTR => RData::Ptr(name(0, len1, labels1)),
        Rtype::MX => RData::Mx(Mx {
            preference: u16_at(0),
            exchange: name(2, len1, labels1),
        }),
        Rtype::SRV => RData::Srv(Srv {
            priority: u16_at(0),
            weight: u16_at(2),
            port: u16_at(4),
            target: name(6, len1, labels1),
        }),
        _ => RData::Unknown(
            msg.get(usize::from(at)..usize::from(at) + usize::from(rdlen))
                .unwrap_or_default(),
        ),
    }
}

/// Validates the name in NS / CNAME / PTR / MX / SRV rdata at `msg[at..end]` while the
/// iterator's memo is at hand (its suffix is nearly always the question's or a name read
/// just before), and returns what [`Record::data`] needs to build it: `len << 8 |
/// labels`. Anything unusual (an invalid name, a layout that does not fill the rdata
/// exactly) returns 0, and `data()` parses the rdata and reports the error. (SOA names
/// gain nothing here: `RData::parse` walks them as fast.)
#[inline(never)]
fn rdata_name(msg: &[u8], memo: &mut NameMemo, rtype: Rtype, at: usize, end: usize) -> u16 {
    let start = match rtype {
        Rtype::CNAME | Rtype::NS | Rtype::PTR => at,
        Rtype::MX => at + 2,
        Rtype::SRV => at + 6,
        _ => return 0,
    };
    match Name::read_rdata(msg, start, memo) {
        Ok((len, labels, next)) if next == end => u16::from_be_bytes([len, labels]),
        _ => 0,
    }
}

/// Iterator over records of one or more sections, in wire order; stops after the first
/// error. Questions are read (and validated) first if they were not yet.
#[derive(Clone, Debug)]
pub struct Records<'a> {
    questions: Questions<'a>,
    left: [u16; 3],
    section: usize,
    last: usize,
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, Error>;

    #[inline(always)]
    fn next(&mut self) -> Option<Self::Item> {
        while self.questions.left > 0 {
            if let Err(e) = self.questions.next()? {
                self.stop();
                return Some(Err(e));
            }
        }
        loop {
            if self.section > self.last {
                return None;
            }
            match self.left.get_mut(self.section) {
                Some(left) if *left > 0 => {
                    *left -= 1;
                    break;
                }
                Some(_) => self.section += 1,
                None => return None,
            }
        }
        let item = self.read();
        if item.is_err() {
            self.stop();
        }
        Some(item)
    }
}

impl<'a> Records<'a> {
    fn stop(&mut self) {
        self.questions.left = 0;
        self.left = [0; 3];
        self.section = usize::MAX;
    }

    #[inline(always)]
    fn read(&mut self) -> Result<Record<'a>, Error> {
        let q = &mut self.questions;
        let msg = q.msg;
        let (name, at) = Name::read(msg, q.pos, &q.memo)?;
        // TYPE, CLASS, TTL, RDLENGTH: one bounds check for the 10 fixed octets.
        let Some(&[t0, t1, c0, c1, l0, l1, l2, l3, r0, r1]) =
            msg.get(at..).and_then(|rest| rest.first_chunk::<10>())
        else {
            return Err(Error::Truncated);
        };
        let (rtype, class) = (u16::from_be_bytes([t0, t1]), u16::from_be_bytes([c0, c1]));
        let ttl = u32::from_be_bytes([l0, l1, l2, l3]);
        let rdlen = u16::from_be_bytes([r0, r1]);
        let rdata_at = at + 10;
        let end = rdata_at + usize::from(rdlen);
        if end > msg.len() {
            return Err(Error::RdataOverrun);
        }
        q.pos = end;
        let rtype = Rtype(rtype);
        // The name in NS / CNAME / PTR / MX / SRV rdata is validated here, where the memo
        // is at hand, and remembered for later pointers.
        let rdata_name = if matches!(
            rtype,
            Rtype::NS | Rtype::CNAME | Rtype::PTR | Rtype::MX | Rtype::SRV
        ) {
            rdata_name(msg, &mut q.memo, rtype, rdata_at, end)
        } else {
            0
        };
        let (name_at, name_len, name_labels) = name.parts();
        Ok(Record {
            msg,
            name_at,
            name_len,
            name_labels,
            rdata_name,
            rtype,
            class: Class(class),
            ttl,
            // The message is at most 65535 octets (checked in `Message::parse`).
            rdata_at: rdata_at as u16,
            rdata_len: rdlen,
            section: Section::ALL
                .get(self.section)
                .copied()
                .unwrap_or(Section::Additional),
        })
    }

    /// Once every record of every section has been read without error: the number of
    /// octets that follow the last one (0 for a well-formed message). `None` before that,
    /// after an error, or when this iterator covers only some sections.
    pub fn trailing_len(&self) -> Option<usize> {
        let done = self.last == Section::Additional as usize
            && self.section != usize::MAX
            && self.questions.left == 0
            && self.left == [0; 3];
        done.then(|| self.questions.msg.len().saturating_sub(self.questions.pos))
    }

    /// Like [`trailing_len`](Self::trailing_len), as a result: `Err(TrailingBytes)` when
    /// octets follow the last record.
    pub fn check_trailing(&self) -> Result<(), Error> {
        match self.trailing_len() {
            Some(n) if n > 0 => Err(Error::TrailingBytes),
            _ => Ok(()),
        }
    }
}
