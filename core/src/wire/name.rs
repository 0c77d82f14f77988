//! Domain names as lazy views into a message.
//!
//! A [`Name`] is validated once, when the record or question holding it is read: every
//! label type, every length, every compression pointer and the decompressed length are
//! checked then. After that, walking its labels is infallible and touches the message in
//! place; nothing is copied.

use core::fmt;

use super::Error;

/// The most octets a name may take, uncompressed, including the root label (RFC 1035 §3.1).
pub const MAX_NAME_LEN: usize = 255;
/// The most octets a label may hold (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;
/// The most compression pointers followed while reading one name.
///
/// Every pointer must point strictly before the run of labels it ends, so a chain of
/// pointers always terminates; this bound keeps the work per name small even for
/// adversarial messages. Real compressors need one or two hops.
pub const MAX_POINTER_HOPS: u8 = 16;

/// What is known about a validated name suffix: enough to build a [`Name`] that ends
/// with it without walking it again.
#[derive(Clone, Copy, Debug)]
struct Known {
    /// Uncompressed length including the root label.
    len: u8,
    labels: u8,
    /// Pointers followed from the suffix's start to its end.
    hops: u8,
}

/// Where the labels of the first uncompressed question name start.
///
/// Compression pointers point at the start of a name read earlier *or at any label
/// inside it* (the suffix `cluster.local` of the question name, say), and in a response
/// nearly all of them land in the question name: every owner `c0 0c`, and the suffixes
/// of NS, CNAME, SOA and SRV names. Each label start walked while validating an
/// uncompressed name is the start of a valid suffix whose length and label count follow
/// from the name's, so the offsets of the last eight label starts (kept by the question
/// walk as the octets of a `u64`: one shift and one `or` per label) are all there is to
/// remember; a pointer landing on one is resolved in O(1), the octet found by a
/// word-wide compare telling how many labels follow.
///
/// Most other pointers land on the start of a name in the rdata of an earlier record (an
/// owner pointing at the previous CNAME target, glue owners at NS names, additional
/// records' owners at SRV targets): the last eight rdata names validated by the record
/// iterator are remembered by start offset too, with their hop count so that a pointer to
/// one still counts every hop behind it. 80 octets, no allocation.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct NameMemo {
    /// Offset of the name's first octet.
    start: u16,
    /// Uncompressed length including the root label.
    len: u8,
    labels: u8,
    /// The slot of `recent` that the next remembered name takes.
    next: u8,
    /// Offsets (from `start`) of the name's last eight label starts, the last label in
    /// the low octet; 0 where the name has fewer labels. Remembered only while `len` is
    /// not 0.
    offs: u64,
    /// The last rdata names validated, in a ring (slot 0 first): `start << 32 | hops <<
    /// 16 | len << 8 | labels`; 0 is an empty slot (no name starts at offset 0). Only names
    /// with fewer than [`MAX_POINTER_HOPS`] hops are kept, so one more pointer to them
    /// stays legal.
    recent: [u64; 8],
}

impl NameMemo {
    /// Nothing remembered.
    const EMPTY: NameMemo = NameMemo {
        start: 0,
        len: 0,
        labels: 0,
        offs: 0,
        next: 0,
        recent: [0; 8],
    };

    /// The suffix starting at `target`, if it is a remembered label start or the start
    /// of a recently walked name.
    #[inline]
    fn get(&self, target: usize) -> Option<Known> {
        let off = target.wrapping_sub(usize::from(self.start));
        if off < usize::from(self.len) {
            if off == 0 {
                // The whole name: the usual `c0 0c`.
                return Some(Known {
                    len: self.len,
                    labels: self.labels,
                    hops: 0,
                });
            }
            // The octet of `offs` equal to `off` (a label start is never at offset 0 past
            // the first, so the 0 octets of a short name never match): the lowest octet
            // flagged by the zero-octet test is exact.
            const LOW: u64 = 0x0101_0101_0101_0101;
            const HIGH: u64 = 0x8080_8080_8080_8080;
            let x = self.offs ^ (off as u64).wrapping_mul(LOW);
            let zero = x.wrapping_sub(LOW) & !x & HIGH;
            if zero != 0 {
                return Some(Known {
                    // off < len: a label start inside the name.
                    len: self.len - off as u8,
                    // The octet's index from the low end, plus one.
                    labels: (zero.trailing_zeros() / 8) as u8 + 1,
                    hops: 0,
                });
            }
        }
        if self.recent[0] == 0 {
            return None;
        }
        match self.recent(target) {
            0 => None,
            e => Some(Known {
                len: (e >> 8) as u8,
                labels: e as u8,
                hops: (e >> 16) as u8,
            }),
        }
    }

    /// The slot of `recent` for the name at `target`, or 0. Out of line: inlined, the
    /// walk's loop would load the slots up front.
    #[inline(never)]
    fn recent(&self, target: usize) -> u64 {
        if target == 0 {
            return 0;
        }
        let key = target as u64;
        self.recent
            .iter()
            .find(|&&e| e >> 32 == key)
            .copied()
            .unwrap_or(0)
    }

    /// Remembers a name that the general walk validated at `start` (see `recent`).
    #[inline]
    fn remember(&mut self, start: usize, shape: Shape) {
        // A pointer to the name adds a hop: names at the limit are not remembered.
        if shape.hops >= MAX_POINTER_HOPS {
            return;
        }
        let e = (start as u64) << 32
            | u64::from(shape.hops) << 16
            | u64::from(shape.len) << 8
            | u64::from(shape.labels);
        if let Some(slot) = self.recent.get_mut(usize::from(self.next & 7)) {
            *slot = e;
        }
        self.next = self.next.wrapping_add(1);
    }
}

/// What the walk learned about a valid name: where it ends in place, its uncompressed
/// length and its label count.
#[derive(Clone, Copy)]
struct Shape {
    end: u16,
    len: u8,
    labels: u8,
    hops: u8,
}

impl Shape {
    #[inline(always)]
    fn name(self, msg: &[u8], start: usize) -> (Name<'_>, usize) {
        // `start` < `end` <= 65535: the walk read the name there.
        let name = Name {
            msg,
            start: start as u16,
            len: self.len,
            labels: self.labels,
        };
        (name, usize::from(self.end))
    }
}

/// A domain name inside a DNS message, possibly compressed.
///
/// Guarantees (established when the name was read): every label is 1..=63 octets, the
/// name is at most 255 octets uncompressed, it follows at most [`MAX_POINTER_HOPS`]
/// pointers, and every pointer points strictly backwards. Comparisons are ASCII
/// case-insensitive, as DNS requires (RFC 4343).
#[derive(Clone, Copy)]
pub struct Name<'a> {
    msg: &'a [u8],
    start: u16,
    len: u8,
    labels: u8,
}

impl<'a> Name<'a> {
    /// Reads and validates the name that starts at `start`, returning it and the offset of
    /// the first octet after it in place (after the first pointer, if any). Pointers that
    /// land on a label start or a name remembered in `memo` are resolved without walking
    /// further.
    #[inline(always)]
    pub(crate) fn read(
        msg: &'a [u8],
        start: usize,
        memo: &NameMemo,
    ) -> Result<(Name<'a>, usize), Error> {
        // Fast path: a name that is just a pointer to a remembered suffix (an owner name
        // `c0 0c`, typically) is resolved without the general walk.
        if let Some(&[hi, lo]) = msg.get(start..start + 2)
            && hi & 0xC0 == 0xC0
            && let target = usize::from(hi & 0x3F) << 8 | usize::from(lo)
            && target < start
            && let Some(k) = memo.get(target)
        {
            // One hop more than `k.hops`, which is below MAX_POINTER_HOPS (see `remember`).
            let start16 = u16::try_from(start).map_err(|_| Error::MessageTooLong)?;
            let name = Name {
                msg,
                start: start16,
                len: k.len,
                labels: k.labels,
            };
            return Ok((name, start + 2));
        }
        let shape = Self::walk(msg, start, memo)?;
        Ok(shape.name(msg, start))
    }

    /// Reads a name inside rdata like [`read`](Self::read), without the fast path for a
    /// lone pointer, and remembers it in `memo` for later pointers: returns the name's
    /// shape `(len, labels)` and the offset after it.
    #[inline(always)]
    pub(crate) fn read_rdata(
        msg: &[u8],
        start: usize,
        memo: &mut NameMemo,
    ) -> Result<(u8, u8, usize), Error> {
        let shape = Self::walk(msg, start, memo)?;
        memo.remember(start, shape);
        Ok((shape.len, shape.labels, usize::from(shape.end)))
    }

    /// A name validated earlier (by [`read`](Self::read)) from its parts.
    #[inline]
    pub(crate) fn from_parts(msg: &'a [u8], start: u16, len: u8, labels: u8) -> Name<'a> {
        Name {
            msg,
            start,
            len,
            labels,
        }
    }

    /// Where it starts, its uncompressed length and label count.
    #[inline]
    pub(crate) fn parts(&self) -> (u16, u8, u8) {
        (self.start, self.len, self.labels)
    }

    /// Reads a question name like [`read`](Self::read) and, when `memo` is still empty
    /// and the name is not compressed, remembers where its labels start.
    #[inline]
    pub(crate) fn read_question(
        msg: &'a [u8],
        start: usize,
        memo: &mut NameMemo,
    ) -> Result<(Name<'a>, usize), Error> {
        // Only the first question, and only uncompressed (its suffixes are contiguous).
        if memo.len == 0
            && let (shape, offs) = Self::plain(msg, start)
            && shape != 0
        {
            let [end0, end1, len, labels, ..] = shape.to_le_bytes();
            // `start` < `end` <= 65535.
            let name = Name {
                msg,
                start: start as u16,
                len,
                labels,
            };
            memo.start = name.start;
            memo.len = len;
            memo.labels = labels;
            memo.offs = offs;
            return Ok((name, usize::from(u16::from_le_bytes([end0, end1]))));
        }
        let shape = Self::walk(msg, start, memo)?;
        Ok(shape.name(msg, start))
    }

    /// Reads an uncompressed name (a question, nearly always): returns its shape as `end |
    /// len << 16 | labels << 24` and the offsets of its last eight label starts for the
    /// memo, or 0 for anything else (a pointer, an invalid name: the general walk reads
    /// those and tells why). Lean, with no memo to consult.
    #[inline(never)]
    fn plain(msg: &[u8], start: usize) -> (u64, u64) {
        // As in the general walk: a length octet is read only while the labels before it
        // leave room for the root.
        let window = msg.get(..start + MAX_NAME_LEN).unwrap_or(msg);
        let mut pos = start;
        let mut labels: u64 = 0;
        let mut offs: u64 = 0;
        loop {
            let Some(&b) = window.get(pos) else {
                return (0, 0);
            };
            if b.wrapping_sub(1) >= MAX_LABEL_LEN as u8 {
                if b == 0 {
                    break;
                }
                return (0, 0);
            }
            // Below 255: the window.
            offs = offs << 8 | (pos - start) as u64;
            labels += 1;
            pos += 1 + usize::from(b);
        }
        // The message is at most 65535 octets (`Message::parse`), and the window keeps
        // the name within 255.
        let Ok(end) = u16::try_from(pos + 1) else {
            return (0, 0);
        };
        let len = (pos + 1 - start) as u64;
        (u64::from(end) | len << 16 | labels << 24, offs)
    }

    /// The general walk: validates every label and pointer. Returns the name's shape,
    /// small enough to come back in a register.
    ///
    /// Each run of labels (up to a pointer or the root) is walked inside a window of the
    /// message that ends where the name would pass 255 octets: the one bounds check per
    /// label is the length check too, and which of the two failed is told apart only on
    /// the way out.
    fn walk(msg: &[u8], start: usize, memo: &NameMemo) -> Result<Shape, Error> {
        let mut pos = start;
        // Start of the run of labels being walked: pointers must land strictly before it.
        let mut run_start = start;
        // Octets of the labels of the runs before this one, length octets included; the
        // labels so far are `len + (pos - run_start)`, always below MAX_NAME_LEN here.
        let mut len: usize = 0;
        let mut labels: u8 = 0;
        let mut hops: u8 = 0;
        // The offset after the first pointer; 0 while there is none.
        let mut end: usize = 0;
        let (total, labels) = loop {
            // A length octet at `pos` is read only while the labels before it leave room
            // for the root: `len + (pos - run_start) <= MAX_NAME_LEN - 1`.
            let room = run_start + (MAX_NAME_LEN - len);
            let window = msg.get(..room).unwrap_or(msg);
            let b = loop {
                let Some(&b) = window.get(pos) else {
                    return Err(if len + (pos - run_start) >= MAX_NAME_LEN {
                        Error::NameTooLong
                    } else {
                        Error::Truncated
                    });
                };
                // 1..=63: a label. 0 (the root) and 0x40.. leave the loop.
                if b.wrapping_sub(1) >= MAX_LABEL_LEN as u8 {
                    break b;
                }
                labels += 1;
                pos += 1 + usize::from(b);
            };
            if b == 0 {
                break (len + (pos - run_start) + 1, labels);
            }
            // 0b01 (extended label types, RFC 6891 §5) and 0b10 are reserved.
            if b < 0xC0 {
                return Err(Error::ReservedLabelType);
            }
            let Some(&lo) = msg.get(pos + 1) else {
                return Err(Error::Truncated);
            };
            if end == 0 {
                end = pos + 2;
            }
            let target = usize::from(b & 0x3F) << 8 | usize::from(lo);
            // RFC 1035 §4.1.4: a pointer refers to a *prior* occurrence of a name.
            if target >= run_start {
                return Err(Error::PointerNotBackwards);
            }
            hops += 1;
            if hops > MAX_POINTER_HOPS {
                return Err(Error::TooManyPointers);
            }
            len += pos - run_start;
            if let Some(k) = memo.get(target) {
                let total = len + usize::from(k.len);
                if total > MAX_NAME_LEN {
                    return Err(Error::NameTooLong);
                }
                hops += k.hops;
                if hops > MAX_POINTER_HOPS {
                    return Err(Error::TooManyPointers);
                }
                break (total, labels.saturating_add(k.labels));
            }
            run_start = target;
            pos = target;
        };
        // All fit: the message is at most 65535 octets (checked in `Message::parse`), so
        // an offset inside it fits in 16 bits, and total <= 255 was checked above.
        let end = if end == 0 { pos + 1 } else { end };
        let end = u16::try_from(end).map_err(|_| Error::MessageTooLong)?;
        let len = u8::try_from(total).map_err(|_| Error::NameTooLong)?;
        Ok(Shape {
            end,
            len,
            labels,
            hops,
        })
    }

    /// Reads a name with nothing remembered (used for names inside rdata).
    #[inline(always)]
    pub(crate) fn read_uncached(msg: &'a [u8], start: usize) -> Result<(Name<'a>, usize), Error> {
        let shape = Self::walk(msg, start, &NameMemo::EMPTY)?;
        Ok(shape.name(msg, start))
    }

    /// The labels from the leftmost to the last before the root, each without its length
    /// octet. The root name has none.
    #[inline]
    pub fn labels(&self) -> Labels<'a> {
        Labels {
            msg: self.msg,
            pos: usize::from(self.start),
            left: self.labels,
        }
    }

    /// The number of labels, not counting the root.
    pub fn label_count(&self) -> usize {
        usize::from(self.labels)
    }

    /// The uncompressed wire length, root label included (1 for the root name).
    pub fn wire_len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether this is the root name `.`.
    pub fn is_root(&self) -> bool {
        self.labels == 0
    }

    /// Compares with a dotted name such as `kubernetes.default.svc.cluster.local`, ASCII
    /// case-insensitively. A trailing dot is optional; `""` and `"."` are the root. The
    /// text is taken literally (no escapes).
    pub fn eq_str(&self, dotted: &str) -> bool {
        let text = dotted.strip_suffix('.').unwrap_or(dotted);
        let mut ours = self.labels();
        if text.is_empty() {
            return ours.next().is_none();
        }
        for theirs in text.split('.') {
            match ours.next() {
                Some(l) if l.eq_ignore_ascii_case(theirs.as_bytes()) => {}
                _ => return false,
            }
        }
        ours.next().is_none()
    }

    /// Compares with another name (possibly from another message), ASCII
    /// case-insensitively.
    pub fn eq_name(&self, other: &Name<'_>) -> bool {
        if self.len != other.len || self.labels != other.labels {
            return false;
        }
        self.labels()
            .zip(other.labels())
            .all(|(a, b)| a.eq_ignore_ascii_case(b))
    }

    /// Whether this name equals `suffix` or ends with it (ASCII case-insensitively).
    pub fn ends_with_str(&self, suffix: &str) -> bool {
        let text = suffix.strip_suffix('.').unwrap_or(suffix);
        if text.is_empty() {
            return true;
        }
        let want = text.split('.').count();
        let have = self.label_count();
        if want > have {
            return false;
        }
        self.labels()
            .skip(have - want)
            .zip(text.split('.'))
            .all(|(a, b)| a.eq_ignore_ascii_case(b.as_bytes()))
    }

    /// A 64-bit FNV-1a hash of the lower-cased wire form: equal for names that compare
    /// equal, whatever their case or compression. Not cryptographic.
    pub fn fingerprint(&self) -> u64 {
        let mut h = Fnv::new();
        for label in self.labels() {
            h.label(label);
        }
        h.finish()
    }

    /// Writes the presentation form (`web-0.my-headless.default.svc.cluster.local.`) into
    /// `out` and returns the number of octets written. Dots and backslashes inside labels
    /// are escaped as `\.` and `\\`, other octets outside printable ASCII as `\DDD`
    /// (RFC 1035 §5.1). The root is `.`.
    pub fn write_to(&self, out: &mut [u8]) -> Result<usize, Error> {
        // One escaping rule: the `Display` below, written into the caller's buffer.
        let mut w = super::build::Writer::new(out);
        fmt::write(&mut w, format_args!("{self}")).map_err(|_| Error::BufferTooSmall)?;
        Ok(w.pos())
    }
}

/// FNV-1a over lower-cased labels, shared by [`Name::fingerprint`] and
/// [`fingerprint_str`] so both agree.
struct Fnv(u64);

impl Fnv {
    const fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn byte(&mut self, b: u8) {
        self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    fn label(&mut self, label: &[u8]) {
        // Length octets are part of the hash so that `ab.c` and `a.bc` differ.
        self.byte(label.len() as u8);
        for &c in label {
            self.byte(c.to_ascii_lowercase());
        }
    }
    fn finish(mut self) -> u64 {
        self.byte(0);
        self.0
    }
}

/// The [`Name::fingerprint`] of a dotted name, validated like the query builder validates
/// it (labels 1..=63 octets, at most 255 octets, no escapes).
pub fn fingerprint_str(dotted: &str) -> Result<u64, Error> {
    let mut h = Fnv::new();
    for label in super::build::dotted_labels(dotted)? {
        h.label(label);
    }
    Ok(h.finish())
}

/// Iterator over the labels of a [`Name`].
#[derive(Clone, Debug)]
pub struct Labels<'a> {
    msg: &'a [u8],
    pos: usize,
    left: u8,
}

impl<'a> Iterator for Labels<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        // The name was validated when read, so the `?`s below never fire; they keep the
        // walk panic-free and bounded even so (each label counts down `left`, and a run of
        // pointers only goes backwards).
        if self.left == 0 {
            return None;
        }
        loop {
            let b = *self.msg.get(self.pos)?;
            if b & 0xC0 == 0xC0 {
                let lo = *self.msg.get(self.pos + 1)?;
                let target = usize::from(b & 0x3F) << 8 | usize::from(lo);
                if target >= self.pos {
                    return None;
                }
                self.pos = target;
                continue;
            }
            let label = self.msg.get(self.pos + 1..)?.get(..usize::from(b))?;
            self.pos += 1 + usize::from(b);
            self.left -= 1;
            return Some(label);
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(usize::from(self.left)))
    }
}

impl fmt::Display for Name<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_root() {
            return f.write_str(".");
        }
        for label in self.labels() {
            for &c in label {
                match c {
                    b'.' | b'\\' => write!(f, "\\{}", char::from(c))?,
                    0x21..=0x7E => fmt::Write::write_char(f, char::from(c))?,
                    _ => write!(f, "\\{c:03}")?,
                }
            }
            f.write_str(".")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Name<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Name({self})")
    }
}

impl PartialEq for Name<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.eq_name(other)
    }
}

impl Eq for Name<'_> {}
