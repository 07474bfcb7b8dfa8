//! The memory map the guest booted with: the e820 table in the boot_params ("zero page") the x86 setup code
//! filled (arch/x86/include/uapi/asm/bootparam.h), found in the guest's first MiB, which the kernel keeps
//! reserved (5.13+, arch/x86/kernel/setup.c). It says how far the guest's RAM reaches, so a RAM file that
//! stops short can be called truncated rather than corrupt.

use super::{PhysRange, PhysicalMemory};
use crate::bytes::{le_u32, le_u64};

/// struct boot_params offsets: e820_entries (u8), hdr.header ("HdrS"), e820_table[E820_MAX_ENTRIES_ZEROPAGE].
mod raw {
    pub const E820_ENTRIES: usize = 0x1e8;
    pub const HDR_HEADER: usize = 0x202;
    pub const HDR_MAGIC: &[u8; 4] = b"HdrS";
    pub const E820_TABLE: usize = 0x2d0;
    pub const E820_ENTRY_LEN: usize = 20;
    pub const E820_MAX_ENTRIES_ZEROPAGE: usize = 128;
    pub const BOOT_PARAMS_LEN: usize = 4096;
}

/// E820_TYPE_RAM; the other types (reserved, ACPI, NVS, unusable, PMEM …) run up to 20 in include/asm/e820/types.h.
pub const E820_TYPE_RAM: u32 = 1;
const E820_TYPE_MAX: u32 = 20;

/// Where to look: the first MiB, where boot loaders put the setup code (QEMU at 0x10000 or 0x90000,
/// Firecracker's zero page at 0x7000), on the 16-byte alignment boot_params has.
const LOW_MEMORY: u64 = 1 << 20;
const ALIGN: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct E820Entry {
    pub addr: u64,
    pub size: u64,
    pub kind: u32,
}

/// The first boot_params in low memory whose e820 table reads as one (1–128 entries, known types, sorted,
/// not overlapping); None when there is none (the region was reused, or another architecture's guest).
pub fn find(phys: &dyn PhysicalMemory) -> Option<Vec<E820Entry>> {
    let mut low = vec![0u8; LOW_MEMORY as usize];
    let mut have = vec![false; low.len() / 4096];
    for (page, ok) in have.iter_mut().enumerate() {
        let at = page * 4096;
        *ok = phys.read_phys(at as u64, &mut low[at..at + 4096]).is_ok();
    }
    let readable = |start: usize, len: usize| (start / 4096..(start + len).div_ceil(4096)).all(|p| have.get(p) == Some(&true));
    let mut base = 0usize;
    while base + raw::BOOT_PARAMS_LEN <= low.len() {
        if low.get(base + raw::HDR_HEADER..base + raw::HDR_HEADER + 4) == Some(&raw::HDR_MAGIC[..]) && readable(base, raw::BOOT_PARAMS_LEN) {
            if let Some(table) = e820_table(&low[base..base + raw::BOOT_PARAMS_LEN]) {
                return Some(table);
            }
        }
        base += ALIGN;
    }
    None
}

fn e820_table(bp: &[u8]) -> Option<Vec<E820Entry>> {
    let n = *bp.get(raw::E820_ENTRIES)? as usize;
    if n == 0 || n > raw::E820_MAX_ENTRIES_ZEROPAGE {
        return None;
    }
    let mut out: Vec<E820Entry> = Vec::with_capacity(n);
    for i in 0..n {
        let at = raw::E820_TABLE + i * raw::E820_ENTRY_LEN;
        let e = E820Entry { addr: le_u64(bp, at)?, size: le_u64(bp, at + 8)?, kind: le_u32(bp, at + 16)? };
        let end = e.addr.checked_add(e.size)?;
        if e.size == 0 || e.kind == 0 || e.kind > E820_TYPE_MAX || out.last().is_some_and(|p| p.addr + p.size > e.addr) || end > 1 << 52 {
            return None;
        }
        out.push(e);
    }
    // The setup code's map always starts with low RAM at 0.
    (out.first()?.addr == 0 && out.iter().any(|e| e.kind == E820_TYPE_RAM)).then_some(out)
}

/// Where the e820 map's RAM ends.
pub fn ram_top(map: &[E820Entry]) -> u64 {
    map.iter().filter(|e| e.kind == E820_TYPE_RAM).map(|e| e.addr + e.size).max().unwrap_or(0)
}

/// Bytes of e820 RAM that no range of the source holds.
pub fn unbacked_ram(map: &[E820Entry], ranges: &[PhysRange]) -> u64 {
    let mut missing = 0u64;
    for e in map.iter().filter(|e| e.kind == E820_TYPE_RAM) {
        let (start, end) = (e.addr, e.addr + e.size);
        let covered: u64 = ranges
            .iter()
            .map(|r| {
                let (a, b) = (r.start.max(start), r.start.saturating_add(r.len).min(end));
                b.saturating_sub(a)
            })
            .sum();
        missing = missing.saturating_add((end - start).saturating_sub(covered));
    }
    missing
}

/// "the RAM file holds guest-physical memory up to 100 MiB, but the guest's e820 map has RAM up to 256 MiB:
/// truncated?" when the source lacks RAM the guest booted with; None when it holds it all or no map is found.
pub fn truncation(phys: &dyn PhysicalMemory) -> Option<String> {
    let map = find(phys)?;
    let missing = unbacked_ram(&map, phys.ranges());
    // a page or two of slack: some dumps leave out the last partial page of a region
    if missing <= 2 * 4096 {
        return None;
    }
    let held = phys.ranges().iter().map(|r| r.start.saturating_add(r.len)).max().unwrap_or(0);
    Some(format!(
        "the RAM file holds guest-physical memory up to {}, but the guest's e820 map has RAM up to {} ({} missing): truncated?",
        mib(held),
        mib(ram_top(&map)),
        mib(missing)
    ))
}

fn mib(n: u64) -> String {
    if n >= 10 << 30 {
        format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64)
    } else {
        format!("{} MiB", n.div_ceil(1 << 20))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Result;

    struct Flat(Vec<u8>, Vec<PhysRange>);
    impl PhysicalMemory for Flat {
        fn read_phys(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
            let s = usize::try_from(addr).ok().and_then(|a| self.0.get(a..a + buf.len())).ok_or_else(|| crate::Error::fault(addr, "t"))?;
            buf.copy_from_slice(s);
            Ok(())
        }
        fn phys_slice(&self, addr: u64, _len: usize) -> Result<&[u8]> {
            Err(crate::Error::fault(addr, "t"))
        }
        fn ranges(&self) -> &[PhysRange] {
            &self.1
        }
    }

    /// Low memory with a boot_params at `base` describing QEMU pc's map for a guest of `mem` bytes.
    fn low_with_map(base: usize, mem: u64) -> Vec<u8> {
        let mut m = vec![0u8; 1 << 20];
        m[base + raw::HDR_HEADER..][..4].copy_from_slice(raw::HDR_MAGIC);
        let map = [(0u64, 0x9fc00u64, 1u32), (0x9fc00, 0x400, 2), (0xf0000, 0x10000, 2), (0x100000, mem - 0x100000 - 0x23000, 1), (0xfffc0000, 0x40000, 2)];
        m[base + raw::E820_ENTRIES] = map.len() as u8;
        for (i, (a, s, t)) in map.iter().enumerate() {
            let at = base + raw::E820_TABLE + i * raw::E820_ENTRY_LEN;
            m[at..at + 8].copy_from_slice(&a.to_le_bytes());
            m[at + 8..at + 16].copy_from_slice(&s.to_le_bytes());
            m[at + 16..at + 20].copy_from_slice(&t.to_le_bytes());
        }
        m
    }

    #[test]
    fn finds_the_setup_codes_map_and_measures_what_is_missing() {
        // a decoy header with a garbage entry count first, as QEMU's loaded setup image leaves at 0x10000
        let mut low = low_with_map(0x14790, 256 << 20);
        low[0x10000 + raw::HDR_HEADER..][..4].copy_from_slice(raw::HDR_MAGIC);
        low[0x10000 + raw::E820_ENTRIES] = 255;
        let whole = Flat(low.clone(), vec![PhysRange { start: 0, len: 256 << 20 }]);
        let map = find(&whole).unwrap();
        assert_eq!(map.len(), 5);
        assert_eq!(ram_top(&map), (256 << 20) - 0x23000);
        assert_eq!(truncation(&whole), None);
        let short = Flat(low, vec![PhysRange { start: 0, len: 100 << 20 }]);
        let msg = truncation(&short).unwrap();
        assert!(msg.contains("up to 100 MiB") && msg.contains("RAM up to 256 MiB") && msg.ends_with("truncated?"), "{msg}");
    }

    #[test]
    fn no_map_or_a_bad_one_says_nothing() {
        let blank = Flat(vec![0u8; 1 << 20], vec![PhysRange { start: 0, len: 1 << 20 }]);
        assert_eq!(find(&blank), None);
        for damage in [|m: &mut Vec<u8>| m[0x14790 + raw::E820_ENTRIES] = 0, |m: &mut Vec<u8>| m[0x14790 + raw::E820_TABLE + 16] = 99, |m: &mut Vec<u8>| m[0x14790 + raw::E820_TABLE + 20 + 7] = 0xff] {
            let mut low = low_with_map(0x14790, 256 << 20);
            damage(&mut low);
            assert_eq!(find(&Flat(low, vec![PhysRange { start: 0, len: 1 << 20 }])), None);
        }
        // low memory not held at all (a source that starts above it)
        assert_eq!(find(&Flat(vec![], vec![])), None);
    }
}
