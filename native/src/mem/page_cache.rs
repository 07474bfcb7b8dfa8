//! A small least-recently-used cache of 4 KiB guest pages, for RAM sources whose pages cost a decompression.
//!
//! Fixed capacity (so memory stays bounded whatever the dump's size); slots are allocated on first use and
//! linked in recency order by index, so a hit and an eviction are O(1).

use std::collections::HashMap;

pub const PAGE: usize = 4096;
const NONE: usize = usize::MAX;

#[derive(Clone, Copy)]
struct Slot {
    pfn: u64,
    /// Neighbours in recency order: `prev` is more recent, `next` less recent.
    prev: usize,
    next: usize,
}

pub struct PageCache {
    capacity: usize,
    index: HashMap<u64, usize>,
    slots: Vec<Slot>,
    /// Page bytes of slot i at [i*PAGE, (i+1)*PAGE).
    data: Vec<u8>,
    /// Most and least recently used slots.
    head: usize,
    tail: usize,
    pub hits: u64,
    pub misses: u64,
}

impl PageCache {
    pub fn new(capacity: usize) -> PageCache {
        let capacity = capacity.max(1);
        PageCache { capacity, index: HashMap::new(), slots: Vec::new(), data: Vec::new(), head: NONE, tail: NONE, hits: 0, misses: 0 }
    }

    /// The cached page of `pfn`, now the most recently used.
    pub fn get(&mut self, pfn: u64) -> Option<&[u8]> {
        let Some(&slot) = self.index.get(&pfn) else {
            self.misses += 1;
            return None;
        };
        self.hits += 1;
        self.touch(slot);
        self.data.get(slot * PAGE..(slot + 1) * PAGE)
    }

    /// Cache `page` (PAGE bytes) as `pfn`'s, evicting the least recently used page when full.
    pub fn insert(&mut self, pfn: u64, page: &[u8]) {
        if page.len() != PAGE {
            return;
        }
        let slot = if let Some(&slot) = self.index.get(&pfn) {
            self.touch(slot);
            slot
        } else if self.slots.len() < self.capacity {
            let slot = self.slots.len();
            self.slots.push(Slot { pfn, prev: NONE, next: NONE });
            self.data.resize((slot + 1) * PAGE, 0);
            self.push_front(slot);
            self.index.insert(pfn, slot);
            slot
        } else {
            let slot = self.tail;
            let Some(old) = self.slots.get(slot).map(|s| s.pfn) else { return };
            self.index.remove(&old);
            self.slots[slot].pfn = pfn;
            self.index.insert(pfn, slot);
            self.touch(slot);
            slot
        };
        if let Some(dst) = self.data.get_mut(slot * PAGE..(slot + 1) * PAGE) {
            dst.copy_from_slice(page);
        }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    fn unlink(&mut self, slot: usize) {
        let Slot { prev, next, .. } = self.slots[slot];
        if prev != NONE {
            self.slots[prev].next = next;
        } else {
            self.head = next;
        }
        if next != NONE {
            self.slots[next].prev = prev;
        } else {
            self.tail = prev;
        }
    }

    fn push_front(&mut self, slot: usize) {
        self.slots[slot].prev = NONE;
        self.slots[slot].next = self.head;
        if self.head != NONE {
            self.slots[self.head].prev = slot;
        }
        self.head = slot;
        if self.tail == NONE {
            self.tail = slot;
        }
    }

    fn touch(&mut self, slot: usize) {
        if self.head != slot {
            self.unlink(slot);
            self.push_front(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(b: u8) -> Vec<u8> {
        vec![b; PAGE]
    }

    #[test]
    fn evicts_the_least_recently_used_page() {
        let mut c = PageCache::new(2);
        c.insert(1, &page(1));
        c.insert(2, &page(2));
        assert_eq!(c.get(1).map(|p| p[0]), Some(1)); // 1 is now the most recent
        c.insert(3, &page(3)); // evicts 2
        assert!(c.get(2).is_none());
        assert_eq!(c.get(1).map(|p| p[0]), Some(1));
        assert_eq!(c.get(3).map(|p| p[0]), Some(3));
        c.insert(3, &page(33)); // refresh in place
        assert_eq!(c.get(3).map(|p| p[0]), Some(33));
        assert_eq!(c.len(), 2);
        c.insert(4, &page(4)); // evicts 1 (3 was touched last)
        assert!(c.get(1).is_none());
        assert_eq!((c.get(3).map(|p| p[0]), c.get(4).map(|p| p[0])), (Some(33), Some(4)));
    }

    #[test]
    fn memory_is_bounded_by_the_capacity() {
        let mut c = PageCache::new(8);
        for pfn in 0..10_000u64 {
            c.insert(pfn, &page(pfn as u8));
        }
        assert_eq!(c.len(), 8);
        assert!(c.data.len() <= 8 * PAGE);
        for pfn in 9992..10_000u64 {
            assert_eq!(c.get(pfn).map(|p| p[0]), Some(pfn as u8));
        }
    }
}
