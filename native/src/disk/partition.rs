//! Partition tables: MBR (with extended/logical chains) and GPT (UEFI spec §5.2–5.3), read-only.

use std::collections::HashSet;

use super::block::{le_u16, le_u32, le_u64, read_vec, BlockDevice};
use super::crc::crc32;
use crate::{Error, Result};

pub const GPT_LINUX_FS: &str = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";
pub const GPT_ROOT_X86_64: &str = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709";
const GPT_MAX_ENTRIES: u32 = 1024;
const MBR_MAX_LOGICAL: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    None,
    Mbr,
    Gpt,
}

impl TableKind {
    pub fn name(self) -> &'static str {
        match self {
            TableKind::None => "none",
            TableKind::Mbr => "mbr",
            TableKind::Gpt => "gpt",
        }
    }
}

/// One partition, in bytes, as the table states it (not yet checked against the disk size).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// 1-based; MBR logical partitions start at 5, as Linux numbers them.
    pub number: u32,
    pub start: u64,
    pub size: u64,
    /// "0x83" for MBR, the type GUID for GPT.
    pub type_id: String,
    /// Human name of the type ("Linux filesystem", "Linux root (x86-64)", "EFI System" …).
    pub type_name: String,
    /// GPT partition name (UTF-16 in the table), empty for MBR.
    pub name: String,
}

impl Partition {
    pub fn is_linux_root(&self) -> bool {
        self.type_id == GPT_ROOT_X86_64
    }
    pub fn is_linux_fs(&self) -> bool {
        self.type_id == GPT_LINUX_FS || self.type_id == "0x83"
    }
}

pub struct Table {
    pub kind: TableKind,
    pub partitions: Vec<Partition>,
    /// Non-fatal findings (entry CRC mismatch, backup header used, entry past the end).
    pub warnings: Vec<String>,
}

/// Read the partition table of a whole disk. A disk with neither table gives `TableKind::None`.
pub fn read_table(dev: &dyn BlockDevice) -> Result<Table> {
    for ss in [512u64, 4096] {
        if dev.size() >= ss * 2 {
            let sig = read_vec(dev, ss, 8)?;
            if &sig == b"EFI PART" {
                return read_gpt(dev, ss);
            }
        }
    }
    if dev.size() < 512 {
        return Ok(Table { kind: TableKind::None, partitions: vec![], warnings: vec![] });
    }
    let mbr = read_vec(dev, 0, 512)?;
    if le_u16(&mbr, 510) != 0xAA55 {
        return Ok(Table { kind: TableKind::None, partitions: vec![], warnings: vec![] });
    }
    let entries = mbr_entries(&mbr);
    // A boot sector of a bare FAT/NTFS filesystem also ends in 0x55AA; its "entries" are garbage.
    if entries.iter().any(|e| e.status != 0 && e.status != 0x80) {
        return Ok(Table { kind: TableKind::None, partitions: vec![], warnings: vec![] });
    }
    if entries.iter().any(|e| e.kind == 0xEE) {
        return Err(Error::bad(format!("{}: protective MBR (type 0xee) but no GPT header at LBA 1", dev.describe())));
    }
    read_mbr(dev, &entries)
}

struct MbrEntry {
    status: u8,
    kind: u8,
    lba: u32,
    sectors: u32,
}

fn mbr_entries(sector: &[u8]) -> Vec<MbrEntry> {
    (0..4)
        .map(|i| {
            let o = 446 + i * 16;
            MbrEntry {
                status: sector.get(o).copied().unwrap_or(0),
                kind: sector.get(o + 4).copied().unwrap_or(0),
                lba: le_u32(sector, o + 8),
                sectors: le_u32(sector, o + 12),
            }
        })
        .collect()
}

fn is_extended(kind: u8) -> bool {
    matches!(kind, 0x05 | 0x0F | 0x85)
}

fn mbr_type_name(kind: u8) -> &'static str {
    match kind {
        0x83 => "Linux",
        0x82 => "Linux swap",
        0x8E => "Linux LVM",
        0xFD => "Linux raid autodetect",
        0x05 | 0x0F | 0x85 => "Extended",
        0x07 => "HPFS/NTFS/exFAT",
        0x0B | 0x0C => "W95 FAT32",
        0x0E | 0x06 | 0x04 | 0x01 => "FAT",
        0xEF => "EFI (FAT-12/16/32)",
        0xEE => "GPT",
        _ => "unknown",
    }
}

fn read_mbr(dev: &dyn BlockDevice, entries: &[MbrEntry]) -> Result<Table> {
    let mut parts = Vec::new();
    let mut warnings = Vec::new();
    let mut extended: Option<(u64, u64)> = None;
    for (i, e) in entries.iter().enumerate() {
        if e.kind == 0 || e.sectors == 0 {
            continue;
        }
        if is_extended(e.kind) {
            if extended.is_none() {
                extended = Some((e.lba as u64, e.sectors as u64));
            }
            continue;
        }
        parts.push(mbr_partition(i as u32 + 1, e.lba as u64, e.sectors as u64, e.kind));
    }
    if let Some((ext_start, ext_sectors)) = extended {
        // Walk the EBR chain: each EBR's entry 0 is a logical partition relative to the EBR,
        // entry 1 points at the next EBR relative to the extended partition's start.
        let mut seen = HashSet::new();
        let mut ebr = ext_start;
        let mut number = 5u32;
        loop {
            if parts.len() >= MBR_MAX_LOGICAL + 4 {
                warnings.push(format!("more than {MBR_MAX_LOGICAL} logical partitions; stopped reading the EBR chain"));
                break;
            }
            if !seen.insert(ebr) {
                warnings.push(format!("EBR chain loops back to sector {ebr}; stopped"));
                break;
            }
            let Some(off) = ebr.checked_mul(512) else { break };
            let sector = match read_vec(dev, off, 512) {
                Ok(s) => s,
                Err(e) => {
                    warnings.push(format!("cannot read the EBR at sector {ebr}: {e}"));
                    break;
                }
            };
            if le_u16(&sector, 510) != 0xAA55 {
                warnings.push(format!("EBR at sector {ebr} has no 0x55AA signature; stopped"));
                break;
            }
            let es = mbr_entries(&sector);
            let (Some(l), Some(next)) = (es.first(), es.get(1)) else { break };
            if l.kind != 0 && l.sectors != 0 {
                parts.push(mbr_partition(number, ebr + l.lba as u64, l.sectors as u64, l.kind));
                number += 1;
            }
            if next.kind == 0 || next.lba == 0 || next.lba as u64 >= ext_sectors {
                break;
            }
            ebr = ext_start + next.lba as u64;
        }
    }
    Ok(Table { kind: TableKind::Mbr, partitions: parts, warnings })
}

fn mbr_partition(number: u32, lba: u64, sectors: u64, kind: u8) -> Partition {
    Partition {
        number,
        start: lba * 512,
        size: sectors * 512,
        type_id: format!("0x{kind:02x}"),
        type_name: mbr_type_name(kind).to_string(),
        name: String::new(),
    }
}

/// Mixed-endian GUID text as the UEFI spec prints it.
pub fn guid_string(b: &[u8]) -> String {
    let g = |i: usize| b.get(i).copied().unwrap_or(0);
    format!(
        "{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}",
        le_u32(b, 0),
        le_u16(b, 4),
        le_u16(b, 6),
        g(8), g(9), g(10), g(11), g(12), g(13), g(14), g(15)
    )
}

fn gpt_type_name(guid: &str) -> &'static str {
    match guid {
        GPT_LINUX_FS => "Linux filesystem",
        GPT_ROOT_X86_64 => "Linux root (x86-64)",
        "C12A7328-F81F-11D2-BA4B-00A0C93EC93B" => "EFI System",
        "21686148-6449-6E6F-744E-656564454649" => "BIOS boot",
        "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F" => "Linux swap",
        "E6D6D379-F507-44C2-A23C-238F2A3DF928" => "Linux LVM",
        "BC13C2FF-59E6-4262-A352-B275FD6F7172" => "Linux extended boot",
        "933AC7E1-2EB4-4F13-B844-0E14E2AEF915" => "Linux home",
        "3B8F8425-20E0-4F3B-907F-1A25A76F98E8" => "Linux server data",
        "CA7D7CCB-63ED-4C53-861C-1742536059CC" => "Linux LUKS",
        "A19D880F-05FC-4D3B-A006-743F0F84911E" => "Linux RAID",
        "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7" => "Microsoft basic data",
        _ => "unknown",
    }
}

/// Check a GPT header's own CRC; give (entries LBA, count, entry size, entries CRC) when sound.
fn gpt_header(hdr: &[u8], ss: u64) -> std::result::Result<(u64, u32, u32, u32), String> {
    if hdr.get(0..8) != Some(b"EFI PART".as_slice()) {
        return Err("no \"EFI PART\" signature".into());
    }
    let header_size = le_u32(hdr, 12) as usize;
    if header_size < 92 || header_size as u64 > ss {
        return Err(format!("header size {header_size} is not in 92..={ss}"));
    }
    let mut copy = hdr.get(..header_size).ok_or("short header")?.to_vec();
    copy[16..20].fill(0);
    let want = le_u32(hdr, 16);
    let got = crc32(&copy);
    if want != got {
        return Err(format!("header CRC32 {got:#010x} does not match the stored {want:#010x}"));
    }
    let count = le_u32(hdr, 80);
    let esize = le_u32(hdr, 84);
    if count > GPT_MAX_ENTRIES {
        return Err(format!("{count} partition entries (more than {GPT_MAX_ENTRIES})"));
    }
    if !(128..=4096).contains(&esize) || !esize.is_multiple_of(8) {
        return Err(format!("partition entry size {esize} is not a multiple of 8 in 128..=4096"));
    }
    Ok((le_u64(hdr, 72), count, esize, le_u32(hdr, 88)))
}

fn read_gpt(dev: &dyn BlockDevice, ss: u64) -> Result<Table> {
    let mut warnings = Vec::new();
    let primary = read_vec(dev, ss, ss as usize)?;
    let parsed = match gpt_header(&primary, ss) {
        Ok(h) => h,
        Err(why) => {
            // Fall back to the backup header in the disk's last sector.
            let last = dev.size() / ss - 1;
            let backup = read_vec(dev, last * ss, ss as usize)?;
            match gpt_header(&backup, ss) {
                Ok(h) => {
                    warnings.push(format!("primary GPT header unusable ({why}); used the backup at LBA {last}"));
                    h
                }
                Err(why2) => {
                    return Err(Error::bad(format!(
                        "GPT header at LBA 1 of {}: {why}; backup at LBA {last}: {why2}",
                        dev.describe()
                    )))
                }
            }
        }
    };
    let (entries_lba, count, esize, entries_crc) = parsed;
    let total = count as usize * esize as usize;
    let off = entries_lba
        .checked_mul(ss)
        .ok_or_else(|| Error::bad(format!("GPT partition entries LBA {entries_lba} overflows")))?;
    let table = read_vec(dev, off, total).map_err(|e| e.context("reading the GPT partition entries"))?;
    if crc32(&table) != entries_crc {
        warnings.push("GPT partition entry array CRC32 does not match the header".into());
    }
    let mut parts = Vec::new();
    for i in 0..count as usize {
        let e = &table[i * esize as usize..(i + 1) * esize as usize];
        if e[0..16].iter().all(|&b| b == 0) {
            continue;
        }
        let type_id = guid_string(&e[0..16]);
        let first = le_u64(e, 32);
        let last = le_u64(e, 40);
        if last < first {
            warnings.push(format!("GPT entry {} ends (LBA {last}) before it starts (LBA {first}); skipped", i + 1));
            continue;
        }
        let units: Vec<u16> = (0..36).map(|k| le_u16(e, 56 + k * 2)).take_while(|&u| u != 0).collect();
        let sectors = (last - first).checked_add(1);
        let (Some(start), Some(size)) = (first.checked_mul(ss), sectors.and_then(|n| n.checked_mul(ss))) else {
            warnings.push(format!("GPT entry {} has absurd LBAs; skipped", i + 1));
            continue;
        };
        parts.push(Partition {
            number: i as u32 + 1,
            start,
            size,
            type_name: gpt_type_name(&type_id).to_string(),
            type_id,
            name: String::from_utf16_lossy(&units),
        });
    }
    Ok(Table { kind: TableKind::Gpt, partitions: parts, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::block::MemDevice;

    fn put(v: &mut [u8], off: usize, b: &[u8]) {
        v[off..off + b.len()].copy_from_slice(b);
    }

    #[test]
    fn mbr_with_logical_and_loop() {
        let mut d = vec![0u8; 1 << 20];
        put(&mut d, 510, &[0x55, 0xAA]);
        // p1: Linux at LBA 2048, 100 sectors; p2: extended at 400, 600 sectors.
        put(&mut d, 446 + 4, &[0x83]);
        put(&mut d, 446 + 8, &2048u32.to_le_bytes());
        put(&mut d, 446 + 12, &100u32.to_le_bytes());
        put(&mut d, 462 + 4, &[0x05]);
        put(&mut d, 462 + 8, &400u32.to_le_bytes());
        put(&mut d, 462 + 12, &600u32.to_le_bytes());
        // EBR at 400: logical at +10, 50 sectors; next EBR at ext+0 (a loop back to itself).
        let e = 400 * 512;
        put(&mut d, e + 510, &[0x55, 0xAA]);
        put(&mut d, e + 446 + 4, &[0x83]);
        put(&mut d, e + 446 + 8, &10u32.to_le_bytes());
        put(&mut d, e + 446 + 12, &50u32.to_le_bytes());
        put(&mut d, e + 462 + 4, &[0x05]);
        put(&mut d, e + 462 + 8, &100u32.to_le_bytes());
        put(&mut d, e + 462 + 12, &50u32.to_le_bytes());
        let e2 = 500 * 512;
        put(&mut d, e2 + 510, &[0x55, 0xAA]);
        put(&mut d, e2 + 462 + 4, &[0x05]);
        put(&mut d, e2 + 462 + 8, &100u32.to_le_bytes()); // points at itself
        let t = read_table(&MemDevice { bytes: d, name: "m".into() }).unwrap();
        assert_eq!(t.kind, TableKind::Mbr);
        let nums: Vec<u32> = t.partitions.iter().map(|p| p.number).collect();
        assert_eq!(nums, vec![1, 5]);
        assert_eq!(t.partitions[1].start, 410 * 512);
        assert!(t.warnings.iter().any(|w| w.contains("loops")));
    }

    #[test]
    fn gpt_crc_checked() {
        let mut d = vec![0u8; 1 << 20];
        put(&mut d, 510, &[0x55, 0xAA]);
        put(&mut d, 446 + 4, &[0xEE]);
        let mut h = vec![0u8; 92];
        put(&mut h, 0, b"EFI PART");
        put(&mut h, 12, &92u32.to_le_bytes());
        put(&mut h, 72, &2u64.to_le_bytes());
        put(&mut h, 80, &4u32.to_le_bytes());
        put(&mut h, 84, &128u32.to_le_bytes());
        let mut entry = vec![0u8; 512];
        // GUID 4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709 in mixed-endian.
        put(&mut entry, 0, &[0xE3, 0xBC, 0x68, 0x4F, 0xCD, 0xE8, 0xB1, 0x4D, 0x96, 0xE7, 0xFB, 0xCA, 0xF9, 0x84, 0xB7, 0x09]);
        put(&mut entry, 32, &100u64.to_le_bytes());
        put(&mut entry, 40, &199u64.to_le_bytes());
        put(&mut entry, 56, &[b'r', 0, b'o', 0, b'o', 0, b't', 0]);
        put(&mut h, 88, &crc32(&entry).to_le_bytes());
        let c = crc32(&h);
        put(&mut h, 16, &c.to_le_bytes());
        put(&mut d, 512, &h);
        put(&mut d, 1024, &entry);
        let t = read_table(&MemDevice { bytes: d.clone(), name: "g".into() }).unwrap();
        assert_eq!(t.kind, TableKind::Gpt);
        assert_eq!(t.partitions.len(), 1);
        assert!(t.partitions[0].is_linux_root());
        assert_eq!(t.partitions[0].name, "root");
        assert_eq!(t.partitions[0].size, 100 * 512);
        // An entry spanning every LBA (found by fuzzing): skipped with a warning, no overflow.
        let mut whole = d.clone();
        let mut e2 = entry.clone();
        put(&mut e2, 32, &0u64.to_le_bytes());
        put(&mut e2, 40, &u64::MAX.to_le_bytes());
        put(&mut whole, 1024, &e2);
        let t = read_table(&MemDevice { bytes: whole, name: "g".into() }).unwrap();
        assert!(t.partitions.is_empty());
        assert!(t.warnings.iter().any(|w| w.contains("absurd LBAs")), "{:?}", t.warnings);
        // Corrupt the header: no backup either, so BAD_DATA.
        d[512 + 40] ^= 1;
        assert!(matches!(read_table(&MemDevice { bytes: d, name: "g".into() }), Err(Error::BadData(_))));
    }
}
