//! x86-64 4/5-level page walk, Intel SDM vol. 3 §4.5 (IA-32e and LA57 paging), 4 KiB / 2 MiB / 1 GiB pages.

use std::sync::Arc;

use super::{AddressSpaces, PhysicalMemory, VirtualMemory};
use crate::{Error, Result};

/// Page-table entry bits (SDM tables 4-15 … 4-20).
mod pte {
    pub const PRESENT: u64 = 1 << 0;
    pub const RW: u64 = 1 << 1;
    pub const USER: u64 = 1 << 2;
    /// PS: this PDPTE maps a 1 GiB page, or this PDE a 2 MiB page.
    pub const PS: u64 = 1 << 7;
    pub const NX: u64 = 1 << 63;
    /// Bits 51:12 hold the next table's (or page's) physical address.
    pub const ADDR_MASK: u64 = 0x000F_FFFF_FFFF_F000;
    /// Linux's _PAGE_SPECIAL (software bit 1, arch/x86/include/asm/pgtable_types.h): a PFN mapping with no
    /// struct page behind it that is counted (VM_PFNMAP, VM_MIXEDMAP: vvar, device memory).
    pub const SPECIAL: u64 = 1 << 9;
}

/// Page-table entries one residency count reads at most: a fully populated 64 GiB range; more means the tables
/// alias themselves (a hostile guest) or the range is absurd. Callers counting many ranges of one address space
/// share a budget instead (`resident_bytes_within`), so the bound holds for the whole address space.
pub const MAX_RESIDENT_ENTRIES: u64 = 1 << 24;

/// A translated address with what the final entry said about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Translation {
    pub phys: u64,
    /// 4096, 2 MiB or 1 GiB.
    pub page_size: u64,
    pub writable: bool,
    pub user: bool,
    pub nx: bool,
}

/// One address space: a page-table root (CR3 value or mm->pgd physical) over physical memory.
#[derive(Clone)]
pub struct PageTables {
    phys: Arc<dyn PhysicalMemory>,
    root: u64,
    levels: u8,
}

impl PageTables {
    /// `levels` is 4 or 5; `root` may carry CR3 flag/PCID bits, which are masked off.
    pub fn new(phys: Arc<dyn PhysicalMemory>, root: u64, levels: u8) -> Result<PageTables> {
        if levels != 4 && levels != 5 {
            return Err(Error::Unsupported(format!("{levels}-level paging (x86-64 has 4 or 5)")));
        }
        Ok(PageTables { phys, root: root & pte::ADDR_MASK, levels })
    }

    pub fn root(&self) -> u64 {
        self.root
    }

    pub fn levels(&self) -> u8 {
        self.levels
    }

    /// Canonical: bits 63..47 (4-level) or 63..56 (5-level) all equal.
    pub fn is_canonical(&self, vaddr: u64) -> bool {
        let bits = if self.levels == 5 { 57 } else { 48 };
        let shifted = ((vaddr << (64 - bits)) as i64) >> (64 - bits);
        shifted as u64 == vaddr
    }

    fn entry(&self, table: u64, index: u64, vaddr: u64) -> Result<u64> {
        let mut b = [0u8; 8];
        self.phys
            .read_phys(table + index * 8, &mut b)
            .map_err(|e| e.context(format!("page walk of {vaddr:#x}: page table at {table:#x}")))?;
        Ok(u64::from_le_bytes(b))
    }

    pub fn translate(&self, vaddr: u64) -> Result<Translation> {
        if !self.is_canonical(vaddr) {
            return Err(Error::fault(vaddr, format!("non-canonical virtual address for {}-level paging", self.levels)));
        }
        let mut table = self.root;
        let (mut writable, mut user, mut nx) = (true, true, false);
        // Shifts of the index fields: PML5 48, PML4 39, PDPT 30, PD 21, PT 12.
        let top_shift = if self.levels == 5 { 48 } else { 39 };
        let mut shift = top_shift;
        loop {
            let e = self.entry(table, (vaddr >> shift) & 0x1FF, vaddr)?;
            if e & pte::PRESENT == 0 {
                return Err(Error::fault(vaddr, format!("virtual address not mapped (level-{} entry {e:#x} not present)", (shift - 12) / 9 + 1)));
            }
            writable &= e & pte::RW != 0;
            user &= e & pte::USER != 0;
            nx |= e & pte::NX != 0;
            let large = (shift == 30 || shift == 21) && e & pte::PS != 0;
            if large || shift == 12 {
                let size = 1u64 << shift;
                let base = e & pte::ADDR_MASK & !(size - 1);
                return Ok(Translation { phys: base | (vaddr & (size - 1)), page_size: size, writable, user, nx });
            }
            table = e & pte::ADDR_MASK;
            shift -= 9;
        }
    }
}

impl PageTables {
    /// Bytes of [start, end) mapped by present, non-special entries (what smaps counts as Rss, less pages
    /// of the shared zero page at `zero_page_phys`), walking only the tables that exist.
    pub fn resident_bytes(&self, start: u64, end: u64, zero_page_phys: Option<u64>) -> Result<u64> {
        let mut budget = MAX_RESIDENT_ENTRIES;
        self.resident_bytes_within(start, end, zero_page_phys, &mut budget)
    }

    /// `resident_bytes`, reading at most `budget` entries (what it read is taken off; all of it when that was not
    /// enough, so later counts against the same budget fail at once).
    pub fn resident_bytes_within(&self, start: u64, end: u64, zero_page_phys: Option<u64>, budget: &mut u64) -> Result<u64> {
        if start >= end || !self.is_canonical(start) || !self.is_canonical(end - 1) {
            return Err(Error::fault(start, "residency of a non-canonical or empty range"));
        }
        let top_shift = if self.levels == 5 { 48 } else { 39 };
        self.resident_in(self.root, top_shift, start, end - 1, zero_page_phys, budget)
    }

    /// [first, last] within the table at `table` whose entries map 2^shift bytes each.
    fn resident_in(&self, table: u64, shift: u32, first: u64, last: u64, zero: Option<u64>, budget: &mut u64) -> Result<u64> {
        let (lo, hi) = ((first >> shift) & 0x1FF, (last >> shift) & 0x1FF);
        let n = hi - lo + 1;
        let Some(left) = budget.checked_sub(n) else {
            *budget = 0;
            return Err(Error::bad(format!("page tables under {first:#x} hold more than the entries this count may read")));
        };
        *budget = left;
        let mut raw = vec![0u8; (n * 8) as usize];
        self.phys.read_phys(table + lo * 8, &mut raw).map_err(|e| e.context(format!("page table at {table:#x}")))?;
        let size = 1u64 << shift;
        let mut total = 0u64;
        for i in 0..n {
            let e = crate::bytes::le_u64(&raw, (i * 8) as usize).unwrap_or(0);
            if e & pte::PRESENT == 0 {
                continue;
            }
            // the part of [first, last] this entry covers
            let base = (first & !((size << 9) - 1)) | ((lo + i) << shift);
            let (from, to) = (first.max(base), last.min(base | (size - 1)));
            let leaf = shift == 12 || ((shift == 30 || shift == 21) && e & pte::PS != 0);
            if leaf {
                let phys = e & pte::ADDR_MASK & !(size - 1);
                if e & pte::SPECIAL != 0 || (shift == 12 && zero == Some(phys)) {
                    continue;
                }
                total += to - from + 1;
            } else {
                total += self.resident_in(e & pte::ADDR_MASK, shift - 9, from, to, zero, budget)?;
            }
        }
        Ok(total)
    }
}

impl VirtualMemory for PageTables {
    fn resident(&self, start: u64, end: u64, zero_page_phys: Option<u64>, budget: &mut u64) -> Option<Result<u64>> {
        Some(self.resident_bytes_within(start, end, zero_page_phys, budget))
    }

    /// Reads spanning pages are split per page, each page translated on its own.
    fn read_virt(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let va = addr.checked_add(done as u64).ok_or_else(|| Error::fault(addr, "virtual read wraps around"))?;
            let t = self.translate(va)?;
            let in_page = (t.page_size - (va & (t.page_size - 1))) as usize;
            let n = in_page.min(buf.len() - done);
            self.phys.read_phys(t.phys, &mut buf[done..done + n]).map_err(|e| match e {
                Error::Fault { what, .. } => Error::fault(va, format!("{what} (maps to physical {:#x})", t.phys)),
                other => other,
            })?;
            done += n;
        }
        Ok(())
    }
}

/// Start of the kernel text mapping (arch/x86/include/asm/page_64_types.h __START_KERNEL_map).
pub const START_KERNEL_MAP: u64 = 0xffff_ffff_8000_0000;

/// The guest's address spaces on x86-64: the kernel's (rooted at init_top_pgt) and any process's.
pub struct X86AddressSpaces {
    kernel: PageTables,
}

impl X86AddressSpaces {
    pub fn new(phys: Arc<dyn PhysicalMemory>, dtb: u64, levels: u8) -> Result<X86AddressSpaces> {
        Ok(X86AddressSpaces { kernel: PageTables::new(phys, dtb, levels)? })
    }

    pub fn kernel_tables(&self) -> &PageTables {
        &self.kernel
    }
}

impl AddressSpaces for X86AddressSpaces {
    fn kernel(&self) -> &dyn VirtualMemory {
        &self.kernel
    }

    fn user(&self, pgd_phys: u64) -> Box<dyn VirtualMemory + '_> {
        Box::new(PageTables { phys: self.kernel.phys.clone(), root: pgd_phys & pte::ADDR_MASK, levels: self.kernel.levels })
    }

    fn kernel_virt_to_phys(&self, vaddr: u64) -> Result<u64> {
        Ok(self.kernel.translate(vaddr)?.phys)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::mem::PhysRange;

    /// Physical memory in a Vec, for synthetic page tables.
    pub(crate) struct VecMem(pub Vec<u8>, pub Vec<PhysRange>);
    impl VecMem {
        pub(crate) fn new(size: usize) -> VecMem {
            VecMem(vec![0; size], vec![PhysRange { start: 0, len: size as u64 }])
        }
        pub(crate) fn put_u64(&mut self, at: u64, v: u64) {
            self.0[at as usize..at as usize + 8].copy_from_slice(&v.to_le_bytes());
        }
    }
    impl PhysicalMemory for VecMem {
        fn read_phys(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
            let a = usize::try_from(addr).map_err(|_| Error::fault(addr, "vec"))?;
            let src = self.0.get(a..a.saturating_add(buf.len())).ok_or_else(|| Error::fault(addr, "vec"))?;
            buf.copy_from_slice(src);
            Ok(())
        }
        fn phys_slice(&self, addr: u64, len: usize) -> Result<&[u8]> {
            self.0.get(addr as usize..addr as usize + len).ok_or_else(|| Error::fault(addr, "vec"))
        }
        fn ranges(&self) -> &[PhysRange] {
            &self.1
        }
    }

    fn idx(va: u64, shift: u32) -> u64 {
        (va >> shift) & 0x1FF
    }

    const P: u64 = pte::PRESENT | pte::RW;

    /// Tables at 0x1000.. ; data pages from 0x100000. 4-level unless `five`.
    fn build(five: bool) -> (VecMem, u64) {
        let mut m = VecMem::new(0x80_0000);
        let (pml5, pml4, pdpt, pd, pt) = (0x1000u64, 0x2000u64, 0x3000u64, 0x4000u64, 0x5000u64);
        let va = 0xffff_ffff_8100_0000u64; // kernel text-like (4-level canonical; in 5-level too)
        if five {
            m.put_u64(pml5 + idx(va, 48) * 8, pml4 | P);
        }
        m.put_u64(pml4 + idx(va, 39) * 8, pdpt | P);
        m.put_u64(pdpt + idx(va, 30) * 8, pd | P);
        // 4 KiB pages for va and va+4K; the second page is at a non-adjacent frame.
        m.put_u64(pd + idx(va, 21) * 8, pt | P);
        m.put_u64(pt + idx(va, 12) * 8, 0x10_0000 | P);
        m.put_u64(pt + idx(va + 0x1000, 12) * 8, 0x30_0000 | P | pte::NX);
        // va+0x2000: not present.
        // 2 MiB page at va + 2M → phys 0x40_0000.
        m.put_u64(pd + idx(va + 0x20_0000, 21) * 8, 0x40_0000 | P | pte::PS);
        // 1 GiB page for a direct-map-like address → phys 0 (only the first 8 MiB exist).
        let dm = 0xffff_8880_0000_0000u64;
        let pdpt2 = 0x6000u64;
        m.put_u64(pml4 + idx(dm, 39) * 8, pdpt2 | P);
        m.put_u64(pdpt2 + idx(dm, 30) * 8, P | pte::PS);
        m.0[0x10_0FFE] = 0xA1;
        m.0[0x10_0FFF] = 0xA2;
        m.0[0x30_0000] = 0xB1;
        m.0[0x40_1234] = 0xC1;
        let root = if five { pml5 } else { pml4 };
        (m, root)
    }

    fn walk_checks(five: bool) {
        let (m, root) = build(five);
        let pt = PageTables::new(Arc::new(m), root | 0x18, if five { 5 } else { 4 }).unwrap();
        let va = 0xffff_ffff_8100_0000u64;
        let t = pt.translate(va + 0xFFE).unwrap();
        assert_eq!((t.phys, t.page_size, t.nx), (0x10_0FFE, 4096, false));
        assert!(pt.translate(va + 0x1000).unwrap().nx);
        // A read across the 4K boundary lands in two non-adjacent frames.
        let mut b = [0u8; 3];
        pt.read_virt(va + 0xFFE, &mut b).unwrap();
        assert_eq!(b, [0xA1, 0xA2, 0xB1]);
        // Not present → FAULT naming the virtual address.
        assert!(matches!(pt.translate(va + 0x2000), Err(Error::Fault { addr, .. }) if addr == va + 0x2000));
        let mut b1 = [0u8; 1];
        assert!(matches!(pt.read_virt(va + 0x1FFF, &mut [0u8; 2]), Err(Error::Fault { addr, .. }) if addr == va + 0x2000));
        // 2 MiB page.
        let t = pt.translate(va + 0x20_1234).unwrap();
        assert_eq!((t.phys, t.page_size), (0x40_1234, 2 << 20));
        pt.read_virt(va + 0x20_1234, &mut b1).unwrap();
        assert_eq!(b1[0], 0xC1);
        // 1 GiB page; inside the page but outside RAM faults at the physical level with the virtual address.
        let dm = 0xffff_8880_0000_0000u64;
        assert_eq!(pt.translate(dm + 0x10_0FFE).unwrap().page_size, 1 << 30);
        pt.read_virt(dm + 0x10_0FFE, &mut b1).unwrap();
        assert_eq!(b1[0], 0xA1);
        assert!(matches!(pt.read_virt(dm + 0x900_0000, &mut b1), Err(Error::Fault { addr, .. }) if addr == dm + 0x900_0000));
        // Non-canonical.
        assert!(pt.translate(0x0000_8000_0000_0000).is_err() || five);
        assert!(pt.translate(0x0100_0000_0000_0000).is_err());
        // Unmapped user half.
        assert!(pt.translate(0x1000).is_err());
    }

    #[test]
    fn four_level_walk() {
        walk_checks(false);
    }

    #[test]
    fn five_level_walk() {
        walk_checks(true);
        let (m, root) = build(true);
        let pt = PageTables::new(Arc::new(m), root, 5).unwrap();
        assert!(pt.is_canonical(0xff11_0000_0000_0000));
        assert!(!pt.is_canonical(0xfe11_0000_0000_0000));
        assert!(pt.is_canonical(0x00ff_ffff_ffff_f000));
    }

    #[test]
    fn tables_pointing_outside_ram_fault() {
        let mut m = VecMem::new(0x10000);
        // PML4[0] → a table far outside RAM.
        m.put_u64(0x1000, 0x000F_0000_0000_0000 | P);
        let pt = PageTables::new(Arc::new(m), 0x1000, 4).unwrap();
        assert!(matches!(pt.translate(0x1000), Err(Error::Fault { .. })));
        assert!(PageTables::new(Arc::new(VecMem::new(16)), 0, 3).is_err());
    }

    #[test]
    fn self_referencing_tables_terminate() {
        // Every entry points back at the root: the walk still ends after `levels` steps.
        let mut m = VecMem::new(0x2000);
        for i in 0..512 {
            m.put_u64(0x1000 + i * 8, 0x1000 | P);
        }
        let pt = PageTables::new(Arc::new(m), 0x1000, 5).unwrap();
        let t = pt.translate(0xffff_ffff_8000_0000).unwrap();
        assert_eq!(t.page_size, 4096);
    }

    /// Counts the physical reads made through it.
    struct Counting(VecMem, std::sync::atomic::AtomicUsize);
    impl PhysicalMemory for Counting {
        fn read_phys(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
            self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.0.read_phys(addr, buf)
        }
        fn phys_slice(&self, addr: u64, len: usize) -> Result<&[u8]> {
            self.0.phys_slice(addr, len)
        }
        fn ranges(&self) -> &[PhysRange] {
            self.0.ranges()
        }
    }

    /// Hostile guest: one table whose every entry points back at itself, so every address is mapped at
    /// every level. A walk still reads one entry per level and stops (the level count is the bound, not
    /// the entries), and a 1 MiB read through it costs one walk per page.
    #[test]
    fn self_mapping_tables_cost_one_read_per_level() {
        for levels in [4u8, 5] {
            let mut m = VecMem::new(0x2000);
            for i in 0..512 {
                m.put_u64(0x1000 + i * 8, 0x1000 | P | pte::USER);
            }
            let mem = Arc::new(Counting(m, Default::default()));
            let pt = PageTables::new(mem.clone(), 0x1000, levels).unwrap();
            let reads = || mem.1.swap(0, std::sync::atomic::Ordering::Relaxed);
            for va in [0u64, 0x7fff_ffff_f000, 0xffff_ffff_8100_0123] {
                let t = pt.translate(va).unwrap();
                assert_eq!((t.phys, t.page_size), (0x1000 | (va & 0xfff), 4096));
                assert_eq!(reads(), levels as usize, "{levels}-level walk of {va:#x}");
            }
            let mut buf = vec![0u8; 1 << 20];
            pt.read_virt(0x4000_0000, &mut buf).unwrap();
            assert_eq!(reads(), 256 * (levels as usize + 1));
            assert_eq!(&buf[..8], &(0x1000 | P | pte::USER).to_le_bytes());
        }
    }

    #[test]
    fn address_spaces() {
        let (m, root) = build(false);
        let s = X86AddressSpaces::new(Arc::new(m), root, 4).unwrap();
        assert_eq!(s.kernel_virt_to_phys(0xffff_ffff_8100_0010).unwrap(), 0x10_0010);
        let user = s.user(root);
        let mut b = [0u8; 1];
        user.read_virt(0xffff_ffff_8100_0FFE, &mut b).unwrap();
        assert_eq!(b[0], 0xA1);
    }

    #[test]
    fn resident_bytes_count_present_pages_in_range() {
        for five in [false, true] {
            let (mut m, root) = build(five);
            let va = 0xffff_ffff_8100_0000u64;
            // a special (PFN) page and a zero-page mapping next to the two ordinary 4 KiB pages
            m.put_u64(0x5000 + idx(va + 0x3000, 12) * 8, 0x50_0000 | P | pte::SPECIAL);
            m.put_u64(0x5000 + idx(va + 0x4000, 12) * 8, 0x60_0000 | P);
            let pt = PageTables::new(Arc::new(m), root, if five { 5 } else { 4 }).unwrap();
            // two 4 KiB pages, the 2 MiB page, the zero page (counted unless named as such); not the special one
            assert_eq!(pt.resident_bytes(va, va + (4 << 20), None).unwrap(), 3 * 4096 + (2 << 20));
            assert_eq!(pt.resident_bytes(va, va + (4 << 20), Some(0x60_0000)).unwrap(), 2 * 4096 + (2 << 20));
            // partial overlap with the 2 MiB page, and a range that starts mid-page
            assert_eq!(pt.resident_bytes(va + 0x20_1000, va + 0x20_3000, None).unwrap(), 0x2000);
            assert_eq!(pt.resident_bytes(va + 0x1000, va + 0x2000, None).unwrap(), 4096);
            assert_eq!(pt.resident_bytes(0x1000, 0x2000, None).unwrap(), 0, "nothing mapped");
            assert!(pt.resident_bytes(0x2000, 0x1000, None).is_err());
        }
    }

    #[test]
    fn resident_bytes_on_self_referencing_tables_is_bounded() {
        // every entry at every level points back at the root: 512^4 leaf entries unless bounded
        let mut m = VecMem::new(0x2000);
        for i in 0..512 {
            m.put_u64(0x1000 + i * 8, 0x1000 | P);
        }
        let pt = PageTables::new(Arc::new(m), 0x1000, 4).unwrap();
        let e = pt.resident_bytes(0, 0x7fff_ffff_f000, None).unwrap_err();
        assert!(e.to_string().contains("more than"), "{e}");
    }
}
