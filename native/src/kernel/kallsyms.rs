//! kallsyms tables decoded from guest RAM, as kernel/kallsyms.c (5.x–6.x) reads what scripts/kallsyms.c wrote.
//!
//! Layout (all in kernel .rodata, addresses from VMCOREINFO since 6.0):
//! - `kallsyms_num_syms`: u32 (unsigned int).
//! - `kallsyms_names`: per symbol a length then that many token indices. The length is one byte, or,
//!   when its top bit is set (big symbols, ≥ 6.1), two bytes: `(b0 & 0x7f) | b1 << 7`.
//! - `kallsyms_token_table`: NUL-terminated token strings; `kallsyms_token_index`: u16[256] offsets
//!   into it. The first expanded character is the symbol's type (T, t, D, …), not part of its name.
//! - addresses: `kallsyms_addresses` (unsigned long[]) on old/absolute kernels, or
//!   `kallsyms_offsets` (s32[]) + `kallsyms_relative_base` (KALLSYMS_BASE_RELATIVE). With
//!   KALLSYMS_ABSOLUTE_PERCPU (x86-64 SMP up to 6.14) a non-negative offset is an absolute value (per-cpu
//!   symbols) and a negative one means `relative_base - 1 - offset`; without it every offset is
//!   `relative_base + (u32)offset`.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

use super::{Source, Symbols};
use crate::mem::VirtualMemory;
use crate::{Error, Result};

/// Refuse tables claiming more symbols than any real kernel has (~150k on Debian 6.1).
pub const MAX_SYMS: u64 = 2_000_000;
/// Upper bound on the compressed names region (a real one is ~1.5 MB).
const MAX_NAMES_BYTES: usize = 64 << 20;
/// Upper bound on the token table (256 short tokens; u16 offsets).
const MAX_TOKEN_TABLE: usize = 0x2_0000;
/// KSYM_NAME_LEN is 512 in 6.1; anything longer is corrupt.
const MAX_NAME_LEN: usize = 1024;
/// Names are read in chunks of this size when the region's end is not known.
const NAMES_CHUNK: usize = 1 << 20;

/// Kernel virtual addresses of the kallsyms tables (runtime, i.e. KASLR-shifted).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KallsymsLocation {
    pub names: u64,
    /// Address of the `kallsyms_num_syms` variable (not the count itself).
    pub num_syms: u64,
    pub token_table: u64,
    pub token_index: u64,
    pub offsets: Option<u64>,
    /// Address of the `kallsyms_relative_base` variable.
    pub relative_base: Option<u64>,
    pub addresses: Option<u64>,
    pub markers: Option<u64>,
    /// Symbol addresses vouched for by VMCOREINFO, checked against the decoded table.
    pub known: Vec<(String, u64)>,
}

/// VMCOREINFO SYMBOL() entries whose value is not the symbol's own address.
/// mem_section: VMCOREINFO_SYMBOL_ARRAY gives the pointer's value; swapper_pg_dir: a macro alias of
/// init_top_pgt on x86-64, absent from kallsyms under that name (kept out to avoid surprises elsewhere).
const NOT_ADDRESSES: &[&str] = &["mem_section", "swapper_pg_dir"];

fn parse_hex(s: &str) -> Option<u64> {
    let s = s.trim();
    let s = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).unwrap_or(s);
    u64::from_str_radix(s, 16).ok()
}

impl KallsymsLocation {
    /// The table addresses from VMCOREINFO (`SYMBOL(kallsyms_names)=ffffffff…`, 6.0+).
    pub fn from_vmcoreinfo(vmcoreinfo: &BTreeMap<String, String>) -> Result<Self> {
        let sym = |name: &str| -> Result<Option<u64>> {
            match vmcoreinfo.get(&format!("SYMBOL({name})")) {
                None => Ok(None),
                Some(v) => parse_hex(v)
                    .map(Some)
                    .ok_or_else(|| Error::bad(format!("VMCOREINFO SYMBOL({name})={v:?} is not a hex address"))),
            }
        };
        let need = |name: &str| -> Result<u64> {
            sym(name)?.ok_or_else(|| {
                Error::NotFound(format!(
                    "VMCOREINFO has no SYMBOL({name}) (kernels before 6.0 do not export kallsyms there)"
                ))
            })
        };
        let mut loc = KallsymsLocation {
            names: need("kallsyms_names")?,
            num_syms: need("kallsyms_num_syms")?,
            token_table: need("kallsyms_token_table")?,
            token_index: need("kallsyms_token_index")?,
            offsets: sym("kallsyms_offsets")?,
            relative_base: sym("kallsyms_relative_base")?,
            addresses: sym("kallsyms_addresses")?,
            markers: sym("kallsyms_markers")?,
            known: Vec::new(),
        };
        if loc.addresses.is_none() && (loc.offsets.is_none() || loc.relative_base.is_none()) {
            return Err(Error::NotFound(
                "VMCOREINFO has neither SYMBOL(kallsyms_offsets)+SYMBOL(kallsyms_relative_base) nor SYMBOL(kallsyms_addresses)"
                    .into(),
            ));
        }
        for (k, v) in vmcoreinfo {
            let Some(name) = k.strip_prefix("SYMBOL(").and_then(|r| r.strip_suffix(')')) else { continue };
            if NOT_ADDRESSES.contains(&name) {
                continue;
            }
            if let Some(addr) = parse_hex(v) {
                loc.known.push((name.to_string(), addr));
            }
        }
        Ok(loc)
    }
}

/// One decoded symbol.
#[derive(Debug, Clone, Copy)]
struct Entry {
    name_start: u32,
    name_len: u16,
    /// The nm-style type letter (T, t, D, d, B, R, A, V, W, …).
    kind: u8,
    address: u64,
}

/// The symbols name hashes are already good hashes; don't hash them again.
#[derive(Default)]
struct PrehashedHasher(u64);
impl Hasher for PrehashedHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | b as u64;
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

fn name_hash(name: &[u8]) -> u64 {
    // FNV-1a 64
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in name {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

const NO_NEXT: u32 = u32::MAX;

/// A symbol as returned by `nearest` / `get`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SymbolRef<'a> {
    pub name: &'a str,
    pub kind: char,
    pub address: u64,
}

/// Every kallsyms symbol of the running kernel, with runtime addresses.
pub struct KallsymsTable {
    names: String,
    entries: Vec<Entry>,
    /// name hash → first entry index with that hash; `next` chains the others.
    by_hash: HashMap<u64, u32, BuildHasherDefault<PrehashedHasher>>,
    next: Vec<u32>,
    by_address: OnceLock<Vec<u32>>,
    /// Which address encoding the table turned out to use (for `nearfield kernel`).
    pub encoding: AddressEncoding,
}

/// How kallsyms stored the addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressEncoding {
    /// `kallsyms_addresses[]`, full unsigned longs.
    Absolute,
    /// `relative_base + (u32)offset`.
    BaseRelative,
    /// Base-relative with absolute per-cpu symbols (non-negative offsets are absolute values).
    BaseRelativeAbsolutePercpu,
}

impl KallsymsTable {
    fn name_of(&self, e: &Entry) -> &str {
        let start = e.name_start as usize;
        self.names.get(start..start + e.name_len as usize).unwrap_or("")
    }

    fn find(&self, name: &str) -> Option<&Entry> {
        let mut i = *self.by_hash.get(&name_hash(name.as_bytes()))?;
        // Chains run from the last entry to the first; prefer a global symbol (upper-case type) over
        // a local one, then the one earliest in the table.
        let mut best: Option<&Entry> = None;
        let mut guard = 0usize;
        while i != NO_NEXT && guard <= self.entries.len() {
            let e = self.entries.get(i as usize)?;
            if self.name_of(e) == name {
                let better = match best {
                    None => true,
                    Some(b) => e.kind.is_ascii_uppercase() || !b.kind.is_ascii_uppercase(),
                };
                if better {
                    best = Some(e);
                }
            }
            i = *self.next.get(i as usize)?;
            guard += 1;
        }
        best
    }

    /// The symbol called `name` (global preferred when static symbols share the name).
    pub fn get(&self, name: &str) -> Option<SymbolRef<'_>> {
        self.find(name).map(|e| self.to_ref(e))
    }

    fn to_ref<'a>(&'a self, e: &Entry) -> SymbolRef<'a> {
        SymbolRef { name: self.name_of(e), kind: e.kind as char, address: e.address }
    }

    /// The symbol at or below `addr` (address → symbol, as `%ps` would print it).
    pub fn nearest(&self, addr: u64) -> Option<SymbolRef<'_>> {
        let sorted = self.by_address.get_or_init(|| {
            let mut idx: Vec<u32> = (0..self.entries.len() as u32).collect();
            idx.sort_by_key(|&i| self.entries.get(i as usize).map(|e| e.address).unwrap_or(0));
            idx
        });
        let pos = sorted.partition_point(|&i| self.entries.get(i as usize).map(|e| e.address <= addr).unwrap_or(false));
        let i = *sorted.get(pos.checked_sub(1)?)?;
        self.entries.get(i as usize).map(|e| self.to_ref(e))
    }

    /// Every symbol in table order.
    pub fn iter(&self) -> impl Iterator<Item = SymbolRef<'_>> {
        self.entries.iter().map(|e| self.to_ref(e))
    }
}

impl Symbols for KallsymsTable {
    fn address_of(&self, name: &str) -> Option<u64> {
        self.find(name).map(|e| e.address)
    }
    fn len(&self) -> usize {
        self.entries.len()
    }
    fn all(&self) -> Vec<(String, u64)> {
        self.entries.iter().map(|e| (self.name_of(e).to_string(), e.address)).collect()
    }
    fn source(&self) -> Source {
        Source::Kallsyms
    }
}

fn read_vec(vm: &dyn VirtualMemory, addr: u64, len: usize, what: &str) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    vm.read_virt(addr, &mut buf).map_err(|e| e.context(format!("reading {what} ({len} bytes at {addr:#x})")))?;
    Ok(buf)
}

/// The compressed names, read in bulk: up to the next table when we know where it starts, else in
/// 1 MiB chunks as the decoder needs them.
struct NamesReader<'a> {
    vm: &'a dyn VirtualMemory,
    base: u64,
    buf: Vec<u8>,
    limit: usize,
}

impl NamesReader<'_> {
    fn ensure(&mut self, end: usize) -> Result<()> {
        if end <= self.buf.len() {
            return Ok(());
        }
        if end > self.limit {
            return Err(Error::bad(format!(
                "kallsyms_names at {:#x}: symbol data runs past {} bytes",
                self.base, self.limit
            )));
        }
        let new_len = (end.max(self.buf.len() + NAMES_CHUNK)).min(self.limit);
        let old = self.buf.len();
        self.buf.resize(new_len, 0);
        let addr = self.base + old as u64;
        self.vm
            .read_virt(addr, &mut self.buf[old..])
            .map_err(|e| e.context(format!("reading kallsyms_names at {addr:#x}")))
    }
}

fn names_span(loc: &KallsymsLocation) -> Option<usize> {
    // The table that scripts/kallsyms.c emits right after the names bounds them.
    let after = [loc.markers, Some(loc.token_table), Some(loc.token_index)];
    after
        .iter()
        .flatten()
        .filter(|&&a| a > loc.names && a - loc.names <= MAX_NAMES_BYTES as u64)
        .map(|&a| (a - loc.names) as usize)
        .min()
}

/// Decode the whole table with bulk reads of each region.
pub fn decode(vm: &dyn VirtualMemory, loc: &KallsymsLocation) -> Result<KallsymsTable> {
    let num = read_vec(vm, loc.num_syms, 4, "kallsyms_num_syms")?;
    let num_syms = u32::from_le_bytes([num[0], num[1], num[2], num[3]]) as u64;
    if num_syms == 0 || num_syms > MAX_SYMS {
        return Err(Error::bad(format!(
            "kallsyms_num_syms at {:#x} is {num_syms} (expected 1..={MAX_SYMS})",
            loc.num_syms
        )));
    }
    let n = num_syms as usize;

    // Tokens.
    let index_raw = read_vec(vm, loc.token_index, 512, "kallsyms_token_index")?;
    let token_index: Vec<usize> =
        index_raw.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]) as usize).collect();
    let max_index = token_index.iter().copied().max().unwrap_or(0);
    let table_len = if loc.token_index > loc.token_table
        && loc.token_index - loc.token_table > max_index as u64
        && loc.token_index - loc.token_table <= MAX_TOKEN_TABLE as u64
    {
        (loc.token_index - loc.token_table) as usize
    } else {
        // The last token is short; 256 bytes more is plenty and stays inside .rodata.
        max_index + 256
    };
    let token_table = read_vec(vm, loc.token_table, table_len, "kallsyms_token_table")?;
    let mut tokens: Vec<&[u8]> = Vec::with_capacity(256);
    for (i, &off) in token_index.iter().enumerate() {
        let rest = token_table.get(off..).ok_or_else(|| {
            Error::bad(format!("kallsyms_token_index[{i}]={off} is past the token table at {:#x}", loc.token_table))
        })?;
        let end = rest.iter().position(|&b| b == 0).ok_or_else(|| {
            Error::bad(format!("kallsyms token {i} at {:#x}+{off} is not NUL-terminated", loc.token_table))
        })?;
        tokens.push(&rest[..end]);
    }

    // Addresses (raw), read in one go.
    enum Raw {
        Offsets(Vec<i32>, u64),
        Absolute(Vec<u64>),
    }
    let raw = match (loc.offsets, loc.relative_base, loc.addresses) {
        (Some(off), Some(base_addr), _) => {
            let bytes = read_vec(vm, off, n * 4, "kallsyms_offsets")?;
            let offs = bytes.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            let b = read_vec(vm, base_addr, 8, "kallsyms_relative_base")?;
            let mut w = [0u8; 8];
            w.copy_from_slice(&b);
            Raw::Offsets(offs, u64::from_le_bytes(w))
        }
        (_, _, Some(addrs)) => {
            let bytes = read_vec(vm, addrs, n * 8, "kallsyms_addresses")?;
            Raw::Absolute(
                bytes
                    .chunks_exact(8)
                    .map(|c| {
                        let mut w = [0u8; 8];
                        w.copy_from_slice(c);
                        u64::from_le_bytes(w)
                    })
                    .collect(),
            )
        }
        _ => return Err(Error::Unsupported("kallsyms without offsets/relative_base or addresses".into())),
    };

    // Names.
    let limit = names_span(loc).unwrap_or(MAX_NAMES_BYTES);
    let mut reader = NamesReader { vm, base: loc.names, buf: Vec::new(), limit };
    reader.ensure(limit.min(if names_span(loc).is_some() { limit } else { NAMES_CHUNK }))?;
    let mut arena: Vec<u8> = Vec::with_capacity(n * 24);
    let mut kinds: Vec<u8> = Vec::with_capacity(n);
    let mut spans: Vec<(u32, u16)> = Vec::with_capacity(n);
    let mut pos = 0usize;
    let mut scratch: Vec<u8> = Vec::with_capacity(MAX_NAME_LEN);
    for i in 0..n {
        reader.ensure(pos + 2)?;
        let b0 = reader.buf[pos];
        let (len, hdr) = if b0 & 0x80 != 0 {
            (((b0 & 0x7f) as usize) | ((reader.buf[pos + 1] as usize) << 7), 2)
        } else {
            (b0 as usize, 1)
        };
        reader.ensure(pos + hdr + len)?;
        scratch.clear();
        for &t in &reader.buf[pos + hdr..pos + hdr + len] {
            scratch.extend_from_slice(tokens[t as usize]);
            if scratch.len() > MAX_NAME_LEN {
                return Err(Error::bad(format!(
                    "kallsyms symbol {i} (names+{pos:#x}) expands past {MAX_NAME_LEN} bytes"
                )));
            }
        }
        pos += hdr + len;
        let (&kind, name) = scratch
            .split_first()
            .ok_or_else(|| Error::bad(format!("kallsyms symbol {i} (names+{:#x}) is empty", pos - hdr - len)))?;
        kinds.push(kind);
        spans.push((arena.len() as u32, name.len() as u16));
        arena.extend_from_slice(name);
        if arena.len() > u32::MAX as usize / 2 {
            return Err(Error::bad("kallsyms names expand to more than 2 GiB"));
        }
    }
    let names = String::from_utf8(arena)
        .map_err(|e| Error::bad(format!("kallsyms names are not text (byte {})", e.utf8_error().valid_up_to())))?;

    // One FNV hash per name serves both the VMCOREINFO check and the lookup index.
    let nb = names.as_bytes();
    let hashes: Vec<u64> =
        spans.iter().map(|&(start, len)| name_hash(&nb[start as usize..start as usize + len as usize])).collect();
    let known_hashes: HashMap<u64, (), BuildHasherDefault<PrehashedHasher>> =
        loc.known.iter().map(|(n, _)| (name_hash(n.as_bytes()), ())).collect();
    let candidates: Vec<usize> = if known_hashes.is_empty() {
        Vec::new()
    } else {
        (0..n).filter(|&i| known_hashes.contains_key(&hashes[i])).collect()
    };

    // Resolve addresses, choosing the encoding that agrees with VMCOREINFO.
    let (addresses, encoding) = match raw {
        Raw::Absolute(a) => {
            if let (_, Some((name, want, got))) = verify(&names, &spans, &candidates, &a, &loc.known) {
                return Err(Error::bad(format!(
                    "kallsyms disagrees with VMCOREINFO: {name} decodes to {got:#x} but VMCOREINFO says {want:#x}"
                )));
            }
            (a, AddressEncoding::Absolute)
        }
        Raw::Offsets(offs, base) => {
            let percpu: Vec<u64> = offs
                .iter()
                .map(|&o| if o >= 0 { o as u64 } else { base.wrapping_sub(1).wrapping_sub(o as i64 as u64) })
                .collect();
            let relative: Vec<u64> = offs.iter().map(|&o| base.wrapping_add(o as u32 as u64)).collect();
            let score = |addrs: &[u64]| verify(&names, &spans, &candidates, addrs, &loc.known);
            let (p_ok, p_bad) = score(&percpu);
            let (r_ok, r_bad) = score(&relative);
            let use_percpu = match (p_bad.is_none(), r_bad.is_none()) {
                (true, false) => true,
                (false, true) => false,
                // Nothing decisive to check against: most offsets negative means the per-cpu encoding.
                (true, true) if p_ok == r_ok => offs.iter().filter(|&&o| o < 0).count() * 2 >= offs.len(),
                (true, true) => p_ok > r_ok,
                (false, false) => {
                    let (name, want, got) = p_bad.or(r_bad).unwrap_or_default();
                    return Err(Error::bad(format!(
                        "kallsyms disagrees with VMCOREINFO: {name} decodes to {got:#x} but VMCOREINFO says {want:#x} \
                         (relative_base {base:#x})"
                    )));
                }
            };
            if use_percpu {
                (percpu, AddressEncoding::BaseRelativeAbsolutePercpu)
            } else {
                (relative, AddressEncoding::BaseRelative)
            }
        }
    };

    let mut entries = Vec::with_capacity(n);
    let mut by_hash: HashMap<u64, u32, BuildHasherDefault<PrehashedHasher>> =
        HashMap::with_capacity_and_hasher(n, Default::default());
    let mut next = vec![NO_NEXT; n];
    for i in 0..n {
        let (start, len) = spans[i];
        entries.push(Entry { name_start: start, name_len: len, kind: kinds[i], address: addresses[i] });
        let h = hashes[i];
        // Prepend to the hash chain; `find` walks the whole chain and prefers the lowest index.
        if let Some(head) = by_hash.insert(h, i as u32) {
            next[i] = head;
        }
    }
    Ok(KallsymsTable { names, entries, by_hash, next, by_address: OnceLock::new(), encoding })
}

/// Count VMCOREINFO symbols that match; report the first that does not (name, vmcoreinfo, decoded).
/// A name may occur several times (static symbols); any occurrence matching counts.
/// `candidates`: indices of the symbols whose name hash matches a VMCOREINFO name.
fn verify(
    names: &str,
    spans: &[(u32, u16)],
    candidates: &[usize],
    addrs: &[u64],
    known: &[(String, u64)],
) -> (usize, Option<(String, u64, u64)>) {
    if known.is_empty() {
        return (0, None);
    }
    let want: HashMap<&str, u64> = known.iter().map(|(n, a)| (n.as_str(), *a)).collect();
    let mut seen: HashMap<&str, (bool, u64)> = HashMap::new();
    for &i in candidates {
        let Some(&(start, len)) = spans.get(i) else { continue };
        let Some(name) = names.get(start as usize..start as usize + len as usize) else { continue };
        if let Some(&w) = want.get(name) {
            let a = addrs.get(i).copied().unwrap_or(0);
            let slot = seen.entry(name).or_insert((false, a));
            if a == w {
                slot.0 = true;
            }
        }
    }
    let mut ok = 0;
    let mut bad = None;
    for (name, (matched, got)) in seen {
        if matched {
            ok += 1;
        } else if bad.is_none() {
            bad = Some((name.to_string(), want[name], got));
        }
    }
    (ok, bad)
}

/// kallsyms tables laid out as scripts/kallsyms.c writes them, in flat memory (tests and fuzz seeds).
#[cfg(any(test, feature = "fuzzing"))]
pub mod builder {
    use super::*;

    /// Guest memory as one flat buffer at a base virtual address.
    pub struct FlatVm {
        pub base: u64,
        pub bytes: Vec<u8>,
    }
    impl VirtualMemory for FlatVm {
        fn read_virt(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
            let off = addr.checked_sub(self.base).ok_or_else(|| Error::fault(addr, "below test memory"))? as usize;
            let src = self
                .bytes
                .get(off..off + buf.len())
                .ok_or_else(|| Error::fault(addr, "past test memory"))?;
            buf.copy_from_slice(src);
            Ok(())
        }
    }

    /// Build kallsyms tables the way scripts/kallsyms.c lays them out (6.1 order), with a deliberately
    /// simple token set: token i is the single byte i for printable bytes, plus a few multi-char tokens.
    pub struct Built {
        pub vm: FlatVm,
        pub loc: KallsymsLocation,
    }

    pub const BASE: u64 = 0xffff_ffff_8100_0000;

    /// `percpu`: encode with KALLSYMS_ABSOLUTE_PERCPU; symbols with address < 2^31 are absolute.
    pub fn build(symbols: &[(char, &str, u64)], percpu: bool, relative_base: u64) -> Built {
        // Tokens: index 0..=0x7f are single chars, 0x80 = "kallsyms_", 0x81 = "init_", others "?".
        let mut token_strings: Vec<Vec<u8>> = (0u8..=255)
            .map(|b| if (0x20..0x7f).contains(&b) { vec![b] } else { b"?".to_vec() })
            .collect();
        token_strings[0x80] = b"kallsyms_".to_vec();
        token_strings[0x81] = b"init_".to_vec();
        let mut token_table = Vec::new();
        let mut token_index = Vec::new();
        for t in &token_strings {
            token_index.extend_from_slice(&(token_table.len() as u16).to_le_bytes());
            token_table.extend_from_slice(t);
            token_table.push(0);
        }
        let mut names = Vec::new();
        let mut offsets = Vec::new();
        for (kind, name, addr) in symbols {
            let mut enc = vec![*kind as u8];
            let mut rest = name.as_bytes();
            while !rest.is_empty() {
                if rest.starts_with(b"kallsyms_") {
                    enc.push(0x80);
                    rest = &rest[9..];
                } else if rest.starts_with(b"init_") {
                    enc.push(0x81);
                    rest = &rest[5..];
                } else {
                    enc.push(rest[0]);
                    rest = &rest[1..];
                }
            }
            if enc.len() < 0x80 {
                names.push(enc.len() as u8);
            } else {
                names.push(((enc.len() & 0x7f) | 0x80) as u8);
                names.push((enc.len() >> 7) as u8);
            }
            names.extend_from_slice(&enc);
            let off: i32 = if percpu {
                if *addr < 0x8000_0000 {
                    *addr as i32
                } else {
                    (relative_base as i64 - 1 - *addr as i64) as i32
                }
            } else {
                (*addr - relative_base) as u32 as i32
            };
            offsets.extend_from_slice(&off.to_le_bytes());
        }
        // Layout: offsets, relative_base, num_syms, names, markers(none), token_table, token_index.
        let mut mem = Vec::new();
        let align = |m: &mut Vec<u8>| {
            while !m.len().is_multiple_of(8) {
                m.push(0)
            }
        };
        let o_offsets = mem.len();
        mem.extend_from_slice(&offsets);
        align(&mut mem);
        let o_base = mem.len();
        mem.extend_from_slice(&relative_base.to_le_bytes());
        let o_num = mem.len();
        mem.extend_from_slice(&(symbols.len() as u32).to_le_bytes());
        align(&mut mem);
        let o_names = mem.len();
        mem.extend_from_slice(&names);
        align(&mut mem);
        let o_tt = mem.len();
        mem.extend_from_slice(&token_table);
        align(&mut mem);
        let o_ti = mem.len();
        mem.extend_from_slice(&token_index);
        let vbase = 0xffff_ffff_8200_0000u64;
        let a = |o: usize| vbase + o as u64;
        Built {
            vm: FlatVm { base: vbase, bytes: mem },
            loc: KallsymsLocation {
                names: a(o_names),
                num_syms: a(o_num),
                token_table: a(o_tt),
                token_index: a(o_ti),
                offsets: Some(a(o_offsets)),
                relative_base: Some(a(o_base)),
                addresses: None,
                markers: None,
                known: Vec::new(),
            },
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::builder::*;
    use super::*;
    use std::time::Instant;

    fn sample_syms() -> Vec<(char, String, u64)> {
        let long = "x".repeat(200); // needs the 2-byte length (≥ 0x80 tokens)
        vec![
            ('A', "fixed_percpu_data".to_string(), 0x0),
            ('A', "cpu_number".to_string(), 0x1_f000),
            ('T', "_stext".to_string(), BASE),
            ('T', "startup_64".to_string(), BASE),
            ('D', "init_task".to_string(), BASE + 0x1a0_0000),
            ('D', "init_uts_ns".to_string(), BASE + 0x1a1_0000),
            ('t', "helper".to_string(), BASE + 0x100),
            ('t', "helper".to_string(), BASE + 0x200),
            ('T', "helper".to_string(), BASE + 0x300),
            ('R', "kallsyms_names".to_string(), BASE + 0x90_0000),
            ('t', long, BASE + 0x400),
        ]
    }

    fn as_refs(v: &[(char, String, u64)]) -> Vec<(char, &str, u64)> {
        v.iter().map(|(k, n, a)| (*k, n.as_str(), *a)).collect()
    }

    #[test]
    fn decodes_percpu_encoding_with_big_symbols() {
        let syms = sample_syms();
        let b = build(&as_refs(&syms), true, BASE);
        let mut loc = b.loc.clone();
        loc.known = vec![("init_uts_ns".into(), BASE + 0x1a1_0000), ("_stext".into(), BASE)];
        let t = decode(&b.vm, &loc).unwrap();
        assert_eq!(t.len(), syms.len());
        assert_eq!(t.encoding, AddressEncoding::BaseRelativeAbsolutePercpu);
        assert_eq!(t.address_of("init_task"), Some(BASE + 0x1a0_0000));
        assert_eq!(t.address_of("cpu_number"), Some(0x1_f000));
        assert_eq!(t.address_of("kallsyms_names"), Some(BASE + 0x90_0000));
        assert_eq!(t.address_of(&"x".repeat(200)), Some(BASE + 0x400));
        // Global wins over locals of the same name.
        assert_eq!(t.address_of("helper"), Some(BASE + 0x300));
        assert_eq!(t.get("init_task").unwrap().kind, 'D');
        assert_eq!(t.address_of("nope"), None);
        let near = t.nearest(BASE + 0x250).unwrap();
        assert_eq!((near.name, near.address), ("helper", BASE + 0x200));
        assert!(t.nearest(0).is_some());
        assert_eq!(t.all().len(), syms.len());
    }

    #[test]
    fn decodes_plain_relative_encoding() {
        let syms: Vec<_> = sample_syms().into_iter().filter(|s| s.2 >= BASE).collect();
        let b = build(&as_refs(&syms), false, BASE);
        let mut loc = b.loc.clone();
        loc.known = vec![("init_task".into(), BASE + 0x1a0_0000)];
        let t = decode(&b.vm, &loc).unwrap();
        assert_eq!(t.encoding, AddressEncoding::BaseRelative);
        assert_eq!(t.address_of("init_uts_ns"), Some(BASE + 0x1a1_0000));
    }

    #[test]
    fn disagreement_with_vmcoreinfo_is_bad_data() {
        let syms = sample_syms();
        let b = build(&as_refs(&syms), true, BASE);
        let mut loc = b.loc.clone();
        loc.known = vec![("init_task".into(), BASE + 0x1a0_0008)];
        let e = decode(&b.vm, &loc).err().unwrap();
        assert_eq!(e.code(), "BAD_DATA", "{e}");
        assert!(e.to_string().contains("init_task"), "{e}");
    }

    #[test]
    fn hostile_tables_are_refused() {
        let syms = sample_syms();
        let b = build(&as_refs(&syms), true, BASE);
        // Absurd count.
        let mut vm = FlatVm { base: b.vm.base, bytes: b.vm.bytes.clone() };
        let off = (b.loc.num_syms - vm.base) as usize;
        vm.bytes[off..off + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&vm, &b.loc).err().unwrap().code(), "BAD_DATA");
        // More symbols than names: runs off the names region → BAD_DATA, not a panic.
        let mut vm = FlatVm { base: b.vm.base, bytes: b.vm.bytes.clone() };
        vm.bytes[off..off + 4].copy_from_slice(&5000u32.to_le_bytes());
        let e = decode(&vm, &b.loc).err().unwrap();
        assert!(matches!(e.code(), "BAD_DATA" | "FAULT"), "{e}");
        // Token index pointing past the table.
        let mut vm = FlatVm { base: b.vm.base, bytes: b.vm.bytes.clone() };
        let ti = (b.loc.token_index - vm.base) as usize;
        vm.bytes[ti..ti + 2].copy_from_slice(&0xfff0u16.to_le_bytes());
        assert!(decode(&vm, &b.loc).is_err());
        // Truncated memory.
        let vm = FlatVm { base: b.vm.base, bytes: b.vm.bytes[..b.vm.bytes.len() / 2].to_vec() };
        assert!(decode(&vm, &b.loc).is_err());
    }

    #[test]
    fn location_from_vmcoreinfo() {
        let mut m = BTreeMap::new();
        for (k, v) in [
            ("SYMBOL(kallsyms_names)", "ffffffff82000100"),
            ("SYMBOL(kallsyms_num_syms)", "ffffffff82000000"),
            ("SYMBOL(kallsyms_token_table)", "ffffffff82100000"),
            ("SYMBOL(kallsyms_token_index)", "ffffffff82101000"),
            ("SYMBOL(kallsyms_offsets)", "ffffffff81f00000"),
            ("SYMBOL(kallsyms_relative_base)", "ffffffff81ff0000"),
            ("SYMBOL(mem_section)", "ffff888007fd1000"),
            ("SYMBOL(init_uts_ns)", "ffffffff82a0e2c0"),
            ("OSRELEASE", "6.1.0-50-amd64"),
        ] {
            m.insert(k.to_string(), v.to_string());
        }
        let loc = KallsymsLocation::from_vmcoreinfo(&m).unwrap();
        assert_eq!(loc.names, 0xffffffff82000100);
        assert_eq!(loc.relative_base, Some(0xffffffff81ff0000));
        assert!(loc.known.iter().any(|(n, a)| n == "init_uts_ns" && *a == 0xffffffff82a0e2c0));
        assert!(!loc.known.iter().any(|(n, _)| n == "mem_section"));
        m.remove("SYMBOL(kallsyms_names)");
        assert_eq!(KallsymsLocation::from_vmcoreinfo(&m).err().unwrap().code(), "NOT_FOUND");
        m.insert("SYMBOL(kallsyms_names)".into(), "zz".into());
        assert_eq!(KallsymsLocation::from_vmcoreinfo(&m).err().unwrap().code(), "BAD_DATA");
    }

    #[test]
    fn decode_150k_symbols_timing() {
        let names: Vec<String> = (0..150_000).map(|i| format!("kallsyms_sym_{i}_init_something")).collect();
        let syms: Vec<(char, &str, u64)> =
            names.iter().enumerate().map(|(i, n)| ('T', n.as_str(), BASE + i as u64 * 16)).collect();
        let b = build(&syms, true, BASE);
        let t0 = Instant::now();
        let t = decode(&b.vm, &b.loc).unwrap();
        let dt = t0.elapsed();
        println!("kallsyms decode of {} synthetic symbols: {:?}", t.len(), dt);
        assert_eq!(t.address_of("kallsyms_sym_149999_init_something"), Some(BASE + 149_999 * 16));
    }
}
