//! x86-64 ORC unwind tables in guest RAM, arch/x86/include/asm/orc_types.h and arch/x86/kernel/unwind_orc.c
//! (orc_find, __orc_find) of 6.1, 6.3 and 6.4+: which entry layout the kernel uses, the vmlinux table
//! (`__start_orc_unwind_ip` … `__stop_orc_unwind`) and each module's (`struct module.arch`).
//!
//! Tables are searched in guest memory, never copied whole (vmlinux's is ~4 MB): vmlinux lookups go
//! through the kernel's own `orc_lookup` block index as orc_find() does, and every answer it gives is
//! checked against the table itself (the entry found is ≤ ip and the next one is > ip); when the index
//! disagrees or is unusable we binary-search the whole table (`__orc_find` over all entries), with a warning.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::modules::module_table;
use crate::bytes::{le_u16, le_u32};
use crate::kernel::Kernel;
use crate::mem::VirtualMemory;
use crate::{Error, Result};

/// sizeof(struct orc_entry): s16 sp_offset, s16 bp_offset, then a 16-bit unit of bitfields (__packed).
const ORC_ENTRY_SIZE: u64 = 6;
/// vmlinux has ~400 000 entries on Debian 6.1/6.12; a table 10× that is not an ORC table.
const MAX_ORC_ENTRIES: u64 = 4 << 20;
/// A module's table (the largest drivers have tens of thousands).
const MAX_MODULE_ORCS: u64 = 1 << 20;
/// LOOKUP_BLOCK_SIZE (arch/x86/include/asm/orc_lookup.h): one orc_lookup slot per 256 bytes of text.
const LOOKUP_BLOCK_SIZE: u64 = 256;
/// Entries of one orc_lookup block we read at once (a block of 256 bytes of code has a few dozen).
const MAX_BLOCK_ENTRIES: u64 = 4096;
/// Entries sampled to recognise the layout.
const SAMPLE_CHUNKS: u64 = 8;
const SAMPLE_ENTRIES: u64 = 1024;

/// The ORC_REG_* base registers (unchanged since 4.14).
pub mod reg {
    pub const UNDEFINED: u8 = 0;
    pub const PREV_SP: u8 = 1;
    pub const DX: u8 = 2;
    pub const DI: u8 = 3;
    pub const BP: u8 = 4;
    pub const SP: u8 = 5;
    pub const R10: u8 = 6;
    pub const R13: u8 = 7;
    pub const BP_INDIRECT: u8 = 8;
    pub const SP_INDIRECT: u8 = 9;
}

/// What an entry says the frame is, in the 6.3+ vocabulary (the older layout maps onto it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrcType {
    /// No unwind information here (a "weak" section terminator, or a gap): unwinding fails.
    Undefined,
    /// The bottom of a stack (kernel thread entry, ret_from_fork): unwinding ends cleanly.
    EndOfStack,
    /// A normal call frame: the return address sits just below the previous SP.
    Call,
    /// A full struct pt_regs at the previous SP (entry code, exceptions, interrupts).
    Regs,
    /// Only the hardware IRET frame (ip, cs, flags, sp, ss) at the previous SP.
    RegsPartial,
    /// A type value this layout does not define.
    Unknown(u8),
}

/// One decoded struct orc_entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrcEntry {
    pub sp_offset: i16,
    pub bp_offset: i16,
    pub sp_reg: u8,
    pub bp_reg: u8,
    pub kind: OrcType,
    /// The IP of the frame above is exact, not a return address (6.3+ `signal` bit; REGS frames before).
    pub signal: bool,
}

/// The struct orc_entry layouts the kernel has used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrcLayout {
    /// 4.14–6.2: `sp_reg:4 bp_reg:4 type:2 end:1`, types CALL 0, REGS 1, REGS_PARTIAL 2; a frame with an
    /// undefined sp_reg ends the stack when `end` is set.
    EndBit,
    /// 6.3+: `sp_reg:4 bp_reg:4 type:3 signal:1`, types UNDEFINED 0, END_OF_STACK 1, CALL 2, REGS 3,
    /// REGS_PARTIAL 4 (6.4 added the .orc_header hash in front of the tables).
    Signal,
}

/// How this kernel's ORC data is to be read, and why we think so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrcFormat {
    pub layout: OrcLayout,
    /// ORC_REG_SP_INDIRECT means `*(sp) + offset` (6.2+, call-depth tracking) rather than `*(sp + offset)`.
    pub sp_indirect_adds_after: bool,
    /// The 20-byte .orc_header hash (6.4+), hex.
    pub header: Option<String>,
    /// "6.1-style (end bit)", "6.4+ (.orc_header)" … for the output.
    pub name: String,
    /// What told us: the .orc_header, the kernel release, the entries' statistics.
    pub evidence: String,
}

impl OrcFormat {
    fn decode(&self, b: &[u8]) -> Option<OrcEntry> {
        let sp_offset = le_u16(b, 0)? as i16;
        let bp_offset = le_u16(b, 2)? as i16;
        let regs = *b.get(4)?;
        let bits = *b.get(5)?;
        let (sp_reg, bp_reg) = (regs & 0x0f, regs >> 4);
        let (kind, signal) = match self.layout {
            OrcLayout::EndBit => {
                let end = bits & 0x04 != 0;
                let kind = match bits & 0x03 {
                    _ if sp_reg == reg::UNDEFINED => {
                        if end {
                            OrcType::EndOfStack
                        } else {
                            OrcType::Undefined
                        }
                    }
                    0 => OrcType::Call,
                    1 => OrcType::Regs,
                    2 => OrcType::RegsPartial,
                    n => OrcType::Unknown(n),
                };
                (kind, matches!(kind, OrcType::Regs | OrcType::RegsPartial))
            }
            OrcLayout::Signal => {
                let kind = match bits & 0x07 {
                    0 => OrcType::Undefined,
                    1 => OrcType::EndOfStack,
                    2 => OrcType::Call,
                    3 => OrcType::Regs,
                    4 => OrcType::RegsPartial,
                    n => OrcType::Unknown(n),
                };
                (kind, bits & 0x08 != 0)
            }
        };
        Some(OrcEntry { sp_offset, bp_offset, sp_reg, bp_reg, kind, signal })
    }
}

/// "6.1.0-26-amd64" → (6, 1).
pub fn release_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The layout the entries themselves point to: call frames are by far the commonest entries, and CALL
/// is type 0 in the end-bit layout but 2 in the signal layout (where 0 is only the rare terminator).
/// None when the raw entries (6 bytes each) do not clearly favour one.
pub fn layout_by_statistics(raw: &[u8]) -> Option<OrcLayout> {
    let (mut zero, mut two, mut n) = (0usize, 0usize, 0usize);
    for e in raw.chunks_exact(ORC_ENTRY_SIZE as usize).take(200_000) {
        let (regs, bits) = (e[4], e[5]);
        if regs & 0x0f == reg::UNDEFINED {
            continue; // terminators and ends say nothing about the CALL type number
        }
        n += 1;
        match bits & 0x07 {
            0 => zero += 1,
            2 => two += 1,
            _ => {}
        }
    }
    if n < 16 {
        return None;
    }
    if zero * 2 > n {
        Some(OrcLayout::EndBit)
    } else if two * 2 > n {
        Some(OrcLayout::Signal)
    } else {
        None
    }
}

/// Decide the entry layout from the .orc_header (6.4+), the release, and the entries, saying which told
/// us and warning when they disagree.
pub fn detect_format(release: Option<&str>, header: Option<&[u8]>, sample: &[u8], warnings: &mut Vec<String>) -> Result<OrcFormat> {
    let version = release.and_then(release_version);
    let stats = layout_by_statistics(sample);
    let hex = header.map(|h| h.iter().map(|b| format!("{b:02x}")).collect::<String>());
    let (layout, evidence) = if let Some(h) = &hex {
        (OrcLayout::Signal, format!(".orc_header {h} (6.4+)"))
    } else if let Some((maj, min)) = version {
        if (maj, min) >= (6, 4) {
            warnings.push(format!("ORC: kernel {maj}.{min} should carry an .orc_header but has none; going by its entries"));
            match stats {
                Some(l) => (l, format!("entry statistics (release {maj}.{min} without .orc_header)")),
                None => return Err(Error::Unsupported(format!("ORC: kernel {maj}.{min} has no .orc_header and its entries fit no known layout"))),
            }
        } else if (maj, min) >= (6, 3) {
            (OrcLayout::Signal, format!("release {maj}.{min} (6.3: signal bit, no header)"))
        } else {
            (OrcLayout::EndBit, format!("release {maj}.{min} (before 6.3: end bit)"))
        }
    } else {
        match stats {
            Some(l) => (l, "entry statistics (release unknown)".to_string()),
            None => return Err(Error::Unsupported("ORC: neither the release, an .orc_header nor the entries say which layout this is".into())),
        }
    };
    if let Some(s) = stats {
        if s != layout {
            warnings.push(format!("ORC: {evidence} says {layout:?} but the entries look like {s:?}; going by the entries"));
            return Ok(format_of(s, version, hex, format!("entry statistics, against {evidence}")));
        }
    }
    Ok(format_of(layout, version, hex, evidence))
}

fn format_of(layout: OrcLayout, version: Option<(u32, u32)>, header: Option<String>, evidence: String) -> OrcFormat {
    // the SP_INDIRECT change came with call-depth tracking in 6.2, before the layout change of 6.3
    let sp_indirect_adds_after = layout == OrcLayout::Signal || version.is_some_and(|v| v >= (6, 2));
    let name = match (layout, &header) {
        (OrcLayout::Signal, Some(_)) => "6.4+ (signal bit, .orc_header)",
        (OrcLayout::Signal, None) => "6.3 (signal bit)",
        (OrcLayout::EndBit, _) => "before 6.3 (end bit)",
    };
    OrcFormat { layout, sp_indirect_adds_after, header, name: name.into(), evidence }
}

/// One ORC table: absolute IPs, sorted, and their entries.
#[derive(Debug, Default)]
pub struct OrcTable {
    ips: Vec<u64>,
    entries: Vec<OrcEntry>,
}

impl OrcTable {
    /// Decode `.orc_unwind_ip` (s32 offsets relative to each slot, at `ip_base`) and `.orc_unwind`.
    /// An unsorted table is sorted (the kernel sorts at boot, or sorttable at build time) with a warning.
    pub fn decode(fmt: &OrcFormat, ip_base: u64, ip_raw: &[u8], orc_raw: &[u8], what: &str, warnings: &mut Vec<String>) -> OrcTable {
        let n_ip = ip_raw.len() / 4;
        let n_orc = orc_raw.len() / ORC_ENTRY_SIZE as usize;
        if n_ip != n_orc {
            warnings.push(format!("{what}: {n_ip} ORC IPs but {n_orc} entries; using the first {}", n_ip.min(n_orc)));
        }
        let n = n_ip.min(n_orc);
        let mut ips = Vec::with_capacity(n);
        let mut entries = Vec::with_capacity(n);
        for i in 0..n {
            let (Some(rel), Some(e)) = (le_u32(ip_raw, i * 4), fmt.decode(&orc_raw[i * 6..i * 6 + 6])) else { break };
            // orc_ip(): the slot's own address plus its signed offset
            ips.push(ip_base.wrapping_add(i as u64 * 4).wrapping_add(rel as i32 as i64 as u64));
            entries.push(e);
        }
        let mut t = OrcTable { ips, entries };
        if let Some(at) = t.ips.windows(2).position(|w| w[0] > w[1]) {
            warnings.push(format!("{what}: ORC table out of order at entry {}; sorted a copy", at + 1));
            t.sort();
        }
        t
    }

    /// orc_sort_cmp(): by IP, terminators (undefined) first among equal IPs so real entries win.
    fn sort(&mut self) {
        let mut idx: Vec<usize> = (0..self.ips.len()).collect();
        idx.sort_by_key(|&i| (self.ips[i], self.entries[i].kind != OrcType::Undefined));
        self.ips = idx.iter().map(|&i| self.ips[i]).collect();
        self.entries = idx.iter().map(|&i| self.entries[i]).collect();
    }

    pub fn len(&self) -> usize {
        self.ips.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ips.is_empty()
    }

    /// __orc_find(): the rightmost entry whose IP is ≤ `ip`.
    pub fn find(&self, ip: u64) -> Option<OrcEntry> {
        let pos = self.ips.partition_point(|&a| a <= ip);
        self.entries.get(pos.checked_sub(1)?).copied()
    }
}

/// An ORC table left in guest memory: `n` s32 IP offsets at `ip_base`, `n` entries at `orc_base`, and for
/// vmlinux the orc_lookup index over [start_ip, stop_ip).
#[derive(Debug)]
pub struct GuestTable {
    pub ip_base: u64,
    pub orc_base: u64,
    pub n: u64,
    pub lookup: Option<LookupIndex>,
}

/// The kernel's orc_lookup[]: for block i of text (LOOKUP_BLOCK_SIZE bytes from `start_ip`), the index
/// of the first entry that applies to it.
#[derive(Debug, Clone, Copy)]
pub struct LookupIndex {
    pub base: u64,
    pub blocks: u64,
    pub start_ip: u64,
    pub stop_ip: u64,
}

impl GuestTable {
    fn ip_at(&self, mem: &dyn VirtualMemory, i: u64) -> Option<u64> {
        let slot = self.ip_base.checked_add(i.checked_mul(4)?)?;
        let mut b = [0u8; 4];
        mem.read_virt(slot, &mut b).ok()?;
        Some(slot.wrapping_add(i32::from_le_bytes(b) as i64 as u64))
    }

    fn entry_at(&self, mem: &dyn VirtualMemory, fmt: &OrcFormat, i: u64) -> Option<OrcEntry> {
        let mut b = [0u8; 6];
        mem.read_virt(self.orc_base.checked_add(i.checked_mul(ORC_ENTRY_SIZE)?)?, &mut b).ok()?;
        fmt.decode(&b)
    }

    /// __orc_find() over entries [lo, hi): the rightmost whose IP is ≤ ip (bounded: log2 steps).
    fn search(&self, mem: &dyn VirtualMemory, lo: u64, hi: u64, ip: u64) -> Option<u64> {
        let (mut first, mut last) = (lo, hi.checked_sub(1)?);
        let mut found = None;
        for _ in 0..64 {
            if first > last {
                break;
            }
            let mid = first + (last - first) / 2;
            if self.ip_at(mem, mid)? <= ip {
                found = Some(mid);
                first = mid + 1;
            } else {
                match mid.checked_sub(1) {
                    Some(m) => last = m,
                    None => break,
                }
            }
        }
        found
    }

    /// Is entry `f` the rightmost with IP ≤ ip in a sorted table? (It is ≤ ip and the next is above.)
    fn confirmed(&self, mem: &dyn VirtualMemory, f: u64, ip: u64) -> bool {
        self.ip_at(mem, f).is_some_and(|a| a <= ip) && (f + 1 >= self.n || self.ip_at(mem, f + 1).is_some_and(|b| b > ip))
    }

    fn find(&self, mem: &dyn VirtualMemory, fmt: &OrcFormat, ip: u64, warn: &mut dyn FnMut(String)) -> Option<OrcEntry> {
        if let Some(l) = self.lookup.filter(|l| ip >= l.start_ip && ip < l.stop_ip) {
            let idx = (ip - l.start_ip) / LOOKUP_BLOCK_SIZE;
            let slot = |i: u64| -> Option<u64> {
                let mut b = [0u8; 4];
                mem.read_virt(l.base.checked_add(i.checked_mul(4)?)?, &mut b).ok()?;
                Some(u32::from_le_bytes(b) as u64)
            };
            let range = if idx + 1 < l.blocks { slot(idx).zip(slot(idx + 1).map(|s| s + 1)) } else { None };
            match range {
                Some((start, stop)) if start < stop && stop <= self.n && stop - start <= MAX_BLOCK_ENTRIES => {
                    if let Some(f) = self.search(mem, start, stop, ip).filter(|&f| self.confirmed(mem, f, ip)) {
                        return self.entry_at(mem, fmt, f);
                    }
                    warn(format!("ORC: orc_lookup[{idx}] ({start}..{stop}) does not hold the entry for {ip:#x}; searched the whole table"));
                }
                _ => warn(format!("ORC: orc_lookup[{idx}] is unusable for {ip:#x}; searched the whole table")),
            }
        }
        let f = self.search(mem, 0, self.n, ip)?;
        if !self.confirmed(mem, f, ip) {
            warn(format!("ORC: the table is out of order around entry {f} ({ip:#x}); that lookup is not trusted"));
            return None;
        }
        self.entry_at(mem, fmt, f)
    }
}

/// A module's text ranges, its name and its table.
type ModuleOrc = (Vec<(u64, u64)>, String, Table);

#[derive(Debug)]
enum Table {
    /// Copied and decoded (tests, small tables).
    Loaded(OrcTable),
    Guest(GuestTable),
}

/// The kernel's ORC data: the format, vmlinux's table and text range, and each module's table.
#[derive(Debug)]
pub struct Orc {
    pub format: OrcFormat,
    vmlinux: Table,
    /// [_stext, _etext) and [_sinittext, _einittext): where vmlinux's table applies.
    text: Vec<(u64, u64)>,
    /// Module text ranges and their tables.
    modules: Vec<ModuleOrc>,
    pub warnings: Vec<String>,
    /// Warnings found while looking things up (a corrupt index, a table out of order), said once each.
    lookup_warnings: Mutex<Vec<String>>,
    cache: Mutex<HashMap<u64, Option<OrcEntry>>>,
}

impl Orc {
    /// orc_find(): the entry for `ip` in vmlinux or the module whose text holds it.
    pub fn find(&self, mem: &dyn VirtualMemory, ip: u64) -> Option<OrcEntry> {
        if let Some(hit) = self.cache.lock().ok().and_then(|c| c.get(&ip).copied()) {
            return hit;
        }
        let table = if self.text.iter().any(|&(a, b)| ip >= a && ip < b) {
            Some(&self.vmlinux)
        } else {
            self.modules.iter().find(|(t, _, _)| t.iter().any(|&(a, b)| ip >= a && ip < b)).map(|(_, _, t)| t)
        };
        let mut warn = |w: String| {
            if let Ok(mut l) = self.lookup_warnings.lock() {
                if l.len() < 16 && !l.contains(&w) {
                    l.push(w);
                }
            }
        };
        let hit = match table {
            Some(Table::Loaded(t)) => t.find(ip),
            Some(Table::Guest(t)) => t.find(mem, &self.format, ip, &mut warn),
            None => None,
        };
        if let Ok(mut c) = self.cache.lock() {
            c.insert(ip, hit);
        }
        hit
    }

    /// __kernel_text_address() for what we can see: vmlinux text and module text.
    pub fn is_text(&self, ip: u64) -> bool {
        self.text.iter().chain(self.modules.iter().flat_map(|(t, _, _)| t.iter())).any(|&(a, b)| ip >= a && ip < b)
    }

    pub fn vmlinux_entries(&self) -> usize {
        match &self.vmlinux {
            Table::Loaded(t) => t.len(),
            Table::Guest(t) => t.n as usize,
        }
    }

    pub fn module_tables(&self) -> usize {
        self.modules.iter().filter(|(_, _, t)| matches!(t, Table::Guest(g) if g.n > 0) || matches!(t, Table::Loaded(l) if !l.is_empty())).count()
    }

    /// Warnings from lookups so far.
    pub fn lookup_warnings(&self) -> Vec<String> {
        self.lookup_warnings.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn new(format: OrcFormat, vmlinux: Table, text: Vec<(u64, u64)>, modules: Vec<ModuleOrc>, warnings: Vec<String>) -> Orc {
        Orc { format, vmlinux, text, modules, warnings, lookup_warnings: Mutex::new(Vec::new()), cache: Mutex::new(HashMap::new()) }
    }

    /// An Orc over a decoded vmlinux table (tests, synthetic guests).
    pub fn from_tables(format: OrcFormat, vmlinux: OrcTable, text: Vec<(u64, u64)>) -> Orc {
        Orc::new(format, Table::Loaded(vmlinux), text, Vec::new(), Vec::new())
    }

    /// An Orc over a table left in guest memory (tests of the lookup path).
    pub fn from_guest(format: OrcFormat, vmlinux: GuestTable, text: Vec<(u64, u64)>) -> Orc {
        Orc::new(format, Table::Guest(vmlinux), text, Vec::new(), Vec::new())
    }
}

/// Read `len` bytes at `addr`, refusing absurd lengths.
fn read_bytes(k: &Kernel, addr: u64, len: u64, what: &str) -> Result<Vec<u8>> {
    if len > MAX_ORC_ENTRIES * ORC_ENTRY_SIZE {
        return Err(Error::bad(format!("{what}: {len} bytes is not an ORC table")));
    }
    let mut buf = vec![0u8; len as usize];
    k.read(addr, &mut buf).map_err(|e| e.context(what))?;
    Ok(buf)
}

fn symbol_range(k: &Kernel, start: &str, stop: &str) -> Result<(u64, u64)> {
    let (a, b) = (k.symbol(start)?, k.symbol(stop)?);
    if b < a {
        return Err(Error::bad(format!("{stop} ({b:#x}) lies before {start} ({a:#x})")));
    }
    Ok((a, b - a))
}

/// Entries spread over the table, to recognise its layout without reading it all.
fn sample_entries(k: &Kernel, orc_at: u64, n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for c in 0..SAMPLE_CHUNKS {
        let first = n / SAMPLE_CHUNKS * c;
        let count = SAMPLE_ENTRIES.min(n - first);
        let mut b = vec![0u8; (count * ORC_ENTRY_SIZE) as usize];
        if k.read(orc_at + first * ORC_ENTRY_SIZE, &mut b).is_ok() {
            out.extend_from_slice(&b);
        }
    }
    out
}

fn load(k: &Kernel) -> Result<Orc> {
    let mut warnings = Vec::new();
    let (ip_at, ip_len) = symbol_range(k, "__start_orc_unwind_ip", "__stop_orc_unwind_ip")
        .map_err(|e| e.context("no vmlinux ORC table (CONFIG_UNWINDER_ORC)"))?;
    let (orc_at, orc_len) = symbol_range(k, "__start_orc_unwind", "__stop_orc_unwind")?;
    let header = match symbol_range(k, "__start_orc_header", "__stop_orc_header") {
        Ok((at, len)) if len > 0 && len <= 64 => Some(read_bytes(k, at, len, ".orc_header")?),
        _ => None,
    };
    let (n_ip, n_orc) = (ip_len / 4, orc_len / ORC_ENTRY_SIZE);
    if ip_len % 4 != 0 || orc_len % ORC_ENTRY_SIZE != 0 || n_ip != n_orc {
        warnings.push(format!("vmlinux: {n_ip} ORC IPs but {n_orc} entries; using the first {}", n_ip.min(n_orc)));
    }
    let n = n_ip.min(n_orc);
    if n == 0 || n > MAX_ORC_ENTRIES {
        return Err(Error::bad(format!("vmlinux ORC table of {n} entries is not plausible")));
    }
    let format = detect_format(k.facts.release.as_deref(), header.as_deref(), &sample_entries(k, orc_at, n), &mut warnings)?;
    let (stext, etext) = (k.symbol("_stext")?, k.symbol("_etext")?);
    // orc_lookup covers [_stext, _etext) in LOOKUP_BLOCK_SIZE blocks, plus one end slot
    let lookup = match symbol_range(k, "orc_lookup", "orc_lookup_end") {
        Ok((base, len)) if len >= 8 && len / 4 <= MAX_ORC_ENTRIES => Some(LookupIndex { base, blocks: len / 4, start_ip: stext, stop_ip: etext }),
        _ => {
            warnings.push("ORC: no orc_lookup index; every lookup searches the whole table".into());
            None
        }
    };
    let vmlinux = Table::Guest(GuestTable { ip_base: ip_at, orc_base: orc_at, n, lookup });
    let mut text = vec![(stext, etext)];
    if let (Ok(a), Ok(b)) = (k.symbol("_sinittext"), k.symbol("_einittext")) {
        text.push((a, b));
    }
    let modules = module_orcs(k, &mut warnings);
    Ok(Orc::new(format, vmlinux, text, modules, warnings))
}

/// Each module's mod->arch.{orc_unwind_ip, orc_unwind, num_orcs} (unwind_module_init sorted them).
fn module_orcs(k: &Kernel, warnings: &mut Vec<String>) -> Vec<ModuleOrc> {
    let table = module_table(k);
    let (Ok(ip_m), Ok(orc_m), Ok(num_m)) = (k.member("module", "arch.orc_unwind_ip"), k.member("module", "arch.orc_unwind"), k.member("module", "arch.num_orcs")) else {
        if !table.modules.is_empty() {
            warnings.push("ORC: struct module has no arch.orc_unwind: module frames are found by scanning".into());
        }
        return Vec::new();
    };
    let mut out = Vec::new();
    for (m, _) in &table.modules {
        let text: Vec<(u64, u64)> = m.text().filter(|t| t.size > 0).map(|t| (t.base, t.base.saturating_add(t.size))).collect();
        let one = || -> Result<GuestTable> {
            let (ips, orcs, num) = (k.read_member(m.address, ip_m)?, k.read_member(m.address, orc_m)?, k.read_member(m.address, num_m)?);
            if num > MAX_MODULE_ORCS {
                return Err(Error::bad(format!("num_orcs {num} is not plausible")));
            }
            let n = if ips == 0 || orcs == 0 { 0 } else { num };
            Ok(GuestTable { ip_base: ips, orc_base: orcs, n, lookup: None })
        };
        match one() {
            Ok(t) => out.push((text, m.name.clone(), Table::Guest(t))),
            Err(e) => {
                warnings.push(format!("module {}: ORC table unusable: {e}", m.name));
                out.push((text, m.name.clone(), Table::Guest(GuestTable { ip_base: 0, orc_base: 0, n: 0, lookup: None })));
            }
        }
    }
    out
}

/// The kernel's ORC data, found once per opened kernel; Err when there is none or it is unusable.
pub fn orc(k: &Kernel) -> Arc<std::result::Result<Orc, Error>> {
    k.memo(|| load(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn entry(layout: OrcLayout, sp_off: i16, sp_reg: u8, bp_reg: u8, kind: u8, flag: bool) -> [u8; 6] {
        let mut b = [0u8; 6];
        b[0..2].copy_from_slice(&sp_off.to_le_bytes());
        b[4] = sp_reg | (bp_reg << 4);
        b[5] = kind | if flag { if layout == OrcLayout::EndBit { 4 } else { 8 } } else { 0 };
        b
    }

    #[test]
    fn both_layouts_decode_to_the_same_meaning() {
        let old = format_of(OrcLayout::EndBit, Some((6, 1)), None, String::new());
        let new = format_of(OrcLayout::Signal, Some((6, 12)), Some("ab".into()), String::new());
        let call_old = old.decode(&entry(OrcLayout::EndBit, 8, reg::SP, reg::UNDEFINED, 0, false)).unwrap();
        let call_new = new.decode(&entry(OrcLayout::Signal, 8, reg::SP, reg::UNDEFINED, 2, false)).unwrap();
        assert_eq!(call_old, call_new);
        assert_eq!(call_old.kind, OrcType::Call);
        assert_eq!(old.decode(&entry(OrcLayout::EndBit, 0, reg::UNDEFINED, 0, 0, true)).unwrap().kind, OrcType::EndOfStack);
        assert_eq!(old.decode(&entry(OrcLayout::EndBit, 0, reg::UNDEFINED, 0, 0, false)).unwrap().kind, OrcType::Undefined);
        assert_eq!(new.decode(&entry(OrcLayout::Signal, 0, reg::UNDEFINED, 0, 1, false)).unwrap().kind, OrcType::EndOfStack);
        let regs_old = old.decode(&entry(OrcLayout::EndBit, 0, reg::SP, 0, 1, false)).unwrap();
        assert!(regs_old.signal && regs_old.kind == OrcType::Regs);
        let regs_new = new.decode(&entry(OrcLayout::Signal, 0, reg::SP, 0, 3, true)).unwrap();
        assert!(regs_new.signal && regs_new.kind == OrcType::Regs);
        assert!(!old.sp_indirect_adds_after && new.sp_indirect_adds_after);
        assert_eq!(new.decode(&entry(OrcLayout::Signal, 0, reg::SP, 0, 7, false)).unwrap().kind, OrcType::Unknown(7));
    }

    #[test]
    fn the_format_is_detected_and_disagreement_is_said() {
        let mut calls_old = Vec::new();
        let mut calls_new = Vec::new();
        for _ in 0..100 {
            calls_old.extend(entry(OrcLayout::EndBit, 8, reg::SP, 0, 0, false));
            calls_new.extend(entry(OrcLayout::Signal, 8, reg::SP, 0, 2, false));
        }
        let mut w = Vec::new();
        assert_eq!(detect_format(Some("6.1.0-26-amd64"), None, &calls_old, &mut w).unwrap().layout, OrcLayout::EndBit);
        assert_eq!(detect_format(Some("6.12.48+deb12-amd64"), Some(&[1u8; 20]), &calls_new, &mut w).unwrap().layout, OrcLayout::Signal);
        assert_eq!(detect_format(Some("6.3.1"), None, &calls_new, &mut w).unwrap().layout, OrcLayout::Signal);
        assert_eq!(detect_format(None, None, &calls_new, &mut w).unwrap().evidence, "entry statistics (release unknown)");
        assert!(w.is_empty(), "{w:?}");
        // a 6.1 release whose entries are in the new layout: the entries win, loudly
        let f = detect_format(Some("6.1.0"), None, &calls_new, &mut w).unwrap();
        assert_eq!(f.layout, OrcLayout::Signal);
        assert_eq!(w.len(), 1);
        assert!(detect_format(None, None, &[0u8; 12], &mut w).is_err());
        assert_eq!(release_version("6.12.48+deb12-amd64"), Some((6, 12)));
    }

    #[test]
    fn tables_are_searched_like_orc_find_and_unsorted_ones_are_sorted_with_a_warning() {
        let f = format_of(OrcLayout::Signal, Some((6, 12)), None, String::new());
        let base = 0xffff_ffff_8100_0000u64;
        // slot i at base+4i holds target - (base+4i)
        let targets = [0x1000u64, 0x1010, 0x1010, 0x1040];
        let mut ip_raw = Vec::new();
        let mut orc_raw = Vec::new();
        for (i, t) in targets.iter().enumerate() {
            ip_raw.extend(((base + t) as i64 - (base + 4 * i as u64) as i64).to_le_bytes()[..4].iter());
            // the first of the two at 0x1010 is a terminator; the real entry after it must win
            let kind = if i == 1 { 0 } else { 2 };
            orc_raw.extend(entry(OrcLayout::Signal, 8 * (i as i16 + 1), reg::SP, 0, kind, false));
        }
        let mut w = Vec::new();
        let t = OrcTable::decode(&f, base, &ip_raw, &orc_raw, "test", &mut w);
        assert!(w.is_empty());
        assert_eq!(t.find(base + 0xfff), None);
        assert_eq!(t.find(base + 0x1000).unwrap().sp_offset, 8);
        assert_eq!(t.find(base + 0x1020).unwrap().sp_offset, 24, "the rightmost duplicate");
        assert_eq!(t.find(base + 0x9999).unwrap().sp_offset, 32);
        // swap the last two IPs: out of order
        let mut bad = ip_raw.clone();
        let (a, b) = (((base + 0x1040) as i64 - (base + 8) as i64) as i32, ((base + 0x1010) as i64 - (base + 12) as i64) as i32);
        bad[8..12].copy_from_slice(&a.to_le_bytes());
        bad[12..16].copy_from_slice(&b.to_le_bytes());
        let t = OrcTable::decode(&f, base, &bad, &orc_raw, "test", &mut w);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(t.ips.windows(2).all(|p| p[0] <= p[1]));
        // a short entry table: the shorter count is used, with a warning
        let mut w = Vec::new();
        let t = OrcTable::decode(&f, base, &ip_raw, &orc_raw[..12], "test", &mut w);
        assert_eq!((t.len(), w.len()), (2, 1));
    }

    /// A table of `ips` (CALL entries whose sp_offset is their index) in a synthetic guest, with an
    /// orc_lookup index of `blocks` slots over text from `ips[0]`; `damage` may change the guest first.
    fn guest_table(ips: &[u64], blocks: u64, damage: impl FnOnce(&mut crate::walkers::testkit::Fake, u64, u64)) -> (crate::kernel::Kernel, GuestTable, OrcFormat) {
        use crate::walkers::testkit::Fake;
        let mut f = Fake::new(1 << 16);
        let ip_base = f.alloc(4 * ips.len() as u64);
        let orc_base = f.alloc(6 * ips.len() as u64);
        let lookup = f.alloc(4 * blocks);
        for (i, &ip) in ips.iter().enumerate() {
            let slot = ip_base + 4 * i as u64;
            f.put_u32(slot, (ip as i64 - slot as i64) as i32 as u32);
            f.put(orc_base + 6 * i as u64, &entry(OrcLayout::Signal, i as i16, reg::SP, 0, 2, false));
        }
        let text = ips[0];
        for b in 0..blocks {
            let at = text + b * LOOKUP_BLOCK_SIZE;
            let first = ips.iter().rposition(|&ip| ip <= at).unwrap_or(0);
            f.put_u32(lookup + 4 * b, first as u32);
        }
        damage(&mut f, ip_base, lookup);
        let fmt = format_of(OrcLayout::Signal, Some((6, 12)), None, String::new());
        let t = GuestTable { ip_base, orc_base, n: ips.len() as u64, lookup: Some(LookupIndex { base: lookup, blocks, start_ip: text, stop_ip: text + LOOKUP_BLOCK_SIZE * (blocks - 1) }) };
        (f.kernel(), t, fmt)
    }

    /// Text just past the synthetic tables (IPs are stored as 32-bit offsets from their slots).
    const TEXT: u64 = crate::walkers::testkit::KBASE + 0x8000;

    #[test]
    fn guest_tables_are_searched_through_orc_lookup_and_checked() {
        let ips: Vec<u64> = (0..40).map(|i| TEXT + i * 40).collect();
        let (k, t, fmt) = guest_table(&ips, 8, |_, _, _| {});
        let mut warnings = Vec::new();
        let mut warn = |w: String| warnings.push(w);
        for probe in [TEXT, TEXT + 39, TEXT + 40, TEXT + 300, TEXT + 1000, TEXT + 1559, TEXT + 1800] {
            let want = ips.iter().rposition(|&ip| ip <= probe).unwrap() as i16;
            assert_eq!(t.find(k.vm(), &fmt, probe, &mut warn).unwrap().sp_offset, want, "{probe:#x}");
        }
        assert_eq!(t.find(k.vm(), &fmt, TEXT - 1, &mut warn), None);
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn a_lying_orc_lookup_or_an_unsorted_table_is_caught() {
        let ips: Vec<u64> = (0..40).map(|i| TEXT + i * 40).collect();
        // orc_lookup[1] points past the block's entries; entries 10 and 11 swap their IPs
        let (k, t, fmt) = guest_table(&ips, 8, |f, ip_base, lookup| {
            f.put_u32(lookup + 4, 30);
            let (s10, s11) = (ip_base + 40, ip_base + 44);
            f.put_u32(s10, ((TEXT + 11 * 40) as i64 - s10 as i64) as i32 as u32);
            f.put_u32(s11, ((TEXT + 10 * 40) as i64 - s11 as i64) as i32 as u32);
        });
        let mut warnings = Vec::new();
        let mut warn = |w: String| warnings.push(w);
        // block 1 (TEXT+256…): the index's answer is checked against the table, the whole table searched
        assert_eq!(t.find(k.vm(), &fmt, TEXT + 300, &mut warn).unwrap().sp_offset, 7);
        assert!(warnings.iter().any(|w| w.contains("orc_lookup[1]")), "{warnings:?}");
        // out of order: every answer still lies at or below the probe (as the kernel's own search would
        // give), or there is none; nothing runs away
        for probe in (0..2000).step_by(7).map(|d| TEXT + d) {
            let got = t.find(k.vm(), &fmt, probe, &mut |_| {});
            if let Some(e) = got {
                assert!(t.ip_at(k.vm(), e.sp_offset as u64).unwrap() <= probe, "{probe:#x}: {e:?}");
            }
        }
    }
}
