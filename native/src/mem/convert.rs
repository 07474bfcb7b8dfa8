//! `nearfield convert`: any RAM source to an ELF64 core (ELF gABI ET_CORE; PT_NOTE then one PT_LOAD per range with
//! p_paddr = p_vaddr = guest-physical address, as QEMU's dump-guest-memory paging=false writes) or to a flat raw
//! file (file offset = guest-physical address).
//!
//! It streams: ranges are read in 1 MiB chunks and written at their place, zero pages are left as holes (sparse),
//! and memory stays bounded whatever the size. The output is created new and removed again on failure.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::elfcore::{self, CoreNotes};
use super::source::{open_source, RamFormat};
use super::{PhysRange, PhysicalMemory};
use crate::{Error, Result};

/// What to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Elf,
    Raw,
}

impl Target {
    pub fn parse(s: &str) -> Result<Target> {
        match s {
            "elf" => Ok(Target::Elf),
            "raw" => Ok(Target::Raw),
            other => Err(Error::Unsupported(format!("convert --to {other} (known: elf, raw)"))),
        }
    }
}

/// ELF64 layout constants (ELF gABI; x86-64 psABI EM_X86_64).
mod raw {
    pub const EHDR_LEN: u64 = 64;
    pub const PHDR_LEN: u64 = 56;
    pub const ET_CORE: u16 = 4;
    pub const EM_X86_64: u16 = 62;
    pub const PT_LOAD: u32 = 1;
    pub const PT_NOTE: u32 = 4;
    /// e_phnum is 16 bits; PN_XNUM (0xffff) would move the count into a section header.
    pub const MAX_PHNUM: usize = 0xfffe;
}

const PAGE: u64 = 4096;
const CHUNK: u64 = 1 << 20;

/// Progress and cancellation shared with the caller's thread.
#[derive(Default)]
pub struct ConvertControl {
    /// Bytes of guest memory handled so far, of `total`.
    pub bytes_done: AtomicU64,
    pub total: AtomicU64,
    pub cancel: AtomicBool,
}

#[derive(Debug, Clone, Default)]
pub struct ConvertStats {
    /// The input's format ("kdump-flattened", "raw", …).
    pub input_format: String,
    pub ranges: usize,
    /// Guest memory covered by the output's ranges.
    pub memory_bytes: u64,
    /// Bytes written (non-zero pages); the rest are holes.
    pub data_bytes: u64,
    /// Apparent size of the output.
    pub output_bytes: u64,
    /// Pages the input left out (a filtered kdump) and pages it could not give (truncated, corrupt): zeros in the output.
    pub excluded_pages: u64,
    pub unreadable_pages: u64,
    pub has_vmcoreinfo: bool,
    pub warnings: Vec<String>,
}

/// Convert `input` (layout spec for a raw input) into a new file `output`.
pub fn convert(input: &Path, layout: &str, output: &Path, to: Target, control: &ConvertControl) -> Result<ConvertStats> {
    let (phys, info) = open_source(input, layout)?;
    let out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(output)
        .map_err(|e| Error::Io(format!("cannot create {}: {e}", output.display())))?;
    let result = write_all(phys.as_ref(), &info, &out, to, control);
    if result.is_err() {
        drop(out);
        let _ = std::fs::remove_file(output);
    }
    result.map(|mut s| {
        s.input_format = info.format.map_or("raw", RamFormat::as_str).to_string();
        s
    })
}

fn io(e: std::io::Error) -> Error {
    Error::Io(format!("writing the output: {e}"))
}

fn write_all(phys: &dyn PhysicalMemory, info: &super::SourceInfo, out: &File, to: Target, control: &ConvertControl) -> Result<ConvertStats> {
    let ranges: Vec<PhysRange> = phys.ranges().to_vec();
    let mut stats = ConvertStats { ranges: ranges.len(), memory_bytes: ranges.iter().map(|r| r.len).sum(), ..Default::default() };
    control.total.store(stats.memory_bytes, Ordering::Relaxed);
    // Where each range goes in the output file.
    let (places, end) = match to {
        Target::Raw => (ranges.iter().map(|r| r.start).collect::<Vec<u64>>(), ranges.last().map_or(0, |r| r.start + r.len)),
        Target::Elf => {
            if ranges.len() > raw::MAX_PHNUM - 1 {
                return Err(Error::Unsupported(format!("an ELF core of {} ranges (at most {})", ranges.len(), raw::MAX_PHNUM - 1)));
            }
            let notes = notes_for(phys, info, &mut stats);
            let headers = raw::EHDR_LEN + raw::PHDR_LEN * (1 + ranges.len() as u64);
            let data_at = (headers + notes.len() as u64).div_ceil(PAGE) * PAGE;
            let mut places = Vec::with_capacity(ranges.len());
            let mut at = data_at;
            for r in &ranges {
                places.push(at);
                at += r.len;
            }
            out.write_all_at(&elf_headers(&ranges, &places, headers, notes.len() as u64), 0).map_err(io)?;
            out.write_all_at(&notes, headers).map_err(io)?;
            (places, at)
        }
    };
    stats.output_bytes = end;
    // Sparse sources (raw files with holes) read as zeros outside their data: no need to touch those pages.
    let holes_are_zero = matches!(info.format, Some(RamFormat::Raw | RamFormat::ElfCore | RamFormat::Lime) | None);
    let data = phys.scan_ranges();
    let mut buf = vec![0u8; CHUNK as usize];
    let mut first_error: Option<String> = None;
    for (r, &place) in ranges.iter().zip(&places) {
        let mut off = 0u64;
        while off < r.len {
            if control.cancel.load(Ordering::Relaxed) {
                return Err(Error::Io("conversion cancelled".into()));
            }
            let n = (r.len - off).min(CHUNK);
            let gpa = r.start + off;
            if !(holes_are_zero && !overlaps(&data, gpa, n)) {
                let chunk = &mut buf[..n as usize];
                if phys.read_phys(gpa, chunk).is_ok() {
                    stats.data_bytes += write_nonzero(out, chunk, place + off)?;
                } else {
                    // Page by page: keep what reads, count what the dump left out or lost.
                    for p in (0..n).step_by(PAGE as usize) {
                        let len = (n - p).min(PAGE) as usize;
                        let page = &mut chunk[p as usize..p as usize + len];
                        match phys.read_phys(gpa + p, page) {
                            Ok(()) => stats.data_bytes += write_nonzero(out, page, place + off + p)?,
                            Err(e) if e.is_excluded() => stats.excluded_pages += 1,
                            Err(e) => {
                                stats.unreadable_pages += 1;
                                first_error.get_or_insert_with(|| e.to_string());
                            }
                        }
                    }
                }
            }
            off += n;
            control.bytes_done.fetch_add(n, Ordering::Relaxed);
        }
    }
    out.set_len(end).map_err(io)?;
    if stats.excluded_pages > 0 {
        stats.warnings.push(format!("{} pages the dump excluded (makedumpfile -d) are zeros in the output", stats.excluded_pages));
    }
    if stats.unreadable_pages > 0 {
        stats.warnings.push(format!("{} pages could not be read and are zeros in the output (first: {})", stats.unreadable_pages, first_error.unwrap_or_default()));
    }
    stats.warnings.extend(info.warnings.iter().cloned());
    Ok(stats)
}

fn overlaps(ranges: &[PhysRange], start: u64, len: u64) -> bool {
    let i = ranges.partition_point(|r| r.start + r.len <= start);
    ranges.get(i).is_some_and(|r| r.start < start + len)
}

/// Write the non-zero pages of `chunk` at `at` (runs of them in one write); returns the bytes written.
fn write_nonzero(out: &File, chunk: &[u8], at: u64) -> Result<u64> {
    let mut written = 0u64;
    let mut run: Option<usize> = None;
    let pages = chunk.len().div_ceil(PAGE as usize);
    for i in 0..=pages {
        let page = chunk.get(i * PAGE as usize..((i + 1) * PAGE as usize).min(chunk.len()));
        let nonzero = page.is_some_and(|p| p.iter().any(|&b| b != 0));
        match (nonzero, run) {
            (true, None) => run = Some(i * PAGE as usize),
            (false, Some(s)) => {
                let e = (i * PAGE as usize).min(chunk.len());
                out.write_all_at(&chunk[s..e], at + s as u64).map_err(io)?;
                written += (e - s) as u64;
                run = None;
            }
            _ => {}
        }
    }
    Ok(written)
}

/// The source's own notes, plus a VMCOREINFO note when they lack one (found in RAM for raw inputs).
fn notes_for(phys: &dyn PhysicalMemory, info: &super::SourceInfo, stats: &mut ConvertStats) -> Vec<u8> {
    let mut notes = info.raw_notes.clone();
    let mut carried = CoreNotes::default();
    if elfcore::parse_notes(&notes, 0, &mut carried).is_err() {
        notes.clear();
        carried = CoreNotes::default();
    }
    if carried.vmcoreinfo.is_none() {
        let text = info.notes.vmcoreinfo.clone().or_else(|| {
            crate::kernel::vmcoreinfo::scan(phys).ok().map(|v| v.entries.iter().map(|(k, v)| format!("{k}={v}\n")).collect::<String>())
        });
        match text {
            Some(t) => notes.extend(note(b"VMCOREINFO", 0, t.as_bytes())),
            None => stats.warnings.push("no VMCOREINFO found: the ELF core carries no VMCOREINFO note".into()),
        }
    }
    let mut check = CoreNotes::default();
    stats.has_vmcoreinfo = elfcore::parse_notes(&notes, 0, &mut check).is_ok() && check.vmcoreinfo.is_some();
    notes
}

/// One ELF note: Elf64_Nhdr, name with its NUL, desc, each padded to 4 bytes.
fn note(name: &[u8], ty: u32, desc: &[u8]) -> Vec<u8> {
    let pad = |v: &mut Vec<u8>| v.resize(v.len().div_ceil(4) * 4, 0);
    let mut out = Vec::new();
    out.extend((name.len() as u32 + 1).to_le_bytes());
    out.extend((desc.len() as u32).to_le_bytes());
    out.extend(ty.to_le_bytes());
    out.extend(name);
    out.push(0);
    pad(&mut out);
    out.extend(desc);
    pad(&mut out);
    out
}

fn elf_headers(ranges: &[PhysRange], places: &[u64], notes_at: u64, notes_len: u64) -> Vec<u8> {
    let phnum = 1 + ranges.len();
    let mut h = vec![0u8; raw::EHDR_LEN as usize];
    h[..4].copy_from_slice(b"\x7fELF");
    h[4] = 2; // ELFCLASS64
    h[5] = 1; // ELFDATA2LSB
    h[6] = 1; // EV_CURRENT
    h[16..18].copy_from_slice(&raw::ET_CORE.to_le_bytes());
    h[18..20].copy_from_slice(&raw::EM_X86_64.to_le_bytes());
    h[20..24].copy_from_slice(&1u32.to_le_bytes());
    h[32..40].copy_from_slice(&raw::EHDR_LEN.to_le_bytes()); // e_phoff: right after the header
    h[52..54].copy_from_slice(&(raw::EHDR_LEN as u16).to_le_bytes());
    h[54..56].copy_from_slice(&(raw::PHDR_LEN as u16).to_le_bytes());
    h[56..58].copy_from_slice(&(phnum as u16).to_le_bytes());
    let mut ph = |ty: u32, offset: u64, addr: u64, len: u64| {
        let mut p = [0u8; raw::PHDR_LEN as usize];
        p[0..4].copy_from_slice(&ty.to_le_bytes());
        p[8..16].copy_from_slice(&offset.to_le_bytes());
        p[16..24].copy_from_slice(&addr.to_le_bytes()); // p_vaddr
        p[24..32].copy_from_slice(&addr.to_le_bytes()); // p_paddr
        p[32..40].copy_from_slice(&len.to_le_bytes()); // p_filesz
        p[40..48].copy_from_slice(&len.to_le_bytes()); // p_memsz
        h.extend_from_slice(&p);
    };
    ph(raw::PT_NOTE, notes_at, 0, notes_len);
    for (r, &at) in ranges.iter().zip(places) {
        ph(raw::PT_LOAD, at, r.start, r.len);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::kdump::build::{self, page_of, Spec};
    use crate::mem::source::tests::TempFile;

    fn temp_out(tag: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("nearfield-test-convert-{}-{tag}", std::process::id()))
    }

    #[test]
    fn a_filtered_kdump_becomes_an_elf_core_and_a_raw_file_that_read_the_same() {
        let mut pages: Vec<(u64, Vec<u8>, u32)> = (0..20u64).map(|p| (p, page_of(p), 1)).collect();
        pages.push((20, vec![0u8; 4096], 0)); // a zero page stays a hole
        let spec = Spec { max_mapnr: 64, pages, excluded: vec![21, 22], dump_level: 31, vmcoreinfo: Some("OSRELEASE=6.1.0-t\nPAGESIZE=4096\n"), status: 1 };
        let dump = TempFile::new("convert-in", &build::flattened(&build::standard(&spec), 5000, None));
        for to in [Target::Elf, Target::Raw] {
            let out = temp_out(&format!("{to:?}"));
            let _ = std::fs::remove_file(&out);
            let control = ConvertControl::default();
            let s = convert(&dump.0, "auto", &out, to, &control).unwrap();
            assert_eq!((s.excluded_pages, s.unreadable_pages, s.ranges), (2, 0, 1), "{s:?}");
            assert_eq!(s.data_bytes, 20 * 4096);
            assert_eq!(control.bytes_done.load(Ordering::Relaxed), 23 * 4096);
            assert!(s.warnings[0].contains("2 pages the dump excluded"), "{:?}", s.warnings);
            let (back, info) = open_source(&out, "flat").unwrap();
            let mut page = vec![0u8; 4096];
            for pfn in 0..20u64 {
                back.read_phys(pfn * 4096, &mut page).unwrap();
                assert_eq!(page, page_of(pfn));
            }
            back.read_phys(21 * 4096, &mut page).unwrap();
            assert!(page.iter().all(|&b| b == 0));
            if to == Target::Elf {
                assert_eq!(info.format, Some(RamFormat::ElfCore));
                assert_eq!(info.notes.vmcoreinfo.as_deref(), Some("OSRELEASE=6.1.0-t\nPAGESIZE=4096\n"));
                assert!(s.has_vmcoreinfo);
            } else {
                assert_eq!(std::fs::metadata(&out).unwrap().len(), 23 * 4096);
            }
            // Never overwrites: a second run refuses the existing output and leaves it alone.
            let before = std::fs::read(&out).unwrap();
            assert!(matches!(convert(&dump.0, "auto", &out, to, &ConvertControl::default()), Err(Error::Io(_))));
            assert_eq!(std::fs::read(&out).unwrap(), before);
            let _ = std::fs::remove_file(&out);
        }
    }

    #[test]
    fn a_bad_input_leaves_no_output() {
        let f = TempFile::new("convert-bad", b"KDUMP   not really");
        let out = temp_out("bad");
        let _ = std::fs::remove_file(&out);
        assert!(convert(&f.0, "auto", &out, Target::Elf, &ConvertControl::default()).is_err());
        assert!(!out.exists());
        assert!(Target::parse("vmdk").is_err());
    }
}
