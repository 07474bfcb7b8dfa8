//! Doubly linked lists of include/linux/list.h (`list_head`: next, prev) and include/linux/types.h
//! (`hlist_head`/`hlist_node`: first; next, pprev) and include/linux/list_nulls.h (`hlist_nulls_head`: a list
//! that ends in an odd "nulls" marker instead of NULL), walked with the kernel's own consistency rule: every
//! node's back pointer names where we came from.

use std::collections::HashSet;

use super::Walk;
use crate::kernel::Kernel;

/// A walk that stopped because the list did not hold together: on a running guest that is a torn read (the list
/// changed under us), so the kernel notes it for the walker-level retry (walkers::run).
fn torn<T>(k: &Kernel, w: Walk<T>) -> Walk<T> {
    if let Some(why) = &w.warning {
        k.note_torn(why.clone());
    }
    w
}

/// The nodes of a circular `list_head` starting at `head` (the head itself is not an entry), at most
/// `max`, stopping at a cycle, an unreadable node or a `prev` that does not point back.
pub fn list_nodes(k: &Kernel, head: u64, max: usize, what: &str) -> Walk<u64> {
    let mut nodes = Vec::new();
    let mut seen = HashSet::new();
    seen.insert(head);
    let mut prev = head;
    let mut node = match k.read_u64(head) {
        Ok(n) => n,
        Err(e) => return Walk::stopped(nodes, what, format!("cannot read the list head at {head:#x}: {e}")),
    };
    loop {
        if node == head {
            return Walk::complete(nodes);
        }
        if nodes.len() >= max {
            return Walk::stopped(nodes, what, format!("stopped after {max} entries without returning to the head"));
        }
        if !seen.insert(node) {
            let n = nodes.len();
            return torn(k, Walk::stopped(nodes, what, format!("cycle: entry {node:#x} seen twice (after {n} entries)")));
        }
        let mut pair = [0u8; 16];
        if let Err(e) = k.read(node, &mut pair) {
            return torn(k, Walk::stopped(nodes, what, format!("entry {node:#x} after {prev:#x} is unreadable: {e}")));
        }
        let next = crate::bytes::le_u64(&pair, 0).unwrap_or(0);
        let back = crate::bytes::le_u64(&pair, 8).unwrap_or(0);
        if back != prev {
            return torn(k, Walk::stopped(nodes, what, format!("torn list: entry {node:#x}.prev is {back:#x}, expected {prev:#x}")));
        }
        nodes.push(node);
        prev = node;
        node = next;
    }
}

/// The structs linked through their `list_head` member at `link_offset` (list_for_each_entry).
pub fn list_entries(k: &Kernel, head: u64, link_offset: u64, max: usize, what: &str) -> Walk<u64> {
    let w = list_nodes(k, head, max, what);
    Walk { items: w.items.into_iter().map(|n| n.wrapping_sub(link_offset)).collect(), warning: w.warning }
}

/// The structs on an `hlist_head` at `head`, linked through their `hlist_node` member at `link_offset`
/// (hlist_for_each_entry). Each node's `pprev` must hold the address of the pointer that led to it.
pub fn hlist_entries(k: &Kernel, head: u64, link_offset: u64, max: usize, what: &str) -> Walk<u64> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut came_from = head; // address of the pointer we followed: head->first, then node->next
    let mut node = match k.read_u64(head) {
        Ok(n) => n,
        Err(e) => return Walk::stopped(out, what, format!("cannot read the hlist head at {head:#x}: {e}")),
    };
    while node != 0 {
        if out.len() >= max {
            return Walk::stopped(out, what, format!("stopped after {max} entries without reaching the end"));
        }
        if !seen.insert(node) {
            let n = out.len();
            return torn(k, Walk::stopped(out, what, format!("cycle: entry {node:#x} seen twice (after {n} entries)")));
        }
        let mut pair = [0u8; 16];
        if let Err(e) = k.read(node, &mut pair) {
            return torn(k, Walk::stopped(out, what, format!("entry {node:#x} is unreadable: {e}")));
        }
        let next = crate::bytes::le_u64(&pair, 0).unwrap_or(0);
        let pprev = crate::bytes::le_u64(&pair, 8).unwrap_or(0);
        if pprev != came_from {
            return torn(k, Walk::stopped(out, what, format!("torn list: entry {node:#x}.pprev is {pprev:#x}, expected {came_from:#x}")));
        }
        out.push(node.wrapping_sub(link_offset));
        came_from = node; // hlist_node.next is its first member
        node = next;
    }
    Walk::complete(out)
}

/// The structs on an `hlist_nulls_head` at `head` (hlist_nulls_for_each_entry, as the socket hash tables
/// use them): like an hlist, but the chain ends at any pointer with bit 0 set (is_a_nulls()).
pub fn hlist_nulls_entries(k: &Kernel, head: u64, link_offset: u64, max: usize, what: &str) -> Walk<u64> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut came_from = head;
    let mut node = match k.read_u64(head) {
        Ok(n) => n,
        Err(e) => return Walk::stopped(out, what, format!("cannot read the hlist_nulls head at {head:#x}: {e}")),
    };
    while node & 1 == 0 {
        if node == 0 {
            let n = out.len();
            return Walk::stopped(out, what, format!("NULL in a nulls list after {n} entries"));
        }
        if out.len() >= max {
            return Walk::stopped(out, what, format!("stopped after {max} entries without reaching the end"));
        }
        if !seen.insert(node) {
            let n = out.len();
            return Walk::stopped(out, what, format!("cycle: entry {node:#x} seen twice (after {n} entries)"));
        }
        let mut pair = [0u8; 16];
        if let Err(e) = k.read(node, &mut pair) {
            return Walk::stopped(out, what, format!("entry {node:#x} is unreadable: {e}"));
        }
        let next = crate::bytes::le_u64(&pair, 0).unwrap_or(0);
        let pprev = crate::bytes::le_u64(&pair, 8).unwrap_or(0);
        if pprev != came_from {
            return Walk::stopped(out, what, format!("torn list: entry {node:#x}.pprev is {pprev:#x}, expected {came_from:#x}"));
        }
        out.push(node.wrapping_sub(link_offset));
        came_from = node;
        node = next;
    }
    Walk::complete(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::walkers::testkit::Fake;

    /// A circular list of `n` nodes of 32 bytes whose list_head sits at +8; returns (head, entries).
    fn ring(f: &mut Fake, n: usize) -> (u64, Vec<u64>) {
        let head = f.alloc(16);
        let entries: Vec<u64> = (0..n).map(|_| f.alloc(32)).collect();
        let links: Vec<u64> = std::iter::once(head).chain(entries.iter().map(|e| e + 8)).collect();
        for (i, &l) in links.iter().enumerate() {
            f.put_u64(l, links[(i + 1) % links.len()]);
            f.put_u64(l + 8, links[(i + links.len() - 1) % links.len()]);
        }
        (head, entries)
    }

    #[test]
    fn list_entries_are_the_containers_in_order() {
        let mut f = Fake::new(1 << 16);
        let (head, entries) = ring(&mut f, 5);
        let k = f.kernel();
        assert_eq!(list_entries(&k, head, 8, 100, "test"), Walk::complete(entries));
    }

    #[test]
    fn a_wrong_prev_stops_the_walk_with_a_warning() {
        let mut f = Fake::new(1 << 16);
        let (head, entries) = ring(&mut f, 4);
        f.put_u64(entries[2] + 8 + 8, entries[0] + 8); // entry 2's prev skips entry 1
        let k = f.kernel();
        let w = list_entries(&k, head, 8, 100, "test");
        assert_eq!(w.items, entries[..2]);
        assert!(w.warning.unwrap().contains("torn list"));
    }

    #[test]
    fn a_torn_list_is_noted_for_the_retry_and_a_whole_one_is_not() {
        let mut f = Fake::new(1 << 16);
        let (head, entries) = ring(&mut f, 4);
        let mut g = Fake::from_mem(f.mem.clone());
        let k = f.kernel();
        let _ = list_entries(&k, head, 8, 100, "test");
        assert!(k.take_torn().is_empty());
        g.put_u64(entries[2] + 8 + 8, entries[0] + 8);
        let k = g.kernel();
        let _ = list_entries(&k, head, 8, 100, "tasks");
        let notes = k.take_torn();
        assert_eq!(notes.len(), 1);
        assert!(notes[0].starts_with("tasks: torn list"), "{notes:?}");
    }

    #[test]
    fn a_cycle_that_keeps_prev_consistent_is_caught_by_the_visited_set() {
        let mut f = Fake::new(1 << 16);
        let (head, entries) = ring(&mut f, 3);
        // entry 2 → entry 0 with entry 0's prev updated to match: prev checks alone would loop forever
        f.put_u64(entries[2] + 8, entries[0] + 8);
        f.put_u64(entries[0] + 8 + 8, entries[2] + 8);
        f.put_u64(head, entries[1] + 8);
        f.put_u64(entries[1] + 8 + 8, head);
        let k = f.kernel();
        let w = list_entries(&k, head, 8, 1000, "test");
        assert!(w.warning.as_deref().unwrap_or("").contains("cycle"), "{w:?}");
        assert!(w.items.len() <= 3);
    }

    #[test]
    fn a_list_longer_than_the_bound_stops_at_the_bound() {
        let mut f = Fake::new(1 << 20);
        let (head, _) = ring(&mut f, 50);
        let k = f.kernel();
        let w = list_entries(&k, head, 8, 10, "test");
        assert_eq!(w.items.len(), 10);
        assert!(w.warning.unwrap().contains("stopped after 10"));
    }

    #[test]
    fn hlist_checks_pprev_and_ends_at_null() {
        let mut f = Fake::new(1 << 16);
        let head = f.alloc(8);
        let nodes: Vec<u64> = (0..3).map(|_| f.alloc(32)).collect();
        f.put_u64(head, nodes[0] + 16);
        for i in 0..3 {
            let link = nodes[i] + 16;
            f.put_u64(link, if i + 1 < 3 { nodes[i + 1] + 16 } else { 0 });
            f.put_u64(link + 8, if i == 0 { head } else { nodes[i - 1] + 16 });
        }
        let mut g = Fake::from_mem(f.mem.clone());
        let k = f.kernel();
        assert_eq!(hlist_entries(&k, head, 16, 100, "test"), Walk::complete(nodes.clone()));
        // a pprev that does not name the previous node's next stops the walk after the good nodes
        g.put_u64(nodes[2] + 16 + 8, head);
        let k = g.kernel();
        let w = hlist_entries(&k, head, 16, 100, "test");
        assert_eq!(w.items, nodes[..2]);
        assert!(w.warning.unwrap().contains("pprev"));
    }

    #[test]
    fn hlist_cycle_is_bounded() {
        let mut f = Fake::new(1 << 16);
        let head = f.alloc(8);
        let a = f.alloc(16);
        f.put_u64(head, a);
        f.put_u64(a, a); // a.next = a
        f.put_u64(a + 8, head);
        let k = f.kernel();
        let w = hlist_entries(&k, head, 0, 100, "test");
        assert_eq!(w.items, vec![a]);
        assert!(w.warning.is_some());
    }

    #[test]
    fn hlist_nulls_ends_at_the_nulls_marker_and_bounds_cycles() {
        let mut f = Fake::new(1 << 16);
        let head = f.alloc(8);
        let nodes: Vec<u64> = (0..3).map(|_| f.alloc(32)).collect();
        f.put_u64(head, nodes[0] + 8);
        for i in 0..3 {
            let link = nodes[i] + 8;
            f.put_u64(link, if i + 1 < 3 { nodes[i + 1] + 8 } else { (17 << 1) | 1 }); // nulls value 17
            f.put_u64(link + 8, if i == 0 { head } else { nodes[i - 1] + 8 });
        }
        let mut g = Fake::from_mem(f.mem.clone());
        let k = f.kernel();
        assert_eq!(hlist_nulls_entries(&k, head, 8, 100, "t"), Walk::complete(nodes.clone()));
        // the last node pointing back at the first: a cycle the pprev check alone would not see first
        g.put_u64(nodes[2] + 8, nodes[0] + 8);
        let k = g.kernel();
        let w = hlist_nulls_entries(&k, head, 8, 100, "t");
        assert_eq!(w.items, nodes);
        assert!(w.warning.unwrap().contains("cycle"));
        // an empty bucket: the head holds a nulls marker
        let mut e = Fake::new(1 << 13);
        let h = e.alloc(8);
        e.put_u64(h, 1);
        assert_eq!(hlist_nulls_entries(&e.kernel(), h, 0, 10, "t"), Walk::complete(vec![]));
    }
}
