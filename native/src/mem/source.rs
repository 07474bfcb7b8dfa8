//! RAM sources: a read-only mmap of the RAM file plus the map from guest-physical ranges to file offsets.
//!
//! Every uncompressed format (raw + layout, ELF core, LiME) reduces to a sorted list of segments; reads look
//! the address up, check it against what the file really holds, and copy. A sparse 16 GiB file costs one
//! mapping of address space and nothing else. kdump-compressed dumps are their own source (mem::kdump);
//! `open_source` sniffs the file and picks.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use memmap2::Mmap;

use super::elfcore::{self, CoreNotes};
use super::kdump::{self, KdumpRam};
use super::layout::{self, RawLayout};
use super::lime;
use super::{PhysRange, PhysicalMemory, Segment};
use crate::{Error, Result};

/// What kind of file the RAM came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RamFormat {
    Raw,
    ElfCore,
    Lime,
    /// kdump-compressed, standard ("KDUMP   ") or flattened ("makedumpfile") form.
    Kdump,
    KdumpFlattened,
    /// A running QEMU process, read live (mem::process).
    Process,
}

impl RamFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            RamFormat::Raw => "raw",
            RamFormat::ElfCore => "elf-core",
            RamFormat::Lime => "lime",
            RamFormat::Kdump => "kdump",
            RamFormat::KdumpFlattened => "kdump-flattened",
            RamFormat::Process => "qemu-process",
        }
    }
}

/// Facts about the source itself: format, layout assumed, notes carried, bytes missing.
#[derive(Debug, Clone, Default)]
pub struct SourceInfo {
    pub format: Option<RamFormat>,
    /// For raw files: the layout used, e.g. "qemu-pc (split 3.5 GiB)"; for others the format name.
    pub layout: String,
    /// True when the layout was guessed from the file size (`auto`).
    pub layout_guessed: bool,
    pub file_len: u64,
    /// ELF core notes (VMCOREINFO, per-vCPU QEMU state, prstatus count).
    pub notes: CoreNotes,
    /// Bytes the headers promise but the file does not hold (truncated file).
    pub missing_bytes: u64,
    /// The source's own ELF notes as stored (ELF PT_NOTE contents, a kdump's note area), for `convert`.
    pub raw_notes: Vec<u8>,
    /// Soft damage the source itself found (a truncated or incomplete dump).
    pub warnings: Vec<String>,
    /// Pages of the memory map that the dump left out (a filtered kdump).
    pub excluded_pages: u64,
}

/// The RAM file's bytes: a read-only map of the host file, or bytes already in memory (fuzzing, tests).
pub(crate) enum Image {
    Map(Mmap),
    Owned(Vec<u8>),
}

impl Image {
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Image::Map(m) => m,
            Image::Owned(v) => v,
        }
    }
}

/// Guest-physical memory backed by a mapped file.
pub struct MappedRam {
    map: Option<Image>,
    segments: Vec<Segment>,
    ranges: Vec<PhysRange>,
    /// File byte ranges that hold data (SEEK_DATA/SEEK_HOLE); None when unknown (then all of it).
    data_extents: Option<Vec<(u64, u64)>>,
    pub info: SourceInfo,
}

impl std::fmt::Debug for MappedRam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedRam").field("segments", &self.segments).field("info", &self.info).finish()
    }
}

const ELF_MAGIC: &[u8; 4] = b"\x7fELF";

/// Open a RAM file (raw, ELF core, LiME or kdump, sniffed from its first bytes) as physical memory.
pub fn open_ram(path: &Path, layout: &str) -> Result<Arc<dyn PhysicalMemory>> {
    Ok(open_source(path, layout)?.0)
}

/// Open a RAM file of any format as physical memory, with the facts about the source.
pub fn open_source(path: &Path, layout: &str) -> Result<(Arc<dyn PhysicalMemory>, SourceInfo)> {
    let (file, map, file_len) = map_file(path)?;
    if kdump::is_kdump(map.get(..map.len().min(64)).unwrap_or(&[])) {
        return Ok(kdump_source(KdumpRam::new(map)?));
    }
    let ram = MappedRam::from_map(&file, map, file_len, layout)?;
    let info = ram.info.clone();
    Ok((Arc::new(ram), info))
}

/// A RAM file of any format already in memory (fuzzing, tests), sniffed and opened exactly as `open_source`
/// opens a file with these bytes (less the file's holes, which only narrow `scan_ranges`).
pub fn source_from_bytes(bytes: Vec<u8>, layout: &str) -> Result<(Arc<dyn PhysicalMemory>, SourceInfo)> {
    if kdump::is_kdump(bytes.get(..bytes.len().min(64)).unwrap_or(&[])) {
        return Ok(kdump_source(KdumpRam::from_bytes(bytes)?));
    }
    let ram = MappedRam::from_bytes(bytes, layout)?;
    let info = ram.info.clone();
    Ok((Arc::new(ram), info))
}

/// A kdump-compressed dump as a source, with what its headers say about it.
fn kdump_source(ram: KdumpRam) -> (Arc<dyn PhysicalMemory>, SourceInfo) {
    let kd = &ram.kdump;
    let info = SourceInfo {
        format: Some(if kd.flattened { RamFormat::KdumpFlattened } else { RamFormat::Kdump }),
        layout: kd.describe(),
        layout_guessed: false,
        file_len: ram.file_len(),
        notes: kd.notes.clone(),
        missing_bytes: kd.missing_bytes,
        raw_notes: kd.raw_notes.clone(),
        warnings: kd.warnings.clone(),
        excluded_pages: kd.excluded_pages,
    };
    (Arc::new(ram), info)
}

/// True when `path` holds a raw memory file (no ELF, LiME or kdump header): only those have a layout to guess.
pub fn is_raw_file(path: &Path) -> bool {
    let mut head = [0u8; 16];
    let Ok(mut f) = File::open(path) else { return false };
    let n = std::io::Read::read(&mut f, &mut head).unwrap_or(0);
    let head = &head[..n];
    !(head.starts_with(ELF_MAGIC) || lime::is_lime(head) || kdump::is_kdump(head))
}

/// Map a RAM file read-only.
fn map_file(path: &Path) -> Result<(File, Mmap, u64)> {
    let file = File::open(path).map_err(|e| Error::Io(format!("cannot open RAM file: {e}")))?;
    let file_len = file.metadata().map_err(|e| Error::Io(format!("cannot stat RAM file: {e}")))?.len();
    if file_len == 0 {
        return Err(Error::bad("RAM file is empty"));
    }
    // SAFETY: the map is read-only and private to us; every access is checked against `file_len`
    // (the length at open), so a file that was short from the start never faults. A file
    // truncated by someone else *while* we read can still fault, as with any mmap reader.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::Io(format!("cannot mmap RAM file: {e}")))?;
    #[cfg(unix)]
    let _ = map.advise(memmap2::Advice::Random);
    Ok((file, map, file_len))
}

impl MappedRam {
    /// Open an uncompressed RAM file (raw, ELF core or LiME); kdump files go through `open_source`.
    pub fn open(path: &Path, layout_spec: &str) -> Result<MappedRam> {
        let (file, map, file_len) = map_file(path)?;
        MappedRam::from_map(&file, map, file_len, layout_spec)
    }

    /// A mapped file: laid out from its bytes, its holes (SEEK_DATA/SEEK_HOLE) from the file.
    fn from_map(file: &File, map: Mmap, file_len: u64, layout_spec: &str) -> Result<MappedRam> {
        let mut ram = MappedRam::from_image(Image::Map(map), layout_spec)?;
        ram.data_extents = data_extents(file, file_len);
        Ok(ram)
    }

    /// A RAM image already in memory, sniffed and laid out exactly as a file with these bytes would be.
    pub fn from_bytes(bytes: Vec<u8>, layout_spec: &str) -> Result<MappedRam> {
        if bytes.is_empty() {
            return Err(Error::bad("RAM file is empty"));
        }
        MappedRam::from_image(Image::Owned(bytes), layout_spec)
    }

    fn from_image(map: Image, layout_spec: &str) -> Result<MappedRam> {
        let bytes = map.bytes();
        let file_len = bytes.len() as u64;
        let head = bytes.get(..bytes.len().min(64)).unwrap_or(&[]);
        if kdump::is_kdump(head) {
            return Err(Error::Unsupported("a kdump-compressed dump is not a mappable RAM file (open it with open_source or source_from_bytes)".into()));
        }
        let (segments, info) = if head.starts_with(ELF_MAGIC) {
            let core = elfcore::parse(bytes, file_len)?;
            let info = SourceInfo {
                format: Some(RamFormat::ElfCore),
                layout: "elf-core (PT_LOAD p_paddr)".into(),
                layout_guessed: false,
                file_len,
                notes: core.notes,
                missing_bytes: core.missing_bytes,
                raw_notes: core.raw_notes,
                ..Default::default()
            };
            (core.segments, info)
        } else if lime::is_lime(head) {
            let (segments, missing) = lime::parse(bytes, file_len)?;
            let info = SourceInfo {
                format: Some(RamFormat::Lime),
                layout: "lime (range headers)".into(),
                layout_guessed: false,
                file_len,
                notes: CoreNotes::default(),
                missing_bytes: missing,
                ..Default::default()
            };
            (segments, info)
        } else {
            // A disk image given as RAM would otherwise fail later as "no VMCOREINFO": say what it is.
            if let Some(kind) = crate::disk::detect::image_kind(bytes.get(..bytes.len().min(4096)).unwrap_or(&[])) {
                return Err(Error::bad(format!("this is {kind}, not guest memory; give it with --disk")));
            }
            let raw = RawLayout::parse(layout_spec, file_len)?;
            let info = SourceInfo {
                format: Some(RamFormat::Raw),
                layout: raw.describe(),
                layout_guessed: raw.guessed,
                file_len,
                notes: CoreNotes::default(),
                missing_bytes: 0,
                ..Default::default()
            };
            (layout::segments(&raw, file_len), info)
        };
        MappedRam::from_segments(Some(map), segments, info)
    }

    /// Build from segments (checked: sorted, non-overlapping, inside the file).
    fn from_segments(map: Option<Image>, mut segments: Vec<Segment>, info: SourceInfo) -> Result<MappedRam> {
        let file_len = map.as_ref().map_or(0, |m| m.bytes().len() as u64);
        segments.retain(|s| s.len > 0);
        segments.sort_by_key(|s| s.gpa);
        for w in segments.windows(2) {
            let (a, b) = (w[0], w[1]);
            if a.gpa.checked_add(a.len).is_none_or(|end| end > b.gpa) {
                return Err(Error::bad(format!("RAM source: overlapping ranges at guest-physical {:#x}", b.gpa)));
            }
        }
        for s in &segments {
            if s.file_offset.checked_add(s.len).is_none_or(|end| end > file_len) {
                return Err(Error::bad(format!("RAM source: range at {:#x} lies past the end of the file", s.gpa)));
            }
        }
        if segments.is_empty() {
            return Err(Error::bad("RAM source holds no memory ranges"));
        }
        // Ranges as the guest sees them: neighbouring segments merged.
        let mut ranges: Vec<PhysRange> = Vec::new();
        for s in &segments {
            match ranges.last_mut() {
                Some(r) if r.start + r.len == s.gpa => r.len += s.len,
                _ => ranges.push(PhysRange { start: s.gpa, len: s.len }),
            }
        }
        Ok(MappedRam { map, segments, ranges, data_extents: None, info })
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The segment holding `addr`, if any.
    fn segment_of(&self, addr: u64) -> Option<&Segment> {
        let i = self.segments.partition_point(|s| s.gpa <= addr);
        let s = self.segments.get(i.checked_sub(1)?)?;
        (addr - s.gpa < s.len).then_some(s)
    }

    fn bytes(&self) -> &[u8] {
        self.map.as_ref().map_or(&[], Image::bytes)
    }

    /// Total bytes of guest memory held.
    pub fn total_len(&self) -> u64 {
        self.segments.iter().map(|s| s.len).sum()
    }
}

/// Most extents we track; a file more fragmented than this is scanned whole.
const MAX_EXTENTS: usize = 1 << 16;

/// The data extents of `file` (lseek SEEK_DATA/SEEK_HOLE), or None when the file system cannot say.
#[cfg(target_os = "linux")]
fn data_extents(file: &File, file_len: u64) -> Option<Vec<(u64, u64)>> {
    use std::os::unix::io::AsRawFd;
    let fd = file.as_raw_fd();
    let mut out = Vec::new();
    let mut pos: u64 = 0;
    while pos < file_len {
        // SAFETY: lseek on a descriptor we own; it only moves the file offset (the map is unaffected).
        let data = unsafe { libc::lseek(fd, pos as libc::off_t, libc::SEEK_DATA) };
        if data < 0 {
            let err = std::io::Error::last_os_error().raw_os_error();
            return if err == Some(libc::ENXIO) { Some(out) } else { None };
        }
        let hole = unsafe { libc::lseek(fd, data, libc::SEEK_HOLE) };
        if hole < 0 || hole <= data {
            return None;
        }
        out.push((data as u64, (hole as u64).min(file_len)));
        if out.len() > MAX_EXTENTS {
            return None;
        }
        pos = hole as u64;
    }
    Some(out)
}

#[cfg(not(target_os = "linux"))]
fn data_extents(_file: &File, _file_len: u64) -> Option<Vec<(u64, u64)>> {
    None
}

impl PhysicalMemory for MappedRam {
    fn scan_ranges(&self) -> Vec<PhysRange> {
        let Some(extents) = &self.data_extents else { return self.ranges.clone() };
        let mut out: Vec<PhysRange> = Vec::new();
        for s in &self.segments {
            let (fs, fe) = (s.file_offset, s.file_offset + s.len);
            let first = extents.partition_point(|&(_, end)| end <= fs);
            for &(ds, de) in extents.get(first..).unwrap_or(&[]) {
                if ds >= fe {
                    break;
                }
                let (a, b) = (ds.max(fs), de.min(fe));
                let gpa = s.gpa + (a - fs);
                match out.last_mut() {
                    Some(r) if r.start + r.len == gpa => r.len += b - a,
                    _ => out.push(PhysRange { start: gpa, len: b - a }),
                }
            }
        }
        out
    }

    fn read_phys(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let at = addr
                .checked_add(done as u64)
                .ok_or_else(|| Error::fault(addr, "physical read wraps around"))?;
            let seg = self.segment_of(at).ok_or_else(|| Error::fault(at, "physical read"))?;
            let within = at - seg.gpa;
            let n = ((seg.len - within) as usize).min(buf.len() - done);
            let off = (seg.file_offset + within) as usize;
            let src = self.bytes().get(off..off + n).ok_or_else(|| Error::fault(at, "physical read past end of file"))?;
            buf[done..done + n].copy_from_slice(src);
            done += n;
        }
        Ok(())
    }

    fn phys_slice(&self, addr: u64, len: usize) -> Result<&[u8]> {
        let seg = self.segment_of(addr).ok_or_else(|| Error::fault(addr, "physical slice"))?;
        let within = addr - seg.gpa;
        if (len as u64) > seg.len - within {
            let end = seg.gpa + seg.len;
            return Err(Error::fault(end, format!("physical slice of {len} bytes at {addr:#x} is not contiguous")));
        }
        let off = (seg.file_offset + within) as usize;
        self.bytes().get(off..off + len).ok_or_else(|| Error::fault(addr, "physical slice past end of file"))
    }

    fn ranges(&self) -> &[PhysRange] {
        &self.ranges
    }

    fn release(&self, addr: u64, len: usize) {
        let Some(Image::Map(map)) = &self.map else { return };
        // whole pages inside the range only: a neighbour's bytes stay mapped
        self.file_pages(addr, len, false, |from, to| {
            // SAFETY: the map is read-only and private: MADV_DONTNEED only drops our page-table entries to
            // the page cache; a later read faults the same file bytes back in. No slice handed out
            // earlier is still in use by then (scans release a window after visiting it).
            let _ = unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, from, to - from) };
        });
    }

    fn prefetch(&self, addr: u64, len: usize) {
        let Some(Image::Map(map)) = &self.map else { return };
        // The map is advised MADV_RANDOM (walkers hop between pages), which turns off the kernel's read-ahead:
        // a scan of a file not in the page cache would read it one 4 KiB page per fault (a dense 16 GiB file
        // took minutes). MADV_WILLNEED starts the reads of the whole window at once and returns.
        self.file_pages(addr, len, true, |from, to| {
            let _ = map.advise_range(memmap2::Advice::WillNeed, from, to - from);
        });
    }

    fn release_resident(&self) {
        #[cfg(unix)]
        if let Some(Image::Map(map)) = &self.map {
            // SAFETY: a read-only shared file mapping: MADV_DONTNEED only drops our page-table entries, and any later
            // access (also through a slice handed out earlier) faults the same file bytes back in.
            let _ = unsafe { map.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
        }
    }
}

impl MappedRam {
    /// Call `f(from, to)` with the page-aligned file byte ranges that hold guest-physical [addr, addr+len):
    /// rounded out to whole pages when `outward`, else only the pages wholly inside.
    fn file_pages(&self, addr: u64, len: usize, outward: bool, mut f: impl FnMut(usize, usize)) {
        const PAGE: u64 = 4096;
        let end = addr.saturating_add(len as u64);
        let map_len = self.map.as_ref().map_or(0, |m| m.bytes().len() as u64);
        for s in &self.segments {
            let (a, b) = (addr.max(s.gpa), end.min(s.gpa.saturating_add(s.len)));
            if a >= b {
                continue;
            }
            let (fa, fb) = (s.file_offset + (a - s.gpa), s.file_offset + (b - s.gpa));
            let (from, to) = if outward { (fa / PAGE * PAGE, fb.div_ceil(PAGE) * PAGE) } else { (fa.div_ceil(PAGE) * PAGE, fb / PAGE * PAGE) };
            let to = to.min(map_len);
            if to > from {
                f(from as usize, to as usize);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    /// A temp file with `bytes`, removed on drop.
    pub(crate) struct TempFile(pub std::path::PathBuf);
    impl TempFile {
        pub(crate) fn new(tag: &str, bytes: &[u8]) -> TempFile {
            let mut p = std::env::temp_dir();
            let n = std::sync::atomic::AtomicU64::new(0);
            p.push(format!("nearfield-test-{}-{tag}-{}-{:?}", std::process::id(), n.fetch_add(1, std::sync::atomic::Ordering::Relaxed), std::thread::current().id()));
            let mut f = File::create(&p).unwrap();
            f.write_all(bytes).unwrap();
            TempFile(p)
        }
    }
    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn raw_flat_reads_and_faults() {
        let data: Vec<u8> = (0..8192u32).map(|i| i as u8).collect();
        let f = TempFile::new("flat", &data);
        let ram = MappedRam::open(&f.0, "flat").unwrap();
        let mut b = [0u8; 4];
        ram.read_phys(0x1000, &mut b).unwrap();
        assert_eq!(b, [0, 1, 2, 3]);
        assert!(matches!(ram.read_phys(8190, &mut b), Err(Error::Fault { addr: 8192, .. })));
        assert!(matches!(ram.read_phys(u64::MAX - 1, &mut b), Err(Error::Fault { .. })));
        assert_eq!(ram.phys_slice(10, 2).unwrap(), &[10, 11]);
        assert!(ram.phys_slice(8000, 500).is_err());
        assert_eq!(ram.ranges(), &[PhysRange { start: 0, len: 8192 }]);
        // released pages read back the same
        ram.release_resident();
        ram.read_phys(0x1000, &mut b).unwrap();
        assert_eq!(b, [0, 1, 2, 3]);
    }

    #[test]
    fn empty_file_is_refused() {
        let f = TempFile::new("empty", &[]);
        assert!(matches!(MappedRam::open(&f.0, "auto"), Err(Error::BadData(_))));
    }

    #[test]
    fn a_kdump_is_not_mapped_but_opened_as_its_own_source() {
        let mut d = b"KDUMP   ".to_vec();
        d.resize(4096, 0);
        let f = TempFile::new("kdump", &d);
        assert!(matches!(MappedRam::open(&f.0, "auto"), Err(Error::Unsupported(_))));
        // A header with nothing behind it is refused as a bad kdump, not read as raw RAM.
        assert!(matches!(open_source(&f.0, "auto"), Err(Error::Unsupported(_) | Error::BadData(_))));
        assert!(!is_raw_file(&f.0));
    }

    #[test]
    fn a_kdump_in_memory_opens_as_the_file_would() {
        use crate::mem::kdump::build::{self, page_of, Spec, METHODS};
        let pages = (0..8u64).map(|p| (p, page_of(p), METHODS[p as usize % METHODS.len()])).collect();
        let spec = Spec { max_mapnr: 16, pages, excluded: vec![9], dump_level: 31, vmcoreinfo: Some("OSRELEASE=x\n"), status: 1 };
        let dump = build::flattened(&build::standard(&spec), 3000, None);
        let f = TempFile::new("kdump-bytes", &dump);
        let (file, file_info) = open_source(&f.0, "auto").unwrap();
        let (mem, mem_info) = source_from_bytes(dump, "auto").unwrap();
        assert_eq!(mem_info.format, Some(RamFormat::KdumpFlattened));
        assert_eq!((&mem_info.layout, mem_info.file_len, mem_info.excluded_pages), (&file_info.layout, file_info.file_len, 1));
        assert_eq!(mem_info.notes.vmcoreinfo.as_deref(), Some("OSRELEASE=x\n"));
        assert_eq!(mem.ranges(), file.ranges());
        let (mut a, mut b) = ([0u8; 100], [0u8; 100]);
        mem.read_phys(5 * 4096 + 7, &mut a).unwrap();
        file.read_phys(5 * 4096 + 7, &mut b).unwrap();
        assert_eq!((a, &a[..]), (b, &page_of(5)[7..107]));
        assert!(mem.read_phys(9 * 4096, &mut a).unwrap_err().is_excluded());
        // Uncompressed formats open from memory as MappedRam::from_bytes does.
        let (raw, info) = source_from_bytes(vec![7u8; 8192], "flat").unwrap();
        assert_eq!((info.format, raw.ranges()), (Some(RamFormat::Raw), &[PhysRange { start: 0, len: 8192 }][..]));
    }

    #[test]
    fn sparse_split_file_maps_high_ram_at_4g() {
        // A 4 GiB sparse file as QEMU pc RAM: 3 GiB below 4G, 1 GiB at 4 GiB. Costs no disk.
        let mut p = std::env::temp_dir();
        p.push(format!("nearfield-test-sparse-{}", std::process::id()));
        let f = File::create(&p).unwrap();
        f.set_len(4 << 30).unwrap();
        use std::os::unix::fs::FileExt;
        f.write_all_at(b"HIGH", 3 << 30).unwrap();
        f.write_all_at(b"LOW!", (3 << 30) - 4).unwrap();
        drop(f);
        let ram = MappedRam::open(&p, "qemu-pc").unwrap();
        let mut b = [0u8; 4];
        ram.read_phys(1 << 32, &mut b).unwrap();
        assert_eq!(&b, b"HIGH");
        ram.read_phys((3 << 30) - 4, &mut b).unwrap();
        assert_eq!(&b, b"LOW!");
        assert!(matches!(ram.read_phys(3 << 30, &mut b), Err(Error::Fault { addr, .. }) if addr == 3 << 30));
        assert!(ram.info.layout.contains("qemu-pc"));
        // Only the two written blocks are worth scanning (ext4/xfs/btrfs/tmpfs report holes).
        let scan = ram.scan_ranges();
        let total: u64 = scan.iter().map(|r| r.len).sum();
        assert!(total <= 1 << 20, "{scan:?}");
        assert!(scan.iter().any(|r| r.start <= 1 << 32 && (1 << 32) < r.start + r.len), "{scan:?}");

        // What release (inward) and prefetch (outward) advise: the file pages behind guest-physical ranges.
        let pages = |addr: u64, len: usize, outward: bool| {
            let mut v = Vec::new();
            ram.file_pages(addr, len, outward, |a, b| v.push((a as u64, b as u64)));
            v
        };
        const G3: u64 = 3 << 30;
        assert_eq!(pages((1 << 32) + 100, 5000, true), [(G3, G3 + 8192)]);
        assert_eq!(pages((1 << 32) + 100, 5000, false), []);
        assert_eq!(pages((1 << 32) + 4096, 8192, false), [(G3 + 4096, G3 + 12288)]);
        // across the PCI hole: the last page below it and the first above, neighbours in the file
        assert_eq!(pages(G3 - 4096, (1 << 30) + 8192, true), [(G3 - 4096, G3), (G3, G3 + 4096)]);
        // past the end of RAM: nothing beyond the map
        assert_eq!(pages((1 << 32) + (1 << 30) - 4096, 1 << 20, true), [((4 << 30) - 4096, 4 << 30)]);
        assert_eq!(pages(u64::MAX - 10, 100, true), []);
        ram.prefetch(0, usize::MAX);
        ram.release(0, usize::MAX);
        ram.read_phys(1 << 32, &mut b).unwrap();
        assert_eq!(&b, b"HIGH");
        let _ = std::fs::remove_file(&p);
    }
}
