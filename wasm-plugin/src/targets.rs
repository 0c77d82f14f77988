//! Which questions get a target slot in the scorer.
//!
//! The core scorer keeps per-target state (round-robin skew of the first answer, answer-set
//! drift against an expected set) in a fixed number of slots. The filter sees whatever
//! names the clients ask for, so it decides here which questions (name + type) are worth a
//! slot, and hands the scorer small slot keys (`1..=capacity`) so that it never has to
//! evict on its own.
//!
//! Policy, chosen so that a stream of many different names cannot thrash the table:
//!
//! * configured names (expected answers) are pinned and never evicted;
//! * a question takes a free slot on first sight;
//! * when the table is full, a question is admitted only by evicting the least recently
//!   seen unpinned entry, and only if that entry has been idle for at least `idle_us`:
//!   the names in use keep their slots and statistics however many other names pass by
//!   (first come, first tracked, until they go quiet).
//!
//! Questions without a slot are still scored per server; they only lack the per-target
//! detectors.

/// The key of one question: its name fingerprint mixed with its type.
#[must_use]
pub fn question_key(qname_fingerprint: u64, qtype: u16) -> u64 {
    let k = qname_fingerprint ^ u64::from(qtype).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    // 0 marks a free entry.
    if k == 0 { 1 } else { k }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    key: u64,
    last_us: u64,
    pinned: bool,
}

/// A slot handed out by [`Targets::lookup`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Target key for the scorer, `1..=capacity`.
    pub target: u32,
    /// The slot was just (re)assigned to this question: anything the scorer knows under
    /// `target` belongs to the previous question and must be forgotten first.
    pub fresh: bool,
}

/// Bounded question -> target-slot table.
#[derive(Debug, Clone)]
pub struct Targets {
    entries: Vec<Entry>,
    capacity: usize,
    idle_us: u64,
}

impl Targets {
    /// A table of `capacity` slots (at least 1); unpinned entries idle for `idle_us` may
    /// be replaced.
    #[must_use]
    pub fn new(capacity: usize, idle_us: u64) -> Self {
        Self {
            entries: Vec::new(),
            capacity: capacity.max(1),
            idle_us,
        }
    }

    /// Number of slots in use.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No slot in use.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn target(i: usize) -> u32 {
        u32::try_from(i + 1).unwrap_or(u32::MAX)
    }

    /// Pins `key` (a configured name): a slot that is never evicted. `None` when every
    /// slot is already pinned.
    pub fn pin(&mut self, key: u64, now_us: u64) -> Option<Slot> {
        self.admit(key, now_us, true)
    }

    /// The slot this question already has, if any (never admits).
    pub fn find(&mut self, key: u64, now_us: u64) -> Option<Slot> {
        let i = self.entries.iter().position(|e| e.key == key)?;
        if let Some(e) = self.entries.get_mut(i) {
            e.last_us = now_us;
        }
        Some(Slot {
            target: Self::target(i),
            fresh: false,
        })
    }

    /// The slot of this question, admitting it under the policy above; `None` when it
    /// stays untracked.
    pub fn lookup(&mut self, key: u64, now_us: u64) -> Option<Slot> {
        self.admit(key, now_us, false)
    }

    fn admit(&mut self, key: u64, now_us: u64, force: bool) -> Option<Slot> {
        if let Some(i) = self.entries.iter().position(|e| e.key == key) {
            if let Some(e) = self.entries.get_mut(i) {
                e.last_us = now_us;
                e.pinned |= force;
            }
            return Some(Slot {
                target: Self::target(i),
                fresh: false,
            });
        }
        let entry = Entry {
            key,
            last_us: now_us,
            pinned: force,
        };
        if self.entries.len() < self.capacity {
            self.entries.push(entry);
            return Some(Slot {
                target: Self::target(self.entries.len() - 1),
                fresh: true,
            });
        }
        let idle = if force { 0 } else { self.idle_us };
        let victim = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.pinned && now_us.saturating_sub(e.last_us) >= idle)
            .min_by_key(|(_, e)| e.last_us)
            .map(|(i, _)| i)?;
        if let Some(e) = self.entries.get_mut(victim) {
            *e = entry;
        }
        Some(Slot {
            target: Self::target(victim),
            fresh: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_slots_are_taken_on_first_sight_and_kept() {
        let mut t = Targets::new(2, 1_000);
        let a = t.lookup(10, 0).expect("free slot");
        assert!(a.fresh);
        assert_eq!(t.lookup(10, 5), Some(Slot { fresh: false, ..a }));
        let b = t.lookup(20, 6).expect("free slot");
        assert_ne!(a.target, b.target);
        assert!((1..=2).contains(&a.target) && (1..=2).contains(&b.target));
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn one_off_names_never_displace_busy_ones() {
        let mut t = Targets::new(2, 1_000);
        t.lookup(1, 0);
        t.lookup(2, 0);
        t.lookup(1, 900);
        t.lookup(2, 900);
        // Many different names, some seen repeatedly: the tracked ones are busy (seen
        // within the idle time), so none gets in.
        for k in 100..200 {
            assert_eq!(t.lookup(k, 1_000), None);
            assert_eq!(t.lookup(k, 1_100), None);
        }
        assert!(!t.lookup(1, 1_200).expect("tracked").fresh);
        assert!(!t.lookup(2, 1_200).expect("tracked").fresh);
    }

    #[test]
    fn a_repeated_name_replaces_the_least_recent_idle_entry() {
        let mut t = Targets::new(2, 1_000);
        let a = t.lookup(1, 0).expect("slot");
        let b = t.lookup(2, 500).expect("slot");
        assert_eq!(t.lookup(3, 900), None, "nothing idle yet");
        let c = t.lookup(3, 2_100).expect("an idle victim");
        assert!(c.fresh);
        assert_eq!(c.target, a.target, "the least recently seen entry goes");
        assert!(!t.lookup(2, 2_200).expect("still tracked").fresh);
        assert_eq!(t.lookup(2, 2_300).map(|s| s.target), Some(b.target));
    }

    #[test]
    fn pinned_entries_are_never_evicted() {
        let mut t = Targets::new(2, 0);
        let p = t.pin(1, 0).expect("slot");
        t.lookup(2, 0);
        for now in 1..50 {
            t.lookup(100 + now, now);
        }
        assert_eq!(t.lookup(1, 100), Some(Slot { fresh: false, ..p }));
        // Pinning takes an unpinned slot even when it is busy, but not a pinned one.
        assert!(t.pin(3, 100).is_some());
        assert_eq!(t.pin(4, 100), None);
    }

    #[test]
    fn question_keys_differ_by_type_and_are_never_zero() {
        assert_ne!(question_key(5, 1), question_key(5, 28));
        assert_ne!(question_key(0, 0), 0);
    }
}
