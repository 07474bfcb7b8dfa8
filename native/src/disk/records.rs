//! The disk side's records: what an image holds (`DiskDescription`) and its filesystem's space as the
//! guest kernel's statfs computes it, with df's figures (`FilesystemUsage`): `nearfield df --json`.

use schemars::JsonSchema;
use serde::Serialize;

use super::ext4::Ext4;
use super::Disk;
use crate::records::Hex;
use crate::Result;

/// One partition of the image.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DiskPartition {
    /// 1-based (MBR logical partitions from 5).
    pub number: u32,
    /// Byte offset and size on the virtual disk.
    pub start_bytes: u64,
    pub size_bytes: u64,
    /// "0x83" (MBR) or the type GUID (GPT).
    pub type_id: String,
    /// "Linux filesystem", "EFI System", …
    #[serde(rename = "type")]
    pub type_name: String,
    /// GPT partition name, "" for MBR.
    pub name: String,
    /// What is on it: ext4, xfs, btrfs, LVM2_member, crypto_LUKS, swap, vfat, unknown …
    pub filesystem: String,
}

/// The image: format, backing chain, partitions, and which filesystem was chosen.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DiskDescription {
    pub path: String,
    /// "raw" or "qcow2".
    pub format: String,
    pub virtual_size_bytes: u64,
    /// Backing files, nearest first.
    pub backing_chain: Vec<String>,
    /// "none", "mbr" or "gpt".
    pub partition_table: String,
    pub partitions: Vec<DiskPartition>,
    /// The partition the filesystem was taken from; null for a bare filesystem or when none fit.
    pub selected_partition: Option<u32>,
    /// Where the filesystem lies on the virtual disk.
    pub filesystem_offset_bytes: Option<u64>,
    pub filesystem_size_bytes: Option<u64>,
    /// What the filesystem device holds (ext4, xfs …, unknown).
    pub filesystem: String,
    pub warnings: Vec<String>,
}

/// struct statfs as the guest kernel's ext4_statfs() fills it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatfsFields {
    pub f_type: Hex,
    pub f_bsize: u64,
    pub f_frsize: u64,
    pub f_blocks: u64,
    pub f_bfree: u64,
    pub f_bavail: u64,
    pub f_files: u64,
    pub f_ffree: u64,
    pub f_namelen: u32,
    /// The two 32-bit halves of f_fsid, as the kernel fills `__kernel_fsid_t.val`.
    pub f_fsid: [Hex; 2],
}

/// What coreutils df prints, from the statfs.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DfFigures {
    pub size_bytes: u64,
    /// f_blocks − f_bfree.
    pub used_bytes: u64,
    pub avail_bytes: u64,
    /// ⌈used·100 / (used + avail)⌉, null when both are 0.
    pub use_percent: Option<u64>,
    pub inodes: u64,
    pub inodes_used: u64,
    pub inodes_free: u64,
    pub inodes_use_percent: Option<u64>,
}

/// The superblock's own facts.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Superblock {
    pub label: String,
    pub uuid: String,
    /// "clean" or "not clean", plus " with errors" when EXT4_ERROR_FS is set.
    pub state: String,
    /// s_errors: continue, remount-ro or panic.
    pub errors_behavior: String,
    /// The journal has not been replayed: the guest had it mounted (live or crashed).
    pub needs_recovery: bool,
    pub orphans_present: bool,
    pub features_compat: Vec<String>,
    pub features_incompat: Vec<String>,
    pub features_ro_compat: Vec<String>,
    pub last_mounted_on: String,
    /// Unix seconds; null when never set.
    pub mount_time: Option<i64>,
    pub write_time: Option<i64>,
    pub check_time: Option<i64>,
    pub mkfs_time: Option<i64>,
    pub mount_count: u32,
    pub max_mount_count: i32,
    pub error_count: u32,
    pub kbytes_written: u64,
    pub block_size: u64,
    pub cluster_size: u64,
    pub blocks_count: u64,
    pub reserved_blocks: u64,
    pub inodes_count: u64,
    pub groups_count: u64,
    pub journal_blocks: Option<u64>,
    /// The superblock's own totals: the kernel refreshes them only at mount and sync, so they lag.
    pub free_blocks: u64,
    pub free_inodes: u64,
    /// They differ from the group descriptors' sums that statfs uses.
    pub free_counts_stale: bool,
}

/// A guest filesystem's space as its kernel reports it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FilesystemUsage {
    /// The image, and ":N" for a partition.
    pub device: String,
    /// ext2, ext3 or ext4.
    pub filesystem: String,
    /// Where the guest mounted it, when its RAM says (null from the disk alone).
    pub mountpoint: Option<String>,
    pub statfs: StatfsFields,
    pub df: DfFigures,
    /// Blocks subtracted from s_blocks_count (ext4_calculate_overhead or s_overhead_clusters).
    pub overhead_blocks: u64,
    /// The kernel's own reservation (s_resv_clusters) in blocks, on top of s_r_blocks_count.
    pub kernel_reserved_blocks: u64,
    pub superblock: Superblock,
    pub image: DiskDescription,
    /// Checksum mismatches and other non-fatal findings.
    pub warnings: Vec<String>,
}

pub fn describe(d: &Disk) -> DiskDescription {
    let sel = d.selected.and_then(|n| d.partitions.iter().find(|p| p.partition.number == n));
    let fs_size = d.fs_device().ok().map(|f| f.size());
    DiskDescription {
        path: d.path.display().to_string(),
        format: d.format.name().into(),
        virtual_size_bytes: d.image.size(),
        backing_chain: d.backing_chain.clone(),
        partition_table: d.table.name().into(),
        partitions: d
            .partitions
            .iter()
            .map(|p| DiskPartition {
                number: p.partition.number,
                start_bytes: p.partition.start,
                size_bytes: p.partition.size,
                type_id: p.partition.type_id.clone(),
                type_name: p.partition.type_name.clone(),
                name: p.partition.name.clone(),
                filesystem: p.content.name().into(),
            })
            .collect(),
        selected_partition: d.selected,
        filesystem_offset_bytes: fs_size.map(|_| sel.map_or(0, |p| p.partition.start)),
        filesystem_size_bytes: fs_size,
        filesystem: d.content.name().into(),
        warnings: d.warnings.clone(),
    }
}

/// coreutils df: ⌈part·100 / whole⌉.
fn ceil_percent(part: u64, whole: u64) -> Option<u64> {
    if whole == 0 {
        return None;
    }
    let p = part as u128 * 100;
    Some(p.div_ceil(whole as u128) as u64)
}

/// The filesystem's statfs (ext2/3/4), df's figures and the superblock's facts.
pub fn usage(d: &Disk) -> Result<FilesystemUsage> {
    let dev = d.ext_device()?;
    let fs = Ext4::open(dev.as_ref())?;
    let st = fs.statfs();
    let sb = &fs.sb;
    let (compat, incompat, ro_compat) = fs.features();
    let mut state = if sb.s_state & 1 != 0 { "clean".to_string() } else { "not clean".to_string() };
    if sb.s_state & 2 != 0 {
        state.push_str(" with errors");
    }
    let errors_behavior = match sb.s_errors {
        1 => "continue",
        2 => "remount-ro",
        3 => "panic",
        _ => "unknown",
    };
    let mut warnings = d.warnings.clone();
    warnings.extend(fs.warnings.iter().cloned());
    let used = st.f_blocks.saturating_sub(st.f_bfree);
    let iused = st.f_files.saturating_sub(st.f_ffree);
    let bytes = |blocks: u64| blocks.saturating_mul(st.f_frsize);
    let superblock_free_blocks = fs.superblock_free_blocks();
    let superblock_free_inodes = sb.s_free_inodes_count as u64;
    Ok(FilesystemUsage {
        device: match d.selected {
            Some(n) => format!("{}:{n}", d.path.display()),
            None => d.path.display().to_string(),
        },
        filesystem: d.content.name().into(),
        mountpoint: None,
        statfs: StatfsFields {
            f_type: Hex(st.f_type as u64),
            f_bsize: st.f_bsize,
            f_frsize: st.f_frsize,
            f_blocks: st.f_blocks,
            f_bfree: st.f_bfree,
            f_bavail: st.f_bavail,
            f_files: st.f_files,
            f_ffree: st.f_ffree,
            f_namelen: st.f_namelen,
            f_fsid: [Hex(st.f_fsid[0] as u64), Hex(st.f_fsid[1] as u64)],
        },
        df: DfFigures {
            size_bytes: bytes(st.f_blocks),
            used_bytes: bytes(used),
            avail_bytes: bytes(st.f_bavail),
            use_percent: ceil_percent(used, used.saturating_add(st.f_bavail)),
            inodes: st.f_files,
            inodes_used: iused,
            inodes_free: st.f_ffree,
            inodes_use_percent: ceil_percent(iused, st.f_files),
        },
        overhead_blocks: st.overhead_blocks,
        kernel_reserved_blocks: st.resv_blocks,
        superblock: Superblock {
            label: fs.label(),
            uuid: fs.uuid(),
            state,
            errors_behavior: errors_behavior.into(),
            needs_recovery: fs.needs_recovery(),
            orphans_present: fs.orphan_present(),
            features_compat: compat,
            features_incompat: incompat,
            features_ro_compat: ro_compat,
            last_mounted_on: fs.last_mounted(),
            mount_time: Ext4::time(sb.s_mtime, sb.s_mtime_hi),
            write_time: Ext4::time(sb.s_wtime, sb.s_wtime_hi),
            check_time: Ext4::time(sb.s_lastcheck, sb.s_lastcheck_hi),
            mkfs_time: Ext4::time(sb.s_mkfs_time, sb.s_mkfs_time_hi),
            mount_count: sb.s_mnt_count as u32,
            max_mount_count: sb.s_max_mnt_count as i32,
            error_count: sb.s_error_count,
            kbytes_written: sb.s_kbytes_written,
            block_size: fs.geo.block_size,
            cluster_size: fs.geo.block_size << fs.geo.cluster_bits,
            blocks_count: fs.geo.blocks_count,
            reserved_blocks: fs.geo.r_blocks_count,
            inodes_count: sb.s_inodes_count as u64,
            groups_count: fs.geo.groups_count,
            journal_blocks: fs.journal_blocks,
            free_blocks: superblock_free_blocks,
            free_inodes: superblock_free_inodes,
            free_counts_stale: superblock_free_blocks != st.f_bfree || superblock_free_inodes != st.f_ffree,
        },
        image: describe(d),
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::ceil_percent;

    #[test]
    fn df_percentages_round_up_like_coreutils() {
        assert_eq!(ceil_percent(0, 10), Some(0));
        assert_eq!(ceil_percent(1, 3), Some(34));
        assert_eq!(ceil_percent(3, 3), Some(100));
        assert_eq!(ceil_percent(5, 0), None);
        assert_eq!(ceil_percent(u64::MAX, u64::MAX), Some(100));
    }
}
