//! Test doubles for walkers: a synthetic guest (Vec RAM, offset-mapped kernel VM, map-backed symbols and types).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::kernel::{AddressSpaces, Kernel, KernelFacts, Member, Source, Symbols, Types};
use crate::mem::{PhysRange, PhysicalMemory, VirtualMemory};
use crate::{Error, Result};

/// Kernel virtual address of physical 0 in the synthetic guest (a direct map).
pub const KBASE: u64 = 0xffff_8880_0000_0000;
/// User addresses map to physical `vaddr - UBASE` in every synthetic process.
pub const UBASE: u64 = 0x5555_0000_0000;

pub struct Ram {
    bytes: RwLock<Vec<u8>>,
    ranges: Vec<PhysRange>,
}

impl PhysicalMemory for Ram {
    fn read_phys(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        let mem = self.bytes.read().map_err(|_| Error::bad("poisoned"))?;
        let start = usize::try_from(addr).map_err(|_| Error::fault(addr, "read"))?;
        let src = mem.get(start..start + buf.len()).ok_or_else(|| Error::fault(addr, "synthetic read"))?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn phys_slice(&self, addr: u64, _len: usize) -> Result<&[u8]> {
        Err(Error::fault(addr, "no slices in the synthetic RAM"))
    }
    fn ranges(&self) -> &[PhysRange] {
        &self.ranges
    }
}

struct OffsetVm {
    ram: Arc<Ram>,
    base: u64,
}

impl VirtualMemory for OffsetVm {
    fn read_virt(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        let phys = addr.checked_sub(self.base).ok_or_else(|| Error::fault(addr, "unmapped synthetic address"))?;
        self.ram.read_phys(phys, buf).map_err(|_| Error::fault(addr, "unmapped synthetic address"))
    }
}

struct Spaces {
    kernel: OffsetVm,
    ram: Arc<Ram>,
    /// Walk processes' own x86-64 page tables (with this many levels) instead of the offset map.
    user_levels: Option<u8>,
}

impl AddressSpaces for Spaces {
    fn kernel(&self) -> &dyn VirtualMemory {
        &self.kernel
    }
    fn user(&self, pgd_phys: u64) -> Box<dyn VirtualMemory + '_> {
        match self.user_levels.map(|l| crate::mem::PageTables::new(self.ram.clone(), pgd_phys, l)) {
            Some(Ok(tables)) => Box::new(tables),
            _ => Box::new(OffsetVm { ram: self.ram.clone(), base: UBASE }),
        }
    }
    fn kernel_virt_to_phys(&self, vaddr: u64) -> Result<u64> {
        vaddr.checked_sub(KBASE).ok_or_else(|| Error::fault(vaddr, "not in the synthetic direct map"))
    }
}

struct Syms(HashMap<String, u64>);
impl Symbols for Syms {
    fn address_of(&self, name: &str) -> Option<u64> {
        self.0.get(name).copied()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn all(&self) -> Vec<(String, u64)> {
        self.0.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
    fn source(&self) -> Source {
        Source::Kallsyms
    }
}

#[derive(Default)]
struct Tys {
    sizes: HashMap<String, u64>,
    members: HashMap<(String, String), Member>,
    enums: HashMap<String, i64>,
}
impl Types for Tys {
    fn struct_size(&self, name: &str) -> Option<u64> {
        self.sizes.get(name).copied()
    }
    fn member(&self, s: &str, path: &str) -> Option<Member> {
        self.members.get(&(s.to_string(), path.to_string())).copied()
    }
    fn enum_value(&self, _e: &str, name: &str) -> Option<i64> {
        self.enums.get(name).copied()
    }
    fn enumerator(&self, name: &str) -> Option<i64> {
        self.enums.get(name).copied()
    }
    fn type_count(&self) -> usize {
        self.sizes.len()
    }
    fn source(&self) -> Source {
        Source::Btf
    }
}

/// A synthetic guest under construction: write bytes, declare symbols and layouts, then `kernel()`.
pub struct Fake {
    pub mem: Vec<u8>,
    next: u64,
    syms: HashMap<String, u64>,
    tys: Tys,
    user_levels: Option<u8>,
}

impl Fake {
    pub fn new(size: usize) -> Self {
        Fake::from_mem(vec![0; size])
    }
    /// A synthetic guest over given RAM bytes (e.g. a copy of another Fake's, to damage it differently).
    pub fn from_mem(mem: Vec<u8>) -> Self {
        Fake { mem, next: 0x1000, syms: HashMap::new(), tys: Tys::default(), user_levels: None }
    }
    /// Reserve `len` zeroed bytes (16-aligned) and return their kernel virtual address.
    pub fn alloc(&mut self, len: u64) -> u64 {
        let at = self.next;
        self.next = (self.next + len + 15) & !15;
        assert!(self.next as usize <= self.mem.len(), "synthetic RAM too small");
        KBASE + at
    }
    pub fn put(&mut self, vaddr: u64, bytes: &[u8]) {
        let p = (if vaddr >= KBASE { vaddr - KBASE } else { vaddr - UBASE }) as usize;
        self.mem[p..p + bytes.len()].copy_from_slice(bytes);
    }
    pub fn put_u64(&mut self, vaddr: u64, v: u64) {
        self.put(vaddr, &v.to_le_bytes());
    }
    pub fn put_u32(&mut self, vaddr: u64, v: u32) {
        self.put(vaddr, &v.to_le_bytes());
    }
    pub fn sym(&mut self, name: &str, addr: u64) {
        self.syms.insert(name.to_string(), addr);
    }
    pub fn size(&mut self, s: &str, size: u64) {
        self.tys.sizes.insert(s.to_string(), size);
    }
    /// Declare `s.path` at `offset` with `size` bytes (array_len for arrays).
    pub fn member(&mut self, s: &str, path: &str, offset: u64, size: u64, array_len: Option<u64>) {
        let m = Member { offset, size, bit_offset: 0, bit_size: 0, array_len };
        self.tys.members.insert((s.to_string(), path.to_string()), m);
    }
    /// Declare a bitfield `s.path`: `bits` wide, `bit` bits into the byte at `offset` (in a `size`-byte unit).
    pub fn member_bits(&mut self, s: &str, path: &str, offset: u64, size: u64, bit: u32, bits: u32) {
        let m = Member { offset, size, bit_offset: bit, bit_size: bits, array_len: None };
        self.tys.members.insert((s.to_string(), path.to_string()), m);
    }
    /// Processes' user memory goes through their own page tables (mm->pgd, `levels` 4 or 5), not the offset map.
    pub fn user_page_tables(&mut self, levels: u8) {
        self.user_levels = Some(levels);
    }
    pub fn enumerator(&mut self, name: &str, v: i64) {
        self.tys.enums.insert(name.to_string(), v);
    }
    pub fn kernel(self) -> Kernel {
        let len = self.mem.len() as u64;
        let ram = Arc::new(Ram { bytes: RwLock::new(self.mem), ranges: vec![PhysRange { start: 0, len }] });
        let spaces = Spaces { kernel: OffsetVm { ram: ram.clone(), base: KBASE }, ram: ram.clone(), user_levels: self.user_levels };
        let facts = KernelFacts { page_size: 4096, paging_levels: 4, page_offset_base: KBASE, ..Default::default() };
        Kernel::from_parts(ram, Box::new(spaces), Box::new(Syms(self.syms)), Box::new(self.tys), facts)
    }
}
