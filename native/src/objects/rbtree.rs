//! Red-black trees of include/linux/rbtree_types.h (`rb_root`, `rb_node`: __rb_parent_color, rb_right,
//! rb_left), walked in order as rb_first()/rb_next() would, with each child's parent pointer checked.

use std::collections::HashSet;

use super::Walk;
use crate::kernel::Kernel;

/// Deepest tree accepted: a red-black tree of n nodes is at most 2·log2(n+1) deep.
const MAX_DEPTH: usize = 128;

struct RbLayout {
    parent_color: u64,
    right: u64,
    left: u64,
}

impl RbLayout {
    fn of(k: &Kernel) -> RbLayout {
        // The layout has not changed since 2.6.18; BTF is asked first all the same.
        let off = |p: &str, d: u64| k.types.member("rb_node", p).map_or(d, |m| m.offset);
        RbLayout { parent_color: off("__rb_parent_color", 0), right: off("rb_right", 8), left: off("rb_left", 16) }
    }
}

/// The structs whose `rb_node` member sits at `link_offset`, in key order, from the `rb_root` at `root`.
pub fn rbtree_entries(k: &Kernel, root: u64, link_offset: u64, max: usize, what: &str) -> Walk<u64> {
    let l = RbLayout::of(k);
    let mut out = Vec::new();
    let top = match k.read_u64(root) {
        Ok(n) => n,
        Err(e) => return Walk::stopped(out, what, format!("cannot read the tree root at {root:#x}: {e}")),
    };
    let mut seen = HashSet::new();
    // Iterative in-order walk; the stack holds (node, its parent) on the way down the left spine.
    let mut stack: Vec<(u64, u64)> = Vec::new();
    let mut cur = (top, 0u64);
    loop {
        while cur.0 != 0 {
            let (node, parent) = cur;
            if stack.len() >= MAX_DEPTH {
                return Walk::stopped(out, what, format!("deeper than {MAX_DEPTH} levels at {node:#x}"));
            }
            if !seen.insert(node) {
                return Walk::stopped(out, what, format!("cycle: node {node:#x} reached twice"));
            }
            let pc = match k.read_u64(node.wrapping_add(l.parent_color)) {
                Ok(v) => v,
                Err(e) => return Walk::stopped(out, what, format!("node {node:#x} is unreadable: {e}")),
            };
            if pc & !3 != parent {
                return Walk::stopped(out, what, format!("node {node:#x} names parent {:#x}, expected {parent:#x}", pc & !3));
            }
            stack.push(cur);
            let left = match k.read_u64(node.wrapping_add(l.left)) {
                Ok(v) => v,
                Err(e) => return Walk::stopped(out, what, format!("node {node:#x} is unreadable: {e}")),
            };
            cur = (left, node);
        }
        let Some((node, _)) = stack.pop() else { return Walk::complete(out) };
        if out.len() >= max {
            return Walk::stopped(out, what, format!("stopped after {max} entries"));
        }
        out.push(node.wrapping_sub(link_offset));
        let right = match k.read_u64(node.wrapping_add(l.right)) {
            Ok(v) => v,
            Err(e) => return Walk::stopped(out, what, format!("node {node:#x} is unreadable: {e}")),
        };
        cur = (right, node);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::walkers::testkit::Fake;

    /// A tree of 24-byte rb_nodes: (node, left, right, parent) as given.
    fn node(f: &mut Fake, n: u64, left: u64, right: u64, parent: u64) {
        f.put_u64(n, parent | 1); // colour bit set: must be masked
        f.put_u64(n + 8, right);
        f.put_u64(n + 16, left);
    }

    fn tree(f: &mut Fake) -> (u64, [u64; 5]) {
        let root = f.alloc(8);
        let n: [u64; 5] = std::array::from_fn(|_| f.alloc(24));
        // in order: n0 n1 n2 n3 n4 with n2 on top
        node(f, n[2], n[1], n[3], 0);
        node(f, n[1], n[0], 0, n[2]);
        node(f, n[0], 0, 0, n[1]);
        node(f, n[3], 0, n[4], n[2]);
        node(f, n[4], 0, 0, n[3]);
        f.put_u64(root, n[2]);
        (root, n)
    }

    #[test]
    fn in_order_with_container_offsets() {
        let mut f = Fake::new(1 << 16);
        let (root, n) = tree(&mut f);
        let k = f.kernel();
        let w = rbtree_entries(&k, root, 0x10, 100, "t");
        assert_eq!(w, Walk::complete(n.iter().map(|a| a - 0x10).collect()));
    }

    #[test]
    fn a_child_pointing_back_up_is_caught() {
        let mut f = Fake::new(1 << 16);
        let (root, n) = tree(&mut f);
        f.put_u64(n[4] + 8, n[2]); // n4.right = the top node: a cycle
        let k = f.kernel();
        let w = rbtree_entries(&k, root, 0, 100, "t");
        assert!(w.warning.is_some(), "{w:?}");
        assert!(w.items.len() <= 5);
    }

    #[test]
    fn a_wrong_parent_stops_the_walk() {
        let mut f = Fake::new(1 << 16);
        let (root, n) = tree(&mut f);
        f.put_u64(n[0], n[3] | 1);
        let k = f.kernel();
        let w = rbtree_entries(&k, root, 0, 100, "t");
        assert!(w.items.is_empty());
        assert!(w.warning.unwrap().contains("names parent"));
    }

    #[test]
    fn the_entry_bound_holds() {
        let mut f = Fake::new(1 << 16);
        let (root, _) = tree(&mut f);
        let k = f.kernel();
        let w = rbtree_entries(&k, root, 0, 2, "t");
        assert_eq!(w.items.len(), 2);
        assert!(w.warning.unwrap().contains("stopped after 2"));
    }
}
