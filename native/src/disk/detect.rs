//! What is on a device: filesystem and container signatures at their documented offsets (blkid's view).

use super::block::{le_u16, le_u32, BlockDevice};

/// The kind of content found on a whole disk or a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    Ext2,
    Ext3,
    Ext4,
    Xfs,
    Btrfs,
    Lvm2,
    Luks,
    Swap,
    Iso9660,
    Vfat,
    Unknown,
}

impl Content {
    pub fn name(self) -> &'static str {
        match self {
            Content::Ext2 => "ext2",
            Content::Ext3 => "ext3",
            Content::Ext4 => "ext4",
            Content::Xfs => "xfs",
            Content::Btrfs => "btrfs",
            Content::Lvm2 => "LVM2_member",
            Content::Luks => "crypto_LUKS",
            Content::Swap => "swap",
            Content::Iso9660 => "iso9660",
            Content::Vfat => "vfat",
            Content::Unknown => "unknown",
        }
    }

    pub fn is_ext(self) -> bool {
        matches!(self, Content::Ext2 | Content::Ext3 | Content::Ext4)
    }
}

/// Read a few bytes, treating anything unreadable (short device) as "not there".
fn peek(dev: &dyn BlockDevice, offset: u64, len: usize) -> Option<Vec<u8>> {
    let mut b = vec![0u8; len];
    dev.read_at(offset, &mut b).ok()?;
    Some(b)
}

/// Look for the signatures we know; an ext superblock wins (it is what we can read).
pub fn detect(dev: &dyn BlockDevice) -> Content {
    if let Some(sb) = peek(dev, 1024, 1024) {
        if le_u16(&sb, 0x38) == 0xEF53 {
            return ext_flavour(&sb);
        }
    }
    if let Some(b) = peek(dev, 0, 8) {
        if &b[0..4] == b"XFSB" {
            return Content::Xfs;
        }
        if &b[0..6] == b"LUKS\xba\xbe" || &b[0..6] == b"SKUL\xba\xbe" {
            return Content::Luks;
        }
    }
    if let Some(b) = peek(dev, 0x10040, 8) {
        if &b == b"_BHRfS_M" {
            return Content::Btrfs;
        }
    }
    // LVM2 puts its label in one of the first four 512-byte sectors.
    for sector in 0..4u64 {
        if let Some(b) = peek(dev, sector * 512, 32) {
            if &b[0..8] == b"LABELONE" && &b[24..32] == b"LVM2 001" {
                return Content::Lvm2;
            }
        }
    }
    for page in [4096u64, 8192, 16384, 65536] {
        if let Some(b) = peek(dev, page - 10, 10) {
            if &b == b"SWAPSPACE2" || &b == b"SWAP-SPACE" {
                return Content::Swap;
            }
        }
    }
    if let Some(b) = peek(dev, 32769, 5) {
        if &b == b"CD001" {
            return Content::Iso9660;
        }
    }
    if let Some(b) = peek(dev, 0, 512) {
        if le_u16(&b, 510) == 0xAA55 && (&b[82..87] == b"FAT32" || &b[54..59] == b"FAT16" || &b[54..59] == b"FAT12") {
            return Content::Vfat;
        }
    }
    Content::Unknown
}

/// What a file's first 4 KiB say it is when it is a disk image rather than memory: a qcow2 header (QEMU
/// docs/interop/qcow2.txt), an ext2/3/4 superblock at 1024, a GPT header at 512 ("EFI PART"), or an MBR
/// whose four partition entries all read as entries. None for anything else (guest RAM begins with the
/// real-mode interrupt vectors, which are none of these).
pub fn image_kind(head: &[u8]) -> Option<&'static str> {
    if head.get(0..4) == Some(b"QFI\xfb") && matches!(crate::bytes::be_u32(head, 4), Some(2 | 3)) {
        return Some("a qcow2 disk image");
    }
    if head.len() >= 2048 && le_u16(head, 1024 + 0x38) == 0xEF53 && le_u32(head, 1024 + 0x18) <= 6 && le_u32(head, 1024) > 0 {
        return Some(match ext_flavour(&head[1024..2048]) {
            Content::Ext2 => "an ext2 filesystem image",
            Content::Ext3 => "an ext3 filesystem image",
            _ => "an ext4 filesystem image",
        });
    }
    if head.get(512..520) == Some(b"EFI PART") {
        return Some("a GPT-partitioned disk image");
    }
    if head.len() >= 512 && le_u16(head, 510) == 0xAA55 {
        let entries: Vec<&[u8]> = (0..4).filter_map(|i| head.get(446 + i * 16..462 + i * 16)).collect();
        let plausible = entries.iter().all(|e| e[0] == 0 || e[0] == 0x80);
        let used = entries.iter().filter(|e| e[4] != 0 && le_u32(e, 8) > 0).count();
        if entries.len() == 4 && plausible && used > 0 {
            return Some("an MBR-partitioned disk image");
        }
    }
    None
}

/// ext2 (no journal), ext3 (journal, nothing newer), ext4 (any ext4-only feature), as blkid names them.
fn ext_flavour(sb: &[u8]) -> Content {
    let compat = le_u32(sb, 0x5C);
    let incompat = le_u32(sb, 0x60);
    let ro_compat = le_u32(sb, 0x64);
    // ext3 knows: incompat FILETYPE|RECOVER|JOURNAL_DEV|META_BG, ro_compat SPARSE_SUPER|LARGE_FILE|BTREE_DIR.
    let ext4_only_incompat = incompat & !(0x0002 | 0x0004 | 0x0008 | 0x0010) != 0;
    let ext4_only_ro = ro_compat & !(0x0001 | 0x0002 | 0x0004) != 0;
    if ext4_only_incompat || ext4_only_ro {
        Content::Ext4
    } else if compat & 0x0004 != 0 {
        Content::Ext3
    } else {
        Content::Ext2
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::block::MemDevice;

    fn dev_with(off: usize, bytes: &[u8], size: usize) -> MemDevice {
        let mut v = vec![0u8; size];
        v[off..off + bytes.len()].copy_from_slice(bytes);
        MemDevice { bytes: v, name: "t".into() }
    }

    #[test]
    fn signatures() {
        assert_eq!(detect(&dev_with(0, b"XFSB", 4096)), Content::Xfs);
        assert_eq!(detect(&dev_with(0x10040, b"_BHRfS_M", 0x20000)), Content::Btrfs);
        assert_eq!(detect(&dev_with(0, b"LUKS\xba\xbe", 4096)), Content::Luks);
        assert_eq!(detect(&dev_with(4086, b"SWAPSPACE2", 4096)), Content::Swap);
        assert_eq!(detect(&dev_with(0, &[0u8; 4], 100)), Content::Unknown);
        let mut lvm = dev_with(512, b"LABELONE", 4096);
        lvm.bytes[536..544].copy_from_slice(b"LVM2 001");
        assert_eq!(detect(&lvm), Content::Lvm2);
        let mut ext = dev_with(1080, &[0x53, 0xEF], 4096);
        assert_eq!(detect(&ext), Content::Ext2);
        ext.bytes[1024 + 0x60] = 0x40; // extents
        assert_eq!(detect(&ext), Content::Ext4);
    }

    #[test]
    fn disk_images_are_told_from_memory() {
        let mut ext = vec![0u8; 4096];
        ext[1024..1028].copy_from_slice(&100u32.to_le_bytes()); // s_inodes_count
        ext[1080..1082].copy_from_slice(&[0x53, 0xEF]);
        ext[1024 + 0x60] = 0x40;
        assert_eq!(image_kind(&ext), Some("an ext4 filesystem image"));
        ext[1024 + 0x18] = 9; // s_log_block_size beyond 64 KiB: not a superblock
        assert_eq!(image_kind(&ext), None);
        let mut q = vec![0u8; 4096];
        q[..8].copy_from_slice(b"QFI\xfb\0\0\0\x03");
        assert_eq!(image_kind(&q), Some("a qcow2 disk image"));
        let mut gpt = vec![0u8; 4096];
        gpt[512..520].copy_from_slice(b"EFI PART");
        assert_eq!(image_kind(&gpt), Some("a GPT-partitioned disk image"));
        let mut mbr = vec![0u8; 4096];
        mbr[510..512].copy_from_slice(&[0x55, 0xAA]);
        assert_eq!(image_kind(&mbr), None, "no partition in use");
        mbr[446 + 4] = 0x83;
        mbr[446 + 8..446 + 12].copy_from_slice(&2048u32.to_le_bytes());
        assert_eq!(image_kind(&mbr), Some("an MBR-partitioned disk image"));
        // real-mode interrupt vectors (F000:FF53 everywhere): memory, not a disk
        let ivt: Vec<u8> = [0x53u8, 0xff, 0x00, 0xf0].iter().copied().cycle().take(4096).collect();
        assert_eq!(image_kind(&ivt), None);
    }
}
