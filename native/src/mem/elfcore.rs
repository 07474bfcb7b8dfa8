//! ELF64 core files as QEMU dump-guest-memory and `virsh dump --memory-only` write them
//! (ELF gABI program headers and notes; QEMU target/i386/arch_dump.c for the "QEMU" CPU note).

use super::Segment;
use crate::{Error, Result};

/// Raw ELF64 layout: field offsets used below.
mod raw {
    pub const EHDR_LEN: usize = 64;
    pub const E_TYPE: usize = 16;
    pub const E_PHOFF: usize = 32;
    pub const E_SHOFF: usize = 40;
    pub const E_PHENTSIZE: usize = 54;
    pub const E_PHNUM: usize = 56;
    pub const PHDR_LEN: usize = 56;
    pub const SH_INFO: usize = 44;
    pub const ET_CORE: u16 = 4;
    pub const PT_LOAD: u32 = 1;
    pub const PT_NOTE: u32 = 4;
    pub const PN_XNUM: u16 = 0xffff;
    pub const NT_PRSTATUS: u32 = 1;
    /// QEMUCPUState: version, size, 18 GPRs + rip/rflags, 10 segments of 24 bytes, then cr[5].
    pub const QEMU_CR0: usize = 8 + 18 * 8 + 10 * 24;
    pub const QEMU_CR3: usize = QEMU_CR0 + 3 * 8;
    pub const QEMU_CR4: usize = QEMU_CR0 + 4 * 8;
    /// struct elf_prstatus (x86-64): pr_pid at 32, pr_reg (struct user_regs_struct, 27 longs) at 112.
    pub const PR_PID: usize = 32;
    pub const PR_REG: usize = 112;
    pub const PR_REG_COUNT: usize = 27;
}

/// Refuse headers that promise more than any real dump has.
const MAX_PHDRS: usize = 1 << 20;
const MAX_NOTE_BYTES: u64 = 64 << 20;
const MAX_NOTES: usize = 1 << 16;

/// Per-vCPU state from a "QEMU" note.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QemuCpu {
    pub cr3: u64,
    pub cr4: u64,
}

impl QemuCpu {
    /// CR4.LA57 (bit 12): the vCPU runs 5-level paging.
    pub fn la57(&self) -> bool {
        self.cr4 & (1 << 12) != 0
    }
}

/// struct user_regs_struct (arch/x86/include/asm/user_64.h): the general registers of NT_PRSTATUS, in order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserRegs {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub orig_rax: u64,
    pub rip: u64,
    pub cs: u64,
    pub eflags: u64,
    pub rsp: u64,
    pub ss: u64,
    pub fs_base: u64,
    pub gs_base: u64,
    pub ds: u64,
    pub es: u64,
    pub fs: u64,
    pub gs: u64,
}

impl UserRegs {
    /// From the 27 longs of pr_reg, in user_regs_struct order.
    pub fn from_words(w: &[u64; raw::PR_REG_COUNT]) -> UserRegs {
        UserRegs {
            r15: w[0], r14: w[1], r13: w[2], r12: w[3], rbp: w[4], rbx: w[5], r11: w[6], r10: w[7], r9: w[8], r8: w[9],
            rax: w[10], rcx: w[11], rdx: w[12], rsi: w[13], rdi: w[14], orig_rax: w[15], rip: w[16], cs: w[17], eflags: w[18],
            rsp: w[19], ss: w[20], fs_base: w[21], gs_base: w[22], ds: w[23], es: w[24], fs: w[25], gs: w[26],
        }
    }

    /// Parse an NT_PRSTATUS descriptor: (pr_pid, registers).
    pub fn from_prstatus(desc: &[u8]) -> Option<(u32, UserRegs)> {
        let pid = u32_at(desc, raw::PR_PID)?;
        let mut w = [0u64; raw::PR_REG_COUNT];
        for (i, v) in w.iter_mut().enumerate() {
            *v = u64_at(desc, raw::PR_REG + i * 8)?;
        }
        Some((pid, UserRegs::from_words(&w)))
    }
}

/// One vCPU's NT_PRSTATUS note: QEMU writes pr_pid = CPU index + 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrStatus {
    pub pr_pid: u32,
    pub regs: UserRegs,
}

/// Notes gathered from the core's PT_NOTE segments.
#[derive(Debug, Clone, Default)]
pub struct CoreNotes {
    /// Text of the VMCOREINFO note, when the guest handed it to QEMU.
    pub vmcoreinfo: Option<String>,
    pub qemu_cpus: Vec<QemuCpu>,
    /// Number of "CORE" NT_PRSTATUS notes (one per vCPU).
    pub prstatus_count: usize,
    /// Their general registers, in note order.
    pub prstatus: Vec<PrStatus>,
}

pub struct ParsedCore {
    pub segments: Vec<Segment>,
    pub notes: CoreNotes,
    /// The PT_NOTE segments' bytes, concatenated.
    pub raw_notes: Vec<u8>,
    pub missing_bytes: u64,
}

use crate::bytes::{le_u16 as u16_at, le_u32 as u32_at, le_u64 as u64_at};

fn short(what: &str, off: u64) -> Error {
    Error::bad(format!("ELF core: {what} at file offset {off:#x} is cut short"))
}

/// Parse the headers of an ELF core held in `bytes` (the whole mapped file).
pub fn parse(bytes: &[u8], file_len: u64) -> Result<ParsedCore> {
    let eh = bytes.get(..raw::EHDR_LEN).ok_or_else(|| short("ELF header", 0))?;
    if eh[4] != 2 || eh[5] != 1 {
        return Err(Error::Unsupported("ELF core: only 64-bit little-endian cores are supported".into()));
    }
    let e_type = u16_at(eh, raw::E_TYPE).unwrap_or(0);
    if e_type != raw::ET_CORE {
        return Err(Error::bad(format!("ELF file is not a core dump (e_type {e_type}); give guest RAM or a memory dump")));
    }
    let phoff = u64_at(eh, raw::E_PHOFF).unwrap_or(0);
    let phentsize = u16_at(eh, raw::E_PHENTSIZE).unwrap_or(0) as usize;
    let mut phnum = u16_at(eh, raw::E_PHNUM).unwrap_or(0) as usize;
    if phnum == raw::PN_XNUM as usize {
        // More than 65534 segments: the real count sits in section header 0's sh_info.
        let shoff = u64_at(eh, raw::E_SHOFF).unwrap_or(0);
        let at = usize::try_from(shoff).map_err(|_| short("section header 0", shoff))?;
        phnum = u32_at(bytes, at.saturating_add(raw::SH_INFO)).ok_or_else(|| short("section header 0", shoff))? as usize;
    }
    if phentsize < raw::PHDR_LEN || phnum > MAX_PHDRS {
        return Err(Error::bad(format!("ELF core: implausible program headers ({phnum} of {phentsize} bytes)")));
    }
    let mut segments = Vec::new();
    let mut notes = CoreNotes::default();
    let mut raw_notes = Vec::new();
    let mut missing = 0u64;
    for i in 0..phnum {
        let at = (phoff as u128) + (i as u128) * (phentsize as u128);
        let at = usize::try_from(at).map_err(|_| short("program header", phoff))?;
        let ph = bytes.get(at..at.saturating_add(raw::PHDR_LEN)).ok_or_else(|| short("program header", at as u64))?;
        let p_type = u32_at(ph, 0).unwrap_or(0);
        let p_offset = u64_at(ph, 8).unwrap_or(0);
        let p_paddr = u64_at(ph, 24).unwrap_or(0);
        let p_filesz = u64_at(ph, 32).unwrap_or(0);
        match p_type {
            raw::PT_LOAD if p_filesz > 0 => {
                // A truncated file holds only part of the segment; the rest reads as a fault.
                let held = file_len.saturating_sub(p_offset).min(p_filesz);
                // Summed over headers the guest's dump tool wrote: saturate rather than wrap.
                missing = missing.saturating_add(p_filesz - held);
                if p_paddr.checked_add(p_filesz).is_none() {
                    return Err(Error::bad(format!("ELF core: PT_LOAD at paddr {p_paddr:#x} wraps the address space")));
                }
                segments.push(Segment { gpa: p_paddr, file_offset: p_offset, len: held });
            }
            raw::PT_NOTE => {
                if p_filesz > MAX_NOTE_BYTES {
                    return Err(Error::bad(format!("ELF core: PT_NOTE of {p_filesz} bytes at {p_offset:#x} is absurd")));
                }
                let start = usize::try_from(p_offset).map_err(|_| short("PT_NOTE", p_offset))?;
                let end = start.saturating_add(p_filesz as usize);
                let data = bytes.get(start..end).ok_or_else(|| short("PT_NOTE", p_offset))?;
                parse_notes(data, p_offset, &mut notes)?;
                raw_notes.extend_from_slice(data);
            }
            _ => {}
        }
    }
    Ok(ParsedCore { segments, notes, raw_notes, missing_bytes: missing })
}

fn align4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

/// Walk one PT_NOTE segment: Elf64_Nhdr { namesz, descsz, type } + name + desc, each padded to 4.
pub(crate) fn parse_notes(data: &[u8], file_off: u64, out: &mut CoreNotes) -> Result<()> {
    let mut pos = 0usize;
    for _ in 0..MAX_NOTES {
        if pos + 12 > data.len() {
            return Ok(());
        }
        let namesz = u32_at(data, pos).unwrap_or(0) as usize;
        let descsz = u32_at(data, pos + 4).unwrap_or(0) as usize;
        let ntype = u32_at(data, pos + 8).unwrap_or(0);
        let name_at = pos + 12;
        let desc_at = name_at.saturating_add(align4(namesz));
        let next = desc_at.saturating_add(align4(descsz));
        if next > data.len() {
            return Err(short("note", file_off + pos as u64));
        }
        let name = &data[name_at..name_at + namesz];
        let name = name.strip_suffix(&[0]).unwrap_or(name);
        let desc = &data[desc_at..desc_at + descsz];
        match name {
            b"VMCOREINFO" => {
                let text = desc.strip_suffix(&[0]).unwrap_or(desc);
                out.vmcoreinfo = Some(String::from_utf8_lossy(text).into_owned());
            }
            b"QEMU" => {
                if let (Some(cr3), Some(cr4)) = (u64_at(desc, raw::QEMU_CR3), u64_at(desc, raw::QEMU_CR4)) {
                    out.qemu_cpus.push(QemuCpu { cr3, cr4 });
                }
            }
            b"CORE" if ntype == raw::NT_PRSTATUS => {
                out.prstatus_count += 1;
                if let Some((pr_pid, regs)) = UserRegs::from_prstatus(desc) {
                    out.prstatus.push(PrStatus { pr_pid, regs });
                }
            }
            _ => {}
        }
        pos = next;
    }
    Err(Error::bad(format!("ELF core: more than {MAX_NOTES} notes at {file_off:#x}")))
}

/// Build a synthetic ELF core (for tests here and in kernel discovery).
#[cfg(any(test, feature = "fuzzing"))]
pub fn build_core(loads: &[(u64, &[u8])], notes: &[(&str, u32, Vec<u8>)]) -> Vec<u8> {
    let mut note_bytes = Vec::new();
    for (name, ty, desc) in notes {
        let mut n = name.as_bytes().to_vec();
        n.push(0);
        note_bytes.extend((n.len() as u32).to_le_bytes());
        note_bytes.extend((desc.len() as u32).to_le_bytes());
        note_bytes.extend(ty.to_le_bytes());
        note_bytes.extend(&n);
        note_bytes.resize(align4(note_bytes.len()), 0);
        note_bytes.extend(desc);
        note_bytes.resize(align4(note_bytes.len()), 0);
    }
    let phnum = 1 + loads.len();
    let mut out = vec![0u8; 64];
    out[..4].copy_from_slice(b"\x7fELF");
    out[4] = 2;
    out[5] = 1;
    out[6] = 1;
    out[16..18].copy_from_slice(&4u16.to_le_bytes());
    out[18..20].copy_from_slice(&62u16.to_le_bytes());
    out[32..40].copy_from_slice(&64u64.to_le_bytes());
    out[52..54].copy_from_slice(&64u16.to_le_bytes());
    out[54..56].copy_from_slice(&56u16.to_le_bytes());
    out[56..58].copy_from_slice(&(phnum as u16).to_le_bytes());
    let mut data_off = 64 + 56 * phnum as u64;
    let mut phdrs = Vec::new();
    let mut ph = |ty: u32, off: u64, paddr: u64, len: u64| {
        let mut p = vec![0u8; 56];
        p[0..4].copy_from_slice(&ty.to_le_bytes());
        p[8..16].copy_from_slice(&off.to_le_bytes());
        p[24..32].copy_from_slice(&paddr.to_le_bytes());
        p[32..40].copy_from_slice(&len.to_le_bytes());
        p[40..48].copy_from_slice(&len.to_le_bytes());
        phdrs.extend(p);
    };
    ph(4, data_off, 0, note_bytes.len() as u64);
    data_off += note_bytes.len() as u64;
    for (paddr, bytes) in loads {
        ph(1, data_off, *paddr, bytes.len() as u64);
        data_off += bytes.len() as u64;
    }
    out.extend(phdrs);
    out.extend(&note_bytes);
    for (_, bytes) in loads {
        out.extend(*bytes);
    }
    out
}

#[cfg(any(test, feature = "fuzzing"))]
pub fn qemu_cpu_note(cr3: u64, cr4: u64) -> Vec<u8> {
    let mut d = vec![0u8; raw::QEMU_CR0 + 6 * 8];
    d[0..4].copy_from_slice(&1u32.to_le_bytes());
    let sz = d.len() as u32;
    d[4..8].copy_from_slice(&sz.to_le_bytes());
    d[raw::QEMU_CR3..raw::QEMU_CR3 + 8].copy_from_slice(&cr3.to_le_bytes());
    d[raw::QEMU_CR4..raw::QEMU_CR4 + 8].copy_from_slice(&cr4.to_le_bytes());
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::source::tests::TempFile;
    use crate::mem::source::{MappedRam, RamFormat};
    use crate::mem::PhysicalMemory;

    #[test]
    fn core_segments_and_notes() {
        let low = vec![0xAAu8; 4096];
        let high = vec![0xBBu8; 4096];
        let mut prstatus = vec![0u8; 336];
        prstatus[32..36].copy_from_slice(&2u32.to_le_bytes());
        prstatus[112 + 16 * 8..112 + 17 * 8].copy_from_slice(&0xffff_ffff_8100_1234u64.to_le_bytes()); // rip
        prstatus[112 + 19 * 8..112 + 20 * 8].copy_from_slice(&0xffff_c900_0000_3f00u64.to_le_bytes()); // rsp
        prstatus[112 + 22 * 8..112 + 23 * 8].copy_from_slice(&0xffff_8880_7fc0_0000u64.to_le_bytes()); // gs_base
        let core = build_core(
            &[(0, &low), (0x1_0000_0000, &high)],
            &[
                ("CORE", 1, prstatus),
                ("QEMU", 0, qemu_cpu_note(0x1234_5000, 1 << 12)),
                ("VMCOREINFO", 0, b"OSRELEASE=6.1.0\nPAGESIZE=4096\n".to_vec()),
            ],
        );
        let f = TempFile::new("core", &core);
        let ram = MappedRam::open(&f.0, "auto").unwrap();
        assert_eq!(ram.info.format, Some(RamFormat::ElfCore));
        assert_eq!(ram.info.notes.prstatus_count, 1);
        let pr = ram.info.notes.prstatus[0];
        assert_eq!((pr.pr_pid, pr.regs.rip, pr.regs.rsp, pr.regs.gs_base), (2, 0xffff_ffff_8100_1234, 0xffff_c900_0000_3f00, 0xffff_8880_7fc0_0000));
        assert_eq!(ram.info.notes.qemu_cpus, vec![QemuCpu { cr3: 0x1234_5000, cr4: 1 << 12 }]);
        assert!(ram.info.notes.qemu_cpus[0].la57());
        assert_eq!(ram.info.notes.vmcoreinfo.as_deref(), Some("OSRELEASE=6.1.0\nPAGESIZE=4096\n"));
        let mut b = [0u8; 2];
        ram.read_phys(0xFFF, &mut b[..1]).unwrap();
        assert_eq!(b[0], 0xAA);
        ram.read_phys(0x1_0000_0000, &mut b).unwrap();
        assert_eq!(b, [0xBB, 0xBB]);
        assert!(matches!(ram.read_phys(0x1000, &mut b), Err(Error::Fault { addr: 0x1000, .. })));
    }

    #[test]
    fn truncated_core_faults_past_the_end() {
        let low = vec![0x11u8; 8192];
        let core = build_core(&[(0, &low)], &[]);
        let cut = &core[..core.len() - 4096];
        let f = TempFile::new("core-trunc", cut);
        let ram = MappedRam::open(&f.0, "auto").unwrap();
        assert_eq!(ram.info.missing_bytes, 4096);
        let mut b = [0u8; 8];
        ram.read_phys(4088, &mut b).unwrap();
        assert!(matches!(ram.read_phys(4092, &mut b), Err(Error::Fault { addr: 4096, .. })));
        // Headers cut short are BAD_DATA, not a crash.
        let f2 = TempFile::new("core-hdr", &core[..100]);
        assert!(matches!(MappedRam::open(&f2.0, "auto"), Err(Error::BadData(_))));
    }

    #[test]
    fn missing_bytes_saturate_when_headers_promise_more_than_u64() {
        // Found by fuzzing (ram_source): PT_LOADs past the end of the file whose sizes sum past 2^64.
        let mut core = build_core(&[(0, &[1u8; 16]), (0x1000, &[2u8; 16])], &[]);
        for (load, paddr) in [(1, 0u64), (2, 1)] {
            let ph = 64 + 56 * load;
            core[ph + 8..ph + 16].copy_from_slice(&(1u64 << 40).to_le_bytes()); // p_offset past the end
            core[ph + 24..ph + 32].copy_from_slice(&paddr.to_le_bytes());
            core[ph + 32..ph + 40].copy_from_slice(&(u64::MAX / 2 + 1).to_le_bytes()); // p_filesz
        }
        assert_eq!(parse(&core, core.len() as u64).unwrap().missing_bytes, u64::MAX);
    }

    #[test]
    fn hostile_headers() {
        let mut core = build_core(&[(0, &[1u8; 16])], &[("VMCOREINFO", 0, b"X=1".to_vec())]);
        // Note descsz pointing far past the segment.
        let note_at = 64 + 56 * 2;
        core[note_at + 4..note_at + 8].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        let f = TempFile::new("core-hostile", &core);
        assert!(matches!(MappedRam::open(&f.0, "auto"), Err(Error::BadData(_))));
        // Absurd phnum.
        let mut core = build_core(&[(0, &[1u8; 16])], &[]);
        core[56..58].copy_from_slice(&0xFFFFu16.to_le_bytes());
        core[40..48].copy_from_slice(&u64::MAX.to_le_bytes());
        let f = TempFile::new("core-phnum", &core);
        assert!(MappedRam::open(&f.0, "auto").is_err());
        // Overlapping PT_LOADs.
        let core = build_core(&[(0, &[1u8; 4096]), (0x800, &[2u8; 4096])], &[]);
        let f = TempFile::new("core-overlap", &core);
        assert!(matches!(MappedRam::open(&f.0, "auto"), Err(Error::BadData(_))));
    }
}
