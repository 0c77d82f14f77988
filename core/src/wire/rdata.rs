//! Typed views of record data.

use core::net::{Ipv4Addr, Ipv6Addr};

use super::message::be16;
use super::{Class, Error, Name, Rtype};

/// Record data, parsed by type. Names inside borrow the message and may be compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RData<'a> {
    /// An IPv4 address (RFC 1035 §3.4.1).
    A(Ipv4Addr),
    /// An IPv6 address (RFC 3596).
    Aaaa(Ipv6Addr),
    /// The canonical name of an alias (RFC 1035 §3.3.1).
    Cname(Name<'a>),
    /// An authoritative name server (RFC 1035 §3.3.11).
    Ns(Name<'a>),
    /// A domain name pointer (RFC 1035 §3.3.12).
    Ptr(Name<'a>),
    /// A mail exchange (RFC 1035 §3.3.9).
    Mx(Mx<'a>),
    /// A service location (RFC 2782).
    Srv(Srv<'a>),
    /// One or more character strings (RFC 1035 §3.3.14).
    Txt(Txt<'a>),
    /// The start of a zone of authority (RFC 1035 §3.3.13).
    Soa(Soa<'a>),
    /// The EDNS(0) pseudo-record (RFC 6891).
    Opt(Opt<'a>),
    /// Any other type, as raw octets (RFC 3597). Not an error: counted by callers.
    Unknown(&'a [u8]),
}

/// MX rdata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mx<'a> {
    /// PREFERENCE: lower is preferred.
    pub preference: u16,
    /// EXCHANGE.
    pub exchange: Name<'a>,
}

/// SRV rdata (RFC 2782).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Srv<'a> {
    /// Priority: lower is tried first.
    pub priority: u16,
    /// Relative weight among equal priorities.
    pub weight: u16,
    /// The port of the service.
    pub port: u16,
    /// The target host.
    pub target: Name<'a>,
}

/// SOA rdata.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Soa<'a> {
    /// MNAME: the primary name server.
    pub mname: Name<'a>,
    /// RNAME: the mailbox of the person responsible.
    pub rname: Name<'a>,
    /// SERIAL.
    pub serial: u32,
    /// REFRESH, seconds.
    pub refresh: u32,
    /// RETRY, seconds.
    pub retry: u32,
    /// EXPIRE, seconds.
    pub expire: u32,
    /// MINIMUM: the negative-caching TTL (RFC 2308), seconds.
    pub minimum: u32,
}

/// TXT rdata: one or more character strings, validated to fill RDLENGTH exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Txt<'a> {
    data: &'a [u8],
}

impl<'a> Txt<'a> {
    /// The character strings, without their length octets.
    pub fn strings(&self) -> TxtStrings<'a> {
        TxtStrings { rest: self.data }
    }
    /// The raw rdata.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.data
    }
}

/// Iterator over the character strings of a [`Txt`].
#[derive(Clone, Debug)]
pub struct TxtStrings<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for TxtStrings<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let (&len, tail) = self.rest.split_first()?;
        let s = tail.get(..usize::from(len))?;
        self.rest = tail.get(usize::from(len)..)?;
        Some(s)
    }
}

/// The OPT pseudo-record of EDNS(0) (RFC 6891 §6.1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opt<'a> {
    class: u16,
    ttl: u32,
    data: &'a [u8],
}

/// The EDNS option code of Extended DNS Errors (RFC 8914).
pub const EDNS_EDE: u16 = 15;

impl<'a> Opt<'a> {
    /// The sender's UDP payload size (the record's CLASS field).
    pub fn udp_payload_size(&self) -> u16 {
        self.class
    }
    /// The upper 8 bits of the extended RCODE.
    pub fn extended_rcode_high(&self) -> u8 {
        (self.ttl >> 24) as u8
    }
    /// The EDNS version (0 today).
    pub fn version(&self) -> u8 {
        (self.ttl >> 16) as u8
    }
    /// DO: DNSSEC OK (RFC 3225).
    pub fn dnssec_ok(&self) -> bool {
        self.ttl & 0x8000 != 0
    }
    /// The options, in order; validated to fill the rdata exactly.
    pub fn options(&self) -> EdnsOptions<'a> {
        EdnsOptions { rest: self.data }
    }
    /// The first Extended DNS Error option (RFC 8914), if any.
    pub fn extended_error(&self) -> Option<ExtendedError<'a>> {
        self.options()
            .find(|o| o.code == EDNS_EDE)
            .and_then(|o| ExtendedError::parse(o.data))
    }
}

/// One EDNS option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EdnsOption<'a> {
    /// OPTION-CODE.
    pub code: u16,
    /// OPTION-DATA.
    pub data: &'a [u8],
}

/// Iterator over the options of an [`Opt`].
#[derive(Clone, Debug)]
pub struct EdnsOptions<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for EdnsOptions<'a> {
    type Item = EdnsOption<'a>;
    fn next(&mut self) -> Option<EdnsOption<'a>> {
        let code = be16(self.rest, 0)?;
        let len = usize::from(be16(self.rest, 2)?);
        let data = self.rest.get(4..4 + len)?;
        self.rest = self.rest.get(4 + len..)?;
        Some(EdnsOption { code, data })
    }
}

/// An Extended DNS Error (RFC 8914): an INFO-CODE and optional UTF-8 EXTRA-TEXT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExtendedError<'a> {
    /// INFO-CODE, for example 3 (Stale Answer), 18 (Prohibited), 22 (No Reachable Authority).
    pub info_code: u16,
    /// EXTRA-TEXT, as sent (not validated as UTF-8).
    pub extra_text: &'a [u8],
}

impl<'a> ExtendedError<'a> {
    fn parse(data: &'a [u8]) -> Option<Self> {
        Some(ExtendedError {
            info_code: be16(data, 0)?,
            extra_text: data.get(2..)?,
        })
    }

    /// The registered meaning of the INFO-CODE (RFC 8914 §4 and the IANA registry).
    pub fn meaning(&self) -> &'static str {
        match self.info_code {
            0 => "Other Error",
            1 => "Unsupported DNSKEY Algorithm",
            2 => "Unsupported DS Digest Type",
            3 => "Stale Answer",
            4 => "Forged Answer",
            5 => "DNSSEC Indeterminate",
            6 => "DNSSEC Bogus",
            7 => "Signature Expired",
            8 => "Signature Not Yet Valid",
            9 => "DNSKEY Missing",
            10 => "RRSIGs Missing",
            11 => "No Zone Key Bit Set",
            12 => "NSEC Missing",
            13 => "Cached Error",
            14 => "Not Ready",
            15 => "Blocked",
            16 => "Censored",
            17 => "Filtered",
            18 => "Prohibited",
            19 => "Stale NXDOMAIN Answer",
            20 => "Not Authoritative",
            21 => "Not Supported",
            22 => "No Reachable Authority",
            23 => "Network Error",
            24 => "Invalid Data",
            25 => "Signature Expired before Valid",
            26 => "Too Early",
            27 => "Unsupported NSEC3 Iterations Value",
            28 => "Unable to conform to policy",
            29 => "Synthesized",
            30 => "Invalid Query Type",
            _ => "Unassigned",
        }
    }
}

/// Reads typed data inside `msg[at..at + len]`, which the caller has bounds-checked.
struct Cursor<'a> {
    msg: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Cursor<'a> {
    #[inline]
    fn u16(&mut self) -> Result<u16, Error> {
        if self.pos + 2 > self.end {
            return Err(Error::RdataTooShort);
        }
        let v = be16(self.msg, self.pos).ok_or(Error::RdataTooShort)?;
        self.pos += 2;
        Ok(v)
    }
    #[inline]
    fn name(&mut self) -> Result<Name<'a>, Error> {
        let (name, next) = Name::read_uncached(self.msg, self.pos).map_err(|e| match e {
            Error::Truncated => Error::RdataTooShort,
            e => e,
        })?;
        if next > self.end {
            return Err(Error::RdataTooShort);
        }
        self.pos = next;
        Ok(name)
    }
    #[inline]
    fn finish<T>(&self, value: T) -> Result<T, Error> {
        if self.pos == self.end {
            Ok(value)
        } else {
            Err(Error::RdataTrailing)
        }
    }
}

/// Checks that `data` is a sequence of length-prefixed units filling it exactly: TXT
/// character strings (`<u8 len><octets>`) or, when `wide`, EDNS options
/// (`<u16 code><u16 len><octets>`).
fn check_sequence(data: &[u8], wide: bool) -> Result<(), Error> {
    let mut rest = data;
    while !rest.is_empty() {
        let (skip, len) = if wide {
            (4, be16(rest, 2).ok_or(Error::RdataTooShort)?)
        } else {
            (1, u16::from(rest.first().copied().unwrap_or(0)))
        };
        rest = rest
            .get(skip + usize::from(len)..)
            .ok_or(Error::RdataTooShort)?;
    }
    Ok(())
}

impl<'a> RData<'a> {
    /// OPT rdata (`data`: exactly RDLENGTH octets): the options must fill it exactly.
    #[inline(never)]
    pub(crate) fn opt(data: &'a [u8], class: Class, ttl: u32) -> Result<RData<'a>, Error> {
        check_sequence(data, true)?;
        Ok(RData::Opt(Opt {
            class: class.0,
            ttl,
            data,
        }))
    }

    #[inline]
    pub(crate) fn parse(
        msg: &'a [u8],
        rtype: Rtype,
        class: Class,
        ttl: u32,
        at: usize,
        len: usize,
    ) -> Result<RData<'a>, Error> {
        let data = msg.get(at..at + len).ok_or(Error::RdataOverrun)?;
        let mut c = Cursor {
            msg,
            pos: at,
            end: at + len,
        };
        match rtype {
            Rtype::A => match <[u8; 4]>::try_from(data) {
                Ok(a) => Ok(RData::A(Ipv4Addr::from(a))),
                Err(_) => Err(size_error(len, 4)),
            },
            Rtype::AAAA => match <[u8; 16]>::try_from(data) {
                Ok(a) => Ok(RData::Aaaa(Ipv6Addr::from(a))),
                Err(_) => Err(size_error(len, 16)),
            },
            Rtype::CNAME => {
                let n = c.name()?;
                c.finish(RData::Cname(n))
            }
            Rtype::NS => {
                let n = c.name()?;
                c.finish(RData::Ns(n))
            }
            Rtype::PTR => {
                let n = c.name()?;
                c.finish(RData::Ptr(n))
            }
            Rtype::MX => {
                let preference = c.u16()?;
                let exchange = c.name()?;
                c.finish(RData::Mx(Mx {
                    preference,
                    exchange,
                }))
            }
            Rtype::SRV => {
                let priority = c.u16()?;
                let weight = c.u16()?;
                let port = c.u16()?;
                let target = c.name()?;
                c.finish(RData::Srv(Srv {
                    priority,
                    weight,
                    port,
                    target,
                }))
            }
            Rtype::SOA => {
                let mname = c.name()?;
                let rname = c.name()?;
                // The five numbers fill the rest: one bounds check for the 20 octets.
                let rest = msg.get(c.pos..c.end).unwrap_or_default();
                let Some(n) = rest.first_chunk::<20>() else {
                    return Err(Error::RdataTooShort);
                };
                if rest.len() > 20 {
                    return Err(Error::RdataTrailing);
                }
                let num = |i: usize| match n.get(i..i + 4) {
                    Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
                    _ => 0,
                };
                Ok(RData::Soa(Soa {
                    mname,
                    rname,
                    serial: num(0),
                    refresh: num(4),
                    retry: num(8),
                    expire: num(12),
                    minimum: num(16),
                }))
            }
            Rtype::TXT => {
                // RFC 1035 §3.3.14: one or more character strings.
                if data.is_empty() {
                    return Err(Error::RdataTooShort);
                }
                check_sequence(data, false)?;
                Ok(RData::Txt(Txt { data }))
            }
            Rtype::OPT => Self::opt(data, class, ttl),
            _ => Ok(RData::Unknown(data)),
        }
    }
}

fn size_error(have: usize, want: usize) -> Error {
    if have < want {
        Error::RdataTooShort
    } else {
        Error::RdataTrailing
    }
}
