//! Kernel discovery (issue #3): RAM source → VMCOREINFO → paging → kallsyms → BTF → a `Kernel`,
//! each fact with its source. x86-64 only: __pa_symbol(x) = x − __START_KERNEL_map + phys_base.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::cache::{self, Profile};
use super::vmcoreinfo::{self, Vmcoreinfo};
use super::{Kernel, KernelFacts, Member, Source, Symbols, Types};
use crate::mem::paging::{PageTables, X86AddressSpaces, START_KERNEL_MAP};
use crate::mem::process::{map_from_proc, HostSegment, ProcessRam};
use crate::mem::source::is_raw_file;
use crate::mem::{open_source, PhysicalMemory, RamFormat, SourceInfo, VirtualMemory};
use crate::{Error, Result};

/// What to open and which fallbacks the user gave.
#[derive(Debug, Clone, Default)]
pub struct DiscoverOptions {
    pub ram: PathBuf,
    /// Raw RAM layout: auto, flat, qemu-pc, qemu-q35, firecracker, NAME:SPLIT.
    pub layout: String,
    pub system_map: Option<PathBuf>,
    pub vmlinux: Option<PathBuf>,
    pub isf: Option<PathBuf>,
    pub use_cache: bool,
    /// Read a running QEMU process instead of `ram` (then `ram` and `layout` are unused).
    pub process: Option<ProcessSource>,
}

/// A running QEMU as the RAM source: its pid, and the guest-physical → host-virtual map when QEMU's monitor gave
/// it (`info mtree -f` + `gpa2hva`); without one, /proc/PID/maps and QEMU's command line are used, with a warning.
#[derive(Debug, Clone, Default)]
pub struct ProcessSource {
    pub pid: i32,
    pub segments: Option<Vec<HostSegment>>,
    /// How `segments` were learnt, shown as the layout ("qmp: info mtree -f + gpa2hva").
    pub describe: String,
}

/// How discovery went: what was assumed, what came from the cache, how long each step took.
#[derive(Debug, Clone, Default)]
pub struct DiscoveryReport {
    pub format: String,
    pub layout: String,
    pub layout_guessed: bool,
    pub missing_bytes: u64,
    pub vmcoreinfo_phys: Option<u64>,
    /// VMCOREINFO notes found in RAM that did not describe the running kernel (earlier boots'), passed over.
    pub stale_vmcoreinfo: Vec<u64>,
    pub cache_hit: bool,
    pub cache_file: Option<String>,
    /// (step, milliseconds) in order.
    pub timings: Vec<(String, f64)>,
    /// Soft failures: a fallback taken, a check that did not hold.
    pub warnings: Vec<String>,
    /// Guest memory the source lacks (a truncated file): every reader's output may be partial. Also in `warnings`.
    pub damage: Vec<String>,
    /// Per-vCPU registers from an ELF core's NT_PRSTATUS notes (empty for raw RAM and LiME).
    pub vcpu_registers: Vec<crate::mem::elfcore::PrStatus>,
}

pub struct Discovery {
    pub kernel: Kernel,
    pub report: DiscoveryReport,
    /// The raw vmlinux BTF the types came from, when they came from BTF (for ISF export).
    pub btf: Option<super::btf::BtfBytes>,
}

/// A Volatility 3 ISF of the discovered kernel: kallsyms (made link-time again) + BTF layouts.
pub fn export_isf(kernel: &Kernel, btf: Option<&[u8]>) -> Result<String> {
    let btf = btf.ok_or_else(|| Error::NotFound("no vmlinux BTF was found for this kernel, so there are no types to export".into()))?;
    let parsed = super::btf::Btf::parse(btf.to_vec())?;
    let banner = kernel.facts.banner.as_deref().ok_or_else(|| Error::NotFound("the kernel banner is unknown".into()))?;
    super::isf::export(kernel.symbols.as_ref(), &parsed, &format!("{banner}\n"), kernel.facts.kaslr_offset)
}

struct Clock {
    last: Instant,
    steps: Vec<(String, f64)>,
}

impl Clock {
    fn new() -> Clock {
        Clock { last: Instant::now(), steps: Vec::new() }
    }
    fn lap(&mut self, step: &str) {
        let now = Instant::now();
        self.steps.push((step.to_string(), (now - self.last).as_secs_f64() * 1000.0));
        self.last = now;
    }
}

/// Discover the kernel in the RAM file (or the running QEMU) named by `opts`.
pub fn discover(opts: &DiscoverOptions) -> Result<Discovery> {
    if let Some(p) = &opts.process {
        return discover_process(opts, p);
    }
    let spec = if opts.layout.is_empty() { "auto" } else { opts.layout.as_str() };
    let first = discover_with_layout(opts, spec, false);
    // A guessed layout for a file big enough to reach a PCI hole is checked by the page walk: when the
    // kernel's page tables do not map it under QEMU pc, try the other machines before giving up.
    let guessed_big = matches!(&first, Err(Error::BadData(_)) | Err(Error::NotFound(_)))
        && spec.eq_ignore_ascii_case("auto")
        && std::fs::metadata(&opts.ram).map(|m| m.len() > 0xB000_0000).unwrap_or(false)
        && is_raw_file(&opts.ram);
    if guessed_big {
        for alt in ["qemu-q35", "firecracker", "firecracker-1.12"] {
            if let Ok(d) = discover_with_layout(opts, alt, true) {
                return Ok(d);
            }
        }
    }
    first
}

/// A running QEMU: open its process as physical memory and discover the kernel in it. The kernel is marked
/// live, so walks that do not hold together are re-run (walkers::run).
fn discover_process(opts: &DiscoverOptions, p: &ProcessSource) -> Result<Discovery> {
    let started = Instant::now();
    let (segments, describe, guessed) = match &p.segments {
        Some(s) => (s.clone(), p.describe.clone(), false),
        None => {
            let (s, d) = map_from_proc(p.pid)?;
            (s, d, true)
        }
    };
    let ram = ProcessRam::open(p.pid, segments, describe.clone())?;
    let total: u64 = ram.ranges().iter().map(|r| r.len).sum();
    let info = SourceInfo { format: Some(RamFormat::Process), layout: describe, layout_guessed: guessed, file_len: total, ..Default::default() };
    // The in-process VMCOREINFO hint is keyed by a path: /proc/PID/mem names this process for its lifetime.
    let hint = PathBuf::from(format!("/proc/{}/mem", p.pid));
    let mut d = discover_from(Arc::new(ram), info, opts, &hint, false)?;
    if guessed {
        d.report.warnings.push(format!(
            "no QEMU monitor given: the guest-physical map of process {} was guessed from /proc/{}/maps and QEMU's command line; give --qmp SOCKET for QEMU's exact map",
            p.pid, p.pid
        ));
    }
    let total_ms = started.elapsed().as_secs_f64() * 1000.0;
    let steps: f64 = d.report.timings.iter().map(|t| t.1).sum();
    d.report.timings.insert(0, ("open-process".into(), (total_ms - steps).max(0.0)));
    d.kernel.set_live(true);
    Ok(d)
}

fn discover_with_layout(opts: &DiscoverOptions, layout: &str, retried: bool) -> Result<Discovery> {
    let clock = Clock::new();
    let (phys, info) = open_source(&opts.ram, layout)?;
    // A file that stops short of the RAM the guest booted with fails somewhere in discovery; say why.
    let truncated = crate::mem::e820::truncation(phys.as_ref());
    match discover_in(opts, phys, info, retried, clock, &opts.ram) {
        Ok(mut d) => {
            d.report.warnings.extend(truncated.iter().cloned());
            d.report.damage.extend(truncated);
            Ok(d)
        }
        Err(e) => match truncated {
            Some(t) => Err(Error::bad(format!("{t} (discovery stopped at: {e})"))),
            None => Err(e),
        },
    }
}

/// Discover the kernel in RAM that is already open (any `PhysicalMemory`: a file source, a live process),
/// described by `info`. `hint_path` names the source whose VMCOREINFO place the cache remembers.
pub fn discover_from(phys: Arc<dyn PhysicalMemory>, info: SourceInfo, opts: &DiscoverOptions, hint_path: &std::path::Path, retried: bool) -> Result<Discovery> {
    discover_in(opts, phys, info, retried, Clock::new(), hint_path)
}

fn discover_in(opts: &DiscoverOptions, phys: Arc<dyn PhysicalMemory>, info: SourceInfo, retried: bool, mut clock: Clock, hint_path: &std::path::Path) -> Result<Discovery> {
    let mut report = DiscoveryReport {
        format: info.format.map_or("raw", RamFormat::as_str).to_string(),
        layout: if retried { format!("{}; auto: qemu-pc did not map the kernel, this layout does", info.layout) } else { info.layout.clone() },
        layout_guessed: info.layout_guessed || retried,
        missing_bytes: info.missing_bytes,
        vcpu_registers: info.notes.prstatus.clone(),
        ..Default::default()
    };
    report.warnings.extend(info.warnings.iter().cloned());
    if info.missing_bytes > 0 {
        // a kdump source words its own shortfall (in warnings); say it for raw files and ELF cores
        let damage = match info.warnings.first() {
            Some(w) => w.clone(),
            None => {
                let what = if info.format == Some(RamFormat::ElfCore) { "ELF core" } else { "RAM file" };
                let promised = info.file_len.saturating_add(info.missing_bytes);
                let d = format!(
                    "the {what} is truncated: it is {} bytes, its headers describe {promised} ({} bytes of guest memory missing)",
                    info.file_len, info.missing_bytes
                );
                report.warnings.push(d.clone());
                d
            }
        };
        report.damage.push(damage);
    }
    clock.lap("open");

    let mut facts = KernelFacts::default();
    // 1. VMCOREINFO: the ELF core's note or the kdump header's copy, else where the cache remembers it, else a
    //    scan of RAM.
    let from_dump = matches!(info.format, Some(RamFormat::Kdump | RamFormat::KdumpFlattened));
    let mut found: Result<(Vmcoreinfo, Source)> = match info.notes.vmcoreinfo.as_deref().map(Vmcoreinfo::parse) {
        Some(Ok(v)) => Ok((v, if from_dump { Source::DumpHeader } else { Source::ElfNote })),
        _ => {
            let hinted = if opts.use_cache { cache::vmcoreinfo_hint(hint_path) } else { None }
                .and_then(|at| vmcoreinfo::read_note_at(phys.as_ref(), at).ok());
            match hinted {
                Some(v) => Ok((v, Source::Cache)),
                None => vmcoreinfo::scan(phys.as_ref()).map(|v| (v, Source::Scan)),
            }
        }
    };
    clock.lap("vmcoreinfo");

    // 2. Paging: DTB from init_top_pgt, checked by walking the kernel's own mapping of itself. A note found in
    //    RAM whose page tables do not map the kernel is stale (an earlier boot's, left in RAM; a remembered
    //    place that no longer holds): the scan moves on past it. Without VMCOREINFO, a System.map and the
    //    banner's place in RAM give KASLR and the DTB (as Volatility scans).
    let mut stale = 0usize;
    let (vmci, spaces, given) = loop {
        match found {
            Ok((vmci, source)) => {
                // facts and warnings of this attempt only: a stale note's are not the running kernel's
                let (mut f, mut attempt) = (KernelFacts::default(), DiscoveryReport::default());
                match facts_from_vmcoreinfo(&vmci, &mut f).and_then(|()| choose_address_space(&phys, &vmci, &info.notes.qemu_cpus, &mut f, &mut attempt)) {
                    Ok(spaces) => {
                        facts = f;
                        report.warnings.extend(attempt.warnings);
                        facts.sources.insert("vmcoreinfo".into(), source);
                        report.vmcoreinfo_phys = vmci.phys_addr;
                        if let (Some(at), Source::Scan | Source::Cache) = (vmci.phys_addr, source) {
                            cache::remember_vmcoreinfo(hint_path, at);
                        }
                        break (vmci, spaces, None);
                    }
                    Err(e) if matches!(source, Source::Scan | Source::Cache) && stale < MAX_STALE_NOTES => {
                        stale += 1;
                        let at = vmci.phys_addr.unwrap_or(0);
                        if source == Source::Scan {
                            report.stale_vmcoreinfo.push(at);
                        }
                        found = if source == Source::Cache {
                            cache::forget_vmcoreinfo(hint_path);
                            vmcoreinfo::scan(phys.as_ref())
                        } else {
                            vmcoreinfo::scan_after(phys.as_ref(), Some(at))
                        }
                        .map(|v| (v, Source::Scan))
                        .map_err(|next| if matches!(next, Error::NotFound(_)) { e } else { next });
                        if let Err(e) = found {
                            return Err(e);
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(Error::NotFound(m)) => {
                let Some(linked) = load_given(opts, 0) else {
                    return Err(Error::NotFound(format!("{m}; without VMCOREINFO, give --system-map, --vmlinux or --isf (or check --ram-layout)")));
                };
                let linked = linked?;
                let spaces = locate_by_banner(&phys, linked.symbols.as_ref(), &mut facts)?;
                let given = load_given(opts, facts.kaslr_offset).ok_or_else(|| Error::NotFound("fallback profile vanished".into()))??;
                break (Vmcoreinfo::default(), spaces, Some(given));
            }
            Err(e) => return Err(e),
        }
    };
    clock.lap("paging");

    // 3. Symbols and types: the cache, else kallsyms + BTF from RAM, else what VMCOREINFO carries.
    let key = facts.build_id.as_deref().map(cache::key);
    let mut profile: Option<Arc<Profile>> = None;
    if opts.use_cache {
        if let Some(k) = &key {
            match cache::load(k, facts.kaslr_offset) {
                Ok(Some((p, file))) => {
                    report.cache_hit = true;
                    report.cache_file = file;
                    profile = Some(p);
                }
                Ok(None) => {}
                Err(e) => report.warnings.push(format!("kernel profile cache ignored: {e}")),
            }
        }
    }
    clock.lap("cache-load");
    let profile = match profile {
        Some(p) => p,
        None => {
            let p = build_profile(spaces.kernel_tables(), phys.as_ref(), &vmci, given, opts, facts.kaslr_offset, &mut report, &mut clock)?;
            let p = Arc::new(p);
            if opts.use_cache {
                if let Some(k) = &key {
                    match cache::store(k, facts.kaslr_offset, &p) {
                        Ok(file) => report.cache_file = file,
                        Err(e) => report.warnings.push(format!("kernel profile not cached: {e}")),
                    }
                }
            }
            clock.lap("cache-store");
            p
        }
    };
    let symbols: Box<dyn Symbols> = Box::new(SharedSymbols(profile.clone()));
    let types: Box<dyn Types> = match profile.types.clone() {
        Some(t) => Box::new(SharedTypes(t)),
        None => Box::new(VmcoreinfoTypes::new(&vmci)),
    };
    let sym_source = if report.cache_hit { Source::Cache } else { profile.symbols_source };
    facts.sources.insert("symbols".into(), sym_source);
    facts.sources.insert("types".into(), if report.cache_hit && profile.types.is_some() { Source::Cache } else { types.source() });

    // 4. Variables read through the kernel's page tables.
    read_variables(spaces.kernel_tables(), symbols.as_ref(), phys.as_ref(), &mut facts, &mut report);
    clock.lap("variables");

    report.timings = clock.steps;
    let btf = profile.btf.clone();
    let kernel = Kernel::from_parts(phys, Box::new(spaces), symbols, types, facts);
    Ok(Discovery { kernel, report, btf })
}

fn facts_from_vmcoreinfo(v: &Vmcoreinfo, facts: &mut KernelFacts) -> Result<()> {
    let mut set = |name: &str| {
        facts.sources.insert(name.into(), Source::Vmcoreinfo);
    };
    set("release");
    if v.build_id().is_some() {
        set("build_id");
    }
    set("kaslr_offset");
    set("phys_base");
    set("page_size");
    facts.release = v.release().map(str::to_string);
    facts.build_id = v.build_id().map(str::to_string);
    facts.kaslr_offset = v.kernel_offset()?.unwrap_or(0);
    // phys_base is printed as a signed long (%ld); negative values wrap as the kernel's u64 does.
    facts.phys_base = v.number("phys_base")?.unwrap_or(0) as u64;
    facts.page_size = match v.page_size()? {
        Some(4096) | None => 4096,
        Some(n) => return Err(Error::Unsupported(format!("page size {n} (x86-64 kernels use 4096)"))),
    };
    facts.vmcoreinfo = v.entries.clone();
    Ok(())
}

fn choose_address_space(
    phys: &Arc<dyn PhysicalMemory>,
    v: &Vmcoreinfo,
    cpus: &[crate::mem::elfcore::QemuCpu],
    facts: &mut KernelFacts,
    report: &mut DiscoveryReport,
) -> Result<X86AddressSpaces> {
    let top = v
        .symbol("init_top_pgt")?
        .or(v.symbol("swapper_pg_dir")?)
        .ok_or_else(|| Error::NotFound("VMCOREINFO has no SYMBOL(init_top_pgt) or SYMBOL(swapper_pg_dir)".into()))?;
    let dtb = top.wrapping_sub(START_KERNEL_MAP).wrapping_add(facts.phys_base);
    let levels_said = v.number("pgtable_l5_enabled")?.map(|n| if n != 0 { 5u8 } else { 4u8 });
    let mut candidates: Vec<(u64, u8, Source, Source)> = Vec::new();
    match levels_said {
        Some(l) => candidates.push((dtb, l, Source::Vmcoreinfo, Source::Vmcoreinfo)),
        None => {
            candidates.push((dtb, 5, Source::Vmcoreinfo, Source::Scan));
            candidates.push((dtb, 4, Source::Vmcoreinfo, Source::Scan));
        }
    }
    for c in cpus {
        candidates.push((c.cr3 & 0x000F_FFFF_FFFF_F000, if c.la57() { 5 } else { 4 }, Source::ElfNote, Source::ElfNote));
    }
    let mut source_error: Option<Error> = None;
    for (root, levels, root_src, level_src) in candidates {
        let Ok(pt) = PageTables::new(phys.clone(), root, levels) else { continue };
        // The kernel maps its own page table: init_top_pgt's virtual address walks to its physical one.
        let walked = pt.translate(top);
        if let Err(e @ (Error::BadData(_) | Error::Unsupported(_))) = &walked {
            source_error.get_or_insert_with(|| e.clone()); // a damaged source, not a wrong guess
        } else if let Err(e) = &walked {
            if e.is_excluded() || e.to_string().contains("truncated") {
                source_error.get_or_insert_with(|| e.clone());
            }
        }
        if walked.map(|t| t.phys) == Ok(dtb) {
            facts.dtb = root;
            facts.paging_levels = levels;
            facts.sources.insert("dtb".into(), root_src);
            facts.sources.insert("paging_levels".into(), level_src);
            return X86AddressSpaces::new(phys.clone(), root, levels);
        }
        report.warnings.push(format!("page-table root {root:#x} ({levels}-level) does not map init_top_pgt; tried the next"));
    }
    if let Some(e) = source_error {
        return Err(e.context("no page-table root maps the kernel"));
    }
    Err(Error::bad(format!(
        "no page-table root maps the kernel: init_top_pgt at {top:#x} should be physical {dtb:#x} (is --ram-layout right?)"
    )))
}

/// A profile the user gave (--system-map, --vmlinux, --isf; first given wins), relocated by `kaslr`.
struct Given {
    symbols: Arc<dyn Symbols>,
    types: Option<Arc<dyn Types>>,
}

fn load_given(opts: &DiscoverOptions, kaslr: u64) -> Option<Result<Given>> {
    if let Some(p) = &opts.system_map {
        let load = || -> Result<Given> {
            let text = std::fs::read_to_string(p).map_err(|e| Error::Io(format!("cannot read System.map {}: {e}", p.display())))?;
            let map = super::system_map::SystemMap::parse(&text, kaslr).map_err(|e| e.context(p.display()))?;
            Ok(Given { symbols: Arc::new(map), types: None })
        };
        return Some(load());
    }
    if let Some(p) = &opts.vmlinux {
        return Some(super::vmlinux::load(p, kaslr).map(|v| Given {
            symbols: Arc::new(v.symbols),
            types: v.btf.map(|b| Arc::new(b) as Arc<dyn Types>),
        }));
    }
    if let Some(p) = &opts.isf {
        return Some(super::isf::Isf::load(p, kaslr).map(|i| Given { symbols: Arc::new(i.symbols), types: Some(Arc::new(i.types)) }));
    }
    None
}

/// Without VMCOREINFO: the banner's physical place and link-time symbols give the DTB
/// (__pa(init_top_pgt) = banner_phys + (init_top_pgt − linux_banner), whatever the KASLR split), and
/// the KASLR offset is the 2 MiB-aligned shift under which that DTB maps linux_banner to the banner.
fn locate_by_banner(phys: &Arc<dyn PhysicalMemory>, linked: &dyn Symbols, facts: &mut KernelFacts) -> Result<X86AddressSpaces> {
    let banner_link = linked.address_of("linux_banner").ok_or_else(|| Error::NotFound("the given symbols have no linux_banner".into()))?;
    let top_link = linked
        .address_of("init_top_pgt")
        .or(linked.address_of("swapper_pg_dir"))
        .ok_or_else(|| Error::NotFound("the given symbols have no init_top_pgt".into()))?;
    const ALIGN: u64 = 2 << 20;
    const KASLR_MAX: u64 = 1 << 30;
    for (banner_phys, banner) in vmcoreinfo::scan_banners(phys.as_ref(), 32)? {
        let Some(dtb) = banner_phys.checked_add(top_link.wrapping_sub(banner_link)).filter(|d| d & 0xFFF == 0) else { continue };
        for levels in [5u8, 4] {
            let Ok(pt) = PageTables::new(phys.clone(), dtb, levels) else { continue };
            for step in 0..KASLR_MAX / ALIGN {
                let kaslr = step * ALIGN;
                if pt.translate(banner_link.wrapping_add(kaslr)).map(|t| t.phys) != Ok(banner_phys) {
                    continue;
                }
                facts.kaslr_offset = kaslr;
                facts.phys_base = banner_phys.wrapping_sub(banner_link.wrapping_add(kaslr).wrapping_sub(START_KERNEL_MAP));
                facts.dtb = dtb;
                facts.paging_levels = levels;
                facts.page_size = 4096;
                facts.release = banner.strip_prefix("Linux version ").and_then(|r| r.split(' ').next()).map(str::to_string);
                facts.banner = Some(banner.clone());
                for f in ["kaslr_offset", "phys_base", "dtb", "paging_levels", "release", "banner"] {
                    facts.sources.insert(f.into(), Source::Scan);
                }
                return X86AddressSpaces::new(phys.clone(), dtb, levels);
            }
        }
    }
    Err(Error::NotFound("no banner in RAM is mapped as linux_banner of the given symbols (wrong System.map/vmlinux/ISF for this kernel?)".into()))
}

/// Symbols, types and the raw BTF: what the cache keeps.
fn build_profile(
    vm: &PageTables,
    phys: &dyn PhysicalMemory,
    v: &Vmcoreinfo,
    mut given: Option<Given>,
    opts: &DiscoverOptions,
    kaslr: u64,
    report: &mut DiscoveryReport,
    clock: &mut Clock,
) -> Result<Profile> {
    let decoded = match given.as_ref() {
        Some(g) => Ok(g.symbols.clone()),
        None => super::kallsyms::KallsymsLocation::from_vmcoreinfo(&v.entries)
            .and_then(|loc| super::kallsyms::decode(vm, &loc))
            .map(|t| Arc::new(t) as Arc<dyn Symbols>),
    };
    let symbols: Arc<dyn Symbols> = match decoded {
        Ok(t) => t,
        Err(e) => match load_given(opts, kaslr) {
            // kallsyms not in RAM (pre-6.0 VMCOREINFO): the user's System.map/vmlinux/ISF, relocated by KERNELOFFSET.
            Some(Ok(g)) => {
                report.warnings.push(format!("kallsyms not decoded ({e}); using the given {}", g.symbols.source().as_str()));
                let s = g.symbols.clone();
                given = Some(g);
                s
            }
            Some(Err(ge)) => return Err(ge),
            None => {
                report.warnings.push(format!("kallsyms not decoded ({e}); only VMCOREINFO's symbols are known"));
                Arc::new(SymbolList::new(v.symbols(), Source::Vmcoreinfo))
            }
        },
    };
    clock.lap("kallsyms");
    let symbols_source = symbols.source();
    // BTF: [__start_BTF, __stop_BTF) through the kernel's page tables, else a scan of RAM.
    let from_symbols = match (symbols.address_of("__start_BTF"), symbols.address_of("__stop_BTF")) {
        (Some(start), Some(stop)) if stop > start && stop - start <= MAX_BTF_BYTES => {
            let mut buf = vec![0u8; (stop - start) as usize];
            match vm.read_virt(start, &mut buf) {
                Ok(()) => Some(buf),
                Err(e) => {
                    report.warnings.push(format!("reading vmlinux BTF at {start:#x}: {e}"));
                    None
                }
            }
        }
        (Some(start), Some(stop)) => {
            report.warnings.push(format!("__start_BTF {start:#x} .. __stop_BTF {stop:#x} is not a plausible range"));
            None
        }
        _ => None,
    };
    let bytes: Option<super::btf::BtfBytes> = match from_symbols {
        Some(b) => Some(b.into()),
        None => match super::btf::scan_phys_for_vmlinux_btf(phys) {
            Ok(b) => Some(b),
            Err(e) => {
                report.warnings.push(format!("no vmlinux BTF found ({e}); only VMCOREINFO's offsets are known"));
                None
            }
        },
    };
    clock.lap("btf-read");
    let (types, btf) = match bytes {
        Some(b) => {
            let keep = b.clone();
            match super::btf::types_from_btf(b) {
                Ok(t) => (Some(t), Some(keep)),
                Err(e) => {
                    report.warnings.push(format!("vmlinux BTF not parsed: {e}"));
                    (None, None)
                }
            }
        }
        None => (None, None),
    };
    clock.lap("btf-parse");
    let types = types.or_else(|| given.and_then(|g| g.types));
    Ok(Profile { symbols, symbols_source, types, btf })
}

fn read_variables(vm: &PageTables, symbols: &dyn Symbols, phys: &dyn PhysicalMemory, facts: &mut KernelFacts, report: &mut DiscoveryReport) {
    let read_u64 = |addr: u64| -> Result<u64> {
        let mut b = [0u8; 8];
        vm.read_virt(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    };
    for (name, slot) in [
        ("page_offset_base", &mut facts.page_offset_base),
        ("vmemmap_base", &mut facts.vmemmap_base),
        ("vmalloc_base", &mut facts.vmalloc_base),
    ] {
        match symbols.address_of(name).map(read_u64) {
            Some(Ok(val)) => {
                *slot = val;
                facts.sources.insert(name.into(), symbols.source());
            }
            Some(Err(e)) => report.warnings.push(format!("reading {name}: {e}")),
            None => report.warnings.push(format!("{name} unknown: no such symbol")),
        }
    }
    if let Some(addr) = symbols.address_of("linux_banner") {
        let mut buf = vec![0u8; 512];
        if vm.read_virt(addr, &mut buf).is_ok() {
            let end = buf.iter().position(|&b| b == 0 || b == b'\n').unwrap_or(buf.len());
            facts.banner = Some(String::from_utf8_lossy(&buf[..end]).into_owned());
            facts.sources.insert("banner".into(), symbols.source());
        }
    }
    if facts.banner.is_none() {
        if let Ok((_, b)) = vmcoreinfo::scan_banner(phys, facts.release.as_deref()) {
            facts.banner = Some(b);
            facts.sources.insert("banner".into(), Source::Scan);
        }
    }
}

/// A plain symbol list (from VMCOREINFO, or the cache).
pub struct SymbolList {
    map: HashMap<String, u64>,
    order: Vec<(String, u64)>,
    source: Source,
}

impl SymbolList {
    pub fn new(list: Vec<(String, u64)>, source: Source) -> SymbolList {
        let mut map = HashMap::with_capacity(list.len());
        for (n, a) in &list {
            map.entry(n.clone()).or_insert(*a);
        }
        SymbolList { map, order: list, source }
    }
}

impl Symbols for SymbolList {
    fn address_of(&self, name: &str) -> Option<u64> {
        self.map.get(name).copied()
    }
    fn len(&self) -> usize {
        self.order.len()
    }
    fn all(&self) -> Vec<(String, u64)> {
        self.order.clone()
    }
    fn source(&self) -> Source {
        self.source
    }
}

/// The profile's symbols shared between Guests of the same boot.
struct SharedSymbols(Arc<Profile>);
impl Symbols for SharedSymbols {
    fn address_of(&self, name: &str) -> Option<u64> {
        self.0.symbols.address_of(name)
    }
    fn len(&self) -> usize {
        self.0.symbols.len()
    }
    fn all(&self) -> Vec<(String, u64)> {
        self.0.symbols.all()
    }
    fn source(&self) -> Source {
        self.0.symbols_source
    }
}

struct SharedTypes(Arc<dyn Types>);
impl Types for SharedTypes {
    fn struct_size(&self, name: &str) -> Option<u64> {
        self.0.struct_size(name)
    }
    fn member(&self, struct_name: &str, path: &str) -> Option<Member> {
        self.0.member(struct_name, path)
    }
    fn enum_value(&self, enum_name: &str, enumerator: &str) -> Option<i64> {
        self.0.enum_value(enum_name, enumerator)
    }
    fn enumerator(&self, enumerator: &str) -> Option<i64> {
        self.0.enumerator(enumerator)
    }
    fn type_count(&self) -> usize {
        self.0.type_count()
    }
    fn source(&self) -> Source {
        self.0.source()
    }
}

/// Types of last resort: the OFFSET(s.m) and SIZE(s) lines VMCOREINFO carries (page, zone, free_area, …).
pub struct VmcoreinfoTypes {
    offsets: BTreeMap<(String, String), u64>,
    sizes: BTreeMap<String, u64>,
}

impl VmcoreinfoTypes {
    pub fn new(v: &Vmcoreinfo) -> VmcoreinfoTypes {
        let mut offsets = BTreeMap::new();
        let mut sizes = BTreeMap::new();
        for (k, val) in &v.entries {
            let Ok(n) = val.parse::<u64>() else { continue };
            if let Some(p) = k.strip_prefix("OFFSET(").and_then(|r| r.strip_suffix(')')) {
                if let Some((s, m)) = p.split_once('.') {
                    offsets.insert((s.to_string(), m.to_string()), n);
                }
            } else if let Some(s) = k.strip_prefix("SIZE(").and_then(|r| r.strip_suffix(')')) {
                sizes.insert(s.to_string(), n);
            }
        }
        VmcoreinfoTypes { offsets, sizes }
    }
}

impl Types for VmcoreinfoTypes {
    fn struct_size(&self, name: &str) -> Option<u64> {
        self.sizes.get(name).copied()
    }
    fn member(&self, struct_name: &str, path: &str) -> Option<Member> {
        let offset = *self.offsets.get(&(struct_name.to_string(), path.to_string()))?;
        // VMCOREINFO gives no member sizes; 0 says "unknown".
        Some(Member { offset, size: 0, bit_offset: 0, bit_size: 0, array_len: None })
    }
    fn enum_value(&self, _enum_name: &str, _enumerator: &str) -> Option<i64> {
        None
    }
    fn enumerator(&self, _enumerator: &str) -> Option<i64> {
        None
    }
    fn type_count(&self) -> usize {
        self.sizes.len()
    }
    fn source(&self) -> Source {
        Source::Vmcoreinfo
    }
}

/// Stale VMCOREINFO notes (earlier boots') passed over before giving up.
const MAX_STALE_NOTES: usize = 8;

/// vmlinux BTF is a few MB; refuse a symbol range that would have us copy gigabytes.
const MAX_BTF_BYTES: u64 = 64 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    /// The real guest (the committed sample; vitest checks it against truth.json).
    fn guest_dir() -> Option<PathBuf> {
        crate::test_support::real_guest_dir()
    }

    /// A 3 GiB q35 guest (RAM past 2 GiB sits at 4 GiB) whose page tables lie above the split: `auto`
    /// first assumes QEMU pc, the page walk refuses it, and q35 is found. No kallsyms: VMCOREINFO's
    /// symbols and offsets are what is left, with warnings.
    #[test]
    fn auto_layout_is_checked_by_the_page_walk() {
        use std::os::unix::fs::FileExt;
        const GIB: u64 = 1 << 30;
        let dtb: u64 = 0x1_2000_0000; // GPA 4.5 GiB = file offset 2.5 GiB under q35
        let file_of = |gpa: u64| if gpa >= 4 * GIB { gpa - 4 * GIB + 2 * GIB } else { gpa };
        let top_virt: u64 = 0xffff_ffff_8200_0000;
        let phys_base = dtb - (top_virt - START_KERNEL_MAP);
        let path = std::env::temp_dir().join(format!("nearfield-test-q35-{}", std::process::id()));
        let f = std::fs::File::create(&path).unwrap();
        f.set_len(3 * GIB).unwrap();
        let put = |gpa: u64, v: u64| f.write_all_at(&v.to_le_bytes(), file_of(gpa)).unwrap();
        const P: u64 = 0b11;
        put(dtb + 511 * 8, (dtb + 0x1000) | P);
        put(dtb + 0x1000 + 510 * 8, (dtb + 0x2000) | P);
        put(dtb + 0x2000 + ((top_virt >> 21) & 511) * 8, dtb | P | 0x80);
        let text = format!(
            "OSRELEASE=6.1.0-test\nBUILD-ID=00ff\nPAGESIZE=4096\nSYMBOL(init_top_pgt)={top_virt:x}\nNUMBER(phys_base)={}\nKERNELOFFSET=1000000\nNUMBER(pgtable_l5_enabled)=0\nOFFSET(page.flags)=0\nSIZE(page)=64\n",
            phys_base as i64
        );
        f.write_all_at(&crate::kernel::vmcoreinfo::note_bytes(&text), 0x10_0000).unwrap();
        drop(f);
        let opts = DiscoverOptions { ram: path.clone(), layout: "auto".into(), use_cache: false, ..Default::default() };
        let d = discover(&opts);
        let _ = std::fs::remove_file(&path);
        let d = d.unwrap();
        assert!(d.report.layout.starts_with("qemu-q35"), "{}", d.report.layout);
        let f = &d.kernel.facts;
        assert_eq!((f.dtb, f.paging_levels, f.kaslr_offset, f.phys_base), (dtb, 4, 0x100_0000, phys_base));
        assert_eq!(d.kernel.symbols.source(), Source::Vmcoreinfo);
        assert_eq!(d.kernel.symbol("init_top_pgt").unwrap(), top_virt);
        assert_eq!(d.kernel.size_of("page").unwrap(), 64);
        assert_eq!(d.kernel.offset("page", "flags").unwrap(), 0);
        assert!(d.report.warnings.iter().any(|w| w.contains("kallsyms")), "{:?}", d.report.warnings);
    }

    /// The 5 GiB QEMU pc guest: RAM past 3 GiB of the file sits at 4 GiB, and the direct map reaches it.
    #[test]
    fn pc_guest_above_4g() {
        let dir = std::env::var_os("NEARFIELD_TEST_OUT_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../images/out"))
            .join("pc-5g");
        if !dir.join("ram.raw").exists() {
            eprintln!("skipped: no 5 GiB pc guest in {}", dir.display());
            return;
        }
        let opts = DiscoverOptions { ram: dir.join("ram.raw"), layout: "auto".into(), use_cache: false, ..Default::default() };
        let d = discover(&opts).unwrap();
        assert!(d.report.layout.starts_with("qemu-pc, below-4G split at 3 GiB"), "{}", d.report.layout);
        let k = &d.kernel;
        let high = 0x1_4000_0000u64; // 5 GiB guest-physical = file offset 4 GiB
        assert_eq!(k.spaces.kernel_virt_to_phys(k.facts.page_offset_base + high).unwrap(), high);
        let mut b = [0u8; 8];
        k.phys.read_phys(high, &mut b).unwrap();
        let mut via_map = [0u8; 8];
        k.read(k.facts.page_offset_base + high, &mut via_map).unwrap();
        assert_eq!(b, via_map);
        // The PCI hole is not RAM.
        assert!(matches!(k.phys.read_phys(0xE000_0000, &mut b), Err(Error::Fault { .. })));
        assert!(k.phys.read_phys(0x1_8000_0000, &mut b).is_err());
    }

    #[test]
    fn real_guest_raw_and_core_agree() {
        let Some(dir) = guest_dir() else {
            eprintln!("skipped: no real guest (unpack the sample: node images/unpack-sample.mjs)");
            return;
        };
        let run = |file: &str| {
            let opts = DiscoverOptions { ram: dir.join(file), layout: "auto".into(), use_cache: false, ..Default::default() };
            let d = discover(&opts).unwrap();
            eprintln!("{file}: {:?}\n{:?}", d.report, {
                let mut f = d.kernel.facts.clone();
                f.vmcoreinfo.clear();
                f
            });
            d
        };
        let raw = run("ram.raw");
        let core = run("core.elf");
        let (a, b) = (&raw.kernel.facts, &core.kernel.facts);
        assert_eq!((a.dtb, a.kaslr_offset, a.phys_base, a.paging_levels), (b.dtb, b.kaslr_offset, b.phys_base, b.paging_levels));
        assert_eq!((&a.release, &a.build_id, &a.banner, a.page_offset_base), (&b.release, &b.build_id, &b.banner, b.page_offset_base));
        assert_eq!(raw.kernel.symbols.len(), core.kernel.symbols.len());
    }
}
