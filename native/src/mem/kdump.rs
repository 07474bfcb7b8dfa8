//! kdump-compressed dumps: makedumpfile's diskdump_mod.h (disk_dump_header, kdump_sub_header v1–6, page_desc) and
//! its flattened stream (makedumpfile.h makedumpfile_header/makedumpfile_data_header), as makedumpfile, QEMU's
//! dump/dump.c (`dump-guest-memory format=kdump-*`) and `virsh dump --format kdump-*` write them.
//!
//! The dump is read in place: a flattened file's records are indexed in one pass (nothing copied, nothing
//! decompressed); a page is found by its pfn's rank among the set bits of the 2nd bitmap (its descriptor's
//! index) and decompressed alone. A dump already in memory reads the same way (`KdumpRam::from_bytes`, for fuzzing).

use std::collections::BinaryHeap;
use std::io::Read;
use std::sync::Mutex;

use memmap2::Mmap;

use super::elfcore::{self, CoreNotes};
use super::page_cache::{PageCache, PAGE};
use super::source::Image;
use super::{PhysRange, PhysicalMemory};
use crate::bytes::{be_u64, le_u32, le_u64};
use crate::{Error, Result};

/// Raw layouts (x86-64 LP64: long and off_t are 8 bytes; struct timeval 16, 8-aligned).
mod raw {
    pub const KDUMP_SIGNATURE: &[u8; 8] = b"KDUMP   ";
    /// The flattened stream: a MAX_SIZE_MDF_HEADER block starting "makedumpfile", type and version as be64.
    pub const FLAT_SIGNATURE: &[u8; 12] = b"makedumpfile";
    pub const FLAT_HEADER_LEN: u64 = 4096;
    pub const FLAT_TYPE: usize = 16;
    pub const FLAT_VERSION: usize = 24;
    pub const TYPE_FLAT_HEADER: u64 = 1;
    /// makedumpfile_data_header: offset (be64), buf_size (be64); both -1 ends the stream.
    pub const FLAT_RECORD_HEADER_LEN: u64 = 16;

    /// disk_dump_header.
    pub const DH_HEADER_VERSION: usize = 8;
    /// struct new_utsname: six fields of 65 bytes.
    pub const DH_UTSNAME: usize = 12;
    pub const UTS_FIELD_LEN: usize = 65;
    pub const UTS_NODENAME: usize = 1;
    pub const UTS_RELEASE: usize = 2;
    pub const UTS_MACHINE: usize = 4;
    pub const DH_STATUS: usize = 424;
    pub const DH_BLOCK_SIZE: usize = 428;
    pub const DH_SUB_HDR_SIZE: usize = 432;
    pub const DH_BITMAP_BLOCKS: usize = 436;
    pub const DH_MAX_MAPNR: usize = 440;
    pub const DH_NR_CPUS: usize = 460;
    pub const DH_LEN: usize = 464;

    /// kdump_sub_header, one block after the start; fields appear with the header version in brackets.
    pub const KH_PHYS_BASE: usize = 0;
    pub const KH_DUMP_LEVEL: usize = 8; // [1]
    pub const KH_SPLIT: usize = 12; // [2]
    pub const KH_START_PFN: usize = 16; // [2]
    pub const KH_END_PFN: usize = 24; // [2]
    pub const KH_OFFSET_VMCOREINFO: usize = 32; // [3]
    pub const KH_SIZE_VMCOREINFO: usize = 40; // [3]
    pub const KH_OFFSET_NOTE: usize = 48; // [4]
    pub const KH_SIZE_NOTE: usize = 56; // [4]
    pub const KH_START_PFN_64: usize = 80; // [6]
    pub const KH_END_PFN_64: usize = 88; // [6]
    pub const KH_MAX_MAPNR_64: usize = 96; // [6]
    pub const KH_LEN: usize = 104;

    /// page_desc: offset (off_t), size (u32), flags (u32), page_flags (u64).
    pub const PD_LEN: u64 = 24;
    pub const PD_OFFSET: usize = 0;
    pub const PD_SIZE: usize = 8;
    pub const PD_FLAGS: usize = 12;

    /// Page and header status flags.
    pub const DUMP_DH_COMPRESSED_ZLIB: u32 = 0x1;
    pub const DUMP_DH_COMPRESSED_LZO: u32 = 0x2;
    pub const DUMP_DH_COMPRESSED_SNAPPY: u32 = 0x4;
    pub const DUMP_DH_COMPRESSED_INCOMPLETE: u32 = 0x8;
    pub const DUMP_DH_EXCLUDED_VMEMMAP: u32 = 0x10;
    pub const DUMP_DH_COMPRESSED_ZSTD: u32 = 0x20;
}

/// Bounds on what a header may claim.
const MAX_SUB_HDR_BLOCKS: u64 = 1 << 16;
const MAX_VMCOREINFO: u64 = 1 << 20;
const MAX_NOTES: u64 = 64 << 20;
/// Physical addresses have at most 52 bits (x86-64 MAXPHYADDR): pfns below 2^40.
const MAX_PFN: u64 = 1 << 40;
/// Set bits of the 2nd bitmap counted per rank block: a pfn's descriptor index costs at most 16 popcounts.
const RANK_BLOCK_BITS: u64 = 1024;

/// makedumpfile -d: what each bit of the dump level leaves out (makedumpfile(8) "-d dump_level").
const DUMP_LEVEL_BITS: [(i32, &str); 5] = [(1, "zero"), (2, "cache"), (4, "private cache"), (8, "user"), (16, "free")];

pub fn is_kdump(head: &[u8]) -> bool {
    head.starts_with(raw::KDUMP_SIGNATURE) || head.starts_with(raw::FLAT_SIGNATURE)
}

/// One record of a flattened stream: `len` bytes of the standard file's [logical, logical+len) at `file`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Record {
    logical: u64,
    file: u64,
    len: u64,
}

/// Where the standard file's bytes are: the file itself, or the records of a flattened stream.
#[derive(Debug, Clone)]
enum Container {
    Standard,
    Flattened {
        /// Sorted by `logical`, non-overlapping (when records overlap, the later write wins, as `makedumpfile -R`
        /// replaying them with seek+write would leave it). Gaps read as zeros, like the holes of -R's output.
        records: Vec<Record>,
        /// End of the furthest record: the size `makedumpfile -R` would give the file.
        logical_len: u64,
    },
}

/// Why a read of the dump's own bytes failed.
struct PastEnd(u64);

impl Container {
    fn logical_len(&self, bytes: &[u8]) -> u64 {
        match self {
            Container::Standard => bytes.len() as u64,
            Container::Flattened { logical_len, .. } => *logical_len,
        }
    }

    /// Zero-copy view of [off, off+len) when it lies in one piece of the file.
    fn slice<'a>(&self, bytes: &'a [u8], off: u64, len: usize) -> Option<&'a [u8]> {
        let file_off = match self {
            Container::Standard => off,
            Container::Flattened { records, .. } => {
                let r = records.get(records.partition_point(|r| r.logical <= off).checked_sub(1)?)?;
                let within = off - r.logical;
                if within.checked_add(len as u64)? > r.len {
                    return None;
                }
                r.file + within
            }
        };
        let start = usize::try_from(file_off).ok()?;
        bytes.get(start..start.checked_add(len)?)
    }

    /// Copy [off, off+buf.len()) of the standard file; a flattened stream's gaps read as zeros.
    fn read(&self, bytes: &[u8], off: u64, buf: &mut [u8]) -> std::result::Result<(), PastEnd> {
        if let Some(s) = self.slice(bytes, off, buf.len()) {
            buf.copy_from_slice(s);
            return Ok(());
        }
        let end = off.checked_add(buf.len() as u64).ok_or(PastEnd(off))?;
        let logical_len = self.logical_len(bytes);
        if end > logical_len {
            return Err(PastEnd(logical_len.max(off)));
        }
        let Container::Flattened { records, .. } = self else { return Err(PastEnd(off)) };
        buf.fill(0);
        let first = records.partition_point(|r| r.logical + r.len <= off);
        for r in records.get(first..).unwrap_or(&[]) {
            if r.logical >= end {
                break;
            }
            let (a, b) = (r.logical.max(off), (r.logical + r.len).min(end));
            let src_at = usize::try_from(r.file + (a - r.logical)).map_err(|_| PastEnd(a))?;
            let n = (b - a) as usize;
            let src = bytes.get(src_at..src_at + n).ok_or(PastEnd(a))?;
            let dst_at = (a - off) as usize;
            buf[dst_at..dst_at + n].copy_from_slice(src);
        }
        Ok(())
    }
}

/// Bytes of a flattened stream indexed between two calls of `parse_releasing`'s `release`.
const RELEASE_STEP: u64 = 32 << 20;

/// Index a flattened stream's records in one pass. Returns the records in write order, whether the end marker
/// was seen, and the bytes the last record promised but the file does not hold. `release(from, to)` is told
/// every RELEASE_STEP bytes which whole pages of `bytes` it is done with.
fn scan_flattened(bytes: &[u8], release: &dyn Fn(usize, usize)) -> Result<(Vec<Record>, bool, u64)> {
    let head = bytes
        .get(..raw::FLAT_HEADER_LEN as usize)
        .ok_or_else(|| Error::bad("flattened kdump: the 4096-byte makedumpfile header is cut short"))?;
    let ty = be_u64(head, raw::FLAT_TYPE).unwrap_or(0);
    if ty != raw::TYPE_FLAT_HEADER {
        let version = be_u64(head, raw::FLAT_VERSION).unwrap_or(0);
        return Err(Error::Unsupported(format!("flattened kdump: header type {ty} version {version} (only type 1 is known)")));
    }
    let file_len = bytes.len() as u64;
    let mut records = Vec::new();
    let mut pos = raw::FLAT_HEADER_LEN;
    let mut released = 0u64;
    // Each record moves `pos` on by at least 17 bytes, so this ends.
    while pos < file_len {
        if pos - released >= RELEASE_STEP {
            let to = pos / 4096 * 4096;
            release(released as usize, to as usize);
            released = to;
        }
        let Some(h) = bytes.get(pos as usize..(pos + raw::FLAT_RECORD_HEADER_LEN) as usize) else {
            return Ok((records, false, 0));
        };
        let (offset, size) = (be_u64(h, 0).unwrap_or(0) as i64, be_u64(h, 8).unwrap_or(0) as i64);
        if offset == -1 && size == -1 {
            return Ok((records, true, 0));
        }
        if offset < 0 || size <= 0 || (offset as u64).checked_add(size as u64).is_none() {
            return Err(Error::bad(format!("flattened kdump: record at file offset {pos:#x} claims offset {offset} and size {size}")));
        }
        let data_at = pos + raw::FLAT_RECORD_HEADER_LEN;
        let held = file_len.saturating_sub(data_at).min(size as u64);
        if held > 0 {
            records.push(Record { logical: offset as u64, file: data_at, len: held });
        }
        if held < size as u64 {
            return Ok((records, false, size as u64 - held));
        }
        pos = data_at + size as u64;
    }
    Ok((records, false, 0))
}

/// Sort records by their place in the standard file; where they overlap, the later write wins.
fn arrange(mut records: Vec<Record>) -> Vec<Record> {
    let mut sorted = records.clone();
    sorted.sort_by_key(|r| r.logical);
    if sorted.windows(2).all(|w| w[0].logical + w[0].len <= w[1].logical) {
        return sorted;
    }
    // Sweep the record boundaries; between two of them the newest covering record (highest write index) wins.
    let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(records.len() * 2);
    for (i, r) in records.iter().enumerate() {
        events.push((r.logical, true, i));
        events.push((r.logical + r.len, false, i));
    }
    events.sort_by_key(|&(at, _, _)| at);
    let mut active: BinaryHeap<usize> = BinaryHeap::new();
    let mut ended = vec![false; records.len()];
    let mut out: Vec<Record> = Vec::new();
    let mut i = 0;
    let mut prev = 0u64;
    while i < events.len() {
        let at = events[i].0;
        while active.peek().is_some_and(|&w| ended[w]) {
            active.pop();
        }
        if let Some(&w) = active.peek() {
            if at > prev {
                let r = records[w];
                let piece = Record { logical: prev, file: r.file + (prev - r.logical), len: at - prev };
                match out.last_mut() {
                    Some(last) if last.logical + last.len == piece.logical && last.file + last.len == piece.file => last.len += piece.len,
                    _ => out.push(piece),
                }
            }
        }
        while i < events.len() && events[i].0 == at {
            let (_, start, w) = events[i];
            if start {
                active.push(w);
            } else {
                ended[w] = true;
            }
            i += 1;
        }
        prev = at;
    }
    records.clear();
    out
}

/// A bitmap of the dump: in the file (standard form) or copied out of a flattened stream's records.
#[derive(Debug, Clone)]
enum Bits {
    InFile { offset: usize, len: usize },
    Owned(Vec<u8>),
}

impl Bits {
    fn bytes<'a>(&'a self, file: &'a [u8]) -> &'a [u8] {
        match self {
            Bits::InFile { offset, len } => file.get(*offset..offset + len).unwrap_or(&[]),
            Bits::Owned(v) => v,
        }
    }
}

fn bit(bits: &[u8], pfn: u64) -> bool {
    bits.get((pfn / 8) as usize).is_some_and(|b| b & (1 << (pfn % 8)) != 0)
}

/// The 64 bits of pfns [64·w, 64·w+64) (bit i = pfn 64·w+i; bytes are LSB-first), zero past the end.
fn word(bits: &[u8], w: u64) -> u64 {
    let at = (w * 8) as usize;
    match bits.get(at..at.saturating_add(8)) {
        Some(b) => le_u64(b, 0).unwrap_or(0),
        None => {
            let mut b = [0u8; 8];
            if let Some(tail) = bits.get(at..) {
                b[..tail.len().min(8)].copy_from_slice(&tail[..tail.len().min(8)]);
            }
            u64::from_le_bytes(b)
        }
    }
}

/// Runs of set bits below `limit`, as physical ranges.
fn runs(bits: &[u8], limit: u64) -> Vec<PhysRange> {
    let mut out: Vec<PhysRange> = Vec::new();
    let mut run_start: Option<u64> = None;
    let words = limit.div_ceil(64);
    for w in 0..words {
        let mut v = word(bits, w);
        if w == words - 1 && limit % 64 != 0 {
            v &= (1u64 << (limit % 64)) - 1;
        }
        if v == 0 && run_start.is_none() || v == u64::MAX && run_start.is_some() {
            continue;
        }
        for i in 0..64 {
            let pfn = w * 64 + i;
            match (v >> i & 1 == 1, run_start) {
                (true, None) => run_start = Some(pfn),
                (false, Some(s)) => {
                    out.push(PhysRange { start: s * PAGE as u64, len: (pfn - s) * PAGE as u64 });
                    run_start = None;
                }
                _ => {}
            }
        }
    }
    if let Some(s) = run_start {
        out.push(PhysRange { start: s * PAGE as u64, len: (limit - s) * PAGE as u64 });
    }
    out
}

/// The headers' facts, as the dump states them.
#[derive(Debug, Clone, Default)]
pub struct DumpHeader {
    pub header_version: i32,
    pub status: u32,
    pub block_size: u32,
    pub sub_hdr_size: u32,
    pub bitmap_blocks: u32,
    /// Pages the bitmaps describe (max_mapnr_64 from version 6 on).
    pub max_mapnr: u64,
    pub nr_cpus: i32,
    pub release: String,
    pub nodename: String,
    pub machine: String,
    pub phys_base: u64,
    /// makedumpfile -d (version 1 and later); QEMU writes 1 and excludes nothing.
    pub dump_level: Option<i32>,
    /// For one file of a `makedumpfile --split` set: the pfns [start, end) it holds.
    pub split: Option<(u64, u64)>,
}

/// How many pages the dump holds, and how they were compressed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageCounts {
    pub zlib: u64,
    pub lzo: u64,
    pub snappy: u64,
    pub zstd: u64,
    pub raw: u64,
}

/// A parsed kdump-compressed dump: headers, bitmaps and the rank index that finds a pfn's page descriptor.
/// It holds no borrow of the bytes: every read takes them again (the caller's mmap, or a fuzzer's slice).
#[derive(Debug, Clone)]
pub struct Kdump {
    container: Container,
    pub header: DumpHeader,
    pub flattened: bool,
    bitmap1: Bits,
    bitmap2: Bits,
    /// Pfns with a bit in both bitmaps: min(max_mapnr, bits in a bitmap).
    pfn_limit: u64,
    /// Set bits of the 2nd bitmap before each RANK_BLOCK_BITS block, and in all.
    ranks: Vec<u64>,
    total_set: u64,
    /// Rank of the first pfn this file holds (a split dump's start_pfn; else 0).
    first_rank: u64,
    desc_base: u64,
    /// Page descriptors in this file.
    pub dumped_pages: u64,
    /// Pages in the 1st bitmap (the memory that existed) that the 2nd leaves out.
    pub excluded_pages: u64,
    ranges: Vec<PhysRange>,
    dumped_ranges: Vec<PhysRange>,
    pub vmcoreinfo: Option<String>,
    pub notes: CoreNotes,
    /// The ELF notes as the dump carries them (per-CPU prstatus, QEMU CPU state, VMCOREINFO).
    pub raw_notes: Vec<u8>,
    /// Bytes the headers or records promise that the file does not hold (only for a dump makedumpfile marked
    /// incomplete: any other truncated dump is refused).
    pub missing_bytes: u64,
    pub warnings: Vec<String>,
}

fn short(what: &str, at: u64, len: u64) -> Error {
    Error::bad(format!("kdump: {what} at offset {at:#x} lies past the end of the dump ({len} bytes): truncated or corrupt"))
}

fn c_string(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

impl Kdump {
    /// Parse the headers and bitmaps of a dump held in `bytes` (the whole file).
    pub fn parse(bytes: &[u8]) -> Result<Kdump> {
        Kdump::parse_releasing(bytes, &|_, _| {})
    }

    /// `parse`, telling `release(from, to)` which page-aligned byte ranges of `bytes` it has read through and
    /// will not read again (a flattened stream's record headers are spread over the whole file).
    pub fn parse_releasing(bytes: &[u8], release: &dyn Fn(usize, usize)) -> Result<Kdump> {
        let (container, flattened, mut warnings, mut missing) = if bytes.starts_with(raw::FLAT_SIGNATURE) {
            let (records, complete, missing) = scan_flattened(bytes, release)?;
            let records = arrange(records);
            let logical_len = records.last().map_or(0, |r| r.logical + r.len);
            let mut w = Vec::new();
            if !complete {
                w.push(format!("flattened kdump: the stream ends without its end marker at {} bytes: truncated", bytes.len()));
            }
            (Container::Flattened { records, logical_len }, true, w, missing)
        } else if bytes.starts_with(raw::KDUMP_SIGNATURE) {
            (Container::Standard, false, Vec::new(), 0)
        } else {
            return Err(Error::bad("not a kdump-compressed dump (no \"KDUMP   \" or \"makedumpfile\" signature)"));
        };
        let len = container.logical_len(bytes);
        let read = |c: &Container, at: u64, n: usize, what: &str| -> Result<Vec<u8>> {
            let mut b = vec![0u8; n];
            c.read(bytes, at, &mut b).map_err(|_| short(what, at, len))?;
            Ok(b)
        };
        let dh = read(&container, 0, raw::DH_LEN, "disk_dump_header")?;
        if !dh.starts_with(raw::KDUMP_SIGNATURE) {
            return Err(Error::bad("kdump: the flattened stream does not hold a \"KDUMP   \" header at offset 0"));
        }
        let u32_at = |b: &[u8], o: usize| le_u32(b, o).unwrap_or(0);
        let uts = |i: usize| {
            let at = raw::DH_UTSNAME + i * raw::UTS_FIELD_LEN;
            c_string(dh.get(at..at + raw::UTS_FIELD_LEN).unwrap_or(&[]))
        };
        let mut h = DumpHeader {
            header_version: u32_at(&dh, raw::DH_HEADER_VERSION) as i32,
            status: u32_at(&dh, raw::DH_STATUS),
            block_size: u32_at(&dh, raw::DH_BLOCK_SIZE),
            sub_hdr_size: u32_at(&dh, raw::DH_SUB_HDR_SIZE),
            bitmap_blocks: u32_at(&dh, raw::DH_BITMAP_BLOCKS),
            max_mapnr: u32_at(&dh, raw::DH_MAX_MAPNR) as u64,
            nr_cpus: u32_at(&dh, raw::DH_NR_CPUS) as i32,
            release: uts(raw::UTS_RELEASE),
            nodename: uts(raw::UTS_NODENAME),
            machine: uts(raw::UTS_MACHINE),
            ..Default::default()
        };
        if h.header_version < 1 {
            return Err(Error::Unsupported(format!("kdump: header version {} (makedumpfile writes 1 and later)", h.header_version)));
        }
        if h.block_size as usize != PAGE {
            return Err(Error::Unsupported(format!("kdump: block size {} (x86-64 dumps use {PAGE}-byte pages)", h.block_size)));
        }
        let block = PAGE as u64;
        if h.sub_hdr_size as u64 > MAX_SUB_HDR_BLOCKS {
            return Err(Error::bad(format!("kdump: sub-header of {} blocks is absurd", h.sub_hdr_size)));
        }
        if h.bitmap_blocks == 0 || h.bitmap_blocks % 2 != 0 {
            return Err(Error::bad(format!("kdump: {} bitmap blocks (the 1st and 2nd bitmaps take half each)", h.bitmap_blocks)));
        }

        // kdump_sub_header: one block in.
        let kh = read(&container, block, raw::KH_LEN, "kdump_sub_header")?;
        let q = |o: usize| le_u64(&kh, o).unwrap_or(0);
        h.phys_base = q(raw::KH_PHYS_BASE);
        if h.header_version >= 1 {
            h.dump_level = Some(le_u32(&kh, raw::KH_DUMP_LEVEL).unwrap_or(0) as i32);
        }
        if h.header_version >= 2 && le_u32(&kh, raw::KH_SPLIT).unwrap_or(0) != 0 {
            let (start, end) = if h.header_version >= 6 {
                (q(raw::KH_START_PFN_64), q(raw::KH_END_PFN_64))
            } else {
                (q(raw::KH_START_PFN), q(raw::KH_END_PFN))
            };
            if start >= end {
                return Err(Error::bad(format!("kdump: split dump holds pfns {start:#x}..{end:#x}")));
            }
            h.split = Some((start, end));
        }
        if h.header_version >= 6 && q(raw::KH_MAX_MAPNR_64) != 0 {
            h.max_mapnr = q(raw::KH_MAX_MAPNR_64);
        }
        if h.max_mapnr > MAX_PFN {
            return Err(Error::bad(format!("kdump: max_mapnr {:#x} is beyond any x86-64 physical address", h.max_mapnr)));
        }

        // Bitmaps: bitmap_blocks blocks after the header and sub-header; the 1st half, then the 2nd.
        let bitmap_at = (1 + h.sub_hdr_size as u64) * block;
        let half = h.bitmap_blocks as u64 / 2 * block;
        let desc_base = bitmap_at + 2 * half;
        if desc_base > len {
            return Err(short(&format!("the bitmaps ({} blocks) end at {desc_base:#x}, which", h.bitmap_blocks), bitmap_at, len));
        }
        // A flattened stream's bitmaps are copied out; bound the copy by what the file could hold.
        if flattened && 2 * half > (bytes.len() as u64).saturating_add(16 << 20) {
            return Err(Error::bad(format!("kdump: {} bitmap blocks are more than the file could hold", h.bitmap_blocks)));
        }
        let bitmap = |at: u64| -> Result<Bits> {
            if !flattened {
                return Ok(Bits::InFile { offset: at as usize, len: half as usize });
            }
            Ok(Bits::Owned(read(&container, at, half as usize, "bitmap")?))
        };
        let (bitmap1, bitmap2) = (bitmap(bitmap_at)?, bitmap(bitmap_at + half)?);
        let pfn_limit = h.max_mapnr.min(half * 8);

        let (b1, b2) = (bitmap1.bytes(bytes), bitmap2.bytes(bytes));
        let mut ranks = Vec::with_capacity(pfn_limit.div_ceil(RANK_BLOCK_BITS) as usize + 1);
        let mut total = 0u64;
        let mut excluded = 0u64;
        let words_per_block = RANK_BLOCK_BITS / 64;
        for w in 0..pfn_limit.div_ceil(64) {
            if w % words_per_block == 0 {
                ranks.push(total);
            }
            let mut mask = u64::MAX;
            if (w + 1) * 64 > pfn_limit {
                mask = (1u64 << (pfn_limit % 64)) - 1;
            }
            let (one, two) = (word(b1, w) & mask, word(b2, w) & mask);
            total += two.count_ones() as u64;
            excluded += (one & !two).count_ones() as u64;
        }
        let ranges = runs(b1, pfn_limit);
        let dumped_ranges = runs(b2, pfn_limit);

        let mut kd = Kdump {
            container,
            header: h,
            flattened,
            bitmap1,
            bitmap2,
            pfn_limit,
            ranks,
            total_set: total,
            first_rank: 0,
            desc_base,
            dumped_pages: total,
            excluded_pages: excluded,
            ranges,
            dumped_ranges,
            vmcoreinfo: None,
            notes: CoreNotes::default(),
            raw_notes: Vec::new(),
            missing_bytes: 0,
            warnings: Vec::new(),
        };
        if let Some((start, end)) = kd.header.split {
            kd.first_rank = kd.rank_in(bytes, start.min(pfn_limit));
            kd.dumped_pages = kd.rank_in(bytes, end.min(pfn_limit)) - kd.first_rank;
        }
        if kd.ranges.is_empty() {
            return Err(Error::bad("kdump: the 1st bitmap marks no memory at all"));
        }

        // VMCOREINFO and the ELF notes the sub-header points to.
        if kd.header.header_version >= 3 {
            let (at, size) = (q(raw::KH_OFFSET_VMCOREINFO), q(raw::KH_SIZE_VMCOREINFO));
            if at != 0 && size != 0 {
                if size > MAX_VMCOREINFO {
                    return Err(Error::bad(format!("kdump: VMCOREINFO of {size} bytes is absurd")));
                }
                let text = read(&kd.container, at, size as usize, "VMCOREINFO")?;
                kd.vmcoreinfo = Some(c_string(&text));
            }
        }
        if kd.header.header_version >= 4 {
            let (at, size) = (q(raw::KH_OFFSET_NOTE), q(raw::KH_SIZE_NOTE));
            if at != 0 && size != 0 {
                if size > MAX_NOTES {
                    return Err(Error::bad(format!("kdump: {size} bytes of ELF notes is absurd")));
                }
                let notes = read(&kd.container, at, size as usize, "ELF notes")?;
                elfcore::parse_notes(&notes, at, &mut kd.notes).map_err(|e| e.context("kdump"))?;
                kd.raw_notes = notes;
            }
        }
        if kd.vmcoreinfo.is_none() {
            kd.vmcoreinfo = kd.notes.vmcoreinfo.clone();
        }
        kd.notes.vmcoreinfo = kd.vmcoreinfo.clone();

        // Truncation: the descriptor table and the last page's data must fit.
        let desc_end = desc_base.saturating_add(kd.dumped_pages.saturating_mul(raw::PD_LEN));
        if desc_end > len {
            missing += desc_end - len;
            warnings.push(format!("kdump: the page descriptors end at {desc_end:#x}, past the end of the dump ({len} bytes): truncated"));
        } else if kd.dumped_pages > 0 {
            let mut d = [0u8; raw::PD_LEN as usize];
            if kd.container.read(bytes, desc_end - raw::PD_LEN, &mut d).is_ok() {
                // (a descriptor of absurd size is damage, reported when its page is read, not a sign of truncation)
                let size = le_u32(&d, raw::PD_SIZE).unwrap_or(0);
                let data_end = le_u64(&d, raw::PD_OFFSET).unwrap_or(0).saturating_add(size as u64);
                if data_end > len && missing == 0 && size as usize <= PAGE {
                    missing = data_end - len;
                    warnings.push(format!("kdump: the last page's data ends at {data_end:#x}, past the end of the dump ({len} bytes): truncated"));
                }
            }
        }
        // A dump cut short (a copy interrupted, a disk full) is refused with what is missing; one that makedumpfile
        // itself marked incomplete (it ran out of space and said so) is read for what it holds, with a warning.
        if kd.header.status & raw::DUMP_DH_COMPRESSED_INCOMPLETE != 0 {
            warnings.push("kdump: the dump is marked incomplete (makedumpfile ran out of space): later pages are missing".into());
        } else if let Some(first) = warnings.first() {
            let more = if missing > 0 { format!(" ({missing} bytes missing)") } else { String::new() };
            return Err(Error::bad(format!("{first}{more}; the file was cut short (an interrupted copy?)")));
        }
        kd.missing_bytes = missing;
        kd.warnings = warnings;
        Ok(kd)
    }

    /// Guest-physical memory the dump describes (the 1st bitmap).
    pub fn ranges(&self) -> &[PhysRange] {
        &self.ranges
    }

    /// Memory the dump holds pages for (the 2nd bitmap).
    pub fn dumped_ranges(&self) -> &[PhysRange] {
        &self.dumped_ranges
    }

    /// True when every page left out is a zero page (dump level 1 only): those read as zeros, exactly.
    fn zero_pages_only_excluded(&self) -> bool {
        self.header.dump_level == Some(1)
    }

    /// What the dump level leaves out, in makedumpfile's words.
    pub fn dump_level_text(&self) -> Option<String> {
        let level = self.header.dump_level?;
        let parts: Vec<&str> = DUMP_LEVEL_BITS.iter().filter(|(b, _)| level & b != 0).map(|(_, n)| *n).collect();
        Some(if parts.is_empty() { format!("dump level {level}: nothing excluded") } else { format!("dump level {level}: {} pages excluded", parts.join(", ")) })
    }

    /// Compression named by the header's status flags.
    pub fn compression(&self) -> &'static str {
        let s = self.header.status;
        if s & raw::DUMP_DH_COMPRESSED_ZSTD != 0 {
            "zstd"
        } else if s & raw::DUMP_DH_COMPRESSED_SNAPPY != 0 {
            "snappy"
        } else if s & raw::DUMP_DH_COMPRESSED_LZO != 0 {
            "lzo"
        } else if s & raw::DUMP_DH_COMPRESSED_ZLIB != 0 {
            "zlib"
        } else {
            "uncompressed"
        }
    }

    /// One line for `kernel`'s layout field.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{} header v{}, {} pages, {} of {} pages in the dump",
            if self.flattened { "flattened stream," } else { "standard file," },
            self.header.header_version,
            self.compression(),
            self.dumped_pages,
            self.dumped_pages + self.excluded_pages,
        );
        if let Some(t) = self.dump_level_text() {
            s.push_str(&format!(", {t}"));
        }
        if self.header.status & raw::DUMP_DH_EXCLUDED_VMEMMAP != 0 {
            s.push_str(", unused vmemmap excluded");
        }
        if let Some((a, b)) = self.header.split {
            s.push_str(&format!(", split part holding pfns {a:#x}..{b:#x}"));
        }
        s
    }

    /// Read one page (pfn) of guest memory into `out` (PAGE bytes).
    pub fn read_page(&self, bytes: &[u8], pfn: u64, out: &mut [u8]) -> Result<()> {
        let addr = pfn.wrapping_mul(PAGE as u64);
        if out.len() != PAGE {
            return Err(Error::bad("kdump: page buffer of the wrong size"));
        }
        if pfn >= self.pfn_limit || !bit(self.bitmap1.bytes(bytes), pfn) {
            return Err(Error::fault(addr, "physical read (not in the dump's memory map)"));
        }
        if !bit(self.bitmap2.bytes(bytes), pfn) {
            if self.zero_pages_only_excluded() {
                out.fill(0);
                return Ok(());
            }
            let level = self.header.dump_level.unwrap_or(0);
            return Err(Error::excluded(addr, format!("makedumpfile -d {level}")));
        }
        if let Some((start, end)) = self.header.split {
            if pfn < start || pfn >= end {
                return Err(Error::fault(addr, format!("page of pfn {pfn:#x} is in another file of this split dump")));
            }
        }
        let index = self.rank_in(bytes, pfn) - self.first_rank;
        let at = index
            .checked_mul(raw::PD_LEN)
            .and_then(|o| o.checked_add(self.desc_base))
            .ok_or_else(|| Error::bad(format!("kdump: page descriptor of pfn {pfn:#x} is out of range")))?;
        let mut d = [0u8; raw::PD_LEN as usize];
        self.container.read(bytes, at, &mut d).map_err(|PastEnd(end)| {
            Error::fault(addr, format!("kdump: the page descriptor of pfn {pfn:#x} lies past the end of the dump ({end} bytes): truncated"))
        })?;
        let offset = le_u64(&d, raw::PD_OFFSET).unwrap_or(0);
        let size = le_u32(&d, raw::PD_SIZE).unwrap_or(0);
        let flags = le_u32(&d, raw::PD_FLAGS).unwrap_or(0);
        if size == 0 || size as usize > PAGE {
            return Err(Error::bad(format!("kdump: the page descriptor of pfn {pfn:#x} (at {at:#x}) gives an absurd size of {size} bytes for a {PAGE}-byte page")));
        }
        if offset == 0 && self.header.status & raw::DUMP_DH_COMPRESSED_INCOMPLETE != 0 {
            return Err(Error::fault(addr, format!("kdump: pfn {pfn:#x} was not written (the dump is incomplete)")));
        }
        let mut gathered = [0u8; PAGE];
        let src: &[u8] = match self.container.slice(bytes, offset, size as usize) {
            Some(s) => s,
            None => {
                let g = &mut gathered[..size as usize];
                self.container.read(bytes, offset, g).map_err(|PastEnd(end)| {
                    Error::fault(addr, format!("kdump: the data of pfn {pfn:#x} lies past the end of the dump ({end} bytes): truncated"))
                })?;
                g
            }
        };
        decompress(flags, src, out).map_err(|why| Error::bad(format!("kdump: page of pfn {pfn:#x} (data at {offset:#x}): {why}")))
    }

    /// Set bits of the 2nd bitmap below `pfn` (a pfn's descriptor index when its bit is set).
    fn rank_in(&self, bytes: &[u8], pfn: u64) -> u64 {
        let bits = self.bitmap2.bytes(bytes);
        let block = pfn / RANK_BLOCK_BITS;
        let mut n = self.ranks.get(block as usize).copied().unwrap_or(self.total_set);
        let first_word = block * (RANK_BLOCK_BITS / 64);
        for w in first_word..pfn / 64 {
            n += word(bits, w).count_ones() as u64;
        }
        if pfn % 64 != 0 {
            n += (word(bits, pfn / 64) & ((1u64 << (pfn % 64)) - 1)).count_ones() as u64;
        }
        n
    }

    /// The page's compression, as the descriptor's flags say (for statistics; None when not dumped).
    pub fn page_flags(&self, bytes: &[u8], pfn: u64) -> Option<u32> {
        if pfn >= self.pfn_limit || !bit(self.bitmap2.bytes(bytes), pfn) {
            return None;
        }
        let index = self.rank_in(bytes, pfn).checked_sub(self.first_rank)?;
        let mut d = [0u8; raw::PD_LEN as usize];
        self.container.read(bytes, self.desc_base.checked_add(index.checked_mul(raw::PD_LEN)?)?, &mut d).ok()?;
        le_u32(&d, raw::PD_FLAGS)
    }
}

/// Pages kept decompressed: 8 MiB, whatever the dump's size.
const CACHE_PAGES: usize = 2048;

/// A kdump-compressed dump as guest-physical memory: a page is decompressed when first read and kept in a
/// small LRU cache; a read of a whole page bypasses the cache (bulk reads would only evict the hot pages).
pub struct KdumpRam {
    image: Image,
    pub kdump: Kdump,
    cache: Mutex<PageCache>,
}

impl std::fmt::Debug for KdumpRam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KdumpRam").field("header", &self.kdump.header).finish()
    }
}

/// Give a fault the address actually read (the source reports the page's first byte).
fn at_address(e: Error, at: u64) -> Error {
    match e {
        Error::Fault { what, .. } => Error::Fault { addr: at, what },
        other => other,
    }
}

impl KdumpRam {
    /// A dump file mapped read-only.
    pub fn new(map: Mmap) -> Result<KdumpRam> {
        // Indexing a flattened stream touches a page of the map per record header (one per 16 KiB QEMU wrote), and
        // the kernel maps the cached pages around each: all of a 180 MB dump of a 16 GiB guest became resident
        // (167 MB peak for `ps`). Give pages back as the index moves on, and all of them once parsed, so what
        // stays resident is what the walkers read, whatever the dump's size.
        // SAFETY (both): the map is read-only and private, and nothing borrowed from the released range is in use
        // (the scan has moved past it; parse returns owned data): MADV_DONTNEED only drops our page-table
        // entries, and a later read faults the same file bytes back in.
        let release = |from: usize, to: usize| {
            let _ = unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, from, to.saturating_sub(from)) };
        };
        let kdump = Kdump::parse_releasing(&map, &release)?;
        let _ = unsafe { map.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
        Ok(KdumpRam { image: Image::Map(map), kdump, cache: Mutex::new(PageCache::new(CACHE_PAGES)) })
    }

    /// A dump already in memory (fuzzing, tests): read exactly as the same bytes in a file would be.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<KdumpRam> {
        let kdump = Kdump::parse(&bytes)?;
        Ok(KdumpRam { image: Image::Owned(bytes), kdump, cache: Mutex::new(PageCache::new(CACHE_PAGES)) })
    }

    /// Bytes of the dump file.
    pub fn file_len(&self) -> u64 {
        self.image.bytes().len() as u64
    }

    /// (hits, misses) of the page cache so far.
    pub fn cache_stats(&self) -> (u64, u64) {
        let c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        (c.hits, c.misses)
    }
}

impl PhysicalMemory for KdumpRam {
    fn read_phys(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let at = addr.checked_add(done as u64).ok_or_else(|| Error::fault(addr, "physical read wraps around"))?;
            let pfn = at / PAGE as u64;
            let within = (at % PAGE as u64) as usize;
            let n = (PAGE - within).min(buf.len() - done);
            let dst = &mut buf[done..done + n];
            {
                let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(page) = cache.get(pfn) {
                    dst.copy_from_slice(&page[within..within + n]);
                    done += n;
                    continue;
                }
            }
            if n == PAGE {
                self.kdump.read_page(self.image.bytes(), pfn, dst).map_err(|e| at_address(e, at))?;
            } else {
                let mut page = [0u8; PAGE];
                self.kdump.read_page(self.image.bytes(), pfn, &mut page).map_err(|e| at_address(e, at))?;
                dst.copy_from_slice(&page[within..within + n]);
                self.cache.lock().unwrap_or_else(|p| p.into_inner()).insert(pfn, &page);
            }
            done += n;
        }
        Ok(())
    }

    fn phys_slice(&self, addr: u64, _len: usize) -> Result<&[u8]> {
        Err(Error::fault(addr, "kdump pages are compressed: no zero-copy view (read_phys copies)"))
    }

    fn ranges(&self) -> &[PhysRange] {
        self.kdump.ranges()
    }

    fn scan_ranges(&self) -> Vec<PhysRange> {
        self.kdump.dumped_ranges().to_vec()
    }
}

/// Decompress one page as its descriptor's flags say; the result must be exactly one page.
fn decompress(flags: u32, src: &[u8], out: &mut [u8]) -> std::result::Result<(), String> {
    const KNOWN: u32 = raw::DUMP_DH_COMPRESSED_ZLIB | raw::DUMP_DH_COMPRESSED_LZO | raw::DUMP_DH_COMPRESSED_SNAPPY | raw::DUMP_DH_COMPRESSED_ZSTD;
    let method = flags & KNOWN;
    if flags & !KNOWN != 0 || method.count_ones() > 1 {
        return Err(format!("unknown compression flags {flags:#x}"));
    }
    let n = match method {
        0 => {
            if src.len() != out.len() {
                return Err(format!("an uncompressed page of {} bytes", src.len()));
            }
            out.copy_from_slice(src);
            out.len()
        }
        raw::DUMP_DH_COMPRESSED_ZLIB => miniz_oxide::inflate::decompress_slice_iter_to_slice(out, std::iter::once(src), true, false)
            .map_err(|e| format!("zlib data does not inflate ({e:?})"))?,
        raw::DUMP_DH_COMPRESSED_LZO => lzo::decompress_into(src, out).map_err(|e| format!("bad LZO data ({e})"))?,
        raw::DUMP_DH_COMPRESSED_SNAPPY => {
            let len = snap::raw::decompress_len(src).map_err(|e| format!("bad snappy data ({e})"))?;
            if len != out.len() {
                return Err(format!("snappy data of {len} bytes, not a page"));
            }
            snap::raw::Decoder::new().decompress(src, out).map_err(|e| format!("bad snappy data ({e})"))?
        }
        _ => {
            let mut input = src;
            let mut dec = ruzstd::decoding::StreamingDecoder::new(&mut input).map_err(|e| format!("bad zstd data ({e})"))?;
            dec.read_exact(out).map_err(|e| format!("bad zstd data ({e})"))?;
            let mut more = [0u8; 1];
            if matches!(dec.read(&mut more), Ok(n) if n > 0) {
                return Err("zstd data of more than a page".into());
            }
            out.len()
        }
    };
    if n != out.len() {
        return Err(format!("decompresses to {n} bytes, not a {}-byte page", out.len()));
    }
    Ok(())
}

/// What `parse_kdump` found: enough for a fuzzer to drive every path, and for a test to check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KdumpSummary {
    pub flattened: bool,
    pub header_version: i32,
    pub dump_level: Option<i32>,
    pub max_mapnr: u64,
    pub dumped_pages: u64,
    pub excluded_pages: u64,
    pub has_vmcoreinfo: bool,
    /// Pages read back (at most `MAX_SUMMARY_PAGES`, in pfn order) and how many of them failed.
    pub pages_read: u64,
    pub pages_failed: u64,
    pub counts: PageCounts,
    pub missing_bytes: u64,
}

const MAX_SUMMARY_PAGES: u64 = 4096;

/// Parse a whole kdump-compressed dump held in memory and read back its first pages, counting their compressions.
/// Errors are the same one-line errors `nearfield` prints for the file.
pub fn parse_kdump(bytes: &[u8]) -> Result<KdumpSummary> {
    let kd = Kdump::parse(bytes)?;
    let mut s = KdumpSummary {
        flattened: kd.flattened,
        header_version: kd.header.header_version,
        dump_level: kd.header.dump_level,
        max_mapnr: kd.header.max_mapnr,
        dumped_pages: kd.dumped_pages,
        excluded_pages: kd.excluded_pages,
        has_vmcoreinfo: kd.vmcoreinfo.is_some(),
        missing_bytes: kd.missing_bytes,
        ..Default::default()
    };
    let mut page = vec![0u8; PAGE];
    'ranges: for r in kd.dumped_ranges() {
        for pfn in r.start / PAGE as u64..(r.start + r.len) / PAGE as u64 {
            if s.pages_read >= MAX_SUMMARY_PAGES {
                break 'ranges;
            }
            s.pages_read += 1;
            match kd.read_page(bytes, pfn, &mut page) {
                Ok(()) => match kd.page_flags(bytes, pfn).unwrap_or(0) {
                    raw::DUMP_DH_COMPRESSED_ZLIB => s.counts.zlib += 1,
                    raw::DUMP_DH_COMPRESSED_LZO => s.counts.lzo += 1,
                    raw::DUMP_DH_COMPRESSED_SNAPPY => s.counts.snappy += 1,
                    raw::DUMP_DH_COMPRESSED_ZSTD => s.counts.zstd += 1,
                    _ => s.counts.raw += 1,
                },
                Err(_) => s.pages_failed += 1,
            }
        }
    }
    Ok(s)
}

/// Build a kdump-compressed dump (for tests here and in kernel discovery, and fuzz seeds): `pages` are (pfn, bytes,
/// method) with method one of the DUMP_DH_COMPRESSED_* flags or 0; `excluded` pfns exist but are left out.
#[cfg(any(test, feature = "fuzzing"))]
pub mod build {
    use super::{bit, raw, Kdump, PAGE};
    use crate::bytes::{le_u32, le_u64};
    use crate::{Error, Result};

    /// The compression flags a page descriptor may carry.
    pub const METHODS: [u32; 5] =
        [0, raw::DUMP_DH_COMPRESSED_ZLIB, raw::DUMP_DH_COMPRESSED_LZO, raw::DUMP_DH_COMPRESSED_SNAPPY, raw::DUMP_DH_COMPRESSED_ZSTD];
    pub const STATUS_ZLIB: u32 = raw::DUMP_DH_COMPRESSED_ZLIB;
    pub const STATUS_INCOMPLETE: u32 = raw::DUMP_DH_COMPRESSED_INCOMPLETE;
    pub const DH_HEADER_VERSION: usize = raw::DH_HEADER_VERSION;
    pub const DH_STATUS: usize = raw::DH_STATUS;

    /// A real dump cut down to a small one: the first `max_pages` pages it holds from pfn `first` on, with the
    /// dump's own headers, sub-header (VMCOREINFO, notes) and still-compressed page data, as a standard file.
    /// With `first` > 0 it is one part of a `makedumpfile --split` set (the pfns below are in "another file").
    pub fn shrink(bytes: &[u8], first: u64, max_pages: usize) -> Result<Vec<u8>> {
        let kd = Kdump::parse(bytes)?;
        if kd.header.split.is_some() || (first > 0 && kd.header.header_version < 2) {
            return Err(Error::Unsupported("kdump: cannot cut a split part out of this dump".into()));
        }
        let (b1, b2) = (kd.bitmap1.bytes(bytes), kd.bitmap2.bytes(bytes));
        let mut kept = Vec::new();
        let mut end = first;
        while end < kd.pfn_limit && end - first < 1 << 22 && kept.len() < max_pages {
            if bit(b2, end) {
                kept.push(end);
            }
            end += 1;
        }
        if kept.is_empty() {
            return Err(Error::NotFound(format!("kdump: no page dumped from pfn {first:#x} on")));
        }
        let block = PAGE;
        let head_len = block * (1 + kd.header.sub_hdr_size as usize);
        let mut out = vec![0u8; head_len];
        kd.container.read(bytes, 0, &mut out).map_err(|_| Error::bad("kdump: headers past the end"))?;
        let put32 = |o: &mut Vec<u8>, at: usize, v: u32| o[at..at + 4].copy_from_slice(&v.to_le_bytes());
        let put64 = |o: &mut Vec<u8>, at: usize, v: u64| o[at..at + 8].copy_from_slice(&v.to_le_bytes());
        let bitmap_len = (end as usize).div_ceil(8).div_ceil(block).max(1) * block;
        put32(&mut out, raw::DH_BITMAP_BLOCKS, (2 * bitmap_len / block) as u32);
        put32(&mut out, raw::DH_MAX_MAPNR, end as u32);
        put32(&mut out, raw::DH_STATUS, kd.header.status & !raw::DUMP_DH_COMPRESSED_INCOMPLETE);
        let (kh, v) = (block, kd.header.header_version);
        if v >= 6 {
            put64(&mut out, kh + raw::KH_MAX_MAPNR_64, end);
        }
        if first > 0 {
            put32(&mut out, kh + raw::KH_SPLIT, 1);
            let (s, e) = if v >= 6 { (raw::KH_START_PFN_64, raw::KH_END_PFN_64) } else { (raw::KH_START_PFN, raw::KH_END_PFN) };
            put64(&mut out, kh + s, first);
            put64(&mut out, kh + e, end);
        }
        // VMCOREINFO and notes stay where they were when they lie in the sub-header; anything else is dropped.
        for (off, size) in [(raw::KH_OFFSET_VMCOREINFO, raw::KH_SIZE_VMCOREINFO), (raw::KH_OFFSET_NOTE, raw::KH_SIZE_NOTE)] {
            let (at, n) = (le_u64(&out, kh + off).unwrap_or(0), le_u64(&out, kh + size).unwrap_or(0));
            if at.checked_add(n).is_none_or(|e| e > head_len as u64) {
                put64(&mut out, kh + off, 0);
                put64(&mut out, kh + size, 0);
            }
        }
        for bits in [b1, b2] {
            let mut bm = vec![0u8; bitmap_len];
            for pfn in 0..end {
                if bit(bits, pfn) {
                    bm[pfn as usize / 8] |= 1 << (pfn % 8);
                }
            }
            out.extend(bm);
        }
        let mut data_at = (out.len() + kept.len() * raw::PD_LEN as usize) as u64;
        let (mut descs, mut data) = (Vec::new(), Vec::new());
        for &pfn in &kept {
            let at = kd.desc_base + (kd.rank_in(bytes, pfn) - kd.first_rank) * raw::PD_LEN;
            let mut d = [0u8; raw::PD_LEN as usize];
            kd.container.read(bytes, at, &mut d).map_err(|_| Error::bad(format!("kdump: descriptor of pfn {pfn:#x} past the end")))?;
            let size = le_u32(&d, raw::PD_SIZE).unwrap_or(0) as usize;
            let mut page = vec![0u8; size.min(PAGE)];
            kd.container.read(bytes, le_u64(&d, raw::PD_OFFSET).unwrap_or(0), &mut page).map_err(|_| Error::bad(format!("kdump: data of pfn {pfn:#x} past the end")))?;
            d[raw::PD_OFFSET..raw::PD_OFFSET + 8].copy_from_slice(&data_at.to_le_bytes());
            descs.extend(d);
            data_at += page.len() as u64;
            data.extend(page);
        }
        out.extend(descs);
        out.extend(data);
        Ok(out)
    }

    pub struct Spec<'a> {
        pub max_mapnr: u64,
        pub pages: Vec<(u64, Vec<u8>, u32)>,
        pub excluded: Vec<u64>,
        pub dump_level: i32,
        pub vmcoreinfo: Option<&'a str>,
        pub status: u32,
    }

    /// A page of 64-byte period as an LZO1X block: a first run of 64 literals, one M3 match at distance 64
    /// for the rest, and the end-of-stream M4 (distance 0). What lzo1x_1 would make of it, near enough.
    pub fn lzo_periodic(page: &[u8]) -> Vec<u8> {
        assert!(page.len() == PAGE && page.chunks(64).all(|c| c == &page[..64]));
        let mut out = vec![17 + 64];
        out.extend_from_slice(&page[..64]);
        let t = PAGE - 64 - 2; // M3 length is t + 2; t > 31 is 0 in the opcode, then 255s as zeros, then the rest
        out.push(0x20);
        let mut rest = t - 31;
        while rest > 255 {
            out.push(0);
            rest -= 255;
        }
        out.push(rest as u8);
        out.extend_from_slice(&((64u16 - 1) << 2).to_le_bytes());
        out.extend_from_slice(&[0x11, 0, 0]);
        out
    }

    pub fn compress(method: u32, page: &[u8]) -> Vec<u8> {
        match method {
            raw::DUMP_DH_COMPRESSED_ZLIB => miniz_oxide::deflate::compress_to_vec_zlib(page, 1),
            raw::DUMP_DH_COMPRESSED_LZO => lzo_periodic(page),
            raw::DUMP_DH_COMPRESSED_SNAPPY => snap::raw::Encoder::new().compress_vec(page).unwrap(),
            raw::DUMP_DH_COMPRESSED_ZSTD => ruzstd::encoding::compress_to_vec(page, ruzstd::encoding::CompressionLevel::Fastest),
            _ => page.to_vec(),
        }
    }

    /// The standard ("KDUMP   ") file.
    pub fn standard(s: &Spec) -> Vec<u8> {
        let block = PAGE;
        let bitmap_len = (s.max_mapnr as usize).div_ceil(8).div_ceil(block) * block;
        let mut notes = Vec::new();
        if let Some(v) = s.vmcoreinfo {
            let mut desc = v.as_bytes().to_vec();
            desc.push(0);
            notes.extend(11u32.to_le_bytes());
            notes.extend((desc.len() as u32).to_le_bytes());
            notes.extend(0u32.to_le_bytes());
            notes.extend(b"VMCOREINFO\0\0");
            notes.extend(&desc);
            notes.resize(notes.len().div_ceil(4) * 4, 0);
        }
        let sub_hdr_size = (raw::KH_LEN + notes.len()).div_ceil(block);
        let mut out = vec![0u8; block * (1 + sub_hdr_size) + 2 * bitmap_len];
        out[..8].copy_from_slice(raw::KDUMP_SIGNATURE);
        let put32 = |o: &mut Vec<u8>, at: usize, v: u32| o[at..at + 4].copy_from_slice(&v.to_le_bytes());
        let put64 = |o: &mut Vec<u8>, at: usize, v: u64| o[at..at + 8].copy_from_slice(&v.to_le_bytes());
        put32(&mut out, raw::DH_HEADER_VERSION, 6);
        out[raw::DH_UTSNAME + 2 * raw::UTS_FIELD_LEN..][..5].copy_from_slice(b"6.1.0");
        put32(&mut out, raw::DH_STATUS, s.status);
        put32(&mut out, raw::DH_BLOCK_SIZE, block as u32);
        put32(&mut out, raw::DH_SUB_HDR_SIZE, sub_hdr_size as u32);
        put32(&mut out, raw::DH_BITMAP_BLOCKS, (2 * bitmap_len / block) as u32);
        put32(&mut out, raw::DH_MAX_MAPNR, s.max_mapnr as u32);
        put32(&mut out, raw::DH_NR_CPUS, 1);
        let kh = block;
        put32(&mut out, kh + raw::KH_DUMP_LEVEL, s.dump_level as u32);
        put64(&mut out, kh + raw::KH_MAX_MAPNR_64, s.max_mapnr);
        if !notes.is_empty() {
            let note_at = kh + raw::KH_LEN;
            out[note_at..note_at + notes.len()].copy_from_slice(&notes);
            put64(&mut out, kh + raw::KH_OFFSET_NOTE, note_at as u64);
            put64(&mut out, kh + raw::KH_SIZE_NOTE, notes.len() as u64);
            put64(&mut out, kh + raw::KH_OFFSET_VMCOREINFO, (note_at + 12 + 12) as u64);
            put64(&mut out, kh + raw::KH_SIZE_VMCOREINFO, s.vmcoreinfo.unwrap().len() as u64);
        }
        let bm1 = block * (1 + sub_hdr_size);
        let bm2 = bm1 + bitmap_len;
        let mut pages = s.pages.clone();
        pages.sort_by_key(|p| p.0);
        for &(pfn, _, _) in &pages {
            out[bm1 + pfn as usize / 8] |= 1 << (pfn % 8);
            out[bm2 + pfn as usize / 8] |= 1 << (pfn % 8);
        }
        for &pfn in &s.excluded {
            out[bm1 + pfn as usize / 8] |= 1 << (pfn % 8);
        }
        let desc_at = out.len();
        let mut data_at = desc_at + pages.len() * raw::PD_LEN as usize;
        let mut descs = Vec::new();
        let mut data = Vec::new();
        for (_, bytes, method) in &pages {
            let c = compress(*method, bytes);
            descs.extend((data_at as u64).to_le_bytes());
            descs.extend((c.len() as u32).to_le_bytes());
            descs.extend(method.to_le_bytes());
            descs.extend(0u64.to_le_bytes());
            data_at += c.len();
            data.extend(c);
        }
        out.extend(descs);
        out.extend(data);
        out
    }

    /// The same dump as a flattened stream: records of at most `chunk` bytes, written in `order`
    /// (a permutation of chunk indices; None = in order), ending with the -1/-1 marker.
    pub fn flattened(standard: &[u8], chunk: usize, order: Option<Vec<usize>>) -> Vec<u8> {
        let mut out = vec![0u8; raw::FLAT_HEADER_LEN as usize];
        out[..12].copy_from_slice(raw::FLAT_SIGNATURE);
        out[raw::FLAT_TYPE..raw::FLAT_TYPE + 8].copy_from_slice(&1u64.to_be_bytes());
        out[raw::FLAT_VERSION..raw::FLAT_VERSION + 8].copy_from_slice(&1u64.to_be_bytes());
        let chunks: Vec<(usize, &[u8])> = standard.chunks(chunk).enumerate().map(|(i, c)| (i * chunk, c)).collect();
        let last = chunks.len().saturating_sub(1);
        let order = order.unwrap_or_else(|| (0..chunks.len()).collect());
        for i in order {
            let (at, c) = chunks[i];
            if i != last && c.iter().all(|&b| b == 0) {
                continue; // gaps read as zeros, as QEMU leaves unwritten bitmap blocks
            }
            record(&mut out, at as u64, c);
        }
        out.extend((-1i64).to_be_bytes());
        out.extend((-1i64).to_be_bytes());
        out
    }

    pub fn record(out: &mut Vec<u8>, at: u64, data: &[u8]) {
        out.extend(at.to_be_bytes());
        out.extend((data.len() as u64).to_be_bytes());
        out.extend(data);
    }

    /// A page whose bytes say which pfn it is: 64 bytes (the pfn, then a pattern) repeated.
    pub fn page_of(pfn: u64) -> Vec<u8> {
        let mut block = [0u8; 64];
        for (i, b) in block.iter_mut().enumerate() {
            *b = (pfn as u8).wrapping_mul(31).wrapping_add(i as u8);
        }
        block[..8].copy_from_slice(&pfn.to_le_bytes());
        block.repeat(PAGE / 64)
    }
}

#[cfg(test)]
mod tests {
    use super::build::{self, page_of, Spec};
    use super::*;
    use crate::mem::source::tests::TempFile;
    use crate::mem::source::{open_source, RamFormat};

    const ALL: [u32; 5] = [0, raw::DUMP_DH_COMPRESSED_ZLIB, raw::DUMP_DH_COMPRESSED_LZO, raw::DUMP_DH_COMPRESSED_SNAPPY, raw::DUMP_DH_COMPRESSED_ZSTD];

    /// pfns 0..40 dumped (every compression in turn), 40..48 excluded, 48..64 absent; 100..104 dumped again.
    fn spec(level: i32) -> Spec<'static> {
        let mut pages = Vec::new();
        for pfn in (0..40u64).chain(100..104) {
            pages.push((pfn, page_of(pfn), ALL[pfn as usize % ALL.len()]));
        }
        Spec {
            max_mapnr: 128,
            pages,
            excluded: (40..48).collect(),
            dump_level: level,
            vmcoreinfo: Some("OSRELEASE=6.1.0-test\nPAGESIZE=4096\n"),
            status: raw::DUMP_DH_COMPRESSED_ZLIB,
        }
    }

    fn check_reads(bytes: &[u8]) {
        let kd = Kdump::parse(bytes).unwrap();
        assert_eq!(kd.dumped_pages, 44);
        assert_eq!(kd.excluded_pages, 8);
        assert_eq!(kd.vmcoreinfo.as_deref(), Some("OSRELEASE=6.1.0-test\nPAGESIZE=4096\n"));
        assert_eq!(kd.ranges(), &[PhysRange { start: 0, len: 48 * 4096 }, PhysRange { start: 100 * 4096, len: 4 * 4096 }]);
        assert_eq!(kd.dumped_ranges(), &[PhysRange { start: 0, len: 40 * 4096 }, PhysRange { start: 100 * 4096, len: 4 * 4096 }]);
        let mut page = vec![0u8; PAGE];
        for pfn in (0..40u64).chain(100..104) {
            kd.read_page(bytes, pfn, &mut page).unwrap_or_else(|e| panic!("pfn {pfn}: {e}"));
            assert_eq!(page, page_of(pfn), "pfn {pfn}");
        }
        let e = kd.read_page(bytes, 41, &mut page).unwrap_err();
        assert!(e.is_excluded(), "{e}");
        assert_eq!(e.to_string(), "page excluded by the dump (makedumpfile -d 31) (address 0x29000)");
        let e = kd.read_page(bytes, 50, &mut page).unwrap_err();
        assert!(matches!(e, Error::Fault { addr: 0x32000, .. }) && !e.is_excluded(), "{e}");
        assert!(kd.read_page(bytes, 1 << 30, &mut page).is_err());
    }

    #[test]
    fn reads_every_compression_and_tells_excluded_from_absent() {
        let std = build::standard(&spec(31));
        check_reads(&std);
        let s = parse_kdump(&std).unwrap();
        assert_eq!(s.counts, PageCounts { zlib: 9, lzo: 9, snappy: 9, zstd: 8, raw: 9 }, "{s:?}");
        assert_eq!((s.pages_read, s.pages_failed, s.flattened), (44, 0, false));
    }

    #[test]
    fn the_flattened_stream_reads_like_the_standard_file() {
        let std = build::standard(&spec(31));
        check_reads(&build::flattened(&std, 16384, None));
        // Records in any order, even split mid-descriptor and mid-page (1000-byte records, reversed).
        let n = std.len().div_ceil(1000);
        let flat = build::flattened(&std, 1000, Some((0..n).rev().collect()));
        check_reads(&flat);
        assert!(parse_kdump(&flat).unwrap().flattened);
    }

    #[test]
    fn indexing_a_long_flattened_stream_releases_what_it_has_read_through() {
        let std = build::standard(&spec(31));
        let mut flat = build::flattened(&std, 16384, None);
        flat.truncate(flat.len() - 16);
        // 40 MiB of later records (beyond the dump's own bytes, as a stream may carry), then the end marker.
        let filler = vec![0u8; 1 << 20];
        for k in 0..40u64 {
            build::record(&mut flat, std.len() as u64 + (k << 20), &filler);
        }
        flat.extend((-1i64).to_be_bytes());
        flat.extend((-1i64).to_be_bytes());
        let calls = std::cell::RefCell::new(Vec::new());
        let kd = Kdump::parse_releasing(&flat, &|from, to| calls.borrow_mut().push((from, to))).unwrap();
        let calls = calls.into_inner();
        assert!(!calls.is_empty());
        // from the start, in order, whole pages, never past the last record header read
        let mut at = 0;
        for &(from, to) in &calls {
            assert_eq!(from, at, "{calls:?}");
            assert!(to > from && to % 4096 == 0, "{calls:?}");
            at = to;
        }
        assert!(at as u64 >= RELEASE_STEP && at < flat.len() - (1 << 20), "{calls:?}");
        assert_eq!(kd.header.max_mapnr, Kdump::parse(&std).unwrap().header.max_mapnr);
        check_reads(&flat);
    }

    #[test]
    fn overlapping_records_resolve_to_the_last_write() {
        let std = build::standard(&spec(31));
        let mut flat = build::flattened(&std, 4096, None);
        flat.truncate(flat.len() - 16); // drop the end marker, append a rewrite, end again
        // Rewrite bytes 8..16 of pfn 0's data region with a later record: makedumpfile -R would leave these.
        let kd = Kdump::parse(&std).unwrap();
        let d = kd.desc_base as usize; // pfn 0 is uncompressed (method 0): its data is the page itself
        let data_at = le_u64(&std, d).unwrap();
        build::record(&mut flat, data_at + 8, b"REWRITE!");
        flat.extend((-1i64).to_be_bytes());
        flat.extend((-1i64).to_be_bytes());
        let kd = Kdump::parse(&flat).unwrap();
        let mut page = vec![0u8; PAGE];
        kd.read_page(&flat, 0, &mut page).unwrap();
        assert_eq!(&page[8..16], b"REWRITE!");
        assert_eq!(&page[..8], &page_of(0)[..8]);
        assert_eq!(&page[16..], &page_of(0)[16..]);
    }

    #[test]
    fn dump_level_1_leaves_out_only_zero_pages_so_they_read_as_zeros() {
        let std = build::standard(&spec(1));
        let kd = Kdump::parse(&std).unwrap();
        let mut page = vec![1u8; PAGE];
        kd.read_page(&std, 42, &mut page).unwrap();
        assert!(page.iter().all(|&b| b == 0));
    }

    #[test]
    fn opens_as_a_ram_source_with_a_bounded_cache() {
        let f = TempFile::new("kdump-src", &build::standard(&spec(31)));
        let (ram, info) = open_source(&f.0, "auto").unwrap();
        assert_eq!(info.format, Some(RamFormat::Kdump));
        assert!(info.layout.contains("dump level 31: zero, cache, private cache, user, free pages excluded"), "{}", info.layout);
        assert_eq!(info.notes.vmcoreinfo.as_deref(), Some("OSRELEASE=6.1.0-test\nPAGESIZE=4096\n"));
        assert_eq!(info.excluded_pages, 8);
        // Reads across pages and ranges, partial and whole pages.
        let mut b = vec![0u8; 3 * PAGE];
        ram.read_phys(PAGE as u64 * 5 + 100, &mut b).unwrap();
        let want: Vec<u8> = (5..9).flat_map(page_of).skip(100).take(3 * PAGE).collect();
        assert_eq!(b, want);
        let mut one = [0u8; 8];
        ram.read_phys(101 * PAGE as u64, &mut one).unwrap();
        assert_eq!(u64::from_le_bytes(one), 101);
        let e = ram.read_phys(41 * PAGE as u64 + 12, &mut one).unwrap_err();
        assert!(matches!(e, Error::Fault { addr, .. } if addr == 41 * PAGE as u64 + 12) && e.is_excluded(), "{e}");
        assert!(ram.phys_slice(0, 8).is_err());
        assert_eq!(ram.scan_ranges().len(), 2);
    }

    #[test]
    fn bad_input_is_one_clear_error_never_a_panic() {
        let std = build::standard(&spec(31));
        let kd = Kdump::parse(&std).unwrap();
        let desc = kd.desc_base as usize;
        // A descriptor with an absurd size.
        let mut bad = std.clone();
        bad[desc + raw::PD_SIZE..desc + raw::PD_SIZE + 4].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        let mut page = vec![0u8; PAGE];
        let e = Kdump::parse(&bad).unwrap().read_page(&bad, 0, &mut page).unwrap_err();
        assert!(e.to_string().contains("absurd size of 4294967280 bytes"), "{e}");
        // Unknown compression.
        let mut bad = std.clone();
        bad[desc + raw::PD_FLAGS..desc + raw::PD_FLAGS + 4].copy_from_slice(&0x40u32.to_le_bytes());
        let e = Kdump::parse(&bad).unwrap().read_page(&bad, 0, &mut page).unwrap_err();
        assert!(e.to_string().contains("unknown compression flags 0x40"), "{e}");
        // Bitmaps past the end of the file.
        let mut bad = std.clone();
        bad[raw::DH_BITMAP_BLOCKS..raw::DH_BITMAP_BLOCKS + 4].copy_from_slice(&0x100_0000u32.to_le_bytes());
        let e = Kdump::parse(&bad).unwrap_err();
        assert!(e.to_string().contains("bitmaps") && e.to_string().contains("past the end of the dump"), "{e}");
        // Truncated: the last pages' data is missing. Refused, saying so.
        let cut = &std[..std.len() - 3 * PAGE];
        let e = Kdump::parse(cut).unwrap_err();
        assert!(e.to_string().contains("truncated") && e.to_string().contains("bytes missing"), "{e}");
        // ... unless makedumpfile marked it incomplete: then what is there reads, the rest faults.
        let mut incomplete = cut.to_vec();
        incomplete[raw::DH_STATUS..raw::DH_STATUS + 4].copy_from_slice(&(1 | raw::DUMP_DH_COMPRESSED_INCOMPLETE).to_le_bytes());
        let kd = Kdump::parse(&incomplete).unwrap();
        assert!(kd.missing_bytes > 0 && kd.warnings.iter().any(|w| w.contains("incomplete")), "{:?}", kd.warnings);
        kd.read_page(&incomplete, 0, &mut page).unwrap();
        let e = kd.read_page(&incomplete, 103, &mut page).unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
        // A flattened stream cut mid-record: refused as truncated, never read as zeros.
        let flat = build::flattened(&std, 16384, None);
        let e = Kdump::parse(&flat[..flat.len() - 5000]).unwrap_err();
        assert!(e.to_string().contains("without its end marker"), "{e}");
        let e = Kdump::parse(&flat[..flat.len() - 16]).unwrap_err();
        assert!(e.to_string().contains("without its end marker"), "{e}");
        // Headers cut short.
        for n in [0, 8, 100, 4096, 4200, 8192] {
            assert!(Kdump::parse(&std[..n]).is_err(), "{n}");
        }
        assert!(matches!(Kdump::parse(b"makedumpfile"), Err(Error::BadData(_))));
    }

    /// The builder's dumps of a real guest (NEARFIELD_KDUMP_GUEST, else images/out/no5lvl-256m): every page a
    /// dump holds equals ram.raw's, taken at the same instant; pages a filtered dump left out say so.
    #[test]
    fn real_dumps_hold_the_guest_ram_page_for_page() {
        let required = std::env::var_os("NEARFIELD_KDUMP_GUEST");
        let dir = required
            .clone()
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/out/no5lvl-256m"));
        if !dir.join("kdump-zlib").is_file() {
            assert!(required.is_none(), "NEARFIELD_KDUMP_GUEST={} has no kdump-zlib: build it with images/build-guest.mjs", dir.display());
            eprintln!("skipped: no kdump dumps in {} (node images/build-guest.mjs --out {} --no5lvl)", dir.display(), dir.display());
            return;
        }
        let (ram, _) = open_source(&dir.join("ram.raw"), "auto").unwrap();
        let mut checked = 0;
        for name in ["kdump-zlib", "kdump-lzo", "kdump-snappy", "vmcore-lzo", "vmcore-d31"] {
            let Ok(bytes) = std::fs::read(dir.join(name)) else { continue };
            let kd = Kdump::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(kd.warnings.is_empty() && kd.missing_bytes == 0, "{name}: {:?}", kd.warnings);
            assert!(kd.vmcoreinfo.as_deref().is_some_and(|v| v.starts_with("OSRELEASE=")), "{name}");
            let (mut same, mut excluded) = (0u64, 0u64);
            let (mut a, mut b) = (vec![0u8; PAGE], vec![0u8; PAGE]);
            for r in kd.ranges() {
                for pfn in r.start / PAGE as u64..(r.start + r.len) / PAGE as u64 {
                    let Ok(()) = ram.read_phys(pfn * PAGE as u64, &mut a) else { continue }; // VGA/ROM: not in ram.raw
                    match kd.read_page(&bytes, pfn, &mut b) {
                        Ok(()) => {
                            assert!(a == b, "{name}: pfn {pfn:#x} differs from ram.raw");
                            same += 1;
                        }
                        Err(e) => {
                            assert!(e.is_excluded() && kd.header.dump_level.unwrap_or(0) & 1 != 0, "{name}: pfn {pfn:#x}: {e}");
                            excluded += 1;
                        }
                    }
                }
            }
            assert_eq!(excluded, if kd.header.dump_level == Some(31) { kd.excluded_pages } else { 0 }, "{name}");
            assert!(same > 10_000, "{name}: only {same} pages");
            eprintln!("{name}: {same} pages equal to ram.raw, {excluded} excluded ({})", kd.describe());
            checked += 1;
        }
        assert!(checked >= 2, "only {checked} dumps in {}", dir.display());
    }

    /// A dump cut down (fuzz seeds) holds the same pages, headers and notes; a split part faults the pfns it
    /// does not hold.
    #[test]
    fn a_shrunk_dump_holds_the_same_pages() {
        let std = build::standard(&spec(31));
        let small = build::shrink(&std, 0, 10).unwrap();
        let kd = Kdump::parse(&small).unwrap();
        assert_eq!((kd.dumped_pages, kd.header.max_mapnr), (10, 10));
        assert_eq!(kd.vmcoreinfo.as_deref(), Some("OSRELEASE=6.1.0-test\nPAGESIZE=4096\n"));
        let mut page = vec![0u8; PAGE];
        for pfn in 0..10 {
            kd.read_page(&small, pfn, &mut page).unwrap();
            assert_eq!(page, page_of(pfn), "pfn {pfn}");
        }
        let part = build::shrink(&std, 30, 12).unwrap();
        let kd = Kdump::parse(&part).unwrap();
        assert_eq!(kd.header.split, Some((30, 102)));
        assert_eq!(kd.dumped_pages, 12);
        assert_eq!(kd.excluded_pages, 8);
        for pfn in (30..40).chain(100..102) {
            kd.read_page(&part, pfn, &mut page).unwrap();
            assert_eq!(page, page_of(pfn), "pfn {pfn}");
        }
        assert!(kd.read_page(&part, 3, &mut page).unwrap_err().to_string().contains("another file"));
        assert!(build::shrink(&std, 60, 4).is_ok() && build::shrink(&std, 104, 4).is_err());
    }

    /// Every single-byte corruption and every cut of a small dump: parse_kdump answers, it never panics.
    #[test]
    fn parse_kdump_survives_corruption() {
        let small = Spec { max_mapnr: 64, pages: (0..6u64).map(|p| (p, page_of(p), ALL[p as usize % 5])).collect(), excluded: vec![9], dump_level: 31, vmcoreinfo: Some("OSRELEASE=x\n"), status: 1 };
        let std = build::standard(&small);
        let flat = build::flattened(&std, 3000, None);
        for base in [&std, &flat] {
            let mut hits = 0;
            // Every header byte, a sample of the (mostly zero) bitmaps, every 5th byte of descriptors and data.
            let desc = Kdump::parse(base).map(|k| k.desc_base as usize).unwrap_or(0).min(base.len());
            let places = (0..600).chain((4096..4300).step_by(2)).chain((4300..desc).step_by(61)).chain((desc..base.len()).step_by(5));
            for at in places.filter(|&a| a < base.len()) {
                for v in [0u8, 0xFF, 0x80, 0x01] {
                    let mut b = base.clone();
                    b[at] = v;
                    hits += parse_kdump(&b).is_ok() as usize;
                }
            }
            assert!(hits > 0);
            for n in (0..base.len()).step_by(97) {
                let _ = parse_kdump(&base[..n]);
            }
        }
    }
}
