//! Errors of the wire layer: one flat, `Copy` enum, one variant per guard.

use core::fmt;

/// Why a message, name, record or query could not be read or written.
///
/// Every guard the parser applies to untrusted bytes has its own variant, so a caller can
/// count them as distinct signals ([`Error::kind`] gives a bounded metric label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Error {
    /// The message is shorter than the 12-octet header (RFC 1035 §4.1.1).
    ShortHeader,
    /// The message is longer than 65535 octets, which no DNS transport can carry.
    MessageTooLong,
    /// The header counts promise more questions and records than the message has room for
    /// (a question needs at least 5 octets, a record at least 11).
    CountsTooLarge,
    /// A section ends before its count is satisfied: a name, question or record header
    /// runs past the end of the message.
    Truncated,
    /// A record's RDLENGTH reaches past the end of the message.
    RdataOverrun,
    /// A record's rdata is shorter than its type requires (for example an A record with
    /// fewer than 4 octets, or a name in rdata that runs past RDLENGTH).
    RdataTooShort,
    /// A record's typed rdata parse leaves octets over inside RDLENGTH.
    RdataTrailing,
    /// A compression pointer does not point strictly before the start of the label run it
    /// appears in (RFC 1035 §4.1.4 only allows pointers to a *prior* occurrence); such a
    /// pointer is how decompression loops are built.
    PointerNotBackwards,
    /// A name follows more compression pointers than [`MAX_POINTER_HOPS`](super::MAX_POINTER_HOPS).
    TooManyPointers,
    /// A name is longer than 255 octets after decompression (RFC 1035 §3.1).
    NameTooLong,
    /// A label is longer than 63 octets (RFC 1035 §2.3.4). On the wire a length octet
    /// above 63 is a reserved label type instead; this variant comes from text input.
    LabelTooLong,
    /// A label type 0b01 (extended, RFC 6891 §5 deprecates them) or 0b10 (reserved).
    ReservedLabelType,
    /// A dotted name with an empty label, such as `a..b` or `.a`.
    EmptyLabel,
    /// A dotted name with a backslash escape; the builder takes plain names only.
    UnsupportedEscape,
    /// Octets follow the last record that the header counts describe. The records before
    /// them stay readable; this is reported so that it can be counted as a signal.
    TrailingBytes,
    /// The caller's output buffer is too small for what is being written.
    BufferTooSmall,
}

impl Error {
    /// A short, stable, snake_case identifier, suitable as a bounded metric label.
    pub const fn kind(self) -> &'static str {
        match self {
            Error::ShortHeader => "short_header",
            Error::MessageTooLong => "message_too_long",
            Error::CountsTooLarge => "counts_too_large",
            Error::Truncated => "truncated",
            Error::RdataOverrun => "rdata_overrun",
            Error::RdataTooShort => "rdata_too_short",
            Error::RdataTrailing => "rdata_trailing",
            Error::PointerNotBackwards => "pointer_not_backwards",
            Error::TooManyPointers => "too_many_pointers",
            Error::NameTooLong => "name_too_long",
            Error::LabelTooLong => "label_too_long",
            Error::ReservedLabelType => "reserved_label_type",
            Error::EmptyLabel => "empty_label",
            Error::UnsupportedEscape => "unsupported_escape",
            Error::TrailingBytes => "trailing_bytes",
            Error::BufferTooSmall => "buffer_too_small",
        }
    }

    /// A one-line human description.
    pub const fn description(self) -> &'static str {
        match self {
            Error::ShortHeader => "message shorter than the 12-octet header",
            Error::MessageTooLong => "message longer than 65535 octets",
            Error::CountsTooLarge => "header counts larger than the message can hold",
            Error::Truncated => "section ends before its count is satisfied",
            Error::RdataOverrun => "RDLENGTH reaches past the end of the message",
            Error::RdataTooShort => "rdata shorter than its type requires",
            Error::RdataTrailing => "octets left over after the typed rdata",
            Error::PointerNotBackwards => "compression pointer does not point strictly backwards",
            Error::TooManyPointers => "too many compression pointers in one name",
            Error::NameTooLong => "name longer than 255 octets",
            Error::LabelTooLong => "label longer than 63 octets",
            Error::ReservedLabelType => "reserved label type (0x40 or 0x80)",
            Error::EmptyLabel => "empty label in a dotted name",
            Error::UnsupportedEscape => "backslash escapes are not supported in names",
            Error::TrailingBytes => "octets after the last record",
            Error::BufferTooSmall => "output buffer too small",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.description())
    }
}

impl core::error::Error for Error {}
