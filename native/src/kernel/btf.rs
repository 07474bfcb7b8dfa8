//! BTF, the kernel's compact type format (Documentation/bpf/btf.rst, include/uapi/linux/btf.h), parsed into layouts.
//!
//! Only what walkers need is kept resolved (struct/union sizes, members through anonymous members and
//! typedef chains, enum values); every kind is parsed so records are skipped correctly.

use std::cmp::Ordering;
use std::sync::Arc;

use super::{Member, Source, Types};
use crate::mem::PhysicalMemory;
use crate::{Error, Result};

pub const BTF_MAGIC: u16 = 0xEB9F;
/// vmlinux BTF of a Debian 6.1 kernel has ~130k types; refuse absurd counts.
const MAX_TYPES: usize = 4_000_000;
const MAX_BTF_BYTES: usize = 256 << 20;
/// Longest typedef/const/volatile/pointer/array chain we follow (real ones are < 10).
const MAX_CHAIN: usize = 64;
/// Deepest nesting of anonymous structs/unions and dotted paths we descend.
const MAX_NEST: usize = 32;

// Kinds (BTF_KIND_*).
pub const KIND_INT: u8 = 1;
pub const KIND_PTR: u8 = 2;
pub const KIND_ARRAY: u8 = 3;
pub const KIND_STRUCT: u8 = 4;
pub const KIND_UNION: u8 = 5;
pub const KIND_ENUM: u8 = 6;
pub const KIND_FWD: u8 = 7;
pub const KIND_TYPEDEF: u8 = 8;
pub const KIND_VOLATILE: u8 = 9;
pub const KIND_CONST: u8 = 10;
pub const KIND_RESTRICT: u8 = 11;
pub const KIND_FUNC: u8 = 12;
pub const KIND_FUNC_PROTO: u8 = 13;
pub const KIND_VAR: u8 = 14;
pub const KIND_DATASEC: u8 = 15;
pub const KIND_FLOAT: u8 = 16;
pub const KIND_DECL_TAG: u8 = 17;
pub const KIND_TYPE_TAG: u8 = 18;
pub const KIND_ENUM64: u8 = 19;

/// struct btf_header (24 bytes in version 1).
#[derive(Debug, Clone, Copy)]
pub struct BtfHeader {
    pub magic: u16,
    pub version: u8,
    pub flags: u8,
    pub hdr_len: u32,
    pub type_off: u32,
    pub type_len: u32,
    pub str_off: u32,
    pub str_len: u32,
}

use crate::bytes::le_u32 as u32_at;

impl BtfHeader {
    pub fn read(b: &[u8]) -> Result<BtfHeader> {
        let short = || Error::bad("BTF header truncated");
        let magic = u16::from_le_bytes([*b.first().ok_or_else(short)?, *b.get(1).ok_or_else(short)?]);
        if magic != BTF_MAGIC {
            return Err(Error::bad(format!("BTF magic is {magic:#06x}, expected 0xeb9f")));
        }
        let h = BtfHeader {
            magic,
            version: *b.get(2).ok_or_else(short)?,
            flags: *b.get(3).ok_or_else(short)?,
            hdr_len: u32_at(b, 4).ok_or_else(short)?,
            type_off: u32_at(b, 8).ok_or_else(short)?,
            type_len: u32_at(b, 12).ok_or_else(short)?,
            str_off: u32_at(b, 16).ok_or_else(short)?,
            str_len: u32_at(b, 20).ok_or_else(short)?,
        };
        if h.version != 1 {
            return Err(Error::Unsupported(format!("BTF version {}", h.version)));
        }
        if h.hdr_len < 24 || h.hdr_len > 4096 {
            return Err(Error::bad(format!("BTF hdr_len {} is not plausible", h.hdr_len)));
        }
        Ok(h)
    }

    /// Bytes covered by header + both sections.
    pub fn total_len(&self) -> u64 {
        let t = self.type_off as u64 + self.type_len as u64;
        let s = self.str_off as u64 + self.str_len as u64;
        self.hdr_len as u64 + t.max(s)
    }
}

/// One type record (struct btf_type) with where its trailing data sits.
#[derive(Debug, Clone, Copy, Default)]
pub struct TypeRec {
    pub name_off: u32,
    pub kind: u8,
    pub kflag: bool,
    pub vlen: u16,
    /// `size` for INT/STRUCT/UNION/ENUM/ENUM64/FLOAT/DATASEC, else `type`.
    pub size_or_type: u32,
    /// Offset of the kind-specific data after the 12-byte record, inside the type section.
    pub extra: u32,
}

/// A struct/union member as BTF stores it.
#[derive(Debug, Clone, Copy)]
pub struct RawMember {
    pub name_off: u32,
    pub type_id: u32,
    /// Bit offset from the start of the struct.
    pub bit_offset: u32,
    /// Bitfield width (0: not a bitfield, or an INT-encoded one).
    pub bitfield_size: u32,
}

/// BTF bytes: owned, or a window of a larger shared buffer (the mapped profile cache file), so neither
/// discovery nor a warm open copies the megabytes of BTF.
#[derive(Clone)]
pub struct BtfBytes {
    owner: Arc<dyn AsRef<[u8]> + Send + Sync>,
    start: usize,
    len: usize,
}

impl BtfBytes {
    pub fn within(owner: Arc<dyn AsRef<[u8]> + Send + Sync>, start: usize, len: usize) -> BtfBytes {
        BtfBytes { owner, start, len }
    }
}

impl From<Vec<u8>> for BtfBytes {
    fn from(v: Vec<u8>) -> BtfBytes {
        let len = v.len();
        BtfBytes { owner: Arc::new(v), start: 0, len }
    }
}

impl std::ops::Deref for BtfBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        let all: &[u8] = (*self.owner).as_ref();
        all.get(self.start..self.start.saturating_add(self.len)).unwrap_or(&[])
    }
}

/// Parsed BTF with name indexes. The indexes are sorted arrays of string-section offsets (not maps of owned
/// names), so they can be written to the profile cache as they are and read back without re-parsing.
pub struct Btf {
    data: BtfBytes,
    types_start: usize,
    types_len: usize,
    strs_start: usize,
    strs_len: usize,
    /// Index = type id; [0] is void.
    types: Vec<TypeRec>,
    /// (name offset, id) of named structs/unions, sorted by name then id (a name defined twice has
    /// several; the complete one wins).
    aggregates: Vec<(u32, u32)>,
    /// (name offset, id) of named enums, sorted the same way.
    enums: Vec<(u32, u32)>,
    /// (name offset, value) of every enumerator, sorted by name; the first definition in type order wins.
    enumerators: Vec<(u32, i64)>,
}

/// Index format version, checked when a cached index is read back.
const INDEX_VERSION: u32 = 1;

impl std::fmt::Debug for Btf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Btf({} types, {} bytes)", self.types.len().saturating_sub(1), self.data.len())
    }
}

fn is_modifier(kind: u8) -> bool {
    matches!(kind, KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG)
}

fn refers_to_type(kind: u8) -> bool {
    matches!(
        kind,
        KIND_PTR | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_FUNC | KIND_FUNC_PROTO
            | KIND_VAR | KIND_DECL_TAG | KIND_TYPE_TAG
    )
}

impl Btf {
    /// Parse a standalone (vmlinux) BTF blob.
    pub fn parse(data: impl Into<BtfBytes>) -> Result<Btf> {
        let data: BtfBytes = data.into();
        if data.len() > MAX_BTF_BYTES {
            return Err(Error::bad(format!("BTF blob of {} bytes is too large", data.len())));
        }
        let h = BtfHeader::read(&data)?;
        let hdr = h.hdr_len as usize;
        let span = |off: u32, len: u32, what: &str| -> Result<(usize, usize)> {
            let start = hdr.checked_add(off as usize).ok_or_else(|| Error::bad(format!("BTF {what} offset overflows")))?;
            let end = start.checked_add(len as usize).filter(|&e| e <= data.len()).ok_or_else(|| {
                Error::bad(format!(
                    "BTF {what} section [{start:#x}, +{len:#x}) runs past the blob's {} bytes",
                    data.len()
                ))
            })?;
            Ok((start, end - start))
        };
        let (types_start, types_len) = span(h.type_off, h.type_len, "type")?;
        let (strs_start, strs_len) = span(h.str_off, h.str_len, "string")?;
        if strs_len == 0 || data.get(strs_start) != Some(&0) {
            return Err(Error::bad("BTF string section does not start with an empty string"));
        }
        let mut btf = Btf {
            data,
            types_start,
            types_len,
            strs_start,
            strs_len,
            types: vec![TypeRec::default()],
            aggregates: Vec::new(),
            enums: Vec::new(),
            enumerators: Vec::new(),
        };
        btf.scan_types()?;
        btf.check_references()?;
        btf.index()?;
        Ok(btf)
    }

    /// The parsed type table and name indexes as bytes (little-endian u32s), for the profile cache.
    pub fn index_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.types.len() * 16 + (self.aggregates.len() + self.enums.len()) * 8 + self.enumerators.len() * 12);
        let mut put = |v: u32| out.extend_from_slice(&v.to_le_bytes());
        put(INDEX_VERSION);
        put(self.types.len() as u32 - 1);
        put(self.aggregates.len() as u32);
        put(self.enums.len() as u32);
        put(self.enumerators.len() as u32);
        for r in &self.types[1..] {
            put(r.name_off);
            put((r.kind as u32) << 24 | (r.kflag as u32) << 31 | r.vlen as u32);
            put(r.size_or_type);
            put(r.extra);
        }
        for &(n, id) in self.aggregates.iter().chain(&self.enums) {
            put(n);
            put(id);
        }
        for &(n, v) in &self.enumerators {
            put(n);
            put(v as u64 as u32);
            put((v as u64 >> 32) as u32);
        }
        out
    }

    /// BTF whose tables come from `index_bytes` of an earlier parse of the same blob (the profile cache,
    /// whose checksum vouches for both): no per-type work. A damaged index cannot make a lookup panic (every
    /// access is bounds-checked); it is refused when its counts do not fit.
    pub fn with_index(data: BtfBytes, index: &[u8]) -> Result<Btf> {
        if data.len() > MAX_BTF_BYTES {
            return Err(Error::bad(format!("BTF blob of {} bytes is too large", data.len())));
        }
        let h = BtfHeader::read(&data)?;
        let hdr = h.hdr_len as usize;
        let (types_start, types_len) = (hdr.saturating_add(h.type_off as usize), h.type_len as usize);
        let (strs_start, strs_len) = (hdr.saturating_add(h.str_off as usize), h.str_len as usize);
        if types_start.saturating_add(types_len) > data.len() || strs_start.saturating_add(strs_len) > data.len() {
            return Err(Error::bad("BTF sections run past the blob"));
        }
        let word = |i: usize| u32_at(index, i * 4).ok_or_else(|| Error::bad("BTF index cut short"));
        if word(0)? != INDEX_VERSION {
            return Err(Error::bad("BTF index version differs"));
        }
        let (nt, na, ne, nv) = (word(1)? as usize, word(2)? as usize, word(3)? as usize, word(4)? as usize);
        // 5 header words, 4 per type, 2 per aggregate and enum, 3 per enumerator
        let words = [(nt, 4usize), (na, 2), (ne, 2), (nv, 3)]
            .iter()
            .try_fold(5usize, |acc, &(n, per)| acc.checked_add(n.checked_mul(per)?));
        if nt > MAX_TYPES || words.and_then(|w| w.checked_mul(4)) != Some(index.len()) {
            return Err(Error::bad("BTF index counts do not match its length"));
        }
        let at = |i: usize| u32_at(index, i * 4).unwrap_or(0);
        let mut types = Vec::with_capacity(nt + 1);
        types.push(TypeRec::default());
        for t in 0..nt {
            let w = 5 + t * 4;
            let info = at(w + 1);
            types.push(TypeRec {
                name_off: at(w),
                kind: ((info >> 24) & 0x1f) as u8,
                kflag: info >> 31 != 0,
                vlen: (info & 0xffff) as u16,
                size_or_type: at(w + 2),
                extra: at(w + 3),
            });
        }
        let pairs = |from: usize, n: usize| (0..n).map(|i| (at(from + 2 * i), at(from + 2 * i + 1))).collect::<Vec<_>>();
        let base = 5 + nt * 4;
        let aggregates = pairs(base, na);
        let enums = pairs(base + 2 * na, ne);
        let vbase = base + 2 * (na + ne);
        let enumerators =
            (0..nv).map(|i| (at(vbase + 3 * i), ((at(vbase + 3 * i + 2) as u64) << 32 | at(vbase + 3 * i + 1) as u64) as i64)).collect();
        Ok(Btf { data, types_start, types_len, strs_start, strs_len, types, aggregates, enums, enumerators })
    }

    /// The bytes of the NUL-terminated name at `off` (empty when out of range).
    fn name_bytes(&self, off: u32) -> &[u8] {
        let strs = self.data.get(self.strs_start..self.strs_start + self.strs_len).unwrap_or(&[]);
        let rest = strs.get(off as usize..).unwrap_or(&[]);
        &rest[..memchr::memchr(0, rest).unwrap_or(rest.len())]
    }

    /// The entries of a sorted (name offset, x) index whose name is `name`.
    fn named<'a, T: Copy>(&self, index: &'a [(u32, T)], name: &str) -> &'a [(u32, T)] {
        let key = name.as_bytes();
        let lo = index.partition_point(|e| self.name_bytes(e.0) < key);
        let hi = lo + index[lo..].partition_point(|e| self.name_bytes(e.0) == key);
        &index[lo..hi]
    }

    fn tsec(&self) -> &[u8] {
        self.data.get(self.types_start..self.types_start + self.types_len).unwrap_or(&[])
    }

    /// A NUL-terminated name at `off` in the string section.
    pub fn name(&self, off: u32) -> Result<&str> {
        let strs = self.data.get(self.strs_start..self.strs_start + self.strs_len).unwrap_or(&[]);
        let rest = strs
            .get(off as usize..)
            .ok_or_else(|| Error::bad(format!("BTF string offset {off:#x} is past the string section ({:#x})", strs.len())))?;
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| Error::bad(format!("BTF string at {off:#x} is not NUL-terminated")))?;
        std::str::from_utf8(&rest[..end]).map_err(|_| Error::bad(format!("BTF string at {off:#x} is not UTF-8")))
    }

    fn scan_types(&mut self) -> Result<()> {
        let mut pos = 0usize;
        let len = self.types_len;
        let mut recs = Vec::new();
        {
            let t = self.tsec();
            while pos < len {
                let id = recs.len() + 1;
                if recs.len() >= MAX_TYPES {
                    return Err(Error::bad(format!("BTF has more than {MAX_TYPES} types")));
                }
                let bad = || Error::bad(format!("BTF type {id} at type section +{pos:#x} is truncated"));
                let name_off = u32_at(t, pos).ok_or_else(bad)?;
                let info = u32_at(t, pos + 4).ok_or_else(bad)?;
                let size_or_type = u32_at(t, pos + 8).ok_or_else(bad)?;
                let vlen = (info & 0xffff) as usize;
                let kind = ((info >> 24) & 0x1f) as u8;
                let kflag = info >> 31 != 0;
                let extra = pos + 12;
                let extra_len = match kind {
                    KIND_INT => 4,
                    KIND_PTR | KIND_FWD | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_FUNC
                    | KIND_FLOAT | KIND_TYPE_TAG => 0,
                    KIND_ARRAY => 12,
                    KIND_STRUCT | KIND_UNION => 12 * vlen,
                    KIND_ENUM => 8 * vlen,
                    KIND_FUNC_PROTO => 8 * vlen,
                    KIND_VAR => 4,
                    KIND_DATASEC => 12 * vlen,
                    KIND_DECL_TAG => 4,
                    KIND_ENUM64 => 12 * vlen,
                    other => {
                        return Err(Error::bad(format!("BTF type {id} at +{pos:#x} has unknown kind {other}")))
                    }
                };
                let end = extra + extra_len;
                if end > len {
                    return Err(Error::bad(format!(
                        "BTF type {id} (kind {kind}, vlen {vlen}) at +{pos:#x} runs past the type section ({len:#x})"
                    )));
                }
                recs.push(TypeRec { name_off, kind, kflag, vlen: vlen as u16, size_or_type, extra: extra as u32 });
                pos = end;
            }
        }
        self.types.extend(recs);
        Ok(())
    }

    /// Every name offset in range, every referenced type id in range, and no modifier/pointer/array
    /// chain that loops.
    fn check_references(&self) -> Result<()> {
        let n = self.types.len() as u32;
        let check_id = |from: usize, id: u32| -> Result<()> {
            if id >= n {
                Err(Error::bad(format!("BTF type {from} refers to type {id}, past the last type {}", n - 1)))
            } else {
                Ok(())
            }
        };
        let t = self.tsec();
        for (id, r) in self.types.iter().enumerate().skip(1) {
            if r.name_off as usize >= self.strs_len {
                return Err(Error::bad(format!(
                    "BTF type {id} name offset {:#x} is past the string section ({:#x})",
                    r.name_off, self.strs_len
                )));
            }
            if refers_to_type(r.kind) {
                check_id(id, r.size_or_type)?;
            }
            let e = r.extra as usize;
            match r.kind {
                KIND_ARRAY => {
                    check_id(id, u32_at(t, e).unwrap_or(u32::MAX))?;
                    check_id(id, u32_at(t, e + 4).unwrap_or(u32::MAX))?;
                }
                KIND_STRUCT | KIND_UNION | KIND_FUNC_PROTO | KIND_ENUM | KIND_ENUM64 => {
                    let stride = match r.kind {
                        KIND_STRUCT | KIND_UNION | KIND_ENUM64 => 12,
                        _ => 8,
                    };
                    for i in 0..r.vlen as usize {
                        let m = e + i * stride;
                        let name_off = u32_at(t, m).unwrap_or(u32::MAX);
                        if name_off as usize >= self.strs_len {
                            return Err(Error::bad(format!(
                                "BTF type {id} member {i} name offset {name_off:#x} is past the string section"
                            )));
                        }
                        if matches!(r.kind, KIND_STRUCT | KIND_UNION | KIND_FUNC_PROTO) {
                            check_id(id, u32_at(t, m + 4).unwrap_or(u32::MAX))?;
                        }
                    }
                }
                KIND_DATASEC => {
                    for i in 0..r.vlen as usize {
                        check_id(id, u32_at(t, e + i * 12).unwrap_or(u32::MAX))?;
                    }
                }
                _ => {}
            }
        }
        // Chains: 0 = unknown, 1 = known to end. Each chain is walked at most MAX_CHAIN steps.
        let mut ok = vec![0u8; self.types.len()];
        ok[0] = 1;
        for start in 1..self.types.len() {
            let mut cur = start;
            let mut path = Vec::new();
            loop {
                if ok[cur] == 1 {
                    break;
                }
                if path.len() > MAX_CHAIN {
                    return Err(Error::bad(format!("BTF type {start}: type chain is cyclic or deeper than {MAX_CHAIN}")));
                }
                path.push(cur);
                let r = self.types[cur];
                cur = match r.kind {
                    KIND_PTR | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
                        r.size_or_type as usize
                    }
                    KIND_ARRAY => u32_at(t, r.extra as usize).unwrap_or(0) as usize,
                    _ => 0,
                };
            }
            for p in path {
                ok[p] = 1;
            }
        }
        Ok(())
    }

    fn index(&mut self) -> Result<()> {
        let mut aggregates = Vec::new();
        let mut enums = Vec::new();
        let mut enumerators = Vec::new();
        for id in 1..self.types.len() {
            let r = self.types[id];
            match r.kind {
                KIND_STRUCT | KIND_UNION if r.name_off != 0 => {
                    self.name(r.name_off)?;
                    aggregates.push((r.name_off, id as u32));
                }
                KIND_ENUM | KIND_ENUM64 => {
                    if r.name_off != 0 {
                        self.name(r.name_off)?;
                        enums.push((r.name_off, id as u32));
                    }
                    let t = self.tsec();
                    let stride = if r.kind == KIND_ENUM { 8 } else { 12 };
                    for (i, (_, v)) in self.enum_values(id as u32)?.into_iter().enumerate() {
                        enumerators.push((u32_at(t, r.extra as usize + i * stride).unwrap_or(0), v));
                    }
                }
                _ => {}
            }
        }
        // Stable sorts: among equal names, type order is kept (the first enumerator definition wins).
        let by_name = |a: &(u32, u32), b: &(u32, u32)| self.name_bytes(a.0).cmp(self.name_bytes(b.0)).then(a.1.cmp(&b.1));
        aggregates.sort_by(by_name);
        enums.sort_by(by_name);
        enumerators.sort_by(|a, b| self.name_bytes(a.0).cmp(self.name_bytes(b.0)));
        enumerators.dedup_by(|later, first| self.name_bytes(later.0) == self.name_bytes(first.0));
        self.aggregates = aggregates;
        self.enums = enums;
        self.enumerators = enumerators;
        Ok(())
    }

    pub fn type_rec(&self, id: u32) -> Option<&TypeRec> {
        self.types.get(id as usize)
    }

    /// Number of types, void excluded.
    pub fn len(&self) -> usize {
        self.types.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Members of a struct/union (empty for other kinds).
    pub fn members(&self, id: u32) -> Vec<RawMember> {
        let Some(r) = self.type_rec(id) else { return Vec::new() };
        if !matches!(r.kind, KIND_STRUCT | KIND_UNION) {
            return Vec::new();
        }
        let t = self.tsec();
        (0..r.vlen as usize)
            .filter_map(|i| {
                let m = r.extra as usize + i * 12;
                let name_off = u32_at(t, m)?;
                let type_id = u32_at(t, m + 4)?;
                let off = u32_at(t, m + 8)?;
                let (bit_offset, bitfield_size) = if r.kflag { (off & 0xff_ffff, off >> 24) } else { (off, 0) };
                Some(RawMember { name_off, type_id, bit_offset, bitfield_size })
            })
            .collect()
    }

    /// (name, value) of an ENUM/ENUM64's enumerators; signedness from kflag.
    pub fn enum_values(&self, id: u32) -> Result<Vec<(&str, i64)>> {
        let Some(r) = self.type_rec(id) else { return Ok(Vec::new()) };
        let t = self.tsec();
        let mut out = Vec::with_capacity(r.vlen as usize);
        for i in 0..r.vlen as usize {
            let (m, v) = match r.kind {
                KIND_ENUM => {
                    let m = r.extra as usize + i * 8;
                    let raw = u32_at(t, m + 4).unwrap_or(0);
                    (m, if r.kflag { raw as i32 as i64 } else { raw as i64 })
                }
                KIND_ENUM64 => {
                    let m = r.extra as usize + i * 12;
                    let lo = u32_at(t, m + 4).unwrap_or(0) as u64;
                    let hi = u32_at(t, m + 8).unwrap_or(0) as u64;
                    (m, ((hi << 32) | lo) as i64)
                }
                _ => return Ok(Vec::new()),
            };
            out.push((self.name(u32_at(t, m).unwrap_or(0))?, v));
        }
        Ok(out)
    }

    /// Array (element type, index type, nelems).
    pub fn array_info(&self, id: u32) -> Option<(u32, u32, u32)> {
        let r = self.type_rec(id)?;
        if r.kind != KIND_ARRAY {
            return None;
        }
        let t = self.tsec();
        let e = r.extra as usize;
        Some((u32_at(t, e)?, u32_at(t, e + 4)?, u32_at(t, e + 8)?))
    }

    /// INT encoding: (encoding bits, bit offset, nr_bits).
    pub fn int_info(&self, id: u32) -> Option<(u8, u8, u8)> {
        let r = self.type_rec(id)?;
        if r.kind != KIND_INT {
            return None;
        }
        let v = u32_at(self.tsec(), r.extra as usize)?;
        Some((((v >> 24) & 0x0f) as u8, ((v >> 16) & 0xff) as u8, (v & 0xff) as u8))
    }

    /// Follow typedef/const/volatile/restrict/type_tag to the underlying type.
    pub fn resolve(&self, mut id: u32) -> u32 {
        for _ in 0..MAX_CHAIN {
            match self.type_rec(id) {
                Some(r) if is_modifier(r.kind) => id = r.size_or_type,
                _ => return id,
            }
        }
        id
    }

    /// Size in bytes of a type (pointers are 8 bytes on x86-64).
    pub fn size_of(&self, id: u32) -> Option<u64> {
        let mut id = id;
        let mut mult: u64 = 1;
        for _ in 0..MAX_CHAIN {
            let id2 = self.resolve(id);
            let r = self.type_rec(id2)?;
            match r.kind {
                KIND_INT | KIND_STRUCT | KIND_UNION | KIND_ENUM | KIND_ENUM64 | KIND_FLOAT | KIND_DATASEC => {
                    return mult.checked_mul(r.size_or_type as u64)
                }
                KIND_PTR => return mult.checked_mul(8),
                KIND_ARRAY => {
                    let (elem, _, n) = self.array_info(id2)?;
                    mult = mult.checked_mul(n as u64)?;
                    id = elem;
                }
                _ => return None,
            }
        }
        None
    }

    /// The id of the struct/union called `name` — the complete definition when there are several.
    pub fn aggregate(&self, name: &str) -> Option<u32> {
        self.named(&self.aggregates, name)
            .iter()
            .map(|&(_, id)| id)
            .max_by_key(|&id| self.type_rec(id).map(|r| (r.vlen, r.size_or_type)).unwrap_or((0, 0)))
    }

    /// All named struct/union ids, for export.
    pub fn aggregate_ids(&self) -> impl Iterator<Item = (&str, u32)> {
        self.groups(&self.aggregates).filter_map(|g| {
            let id = g.iter().map(|e| e.1).max_by_key(|&id| self.type_rec(id).map(|r| r.vlen).unwrap_or(0))?;
            Some((self.name(g[0].0).ok()?, id))
        })
    }

    pub fn enum_ids(&self) -> impl Iterator<Item = (&str, u32)> {
        self.groups(&self.enums).filter_map(|g| Some((self.name(g[0].0).ok()?, g[0].1)))
    }

    /// Runs of equal names in a sorted index.
    fn groups<'a>(&'a self, index: &'a [(u32, u32)]) -> impl Iterator<Item = &'a [(u32, u32)]> + 'a {
        index.chunk_by(move |a, b| self.name_bytes(a.0).cmp(self.name_bytes(b.0)) == Ordering::Equal)
    }

    pub fn type_ids(&self) -> std::ops::Range<u32> {
        1..self.types.len() as u32
    }

    /// Find `name` among the members of aggregate `id`, descending into anonymous members.
    /// Returns (bit offset from the aggregate's start, member). `searched` holds the aggregates already
    /// searched for `name` in this lookup: each is searched once, so a struct that contains itself, or one
    /// that holds the same anonymous type many times over, costs one pass over its members, not a blow-up.
    fn find_member(&self, id: u32, name: &str, depth: usize, searched: &mut Vec<u32>) -> Option<(u64, RawMember)> {
        if depth > MAX_NEST || searched.contains(&id) {
            return None;
        }
        searched.push(id);
        let members = self.members(id);
        for m in &members {
            if m.name_off != 0 && self.name(m.name_off).ok()? == name {
                return Some((m.bit_offset as u64, *m));
            }
        }
        for m in &members {
            if m.name_off == 0 {
                let inner = self.resolve(m.type_id);
                if matches!(self.type_rec(inner).map(|r| r.kind), Some(KIND_STRUCT | KIND_UNION)) {
                    if let Some((off, found)) = self.find_member(inner, name, depth + 1, searched) {
                        return Some((m.bit_offset as u64 + off, found));
                    }
                }
            }
        }
        None
    }

    /// Resolve "a.b.c" from aggregate `id`.
    pub fn member_of(&self, id: u32, path: &str) -> Option<Member> {
        let mut cur = id;
        let mut bits: u64 = 0;
        let mut last: Option<RawMember> = None;
        for (i, part) in path.split('.').enumerate() {
            if i > MAX_NEST || part.is_empty() {
                return None;
            }
            if let Some(prev) = last {
                cur = self.resolve(prev.type_id);
            }
            if !matches!(self.type_rec(cur).map(|r| r.kind), Some(KIND_STRUCT | KIND_UNION)) {
                return None;
            }
            let (off, m) = self.find_member(cur, part, 0, &mut Vec::new())?;
            bits = bits.checked_add(off)?;
            last = Some(m);
        }
        let m = last?;
        let size = self.size_of(m.type_id)?;
        let ty = self.resolve(m.type_id);
        let array_len = self.array_info(ty).map(|(_, _, n)| n as u64);
        // Old-style bitfields carry their width in the INT encoding.
        let mut bit_size = m.bitfield_size;
        if bit_size == 0 {
            if let Some((_, int_off, nr_bits)) = self.int_info(ty) {
                if (nr_bits as u64) < size * 8 {
                    bit_size = nr_bits as u32;
                    bits += int_off as u64;
                }
            }
        }
        let (offset, bit_offset) = if bit_size != 0 { (bits / 8, (bits % 8) as u32) } else { (bits / 8, 0) };
        Some(Member { offset, size, bit_offset, bit_size, array_len })
    }
}

impl Types for Btf {
    fn struct_size(&self, name: &str) -> Option<u64> {
        let id = self.aggregate(name)?;
        Some(self.type_rec(id)?.size_or_type as u64)
    }
    fn member(&self, struct_name: &str, path: &str) -> Option<Member> {
        self.member_of(self.aggregate(struct_name)?, path)
    }
    fn enum_value(&self, enum_name: &str, enumerator: &str) -> Option<i64> {
        for &(_, id) in self.named(&self.enums, enum_name) {
            if let Ok(vals) = self.enum_values(id) {
                if let Some((_, v)) = vals.into_iter().find(|(n, _)| *n == enumerator) {
                    return Some(v);
                }
            }
        }
        None
    }
    fn enumerator(&self, enumerator: &str) -> Option<i64> {
        self.named(&self.enumerators, enumerator).first().map(|e| e.1)
    }
    fn type_count(&self) -> usize {
        self.len()
    }
    fn source(&self) -> Source {
        Source::Btf
    }
    fn btf_index(&self) -> Option<Vec<u8>> {
        Some(self.index_bytes())
    }
}

/// The 8 bytes a version-1 BTF header with the usual 24-byte hdr_len starts with.
const HEADER_PREFIX: [u8; 8] = [0x9f, 0xeb, 0x01, 0x00, 0x18, 0x00, 0x00, 0x00];
const SCAN_CHUNK: usize = 32 << 20;

/// Find the vmlinux BTF in guest RAM by its header, when kallsyms (__start_BTF) is not available.
/// Module BTF is split BTF (it refers to vmlinux types and strings) and small; the vmlinux blob parses
/// standalone, is megabytes long and defines `task_struct`. The largest such blob wins.
/// Parse raw vmlinux BTF into the kernel's types.
pub fn types_from_btf(bytes: BtfBytes) -> Result<Arc<dyn Types>> {
    Ok(Arc::new(Btf::parse(bytes)?))
}

pub fn scan_phys_for_vmlinux_btf(phys: &dyn PhysicalMemory) -> Result<BtfBytes> {
    let mut best: Option<(u64, BtfBytes)> = None;
    let mut candidates = 0usize;
    // Holes of a sparse file read as zeros: skip them, and give back each window once searched.
    for range in phys.scan_ranges() {
        let mut start = range.start;
        let end = range.start + range.len;
        phys.prefetch(start, ((end - start) as usize).min(SCAN_CHUNK + HEADER_PREFIX.len()));
        while start < end {
            let len = ((end - start) as usize).min(SCAN_CHUNK + HEADER_PREFIX.len());
            // read the next window ahead while this one is searched (see PhysicalMemory::prefetch)
            let next = start + SCAN_CHUNK as u64;
            if next < end {
                phys.prefetch(next, ((end - next) as usize).min(SCAN_CHUNK + HEADER_PREFIX.len()));
            }
            let mut owned;
            let chunk: &[u8] = match phys.phys_slice(start, len) {
                Ok(s) => s,
                Err(_) => {
                    owned = vec![0u8; len];
                    if phys.read_phys(start, &mut owned).is_err() {
                        start += SCAN_CHUNK as u64;
                        continue;
                    }
                    &owned
                }
            };
            let mut from = 0usize;
            while let Some(rel) = find_header(&chunk[from..]) {
                let at = start + (from + rel) as u64;
                from += rel + 1;
                candidates += 1;
                if candidates > 100_000 {
                    return Err(Error::bad("more than 100000 BTF header candidates in RAM"));
                }
                if let Some(blob) = try_blob(phys, at) {
                    if best.as_ref().map(|(_, b)| blob.len() > b.len()).unwrap_or(true) {
                        best = Some((at, blob));
                    }
                }
            }
            phys.release(start, len);
            start += SCAN_CHUNK as u64;
        }
    }
    best.map(|(_, b)| b)
        .ok_or_else(|| Error::NotFound("no vmlinux BTF (magic 0xeb9f with task_struct) found in guest RAM".into()))
}

/// Next offset of HEADER_PREFIX in `hay` (SIMD substring search).
fn find_header(hay: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, &HEADER_PREFIX)
}

fn try_blob(phys: &dyn PhysicalMemory, at: u64) -> Option<BtfBytes> {
    let mut hdr = [0u8; 24];
    phys.read_phys(at, &mut hdr).ok()?;
    let h = BtfHeader::read(&hdr).ok()?;
    let total = h.total_len();
    // vmlinux BTF: megabytes; module BTF: kilobytes. Skip the tiny ones cheaply.
    if total < 64 << 10 || total > MAX_BTF_BYTES as u64 || h.type_off != 0 || h.str_off < h.type_len {
        return None;
    }
    let mut blob = vec![0u8; total as usize];
    phys.read_phys(at, &mut blob).ok()?;
    let btf = Btf::parse(blob).ok()?;
    let task = btf.aggregate("task_struct")?;
    if btf.members(task).len() < 10 {
        return None;
    }
    Some(btf.data)
}

/// A BTF writer for tests and fuzz seeds.
#[cfg(any(test, feature = "fuzzing"))]
pub mod builder {
    use super::*;

    /// A little BTF writer for tests.
    #[derive(Default)]
    pub struct BtfBuilder {
        types: Vec<u8>,
        strs: Vec<u8>,
        count: u32,
    }

    impl BtfBuilder {
        pub fn new() -> Self {
            BtfBuilder { types: Vec::new(), strs: vec![0], count: 0 }
        }
        pub fn s(&mut self, name: &str) -> u32 {
            if name.is_empty() {
                return 0;
            }
            let off = self.strs.len() as u32;
            self.strs.extend_from_slice(name.as_bytes());
            self.strs.push(0);
            off
        }
        fn rec(&mut self, name: &str, kind: u8, kflag: bool, vlen: u16, size_or_type: u32) -> u32 {
            let n = self.s(name);
            self.types.extend_from_slice(&n.to_le_bytes());
            let info = (vlen as u32) | ((kind as u32) << 24) | ((kflag as u32) << 31);
            self.types.extend_from_slice(&info.to_le_bytes());
            self.types.extend_from_slice(&size_or_type.to_le_bytes());
            self.count += 1;
            self.count
        }
        fn w(&mut self, v: u32) {
            self.types.extend_from_slice(&v.to_le_bytes());
        }
        pub fn int(&mut self, name: &str, size: u32, signed: bool) -> u32 {
            let id = self.rec(name, KIND_INT, false, 0, size);
            self.w(((signed as u32) << 24) | (size * 8));
            id
        }
        pub fn ptr(&mut self, to: u32) -> u32 {
            self.rec("", KIND_PTR, false, 0, to)
        }
        pub fn modifier(&mut self, kind: u8, name: &str, to: u32) -> u32 {
            self.rec(name, kind, false, 0, to)
        }
        pub fn array(&mut self, elem: u32, index: u32, n: u32) -> u32 {
            let id = self.rec("", KIND_ARRAY, false, 0, 0);
            self.w(elem);
            self.w(index);
            self.w(n);
            id
        }
        /// members: (name, type, bit offset, bitfield size)
        pub fn aggregate(&mut self, kind: u8, name: &str, size: u32, members: &[(&str, u32, u32, u32)]) -> u32 {
            let kflag = members.iter().any(|m| m.3 != 0);
            let id = self.rec(name, kind, kflag, members.len() as u16, size);
            for &(n, t, off, bits) in members {
                let no = self.s(n);
                self.w(no);
                self.w(t);
                self.w(if kflag { (bits << 24) | off } else { off });
            }
            id
        }
        pub fn enumeration(&mut self, name: &str, values: &[(&str, i32)]) -> u32 {
            let id = self.rec(name, KIND_ENUM, true, values.len() as u16, 4);
            for &(n, v) in values {
                let no = self.s(n);
                self.w(no);
                self.w(v as u32);
            }
            id
        }
        pub fn enum64(&mut self, name: &str, values: &[(&str, u64)]) -> u32 {
            let id = self.rec(name, KIND_ENUM64, false, values.len() as u16, 8);
            for &(n, v) in values {
                let no = self.s(n);
                self.w(no);
                self.w(v as u32);
                self.w((v >> 32) as u32);
            }
            id
        }
        pub fn func_proto(&mut self, ret: u32, params: &[u32]) -> u32 {
            let id = self.rec("", KIND_FUNC_PROTO, false, params.len() as u16, ret);
            for &p in params {
                self.w(0);
                self.w(p);
            }
            id
        }
        pub fn raw(&mut self, name: &str, kind: u8, vlen: u16, size_or_type: u32, extra: &[u32]) -> u32 {
            let id = self.rec(name, kind, false, vlen, size_or_type);
            for &e in extra {
                self.w(e);
            }
            id
        }
        pub fn build(&self) -> Vec<u8> {
            let mut out = Vec::new();
            out.extend_from_slice(&BTF_MAGIC.to_le_bytes());
            out.push(1);
            out.push(0);
            for v in [24u32, 0, self.types.len() as u32, self.types.len() as u32, self.strs.len() as u32] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(&self.types);
            out.extend_from_slice(&self.strs);
            out
        }
    }

    /// A task_struct-ish world with everything the parser must get right.
    pub fn sample() -> BtfBuilder {
        let mut b = BtfBuilder::new();
        let int = b.int("int", 4, true);
        let uint = b.int("unsigned int", 4, false);
        let long = b.int("long", 8, true);
        let chr = b.int("char", 1, true);
        let pid_t = b.modifier(KIND_TYPEDEF, "pid_t", int);
        let kernel_pid = b.modifier(KIND_TYPEDEF, "__kernel_pid_t", pid_t);
        let cpid = b.modifier(KIND_CONST, "", kernel_pid);
        let vpid = b.modifier(KIND_VOLATILE, "", cpid);
        let comm = b.array(chr, int, 16);
        // list_head { next, prev } — forward-declared pointer to itself.
        let fwd = b.raw("list_head", KIND_FWD, 0, 0, &[]);
        let lp = b.ptr(fwd);
        let list_head = b.aggregate(KIND_STRUCT, "list_head", 16, &[("next", lp, 0, 0), ("prev", lp, 64, 0)]);
        let mm = b.aggregate(KIND_STRUCT, "mm_struct", 64, &[("total_vm", long, 0, 0)]);
        let mmp = b.ptr(mm);
        // Anonymous union { long a; struct { int x; int y; }; } at byte 48.
        let anon_s = b.aggregate(KIND_STRUCT, "", 8, &[("x", int, 0, 0), ("y", int, 32, 0)]);
        let anon_u = b.aggregate(KIND_UNION, "", 8, &[("a", long, 0, 0), ("", anon_s, 0, 0)]);
        let sched = b.aggregate(KIND_STRUCT, "sched_entity", 16, &[("sum_exec_runtime", long, 64, 0)]);
        let task = b.aggregate(
            KIND_STRUCT,
            "task_struct",
            128,
            &[
                ("pid", vpid, 0, 0),
                ("flags", uint, 32, 0),
                ("tasks", list_head, 64, 0),
                ("mm", mmp, 192, 0),
                ("comm", comm, 256, 0),
                ("", anon_u, 384, 0),
                ("se", sched, 448, 0),
                ("in_execve", uint, 576, 1),
                ("in_iowait", uint, 577, 1),
                ("sched_psi_wake_requeue", uint, 578, 3),
            ],
        );
        let _ = task;
        b.enumeration("zone_stat_item", &[("NR_FREE_PAGES", 0), ("NR_ZONE_LRU_BASE", 1), ("NR_NEG", -5)]);
        b.enum64("big_flags", &[("BIG_ONE", 1u64 << 40)]);
        b.func_proto(int, &[int, long]);
        let _ = b.modifier(KIND_TYPE_TAG, "user", int);
        b.raw("", KIND_FLOAT, 0, 8, &[]);
        b.raw("jiffies", KIND_VAR, 0, long, &[1]);
        b.raw(".data", KIND_DATASEC, 1, 8, &[b.count, 0, 8]);
        b.raw("tag", KIND_DECL_TAG, 0, int, &[u32::MAX]);
        b.raw("do_it", KIND_FUNC, 0, 1, &[]);
        b
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::builder::*;
    use super::*;
    use crate::mem::PhysRange;

    /// Hostile guest: structs that contain themselves through anonymous members (a cycle C cannot write),
    /// and a chain of structs each holding the next one three times anonymously (3^30 paths, no cycle).
    /// Member lookups and the ISF export search each aggregate once per lookup, so both end at once.
    #[test]
    fn circular_and_fanned_out_anonymous_members_are_searched_once() {
        let mut b = BtfBuilder::new();
        let int = b.int("int", 4, true);
        let looped = int + 1; // the next id
        b.aggregate(KIND_STRUCT, "loop", 8, &[("x", int, 0, 0), ("", looped, 0, 0), ("", looped, 0, 0), ("", looped, 0, 0)]);
        let levels = 30;
        let first = looped + 1;
        for i in 0..levels {
            let next = first + i + 1;
            let name = format!("fan{i}");
            if i + 1 == levels {
                b.aggregate(KIND_STRUCT, &name, 4, &[("leaf", int, 0, 0)]);
            } else {
                b.aggregate(KIND_STRUCT, &name, 4, &[("", next, 0, 0), ("", next, 0, 0), ("", next, 0, 0)]);
            }
        }
        let btf = Btf::parse(b.build()).unwrap();
        assert_eq!(btf.member("loop", "x").map(|m| m.offset), Some(0));
        assert_eq!(btf.member("loop", "absent"), None);
        assert_eq!(btf.member("loop", "x.absent"), None);
        assert_eq!(btf.member("fan0", "leaf").map(|m| m.size), Some(4));
        assert_eq!(btf.member("fan0", "absent"), None);
        let symbols = crate::kernel::system_map::SystemMap::from_entries(vec![("linux_banner".into(), 'R', 0)], 0, Source::Kallsyms);
        let isf = crate::kernel::isf::export(&symbols, &btf, "Linux version x\n", 0).unwrap();
        assert!(isf.contains("\"leaf\""));
    }

    #[test]
    fn parses_layouts() {
        check_layouts(&Btf::parse(sample().build()).unwrap());
    }

    /// The profile cache opens BTF from its stored index: every answer must be the parser's.
    #[test]
    fn a_stored_index_answers_as_the_parse_did() {
        let parsed = Btf::parse(sample().build()).unwrap();
        let index = parsed.index_bytes();
        let opened = Btf::with_index(sample().build().into(), &index).unwrap();
        check_layouts(&opened);
        assert_eq!(opened.len(), parsed.len());
        let ids = |b: &Btf| (b.aggregate_ids().map(|(n, i)| (n.to_string(), i)).collect::<Vec<_>>(), b.enum_ids().map(|(n, i)| (n.to_string(), i)).collect::<Vec<_>>());
        assert_eq!(ids(&opened), ids(&parsed));
        // A cut or padded index is refused; a scrambled one answers nonsense but never panics.
        assert!(Btf::with_index(sample().build().into(), &index[..index.len() - 4]).is_err());
        assert!(Btf::with_index(sample().build().into(), &[index.as_slice(), &[0; 4]].concat()).is_err());
        let mut junk = index.clone();
        for (i, b) in junk.iter_mut().enumerate().skip(20) {
            *b = (i as u8).wrapping_mul(37) ^ 0xa5;
        }
        let j = Btf::with_index(sample().build().into(), &junk).unwrap();
        for name in ["task_struct", "list_head", "mm_struct", "zone_stat_item", "x"] {
            let _ = (j.struct_size(name), j.member(name, "tasks.prev"), j.enum_value(name, "NR_NEG"), j.enumerator(name));
        }
        let _ = (j.aggregate_ids().count(), j.enum_ids().count());
    }

    fn check_layouts(btf: &Btf) {
        assert_eq!(btf.source(), Source::Btf);
        assert_eq!(btf.struct_size("task_struct"), Some(128));
        assert_eq!(btf.struct_size("list_head"), Some(16));
        let pid = btf.member("task_struct", "pid").unwrap();
        assert_eq!((pid.offset, pid.size, pid.bit_size), (0, 4, 0));
        assert_eq!(btf.member("task_struct", "tasks").unwrap().offset, 8);
        assert_eq!(btf.member("task_struct", "tasks.prev").unwrap().offset, 16);
        assert_eq!(btf.member("task_struct", "mm").unwrap().size, 8);
        let comm = btf.member("task_struct", "comm").unwrap();
        assert_eq!((comm.offset, comm.size, comm.array_len), (32, 16, Some(16)));
        // Through the anonymous union and the anonymous struct inside it.
        assert_eq!(btf.member("task_struct", "a").unwrap().offset, 48);
        assert_eq!(btf.member("task_struct", "y").unwrap().offset, 52);
        assert_eq!(btf.member("task_struct", "se.sum_exec_runtime").unwrap().offset, 64);
        let b = btf.member("task_struct", "in_iowait").unwrap();
        assert_eq!((b.offset, b.bit_offset, b.bit_size), (72, 1, 1));
        let b = btf.member("task_struct", "sched_psi_wake_requeue").unwrap();
        assert_eq!((b.offset, b.bit_offset, b.bit_size), (72, 2, 3));
        assert_eq!(btf.member("task_struct", "nope"), None);
        assert_eq!(btf.member("task_struct", "pid.x"), None);
        assert_eq!(btf.member("nope", "pid"), None);
        assert_eq!(btf.enumerator("NR_FREE_PAGES"), Some(0));
        assert_eq!(btf.enumerator("NR_NEG"), Some(-5));
        assert_eq!(btf.enum_value("zone_stat_item", "NR_ZONE_LRU_BASE"), Some(1));
        assert_eq!(btf.enumerator("BIG_ONE"), Some(1 << 40));
        assert!(btf.type_count() > 20);
    }

    fn with_header(mut blob: Vec<u8>, field: usize, v: u32) -> Vec<u8> {
        blob[field..field + 4].copy_from_slice(&v.to_le_bytes());
        blob
    }

    #[test]
    fn hostile_blobs_are_bad_data() {
        let good = sample().build();
        let tlen = u32::from_le_bytes(good[12..16].try_into().unwrap());
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("type_len past end", with_header(good.clone(), 12, tlen + 1000)),
            ("str_len past end", with_header(good.clone(), 20, 1 << 30)),
            ("bad magic", with_header(good.clone(), 0, 0x0001_eb9e)),
            ("truncated", good[..good.len() / 2].to_vec()),
            ("empty", Vec::new()),
            ("type_off overflow", with_header(good.clone(), 8, u32::MAX)),
        ];
        for (what, blob) in cases {
            let e = Btf::parse(blob).err().unwrap_or_else(|| panic!("{what} parsed"));
            assert!(matches!(e.code(), "BAD_DATA" | "UNSUPPORTED"), "{what}: {e}");
        }
        // String offset out of range.
        let mut b = BtfBuilder::new();
        b.raw("", KIND_INT, 0, 4, &[32]);
        let mut blob = b.build();
        blob[24..28].copy_from_slice(&9999u32.to_le_bytes());
        assert_eq!(Btf::parse(blob).err().unwrap().code(), "BAD_DATA");
        // Self-referencing typedef, and a two-step const/typedef cycle.
        let mut b = BtfBuilder::new();
        b.modifier(KIND_TYPEDEF, "loop", 1);
        assert_eq!(Btf::parse(b.build()).err().unwrap().code(), "BAD_DATA");
        let mut b = BtfBuilder::new();
        b.modifier(KIND_TYPEDEF, "a", 2);
        b.modifier(KIND_CONST, "", 1);
        assert_eq!(Btf::parse(b.build()).err().unwrap().code(), "BAD_DATA");
        // Absurd vlen: a struct claiming 65535 members.
        let mut b = BtfBuilder::new();
        b.raw("s", KIND_STRUCT, 0xffff, 8, &[]);
        assert_eq!(Btf::parse(b.build()).err().unwrap().code(), "BAD_DATA");
        // Member type id past the end.
        let mut b = BtfBuilder::new();
        b.aggregate(KIND_STRUCT, "s", 8, &[("m", 77, 0, 0)]);
        assert_eq!(Btf::parse(b.build()).err().unwrap().code(), "BAD_DATA");
        // Unknown kind.
        let mut b = BtfBuilder::new();
        b.raw("", 31, 0, 0, &[]);
        assert_eq!(Btf::parse(b.build()).err().unwrap().code(), "BAD_DATA");
        // A struct containing itself as an anonymous member: lookups end, no stack overflow.
        let mut b = BtfBuilder::new();
        let int = b.int("int", 4, true);
        b.aggregate(KIND_STRUCT, "selfish", 8, &[("", 2, 0, 0), ("z", int, 0, 0)]);
        let btf = Btf::parse(b.build()).unwrap();
        assert_eq!(btf.member("selfish", "missing"), None);
        // Random garbage never panics.
        let mut seed = 0x1234_5678u64;
        for _ in 0..2000 {
            let mut blob = good.clone();
            for _ in 0..4 {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let i = 24 + (seed >> 33) as usize % (blob.len() - 24);
                blob[i] = (seed >> 20) as u8;
            }
            if let Ok(btf) = Btf::parse(blob) {
                let _ = btf.member("task_struct", "se.sum_exec_runtime");
                let _ = btf.member("task_struct", "y");
                let _ = btf.struct_size("task_struct");
            }
        }
    }

    /// Physical memory as a Vec at address 0.
    pub struct VecPhys(pub Vec<u8>, pub Vec<PhysRange>);
    impl PhysicalMemory for VecPhys {
        fn read_phys(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
            let s = self
                .0
                .get(addr as usize..addr as usize + buf.len())
                .ok_or_else(|| Error::fault(addr, "past test RAM"))?;
            buf.copy_from_slice(s);
            Ok(())
        }
        fn phys_slice(&self, addr: u64, len: usize) -> Result<&[u8]> {
            self.0.get(addr as usize..addr as usize + len).ok_or_else(|| Error::fault(addr, "past test RAM"))
        }
        fn ranges(&self) -> &[PhysRange] {
            &self.1
        }
    }

    #[test]
    fn scan_finds_vmlinux_btf_not_module_btf() {
        // Pad the sample to > 64 KiB with many extra ints so it looks like vmlinux.
        let mut b = sample();
        for i in 0..6000 {
            b.int(&format!("pad_int_{i}"), 4, false);
        }
        let vmlinux = b.build();
        let mut module = BtfBuilder::new();
        module.int("modint", 4, true);
        let module = module.build();
        let mut ram = vec![0u8; 4 << 20];
        ram[0x1003..0x1003 + module.len()].copy_from_slice(&module);
        ram[0x20_0731..0x20_0731 + vmlinux.len()].copy_from_slice(&vmlinux);
        // A decoy header with absurd lengths.
        ram[0x30_0000..0x30_0008].copy_from_slice(&HEADER_PREFIX);
        ram[0x30_0008..0x30_000c].copy_from_slice(&0u32.to_le_bytes());
        ram[0x30_000c..0x30_0010].copy_from_slice(&u32::MAX.to_le_bytes());
        let len = ram.len() as u64;
        let phys = VecPhys(ram, vec![PhysRange { start: 0, len }]);
        let found = scan_phys_for_vmlinux_btf(&phys).unwrap();
        assert_eq!(found.to_vec(), vmlinux);
        let btf = Btf::parse(found).unwrap();
        assert!(btf.member("task_struct", "comm").is_some());
        let empty = VecPhys(vec![0u8; 1 << 16], vec![PhysRange { start: 0, len: 1 << 16 }]);
        assert_eq!(scan_phys_for_vmlinux_btf(&empty).err().unwrap().code(), "NOT_FOUND");
    }
}
