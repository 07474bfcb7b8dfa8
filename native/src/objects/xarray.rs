//! XArrays (lib/xarray.c, include/linux/xarray.h; 4.20+) and the IDRs built on them (include/linux/idr.h):
//! every present entry with its index, in index order, as xa_for_each() visits them.
//!
//! Internal entries have bits 1:0 = 10; those above 4096 are node pointers (+2), the small ones are
//! sibling, retry and zero entries, which readers skip.

use std::collections::HashSet;

use super::Walk;
use crate::kernel::Kernel;

/// XArray indices are unsigned longs: at most 64 bits of index below any node.
const MAX_SHIFT: u64 = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XaEntry {
    pub index: u64,
    pub entry: u64,
}

struct Layout {
    head: u64,
    shift: u64,
    offset: u64,
    parent: u64,
    slots: u64,
    /// XA_CHUNK_SIZE: 64 unless CONFIG_BASE_SMALL.
    chunk: u64,
    node_size: u64,
}

impl Layout {
    /// From the kernel's types; the fallback is include/linux/xarray.h's 64-bit layout (4.20–6.12).
    fn of(k: &Kernel) -> Layout {
        let m = |s: &str, p: &str| k.types.member(s, p);
        let slots = m("xa_node", "slots");
        let chunk = slots.and_then(|s| s.array_len).unwrap_or(64).clamp(1, 64);
        Layout {
            head: m("xarray", "xa_head").map_or(8, |x| x.offset),
            shift: m("xa_node", "shift").map_or(0, |x| x.offset),
            offset: m("xa_node", "offset").map_or(1, |x| x.offset),
            parent: m("xa_node", "parent").map_or(8, |x| x.offset),
            slots: slots.map_or(40, |x| x.offset),
            chunk,
            node_size: k.types.struct_size("xa_node").unwrap_or(576).clamp(40 + chunk * 8, 4096),
        }
    }
}

fn is_internal(e: u64) -> bool {
    e & 3 == 2
}

fn is_node(e: u64) -> bool {
    is_internal(e) && e > 4096
}

/// Every present entry of the XArray at `xa` (a `struct xarray`), at most `max`.
pub fn xa_entries(k: &Kernel, xa: u64, max: usize, what: &str) -> Walk<XaEntry> {
    let l = Layout::of(k);
    let mut out = Vec::new();
    let head = match k.read_u64(xa.wrapping_add(l.head)) {
        Ok(h) => h,
        Err(e) => return Walk::stopped(out, what, format!("cannot read xa_head at {xa:#x}: {e}")),
    };
    if head == 0 {
        return Walk::complete(out);
    }
    if !is_node(head) {
        if !is_internal(head) {
            out.push(XaEntry { index: 0, entry: head });
        }
        return Walk::complete(out);
    }
    let chunk_shift = l.chunk.trailing_zeros() as u64;
    let mut seen = HashSet::new();
    let mut buf = vec![0u8; l.node_size as usize];
    // (node, its parent node or 0, the slot it sits in, the index of its slot 0, the shift it must have)
    let mut stack: Vec<(u64, u64, u64, u64, Option<u64>)> = vec![(head - 2, 0, 0, 0, None)];
    let max_nodes = max.saturating_add(64);
    while let Some((node, parent, slot_in_parent, base, want_shift)) = stack.pop() {
        if seen.len() >= max_nodes {
            return Walk::stopped(out, what, format!("more than {max_nodes} nodes"));
        }
        if !seen.insert(node) {
            return Walk::stopped(out, what, format!("cycle: node {node:#x} reached twice"));
        }
        if let Err(e) = k.read(node, &mut buf) {
            return Walk::stopped(out, what, format!("node {node:#x} is unreadable: {e}"));
        }
        let shift = buf.get(l.shift as usize).copied().unwrap_or(0xff) as u64;
        let offset = buf.get(l.offset as usize).copied().unwrap_or(0xff) as u64;
        let up = crate::bytes::le_u64(&buf, l.parent as usize).unwrap_or(0);
        if shift % chunk_shift.max(1) != 0 || shift + chunk_shift > MAX_SHIFT || want_shift.is_some_and(|w| w != shift) {
            return Walk::stopped(out, what, format!("node {node:#x} has shift {shift}, expected {}", want_shift.map_or("a multiple of the chunk".into(), |w| w.to_string())));
        }
        if parent != 0 && (up != parent || offset != slot_in_parent) {
            return Walk::stopped(out, what, format!("node {node:#x} says parent {up:#x} slot {offset}, but was reached from {parent:#x} slot {slot_in_parent}"));
        }
        let mut children = Vec::new();
        for i in 0..l.chunk {
            let e = crate::bytes::le_u64(&buf, (l.slots + 8 * i) as usize).unwrap_or(0);
            if e == 0 {
                continue;
            }
            let index = base.wrapping_add(i << shift);
            if is_node(e) {
                if shift == 0 {
                    return Walk::stopped(out, what, format!("node {node:#x} at shift 0 points to another node"));
                }
                children.push((e - 2, node, i, index, Some(shift - chunk_shift)));
            } else if !is_internal(e) {
                if out.len() >= max {
                    return Walk::stopped(out, what, format!("stopped after {max} entries"));
                }
                out.push(XaEntry { index, entry: e });
            }
            // sibling, retry and zero entries: nothing to report
        }
        stack.extend(children.into_iter().rev());
    }
    Walk::complete(out)
}

/// Every entry of the IDR at `idr` (a `struct idr`), indices offset by its idr_base.
pub fn idr_entries(k: &Kernel, idr: u64, max: usize, what: &str) -> Walk<XaEntry> {
    let rt = k.types.member("idr", "idr_rt").map_or(0, |m| m.offset);
    let base = k
        .types
        .member("idr", "idr_base")
        .and_then(|m| k.read_member(idr, m).ok())
        .unwrap_or(0);
    let w = xa_entries(k, idr.wrapping_add(rt), max, what);
    Walk { items: w.items.into_iter().map(|e| XaEntry { index: e.index.wrapping_add(base), entry: e.entry }).collect(), warning: w.warning }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::walkers::testkit::Fake;

    /// xa_node with the fallback layout: shift@0, offset@1, parent@8, slots@40 (64 of them).
    fn node(f: &mut Fake, shift: u8, offset: u8, parent: u64) -> u64 {
        let n = f.alloc(576);
        f.put(n, &[shift, offset]);
        f.put_u64(n + 8, parent);
        n
    }

    fn slot(f: &mut Fake, n: u64, i: u64, e: u64) {
        f.put_u64(n + 40 + 8 * i, e);
    }

    #[test]
    fn two_levels_give_indices_from_shift_and_offset() {
        let mut f = Fake::new(1 << 20);
        let xa = f.alloc(16);
        let top = node(&mut f, 6, 0, 0);
        let a = node(&mut f, 0, 0, top);
        let b = node(&mut f, 0, 2, top);
        f.put_u64(xa + 8, top + 2);
        slot(&mut f, top, 0, a + 2);
        slot(&mut f, top, 2, b + 2);
        slot(&mut f, a, 1, 0x1110);
        slot(&mut f, a, 5, (5 << 2) | 2); // a sibling entry: skipped
        slot(&mut f, b, 3, 0x2220);
        slot(&mut f, b, 4, 0x402); // XA_RETRY_ENTRY: skipped
        let k = f.kernel();
        let w = xa_entries(&k, xa, 100, "t");
        assert_eq!(w, Walk::complete(vec![XaEntry { index: 1, entry: 0x1110 }, XaEntry { index: 2 * 64 + 3, entry: 0x2220 }]));
    }

    #[test]
    fn single_entry_at_zero_lives_in_the_head() {
        let mut f = Fake::new(1 << 16);
        let xa = f.alloc(16);
        f.put_u64(xa + 8, 0x5550);
        let k = f.kernel();
        assert_eq!(xa_entries(&k, xa, 10, "t").items, vec![XaEntry { index: 0, entry: 0x5550 }]);
    }

    #[test]
    fn wrong_shift_wrong_parent_and_cycles_stop_the_walk() {
        let mut f = Fake::new(1 << 20);
        let xa = f.alloc(16);
        let top = node(&mut f, 6, 0, 0);
        let child = node(&mut f, 6, 0, top); // should be shift 0
        f.put_u64(xa + 8, top + 2);
        slot(&mut f, top, 0, child + 2);
        let mut g = Fake::from_mem(f.mem.clone());
        let k = f.kernel();
        assert!(xa_entries(&k, xa, 100, "t").warning.unwrap().contains("shift"));
        // shift right, but the child names another parent
        g.put(child, &[0, 0]);
        g.put_u64(child + 8, 0x1234);
        let mut h = Fake::from_mem(g.mem.clone());
        let k = g.kernel();
        assert!(xa_entries(&k, xa, 100, "t").warning.unwrap().contains("parent"));
        // a slot pointing back at the top node
        h.put(top, &[6, 0]);
        slot(&mut h, top, 1, top + 2);
        h.put_u64(child + 8, top);
        let k = h.kernel();
        let w = xa_entries(&k, xa, 100, "t");
        assert!(w.warning.is_some(), "{w:?}");
    }

    #[test]
    fn the_entry_bound_holds() {
        let mut f = Fake::new(1 << 20);
        let xa = f.alloc(16);
        let n = node(&mut f, 0, 0, 0);
        f.put_u64(xa + 8, n + 2);
        for i in 0..64 {
            slot(&mut f, n, i, 0x1000 + 16 * i);
        }
        let k = f.kernel();
        let w = xa_entries(&k, xa, 10, "t");
        assert_eq!(w.items.len(), 10);
        assert!(w.warning.unwrap().contains("stopped after 10"));
    }
}
