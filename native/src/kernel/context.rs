//! One discovered kernel as walkers see it: RAM, address spaces, symbols, types and the facts about the boot.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Member, Source, Symbols, Types};
use crate::mem::{PhysicalMemory, VirtualMemory};
use crate::{Error, Result};

/// Facts about the booted kernel, each with where it came from.
#[derive(Debug, Clone, Default)]
pub struct KernelFacts {
    pub release: Option<String>,
    pub banner: Option<String>,
    pub build_id: Option<String>,
    pub kaslr_offset: u64,
    pub phys_base: u64,
    /// Physical address of the kernel's top-level page table (init_top_pgt / swapper_pg_dir).
    pub dtb: u64,
    /// 4 or 5.
    pub paging_levels: u8,
    /// Direct map base (value of `page_offset_base`), vmemmap base (`vmemmap_base`), vmalloc base.
    pub page_offset_base: u64,
    pub vmemmap_base: u64,
    pub vmalloc_base: u64,
    pub page_size: u64,
    /// Raw VMCOREINFO key/values (e.g. "OFFSET(page.flags)" → "0"), when found.
    pub vmcoreinfo: BTreeMap<String, String>,
    /// Where each named fact above came from: "release" → Vmcoreinfo, "dtb" → Vmcoreinfo, …
    pub sources: BTreeMap<String, Source>,
}

/// Address spaces of the guest: the kernel's, and a process's from its page-table root.
pub trait AddressSpaces: Send + Sync {
    fn kernel(&self) -> &dyn VirtualMemory;
    /// The user address space rooted at `pgd_phys` (physical address of mm->pgd).
    fn user(&self, pgd_phys: u64) -> Box<dyn VirtualMemory + '_>;
    /// Translate a kernel virtual address to physical (page walk, or the direct map).
    fn kernel_virt_to_phys(&self, vaddr: u64) -> Result<u64>;
}

/// Everything a walker needs. Built by kernel discovery (or from parts in tests).
pub struct Kernel {
    pub phys: Arc<dyn PhysicalMemory>,
    pub spaces: Box<dyn AddressSpaces>,
    pub symbols: Box<dyn Symbols>,
    pub types: Box<dyn Types>,
    pub facts: KernelFacts,
}

impl Kernel {
    pub fn from_parts(
        phys: Arc<dyn PhysicalMemory>,
        spaces: Box<dyn AddressSpaces>,
        symbols: Box<dyn Symbols>,
        types: Box<dyn Types>,
        facts: KernelFacts,
    ) -> Self {
        Kernel { phys, spaces, symbols, types, facts }
    }

    pub fn vm(&self) -> &dyn VirtualMemory {
        self.spaces.kernel()
    }

    /// A symbol's address, or NOT_FOUND naming it.
    pub fn symbol(&self, name: &str) -> Result<u64> {
        self.symbols
            .address_of(name)
            .ok_or_else(|| Error::NotFound(format!("kernel symbol {name} not found")))
    }

    pub fn member(&self, struct_name: &str, path: &str) -> Result<Member> {
        self.types
            .member(struct_name, path)
            .ok_or_else(|| Error::NotFound(format!("member {struct_name}.{path} not found in kernel types")))
    }

    pub fn offset(&self, struct_name: &str, path: &str) -> Result<u64> {
        Ok(self.member(struct_name, path)?.offset)
    }

    pub fn size_of(&self, struct_name: &str) -> Result<u64> {
        self.types
            .struct_size(struct_name)
            .ok_or_else(|| Error::NotFound(format!("struct {struct_name} not found in kernel types")))
    }

    pub fn enumerator(&self, name: &str) -> Result<i64> {
        self.types
            .enumerator(name)
            .ok_or_else(|| Error::NotFound(format!("enumerator {name} not found in kernel types")))
    }

    pub fn read(&self, vaddr: u64, buf: &mut [u8]) -> Result<()> {
        self.vm().read_virt(vaddr, buf)
    }

    pub fn read_u8(&self, vaddr: u64) -> Result<u8> {
        let mut b = [0u8; 1];
        self.read(vaddr, &mut b)?;
        Ok(b[0])
    }

    pub fn read_u16(&self, vaddr: u64) -> Result<u16> {
        let mut b = [0u8; 2];
        self.read(vaddr, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    pub fn read_u32(&self, vaddr: u64) -> Result<u32> {
        let mut b = [0u8; 4];
        self.read(vaddr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    pub fn read_u64(&self, vaddr: u64) -> Result<u64> {
        let mut b = [0u8; 8];
        self.read(vaddr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    pub fn read_i64(&self, vaddr: u64) -> Result<i64> {
        Ok(self.read_u64(vaddr)? as i64)
    }

    /// Read an unsigned integer member of `size` 1/2/4/8 bytes (the size comes from the types).
    pub fn read_uint(&self, vaddr: u64, size: u64) -> Result<u64> {
        match size {
            1 => self.read_u8(vaddr).map(u64::from),
            2 => self.read_u16(vaddr).map(u64::from),
            4 => self.read_u32(vaddr).map(u64::from),
            8 => self.read_u64(vaddr),
            n => Err(Error::bad(format!("unexpected integer size {n} at {vaddr:#x}"))),
        }
    }

    /// Bytes of guest RAM: no structure the guest holds can be longer.
    pub fn ram_bytes(&self) -> u64 {
        self.phys.ranges().iter().fold(0u64, |sum, r| sum.saturating_add(r.len))
    }

    /// `len` bytes at `vaddr` in a new buffer. A length the guest could not hold (more than its RAM) is
    /// BAD_DATA before anything is allocated: sizes read from guest memory must not size our allocations.
    pub fn read_vec(&self, vaddr: u64, len: u64, what: &str) -> Result<Vec<u8>> {
        if len > self.ram_bytes() {
            return Err(Error::bad(format!("{what} of {len} bytes at {vaddr:#x} is larger than the guest's RAM")));
        }
        let mut buf = vec![0u8; len as usize];
        self.read(vaddr, &mut buf).map_err(|e| e.context(format!("reading {what}")))?;
        Ok(buf)
    }

    /// A NUL-terminated string of at most `max` bytes (lossy UTF-8).
    pub fn read_cstr(&self, vaddr: u64, max: usize) -> Result<String> {
        let mut buf = vec![0u8; max];
        self.read(vaddr, &mut buf)?;
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        Ok(String::from_utf8_lossy(&buf[..end]).into_owned())
    }
}
