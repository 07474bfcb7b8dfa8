//! The disk half: host image (raw | qcow2 + backing chain) ─► partition table ─► filesystem device.
//! Everything here is read-only: no type in this module has a way to write a byte.

pub mod block;
pub mod crc;
pub mod detect;
pub mod ext4;
pub mod partition;
pub mod qcow2;
pub mod records;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use block::{BlockDevice, HostFile, Window};
use detect::Content;
use partition::{Partition, TableKind};

use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Raw,
    Qcow2,
}

impl ImageFormat {
    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Raw => "raw",
            ImageFormat::Qcow2 => "qcow2",
        }
    }
}

/// A partition and what was found on it.
#[derive(Debug, Clone)]
pub struct PartitionInfo {
    pub partition: Partition,
    pub content: Content,
}

/// An opened image with its filesystem device chosen.
pub struct Disk {
    pub path: PathBuf,
    pub format: ImageFormat,
    /// The guest-visible disk (qcow2 already resolved).
    pub image: Arc<dyn BlockDevice>,
    /// Backing files, nearest first (qcow2 only).
    pub backing_chain: Vec<String>,
    pub table: TableKind,
    pub partitions: Vec<PartitionInfo>,
    /// The chosen partition's number; `None` for a bare filesystem or when nothing fit.
    pub selected: Option<u32>,
    /// The filesystem device (whole image or the chosen partition), absent when no partition fit.
    fs: Option<Arc<dyn BlockDevice>>,
    /// What is on `fs` (or on the whole disk when nothing was chosen).
    pub content: Content,
    pub warnings: Vec<String>,
}

/// An opened host image: the guest-visible device, its format, backing chain and warnings.
pub type OpenedImage = (Arc<dyn BlockDevice>, ImageFormat, Vec<String>, Vec<String>);

/// Open a host file as a guest disk: qcow2 when it starts with "QFI\xfb", raw otherwise.
pub fn open_image(path: &Path) -> Result<OpenedImage> {
    let file = HostFile::open(path, "raw image")?;
    let mut magic = [0u8; 4];
    if file.size() >= 4 {
        file.read_at(0, &mut magic)?;
    }
    if &magic == b"QFI\xfb" {
        let q = qcow2::Qcow2::open(path)?;
        let chain = q.backing_chain();
        let warnings = q.warnings().to_vec();
        Ok((Arc::new(q), ImageFormat::Qcow2, chain, warnings))
    } else {
        Ok((Arc::new(file), ImageFormat::Raw, vec![], vec![]))
    }
}

/// Pick the Linux root: the x86-64 root GUID, else a Linux filesystem partition holding ext, else the
/// first Linux filesystem partition, else any partition holding ext.
fn pick_root(parts: &[PartitionInfo]) -> Option<&PartitionInfo> {
    parts
        .iter()
        .find(|p| p.partition.is_linux_root())
        .or_else(|| parts.iter().find(|p| p.partition.is_linux_fs() && p.content.is_ext()))
        .or_else(|| parts.iter().find(|p| p.partition.is_linux_fs()))
        .or_else(|| parts.iter().find(|p| p.content.is_ext()))
}

pub fn open(path: &Path, partition: Option<u32>) -> Result<Disk> {
    let (image, format, backing_chain, mut warnings) = open_image(path)?;
    let table = partition::read_table(image.as_ref())?;
    warnings.extend(table.warnings);
    let mut partitions = Vec::new();
    let mut windows = Vec::new();
    for p in table.partitions {
        let label = format!("partition {}", p.number);
        match Window::new(image.clone(), p.start, p.size, label) {
            Ok(w) => {
                let w: Arc<dyn BlockDevice> = Arc::new(w);
                partitions.push(PartitionInfo { content: detect::detect(w.as_ref()), partition: p });
                windows.push(Some(w));
            }
            Err(e) => {
                warnings.push(e.to_string());
                partitions.push(PartitionInfo { content: Content::Unknown, partition: p });
                windows.push(None);
            }
        }
    }
    let mut disk = Disk {
        path: path.to_path_buf(),
        format,
        image: image.clone(),
        backing_chain,
        table: table.kind,
        partitions,
        selected: None,
        fs: None,
        content: Content::Unknown,
        warnings,
    };
    let index = match (partition, table.kind) {
        (Some(n), TableKind::None) => {
            return Err(Error::NotFound(format!(
                "no partition {n} in {}: it has no partition table (it holds {}); omit --partition",
                path.display(),
                detect::detect(image.as_ref()).name()
            )))
        }
        (Some(n), _) => match disk.partitions.iter().position(|p| p.partition.number == n) {
            Some(i) => Some(i),
            None => {
                return Err(Error::NotFound(format!(
                    "no partition {n} in {} (partitions: {})",
                    path.display(),
                    disk.partition_list()
                )))
            }
        },
        (None, TableKind::None) => None,
        (None, _) => pick_root(&disk.partitions).map(|p| p.partition.number).and_then(|n| {
            disk.partitions.iter().position(|p| p.partition.number == n)
        }),
    };
    match index {
        Some(i) => {
            let w = windows.get(i).cloned().flatten();
            let info = disk.partitions.get(i).cloned();
            if let (Some(info), None) = (&info, &w) {
                return Err(Error::bad(format!(
                    "partition {} of {} extends past the end of the disk",
                    info.partition.number,
                    path.display()
                )));
            }
            disk.selected = info.as_ref().map(|p| p.partition.number);
            disk.content = info.map_or(Content::Unknown, |p| p.content);
            disk.fs = w;
        }
        None if table.kind == TableKind::None => {
            disk.content = detect::detect(image.as_ref());
            disk.fs = Some(image);
        }
        None => {}
    }
    Ok(disk)
}

impl Disk {
    /// "1 (EFI System, vfat), 2 (Linux filesystem, ext4)".
    pub fn partition_list(&self) -> String {
        if self.partitions.is_empty() {
            return "none".into();
        }
        self.partitions
            .iter()
            .map(|p| format!("{} ({}, {})", p.partition.number, p.partition.type_name, p.content.name()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Where the filesystem sits, for messages: "partition 2" or "the whole image".
    pub fn location(&self) -> String {
        match self.selected {
            Some(n) => format!("partition {n}"),
            None => "the whole image".into(),
        }
    }

    /// The filesystem device, or why there is none.
    pub fn fs_device(&self) -> Result<&Arc<dyn BlockDevice>> {
        self.fs.as_ref().ok_or_else(|| {
            Error::NotFound(format!(
                "no Linux partition in {} ({} table; partitions: {}); choose one with --partition N",
                self.path.display(),
                self.table.name(),
                self.partition_list()
            ))
        })
    }

    /// The filesystem device, when it holds ext2/3/4; otherwise say what it holds.
    pub fn ext_device(&self) -> Result<&Arc<dyn BlockDevice>> {
        let dev = self.fs_device()?;
        if self.content.is_ext() {
            Ok(dev)
        } else if self.content == Content::Unknown {
            Err(Error::bad(format!(
                "no ext2/3/4 superblock (magic 0xEF53 at byte 1080) on {} of {}",
                self.location(),
                self.path.display()
            )))
        } else {
            Err(Error::Unsupported(format!(
                "unsupported filesystem {} on {} of {}",
                self.content.name(),
                self.location(),
                self.path.display()
            )))
        }
    }
}
