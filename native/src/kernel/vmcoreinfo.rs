//! VMCOREINFO, as kernel/crash_core.c writes it: KEY=VALUE lines inside an ELF note named "VMCOREINFO".
//!
//! SYMBOL(x) and KERNELOFFSET are hex without 0x; OFFSET/SIZE/NUMBER/LENGTH and PAGESIZE are decimal
//! (NUMBER may be negative). The note is found by scanning guest RAM, or taken from an ELF core.

use std::collections::BTreeMap;

use memchr::memmem;

use crate::mem::PhysicalMemory;
use crate::{Error, Result};

/// Raw note layout in RAM: Elf64_Nhdr { n_namesz=11, n_descsz, n_type=0 }, "VMCOREINFO\0" padded to 12, text.
mod raw {
    pub const NOTE_NAME: &[u8] = b"VMCOREINFO\0";
    pub const NHDR_LEN: usize = 12;
    pub const NAME_PADDED: usize = 12;
    /// VMCOREINFO_BYTES is one page; allow up to 64 KiB for other page sizes and leave it there.
    pub const MAX_DESC: usize = 64 << 10;
}

const MAX_LINES: usize = 4096;
const SCAN_CHUNK: usize = 8 << 20;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Vmcoreinfo {
    pub entries: BTreeMap<String, String>,
    /// Guest-physical address of the note text, when found by scanning.
    pub phys_addr: Option<u64>,
}

impl Vmcoreinfo {
    /// Parse the note text. Lines that are not KEY=VALUE (or have odd bytes) are skipped; a text
    /// without OSRELEASE is not VMCOREINFO.
    pub fn parse(text: &str) -> Result<Vmcoreinfo> {
        let mut entries = BTreeMap::new();
        for line in text.lines().take(MAX_LINES) {
            let Some((k, v)) = line.split_once('=') else { continue };
            if k.is_empty() || k.len() > 128 || v.len() > 512 || !k.bytes().all(|b| b.is_ascii_graphic()) {
                continue;
            }
            entries.entry(k.to_string()).or_insert_with(|| v.trim().to_string());
        }
        if !entries.contains_key("OSRELEASE") {
            return Err(Error::bad("VMCOREINFO text has no OSRELEASE line"));
        }
        Ok(Vmcoreinfo { entries, phys_addr: None })
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
    }

    fn hex(&self, key: &str) -> Result<Option<u64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => u64::from_str_radix(v.trim_start_matches("0x"), 16)
                .map(Some)
                .map_err(|_| Error::bad(format!("VMCOREINFO {key}={v} is not a hex number"))),
        }
    }

    fn dec(&self, key: &str) -> Result<Option<i64>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v.parse::<i64>().map(Some).map_err(|_| Error::bad(format!("VMCOREINFO {key}={v} is not a number"))),
        }
    }

    pub fn symbol(&self, name: &str) -> Result<Option<u64>> {
        self.hex(&format!("SYMBOL({name})"))
    }
    pub fn number(&self, name: &str) -> Result<Option<i64>> {
        self.dec(&format!("NUMBER({name})"))
    }
    pub fn offset(&self, path: &str) -> Result<Option<i64>> {
        self.dec(&format!("OFFSET({path})"))
    }
    pub fn size(&self, name: &str) -> Result<Option<i64>> {
        self.dec(&format!("SIZE({name})"))
    }
    pub fn length(&self, name: &str) -> Result<Option<i64>> {
        self.dec(&format!("LENGTH({name})"))
    }
    pub fn kernel_offset(&self) -> Result<Option<u64>> {
        self.hex("KERNELOFFSET")
    }
    pub fn page_size(&self) -> Result<Option<i64>> {
        self.dec("PAGESIZE")
    }
    pub fn release(&self) -> Option<&str> {
        self.get("OSRELEASE")
    }
    pub fn build_id(&self) -> Option<&str> {
        self.get("BUILD-ID")
    }

    /// Every SYMBOL(x)=addr, for a symbol table of last resort.
    pub fn symbols(&self) -> Vec<(String, u64)> {
        self.entries
            .iter()
            .filter_map(|(k, v)| {
                let name = k.strip_prefix("SYMBOL(")?.strip_suffix(')')?;
                Some((name.to_string(), u64::from_str_radix(v, 16).ok()?))
            })
            .collect()
    }
}

/// If `hit` (offset of "VMCOREINFO\0" in `hay`) is the name of a well-formed note, return its text.
fn note_text_at(hay: &[u8], hit: usize) -> Option<(usize, &[u8])> {
    let h = hit.checked_sub(raw::NHDR_LEN)?;
    let word = |o: usize| -> Option<u32> { Some(u32::from_le_bytes(hay.get(h + o..h + o + 4)?.try_into().ok()?)) };
    let (namesz, descsz, ntype) = (word(0)?, word(4)? as usize, word(8)?);
    if namesz as usize != raw::NOTE_NAME.len() || ntype != 0 || descsz == 0 || descsz > raw::MAX_DESC {
        return None;
    }
    let at = hit + raw::NAME_PADDED;
    let desc = hay.get(at..at.checked_add(descsz)?)?;
    let desc = &desc[..desc.iter().position(|&b| b == 0).unwrap_or(desc.len())];
    desc.starts_with(b"OSRELEASE=").then_some((at, desc))
}

/// Read a VMCOREINFO note whose name starts at physical `name_addr` (as remembered by the cache).
pub fn read_note_at(phys: &dyn PhysicalMemory, text_addr: u64) -> Result<Vmcoreinfo> {
    let start = text_addr
        .checked_sub((raw::NHDR_LEN + raw::NAME_PADDED) as u64)
        .ok_or_else(|| Error::fault(text_addr, "VMCOREINFO note header"))?;
    let mut buf = vec![0u8; raw::NHDR_LEN + raw::NAME_PADDED + 4096];
    // The note may sit at the very end of RAM: read what is there.
    let mut n = buf.len();
    while phys.read_phys(start, &mut buf[..n]).is_err() {
        n = n.checked_sub(512).filter(|&n| n > raw::NHDR_LEN + raw::NAME_PADDED).ok_or_else(|| Error::fault(start, "VMCOREINFO note"))?;
    }
    let (_, text) = note_text_at(&buf[..n], raw::NHDR_LEN).ok_or_else(|| Error::NotFound(format!("no VMCOREINFO note at physical {text_addr:#x}")))?;
    let mut v = Vmcoreinfo::parse(&String::from_utf8_lossy(text))?;
    v.phys_addr = Some(text_addr);
    Ok(v)
}

/// Visit guest RAM in windows of SCAN_CHUNK bytes plus `overlap`, stepping SCAN_CHUNK, so a match that
/// straddles two windows is seen whole in the first. `visit(at, window, more)` gets the window's physical
/// start and whether a later window overlaps its tail; it returns Some to stop the scan.
fn scan_windows<T>(
    phys: &dyn PhysicalMemory,
    overlap: usize,
    mut visit: impl FnMut(u64, &[u8], bool) -> Option<T>,
) -> Result<Option<T>> {
    let mut copy = Vec::new();
    for r in phys.scan_ranges() {
        let mut at = r.start;
        let end = r.start + r.len;
        phys.prefetch(at, ((end - at) as usize).min(SCAN_CHUNK + overlap));
        while at < end {
            let len = ((end - at) as usize).min(SCAN_CHUNK + overlap);
            // read the next window ahead while this one is searched
            let next = at + SCAN_CHUNK as u64;
            if next < end {
                phys.prefetch(next, ((end - next) as usize).min(SCAN_CHUNK + overlap));
            }
            let window: &[u8] = match phys.phys_slice(at, len) {
                Ok(s) => s,
                Err(_) => {
                    copy.resize(len, 0);
                    phys.read_phys(at, &mut copy)?;
                    &copy
                }
            };
            let found = visit(at, window, at + (len as u64) < end);
            phys.release(at, SCAN_CHUNK.min(len));
            if let Some(found) = found {
                return Ok(Some(found));
            }
            at += SCAN_CHUNK as u64;
        }
    }
    Ok(None)
}

/// Scan guest RAM for the VMCOREINFO note: first at page starts only, where 4.15+ kernels put it
/// (crash_save_vmcoreinfo_init(): alloc_pages_exact(), note header at offset 0), which reads 24 bytes per page;
/// then, for older kernels whose note sat in .bss, everywhere (memchr's memmem over every byte).
pub fn scan(phys: &dyn PhysicalMemory) -> Result<Vmcoreinfo> {
    scan_after(phys, None)
}

/// The next note past the note text at `after` (None: from the start), in the same order as `scan`: a
/// caller that finds a note stale (an earlier boot's, left in RAM) asks for the one after it.
pub fn scan_after(phys: &dyn PhysicalMemory, after: Option<u64>) -> Result<Vmcoreinfo> {
    if let Some(v) = scan_page_aligned(phys, after)? {
        return Ok(v);
    }
    scan_anywhere(phys, after)
}

/// The note header as it sits at the start of its page: n_namesz = 11, n_descsz (any), n_type = 0, the name.
fn page_note(hay: &[u8], page: usize) -> Option<(usize, &[u8])> {
    let head = hay.get(page..page + raw::NHDR_LEN + raw::NAME_PADDED)?;
    if head[0..4] != [11, 0, 0, 0] || head[8..12] != [0, 0, 0, 0] || &head[12..23] != raw::NOTE_NAME {
        return None;
    }
    note_text_at(hay, page + raw::NHDR_LEN)
}

fn scan_page_aligned(phys: &dyn PhysicalMemory, after: Option<u64>) -> Result<Option<Vmcoreinfo>> {
    const PAGE: u64 = 4096;
    scan_windows(phys, raw::NHDR_LEN + raw::NAME_PADDED + raw::MAX_DESC, |at, hay, more| {
        let first = (at.div_ceil(PAGE) * PAGE - at) as usize;
        let last = if more { SCAN_CHUNK } else { hay.len() };
        for page in (first..last).step_by(PAGE as usize) {
            if let Some((text_at, text)) = page_note(hay, page).filter(|(t, _)| after.is_none_or(|a| at + *t as u64 > a)) {
                if let Ok(mut v) = Vmcoreinfo::parse(&String::from_utf8_lossy(text)) {
                    v.phys_addr = Some(at + text_at as u64);
                    return Some(v);
                }
            }
        }
        None
    })
}

fn scan_anywhere(phys: &dyn PhysicalMemory, after: Option<u64>) -> Result<Vmcoreinfo> {
    let finder = memmem::Finder::new(raw::NOTE_NAME);
    let overlap = raw::NHDR_LEN + raw::NAME_PADDED + raw::MAX_DESC;
    let found = scan_windows(phys, overlap, |at, hay, more| {
        for hit in finder.find_iter(hay) {
            if hit >= SCAN_CHUNK + raw::NHDR_LEN && more {
                break; // the next window sees it with its header
            }
            if let Some((text_at, text)) = note_text_at(hay, hit).filter(|(t, _)| after.is_none_or(|a| at + *t as u64 > a)) {
                if let Ok(mut v) = Vmcoreinfo::parse(&String::from_utf8_lossy(text)) {
                    v.phys_addr = Some(at + text_at as u64);
                    return Some(v);
                }
            }
        }
        None
    })?;
    found.ok_or_else(|| Error::NotFound("no VMCOREINFO note in guest RAM (kernel without CONFIG_CRASH_CORE?)".into()))
}

/// Scan guest RAM for the first "Linux version " banner; returns (physical address, banner line).
pub fn scan_banner(phys: &dyn PhysicalMemory, release: Option<&str>) -> Result<(u64, String)> {
    let needle = match release {
        Some(r) => format!("Linux version {r} ("),
        None => "Linux version ".to_string(),
    };
    banners(phys, &needle, 1)?.into_iter().next().ok_or_else(|| Error::NotFound("no \"Linux version\" banner in guest RAM".into()))
}

/// Up to `max` banners that look like linux_banner ("Linux version …\n\0", printable).
pub fn scan_banners(phys: &dyn PhysicalMemory, max: usize) -> Result<Vec<(u64, String)>> {
    banners(phys, "Linux version ", max)
}

fn banners(phys: &dyn PhysicalMemory, needle: &str, max: usize) -> Result<Vec<(u64, String)>> {
    let finder = memmem::Finder::new(needle.as_bytes());
    let overlap = 1024usize;
    let mut out = Vec::new();
    scan_windows(phys, overlap, |at, hay, more| {
        for hit in finder.find_iter(hay) {
            if hit >= SCAN_CHUNK && more {
                break; // the next window sees it whole
            }
            let tail = &hay[hit..hay.len().min(hit + overlap)];
            let Some(nl) = tail.iter().position(|&b| b == b'\n' || b == 0) else { continue };
            // linux_banner ends with "\n\0"; printk copies end differently. Want printable text.
            if tail[nl] == b'\n' && tail.get(nl + 1) == Some(&0) && tail[..nl].iter().all(|b| (0x20..0x7f).contains(b)) {
                out.push((at + hit as u64, String::from_utf8_lossy(&tail[..nl]).into_owned()));
                if out.len() >= max {
                    return Some(());
                }
            }
        }
        None
    })?;
    Ok(out)
}

/// VMCOREINFO text in its ELF note, as the kernel keeps it in RAM (tests and fuzz seeds).
#[cfg(any(test, feature = "fuzzing"))]
pub fn note_bytes(text: &str) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend(11u32.to_le_bytes());
    v.extend((text.len() as u32 + 1).to_le_bytes());
    v.extend(0u32.to_le_bytes());
    v.extend(b"VMCOREINFO\0\0");
    v.extend(text.as_bytes());
    v.push(0);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::paging::tests::VecMem;

    const TEXT: &str = "OSRELEASE=6.1.0-56-amd64\nBUILD-ID=abcdef0123\nPAGESIZE=4096\nSYMBOL(init_top_pgt)=ffffffff8be10000\nOFFSET(task_struct.pid)=2456\nNUMBER(phys_base)=-1048576\nKERNELOFFSET=9400000\nNUMBER(pgtable_l5_enabled)=1\n";

    #[test]
    fn parses_keys() {
        let v = Vmcoreinfo::parse(TEXT).unwrap();
        assert_eq!(v.release(), Some("6.1.0-56-amd64"));
        assert_eq!(v.build_id(), Some("abcdef0123"));
        assert_eq!(v.symbol("init_top_pgt").unwrap(), Some(0xffffffff8be10000));
        assert_eq!(v.offset("task_struct.pid").unwrap(), Some(2456));
        assert_eq!(v.number("phys_base").unwrap(), Some(-1048576));
        assert_eq!(v.kernel_offset().unwrap(), Some(0x9400000));
        assert_eq!(v.page_size().unwrap(), Some(4096));
        assert_eq!(v.symbol("nope").unwrap(), None);
        assert_eq!(v.symbols(), vec![("init_top_pgt".into(), 0xffffffff8be10000)]);
    }

    #[test]
    fn hostile_text() {
        assert!(Vmcoreinfo::parse("garbage\n\x01\x02=3\n").is_err());
        let v = Vmcoreinfo::parse("OSRELEASE=x\nSYMBOL(a)=zz\nNUMBER(b)=1e9\n=nokey\nnoeq\n").unwrap();
        assert!(v.symbol("a").is_err());
        assert!(v.number("b").is_err());
        let long = format!("OSRELEASE=x\n{}\n", "A=".repeat(100_000));
        assert!(Vmcoreinfo::parse(&long).is_ok());
    }

    #[test]
    fn scan_finds_the_note_not_the_string() {
        let mut m = VecMem::new(32 << 20);
        // A bare "VMCOREINFO\0" (the string in .rodata) first, then a bad header, then the real note
        // straddling the 8 MiB chunk boundary.
        m.0[0x1000..0x100B].copy_from_slice(b"VMCOREINFO\0");
        let mut bogus = note_bytes(TEXT);
        bogus[8] = 7; // n_type != 0
        m.0[0x2000..0x2000 + bogus.len()].copy_from_slice(&bogus);
        let note = note_bytes(TEXT);
        let at = (8 << 20) - 16;
        m.0[at..at + note.len()].copy_from_slice(&note);
        let v = scan(&m).unwrap();
        assert_eq!(v.phys_addr, Some(at as u64 + 24));
        assert_eq!(v.release(), Some("6.1.0-56-amd64"));
        let again = read_note_at(&m, at as u64 + 24).unwrap();
        assert_eq!(again, v);
        assert!(read_note_at(&m, 0x1000 + 12).is_err());
        assert!(read_note_at(&m, 3).is_err());
    }

    #[test]
    fn the_page_aligned_note_is_found_first_and_an_unaligned_one_only_without_it() {
        let mut m = VecMem::new(1 << 20);
        let old = note_bytes("OSRELEASE=unaligned\n");
        m.0[0x2010..0x2010 + old.len()].copy_from_slice(&old);
        let mut only_unaligned = VecMem::new(1 << 20);
        only_unaligned.0[0x2010..0x2010 + old.len()].copy_from_slice(&old);
        let note = note_bytes(TEXT);
        m.0[0x5000..0x5000 + note.len()].copy_from_slice(&note);
        assert_eq!(scan(&m).unwrap().phys_addr, Some(0x5000 + 24));
        assert_eq!(scan(&only_unaligned).unwrap().release(), Some("unaligned"));
    }

    #[test]
    fn scan_absent_and_banner() {
        let mut m = VecMem::new(1 << 20);
        assert!(matches!(scan(&m), Err(Error::NotFound(_))));
        let b = b"Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org) #1 SMP\n\0";
        m.0[0x500..0x500 + 20].copy_from_slice(&b[..20]); // truncated copy: skipped
        m.0[0x9000..0x9000 + b.len()].copy_from_slice(b);
        let (at, text) = scan_banner(&m, Some("6.1.0-56-amd64")).unwrap();
        assert_eq!(at, 0x9000);
        assert!(text.ends_with("#1 SMP"));
    }
}
