//! Taint letters as the kernel prints them (kernel/panic.c taint_flags[], print_tainted(); module taints in
//! kernel/module/main.c module_flags_taint()), read from the guest's own table so a kernel that adds a flag
//! is decoded as it says.

use std::sync::Arc;

use super::symbolize::symbol_extent;
use crate::kernel::Kernel;

/// One entry of taint_flags[]: the letter when set, the one when clear, and whether modules carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaintFlag {
    pub set: char,
    pub clear: char,
    pub module: bool,
}

/// taint_flags[] of 6.1 (P F S R M B U D A W C I O E L K X T N), used when the guest's table is unreadable.
const FALLBACK: &[(char, bool)] = &[
    ('P', true), ('F', true), ('S', false), ('R', false), ('M', false), ('B', false), ('U', false), ('D', false), ('A', false),
    ('W', false), ('C', true), ('I', false), ('O', true), ('E', true), ('L', false), ('K', true), ('X', true), ('T', true), ('N', true),
];
/// More taint bits than an unsigned long holds is not a table.
const MAX_FLAGS: u64 = 64;

/// The guest's taint_flags[], indexed by taint bit.
pub fn taint_flags(k: &Kernel) -> Arc<Vec<TaintFlag>> {
    k.memo_boot(|| read_table(k).unwrap_or_else(|| FALLBACK.iter().map(|&(set, module)| TaintFlag { set, clear: ' ', module }).collect()))
}

fn read_table(k: &Kernel) -> Option<Vec<TaintFlag>> {
    let (addr, bytes) = symbol_extent(k, "taint_flags")?;
    let t = k.struct_type("taint_flag").ok()?;
    let (c_true, c_false, module) = (t.field("c_true").ok()?, t.field("c_false").ok()?, t.field("module").ok()?);
    let count = (bytes / t.size).min(MAX_FLAGS);
    let mut out = Vec::new();
    for i in 0..count {
        let at = addr + i * t.size;
        let (set, clear, m) = (k.read_member(at, c_true).ok()? as u8, k.read_member(at, c_false).ok()? as u8, k.read_member(at, module).ok()?);
        // the array ends where entries stop looking like flags (padding up to the next symbol)
        if !set.is_ascii_uppercase() || !(clear == b' ' || clear == b'-' || clear == b'G') || m > 1 {
            break;
        }
        out.push(TaintFlag { set: set as char, clear: clear as char, module: m == 1 });
    }
    (!out.is_empty()).then_some(out)
}

/// The letters of the set bits of `mask`, in bit order (module_flags_taint() / the "Tainted:" line's letters).
pub fn taint_letters(flags: &[TaintFlag], mask: u64, modules_only: bool) -> String {
    flags.iter().enumerate().filter(|(i, f)| *i < 64 && mask & (1 << i) != 0 && (f.module || !modules_only)).map(|(_, f)| f.set).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_follow_bit_order_and_module_flags() {
        let flags: Vec<TaintFlag> = FALLBACK.iter().map(|&(set, module)| TaintFlag { set, clear: ' ', module }).collect();
        // O (12) and E (13): an out-of-tree unsigned module
        assert_eq!(taint_letters(&flags, (1 << 12) | (1 << 13), true), "OE");
        // D (7) and W (9) are kernel-wide, not module flags
        assert_eq!(taint_letters(&flags, (1 << 7) | (1 << 9) | 1, true), "P");
        assert_eq!(taint_letters(&flags, (1 << 7) | (1 << 9) | 1, false), "PDW");
    }
}
