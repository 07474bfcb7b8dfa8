//! Guest memory as address spaces: physical (RAM sources) and virtual (x86-64 paging).

/// A guest-physical range backed by the source, [start, start+len).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhysRange {
    pub start: u64,
    pub len: u64,
}

/// One guest-physical range held contiguously in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub gpa: u64,
    pub file_offset: u64,
    pub len: u64,
}

/// Guest-physical memory, whatever file it comes from (raw+layout, ELF core, LiME, kdump).
/// Reads are bounds-checked: any byte not backed by the source gives `Error::Fault` (a page a filtered
/// dump left out gives `Error::excluded`, a FAULT that says so).
pub trait PhysicalMemory: Send + Sync {
    fn read_phys(&self, addr: u64, buf: &mut [u8]) -> crate::Result<()>;
    /// Zero-copy view of a physical range when it is contiguous and uncompressed in the source; callers
    /// fall back to `read_phys` on any error (a compressed source never offers one).
    fn phys_slice(&self, addr: u64, len: usize) -> crate::Result<&[u8]>;
    /// The backed ranges, sorted by start.
    fn ranges(&self) -> &[PhysRange];
    /// The ranges worth scanning for signatures: `ranges()` minus holes of a sparse file (which read
    /// as zeros and would cost page cache to touch). Sorted by start.
    fn scan_ranges(&self) -> Vec<PhysRange> {
        self.ranges().to_vec()
    }
    /// The caller is done with [addr, addr+len) for now (a scan moving on): a mapped source drops those
    /// pages from the process's resident memory, so scanning a 16 GiB file stays small. A hint; no-op by default.
    fn release(&self, _addr: u64, _len: usize) {}
    /// Let go of the pages this source keeps resident for reading (a mapped file's), so a long-running reader's
    /// RSS stays bounded between collections; later reads fault them back in from the page cache.
    fn release_resident(&self) {}
    /// The caller is about to read [addr, addr+len) once, front to back (a scan's next window): a mapped source
    /// has the kernel read it ahead now, so the scan does not wait on one page fault per page. A hint; no-op by default.
    fn prefetch(&self, _addr: u64, _len: usize) {}
}

/// Address spaces of the guest: the kernel's, and a process's from its page-table root.
pub trait AddressSpaces: Send + Sync {
    fn kernel(&self) -> &dyn VirtualMemory;
    /// The user address space rooted at `pgd_phys` (physical address of mm->pgd).
    fn user(&self, pgd_phys: u64) -> Box<dyn VirtualMemory + '_>;
    /// Translate a kernel virtual address to physical (page walk, or the direct map).
    fn kernel_virt_to_phys(&self, vaddr: u64) -> crate::Result<u64>;
}

/// A virtual address space (the kernel's, or one process's through its mm->pgd).
pub trait VirtualMemory {
    fn read_virt(&self, addr: u64, buf: &mut [u8]) -> crate::Result<()>;
    /// Bytes of [start, end) backed by present pages (less special PFN mappings and the zero page at
    /// `zero_page_phys`), reading at most `budget` page-table entries (taken off it); None when this address
    /// space cannot tell.
    fn resident(&self, _start: u64, _end: u64, _zero_page_phys: Option<u64>, _budget: &mut u64) -> Option<crate::Result<u64>> {
        None
    }
}

pub mod convert;
pub mod e820;
pub mod elfcore;
pub mod kdump;
pub mod layout;
pub mod lime;
pub mod page_cache;
pub mod paging;
pub mod process;
pub mod source;

pub use paging::{PageTables, X86AddressSpaces};
pub use source::{open_ram, open_source, source_from_bytes, MappedRam, RamFormat, SourceInfo};
