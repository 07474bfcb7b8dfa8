//! Binding for the disk half: `DiskImage` opens an image read-only, picks the partition, and gives
//! bytes (for the libext2fs WASM bridge), a description, and the ext4 statfs.

use std::path::PathBuf;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::to_js;
use crate::disk::{self, ext4::Ext4, Disk};
use crate::Error;

/// Largest single `readAt`: keeps a hostile or buggy caller from asking for gigabytes at once.
const MAX_READ: u32 = 4 << 20;

#[napi(object)]
pub struct DiskPartition {
    /// 1-based (MBR logical partitions from 5).
    pub number: u32,
    pub start: BigInt,
    pub size: BigInt,
    /// "0x83" (MBR) or the type GUID (GPT).
    pub type_id: String,
    /// "Linux filesystem", "EFI System", …
    #[napi(js_name = "type")]
    pub type_name: String,
    /// GPT partition name, "" for MBR.
    pub name: String,
    /// What is on it: ext4, xfs, btrfs, LVM2_member, crypto_LUKS, swap, vfat, unknown …
    pub filesystem: String,
}

#[napi(object)]
pub struct DiskDescription {
    pub path: String,
    /// "raw" or "qcow2".
    pub format: String,
    pub virtual_size: BigInt,
    /// Backing files, nearest first.
    pub backing_chain: Vec<String>,
    /// "none", "mbr" or "gpt".
    pub partition_table: String,
    pub partitions: Vec<DiskPartition>,
    /// The partition the filesystem was taken from; absent for a bare filesystem or when none fit.
    pub selected_partition: Option<u32>,
    /// Byte offset of the filesystem in the virtual disk.
    pub filesystem_offset: Option<BigInt>,
    pub filesystem_size: Option<BigInt>,
    /// What the filesystem device holds (ext4, xfs …, unknown).
    pub filesystem: String,
    pub warnings: Vec<String>,
}

#[napi(object)]
pub struct DiskStatfs {
    pub f_type: u32,
    pub f_bsize: BigInt,
    pub f_frsize: BigInt,
    pub f_blocks: BigInt,
    pub f_bfree: BigInt,
    pub f_bavail: BigInt,
    pub f_files: BigInt,
    pub f_ffree: BigInt,
    pub f_namelen: u32,
    /// The two 32-bit halves of f_fsid, as the kernel fills `__kernel_fsid_t.val`.
    pub f_fsid: Vec<u32>,
    /// Blocks subtracted from s_blocks_count (ext4_calculate_overhead or s_overhead_clusters).
    pub overhead_blocks: BigInt,
    /// The kernel's own reservation (s_resv_clusters) in blocks, on top of s_r_blocks_count.
    pub resv_blocks: BigInt,
    /// ext2, ext3 or ext4.
    pub filesystem: String,
    pub label: String,
    pub uuid: String,
    /// "clean", "not clean", plus "errors" when EXT4_ERROR_FS is set.
    pub state: String,
    /// s_errors behaviour: continue, remount-ro, panic.
    pub errors_behavior: String,
    pub needs_recovery: bool,
    pub orphans_present: bool,
    pub features_compat: Vec<String>,
    pub features_incompat: Vec<String>,
    pub features_ro_compat: Vec<String>,
    pub last_mounted: String,
    /// Unix seconds; absent when never set.
    pub mount_time: Option<i64>,
    pub write_time: Option<i64>,
    pub check_time: Option<i64>,
    pub mkfs_time: Option<i64>,
    pub mount_count: u32,
    pub max_mount_count: i32,
    pub error_count: u32,
    pub kbytes_written: BigInt,
    pub block_size: u32,
    pub cluster_size: u32,
    pub blocks_count: BigInt,
    pub reserved_blocks: BigInt,
    pub inodes_count: BigInt,
    pub groups_count: u32,
    pub journal_blocks: Option<BigInt>,
    /// The superblock's own (possibly stale) totals; the kernel refreshes them only at mount/sync.
    pub superblock_free_blocks: BigInt,
    pub superblock_free_inodes: BigInt,
    /// Checksum mismatches and other non-fatal findings.
    pub warnings: Vec<String>,
}

/// A guest disk image, opened read-only with its filesystem partition chosen.
#[napi]
pub struct DiskImage {
    disk: Disk,
}

fn big(v: u64) -> BigInt {
    BigInt::from(v)
}

#[napi]
impl DiskImage {
    /// Open `path` (raw or qcow2) read-only; `partition` (1-based) overrides the Linux-root choice.
    #[napi(factory)]
    pub fn open(path: String, partition: Option<u32>) -> napi::Result<DiskImage, &'static str> {
        let disk = disk::open(&PathBuf::from(&path), partition).map_err(to_js)?;
        Ok(DiskImage { disk })
    }

    /// Size in bytes of the filesystem device (the chosen partition, or the whole image).
    #[napi(getter)]
    pub fn size(&self) -> napi::Result<BigInt, &'static str> {
        Ok(big(self.disk.fs_device().map_err(to_js)?.size()))
    }

    /// Bytes of the filesystem device at `offset` (≤ 4 MiB, wholly inside the device).
    #[napi]
    pub fn read_at(&self, offset: Either<BigInt, f64>, length: u32) -> napi::Result<Buffer, &'static str> {
        let offset = match offset {
            Either::A(b) => {
                let (negative, v, lossless) = b.get_u64();
                if negative || !lossless {
                    return Err(to_js(Error::bad("readAt: offset must be a non-negative 64-bit integer")));
                }
                v
            }
            Either::B(f) => {
                if !(f >= 0.0 && f.fract() == 0.0 && f <= 9_007_199_254_740_991.0) {
                    return Err(to_js(Error::bad(format!("readAt: offset {f} is not a non-negative integer"))));
                }
                f as u64
            }
        };
        if length > MAX_READ {
            return Err(to_js(Error::bad(format!("readAt: {length} bytes is over the 4 MiB limit per call"))));
        }
        let dev = self.disk.fs_device().map_err(to_js)?;
        let mut buf = vec![0u8; length as usize];
        dev.read_at(offset, &mut buf).map_err(to_js)?;
        Ok(buf.into())
    }

    #[napi]
    pub fn describe(&self) -> DiskDescription {
        let d = &self.disk;
        let sel = d.selected.and_then(|n| d.partitions.iter().find(|p| p.partition.number == n));
        let fs_size = d.fs_device().ok().map(|f| f.size());
        DiskDescription {
            path: d.path.display().to_string(),
            format: d.format.name().into(),
            virtual_size: big(d.image.size()),
            backing_chain: d.backing_chain.clone(),
            partition_table: d.table.name().into(),
            partitions: d
                .partitions
                .iter()
                .map(|p| DiskPartition {
                    number: p.partition.number,
                    start: big(p.partition.start),
                    size: big(p.partition.size),
                    type_id: p.partition.type_id.clone(),
                    type_name: p.partition.type_name.clone(),
                    name: p.partition.name.clone(),
                    filesystem: p.content.name().into(),
                })
                .collect(),
            selected_partition: d.selected,
            filesystem_offset: fs_size.map(|_| big(sel.map_or(0, |p| p.partition.start))),
            filesystem_size: fs_size.map(big),
            filesystem: d.content.name().into(),
            warnings: d.warnings.clone(),
        }
    }

    /// statfs of the ext2/3/4 filesystem exactly as the guest kernel computes it, plus superblock facts.
    #[napi]
    pub fn statfs(&self) -> napi::Result<DiskStatfs, &'static str> {
        let dev = self.disk.ext_device().map_err(to_js)?;
        let fs = Ext4::open(dev.as_ref()).map_err(to_js)?;
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
        let mut warnings = self.disk.warnings.clone();
        warnings.extend(fs.warnings.iter().cloned());
        Ok(DiskStatfs {
            f_type: st.f_type,
            f_bsize: big(st.f_bsize),
            f_frsize: big(st.f_frsize),
            f_blocks: big(st.f_blocks),
            f_bfree: big(st.f_bfree),
            f_bavail: big(st.f_bavail),
            f_files: big(st.f_files),
            f_ffree: big(st.f_ffree),
            f_namelen: st.f_namelen,
            f_fsid: st.f_fsid.to_vec(),
            overhead_blocks: big(st.overhead_blocks),
            resv_blocks: big(st.resv_blocks),
            filesystem: self.disk.content.name().into(),
            label: fs.label(),
            uuid: fs.uuid(),
            state,
            errors_behavior: errors_behavior.into(),
            needs_recovery: fs.needs_recovery(),
            orphans_present: fs.orphan_present(),
            features_compat: compat,
            features_incompat: incompat,
            features_ro_compat: ro_compat,
            last_mounted: fs.last_mounted(),
            mount_time: Ext4::time(sb.s_mtime, sb.s_mtime_hi),
            write_time: Ext4::time(sb.s_wtime, sb.s_wtime_hi),
            check_time: Ext4::time(sb.s_lastcheck, sb.s_lastcheck_hi),
            mkfs_time: Ext4::time(sb.s_mkfs_time, sb.s_mkfs_time_hi),
            mount_count: sb.s_mnt_count as u32,
            max_mount_count: sb.s_max_mnt_count as i32,
            error_count: sb.s_error_count,
            kbytes_written: big(sb.s_kbytes_written),
            block_size: fs.geo.block_size as u32,
            cluster_size: (fs.geo.block_size << fs.geo.cluster_bits) as u32,
            blocks_count: big(fs.geo.blocks_count),
            reserved_blocks: big(fs.geo.r_blocks_count),
            inodes_count: big(sb.s_inodes_count as u64),
            groups_count: fs.geo.groups_count as u32,
            journal_blocks: fs.journal_blocks.map(big),
            superblock_free_blocks: big(fs.superblock_free_blocks()),
            superblock_free_inodes: big(sb.s_free_inodes_count as u64),
            warnings,
        })
    }
}
