//! Shared reading helpers for walkers: struct snapshots, bounded list_head walks (include/linux/list.h), per-CPU access.

use std::collections::HashSet;

use crate::kernel::{Kernel, Member};
use crate::{Error, Result};

/// Largest struct we copy in one go; task_struct is ~10 KiB on 6.1.
const MAX_STRUCT: u64 = 256 * 1024;

/// A struct copied out of guest memory once, then read field by field with bounds checks.
pub struct Snapshot {
    pub addr: u64,
    bytes: Vec<u8>,
}

impl Snapshot {
    pub fn read(k: &Kernel, addr: u64, len: u64) -> Result<Self> {
        if len == 0 || len > MAX_STRUCT {
            return Err(Error::bad(format!("struct size {len} at {addr:#x} is not plausible")));
        }
        let mut bytes = vec![0u8; len as usize];
        k.read(addr, &mut bytes)?;
        Ok(Snapshot { addr, bytes })
    }

    fn slice(&self, off: u64, len: u64) -> Result<&[u8]> {
        let start = usize::try_from(off).map_err(|_| Error::bad("offset overflow"))?;
        let end = start.checked_add(len as usize).ok_or_else(|| Error::bad("offset overflow"))?;
        self.bytes.get(start..end).ok_or_else(|| {
            Error::bad(format!("field at +{off:#x} (size {len}) lies outside the {}-byte struct at {:#x}", self.bytes.len(), self.addr))
        })
    }

    pub fn u64_at(&self, off: u64) -> Result<u64> {
        let s = self.slice(off, 8)?;
        let mut b = [0u8; 8];
        b.copy_from_slice(s);
        Ok(u64::from_le_bytes(b))
    }

    /// An unsigned integer of the member's own size (1/2/4/8 bytes).
    pub fn uint(&self, m: Member) -> Result<u64> {
        self.uint_at(m.offset, m.size)
    }

    pub fn uint_at(&self, off: u64, size: u64) -> Result<u64> {
        let s = self.slice(off, size)?;
        match size {
            1 | 2 | 4 | 8 => {
                let mut b = [0u8; 8];
                b[..size as usize].copy_from_slice(s);
                Ok(u64::from_le_bytes(b))
            }
            n => Err(Error::bad(format!("unexpected integer size {n} at +{off:#x} of {:#x}", self.addr))),
        }
    }

    /// A signed integer of the member's own size, sign-extended.
    pub fn int(&self, m: Member) -> Result<i64> {
        let v = self.uint(m)?;
        let bits = m.size * 8;
        Ok(if bits >= 64 { v as i64 } else { ((v << (64 - bits)) as i64) >> (64 - bits) })
    }

    /// A NUL-terminated char array of at most `max` bytes; bytes as Latin-1 like the guest's /proc text.
    pub fn cstr(&self, off: u64, max: u64) -> Result<String> {
        let s = self.slice(off, max)?;
        let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
        Ok(latin1(&s[..end]))
    }
}

/// Bytes as Latin-1 text: every byte survives, like ps and truth.json read them.
pub fn latin1(b: &[u8]) -> String {
    b.iter().map(|&c| c as char).collect()
}

/// The result of a bounded list walk: the node addresses read, and why it stopped early (if it did).
pub struct ListWalk {
    pub nodes: Vec<u64>,
    pub warning: Option<String>,
}

/// Walk a circular `struct list_head` from `head` (not itself an entry), checking each node's
/// `prev` against where we came from, with a visited set and at most `max` entries.
pub fn walk_list(k: &Kernel, head: u64, max: usize, what: &str) -> ListWalk {
    let mut nodes = Vec::new();
    let mut seen = HashSet::new();
    seen.insert(head);
    let mut prev = head;
    let mut node = match k.read_u64(head) {
        Ok(n) => n,
        Err(e) => return ListWalk { nodes, warning: Some(format!("{what}: cannot read the list head at {head:#x}: {e}")) },
    };
    loop {
        if node == head {
            return ListWalk { nodes, warning: None };
        }
        let stop = |nodes: Vec<u64>, why: String| ListWalk { nodes, warning: Some(format!("{what}: {why}")) };
        if nodes.len() >= max {
            return stop(nodes, format!("stopped after {max} entries without returning to the head"));
        }
        if !seen.insert(node) {
            let n = nodes.len();
            return stop(nodes, format!("cycle: entry {node:#x} seen twice (after {n} entries)"));
        }
        let mut pair = [0u8; 16];
        if let Err(e) = k.read(node, &mut pair) {
            return stop(nodes, format!("entry {node:#x} after {prev:#x} is unreadable: {e}"));
        }
        let next = u64::from_le_bytes(pair[..8].try_into().unwrap_or([0; 8]));
        let back = u64::from_le_bytes(pair[8..].try_into().unwrap_or([0; 8]));
        if back != prev {
            return stop(nodes, format!("torn list: entry {node:#x}.prev is {back:#x}, expected {prev:#x}"));
        }
        nodes.push(node);
        prev = node;
        node = next;
    }
}

/// CPU numbers whose bit is set in a cpumask symbol (`__cpu_online_mask`, `__cpu_possible_mask`), below nr_cpu_ids.
pub fn cpus_in_mask(k: &Kernel, mask_symbol: &str) -> Result<Vec<u32>> {
    let nr = k.read_u32(k.symbol("nr_cpu_ids")?)?;
    if nr == 0 || nr > 65536 {
        return Err(Error::bad(format!("nr_cpu_ids = {nr} is not plausible")));
    }
    let mask = k.symbol(mask_symbol)?;
    let words = (nr as u64).div_ceil(64);
    let mut cpus = Vec::new();
    for w in 0..words {
        let bits = k.read_u64(mask + w * 8)?;
        for b in 0..64u64 {
            let cpu = w * 64 + b;
            if cpu < nr as u64 && bits & (1 << b) != 0 {
                cpus.push(cpu as u32);
            }
        }
    }
    Ok(cpus)
}

/// Address of a per-CPU variable's copy for `cpu`: its (zero-based) per-CPU symbol plus `__per_cpu_offset[cpu]`.
pub fn per_cpu_ptr(k: &Kernel, percpu_addr: u64, cpu: u32) -> Result<u64> {
    let off = k.read_u64(k.symbol("__per_cpu_offset")? + cpu as u64 * 8)?;
    Ok(percpu_addr.wrapping_add(off))
}

/// `atomic_long_t`/`atomic_t` counter arrays read as the kernel's global_*_page_state does: negative → 0.
pub fn clamp_nonneg(v: i64) -> u64 {
    if v < 0 { 0 } else { v as u64 }
}
