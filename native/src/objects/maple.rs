//! Maple trees (lib/maple_tree.c, include/linux/maple_tree.h; 6.1+, where they hold each mm's VMAs):
//! every non-NULL entry with the index range it covers, in index order, as mas_for_each() visits them.
//!
//! Encoded node pointers carry the node type in bits 3–6 and the 256-byte-aligned node in the rest; the
//! root pointer has bit 1 set (xa_is_node). Leaves are maple_leaf_64 (and the unused maple_dense);
//! internal nodes are maple_range_64 or, in trees that track gaps (mm_mt), maple_arange_64.

use std::collections::HashSet;

use super::Walk;
use crate::kernel::Kernel;

/// MAPLE_HEIGHT_MAX (include/linux/maple_tree.h).
const MAX_HEIGHT: u32 = 31;
const NODE_MASK: u64 = 0xFF;
/// Nodes are 256 bytes; a node larger than this in the kernel's types is not believed.
const MAX_NODE_SIZE: u64 = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapleEntry {
    /// The inclusive index range the entry covers.
    pub first: u64,
    pub last: u64,
    pub entry: u64,
}

/// enum maple_type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NodeType {
    Dense,
    Leaf64,
    Range64,
    Arange64,
}

/// One node layout: where pivots, slots and the metadata sit, and how many of each (64-bit values).
#[derive(Debug, Clone, Copy)]
struct NodeLayout {
    pivot: u64,
    pivots: usize,
    slot: u64,
    slots: usize,
    meta_end: u64,
}

struct Layout {
    root: u64,
    node_size: u64,
    range64: NodeLayout,
    arange64: NodeLayout,
    /// maple_node.slot: dense nodes are all slots after the parent pointer.
    dense_slot: u64,
    dense_slots: usize,
}

impl Layout {
    /// From the kernel's types, with the 64-bit constants of include/linux/maple_tree.h (6.1) as fallback.
    fn of(k: &Kernel) -> Layout {
        let m = |s: &str, p: &str| k.types.member(s, p);
        let node = |s: &str, pivots_d: usize, slots_d: usize, meta_d: u64| -> NodeLayout {
            let pivot = m(s, "pivot");
            let slot = m(s, "slot");
            NodeLayout {
                pivot: pivot.map_or(8, |p| p.offset),
                pivots: pivot.and_then(|p| p.array_len).map_or(pivots_d, |n| n as usize).min(64),
                slot: slot.map_or(8 + 8 * pivots_d as u64, |p| p.offset),
                slots: slot.and_then(|p| p.array_len).map_or(slots_d, |n| n as usize).min(64),
                meta_end: m(s, "meta").map_or(meta_d, |p| p.offset) + m("maple_metadata", "end").map_or(0, |e| e.offset),
            }
        };
        let dense = m("maple_node", "slot");
        Layout {
            root: m("maple_tree", "ma_root").map_or(8, |r| r.offset),
            node_size: k.types.struct_size("maple_node").unwrap_or(256).clamp(256, MAX_NODE_SIZE),
            range64: node("maple_range_64", 15, 16, 8 + 15 * 8 + 15 * 8),
            arange64: node("maple_arange_64", 9, 10, 8 + 9 * 8 + 10 * 8 + 10 * 8),
            dense_slot: dense.map_or(8, |d| d.offset),
            dense_slots: dense.and_then(|d| d.array_len).map_or(31, |n| n as usize).min(64),
        }
    }
}

/// xa_is_node(): an internal entry (bits 1:0 = 10) above the reserved range.
fn is_node(entry: u64) -> bool {
    entry & 3 == 2 && entry > 4096
}

fn node_type(enode: u64) -> Option<NodeType> {
    match (enode >> 3) & 0xF {
        0 => Some(NodeType::Dense),
        1 => Some(NodeType::Leaf64),
        2 => Some(NodeType::Range64),
        3 => Some(NodeType::Arange64),
        _ => None,
    }
}

/// Every entry of the maple tree at `tree` (a `struct maple_tree`), at most `max`.
pub fn maple_entries(k: &Kernel, tree: u64, max: usize, what: &str) -> Walk<MapleEntry> {
    let l = Layout::of(k);
    let mut out = Vec::new();
    let root = match k.read_u64(tree.wrapping_add(l.root)) {
        Ok(r) => r,
        Err(e) => return Walk::stopped(out, what, format!("cannot read the tree root at {tree:#x}: {e}")),
    };
    if root == 0 {
        return Walk::complete(out);
    }
    if !is_node(root) {
        // A lone entry for index 0 lives in the root pointer itself.
        out.push(MapleEntry { first: 0, last: 0, entry: root });
        return Walk::complete(out);
    }
    // Depth-first, children pushed in reverse so entries come out in index order.
    let mut stack: Vec<(u64, u64, u64, u32)> = vec![(root & !2, 0, u64::MAX, 1)];
    let mut seen = HashSet::new();
    let mut buf = vec![0u8; l.node_size as usize];
    // Every node holds at least one entry or child, so a sound tree has fewer nodes than 2·entries + height.
    let max_nodes = max.saturating_mul(2).saturating_add(MAX_HEIGHT as usize);
    while let Some((enode, min, node_max, depth)) = stack.pop() {
        let addr = enode & !NODE_MASK;
        if depth > MAX_HEIGHT {
            return Walk::stopped(out, what, format!("deeper than MAPLE_HEIGHT_MAX ({MAX_HEIGHT}) at node {addr:#x}"));
        }
        if seen.len() >= max_nodes {
            return Walk::stopped(out, what, format!("more than {max_nodes} nodes"));
        }
        if !seen.insert(addr) {
            return Walk::stopped(out, what, format!("cycle: node {addr:#x} reached twice (a loop, or a subtree shared by two parents)"));
        }
        let Some(ty) = node_type(enode) else {
            return Walk::stopped(out, what, format!("node pointer {enode:#x} has an unknown node type {}", (enode >> 3) & 0xF));
        };
        if let Err(e) = k.read(addr, &mut buf) {
            return Walk::stopped(out, what, format!("node {addr:#x} is unreadable: {e}"));
        }
        let word = |off: u64| crate::bytes::le_u64(&buf, off as usize).unwrap_or(0);
        let byte = |off: u64| buf.get(off as usize).copied().unwrap_or(0);
        let (nl, leaf) = match ty {
            NodeType::Dense => (NodeLayout { pivot: 0, pivots: 0, slot: l.dense_slot, slots: l.dense_slots, meta_end: 0 }, true),
            NodeType::Leaf64 => (l.range64, true),
            NodeType::Range64 => (l.range64, false),
            NodeType::Arange64 => (l.arange64, false),
        };
        let pivot = |i: usize| word(nl.pivot + 8 * i as u64);
        let slot = |i: usize| word(nl.slot + 8 * i as u64);
        // ma_data_end(): the last slot in use.
        let end = match ty {
            NodeType::Dense => nl.slots - 1,
            NodeType::Arange64 => byte(nl.meta_end) as usize,
            _ => {
                let last = nl.pivots - 1;
                if pivot(last) == 0 {
                    byte(nl.meta_end) as usize
                } else if pivot(last) == node_max {
                    last
                } else {
                    nl.pivots
                }
            }
        };
        if end >= nl.slots {
            return Walk::stopped(out, what, format!("node {addr:#x} claims {} slots in use of {}", end + 1, nl.slots));
        }
        let mut children = Vec::new();
        let mut lo = min;
        for i in 0..=end {
            // mas_logical_pivot(): a missing or zero pivot past slot 0 means "up to the node's max"
            let hi = match ty {
                NodeType::Dense => min.saturating_add(i as u64),
                _ if i < nl.pivots && pivot(i) != 0 => pivot(i),
                _ if i == 0 => 0,
                _ => node_max,
            };
            if hi < lo || hi > node_max {
                return Walk::stopped(out, what, format!("node {addr:#x} slot {i}: range {lo:#x}..{hi:#x} outside {min:#x}..{node_max:#x}"));
            }
            let s = slot(i);
            if s != 0 {
                if leaf {
                    if out.len() >= max {
                        return Walk::stopped(out, what, format!("stopped after {max} entries"));
                    }
                    out.push(MapleEntry { first: lo, last: hi, entry: s });
                } else {
                    children.push((s, lo, hi, depth + 1));
                }
            }
            if hi == node_max {
                break;
            }
            lo = hi + 1;
        }
        stack.extend(children.into_iter().rev());
    }
    Walk::complete(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::walkers::testkit::Fake;

    /// Builds maple nodes with the fallback (6.1, 64-bit) layout: range64/leaf64 pivots at 8, slots at
    /// 128, meta.end at 248; arange64 pivots at 8, slots at 80, meta.end at 240.
    struct M {
        f: Fake,
    }

    impl M {
        fn new() -> M {
            M { f: Fake::new(1 << 20) }
        }
        fn node(&mut self) -> u64 {
            let a = self.f.alloc(512);
            (a + 255) & !255
        }
        fn range(&mut self, ty: u64, pivots: &[u64], slots: &[u64], end: Option<u8>) -> u64 {
            let n = self.node();
            let (piv, slot, meta) = if ty == 3 { (8, 80, 240) } else { (8, 128, 248) };
            for (i, p) in pivots.iter().enumerate() {
                self.f.put_u64(n + piv + 8 * i as u64, *p);
            }
            for (i, s) in slots.iter().enumerate() {
                self.f.put_u64(n + slot + 8 * i as u64, *s);
            }
            if let Some(e) = end {
                self.f.put(n + meta, &[e]);
            }
            n | (ty << 3) | 4
        }
        fn tree(&mut self, root: u64) -> u64 {
            let t = self.f.alloc(16);
            self.f.put_u64(t + 8, root);
            t
        }
    }

    #[test]
    fn empty_and_single_entry_trees() {
        let mut m = M::new();
        let empty = m.tree(0);
        let single = m.tree(0xffff_8880_0000_1000);
        let k = m.f.kernel();
        assert_eq!(maple_entries(&k, empty, 10, "t"), Walk::complete(vec![]));
        assert_eq!(maple_entries(&k, single, 10, "t").items, vec![MapleEntry { first: 0, last: 0, entry: 0xffff_8880_0000_1000 }]);
    }

    #[test]
    fn arange_root_over_two_leaves_gives_entries_in_order_with_ranges() {
        let mut m = M::new();
        // leaf A covers 0..=0x2fff: [0,0xfff] NULL, [0x1000,0x1fff] e1, [0x2000,0x2fff] e2 (data end from meta)
        let a = m.range(1, &[0xfff, 0x1fff, 0x2fff], &[0, 0xe1, 0xe2], Some(2));
        // leaf B covers 0x3000..=MAX: [0x3000,0x4fff] e3, [0x5000,MAX] NULL
        let b = m.range(1, &[0x4fff, 0, 0], &[0xe3, 0], Some(1));
        let root = m.range(3, &[0x2fff], &[a, b], Some(1));
        let tree = m.tree(root | 2);
        let k = m.f.kernel();
        let w = maple_entries(&k, tree, 100, "t");
        assert_eq!(w.warning, None);
        assert_eq!(
            w.items,
            vec![
                MapleEntry { first: 0x1000, last: 0x1fff, entry: 0xe1 },
                MapleEntry { first: 0x2000, last: 0x2fff, entry: 0xe2 },
                MapleEntry { first: 0x3000, last: 0x4fff, entry: 0xe3 },
            ]
        );
    }

    #[test]
    fn range64_internal_node_and_a_full_leaf_use_the_pivot_rules() {
        let mut m = M::new();
        let full_pivots: Vec<u64> = (1..=15).map(|i| i * 0x10 - 1).collect();
        let full_slots: Vec<u64> = (1..=16).map(|i| 0x1000 + i).collect();
        // 15 pivots all set and the last one below max: all 16 slots in use, the last up to the node max
        let full = m.range(1, &full_pivots, &full_slots, None);
        let tail = m.range(1, &[u64::MAX], &[0xabc], None);
        let root = m.range(2, &[0x1ff], &[full, tail], Some(1));
        let tree = m.tree(root | 2);
        let k = m.f.kernel();
        let w = maple_entries(&k, tree, 100, "t");
        assert_eq!(w.warning, None);
        assert_eq!(w.items.len(), 17);
        assert_eq!(w.items[15], MapleEntry { first: 0xf0, last: 0x1ff, entry: 0x1010 });
        assert_eq!(w.items[16], MapleEntry { first: 0x200, last: u64::MAX, entry: 0xabc });
    }

    #[test]
    fn a_child_pointing_at_its_parent_is_a_cycle() {
        let mut m = M::new();
        let leaf = m.range(1, &[0x10], &[0xe1], Some(0));
        let root = m.range(2, &[0x10], &[leaf, 0], Some(1));
        // the second child slot points back at the root node
        m.f.put_u64((root & !0xFF) + 128 + 8, root);
        let tree = m.tree(root | 2);
        let k = m.f.kernel();
        let w = maple_entries(&k, tree, 100, "t");
        assert_eq!(w.items.len(), 1);
        assert!(w.warning.unwrap().contains("cycle"));
    }

    /// Hostile guest: an mm whose tree claims some 7·10^10 VMAs, every internal node's 16 slots pointing at the
    /// one node below (nine levels: 16^8 leaves of 16 entries). The walk ends at the second visit of a node.
    #[test]
    fn a_tree_claiming_seventy_billion_entries_through_shared_nodes_ends_at_once() {
        let mut m = M::new();
        // level j splits its range into 16 slots of 16^j pages each
        let pivots = |j: u32| -> Vec<u64> { (1..=15).map(|i| i * (16u64.pow(j) << 12) - 1).collect() };
        let mut node = m.range(1, &pivots(0), &[0xe1; 16], None);
        for j in 1..=8 {
            node = m.range(2, &pivots(j), &[node; 16], None);
        }
        let tree = m.tree(node | 2);
        let k = m.f.kernel();
        let w = maple_entries(&k, tree, 1 << 22, "VMAs");
        assert_eq!(w.items.len(), 16, "one leaf's entries, once");
        assert!(w.warning.as_deref().is_some_and(|e| e.contains("reached twice") && e.contains("shared")), "{:?}", w.warning);
    }

    #[test]
    fn an_impossible_data_end_or_range_or_type_stops_the_walk() {
        let mut m = M::new();
        let bad_end = m.range(3, &[0x10], &[0, 0], Some(200));
        let t1 = m.tree(bad_end | 2);
        let backwards = m.range(1, &[0x20, 0x10], &[1, 2, 3], Some(2));
        let t2 = m.tree(backwards | 2);
        let n = m.node();
        let t3 = m.tree((n | (9 << 3) | 4) | 2);
        let k = m.f.kernel();
        assert!(maple_entries(&k, t1, 100, "t").warning.unwrap().contains("slots in use"));
        let w = maple_entries(&k, t2, 100, "t");
        assert_eq!(w.items.len(), 1);
        assert!(w.warning.unwrap().contains("outside"));
        assert!(maple_entries(&k, t3, 100, "t").warning.unwrap().contains("unknown node type"));
    }

    #[test]
    fn the_entry_bound_holds() {
        let mut m = M::new();
        let leaf = m.range(1, &[1, 2, 3, 4], &[1, 2, 3, 4, 5], Some(4));
        let tree = m.tree(leaf | 2);
        let k = m.f.kernel();
        let w = maple_entries(&k, tree, 3, "t");
        assert_eq!(w.items.len(), 3);
        assert!(w.warning.unwrap().contains("stopped after 3"));
    }
}
