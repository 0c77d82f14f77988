//! Writing queries into a caller's buffer.

use core::fmt;

use super::name::{MAX_LABEL_LEN, MAX_NAME_LEN};
use super::{Class, Error, Rtype};

/// A bounds-checked writer over a caller's buffer.
pub(crate) struct Writer<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl<'b> Writer<'b> {
    pub(crate) fn new(buf: &'b mut [u8]) -> Self {
        Writer { buf, pos: 0 }
    }
    pub(crate) fn put(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let end = self.pos + bytes.len();
        self.buf
            .get_mut(self.pos..end)
            .ok_or(Error::BufferTooSmall)?
            .copy_from_slice(bytes);
        self.pos = end;
        Ok(())
    }
    pub(crate) fn u16(&mut self, v: u16) -> Result<(), Error> {
        self.put(&v.to_be_bytes())
    }
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }
}

impl fmt::Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.put(s.as_bytes()).map_err(|_| fmt::Error)
    }
}

/// Splits a dotted name into validated labels: each 1..=63 octets, at most 255 octets in
/// wire form, no backslash escapes. A trailing dot is optional; `""` and `"."` are the root.
pub(crate) fn dotted_labels(dotted: &str) -> Result<impl Iterator<Item = &[u8]>, Error> {
    let text = dotted.strip_suffix('.').unwrap_or(dotted);
    if text.contains('\\') {
        return Err(Error::UnsupportedEscape);
    }
    let mut wire_len = 1;
    if !text.is_empty() {
        for label in text.split('.') {
            if label.is_empty() {
                return Err(Error::EmptyLabel);
            }
            if label.len() > MAX_LABEL_LEN {
                return Err(Error::LabelTooLong);
            }
            wire_len += 1 + label.len();
        }
    }
    if wire_len > MAX_NAME_LEN {
        return Err(Error::NameTooLong);
    }
    Ok(text.split('.').filter(|l| !l.is_empty()).map(str::as_bytes))
}

/// EDNS(0) settings of a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edns {
    /// The UDP payload size this client can receive (1232 is the DNS Flag Day 2020 value).
    pub udp_payload_size: u16,
    /// DO: ask for DNSSEC records.
    pub dnssec_ok: bool,
}

/// Builds a standard query into a caller's buffer; nothing is allocated.
///
/// ```
/// use dnswarden_core::wire::{Message, QueryBuilder, Rtype};
/// let mut buf = [0u8; 512];
/// let n = QueryBuilder::new(0x1234, "kubernetes.default.svc.cluster.local", Rtype::A)
///     .edns(1232)
///     .write(&mut buf)?;
/// let msg = Message::parse(&buf[..n])?;
/// assert_eq!(msg.id(), 0x1234);
/// assert!(msg.first_question()?.unwrap().name.eq_str("kubernetes.default.svc.cluster.local."));
/// # Ok::<(), dnswarden_core::wire::Error>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct QueryBuilder<'n> {
    id: u16,
    name: &'n str,
    qtype: Rtype,
    qclass: Class,
    rd: bool,
    cd: bool,
    edns: Option<Edns>,
    tcp: bool,
}

impl<'n> QueryBuilder<'n> {
    /// A query for `name` (dotted, trailing dot optional) of type `qtype`, class IN, with
    /// RD set, no EDNS and no TCP length prefix.
    pub fn new(id: u16, name: &'n str, qtype: Rtype) -> Self {
        QueryBuilder {
            id,
            name,
            qtype,
            qclass: Class::IN,
            rd: true,
            cd: false,
            edns: None,
            tcp: false,
        }
    }
    /// Sets the class.
    pub fn class(mut self, qclass: Class) -> Self {
        self.qclass = qclass;
        self
    }
    /// Sets or clears RD (recursion desired).
    pub fn rd(mut self, rd: bool) -> Self {
        self.rd = rd;
        self
    }
    /// Sets or clears CD (checking disabled).
    pub fn cd(mut self, cd: bool) -> Self {
        self.cd = cd;
        self
    }
    /// Adds an EDNS(0) OPT record advertising `udp_payload_size`.
    pub fn edns(mut self, udp_payload_size: u16) -> Self {
        self.edns = Some(Edns {
            udp_payload_size,
            dnssec_ok: false,
        });
        self
    }
    /// Sets the full EDNS(0) settings, or none.
    pub fn edns_settings(mut self, edns: Option<Edns>) -> Self {
        self.edns = edns;
        self
    }
    /// Prefixes the message with its 2-octet length, for DNS over TCP (RFC 1035 §4.2.2).
    pub fn tcp(mut self, tcp: bool) -> Self {
        self.tcp = tcp;
        self
    }

    /// Writes the query into `buf` and returns the number of octets written (length
    /// prefix included when [`tcp`](Self::tcp) is set).
    ///
    /// Errors: the name's [`Error::EmptyLabel`], [`Error::LabelTooLong`],
    /// [`Error::NameTooLong`], [`Error::UnsupportedEscape`]; [`Error::BufferTooSmall`].
    pub fn write(&self, buf: &mut [u8]) -> Result<usize, Error> {
        let labels = dotted_labels(self.name)?;
        let mut w = Writer::new(buf);
        if self.tcp {
            w.u16(0)?; // patched below
        }
        let flags = if self.rd { 0x0100 } else { 0 } | if self.cd { 0x0010 } else { 0 };
        w.u16(self.id)?;
        w.u16(flags)?;
        w.u16(1)?; // QDCOUNT
        w.u16(0)?; // ANCOUNT
        w.u16(0)?; // NSCOUNT
        w.u16(u16::from(self.edns.is_some()))?;
        for label in labels {
            // Validated by `dotted_labels`: 1..=63 octets.
            w.put(&[label.len() as u8])?;
            w.put(label)?;
        }
        w.put(&[0])?;
        w.u16(self.qtype.0)?;
        w.u16(self.qclass.0)?;
        if let Some(edns) = self.edns {
            // RFC 6891 §6.1.2: root owner, TYPE OPT, CLASS = payload size,
            // TTL = extended RCODE (0), version (0), DO bit, zero; no options.
            w.put(&[0])?;
            w.u16(Rtype::OPT.0)?;
            w.u16(edns.udp_payload_size)?;
            w.u16(0)?;
            w.u16(if edns.dnssec_ok { 0x8000 } else { 0 })?;
            w.u16(0)?;
        }
        let n = w.pos();
        if self.tcp {
            let len = u16::try_from(n - 2).map_err(|_| Error::MessageTooLong)?;
            buf.get_mut(..2)
                .ok_or(Error::BufferTooSmall)?
                .copy_from_slice(&len.to_be_bytes());
        }
        Ok(n)
    }
}
