//! One discovered kernel as walkers see it: RAM, address spaces, symbols, types and the facts about the boot.

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::{Member, Source, Symbols, Types};
use crate::mem::{AddressSpaces, PhysicalMemory, VirtualMemory};
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

/// Everything a walker needs. Built by kernel discovery (or from parts in tests).
pub struct Kernel {
    pub phys: Arc<dyn PhysicalMemory>,
    pub spaces: Box<dyn AddressSpaces>,
    pub symbols: Box<dyn Symbols>,
    pub types: Box<dyn Types>,
    pub facts: KernelFacts,
    /// Tables derived from guest memory once per opened kernel (the symbol index by address, the loaded
    /// modules' symbols …), by type: see `memo`.
    memo: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
    /// Tables derived from what does not change while the kernel runs (its symbols, its rodata): kept on a live
    /// guest too (`memo_boot`).
    memo_boot: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
    /// The RAM changes under us (a running VM read live): walks that do not hold together are re-run.
    live: AtomicBool,
    /// What the current walk found that did not hold together (a list whose prev/next disagree, a seqcount
    /// that moved, a record overwritten while read), noted by the object helpers and walkers.
    torn: Mutex<Vec<String>>,
    /// Retries and torn reads since the caller last asked (`take_consistency`).
    consistency: Mutex<Consistency>,
}

/// How the reads since the last `take_consistency` went: walks re-run, and what stayed torn after the last try.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Consistency {
    pub live: bool,
    pub walks: u32,
    pub retries: u32,
    /// Walks that were still torn after their last retry ("tasks: torn list: …"), at most `MAX_TORN_NOTES`.
    pub torn: Vec<String>,
    /// Every torn read seen, including those a retry repaired.
    pub torn_reads: u32,
}

type MemoMap = Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>;

fn memo_in<T: Any + Send + Sync>(memo: &MemoMap, init: impl FnOnce() -> T) -> Arc<T> {
    let key = TypeId::of::<T>();
    if let Some(v) = memo.lock().ok().and_then(|m| m.get(&key).cloned()) {
        if let Ok(t) = v.downcast::<T>() {
            return t;
        }
    }
    // Built outside the lock: `init` may itself use other memoised tables.
    let built = Arc::new(init());
    if let Ok(mut m) = memo.lock() {
        m.insert(key, built.clone());
    }
    built
}

/// Notes kept per walk and per consistency report: enough to say what tore, bounded against a hostile guest.
const MAX_TORN_NOTES: usize = 16;

impl Kernel {
    pub fn from_parts(
        phys: Arc<dyn PhysicalMemory>,
        spaces: Box<dyn AddressSpaces>,
        symbols: Box<dyn Symbols>,
        types: Box<dyn Types>,
        facts: KernelFacts,
    ) -> Self {
        Kernel {
            phys,
            spaces,
            symbols,
            types,
            facts,
            memo: Mutex::new(HashMap::new()),
            memo_boot: Mutex::new(HashMap::new()),
            live: AtomicBool::new(false),
            torn: Mutex::new(Vec::new()),
            consistency: Mutex::new(Consistency::default()),
        }
    }

    /// Say whether the RAM may change while we read (a running VM read live; false while it is paused).
    pub fn set_live(&self, live: bool) {
        self.live.store(live, Ordering::Relaxed);
    }

    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::Relaxed)
    }

    /// A read that did not hold together: the walk's result may be torn (walkers::run re-runs it when live).
    pub fn note_torn(&self, what: impl Into<String>) {
        if let Ok(mut t) = self.torn.lock() {
            if t.len() < MAX_TORN_NOTES {
                t.push(what.into());
            }
        }
    }

    /// The torn notes of the current walk, cleared.
    pub fn take_torn(&self) -> Vec<String> {
        self.torn.lock().map(|mut t| std::mem::take(&mut *t)).unwrap_or_default()
    }

    /// Account one finished walk: how many times it was re-run, how many torn reads it saw, and what stayed torn.
    pub fn record_walk(&self, retries: u32, torn_reads: u32, still_torn: Vec<String>) {
        if let Ok(mut c) = self.consistency.lock() {
            c.walks = c.walks.saturating_add(1);
            c.retries = c.retries.saturating_add(retries);
            c.torn_reads = c.torn_reads.saturating_add(torn_reads);
            for n in still_torn {
                if c.torn.len() < MAX_TORN_NOTES {
                    c.torn.push(n);
                }
            }
        }
    }

    /// The consistency of the walks since the last call (and start afresh).
    pub fn take_consistency(&self) -> Consistency {
        let mut c = self.consistency.lock().map(|mut c| std::mem::take(&mut *c)).unwrap_or_default();
        c.live = self.is_live();
        c
    }

    /// Drop the memoised tables of what changes (a live guest's module list and the like are read again by the next
    /// walk); the boot's own tables (`memo_boot`) stay.
    pub fn forget_memo(&self) {
        if let Ok(mut m) = self.memo.lock() {
            m.clear();
        }
    }

    /// The table of type `T` derived from this kernel, built by `init` on first use and kept while the
    /// kernel is open (a paused guest does not change; a live one forgets them before each walk).
    pub fn memo<T: Any + Send + Sync>(&self, init: impl FnOnce() -> T) -> Arc<T> {
        memo_in(&self.memo, init)
    }

    /// Like `memo`, for a table of what stays put for the whole boot (derived from the symbols or read-only data):
    /// a live guest keeps it across walks.
    pub fn memo_boot<T: Any + Send + Sync>(&self, init: impl FnOnce() -> T) -> Arc<T> {
        memo_in(&self.memo_boot, init)
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

    /// A NUL-terminated string of at most `max` bytes, as Latin-1 (every byte kept, as /proc text is read),
    /// read page by page so a string near the end of a mapping is not lost to the next page's absence.
    pub fn read_cstr(&self, vaddr: u64, max: usize) -> Result<String> {
        let mut out = Vec::new();
        let mut at = vaddr;
        while out.len() < max {
            let n = ((4096 - (at & 4095)) as usize).min(max - out.len());
            let mut buf = vec![0u8; n];
            self.read(at, &mut buf)?;
            if let Some(end) = buf.iter().position(|&b| b == 0) {
                out.extend_from_slice(&buf[..end]);
                break;
            }
            out.extend_from_slice(&buf);
            at = at.wrapping_add(n as u64);
        }
        Ok(out.iter().map(|&c| c as char).collect())
    }
}
