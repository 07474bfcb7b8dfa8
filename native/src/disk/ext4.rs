//! ext2/3/4 superblock and group descriptors, and statfs exactly as the kernel's ext4_statfs
//! (fs/ext4/super.c, Linux 6.1) computes it after mount: no bitmaps are read.

use super::block::{le_u16, le_u32, read_vec, BlockDevice};
use super::crc::{crc16, crc32c_raw};
use crate::{Error, Result};

pub const EXT4_SUPER_MAGIC: u16 = 0xEF53;
/// Descriptor tables larger than this are refused (a 64-byte descriptor per 128 MiB group: 128 TiB).
const MAX_GDT_BYTES: u64 = 64 << 20;

// Feature bits (fs/ext4/ext4.h).
const COMPAT_HAS_JOURNAL: u32 = 0x0004;
const COMPAT_SPARSE_SUPER2: u32 = 0x0200;
const INCOMPAT_RECOVER: u32 = 0x0004;
const INCOMPAT_META_BG: u32 = 0x0010;
const INCOMPAT_EXTENTS: u32 = 0x0040;
const INCOMPAT_64BIT: u32 = 0x0080;
const INCOMPAT_CSUM_SEED: u32 = 0x2000;
const RO_COMPAT_SPARSE_SUPER: u32 = 0x0001;
const RO_COMPAT_GDT_CSUM: u32 = 0x0010;
const RO_COMPAT_BIGALLOC: u32 = 0x0200;
const RO_COMPAT_METADATA_CSUM: u32 = 0x0400;
const RO_COMPAT_ORPHAN_PRESENT: u32 = 0x10000;

const COMPAT_NAMES: &[(u32, &str)] = &[
    (0x0001, "dir_prealloc"), (0x0002, "imagic_inodes"), (0x0004, "has_journal"), (0x0008, "ext_attr"),
    (0x0010, "resize_inode"), (0x0020, "dir_index"), (0x0040, "lazy_bg"), (0x0080, "snapshot_bitmap"),
    (0x0100, "exclude_bitmap"), (0x0200, "sparse_super2"), (0x0400, "fast_commit"), (0x0800, "stable_inodes"),
    (0x1000, "orphan_file"),
];
const INCOMPAT_NAMES: &[(u32, &str)] = &[
    (0x0001, "compression"), (0x0002, "filetype"), (0x0004, "needs_recovery"), (0x0008, "journal_dev"),
    (0x0010, "meta_bg"), (0x0040, "extent"), (0x0080, "64bit"), (0x0100, "mmp"), (0x0200, "flex_bg"),
    (0x0400, "ea_inode"), (0x1000, "dirdata"), (0x2000, "metadata_csum_seed"), (0x4000, "large_dir"),
    (0x8000, "inline_data"), (0x10000, "encrypt"), (0x20000, "casefold"),
];
const RO_COMPAT_NAMES: &[(u32, &str)] = &[
    (0x0001, "sparse_super"), (0x0002, "large_file"), (0x0004, "btree_dir"), (0x0008, "huge_file"),
    (0x0010, "uninit_bg"), (0x0020, "dir_nlink"), (0x0040, "extra_isize"), (0x0080, "snapshot"),
    (0x0100, "quota"), (0x0200, "bigalloc"), (0x0400, "metadata_csum"), (0x0800, "replica"),
    (0x1000, "read-only"), (0x2000, "project"), (0x4000, "shared_blocks"), (0x8000, "verity"),
    (0x10000, "orphan_present"),
];

fn names(bits: u32, table: &[(u32, &str)]) -> Vec<String> {
    let mut out: Vec<String> = table.iter().filter(|(b, _)| bits & b != 0).map(|(_, n)| n.to_string()).collect();
    let known: u32 = table.iter().map(|(b, _)| b).fold(0, |a, b| a | b);
    for i in 0..32 {
        if bits & !known & (1 << i) != 0 {
            out.push(format!("unknown_{:#x}", 1u32 << i));
        }
    }
    out
}

/// The raw on-disk superblock fields we use (struct ext4_super_block, at byte 1024).
#[derive(Debug, Clone, Default)]
pub struct RawSuperblock {
    pub s_inodes_count: u32,
    pub s_blocks_count_lo: u32,
    pub s_r_blocks_count_lo: u32,
    pub s_free_blocks_count_lo: u32,
    pub s_free_inodes_count: u32,
    pub s_first_data_block: u32,
    pub s_log_block_size: u32,
    pub s_log_cluster_size: u32,
    pub s_blocks_per_group: u32,
    pub s_clusters_per_group: u32,
    pub s_inodes_per_group: u32,
    pub s_mtime: u32,
    pub s_wtime: u32,
    pub s_mnt_count: u16,
    pub s_max_mnt_count: i16,
    pub s_magic: u16,
    pub s_state: u16,
    pub s_errors: u16,
    pub s_lastcheck: u32,
    pub s_rev_level: u32,
    pub s_inode_size: u16,
    pub s_feature_compat: u32,
    pub s_feature_incompat: u32,
    pub s_feature_ro_compat: u32,
    pub s_uuid: [u8; 16],
    pub s_volume_name: [u8; 16],
    pub s_last_mounted: Vec<u8>,
    pub s_reserved_gdt_blocks: u16,
    pub s_journal_inum: u32,
    pub s_last_orphan: u32,
    pub s_desc_size: u16,
    pub s_first_meta_bg: u32,
    pub s_mkfs_time: u32,
    pub s_jnl_blocks: [u32; 17],
    pub s_blocks_count_hi: u32,
    pub s_r_blocks_count_hi: u32,
    pub s_free_blocks_count_hi: u32,
    pub s_kbytes_written: u64,
    pub s_error_count: u32,
    pub s_overhead_clusters: u32,
    pub s_backup_bgs: [u32; 2],
    pub s_checksum_seed: u32,
    pub s_wtime_hi: u8,
    pub s_mtime_hi: u8,
    pub s_mkfs_time_hi: u8,
    pub s_lastcheck_hi: u8,
    pub s_checksum: u32,
}

impl RawSuperblock {
    pub fn parse(b: &[u8]) -> Self {
        let mut s = RawSuperblock {
            s_inodes_count: le_u32(b, 0x00),
            s_blocks_count_lo: le_u32(b, 0x04),
            s_r_blocks_count_lo: le_u32(b, 0x08),
            s_free_blocks_count_lo: le_u32(b, 0x0C),
            s_free_inodes_count: le_u32(b, 0x10),
            s_first_data_block: le_u32(b, 0x14),
            s_log_block_size: le_u32(b, 0x18),
            s_log_cluster_size: le_u32(b, 0x1C),
            s_blocks_per_group: le_u32(b, 0x20),
            s_clusters_per_group: le_u32(b, 0x24),
            s_inodes_per_group: le_u32(b, 0x28),
            s_mtime: le_u32(b, 0x2C),
            s_wtime: le_u32(b, 0x30),
            s_mnt_count: le_u16(b, 0x34),
            s_max_mnt_count: le_u16(b, 0x36) as i16,
            s_magic: le_u16(b, 0x38),
            s_state: le_u16(b, 0x3A),
            s_errors: le_u16(b, 0x3C),
            s_lastcheck: le_u32(b, 0x40),
            s_rev_level: le_u32(b, 0x4C),
            s_inode_size: le_u16(b, 0x58),
            s_feature_compat: le_u32(b, 0x5C),
            s_feature_incompat: le_u32(b, 0x60),
            s_feature_ro_compat: le_u32(b, 0x64),
            s_reserved_gdt_blocks: le_u16(b, 0xCE),
            s_journal_inum: le_u32(b, 0xE0),
            s_last_orphan: le_u32(b, 0xE8),
            s_desc_size: le_u16(b, 0xFE),
            s_first_meta_bg: le_u32(b, 0x104),
            s_mkfs_time: le_u32(b, 0x108),
            s_blocks_count_hi: le_u32(b, 0x150),
            s_r_blocks_count_hi: le_u32(b, 0x154),
            s_free_blocks_count_hi: le_u32(b, 0x158),
            s_kbytes_written: super::block::le_u64(b, 0x178),
            s_error_count: le_u32(b, 0x194),
            s_overhead_clusters: le_u32(b, 0x248),
            s_backup_bgs: [le_u32(b, 0x24C), le_u32(b, 0x250)],
            s_checksum_seed: le_u32(b, 0x270),
            s_wtime_hi: b.get(0x274).copied().unwrap_or(0),
            s_mtime_hi: b.get(0x275).copied().unwrap_or(0),
            s_mkfs_time_hi: b.get(0x276).copied().unwrap_or(0),
            s_lastcheck_hi: b.get(0x277).copied().unwrap_or(0),
            s_checksum: le_u32(b, 0x3FC),
            ..Default::default()
        };
        if let Some(x) = b.get(0x68..0x78) {
            s.s_uuid.copy_from_slice(x);
        }
        if let Some(x) = b.get(0x78..0x88) {
            s.s_volume_name.copy_from_slice(x);
        }
        s.s_last_mounted = b.get(0x88..0xC8).unwrap_or(&[]).to_vec();
        for (i, v) in s.s_jnl_blocks.iter_mut().enumerate() {
            *v = le_u32(b, 0x10C + i * 4);
        }
        s
    }
}

/// The group descriptor fields statfs and the overhead need (struct ext4_group_desc).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupDesc {
    pub bg_block_bitmap: u64,
    pub bg_inode_bitmap: u64,
    pub bg_inode_table: u64,
    pub bg_free_blocks_count: u32,
    pub bg_free_inodes_count: u32,
    pub bg_flags: u16,
    pub bg_checksum: u16,
}

impl GroupDesc {
    /// `wide`: the descriptor is ≥ 64 bytes (EXT4_MIN_DESC_SIZE_64BIT), so the _hi halves count.
    pub fn parse(b: &[u8], wide: bool) -> Self {
        let hi = |off: usize| if wide { le_u32(b, off) as u64 } else { 0 };
        let hi16 = |off: usize| if wide { le_u16(b, off) as u32 } else { 0 };
        GroupDesc {
            bg_block_bitmap: le_u32(b, 0x00) as u64 | hi(0x20) << 32,
            bg_inode_bitmap: le_u32(b, 0x04) as u64 | hi(0x24) << 32,
            bg_inode_table: le_u32(b, 0x08) as u64 | hi(0x28) << 32,
            bg_free_blocks_count: le_u16(b, 0x0C) as u32 | hi16(0x2C) << 16,
            bg_free_inodes_count: le_u16(b, 0x0E) as u32 | hi16(0x2E) << 16,
            bg_flags: le_u16(b, 0x12),
            bg_checksum: le_u16(b, 0x1E),
        }
    }
}

/// Geometry derived and validated from the superblock, as ext4_fill_super derives it.
#[derive(Debug, Clone)]
pub struct Geometry {
    pub block_size: u64,
    pub log_block_size: u32,
    /// log2(blocks per cluster); 0 without bigalloc.
    pub cluster_bits: u32,
    pub blocks_count: u64,
    pub r_blocks_count: u64,
    pub first_data_block: u64,
    pub blocks_per_group: u64,
    pub clusters_per_group: u64,
    pub inodes_per_group: u64,
    pub inode_size: u64,
    pub desc_size: u64,
    pub desc_per_block: u64,
    pub groups_count: u64,
    /// Descriptor blocks (s_gdb_count).
    pub gdb_count: u64,
    /// Inode-table blocks per group (s_itb_per_group).
    pub itb_per_group: u64,
}

/// An ext2/3/4 filesystem opened for statfs: superblock plus every group descriptor.
pub struct Ext4 {
    pub sb: RawSuperblock,
    pub geo: Geometry,
    pub groups: Vec<GroupDesc>,
    pub warnings: Vec<String>,
    /// Journal length in blocks, when the journal is internal and could be sized.
    pub journal_blocks: Option<u64>,
}

/// df's view of the filesystem: the kernel's `struct kstatfs` for ext4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statfs {
    pub f_type: u32,
    pub f_bsize: u64,
    pub f_frsize: u64,
    pub f_blocks: u64,
    pub f_bfree: u64,
    pub f_bavail: u64,
    pub f_files: u64,
    pub f_ffree: u64,
    pub f_namelen: u32,
    pub f_fsid: [u32; 2],
    /// The overhead in blocks that was subtracted from s_blocks_count.
    pub overhead_blocks: u64,
    /// The kernel's reserved clusters (s_resv_clusters), in blocks.
    pub resv_blocks: u64,
}

fn bad(dev: &dyn BlockDevice, what: String) -> Error {
    Error::bad(format!("ext4 superblock of {}: {what}", dev.describe()))
}

impl Ext4 {
    pub fn open(dev: &dyn BlockDevice) -> Result<Self> {
        let raw = read_vec(dev, 1024, 1024).map_err(|e| e.context("reading the ext4 superblock"))?;
        let sb = RawSuperblock::parse(&raw);
        if sb.s_magic != EXT4_SUPER_MAGIC {
            return Err(bad(dev, format!("magic {:#06x} at byte 1080 is not 0xEF53", sb.s_magic)));
        }
        let mut warnings = Vec::new();
        let geo = geometry(&sb).map_err(|m| bad(dev, m))?;
        if sb.s_feature_ro_compat & RO_COMPAT_METADATA_CSUM != 0 {
            let got = crc32c_raw(!0, raw.get(..0x3FC).unwrap_or(&[]));
            if got != sb.s_checksum {
                warnings.push(format!(
                    "superblock checksum {got:#010x} does not match the stored {:#010x}",
                    sb.s_checksum
                ));
            }
        }
        // A copy cut short still has its group descriptors near the start: the numbers come out, but the
        // blocks past the end are gone.
        let fs_bytes = geo.blocks_count.saturating_mul(geo.block_size);
        if dev.size() < fs_bytes {
            warnings.push(format!(
                "{} is {} bytes, but its superblock says the filesystem is {fs_bytes} bytes ({} blocks of {}): truncated?",
                dev.describe(),
                dev.size(),
                geo.blocks_count,
                geo.block_size
            ));
        }
        let groups = read_groups(dev, &sb, &geo, &mut warnings)?;
        let mut fs = Ext4 { sb, geo, groups, warnings, journal_blocks: None };
        fs.journal_blocks = fs.journal_len(dev);
        Ok(fs)
    }

    pub fn has_compat(&self, f: u32) -> bool {
        self.sb.s_feature_compat & f != 0
    }
    pub fn has_incompat(&self, f: u32) -> bool {
        self.sb.s_feature_incompat & f != 0
    }
    pub fn has_ro_compat(&self, f: u32) -> bool {
        self.sb.s_feature_ro_compat & f != 0
    }

    /// ext4_bg_has_super: does group `g` carry a superblock (and GDT) backup?
    pub fn bg_has_super(&self, g: u64) -> bool {
        if g == 0 {
            return true;
        }
        if self.has_compat(COMPAT_SPARSE_SUPER2) {
            return g == self.sb.s_backup_bgs[0] as u64 || g == self.sb.s_backup_bgs[1] as u64;
        }
        if g <= 1 || !self.has_ro_compat(RO_COMPAT_SPARSE_SUPER) {
            return true;
        }
        if g & 1 == 0 {
            return false;
        }
        is_power_of(g, 3) || is_power_of(g, 5) || is_power_of(g, 7)
    }

    /// ext4_bg_num_gdb: descriptor blocks stored in group `g` (meta_bg puts one in the first, second
    /// and last group of each meta group).
    pub fn bg_num_gdb(&self, g: u64) -> u64 {
        let metagroup = g / self.geo.desc_per_block;
        if !self.has_incompat(INCOMPAT_META_BG) || metagroup < self.sb.s_first_meta_bg as u64 {
            if !self.bg_has_super(g) {
                return 0;
            }
            return if self.has_incompat(INCOMPAT_META_BG) { self.sb.s_first_meta_bg as u64 } else { self.geo.gdb_count };
        }
        let first = metagroup * self.geo.desc_per_block;
        let last = first + self.geo.desc_per_block - 1;
        u64::from(g == first || g == first + 1 || g == last)
    }

    /// ext4_calculate_overhead in clusters: blocks before s_first_data_block, per-group metadata,
    /// and the internal journal.
    pub fn calculate_overhead(&self) -> u64 {
        let geo = &self.geo;
        let mut overhead = geo.first_data_block >> geo.cluster_bits;
        if !self.has_ro_compat(RO_COMPAT_BIGALLOC) {
            for g in 0..geo.groups_count {
                let has_super = u64::from(self.bg_has_super(g));
                let resv = if has_super == 1 { self.sb.s_reserved_gdt_blocks as u64 } else { 0 };
                overhead += has_super + self.bg_num_gdb(g) + resv + geo.itb_per_group + 2;
            }
        } else {
            overhead += self.bigalloc_group_overhead().iter().sum::<u64>();
        }
        if let Some(j) = self.journal_blocks {
            overhead += j.div_ceil(1 << geo.cluster_bits);
        }
        overhead
    }

    /// count_overhead's bigalloc branch for every group at once: the clusters in each group covered by
    /// any group's bitmaps and inode table, its own superblock backup and descriptor blocks.
    fn bigalloc_group_overhead(&self) -> Vec<u64> {
        let geo = &self.geo;
        let mut marks: Vec<Vec<u64>> = vec![Vec::new(); geo.groups_count as usize];
        let group_of = |b: u64| -> Option<(usize, u64)> {
            let rel = b.checked_sub(geo.first_data_block)?;
            let g = rel / geo.blocks_per_group;
            (g < geo.groups_count).then_some((g as usize, rel % geo.blocks_per_group))
        };
        let mut counted = vec![0u64; geo.groups_count as usize];
        for d in &self.groups {
            for b in [d.bg_block_bitmap, d.bg_inode_bitmap] {
                if let Some((g, off)) = group_of(b) {
                    marks[g].push(off >> geo.cluster_bits);
                    counted[g] += 1;
                }
            }
            if let Some((g, off)) = group_of(d.bg_inode_table) {
                // The kernel wants the whole table inside the group (b + itb <= last_block).
                if off + geo.itb_per_group < geo.blocks_per_group {
                    for j in 0..geo.itb_per_group {
                        marks[g].push((off + j) >> geo.cluster_bits);
                    }
                    counted[g] += geo.itb_per_group;
                }
            }
        }
        let mut out = Vec::with_capacity(marks.len());
        for (g, m) in marks.iter_mut().enumerate() {
            let mut s = 0u64;
            if self.bg_has_super(g as u64) {
                m.push(0);
                s = 1;
                counted[g] += 1;
            }
            let mut j = self.bg_num_gdb(g as u64);
            if s + j > geo.blocks_per_group {
                j = geo.blocks_per_group - s;
            }
            counted[g] += j;
            for k in 0..j {
                m.push((s + k) >> geo.cluster_bits);
            }
            if counted[g] == 0 {
                out.push(0);
                continue;
            }
            m.sort_unstable();
            m.dedup();
            out.push(m.iter().filter(|&&c| c < geo.clusters_per_group).count() as u64);
        }
        out
    }

    /// The journal's length in blocks (jbd2 j_total_len): the journal inode's size, capped by the
    /// journal superblock's s_maxlen when we can find it.
    fn journal_len(&self, dev: &dyn BlockDevice) -> Option<u64> {
        if !self.has_compat(COMPAT_HAS_JOURNAL) || self.sb.s_journal_inum == 0 {
            return None;
        }
        let bs = self.geo.block_size;
        let (size, first_block) = match self.read_inode(dev, self.sb.s_journal_inum as u64) {
            Ok(inode) => {
                let size = le_u32(&inode, 0x04) as u64 | (le_u32(&inode, 0x6C) as u64) << 32;
                (size, first_block_of(&inode[0x28..0x64]))
            }
            Err(_) => {
                // The superblock keeps a copy of the journal inode's i_block and size (s_jnl_blocks).
                let j = &self.sb.s_jnl_blocks;
                let size = j[16] as u64 | (j[15] as u64) << 32;
                let iblock: Vec<u8> = j[..15].iter().flat_map(|v| v.to_le_bytes()).collect();
                (size, first_block_of(&iblock))
            }
        };
        let mut blocks = size / bs;
        if let Some(b) = first_block {
            if let Ok(jsb) = read_vec(dev, b.saturating_mul(bs), 1024) {
                let magic = super::block::be_u32(&jsb, 0);
                let maxlen = super::block::be_u32(&jsb, 0x10) as u64;
                if magic == 0xC03B_3998 && maxlen > 0 && maxlen < blocks {
                    blocks = maxlen;
                }
            }
        }
        (blocks > 0).then_some(blocks)
    }

    /// The on-disk inode `ino` (1-based), as stored in its group's inode table.
    pub fn read_inode(&self, dev: &dyn BlockDevice, ino: u64) -> Result<Vec<u8>> {
        let geo = &self.geo;
        if ino == 0 || ino > self.sb.s_inodes_count as u64 {
            return Err(Error::bad(format!("inode {ino} is out of range")));
        }
        let g = (ino - 1) / geo.inodes_per_group;
        let idx = (ino - 1) % geo.inodes_per_group;
        let d = self.groups.get(g as usize).ok_or_else(|| Error::bad(format!("inode {ino}: no group {g}")))?;
        let off = d
            .bg_inode_table
            .checked_mul(geo.block_size)
            .and_then(|o| o.checked_add(idx * geo.inode_size))
            .ok_or_else(|| Error::bad(format!("inode {ino}: inode table block {} overflows", d.bg_inode_table)))?;
        let mut v = read_vec(dev, off, geo.inode_size.max(128) as usize)?;
        v.resize(v.len().max(0x80), 0);
        Ok(v)
    }

    /// statfs as ext4_statfs reports it right after mount (no dirty clusters, no minix_df).
    pub fn statfs(&self) -> Statfs {
        let geo = &self.geo;
        let cluster_ratio_bits = geo.cluster_bits;
        // ext4_fill_super: s_overhead_clusters is trusted only with bigalloc and when ≤ blocks_count.
        let stored = self.sb.s_overhead_clusters as u64;
        let overhead_clusters = if self.has_ro_compat(RO_COMPAT_BIGALLOC) && stored != 0 && stored <= geo.blocks_count {
            stored
        } else {
            self.calculate_overhead()
        };
        let overhead_blocks = overhead_clusters << cluster_ratio_bits;
        let free_clusters: u64 = self.groups.iter().map(|d| d.bg_free_blocks_count as u64).sum();
        let free_inodes: u64 = self.groups.iter().map(|d| d.bg_free_inodes_count as u64).sum();
        let resv_blocks = self.resv_clusters() << cluster_ratio_bits;
        let f_bfree = free_clusters << cluster_ratio_bits;
        let reserved = geo.r_blocks_count.saturating_add(resv_blocks);
        let f_bavail = f_bfree.saturating_sub(reserved);
        let u = &self.sb.s_uuid;
        let lo = u64::from_le_bytes([u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7]]);
        let hi = u64::from_le_bytes([u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]]);
        let fsid = lo ^ hi;
        Statfs {
            f_type: EXT4_SUPER_MAGIC as u32,
            f_bsize: geo.block_size,
            f_frsize: geo.block_size,
            f_blocks: geo.blocks_count.saturating_sub(overhead_blocks),
            f_bfree,
            f_bavail,
            f_files: self.sb.s_inodes_count as u64,
            f_ffree: free_inodes,
            f_namelen: 255,
            f_fsid: [fsid as u32, (fsid >> 32) as u32],
            overhead_blocks,
            resv_blocks,
        }
    }

    /// ext4_calculate_resv_clusters: with extents, min(2% of the clusters, 4096).
    pub fn resv_clusters(&self) -> u64 {
        if !self.has_incompat(INCOMPAT_EXTENTS) {
            return 0;
        }
        ((self.geo.blocks_count >> self.geo.cluster_bits) / 50).min(4096)
    }

    /// The superblock's own totals, which the kernel only refreshes at mount/unmount/sync_fs.
    pub fn superblock_free_blocks(&self) -> u64 {
        let hi = if self.has_incompat(INCOMPAT_64BIT) { self.sb.s_free_blocks_count_hi as u64 } else { 0 };
        self.sb.s_free_blocks_count_lo as u64 | hi << 32
    }

    pub fn needs_recovery(&self) -> bool {
        self.has_incompat(INCOMPAT_RECOVER)
    }

    pub fn orphan_present(&self) -> bool {
        self.has_ro_compat(RO_COMPAT_ORPHAN_PRESENT) || self.sb.s_last_orphan != 0
    }

    pub fn features(&self) -> (Vec<String>, Vec<String>, Vec<String>) {
        (
            names(self.sb.s_feature_compat, COMPAT_NAMES),
            names(self.sb.s_feature_incompat, INCOMPAT_NAMES),
            names(self.sb.s_feature_ro_compat, RO_COMPAT_NAMES),
        )
    }

    pub fn label(&self) -> String {
        c_string(&self.sb.s_volume_name)
    }

    pub fn last_mounted(&self) -> String {
        c_string(&self.sb.s_last_mounted)
    }

    pub fn uuid(&self) -> String {
        let u = &self.sb.s_uuid;
        let h: Vec<String> = u.iter().map(|b| format!("{b:02x}")).collect();
        format!("{}-{}-{}-{}-{}", h[0..4].concat(), h[4..6].concat(), h[6..8].concat(), h[8..10].concat(), h[10..16].concat())
    }

    /// 34-bit timestamps (low 32 bits plus the _hi byte), `None` when never set.
    pub fn time(lo: u32, hi: u8) -> Option<i64> {
        let t = lo as i64 | (hi as i64) << 32;
        (t != 0).then_some(t)
    }
}

fn c_string(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// First physical block of a file from its i_block area: an extent leaf at depth 0 or a direct block.
fn first_block_of(i_block: &[u8]) -> Option<u64> {
    if le_u16(i_block, 0) == 0xF30A {
        let entries = le_u16(i_block, 2);
        let depth = le_u16(i_block, 6);
        if entries == 0 || depth != 0 {
            return None;
        }
        // ext4_extent: ee_block u32, ee_len u16, ee_start_hi u16, ee_start_lo u32.
        if le_u32(i_block, 12) != 0 {
            return None;
        }
        Some(le_u32(i_block, 12 + 8) as u64 | (le_u16(i_block, 12 + 6) as u64) << 32)
    } else {
        let b = le_u32(i_block, 0) as u64;
        (b != 0).then_some(b)
    }
}

fn is_power_of(mut g: u64, base: u64) -> bool {
    while g > 1 && g.is_multiple_of(base) {
        g /= base;
    }
    g == 1
}

/// Validate the superblock the way ext4_fill_super does before trusting any geometry.
pub fn geometry(sb: &RawSuperblock) -> std::result::Result<Geometry, String> {
    if sb.s_log_block_size > 6 {
        return Err(format!("s_log_block_size {} is over 6 (blocks over 64 KiB)", sb.s_log_block_size));
    }
    let log_block_size = sb.s_log_block_size + 10;
    let block_size = 1u64 << log_block_size;
    let incompat = sb.s_feature_incompat;
    let wide = incompat & INCOMPAT_64BIT != 0;
    let blocks_count = sb.s_blocks_count_lo as u64 | if wide { (sb.s_blocks_count_hi as u64) << 32 } else { 0 };
    let r_blocks_count = sb.s_r_blocks_count_lo as u64 | if wide { (sb.s_r_blocks_count_hi as u64) << 32 } else { 0 };
    let bigalloc = sb.s_feature_ro_compat & RO_COMPAT_BIGALLOC != 0;
    let cluster_bits = if bigalloc {
        if sb.s_log_cluster_size < sb.s_log_block_size || sb.s_log_cluster_size - sb.s_log_block_size > 16 {
            return Err(format!(
                "s_log_cluster_size {} does not fit s_log_block_size {}",
                sb.s_log_cluster_size, sb.s_log_block_size
            ));
        }
        sb.s_log_cluster_size - sb.s_log_block_size
    } else {
        0
    };
    let bpg = sb.s_blocks_per_group as u64;
    if bpg == 0 || bpg > (block_size * 8) << cluster_bits || !bpg.is_multiple_of(8) {
        return Err(format!("s_blocks_per_group {bpg} is 0, not a multiple of 8 or over {}", (block_size * 8) << cluster_bits));
    }
    let cpg = if bigalloc { sb.s_clusters_per_group as u64 } else { bpg };
    if cpg == 0 || cpg > block_size * 8 || (bigalloc && cpg << cluster_bits != bpg) {
        return Err(format!("s_clusters_per_group {cpg} does not match s_blocks_per_group {bpg}"));
    }
    let inode_size = if sb.s_rev_level == 0 { 128 } else { sb.s_inode_size as u64 };
    if inode_size < 128 || inode_size > block_size || !inode_size.is_power_of_two() {
        return Err(format!("s_inode_size {inode_size} is not a power of two in 128..={block_size}"));
    }
    let ipg = sb.s_inodes_per_group as u64;
    let inodes_per_block = block_size / inode_size;
    if ipg < inodes_per_block || ipg > block_size * 8 {
        return Err(format!("s_inodes_per_group {ipg} is not in {inodes_per_block}..={}", block_size * 8));
    }
    let desc_size = if wide {
        let d = sb.s_desc_size as u64;
        if !(64..=1024).contains(&d) || !d.is_power_of_two() {
            return Err(format!("s_desc_size {d} is not a power of two in 64..=1024"));
        }
        d
    } else {
        32
    };
    let first_data_block = sb.s_first_data_block as u64;
    if first_data_block >= blocks_count {
        return Err(format!("s_first_data_block {first_data_block} is not below s_blocks_count {blocks_count}"));
    }
    if block_size == 1024 && first_data_block != 1 && !bigalloc || block_size > 1024 && first_data_block != 0 {
        return Err(format!("s_first_data_block {first_data_block} is wrong for {block_size}-byte blocks"));
    }
    let groups_count = (blocks_count - first_data_block).div_ceil(bpg);
    if groups_count > u32::MAX as u64 {
        return Err(format!("{groups_count} block groups overflow the 32-bit group number"));
    }
    if groups_count * ipg != sb.s_inodes_count as u64 {
        return Err(format!(
            "s_inodes_count {} is not {groups_count} groups × {ipg} inodes",
            sb.s_inodes_count
        ));
    }
    let desc_per_block = block_size / desc_size;
    let gdb_count = groups_count.div_ceil(desc_per_block);
    Ok(Geometry {
        block_size,
        log_block_size,
        cluster_bits,
        blocks_count,
        r_blocks_count,
        first_data_block,
        blocks_per_group: bpg,
        clusters_per_group: cpg,
        inodes_per_group: ipg,
        inode_size,
        desc_size,
        desc_per_block,
        groups_count,
        gdb_count,
        itb_per_group: ipg.div_ceil(inodes_per_block),
    })
}

/// Read every group descriptor (descriptor_loc: contiguous after the superblock, or per meta group).
fn read_groups(dev: &dyn BlockDevice, sb: &RawSuperblock, geo: &Geometry, warnings: &mut Vec<String>) -> Result<Vec<GroupDesc>> {
    let total = geo.gdb_count * geo.block_size;
    if total > MAX_GDT_BYTES {
        return Err(Error::Unsupported(format!(
            "ext4 with {} block groups ({} MiB of descriptors) is larger than we read (limit {} MiB)",
            geo.groups_count,
            total >> 20,
            MAX_GDT_BYTES >> 20
        )));
    }
    let meta_bg = sb.s_feature_incompat & INCOMPAT_META_BG != 0;
    let logical_sb_block = 1024 / geo.block_size;
    let first_meta_bg = if meta_bg { (sb.s_first_meta_bg as u64).min(geo.gdb_count) } else { geo.gdb_count };
    let mut bytes = Vec::with_capacity(total as usize);
    // Blocks before the first meta group sit right after the superblock: one read.
    if first_meta_bg > 0 {
        let off = (logical_sb_block + 1) * geo.block_size;
        bytes.extend(read_vec(dev, off, (first_meta_bg * geo.block_size) as usize).map_err(|e| {
            e.context(format!("reading {first_meta_bg} group descriptor blocks at byte {off:#x}"))
        })?);
    }
    let tmp = Ext4 { sb: sb.clone(), geo: geo.clone(), groups: vec![], warnings: vec![], journal_blocks: None };
    for nr in first_meta_bg..geo.gdb_count {
        let bg = geo.desc_per_block * nr;
        let mut has_super = u64::from(tmp.bg_has_super(bg));
        if geo.block_size == 1024 && nr == 0 && sb.s_first_data_block == 0 {
            has_super += 1;
        }
        let block = geo.first_data_block + bg * geo.blocks_per_group + has_super;
        let off = block * geo.block_size;
        bytes.extend(read_vec(dev, off, geo.block_size as usize).map_err(|e| {
            e.context(format!("reading meta_bg descriptor block {nr} at byte {off:#x}"))
        })?);
    }
    let wide = geo.desc_size >= 64;
    let metadata_csum = sb.s_feature_ro_compat & RO_COMPAT_METADATA_CSUM != 0;
    let gdt_csum = sb.s_feature_ro_compat & RO_COMPAT_GDT_CSUM != 0;
    let seed = if sb.s_feature_incompat & INCOMPAT_CSUM_SEED != 0 { sb.s_checksum_seed } else { crc32c_raw(!0, &sb.s_uuid) };
    let mut bad_csums = Vec::new();
    let mut groups = Vec::with_capacity(geo.groups_count as usize);
    for g in 0..geo.groups_count {
        let o = (g * geo.desc_size) as usize;
        let raw = bytes.get(o..o + geo.desc_size as usize).ok_or_else(|| Error::bad(format!("group descriptor {g} is missing")))?;
        let d = GroupDesc::parse(raw, wide);
        let le_group = (g as u32).to_le_bytes();
        let want = if metadata_csum {
            let mut c = crc32c_raw(seed, &le_group);
            c = crc32c_raw(c, &raw[..0x1E]);
            c = crc32c_raw(c, &[0, 0]);
            c = crc32c_raw(c, &raw[0x20..]);
            Some((c & 0xFFFF) as u16)
        } else if gdt_csum {
            let mut c = crc16(!0, &sb.s_uuid);
            c = crc16(c, &le_group);
            c = crc16(c, &raw[..0x1E]);
            if sb.s_feature_incompat & INCOMPAT_64BIT != 0 {
                c = crc16(c, &raw[0x20..]);
            }
            Some(c)
        } else {
            None
        };
        if want.is_some_and(|w| w != d.bg_checksum) && bad_csums.len() < 8 {
            bad_csums.push(g);
        }
        groups.push(d);
    }
    if !bad_csums.is_empty() {
        warnings.push(format!("group descriptor checksum mismatch in group(s) {bad_csums:?}"));
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::block::MemDevice;

    /// A small ext2-like filesystem: 1 KiB blocks, 2 groups of 8192 blocks, 2048 inodes each.
    fn synthetic() -> Vec<u8> {
        let mut d = vec![0u8; 16384 * 1024];
        let sb = 1024;
        let put32 = |d: &mut Vec<u8>, o: usize, v: u32| d[o..o + 4].copy_from_slice(&v.to_le_bytes());
        let put16 = |d: &mut Vec<u8>, o: usize, v: u16| d[o..o + 2].copy_from_slice(&v.to_le_bytes());
        put32(&mut d, sb, 4096); // inodes
        put32(&mut d, sb + 0x04, 16384);
        put32(&mut d, sb + 0x08, 819);
        put32(&mut d, sb + 0x0C, 999); // stale
        put32(&mut d, sb + 0x14, 1);
        put32(&mut d, sb + 0x20, 8192);
        put32(&mut d, sb + 0x24, 8192);
        put32(&mut d, sb + 0x28, 2048);
        put16(&mut d, sb + 0x38, 0xEF53);
        put32(&mut d, sb + 0x4C, 1);
        put16(&mut d, sb + 0x58, 256);
        put32(&mut d, sb + 0x64, RO_COMPAT_SPARSE_SUPER);
        // GDT at block 2: group 0 and 1.
        for (g, free_b, free_i) in [(0usize, 7000u16, 2000u16), (1, 8000, 2048)] {
            let o = 2048 + g * 32;
            put32(&mut d, o, 3 + g as u32 * 8192);
            put16(&mut d, o + 0x0C, free_b);
            put16(&mut d, o + 0x0E, free_i);
        }
        d
    }

    #[test]
    fn statfs_of_synthetic() {
        let dev = MemDevice { bytes: synthetic(), name: "s".into() };
        let fs = Ext4::open(&dev).unwrap();
        let st = fs.statfs();
        // Overhead: first data block 1 + per group (super 1 + gdb 1 + itb 512 + 2 bitmaps).
        assert_eq!(fs.geo.itb_per_group, 512);
        assert_eq!(st.overhead_blocks, 1 + 2 * (1 + 1 + 512 + 2));
        assert_eq!(st.f_blocks, 16384 - st.overhead_blocks);
        assert_eq!(st.f_bfree, 15000);
        assert_eq!(st.f_bavail, 15000 - 819);
        assert_eq!(st.f_files, 4096);
        assert_eq!(st.f_ffree, 4048);
        assert_eq!(fs.superblock_free_blocks(), 999);
    }

    fn with(f: impl Fn(&mut Vec<u8>)) -> Result<Ext4> {
        let mut d = synthetic();
        f(&mut d);
        Ext4::open(&MemDevice { bytes: d, name: "h".into() })
    }

    #[test]
    fn hostile_superblocks() {
        let e = |r: Result<Ext4>| match r {
            Err(Error::BadData(m)) | Err(Error::Unsupported(m)) => m,
            Err(other) => panic!("unexpected {other:?}"),
            Ok(_) => panic!("accepted"),
        };
        assert!(e(with(|d| d[1024 + 0x18] = 7)).contains("s_log_block_size"));
        assert!(e(with(|d| d[1024 + 0x20..1024 + 0x24].fill(0))).contains("s_blocks_per_group"));
        assert!(e(with(|d| {
            d[1024 + 0x60] = 0x80; // 64bit
            d[1024 + 0xFE..1024 + 0x100].copy_from_slice(&4000u16.to_le_bytes());
        }))
        .contains("s_desc_size"));
        // A blocks count that makes 2^32+ groups.
        assert!(e(with(|d| {
            d[1024 + 0x60] = 0x80;
            d[1024 + 0xFE..1024 + 0x100].copy_from_slice(&64u16.to_le_bytes());
            d[1024 + 0x150..1024 + 0x154].copy_from_slice(&0x0010_0000u32.to_le_bytes());
        }))
        .contains("group"));
        assert!(e(with(|d| d[1024..1028].copy_from_slice(&4097u32.to_le_bytes()))).contains("s_inodes_count"));
        assert!(e(with(|d| d[1024 + 0x38] = 0)).contains("magic"));
        // Truncated: descriptors past the end.
        let mut d = synthetic();
        d.truncate(1500);
        assert!(Ext4::open(&MemDevice { bytes: d, name: "t".into() }).is_err());
    }

    #[test]
    fn sparse_super_groups() {
        let fs = with(|_| {}).unwrap();
        let has: Vec<u64> = (0..60).filter(|&g| fs.bg_has_super(g)).collect();
        assert_eq!(has, vec![0, 1, 3, 5, 7, 9, 25, 27, 49]);
    }
}
