//! Open newtypes for IANA code points: unknown values are carried, not rejected.

use core::fmt;

macro_rules! code_type {
    (
        $(#[$meta:meta])*
        $name:ident($int:ty, $prefix:expr) { $( $(#[$cmeta:meta])* $konst:ident = $val:expr, $text:expr; )* }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub $int);

        impl $name {
            $( $(#[$cmeta])* pub const $konst: $name = $name($val); )*

            /// The registered mnemonic, or `None` for a value this crate has no name for.
            pub const fn mnemonic(self) -> Option<&'static str> {
                match self.0 {
                    $( $val => Some($text), )*
                    _ => None,
                }
            }
        }

        impl From<$int> for $name {
            fn from(v: $int) -> Self { $name(v) }
        }

        impl From<$name> for $int {
            fn from(v: $name) -> Self { v.0 }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.mnemonic() {
                    Some(m) => f.write_str(m),
                    None => write!(f, "{}{}", $prefix, self.0),
                }
            }
        }
    };
}

code_type! {
    /// A resource record TYPE ([IANA registry](https://www.iana.org/assignments/dns-parameters/dns-parameters.xhtml#dns-parameters-4)).
    Rtype(u16, "TYPE") {
        /// IPv4 address, RFC 1035.
        A = 1, "A";
        /// Authoritative name server, RFC 1035.
        NS = 2, "NS";
        /// Canonical name, RFC 1035.
        CNAME = 5, "CNAME";
        /// Start of authority, RFC 1035.
        SOA = 6, "SOA";
        /// Domain name pointer, RFC 1035.
        PTR = 12, "PTR";
        /// Mail exchange, RFC 1035.
        MX = 15, "MX";
        /// Text strings, RFC 1035.
        TXT = 16, "TXT";
        /// IPv6 address, RFC 3596.
        AAAA = 28, "AAAA";
        /// Service location, RFC 2782.
        SRV = 33, "SRV";
        /// EDNS(0) pseudo-record, RFC 6891.
        OPT = 41, "OPT";
        /// Service binding, RFC 9460.
        SVCB = 64, "SVCB";
        /// HTTPS service binding, RFC 9460.
        HTTPS = 65, "HTTPS";
        /// Any type (query only), RFC 1035 / RFC 8482.
        ANY = 255, "ANY";
    }
}

code_type! {
    /// A record CLASS (RFC 1035 §3.2.4).
    Class(u16, "CLASS") {
        /// The Internet.
        IN = 1, "IN";
        /// Chaos.
        CH = 3, "CH";
        /// Hesiod.
        HS = 4, "HS";
        /// NONE, RFC 2136.
        NONE = 254, "NONE";
        /// Any class (query only).
        ANY = 255, "ANY";
    }
}

code_type! {
    /// A response code: the 4 header bits, extended to 12 bits by the OPT record
    /// (RFC 6891 §6.1.3).
    Rcode(u16, "RCODE") {
        /// No error.
        NOERROR = 0, "NOERROR";
        /// Format error.
        FORMERR = 1, "FORMERR";
        /// Server failure.
        SERVFAIL = 2, "SERVFAIL";
        /// Non-existent domain.
        NXDOMAIN = 3, "NXDOMAIN";
        /// Not implemented.
        NOTIMP = 4, "NOTIMP";
        /// Query refused.
        REFUSED = 5, "REFUSED";
        /// Name exists when it should not, RFC 2136.
        YXDOMAIN = 6, "YXDOMAIN";
        /// RR set exists when it should not, RFC 2136.
        YXRRSET = 7, "YXRRSET";
        /// RR set that should exist does not, RFC 2136.
        NXRRSET = 8, "NXRRSET";
        /// Server not authoritative / not authorized.
        NOTAUTH = 9, "NOTAUTH";
        /// Name not contained in zone, RFC 2136.
        NOTZONE = 10, "NOTZONE";
        /// Bad OPT version, RFC 6891.
        BADVERS = 16, "BADVERS";
        /// Bad or missing server cookie, RFC 7873.
        BADCOOKIE = 23, "BADCOOKIE";
    }
}

code_type! {
    /// A header OPCODE (RFC 1035 §4.1.1).
    Opcode(u8, "OPCODE") {
        /// Standard query.
        QUERY = 0, "QUERY";
        /// Inverse query (obsolete).
        IQUERY = 1, "IQUERY";
        /// Server status request.
        STATUS = 2, "STATUS";
        /// Zone change notification, RFC 1996.
        NOTIFY = 4, "NOTIFY";
        /// Dynamic update, RFC 2136.
        UPDATE = 5, "UPDATE";
    }
}

/// The sections of a message that hold records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Section {
    /// The answer section.
    Answer,
    /// The authority section.
    Authority,
    /// The additional section.
    Additional,
}

impl Section {
    pub(crate) const ALL: [Section; 3] = [Section::Answer, Section::Authority, Section::Additional];
}
