//! /proc/meminfo as fs/proc/meminfo.c meminfo_proc_show() computes it (6.1): si_meminfo, si_mem_available
//! (mm/page_alloc.c), nr_blockdev_pages (block/bdev.c), vm_commit_limit (mm/util.c), hugetlb_report_meminfo.

use schemars::JsonSchema;
use serde::Serialize;

use crate::kernel::Kernel;
use crate::walkers::{Context, NoOptions};
use crate::objects::{all_zones, clamp_nonneg, list_entries, online_cpus, per_cpu_ptr};
use crate::{Error, Result};

/// At most this many block-device inodes are summed for Buffers.
const MAX_BDEV_INODES: usize = 1_000_000;
/// Bounds on the hstate array (HUGE_MAX_HSTATE is 2 on x86).
const MAX_HSTATES: i64 = 16;

crate::walker! {
    /// /proc/meminfo, every field computed the way the guest kernel's meminfo_proc_show() computes it.
    name: "meminfo",
    options: NoOptions,
    record: Meminfo,
    run: walk,
}

fn walk(cx: &Context, _: &NoOptions) -> Result<Meminfo> {
    meminfo(cx.kernel)
}

/// The unit /proc/meminfo prints after a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
pub enum Unit {
    /// KiB (page counts are converted).
    #[serde(rename = "kB")]
    Kb,
    /// A plain count (the HugePages_* lines).
    #[serde(rename = "")]
    Count,
}

/// One /proc/meminfo line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Field {
    pub name: &'static str,
    pub value: u64,
    pub unit: Unit,
}

/// /proc/meminfo in the kernel's order.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct Meminfo {
    pub fields: Vec<Field>,
    /// Fields left out, with why (a symbol this kernel does not have, an unreadable structure).
    pub warnings: Vec<String>,
}

impl Meminfo {
    pub fn get(&self, name: &str) -> Option<u64> {
        self.fields.iter().find(|f| f.name == name).map(|f| f.value)
    }
}

/// Reads of the global vmstat counters (include/linux/vmstat.h global_*_page_state: negative → 0).
struct Stats<'k> {
    k: &'k Kernel,
    zone: u64,
    node: u64,
}

impl Stats<'_> {
    fn read(&self, base: u64, item: &str) -> Result<u64> {
        let idx = self.k.enumerator(item)?;
        let idx = u64::try_from(idx).map_err(|_| Error::bad(format!("{item} = {idx}")))?;
        Ok(clamp_nonneg(self.k.read_i64(base + idx * 8)?))
    }
    fn zone(&self, item: &str) -> Result<u64> {
        self.read(self.zone, item)
    }
    fn node(&self, item: &str) -> Result<u64> {
        self.read(self.node, item)
    }
}

pub fn meminfo(k: &Kernel) -> Result<Meminfo> {
    let st = Stats { k, zone: k.symbol("vm_zone_stat")?, node: k.symbol("vm_node_stat")? };
    let page_kb = k.facts.page_size.max(4096) / 1024;
    let mut out = Meminfo::default();
    let mut warnings = Vec::new();
    let mut opt = |what: &str, r: Result<u64>| -> Option<u64> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                warnings.push(format!("{what}: {e}"));
                None
            }
        }
    };

    // si_meminfo()
    let totalram = clamp_nonneg(k.read_i64(k.symbol("_totalram_pages")?)?);
    let freeram = st.zone("NR_FREE_PAGES")?;
    let shared = st.node("NR_SHMEM")?;
    // A damaged block-device inode list costs Buffers (and Cached's exactness), not the whole report.
    let buffers = opt("Buffers", nr_blockdev_pages(k));
    // si_swapinfo(): nr_to_be_unused is only non-zero during swapoff
    let total_swap = opt("SwapTotal", sym_i64(k, "total_swap_pages").map(clamp_nonneg));
    let free_swap = opt("SwapFree", sym_i64(k, "nr_swap_pages").map(clamp_nonneg));
    // total_swapcache_pages() counts the pages NR_SWAPCACHE counts
    let swapcached = opt("SwapCached", st.node("NR_SWAPCACHE"));

    let file_pages = st.node("NR_FILE_PAGES")? as i64;
    let cached = (file_pages - swapcached.unwrap_or(0) as i64 - buffers.unwrap_or(0) as i64).max(0) as u64;
    let lru = |name: &str| st.node(name);
    let (active_anon, inactive_anon) = (lru("NR_ACTIVE_ANON")?, lru("NR_INACTIVE_ANON")?);
    let (active_file, inactive_file) = (lru("NR_ACTIVE_FILE")?, lru("NR_INACTIVE_FILE")?);
    let unevictable = lru("NR_UNEVICTABLE")?;
    let sreclaimable = st.node("NR_SLAB_RECLAIMABLE_B")?;
    let sunreclaim = st.node("NR_SLAB_UNRECLAIMABLE_B")?;
    let misc_reclaimable = st.node("NR_KERNEL_MISC_RECLAIMABLE")?;
    let available = si_mem_available(k, freeram, active_file.saturating_add(inactive_file), sreclaimable.saturating_add(misc_reclaimable))?;

    // true: a page count shown in kB; false: the kernel's value is shown as is (already kB, or a count).
    let mut f = |name: &'static str, v: Option<u64>, pages: bool| {
        if let Some(value) = v {
            let unit = if name.starts_with("HugePages_") { Unit::Count } else { Unit::Kb };
            out.fields.push(Field { name, value: if pages { value.saturating_mul(page_kb) } else { value }, unit });
        }
    };
    f("MemTotal", Some(totalram), true);
    f("MemFree", Some(freeram), true);
    f("MemAvailable", Some(available), true);
    f("Buffers", buffers, true);
    f("Cached", Some(cached), true);
    f("SwapCached", swapcached, true);
    f("Active", Some(active_anon.saturating_add(active_file)), true);
    f("Inactive", Some(inactive_anon.saturating_add(inactive_file)), true);
    f("Active(anon)", Some(active_anon), true);
    f("Inactive(anon)", Some(inactive_anon), true);
    f("Active(file)", Some(active_file), true);
    f("Inactive(file)", Some(inactive_file), true);
    f("Unevictable", Some(unevictable), true);
    f("Mlocked", st.zone("NR_MLOCK").ok(), true);
    f("SwapTotal", total_swap, true);
    f("SwapFree", free_swap, true);
    if let (Ok(pool), Ok(stored)) = (k.symbol("zswap_pool_total_size"), k.symbol("zswap_stored_pages")) {
        f("Zswap", k.read_u64(pool).ok().map(|b| b >> 10), false);
        f("Zswapped", k.read_u32(stored).ok().map(|p| p as u64), true);
    }
    f("Dirty", st.node("NR_FILE_DIRTY").ok(), true);
    f("Writeback", st.node("NR_WRITEBACK").ok(), true);
    f("AnonPages", st.node("NR_ANON_MAPPED").ok(), true);
    f("Mapped", st.node("NR_FILE_MAPPED").ok(), true);
    f("Shmem", Some(shared), true);
    f("KReclaimable", Some(sreclaimable.saturating_add(misc_reclaimable)), true);
    f("Slab", Some(sreclaimable.saturating_add(sunreclaim)), true);
    f("SReclaimable", Some(sreclaimable), true);
    f("SUnreclaim", Some(sunreclaim), true);
    f("KernelStack", st.node("NR_KERNEL_STACK_KB").ok(), false);
    f("PageTables", st.node("NR_PAGETABLE").ok(), true);
    f("SecPageTables", st.node("NR_SECONDARY_PAGETABLE").ok(), true);
    f("NFS_Unstable", Some(0), true);
    f("Bounce", st.zone("NR_BOUNCE").ok(), true);
    f("WritebackTmp", st.node("NR_WRITEBACK_TEMP").ok(), true);
    let hugetlb = hstates(k);
    let commit_limit = vm_commit_limit(k, totalram, total_swap.unwrap_or(0), hugetlb.as_ref().map(|h| h.total_pages).unwrap_or(0));
    let committed = committed_as(k);
    f("CommitLimit", commit_limit.as_ref().ok().copied(), true);
    f("Committed_AS", committed.as_ref().ok().copied(), true);
    let vmalloc_tb: u64 = if k.facts.paging_levels == 5 { 12800 } else { 32 };
    f("VmallocTotal", Some(((vmalloc_tb << 40) - 1) >> 10), false);
    f("VmallocUsed", k.symbol("nr_vmalloc_pages").and_then(|a| k.read_i64(a)).ok().map(clamp_nonneg), true);
    f("VmallocChunk", Some(0), true);
    f("Percpu", percpu_pages(k).ok(), true);
    f("HardwareCorrupted", k.symbol("num_poisoned_pages").and_then(|a| k.read_i64(a)).ok().map(clamp_nonneg), true);
    if k.enumerator("NR_ANON_THPS").is_ok() {
        // counted in pages since 5.13
        f("AnonHugePages", st.node("NR_ANON_THPS").ok(), true);
        f("ShmemHugePages", st.node("NR_SHMEM_THPS").ok(), true);
        f("ShmemPmdMapped", st.node("NR_SHMEM_PMDMAPPED").ok(), true);
        f("FileHugePages", st.node("NR_FILE_THPS").ok(), true);
        f("FilePmdMapped", st.node("NR_FILE_PMDMAPPED").ok(), true);
    }
    // totalcma_pages exists without CONFIG_CMA too; cma_area_count only with it
    if let (Ok(a), Ok(_)) = (k.symbol("totalcma_pages"), k.symbol("cma_area_count")) {
        f("CmaTotal", k.read_u64(a).ok(), true);
        f("CmaFree", st.zone("NR_FREE_CMA_PAGES").ok(), true);
    }
    match &hugetlb {
        Ok(h) => {
            f("HugePages_Total", Some(h.default.0), false);
            f("HugePages_Free", Some(h.default.1), false);
            f("HugePages_Rsvd", Some(h.default.2), false);
            f("HugePages_Surp", Some(h.default.3), false);
            f("Hugepagesize", Some(h.default_size_kb), false);
            f("Hugetlb", Some(h.total_kb), false);
        }
        Err(e) => warnings.push(format!("HugePages: {e}")),
    }
    if let Ok(dm) = direct_map(k) {
        for (name, v) in dm {
            f(name, Some(v), false);
        }
    }
    for (field, r) in [("CommitLimit", commit_limit.err()), ("Committed_AS", committed.err())] {
        if let Some(e) = r {
            warnings.push(format!("{field}: {e}"));
        }
    }
    out.warnings = warnings;
    Ok(out)
}

fn sym_i64(k: &Kernel, name: &str) -> Result<i64> {
    k.read_i64(k.symbol(name)?)
}

/// mm/page_alloc.c si_mem_available() (6.1).
fn si_mem_available(k: &Kernel, free: u64, pagecache: u64, reclaimable: u64) -> Result<u64> {
    let wmark_low = low_watermarks(k)?;
    let reserve = clamp_nonneg(sym_i64(k, "totalreserve_pages")?);
    // i128: the kernel's longs cannot overflow on real counts; a hostile guest's could
    let mut available = free as i128 - reserve as i128;
    available += (pagecache - (pagecache / 2).min(wmark_low)) as i128;
    available += (reclaimable - (reclaimable / 2).min(wmark_low)) as i128;
    Ok(available.clamp(0, u64::MAX as i128) as u64)
}

/// Sum of low_wmark_pages(zone) = _watermark[WMARK_LOW] + watermark_boost over every zone of every online node.
fn low_watermarks(k: &Kernel) -> Result<u64> {
    let wm = k.member("zone", "_watermark")?;
    let boost = k.types.member("zone", "watermark_boost");
    let low = u64::try_from(k.enumerator("WMARK_LOW")?).map_err(|_| Error::bad("WMARK_LOW < 0"))?;
    let mut sum = 0u64;
    for zone in all_zones(k)? {
        sum = sum.wrapping_add(k.read_u64(zone.address.wrapping_add(wm.offset + low.min(16) * 8))?);
        if let Some(b) = boost {
            sum = sum.wrapping_add(k.read_member(zone.address, b)?);
        }
    }
    Ok(sum)
}

/// block/bdev.c nr_blockdev_pages(): page-cache pages of every block device inode.
fn nr_blockdev_pages(k: &Kernel) -> Result<u64> {
    let sb = k.read_u64(k.symbol("blockdev_superblock")?)?;
    let inode = k.struct_type("inode")?;
    let (i_sb_list, i_mapping) = (inode.field("i_sb_list")?, inode.field("i_mapping")?);
    let nrpages = k.member("address_space", "nrpages")?;
    let head = sb.wrapping_add(k.offset("super_block", "s_inodes")?);
    let inodes = list_entries(k, head, i_sb_list.offset, MAX_BDEV_INODES, "blockdev inodes (blockdev_superblock->s_inodes)").all()?;
    let mut sum = 0u64;
    for inode in inodes {
        let mapping = k.read_member(inode, i_mapping)?;
        sum = sum.wrapping_add(k.read_member(mapping, nrpages)?);
    }
    Ok(sum)
}

/// mm/util.c vm_memory_committed(): percpu_counter_sum_positive(&vm_committed_as).
fn committed_as(k: &Kernel) -> Result<u64> {
    let pc = k.symbol("vm_committed_as")?;
    let count = k.read_i64(pc + k.offset("percpu_counter", "count")?)?;
    let counters = k.read_u64(pc + k.offset("percpu_counter", "counters")?)?;
    let mut sum = count;
    for cpu in online_cpus(k)? {
        sum = sum.saturating_add(k.read_u32(per_cpu_ptr(k, counters, cpu)?)? as i32 as i64);
    }
    Ok(clamp_nonneg(sum))
}

/// mm/util.c vm_commit_limit().
fn vm_commit_limit(k: &Kernel, totalram: u64, total_swap: u64, hugetlb_pages: u64) -> Result<u64> {
    let kbytes = k.read_u64(k.symbol("sysctl_overcommit_kbytes")?)?;
    let allowed = if kbytes != 0 {
        kbytes >> (k.facts.page_size.max(4096).trailing_zeros() - 10)
    } else {
        let ratio = k.read_u32(k.symbol("sysctl_overcommit_ratio")?)? as u64;
        (totalram.saturating_sub(hugetlb_pages) as u128 * ratio as u128 / 100).min(u64::MAX as u128) as u64
    };
    Ok(allowed.saturating_add(total_swap))
}

/// mm/percpu.c pcpu_nr_pages(): pcpu_nr_populated * pcpu_nr_units.
fn percpu_pages(k: &Kernel) -> Result<u64> {
    let populated = k.read_u64(k.symbol("pcpu_nr_populated")?)?;
    let units = k.read_u32(k.symbol("pcpu_nr_units")?)? as u64;
    Ok(populated.saturating_mul(units))
}

struct Hugetlb {
    /// Total, Free, Rsvd, Surp of the default hstate.
    default: (u64, u64, u64, u64),
    default_size_kb: u64,
    total_kb: u64,
    total_pages: u64,
}

/// mm/hugetlb.c hugetlb_report_meminfo() and hugetlb_total_pages().
fn hstates(k: &Kernel) -> Result<Hugetlb> {
    let base = k.symbol("hstates")?;
    let size = k.size_of("hstate")?;
    let n = k.read_u32(k.symbol("hugetlb_max_hstate")?)? as i64;
    if !(0..=MAX_HSTATES).contains(&n) {
        return Err(Error::bad(format!("hugetlb_max_hstate = {n}")));
    }
    let default_idx = k.read_u32(k.symbol("default_hstate_idx")?)? as i64;
    let m = |p: &str| k.member("hstate", p);
    let (order, nr, free, resv, surp) = (m("order")?, m("nr_huge_pages")?, m("free_huge_pages")?, m("resv_huge_pages")?, m("surplus_huge_pages")?);
    let page = k.facts.page_size.max(4096);
    let mut h = Hugetlb { default: (0, 0, 0, 0), default_size_kb: 0, total_kb: 0, total_pages: 0 };
    let rd = |a: u64, mb: crate::kernel::Member| k.read_member(a, mb);
    for i in 0..n {
        let a = base + i as u64 * size;
        let ord = rd(a, order)?.min(30);
        let count = rd(a, nr)?;
        h.total_kb = h.total_kb.saturating_add((page << ord).saturating_mul(count) / 1024);
        h.total_pages = h.total_pages.saturating_add(count.saturating_mul(1 << ord));
        if i == default_idx {
            h.default = (count, rd(a, free)?, rd(a, resv)?, rd(a, surp)?);
            h.default_size_kb = (page << ord) / 1024;
        }
    }
    if default_idx >= n {
        // Hugepagesize still prints the default hstate's size even with no pages: read it directly
        let a = base + default_idx.clamp(0, MAX_HSTATES) as u64 * size;
        h.default_size_kb = (page << rd(a, order)?.min(30)) / 1024;
    }
    Ok(h)
}

/// arch/x86/mm/pat/set_memory.c arch_report_meminfo(): direct_pages_count[] per page size.
fn direct_map(k: &Kernel) -> Result<Vec<(&'static str, u64)>> {
    let base = k.symbol("direct_pages_count")?;
    let lvl = |e: &str| -> Result<u64> { Ok(k.enumerator(e)? as u64) };
    let count = |e: &str| -> Result<u64> { k.read_u64(base + lvl(e)? * 8) };
    let mut v = vec![("DirectMap4k", count("PG_LEVEL_4K")?.saturating_mul(4)), ("DirectMap2M", count("PG_LEVEL_2M")?.saturating_mul(2048))];
    if gbpages(k).unwrap_or(false) {
        v.push(("DirectMap1G", count("PG_LEVEL_1G")?.saturating_mul(1 << 20)));
    }
    Ok(v)
}

/// boot_cpu_has(X86_FEATURE_GBPAGES): word 1, bit 26 of boot_cpu_data.x86_capability.
fn gbpages(k: &Kernel) -> Result<bool> {
    let cap = k.symbol("boot_cpu_data")? + k.offset("cpuinfo_x86", "x86_capability")?;
    Ok(k.read_u32(cap + 4)? & (1 << 26) != 0)
}
