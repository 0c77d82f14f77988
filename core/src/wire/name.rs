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

/// What is known about a validated name that starts at some offset of a message.
#[derive(Clone, Copy, Debug, Default)]
struct Known {
    /// Offset of the first octet.
    start: u16,
    /// Uncompressed length including the root label.
    len: u8,
    labels: u8,
    hops: u8,
}

/// A small memory of name suffixes already validated in one message, keyed by offset.
///
/// Compression pointers point at the start of a name read earlier *or at any label
/// inside it* (the suffix `cluster.local` of the question name, say). Every label start
/// walked while validating a name is the start of a valid suffix, so each is remembered
/// with the suffix's length, label count and pointer hops. A pointer landing on a
/// remembered offset is then resolved in O(1) instead of walking the suffix again.
///
/// Direct-mapped by offset, first come first kept: the question's suffixes, where most
/// pointers land, are never evicted by later names. Each slot is one `u32` (the offset's
/// high bits, length, labels, hops; 0 = empty), so the cache is 64 octets, cheap to
/// clear per message and to move with its iterator. No allocation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NameCache {
    slots: [u32; CACHE_SLOTS],
}

impl Default for NameCache {
    #[inline]
    fn default() -> Self {
        NameCache {
            slots: [0; CACHE_SLOTS],
        }
    }
}

const CACHE_SLOTS: usize = 16;
/// Label starts remembered per name read (the first ones; the rest are just walked).
const MEMO_LABELS: usize = 6;

// Slot layout: offset / CACHE_SLOTS (10 bits: pointers reach offsets < 0x4000), length
// (8 bits, never 0 for a name), labels (7 bits: at most 127), hops (5 bits: at most 16).
const LEN_SHIFT: u32 = 10;
const LABELS_SHIFT: u32 = LEN_SHIFT + 8;
const HOPS_SHIFT: u32 = LABELS_SHIFT + 7;

impl NameCache {
    #[inline]
    fn get(&self, start: usize) -> Option<Known> {
        let slot = *self.slots.get(start % CACHE_SLOTS)?;
        let key = (start / CACHE_SLOTS) as u32;
        (slot & ((1 << LEN_SHIFT) - 1) == key && slot >> LEN_SHIFT != 0).then_some(Known {
            start: start as u16,
            len: (slot >> LEN_SHIFT) as u8,
            labels: ((slot >> LABELS_SHIFT) & 0x7F) as u8,
            hops: (slot >> HOPS_SHIFT) as u8,
        })
    }

    #[inline]
    fn put(&mut self, known: Known) {
        let start = usize::from(known.start);
        // The callers pass label starts a pointer can reach (< 0x4000) of validated names
        // (at most 127 labels and 16 hops), so every field fits its bits.
        if let Some(slot) = self.slots.get_mut(start % CACHE_SLOTS)
            && *slot == 0
        {
            *slot = (start / CACHE_SLOTS) as u32
                | u32::from(known.len) << LEN_SHIFT
                | u32::from(known.labels) << LABELS_SHIFT
                | u32::from(known.hops) << HOPS_SHIFT;
        }
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
    /// the first octet after it in place (after the first pointer, if any).
    #[inline]
    pub(crate) fn read(
        msg: &'a [u8],
        start: usize,
        cache: &mut NameCache,
    ) -> Result<(Name<'a>, usize), Error> {
        // Fast path: a name that is just a pointer to a suffix validated before (an owner
        // name `c0 0c`, typically) is resolved from the cache without the general walk.
        if let Some(&[hi, lo]) = msg.get(start..).and_then(|r| r.first_chunk::<2>())
            && hi & 0xC0 == 0xC0
            && let target = usize::from(hi & 0x3F) << 8 | usize::from(lo)
            && target < start
            && let Some(k) = cache.get(target)
            && k.hops < MAX_POINTER_HOPS
        {
            let start16 = u16::try_from(start).map_err(|_| Error::MessageTooLong)?;
            let name = Name {
                msg,
                start: start16,
                len: k.len,
                labels: k.labels,
            };
            return Ok((name, start + 2));
        }
        Self::read_slow::<MEMO_LABELS>(msg, start, Some(cache))
    }

    /// The general walk. With a cache, pointers landing on a remembered suffix stop the
    /// walk, and the first `MEMO` label starts walked are remembered; without one (names
    /// in rdata), nothing is looked up or remembered.
    fn read_slow<const MEMO: usize>(
        msg: &'a [u8],
        start: usize,
        mut cache: Option<&mut NameCache>,
    ) -> Result<(Name<'a>, usize), Error> {
        let mut pos = start;
        // Start of the run of labels being walked: pointers must land strictly before it.
        let mut run_start = start;
        let mut len: usize = 0; // octets of the labels so far, length octets included
        let mut labels: u8 = 0;
        let mut hops: u8 = 0;
        let mut end: Option<usize> = None;
        // (offset, octets before, labels before, hops before) of the first label starts.
        let mut memo = [(0u16, 0u8, 0u8, 0u8); MEMO];
        let mut memo_len = 0;
        let (total, labels, hops) = loop {
            let Some(&b) = msg.get(pos) else {
                return Err(Error::Truncated);
            };
            match b & 0xC0 {
                0x00 if b == 0 => break (len + 1, labels, hops),
                0x00 => {
                    // Remember where this suffix starts (its length, labels and
                    // hops are filled in once the whole name is known).
                    if pos != 0
                        && pos <= 0x3FFF
                        && let Some(m) = memo.get_mut(memo_len)
                    {
                        *m = (pos as u16, len as u8, labels, hops);
                        memo_len += 1;
                    }
                    len += 1 + usize::from(b);
                    if len + 1 > MAX_NAME_LEN {
                        return Err(Error::NameTooLong);
                    }
                    labels += 1;
                    pos += 1 + usize::from(b);
                }
                0xC0 => {
                    let Some(&lo) = msg.get(pos + 1) else {
                        return Err(Error::Truncated);
                    };
                    if end.is_none() {
                        end = Some(pos + 2);
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
                    if let Some(k) = cache.as_deref().and_then(|c| c.get(target)) {
                        let total = len + usize::from(k.len);
                        if total > MAX_NAME_LEN {
                            return Err(Error::NameTooLong);
                        }
                        let hops = hops.saturating_add(k.hops);
                        if hops > MAX_POINTER_HOPS {
                            return Err(Error::TooManyPointers);
                        }
                        break (total, labels.saturating_add(k.labels), hops);
                    }
                    run_start = target;
                    pos = target;
                }
                // 0b01 (extended label types, RFC 6891 §5) and 0b10 are reserved.
                _ => return Err(Error::ReservedLabelType),
            }
        };
        let end = end.unwrap_or(pos + 1);
        // Both fit: start < msg.len() <= 65535 and total <= 255 were checked above.
        let start16 = u16::try_from(start).map_err(|_| Error::MessageTooLong)?;
        let len8 = u8::try_from(total).map_err(|_| Error::NameTooLong)?;
        for &(at, len_before, labels_before, hops_before) in memo.iter().take(memo_len) {
            let Some(cache) = cache.as_deref_mut() else {
                break;
            };
            cache.put(Known {
                start: at,
                len: len8 - len_before,
                labels: labels - labels_before,
                hops: hops - hops_before,
            });
        }
        Ok((
            Name {
                msg,
                start: start16,
                len: len8,
                labels,
            },
            end,
        ))
    }

    /// The message this name lives in.
    #[inline]
    pub(crate) fn message(&self) -> &'a [u8] {
        self.msg
    }

    /// Reads a name without a cache (used for names inside rdata).
    pub(crate) fn read_uncached(msg: &'a [u8], start: usize) -> Result<(Name<'a>, usize), Error> {
        Name::read_slow::<0>(msg, start, None)
    }

    /// The labels from the leftmost to the last before the root, each without its length
    /// octet. The root name has none.
    #[inline]
    pub fn labels(&self) -> Labels<'a> {
        Labels {
            msg: self.msg,
            pos: usize::from(self.start),
            left: self.labels,
            hops_left: MAX_POINTER_HOPS,
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
    hops_left: u8,
}

impl<'a> Iterator for Labels<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        // The name was validated when read, so the `?`s below never fire; they keep the
        // walk panic-free and bounded even so.
        if self.left == 0 {
            return None;
        }
        loop {
            let b = *self.msg.get(self.pos)?;
            if b & 0xC0 == 0xC0 {
                self.hops_left = self.hops_left.checked_sub(1)?;
                let lo = *self.msg.get(self.pos + 1)?;
                self.pos = usize::from(b & 0x3F) << 8 | usize::from(lo);
                continue;
            }
            let end = self.pos + 1 + usize::from(b);
            let label = self.msg.get(self.pos + 1..end)?;
            self.pos = end;
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
