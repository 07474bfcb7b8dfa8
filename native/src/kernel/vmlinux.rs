//! vmlinux as an ELF64 file (System V gABI, "Sections" and "Symbol Table"): its .symtab and its .BTF section.

use std::path::Path;

use super::btf::Btf;
use super::system_map::SystemMap;
use super::Source;
use crate::bytes::{le_u16, le_u32, le_u64, need};
use crate::{Error, Result};

const SHT_SYMTAB: u32 = 2;
const STT_SECTION: u8 = 3;
const STT_FILE: u8 = 4;
const SHN_UNDEF: u16 = 0;
const SHN_ABS: u16 = 0xfff1;
/// A vmlinux has ~150k symbols; refuse a symtab claiming tens of millions.
const MAX_SYMBOLS: u64 = 8_000_000;

/// One section header (Elf64_Shdr), the fields we use.
#[derive(Debug, Clone, Copy)]
struct SectionHeader {
    name: u32,
    kind: u32,
    offset: u64,
    size: u64,
    link: u32,
    entsize: u64,
}

fn u16_at(b: &[u8], off: u64, what: &str) -> Result<u16> {
    need(usize::try_from(off).ok().and_then(|o| le_u16(b, o)), b, off, what)
}
fn u32_at(b: &[u8], off: u64, what: &str) -> Result<u32> {
    need(usize::try_from(off).ok().and_then(|o| le_u32(b, o)), b, off, what)
}
fn u64_at(b: &[u8], off: u64, what: &str) -> Result<u64> {
    need(usize::try_from(off).ok().and_then(|o| le_u64(b, o)), b, off, what)
}

fn section_bytes<'a>(b: &'a [u8], sh: &SectionHeader, what: &str) -> Result<&'a [u8]> {
    let end = sh.offset.checked_add(sh.size).filter(|&e| e <= b.len() as u64).ok_or_else(|| {
        Error::bad(format!("{what} section [{:#x}, +{:#x}) is past the end of the file ({:#x})", sh.offset, sh.size, b.len()))
    })?;
    Ok(&b[sh.offset as usize..end as usize])
}

fn cstr(table: &[u8], off: u32) -> Option<&str> {
    let rest = table.get(off as usize..)?;
    let end = rest.iter().position(|&c| c == 0)?;
    std::str::from_utf8(&rest[..end]).ok()
}

/// The symbols (link-time addresses relocated by `kaslr_offset`) and, when present, the types.
pub struct Vmlinux {
    pub symbols: SystemMap,
    pub btf: Option<Btf>,
}

/// Parse an in-memory ELF64 little-endian vmlinux.
pub fn parse(b: &[u8], kaslr_offset: u64) -> Result<Vmlinux> {
    if b.get(0..4) != Some(b"\x7fELF") {
        return Err(Error::bad("not an ELF file (no \\x7fELF magic)"));
    }
    if b.get(4) != Some(&2) || b.get(5) != Some(&1) {
        return Err(Error::Unsupported("only 64-bit little-endian ELF (x86-64 vmlinux) is supported".into()));
    }
    let shoff = u64_at(b, 0x28, "e_shoff")?;
    let shentsize = u16_at(b, 0x3a, "e_shentsize")? as u64;
    let shnum = u16_at(b, 0x3c, "e_shnum")? as u64;
    let shstrndx = u16_at(b, 0x3e, "e_shstrndx")? as u64;
    if shentsize < 64 || shnum == 0 {
        return Err(Error::bad(format!("ELF has {shnum} section headers of {shentsize} bytes")));
    }
    let mut sections = Vec::with_capacity(shnum as usize);
    for i in 0..shnum {
        let at = shoff
            .checked_add(i * shentsize)
            .ok_or_else(|| Error::bad("ELF section header table offset overflows"))?;
        let what = format!("section header {i}");
        sections.push(SectionHeader {
            name: u32_at(b, at, &what)?,
            kind: u32_at(b, at + 4, &what)?,
            offset: u64_at(b, at + 24, &what)?,
            size: u64_at(b, at + 32, &what)?,
            link: u32_at(b, at + 40, &what)?,
            entsize: u64_at(b, at + 56, &what)?,
        });
    }
    let shstr = sections
        .get(shstrndx as usize)
        .ok_or_else(|| Error::bad(format!("e_shstrndx {shstrndx} is past {shnum} sections")))?;
    let shstrtab = section_bytes(b, shstr, ".shstrtab")?;

    let mut entries = Vec::new();
    if let Some(symtab) = sections.iter().find(|s| s.kind == SHT_SYMTAB) {
        let strtab_hdr = sections
            .get(symtab.link as usize)
            .ok_or_else(|| Error::bad(format!(".symtab sh_link {} is past {shnum} sections", symtab.link)))?;
        let strtab = section_bytes(b, strtab_hdr, ".strtab")?;
        let syms = section_bytes(b, symtab, ".symtab")?;
        let entsize = if symtab.entsize == 0 { 24 } else { symtab.entsize };
        if entsize < 24 {
            return Err(Error::bad(format!(".symtab entry size {entsize} is below 24")));
        }
        let count = symtab.size / entsize;
        if count > MAX_SYMBOLS {
            return Err(Error::bad(format!(".symtab claims {count} symbols")));
        }
        for i in 1..count {
            let at = i * entsize;
            let what = ".symtab entry";
            let name_off = u32_at(syms, at, what)?;
            let info = need(usize::try_from(at + 4).ok().and_then(|o| syms.get(o).copied()), syms, at + 4, what)?;
            let shndx = u16_at(syms, at + 6, what)?;
            let value = u64_at(syms, at + 8, what)?;
            let kind = info & 0xf;
            if kind == STT_SECTION || kind == STT_FILE || shndx == SHN_UNDEF || name_off == 0 {
                continue;
            }
            let Some(name) = cstr(strtab, name_off) else {
                return Err(Error::bad(format!(".symtab entry {i}: name offset {name_off:#x} is past .strtab")));
            };
            if name.is_empty() {
                continue;
            }
            let global = info >> 4 != 0;
            // nm-like letter: absolute, text/data by binding; walkers only need the address.
            let letter = if shndx == SHN_ABS { 'a' } else { 'd' };
            let letter = if global { letter.to_ascii_uppercase() } else { letter };
            entries.push((name.to_string(), letter, value));
        }
    }
    if entries.is_empty() {
        return Err(Error::NotFound("vmlinux has no .symtab symbols (stripped?)".into()));
    }
    let btf = match sections.iter().find(|s| cstr(shstrtab, s.name) == Some(".BTF")) {
        Some(sh) => Some(Btf::parse(section_bytes(b, sh, ".BTF")?.to_vec()).map_err(|e| e.context("vmlinux .BTF"))?),
        None => None,
    };
    Ok(Vmlinux { symbols: SystemMap::from_entries(entries, kaslr_offset, Source::Vmlinux), btf })
}

/// Map and parse a vmlinux file (a DWARF vmlinux is hundreds of MB: mmap, never read whole).
pub fn load(path: &Path, kaslr_offset: u64) -> Result<Vmlinux> {
    let file = std::fs::File::open(path).map_err(|e| Error::Io(format!("opening {}: {e}", path.display())))?;
    // SAFETY: read-only private mapping; a concurrent truncation could SIGBUS, as with any mmap reader.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::Io(format!("mapping {}: {e}", path.display())))?;
    parse(&map, kaslr_offset).map_err(|e| e.context(path.display()))
}

/// A small vmlinux for tests and fuzz seeds.
#[cfg(any(test, feature = "fuzzing"))]
pub mod builder {
    use super::*;
    use crate::kernel::btf::builder::sample;

    /// ELF64 with sections: null, .shstrtab, .strtab, .symtab, .BTF.
    pub fn tiny_elf(with_btf: bool) -> Vec<u8> {
        let shstrtab = b"\0.shstrtab\0.strtab\0.symtab\0.BTF\0".to_vec();
        let strtab = b"\0_text\0init_task\0__per_cpu_start\0file.c\0".to_vec();
        let mut symtab = vec![0u8; 24]; // null symbol
        let mut sym = |name: u32, info: u8, shndx: u16, value: u64| {
            let mut e = Vec::new();
            e.extend_from_slice(&name.to_le_bytes());
            e.push(info);
            e.push(0);
            e.extend_from_slice(&shndx.to_le_bytes());
            e.extend_from_slice(&value.to_le_bytes());
            e.extend_from_slice(&0u64.to_le_bytes());
            symtab.extend_from_slice(&e);
        };
        sym(1, 0x12, 1, 0xffff_ffff_8100_0000); // _text, GLOBAL FUNC
        sym(7, 0x11, 2, 0xffff_ffff_82a0_0000); // init_task, GLOBAL OBJECT
        sym(17, 0x10, 3, 0); // __per_cpu_start
        sym(33, 0x04, SHN_ABS, 0); // file symbol: skipped
        let btf = if with_btf { sample().build() } else { Vec::new() };
        let mut out = vec![0u8; 64];
        let place = |data: &[u8], out: &mut Vec<u8>| {
            let off = out.len() as u64;
            out.extend_from_slice(data);
            off
        };
        let o_shstr = place(&shstrtab, &mut out);
        let o_str = place(&strtab, &mut out);
        let o_sym = place(&symtab, &mut out);
        let o_btf = place(&btf, &mut out);
        while !out.len().is_multiple_of(8) {
            out.push(0);
        }
        let shoff = out.len() as u64;
        let sh = |name: u32, kind: u32, off: u64, size: u64, link: u32, entsize: u64| {
            let mut h = vec![0u8; 64];
            h[0..4].copy_from_slice(&name.to_le_bytes());
            h[4..8].copy_from_slice(&kind.to_le_bytes());
            h[24..32].copy_from_slice(&off.to_le_bytes());
            h[32..40].copy_from_slice(&size.to_le_bytes());
            h[40..44].copy_from_slice(&link.to_le_bytes());
            h[56..64].copy_from_slice(&entsize.to_le_bytes());
            h
        };
        let mut shs = sh(0, 0, 0, 0, 0, 0);
        shs.extend(sh(1, 3, o_shstr, shstrtab.len() as u64, 0, 0));
        shs.extend(sh(11, 3, o_str, strtab.len() as u64, 0, 0));
        shs.extend(sh(19, SHT_SYMTAB, o_sym, symtab.len() as u64, 2, 24));
        let mut n = 4u16;
        if with_btf {
            shs.extend(sh(27, 1, o_btf, btf.len() as u64, 0, 0));
            n += 1;
        }
        out.extend_from_slice(&shs);
        out[0..4].copy_from_slice(b"\x7fELF");
        out[4] = 2;
        out[5] = 1;
        out[6] = 1;
        out[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
        out[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        out[0x3c..0x3e].copy_from_slice(&n.to_le_bytes());
        out[0x3e..0x40].copy_from_slice(&1u16.to_le_bytes());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::builder::tiny_elf;
    use super::*;
    use crate::kernel::{Symbols, Types};

    #[test]
    fn reads_symtab_and_btf() {
        let v = parse(&tiny_elf(true), 0x1000_0000).unwrap();
        assert_eq!(v.symbols.source(), Source::Vmlinux);
        assert_eq!(v.symbols.len(), 3);
        assert_eq!(v.symbols.address_of("_text"), Some(0xffff_ffff_9100_0000));
        assert_eq!(v.symbols.address_of("init_task"), Some(0xffff_ffff_92a0_0000));
        assert_eq!(v.symbols.address_of("__per_cpu_start"), Some(0));
        assert_eq!(v.symbols.address_of("file.c"), None);
        let btf = v.btf.unwrap();
        assert_eq!(btf.member("task_struct", "comm").unwrap().offset, 32);
        assert!(parse(&tiny_elf(false), 0).unwrap().btf.is_none());
    }

    #[test]
    fn hostile_elves_are_refused() {
        assert_eq!(parse(b"nope", 0).err().unwrap().code(), "BAD_DATA");
        let good = tiny_elf(true);
        // Truncations anywhere never panic.
        for cut in (0..good.len()).step_by(7) {
            let _ = parse(&good[..cut], 0);
        }
        // Section header table offset past the end.
        let mut b = good.clone();
        b[0x28..0x30].copy_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(parse(&b, 0).err().unwrap().code(), "BAD_DATA");
        // .symtab link past the sections.
        let mut b = good.clone();
        let shoff = u64::from_le_bytes(b[0x28..0x30].try_into().unwrap()) as usize;
        b[shoff + 3 * 64 + 40..shoff + 3 * 64 + 44].copy_from_slice(&99u32.to_le_bytes());
        assert_eq!(parse(&b, 0).err().unwrap().code(), "BAD_DATA");
        // Huge section size.
        let mut b = good.clone();
        b[shoff + 3 * 64 + 32..shoff + 3 * 64 + 40].copy_from_slice(&(u64::MAX - 4).to_le_bytes());
        assert_eq!(parse(&b, 0).err().unwrap().code(), "BAD_DATA");
        // 32-bit ELF.
        let mut b = good;
        b[4] = 1;
        assert_eq!(parse(&b, 0).err().unwrap().code(), "UNSUPPORTED");
        assert_eq!(load(Path::new("/nonexistent/vmlinux"), 0).err().unwrap().code(), "IO");
    }
}
