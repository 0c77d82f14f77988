//! Outstanding queries of one connection or stream, matched to answers by id.
//!
//! DNS over TCP may pipeline many queries on one connection and answers may come back
//! out of order (RFC 7766 §6.2.1.1), so answers are matched by message id (then checked
//! against the question). The table is bounded: when it is full the oldest query is
//! evicted and reported, so a client that never reads answers cannot grow it.

use dnswarden_core::wire::QueryKey;

/// A query waiting for its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outstanding {
    /// Id, opcode and question of the query.
    pub key: QueryKey,
    /// When it was seen, in microseconds.
    pub sent_us: u64,
}

/// Bounded table of outstanding queries.
#[derive(Debug, Clone)]
pub struct Pending {
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

    /// Records a query. Returns the oldest query if it had to be evicted.
    pub fn insert(&mut self, key: QueryKey, sent_us: u64) -> Option<Outstanding> {
        let evicted = if self.entries.len() >= self.capacity {
            Some(self.entries.remove(0))
        } else {
            None
        };
        self.entries.push(Outstanding { key, sent_us });
        evicted
    }

    /// Removes and returns the oldest query with this id.
    pub fn take(&mut self, id: u16) -> Option<Outstanding> {
        let at = self.entries.iter().position(|e| e.key.id == id)?;
        Some(self.entries.remove(at))
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
    use dnswarden_core::wire::{Class, Opcode, Rtype};

    fn key(id: u16) -> QueryKey {
        QueryKey {
            id,
            opcode: Opcode(0),
            qname: 7,
            qtype: Rtype::A,
            qclass: Class::IN,
        }
    }

    #[test]
    fn matches_out_of_order() {
        let mut p = Pending::new(8);
        assert!(p.insert(key(1), 10).is_none());
        assert!(p.insert(key(2), 20).is_none());
        assert_eq!(p.take(2).map(|e| e.sent_us), Some(20));
        assert_eq!(p.take(2), None);
        assert_eq!(p.take(1).map(|e| e.sent_us), Some(10));
        assert!(p.is_empty());
    }

    #[test]
    fn duplicate_ids_are_fifo() {
        let mut p = Pending::new(8);
        p.insert(key(5), 1);
        p.insert(key(5), 2);
        assert_eq!(p.take(5).map(|e| e.sent_us), Some(1));
        assert_eq!(p.take(5).map(|e| e.sent_us), Some(2));
    }

    #[test]
    fn bounded_and_expiring() {
        let mut p = Pending::new(2);
        p.insert(key(1), 0);
        p.insert(key(2), 100);
        assert_eq!(p.insert(key(3), 200).map(|e| e.key.id), Some(1));
        assert_eq!(p.len(), 2);
        assert_eq!(p.expire(1_150, 1_000), 1);
        assert_eq!(p.take(3).map(|e| e.sent_us), Some(200));
        p.insert(key(4), 0);
        assert_eq!(p.clear(), 1);
        assert_eq!(Pending::new(0).capacity, 1);
    }
}
