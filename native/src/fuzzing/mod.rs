//! Fuzz entry points, one per parser of guest- or user-controlled bytes (issue #12): native/fuzz's cargo-fuzz
//! targets call these, and the tests below replay every input kept in native/fuzz/regressions through them.
//!
//! Each entry point must return for any input without panicking; libFuzzer's -timeout and -rss_limit_mb /
//! -malloc_limit_mb (set by native/fuzz/run.mjs) turn an unbounded loop or allocation into a finding too.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

// Header fields read as 0 past the end of a short input.
use crate::disk::block::{le_u32, le_u64, BlockDevice, MemDevice, Window};
use crate::disk::qcow2::{MemFiles, Qcow2};
use crate::disk::{detect, ext4, partition};
use crate::kernel::btf::Btf;
use crate::kernel::discover::DiscoveryReport;
use crate::kernel::isf::{self, Isf};
use crate::kernel::kallsyms::{self, KallsymsLocation};
use crate::kernel::system_map::SystemMap;
use crate::kernel::vmcoreinfo::{self, Vmcoreinfo};
use crate::kernel::{vmlinux, Kernel, Member, Source, Symbols, Types};
use crate::mem::kdump::KdumpRam;
use crate::mem::layout::{self, RawLayout};
use crate::mem::{elfcore, lime, source_from_bytes, PhysRange, PhysicalMemory, X86AddressSpaces};
use crate::walkers::testkit::{Fake, KBASE};
use crate::walkers::{self, dmesg, Context, Walker};
use crate::{Error, Result};

pub mod seeds;

/// Every target by name, for the regression replay and `seed`.
pub const TARGETS: &[&str] = &[
    "elf_core", "lime", "raw_layout", "ram_source", "kdump", "vmcoreinfo", "kallsyms", "btf", "isf", "printk", "system_map",
    "vmlinux", "qcow2", "partition", "ext4", "walkers",
];

/// Run the parser-only target `name` on `data` (the walkers target needs a `Walkers`); false for an unknown name.
pub fn run(name: &str, data: &[u8]) -> bool {
    match name {
        "elf_core" => elf_core(data),
        "lime" => lime_ranges(data),
        "raw_layout" => raw_layout(data),
        "ram_source" => ram_source(data),
        "kdump" => kdump_dump(data),
        "vmcoreinfo" => vmcoreinfo_note(data),
        "kallsyms" => kallsyms_tables(data),
        "btf" => btf(data),
        "isf" => isf_json(data),
        "printk" => printk(data),
        "system_map" => system_map(data),
        "vmlinux" => vmlinux_elf(data),
        "qcow2" => qcow2(data),
        "partition" => partition_table(data),
        "ext4" => ext4_fs(data),
        _ => return false,
    }
    true
}

// ---------------------------------------------------------------------------------------------
// Guest memory made of fuzzer bytes

/// Physical memory: the input at physical 0.
struct FlatPhys<'a> {
    bytes: &'a [u8],
    ranges: [PhysRange; 1],
}

impl<'a> FlatPhys<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        FlatPhys { bytes, ranges: [PhysRange { start: 0, len: bytes.len() as u64 }] }
    }
}

impl PhysicalMemory for FlatPhys<'_> {
    fn read_phys(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        buf.copy_from_slice(self.phys_slice(addr, buf.len())?);
        Ok(())
    }
    fn phys_slice(&self, addr: u64, len: usize) -> Result<&[u8]> {
        let start = usize::try_from(addr).map_err(|_| Error::fault(addr, "fuzz RAM"))?;
        self.bytes.get(start..start.checked_add(len).ok_or_else(|| Error::fault(addr, "fuzz RAM"))?).ok_or_else(|| Error::fault(addr, "fuzz RAM"))
    }
    fn ranges(&self) -> &[PhysRange] {
        &self.ranges
    }
}


// ---------------------------------------------------------------------------------------------
// RAM sources

/// ELF core headers and notes (mem::elfcore).
pub fn elf_core(data: &[u8]) {
    if let Ok(core) = elfcore::parse(data, data.len() as u64) {
        for s in core.segments.iter().filter(|s| s.len > 0) {
            assert!(s.file_offset.checked_add(s.len).is_some_and(|e| e <= data.len() as u64), "segment past the file");
        }
        let _ = core.notes.qemu_cpus.iter().filter(|c| c.la57()).count();
    }
}

/// LiME range headers (mem::lime).
pub fn lime_ranges(data: &[u8]) {
    if let Ok((segments, _missing)) = lime::parse(data, data.len() as u64) {
        for s in segments.iter().filter(|s| s.len > 0) {
            assert!(s.file_offset.checked_add(s.len).is_some_and(|e| e <= data.len() as u64), "range past the file");
        }
    }
}

/// Raw layout detection (mem::layout): 8 bytes of file length, then a `--ram-layout` spec.
pub fn raw_layout(data: &[u8]) {
    let file_len = le_u64(data, 0);
    let spec = String::from_utf8_lossy(data.get(8..).unwrap_or(&[]));
    let _ = layout::parse_size(&spec);
    if let Ok(l) = RawLayout::parse(&spec, file_len) {
        let _ = l.describe();
        let segments = layout::segments(&l, file_len);
        let total: u128 = segments.iter().map(|s| s.len as u128).sum();
        assert_eq!(total, file_len as u128, "the layout must place every byte of the file once");
    }
}

/// A RAM file sniffed and opened as a whole (mem::source, any format): a layout selector byte, then the file.
pub fn ram_source(data: &[u8]) {
    const LAYOUTS: [&str; 6] = ["auto", "flat", "qemu-pc", "qemu-q35", "firecracker", "firecracker-1.12"];
    let Some((&sel, file)) = data.split_first() else { return };
    let Ok((ram, _info)) = source_from_bytes(file.to_vec(), LAYOUTS[sel as usize % LAYOUTS.len()]) else { return };
    let mut buf = [0u8; 64];
    for r in ram.ranges().iter().take(64) {
        for at in [r.start, r.start.saturating_add(r.len / 2), r.start.saturating_add(r.len).saturating_sub(8)] {
            let _ = ram.read_phys(at, &mut buf);
            let _ = ram.phys_slice(at, 16);
        }
    }
    let _ = ram.scan_ranges();
}

/// Pages of a dump read back per input: enough to reach every compression, few enough to keep executions fast.
const KDUMP_PAGES: usize = 48;

/// A kdump-compressed dump (mem::kdump), standard or flattened: headers, bitmaps, page descriptors and the
/// pages, read as `nearfield` reads the file (through the page cache, whole and partial pages).
pub fn kdump_dump(data: &[u8]) {
    let Ok(ram) = KdumpRam::from_bytes(data.to_vec()) else { return };
    let kd = &ram.kdump;
    let _ = (kd.describe(), kd.dump_level_text(), kd.compression());
    for w in [kd.ranges(), kd.dumped_ranges()] {
        assert!(w.windows(2).all(|p| p[0].start.saturating_add(p[0].len) < p[1].start), "ranges sorted, apart");
    }
    let pfns = |ranges: &[PhysRange]| -> Vec<u64> {
        ranges.iter().flat_map(|r| (r.start / PAGE as u64..r.start.saturating_add(r.len) / PAGE as u64).take(KDUMP_PAGES)).take(KDUMP_PAGES).collect()
    };
    let mut whole = [0u8; PAGE];
    let mut part = [0u8; 24];
    for pfn in pfns(kd.dumped_ranges()) {
        let at = pfn * PAGE as u64;
        let _ = kd.page_flags(data, pfn);
        // A partial read goes through the cache; it must agree with the whole page read around it.
        let partial = ram.read_phys(at + 100, &mut part);
        if ram.read_phys(at, &mut whole).is_ok() && partial.is_ok() {
            assert_eq!(part[..], whole[100..124], "pfn {pfn:#x}: a cached partial read differs from the page");
        }
    }
    // Memory the dump describes but left out, and a read across ranges.
    for pfn in pfns(kd.ranges()).into_iter().step_by(7) {
        let _ = ram.read_phys(pfn * PAGE as u64 + PAGE as u64 - 8, &mut part);
    }
    let _ = ram.scan_ranges();
}

// ---------------------------------------------------------------------------------------------
// Kernel discovery

/// VMCOREINFO: the input as note text, and as RAM scanned for the note and the banner.
pub fn vmcoreinfo_note(data: &[u8]) {
    if let Ok(v) = Vmcoreinfo::parse(&String::from_utf8_lossy(data)) {
        let _ = (v.symbol("init_top_pgt"), v.number("phys_base"), v.number("pgtable_l5_enabled"));
        let _ = (v.kernel_offset(), v.page_size(), v.offset("page.flags"), v.size("page"), v.length("node_data"));
        let _ = v.symbols();
        let _ = KallsymsLocation::from_vmcoreinfo(&v.entries);
    }
    let ram = FlatPhys::new(data);
    if let Ok(v) = vmcoreinfo::scan(&ram) {
        if let Some(at) = v.phys_addr {
            let _ = vmcoreinfo::read_note_at(&ram, at);
        }
    }
    let _ = vmcoreinfo::scan_banners(&ram, 4);
    let _ = vmcoreinfo::read_note_at(&ram, le_u32(data, 0) as u64);
}

/// Where the kallsyms target's input puts its tables: offsets from `KALLSYMS_BASE`, `ABSENT` for none.
pub mod kallsyms_input {
    pub const BASE: u64 = 0xffff_ffff_8200_0000;
    pub const ABSENT: u32 = u32::MAX;
    pub const NAMES: usize = 0;
    pub const NUM_SYMS: usize = 4;
    pub const TOKEN_TABLE: usize = 8;
    pub const TOKEN_INDEX: usize = 12;
    pub const OFFSETS: usize = 16;
    pub const RELATIVE_BASE: usize = 20;
    pub const ADDRESSES: usize = 24;
    pub const MARKERS: usize = 28;
    /// A symbol VMCOREINFO would vouch for: its address (u64) and NUL-padded name (40 bytes).
    pub const KNOWN_ADDR: usize = 32;
    pub const KNOWN_NAME: usize = 40;
    pub const HEADER_LEN: usize = 80;
}

/// The tables' places as the kallsyms target's input header gives them, and the name it vouches for.
pub(crate) fn kallsyms_location(data: &[u8]) -> (KallsymsLocation, String) {
    use kallsyms_input as h;
    let field = |off: usize| h::BASE.wrapping_add(le_u32(data, off) as u64);
    let optional = |off: usize| (le_u32(data, off) != h::ABSENT).then(|| field(off));
    let name = data.get(h::KNOWN_NAME..h::HEADER_LEN).unwrap_or(&[]);
    let name = String::from_utf8_lossy(&name[..name.iter().position(|&b| b == 0).unwrap_or(name.len())]).into_owned();
    let loc = KallsymsLocation {
        names: field(h::NAMES),
        num_syms: field(h::NUM_SYMS),
        token_table: field(h::TOKEN_TABLE),
        token_index: field(h::TOKEN_INDEX),
        offsets: optional(h::OFFSETS),
        relative_base: optional(h::RELATIVE_BASE),
        addresses: optional(h::ADDRESSES),
        markers: optional(h::MARKERS),
        known: if name.is_empty() { Vec::new() } else { vec![(name.clone(), le_u64(data, h::KNOWN_ADDR))] },
    };
    (loc, name)
}

/// kallsyms tables decoded from memory: a header of table offsets, the whole input mapped at a kernel address.
pub fn kallsyms_tables(data: &[u8]) {
    let (loc, name) = kallsyms_location(data);
    let vm = kallsyms::builder::FlatVm { base: kallsyms_input::BASE, bytes: data.to_vec() };
    if let Ok(table) = kallsyms::decode(&vm, &loc) {
        let _ = table.get(&name);
        let _ = table.nearest(le_u64(data, kallsyms_input::KNOWN_ADDR));
        let _ = table.iter().take(1000).count();
        let _ = table.address_of("init_task");
    }
}

/// Every lookup walkers and the ISF export make on a types source, driven by the names it holds.
fn exercise_types(t: &dyn Types, names: &[(String, Vec<String>)]) {
    for (s, members) in names {
        let _ = t.struct_size(s);
        for m in members {
            let _ = t.member(s, m);
            let _ = t.member(s, &format!("{m}.{m}"));
            let _ = t.enum_value(s, m);
            let _ = t.enumerator(m);
        }
    }
    let _ = t.member("task_struct", "se.sum_exec_runtime");
    let _ = t.type_count();
}

/// A symbol table with just linux_banner, for the ISF export.
struct BannerOnly;
impl Symbols for BannerOnly {
    fn address_of(&self, name: &str) -> Option<u64> {
        (name == "linux_banner").then_some(0xffff_ffff_8200_0000)
    }
    fn len(&self) -> usize {
        1
    }
    fn all(&self) -> Vec<(String, u64)> {
        vec![("linux_banner".into(), 0xffff_ffff_8200_0000)]
    }
    fn source(&self) -> Source {
        Source::Kallsyms
    }
}

/// Lookups a walker makes, against parsed BTF, plus the ISF export that walks every type.
fn exercise_btf(b: &Btf) {
    let mut names = Vec::new();
    for (name, id) in b.aggregate_ids().take(64) {
        let members = b.members(id).iter().take(64).filter_map(|m| b.name(m.name_off).ok().map(str::to_string)).collect();
        names.push((name.to_string(), members));
    }
    for (name, id) in b.enum_ids().take(16) {
        let values = b.enum_values(id).map(|v| v.iter().take(16).map(|(n, _)| n.to_string()).collect()).unwrap_or_default();
        names.push((name.to_string(), values));
    }
    exercise_types(b, &names);
    for id in b.type_ids().take(4096) {
        let _ = (b.size_of(id), b.resolve(id), b.array_info(id), b.int_info(id));
    }
    let _ = isf::export(&BannerOnly, b, "Linux version fuzz\n", 0);
}

/// BTF (kernel::btf): parse, then every kind of lookup.
pub fn btf(data: &[u8]) {
    if let Ok(b) = Btf::parse(data.to_vec()) {
        exercise_btf(&b);
    }
}

/// A Volatility ISF (kernel::isf): parse, then the lookups walkers make.
pub fn isf_json(data: &[u8]) {
    let Ok(isf) = Isf::parse(data, 0x1000_0000) else { return };
    let _ = isf.symbols.address_of("init_task");
    let _ = isf.symbols.all().len();
    let doc: serde_json::Value = serde_json::from_slice(data).unwrap_or_default();
    let mut names = Vec::new();
    if let Some(types) = doc.get("user_types").and_then(|t| t.as_object()) {
        for (name, t) in types.iter().take(64) {
            let fields = t.get("fields").and_then(|f| f.as_object()).map(|f| f.keys().take(64).cloned().collect()).unwrap_or_default();
            names.push((name.clone(), fields));
        }
    }
    if let Some(enums) = doc.get("enums").and_then(|t| t.as_object()) {
        for (name, e) in enums.iter().take(16) {
            let consts = e.get("constants").and_then(|c| c.as_object()).map(|c| c.keys().take(16).cloned().collect()).unwrap_or_default();
            names.push((name.clone(), consts));
        }
    }
    exercise_types(&isf.types, &names);
}

/// A System.map text (kernel::system_map), relocated.
pub fn system_map(data: &[u8]) {
    if let Ok(map) = SystemMap::parse(&String::from_utf8_lossy(data), 0x1000_0000) {
        let _ = (map.address_of("init_task"), map.kind_of("_text"), map.all().len());
    }
}

/// A vmlinux ELF (kernel::vmlinux): .symtab and .BTF.
pub fn vmlinux_elf(data: &[u8]) {
    if let Ok(v) = vmlinux::parse(data, 0x1000_0000) {
        let _ = v.symbols.address_of("init_task");
        if let Some(b) = &v.btf {
            exercise_btf(b);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// printk ring buffer

/// Where the printk target's input sits in its synthetic guest: the struct printk_ringbuffer `prb`
/// points at, followed by whatever its descs/infos/data pointers point at (kernel virtual addresses
/// KBASE + PRINTK_AT + offset).
pub const PRINTK_AT: u64 = 0x1000;
const PRINTK_RAM: usize = 4 << 20;

/// 6.1's printk ring-buffer layouts (kernel/printk/printk_ringbuffer.h): struct sizes, and members as
/// (struct, path, offset, size, bit offset, bit size). A test holds them to the sample's BTF.
const PRINTK_SIZES: [(&str, u64); 3] = [("printk_ringbuffer", 88), ("prb_desc", 24), ("printk_info", 88)];
const PRINTK_MEMBERS: [(&str, &str, u64, u64, u32, u32); 21] = [
    ("printk_ringbuffer", "desc_ring", 0, 48, 0, 0),
    ("printk_ringbuffer", "text_data_ring", 48, 32, 0, 0),
    ("prb_desc_ring", "count_bits", 0, 4, 0, 0),
    ("prb_desc_ring", "descs", 8, 8, 0, 0),
    ("prb_desc_ring", "infos", 16, 8, 0, 0),
    ("prb_desc_ring", "head_id", 24, 8, 0, 0),
    ("prb_desc_ring", "tail_id", 32, 8, 0, 0),
    ("prb_data_ring", "size_bits", 0, 4, 0, 0),
    ("prb_data_ring", "data", 8, 8, 0, 0),
    ("prb_desc", "state_var", 0, 8, 0, 0),
    ("prb_desc", "text_blk_lpos", 8, 16, 0, 0),
    ("prb_data_blk_lpos", "begin", 0, 8, 0, 0),
    ("prb_data_blk_lpos", "next", 8, 8, 0, 0),
    ("printk_info", "seq", 0, 8, 0, 0),
    ("printk_info", "ts_nsec", 8, 8, 0, 0),
    ("printk_info", "text_len", 16, 2, 0, 0),
    ("printk_info", "facility", 18, 1, 0, 0),
    ("printk_info", "flags", 19, 1, 0, 5),
    ("printk_info", "level", 19, 1, 5, 3),
    ("printk_info", "caller_id", 20, 4, 0, 0),
    ("printk_info", "dev_info.subsystem", 24, 16, 0, 0),
];

/// A synthetic guest whose printk ring is `data` (see PRINTK_AT), laid out as 6.1's.
pub fn printk_guest(data: &[u8]) -> Kernel {
    let mut f = Fake::new(PRINTK_RAM);
    let prb_ptr = KBASE + 0x800;
    f.sym("prb", prb_ptr);
    f.put_u64(prb_ptr, KBASE + PRINTK_AT);
    let room = PRINTK_RAM - PRINTK_AT as usize;
    f.put(KBASE + PRINTK_AT, &data[..data.len().min(room)]);
    for (s, size) in PRINTK_SIZES {
        f.size(s, size);
    }
    for (s, path, offset, size, bit_offset, bit_size) in PRINTK_MEMBERS {
        f.member_bits(s, path, offset, size, bit_offset, bit_size);
    }
    f.member("printk_info", "dev_info.device", 40, 48, Some(48));
    f.kernel()
}

/// printk ring records (walkers::dmesg) in a synthetic guest whose ring is the input.
pub fn printk(data: &[u8]) {
    let k = printk_guest(data);
    if let Ok(log) = dmesg::dmesg(&k) {
        let _ = log.records.iter().map(|r| r.text.len()).sum::<usize>();
    }
}

// ---------------------------------------------------------------------------------------------
// Disks

/// Split an input into files: [u32 length][bytes] repeated; the rest of the input is the last file.
fn split_files(data: &[u8], max: usize) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while out.len() + 1 < max && rest.len() >= 4 {
        let n = le_u32(rest, 0) as usize;
        let body = &rest[4..];
        if n > body.len() {
            break;
        }
        out.push(&body[..n]);
        rest = &body[n..];
    }
    out.push(rest);
    out
}

/// Name of file `i` of a qcow2 input; backing names in the images are these, relative ("1", "2" …).
pub fn qcow2_file_name(i: usize) -> PathBuf {
    Path::new("/fuzz").join(i.to_string())
}

/// Read a disk at a spread of offsets, then look for a partition table and a filesystem on it.
fn read_around(dev: &dyn BlockDevice) {
    let size = dev.size();
    let mut buf = vec![0u8; 4096];
    for i in 0..64u64 {
        let at = ((size / 64).saturating_mul(i)) & !511;
        let n = (size.saturating_sub(at)).min(4096) as usize;
        let _ = dev.read_at(at, &mut buf[..n]);
    }
    let _ = dev.read_at(size.saturating_sub(100), &mut buf[..200]);
}

/// qcow2 (disk::qcow2): header, L1/L2, compressed clusters and a backing chain, all from the input's files.
pub fn qcow2(data: &[u8]) {
    let files: HashMap<PathBuf, Arc<dyn BlockDevice>> = split_files(data, 4)
        .into_iter()
        .enumerate()
        .map(|(i, b)| (qcow2_file_name(i), Arc::new(MemDevice { bytes: b.to_vec(), name: format!("file {i}") }) as Arc<dyn BlockDevice>))
        .collect();
    let Ok(q) = Qcow2::open_in(&MemFiles(files), &qcow2_file_name(0)) else { return };
    let _ = (q.backing_chain(), q.warnings().len(), q.header().size);
    read_around(&q);
    let _ = detect::detect(&q);
}

/// MBR/GPT (disk::partition) and what each partition holds (disk::detect).
pub fn partition_table(data: &[u8]) {
    let dev: Arc<dyn BlockDevice> = Arc::new(MemDevice { bytes: data.to_vec(), name: "fuzz disk".into() });
    let Ok(table) = partition::read_table(dev.as_ref()) else { return };
    for p in table.partitions.iter().take(256) {
        let _ = (p.is_linux_root(), p.is_linux_fs());
        if let Ok(w) = Window::new(dev.clone(), p.start, p.size, format!("partition {}", p.number)) {
            let _ = detect::detect(&w);
        }
    }
}

/// ext4 superblock and group descriptors (disk::ext4), statfs and the journal size.
pub fn ext4_fs(data: &[u8]) {
    let dev = MemDevice { bytes: data.to_vec(), name: "fuzz fs".into() };
    let _ = detect::detect(&dev);
    let Ok(fs) = ext4::Ext4::open(&dev) else { return };
    let _ = fs.statfs();
    let _ = (fs.features(), fs.label(), fs.uuid(), fs.last_mounted(), fs.needs_recovery(), fs.orphan_present());
    let _ = (fs.resv_clusters(), fs.superblock_free_blocks());
    for ino in [1, 2, 8, 11] {
        let _ = fs.read_inode(&dev, ino);
    }
}

// ---------------------------------------------------------------------------------------------
// Walkers over a fuzzed guest

/// Bytes of one page; a fuzz input is records of [u32 page frame number][PAGE bytes].
pub const PAGE: usize = 4096;
const MAX_PAGES: usize = 16;

/// The sample's RAM with some pages replaced by fuzzer bytes (and, for seeding, a log of the pages read).
pub struct Overlay {
    base: Arc<dyn PhysicalMemory>,
    /// (page frame number, bytes): a handful, so a scan beats hashing.
    pages: RwLock<Vec<(u64, Vec<u8>)>>,
    recording: AtomicBool,
    reads: Mutex<Vec<u64>>,
}

impl Overlay {
    fn note(&self, addr: u64, len: usize) {
        if !self.recording.load(Ordering::Relaxed) {
            return;
        }
        if let Ok(mut log) = self.reads.lock() {
            let last = addr.saturating_add(len.max(1) as u64 - 1) / PAGE as u64;
            for pfn in addr / PAGE as u64..=last {
                if log.last() != Some(&pfn) {
                    log.push(pfn);
                }
            }
        }
    }
}

impl PhysicalMemory for Overlay {
    fn read_phys(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        self.note(addr, buf.len());
        let pages = self.pages.read().map_err(|_| Error::bad("overlay lock poisoned"))?;
        let (first, last) = (addr / PAGE as u64, addr.saturating_add(buf.len() as u64) / PAGE as u64);
        if !pages.iter().any(|(p, _)| (first..=last).contains(p)) {
            return self.base.read_phys(addr, buf);
        }
        let mut done = 0usize;
        while done < buf.len() {
            let at = addr.checked_add(done as u64).ok_or_else(|| Error::fault(addr, "physical read wraps around"))?;
            let within = (at % PAGE as u64) as usize;
            let n = (PAGE - within).min(buf.len() - done);
            match pages.iter().find(|(p, _)| *p == at / PAGE as u64) {
                Some((_, page)) => buf[done..done + n].copy_from_slice(&page[within..within + n]),
                None => self.base.read_phys(at, &mut buf[done..done + n])?,
            }
            done += n;
        }
        Ok(())
    }
    fn phys_slice(&self, addr: u64, len: usize) -> Result<&[u8]> {
        let pages = self.pages.read().map_err(|_| Error::bad("overlay lock poisoned"))?;
        let (first, last) = (addr / PAGE as u64, addr.saturating_add(len as u64) / PAGE as u64);
        if pages.iter().any(|(p, _)| (first..=last).contains(p)) {
            return Err(Error::fault(addr, "fuzzed pages are not contiguous with the file"));
        }
        self.base.phys_slice(addr, len)
    }
    fn ranges(&self) -> &[PhysRange] {
        self.base.ranges()
    }
    fn scan_ranges(&self) -> Vec<PhysRange> {
        self.base.scan_ranges()
    }
}

/// Options a walker is fuzzed with instead of its defaults, to reach its deepest paths: every thread, and every
/// task's stack unwound (ORC) plus what each CPU was running. Every other walker runs with its defaults.
pub const WALKER_OPTIONS: &[(&str, &str)] = &[("tasks", r#"{"threads":true}"#), ("stacks", r#"{"all":true,"cpu":true}"#)];

fn walker_options(name: &str) -> serde_json::Value {
    WALKER_OPTIONS.iter().find(|(n, _)| *n == name).and_then(|(_, o)| serde_json::from_str(o).ok()).unwrap_or(serde_json::Value::Null)
}

/// The sample's types with every answer remembered. They are the sample kernel's, not the input's, so remembering
/// them changes nothing the target fuzzes; it spares the by-name BTF searches that otherwise take a quarter of an
/// instrumented execution (every walker resolves its layouts afresh).
struct RememberedTypes {
    inner: Box<dyn Types>,
    members: Mutex<HashMap<(String, String), Option<Member>>>,
    sizes: Mutex<HashMap<String, Option<u64>>>,
    enumerators: Mutex<HashMap<(String, String), Option<i64>>>,
}

fn remembered<K: std::hash::Hash + Eq, V: Copy>(map: &Mutex<HashMap<K, V>>, key: K, look_up: impl FnOnce() -> V) -> V {
    let Ok(mut m) = map.lock() else { return look_up() };
    *m.entry(key).or_insert_with(look_up)
}

impl Types for RememberedTypes {
    fn struct_size(&self, name: &str) -> Option<u64> {
        remembered(&self.sizes, name.to_string(), || self.inner.struct_size(name))
    }
    fn member(&self, struct_name: &str, path: &str) -> Option<Member> {
        remembered(&self.members, (struct_name.to_string(), path.to_string()), || self.inner.member(struct_name, path))
    }
    fn enum_value(&self, enum_name: &str, enumerator: &str) -> Option<i64> {
        remembered(&self.enumerators, (enum_name.to_string(), enumerator.to_string()), || self.inner.enum_value(enum_name, enumerator))
    }
    fn enumerator(&self, enumerator: &str) -> Option<i64> {
        remembered(&self.enumerators, (String::new(), enumerator.to_string()), || self.inner.enumerator(enumerator))
    }
    fn type_count(&self) -> usize {
        self.inner.type_count()
    }
    fn source(&self) -> Source {
        self.inner.source()
    }
}

/// Every registered walker (walkers::ALL, so a new walker is fuzzed without being named here) on the sample's
/// discovered kernel (real layouts, symbols and, from its ELF core, vCPU registers) over a fuzzed RAM.
pub struct Walkers {
    ram: Arc<Overlay>,
    kernel: Kernel,
    report: DiscoveryReport,
    ram_path: String,
}

impl Walkers {
    /// Discover the kernel in `dir` (its core.elf, else ram.raw) once; inputs then replace pages of that RAM.
    pub fn on_sample(dir: &Path) -> Result<Walkers> {
        use crate::kernel::discover::{discover, DiscoverOptions};
        let ram_file = [dir.join("core.elf"), dir.join("ram.raw")].into_iter().find(|p| p.is_file()).unwrap_or_else(|| dir.join("ram.raw"));
        let d = discover(&DiscoverOptions { ram: ram_file.clone(), layout: "auto".into(), use_cache: false, ..Default::default() })?;
        let Kernel { phys, symbols, types, facts, .. } = d.kernel;
        let ram = Arc::new(Overlay { base: phys, pages: RwLock::new(Vec::new()), recording: AtomicBool::new(false), reads: Mutex::new(Vec::new()) });
        let spaces = X86AddressSpaces::new(ram.clone(), facts.dtb, facts.paging_levels)?;
        let types = Box::new(RememberedTypes { inner: types, members: Default::default(), sizes: Default::default(), enumerators: Default::default() });
        let kernel = Kernel::from_parts(ram.clone(), Box::new(spaces), symbols, types, facts);
        let w = Walkers { ram, kernel, report: d.report, ram_path: ram_file.display().to_string() };
        // The boot's own tables (Kernel::memo_boot: the symbol index, taint_flags[]) come from the untouched
        // sample, as a live guest keeps them across walks; what each walk derives is forgotten before every input.
        w.walk_all();
        Ok(w)
    }

    pub fn kernel(&self) -> &Kernel {
        &self.kernel
    }

    /// Replace pages as the input says (pages outside the RAM are ignored), walk, then restore.
    pub fn run(&self, data: &[u8]) {
        let mut pages: Vec<(u64, Vec<u8>)> = Vec::new();
        for rec in data.chunks(4 + PAGE).take(MAX_PAGES) {
            let Some((pfn, bytes)) = rec.split_first_chunk::<4>() else { continue };
            let pfn = u32::from_le_bytes(*pfn) as u64;
            let mut page = vec![0u8; PAGE];
            // A short last record patches the start of its page.
            if pages.iter().any(|(p, _)| *p == pfn) || self.ram.base.read_phys(pfn * PAGE as u64, &mut page).is_err() {
                continue;
            }
            page[..bytes.len()].copy_from_slice(bytes);
            pages.push((pfn, page));
        }
        if let Ok(mut p) = self.ram.pages.write() {
            *p = pages;
        }
        self.kernel.forget_memo();
        self.walk_all();
        if let Ok(mut p) = self.ram.pages.write() {
            p.clear();
        }
    }

    fn context(&self) -> Context<'_> {
        Context { kernel: &self.kernel, report: &self.report, ram: &self.ram_path }
    }

    /// Run one walker as `nearfield` runs it (walkers::run: options parsed, record serialised).
    pub fn walk(&self, walker: &Walker) -> Result<String> {
        walkers::run(&self.context(), walker.name, walker_options(walker.name))
    }

    fn walk_all(&self) {
        for w in walkers::ALL {
            let _ = self.walk(w);
        }
    }

    /// The physical pages each walker reads on the untouched sample, in first-read order (for seeds).
    pub fn pages_read(&self) -> Vec<(&'static str, Vec<u64>)> {
        let mut out = Vec::new();
        for w in walkers::ALL {
            if let Ok(mut log) = self.ram.reads.lock() {
                log.clear();
            }
            self.kernel.forget_memo();
            self.ram.recording.store(true, Ordering::Relaxed);
            let _ = self.walk(w);
            self.ram.recording.store(false, Ordering::Relaxed);
            let log = self.ram.reads.lock().map(|mut l| std::mem::take(&mut *l)).unwrap_or_default();
            let mut seen = std::collections::HashSet::new();
            out.push((w.name, log.into_iter().filter(|p| seen.insert(*p)).collect()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// native/fuzz/regressions/<target>/*: inputs that once crashed, hung or exhausted memory.
    fn regressions(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions").join(target);
        let mut out: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
            .map(|rd| rd.flatten().map(|e| e.path()).filter(|p| p.is_file()).map(|p| (p.clone(), std::fs::read(&p).unwrap())).collect())
            .unwrap_or_default();
        out.sort();
        out
    }

    #[test]
    fn every_target_has_a_runner() {
        for t in TARGETS {
            assert!(*t == "walkers" || run(t, &[]), "{t}");
        }
        assert!(!run("nope", &[]));
    }

    /// Every input that once crashed a parser target returns now (a panic fails this test).
    #[test]
    fn parser_regressions_replay() {
        let mut n = 0;
        for t in TARGETS.iter().filter(|t| **t != "walkers") {
            for (path, data) in regressions(t) {
                let started = std::time::Instant::now();
                run(t, &data);
                assert!(started.elapsed().as_secs() < 10, "{} took {:?}", path.display(), started.elapsed());
                n += 1;
            }
        }
        eprintln!("{n} parser regression inputs replayed");
    }

    /// Found by fuzzing (printk, out of memory): a ring claiming 2 GiB of text (size_bits 31) in a 4 MiB guest
    /// is refused before a buffer that size is allocated.
    #[test]
    fn printk_ring_larger_than_the_guest_is_refused_before_allocating() {
        let mut ring = seeds::printk_ring(&seeds::synthetic_records());
        ring[48..52].copy_from_slice(&31u32.to_le_bytes());
        let e = dmesg::dmesg(&printk_guest(&ring)).unwrap_err();
        assert!(matches!(&e, Error::BadData(m) if m.contains("larger than the guest's RAM")), "{e}");
        let (_, found) = regressions("printk").into_iter().find(|(p, _)| p.ends_with("ring-larger-than-ram")).unwrap();
        let e = dmesg::dmesg(&printk_guest(&found)).unwrap_err();
        assert!(matches!(&e, Error::BadData(m) if m.contains("larger than the guest's RAM")), "{e}");
    }

    /// The printk target's synthetic guest is laid out as the sample's kernel is.
    #[test]
    fn printk_layout_is_the_sample_kernels() {
        let Some(dir) = crate::test_support::real_guest_dir() else {
            eprintln!("skipped: no real guest (unpack the sample: node images/unpack-sample.mjs)");
            return;
        };
        let w = Walkers::on_sample(&dir).unwrap();
        let types = &w.kernel().types;
        for (s, size) in PRINTK_SIZES {
            assert_eq!(types.struct_size(s), Some(size), "{s}");
        }
        for (s, path, offset, size, bit_offset, bit_size) in PRINTK_MEMBERS {
            let m = types.member(s, path).unwrap_or_else(|| panic!("{s}.{path}"));
            assert_eq!((m.offset, m.size, m.bit_offset, m.bit_size), (offset, size, bit_offset, bit_size), "{s}.{path}");
        }
        assert_eq!(types.member("printk_info", "dev_info.device").map(|m| (m.offset, m.size)), Some((40, 48)));
    }

    /// The walkers target drives every registered walker to its end on the untouched sample (an option it does not
    /// take, or a walk that fails at once, would leave that walker unfuzzed), and says what each costs.
    #[test]
    fn every_walker_runs_on_the_sample() {
        let Some(dir) = crate::test_support::real_guest_dir() else {
            eprintln!("skipped: no real guest (unpack the sample: node images/unpack-sample.mjs)");
            return;
        };
        let w = Walkers::on_sample(&dir).unwrap();
        assert!(walkers::ALL.len() >= 20, "{} walkers", walkers::ALL.len());
        for (name, _) in WALKER_OPTIONS {
            assert!(walkers::find(name).is_ok(), "{name}");
        }
        for walker in walkers::ALL {
            w.kernel().forget_memo();
            let started = std::time::Instant::now();
            let json = w.walk(walker).unwrap_or_else(|e| panic!("{}: {e}", walker.name));
            eprintln!("{:10} {:7.1} ms {:8} bytes", walker.name, started.elapsed().as_secs_f64() * 1e3, json.len());
        }
        let stacks = w.walk(walkers::find("stacks").unwrap()).unwrap();
        let v: serde_json::Value = serde_json::from_str(&stacks).unwrap();
        let traced = v["tasks"].as_array().map_or(0, |t| t.iter().filter(|t| t["frames"].as_array().is_some_and(|f| !f.is_empty())).count());
        assert!(traced > 50, "stacks traced {traced} tasks: {}", &stacks[..stacks.len().min(500)]);
        let started = std::time::Instant::now();
        w.run(&[]);
        eprintln!("one input through every walker: {:.1} ms", started.elapsed().as_secs_f64() * 1e3);
    }

    /// Every input that once crashed the walkers target returns now, on the sample it was found on.
    #[test]
    fn walker_regressions_replay() {
        let inputs = regressions("walkers");
        if inputs.is_empty() {
            return;
        }
        let Some(dir) = crate::test_support::real_guest_dir() else {
            eprintln!("skipped: no real guest (unpack the sample: node images/unpack-sample.mjs)");
            return;
        };
        let w = Walkers::on_sample(&dir).unwrap();
        for (path, data) in inputs {
            let started = std::time::Instant::now();
            w.run(&data);
            assert!(started.elapsed().as_secs() < 10, "{} took {:?}", path.display(), started.elapsed());
        }
    }
}
