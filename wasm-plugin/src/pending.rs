//! Outstanding queries of one connection or stream, matched to answers by id.
//!
//! DNS over TCP may pipeline many queries on one connection and answers may come back
//! out of order (RFC 7766 §6.2.1.1), so answers are matched by message id (then checked
//! against the question). The table is bounded: when it is full the oldest query is
//! evicted and reported, so a client that never reads answers cannot grow it.
//!
//! Each entry keeps the query's question octets (what
//! [`dnswarden_core::wire::check_and_summarize`] compares the answer's question with),
//! in a small block of the module's own allocator (`src/heap.rs`: a free-list pop). Not
//! inline: entries stay small, so removing an answered one from a table of many
//! pipelined queries moves little (inline, 259 octets each, the pipelined wasm bench was
//! 1.12x slower).

use dnswarden_core::wire::{Asked, MAX_QUESTION_LEN, Opcode};

/// A query waiting for its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outstanding {
    /// The query id.
    pub id: u16,
    /// The query's OPCODE.
    pub opcode: Opcode,
    /// The question octets (name uncompressed, QTYPE, QCLASS), at most
    /// [`MAX_QUESTION_LEN`].
    question: Box<[u8]>,
    /// When it was seen, in microseconds.
    pub sent_us: u64,
}

impl Outstanding {
    /// A query from its parts; `question` is what [`Asked::new`] takes (longer than
    /// [`MAX_QUESTION_LEN`]: kept empty, so it never makes an `Asked`).
    #[must_use]
    pub fn new(id: u16, opcode: Opcode, question: &[u8], sent_us: u64) -> Self {
        let question = if question.len() <= MAX_QUESTION_LEN {
            question.into()
        } else {
            Box::default()
        };
        Self {
            id,
            opcode,
            question,
            sent_us,
        }
    }

    /// The query as [`dnswarden_core::wire::check_and_summarize`] takes it (`None` only
    /// if the question octets were not valid when inserted).
    #[must_use]
    pub fn asked(&self) -> Option<Asked<'_>> {
        Asked::new(self.id, self.opcode, &self.question)
    }
}

/// Bounded table of outstanding queries.
#[derive(Debug, Clone)]
pub struct Pending {
    /// Oldest first.
    entries: Vec<Outstanding>,
    capacity: usize,
}

impl Pending {
    /// An empty table holding at most `capacity` queries (at least 1).
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Vec::new(),
            capacity: capacity.max(1),
        }
    }

    /// Number of outstanding queries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No outstanding query.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Records a query. Returns whether the oldest query had to be evicted.
    pub fn insert(&mut self, id: u16, opcode: Opcode, question: &[u8], sent_us: u64) -> bool {
        let evicted = self.entries.len() >= self.capacity;
        if evicted {
            self.entries.remove(0);
        }
        self.entries
            .push(Outstanding::new(id, opcode, question, sent_us));
        evicted
    }

    /// Hands the oldest query with this id to `f`, which says whether the message
    /// answered it (`true`: it is removed; `false`, e.g. unparseable octets: it stays);
    /// `None` when no query has this id.
    pub fn answer<R>(&mut self, id: u16, f: impl FnOnce(&Outstanding) -> (R, bool)) -> Option<R> {
        let at = self.entries.iter().position(|e| e.id == id)?;
        let (r, answered) = f(self.entries.get(at)?);
        if answered {
            self.entries.remove(at);
        }
        Some(r)
    }

    /// Removes queries older than `timeout_us` at `now_us`; returns how many.
    pub fn expire(&mut self, now_us: u64, timeout_us: u64) -> usize {
        let before = self.entries.len();
        self.entries
            .retain(|e| now_us.saturating_sub(e.sent_us) < timeout_us);
        before - self.entries.len()
    }

    /// Removes every query (the connection closed); returns how many.
    pub fn clear(&mut self) -> usize {
        let n = self.entries.len();
        self.entries.clear();
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: &[u8] = &[1, b'a', 0, 0, 1, 0, 1];

    fn insert(p: &mut Pending, id: u16, at: u64) -> bool {
        p.insert(id, Opcode(0), Q, at)
    }

    fn take(p: &mut Pending, id: u16) -> Option<u64> {
        p.answer(id, |e| (e.sent_us, true))
    }

    #[test]
    fn matches_out_of_order() {
        let mut p = Pending::new(8);
        assert!(!insert(&mut p, 1, 10));
        assert!(!insert(&mut p, 2, 20));
        assert_eq!(take(&mut p, 2), Some(20));
        assert_eq!(take(&mut p, 2), None);
        assert_eq!(take(&mut p, 1), Some(10));
        assert!(p.is_empty());
    }

    #[test]
    fn a_query_not_answered_stays() {
        let mut p = Pending::new(8);
        insert(&mut p, 7, 10);
        assert_eq!(p.answer(7, |e| (e.sent_us, false)), Some(10));
        assert_eq!(p.len(), 1);
        assert_eq!(take(&mut p, 7), Some(10));
        assert!(p.is_empty());
    }

    #[test]
    fn duplicate_ids_are_fifo() {
        let mut p = Pending::new(8);
        insert(&mut p, 5, 1);
        insert(&mut p, 5, 2);
        assert_eq!(take(&mut p, 5), Some(1));
        assert_eq!(take(&mut p, 5), Some(2));
    }

    #[test]
    fn bounded_and_expiring() {
        let mut p = Pending::new(2);
        insert(&mut p, 1, 0);
        insert(&mut p, 2, 100);
        assert!(insert(&mut p, 3, 200), "the oldest is evicted");
        assert_eq!(take(&mut p, 1), None);
        assert_eq!(p.len(), 2);
        assert_eq!(p.expire(1_150, 1_000), 1);
        assert_eq!(take(&mut p, 3), Some(200));
        insert(&mut p, 4, 0);
        assert_eq!(p.clear(), 1);
        assert_eq!(Pending::new(0).capacity, 1);
    }

    #[test]
    fn keeps_the_question() {
        let mut p = Pending::new(4);
        insert(&mut p, 1, 0);
        let asked = p.answer(1, |e| {
            (e.asked().map(|a| (a.id(), a.question().to_vec())), true)
        });
        assert_eq!(asked, Some(Some((1, Q.to_vec()))));
        p.insert(2, Opcode(0), &[0, 0, 28, 0, 1], 0);
        assert_eq!(
            p.answer(2, |e| (e.asked().map(|a| a.question().len()), true)),
            Some(Some(5))
        );
        // Invalid question octets never make an `Asked`.
        p.insert(3, Opcode(0), &[0xC0, 12, 0, 1, 0, 1], 0);
        assert_eq!(p.answer(3, |e| (e.asked().is_none(), true)), Some(true));
        // Nor do octets too long to keep.
        p.insert(4, Opcode(0), &[1; MAX_QUESTION_LEN + 1], 0);
        assert_eq!(p.answer(4, |e| (e.asked().is_none(), true)), Some(true));
        // The longest question fits: labels of 63, 63, 63 and 61 octets, the root, QTYPE
        // and QCLASS.
        let mut long = [63u8; MAX_QUESTION_LEN];
        long[192] = 61;
        long[254] = 0;
        p.insert(5, Opcode(0), &long, 0);
        assert_eq!(
            p.answer(5, |e| (e.asked().map(|a| a.question().len()), true)),
            Some(Some(MAX_QUESTION_LEN))
        );
    }
}
