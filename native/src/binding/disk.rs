//! Binding for the disk half: `DiskImage` opens an image read-only, picks the partition, and gives
//! bytes (for the libext2fs WASM bridge), and its records (disk/records.rs) as JSON documents.

use std::path::PathBuf;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use super::to_js;
use crate::disk::{self, Disk};
use crate::records::document;
use crate::Error;

/// Largest single `readAt`: keeps a hostile or buggy caller from asking for gigabytes at once.
const MAX_READ: u32 = 4 << 20;

/// A guest disk image, opened read-only with its filesystem partition chosen.
#[napi]
pub struct DiskImage {
    disk: Option<Disk>,
}

impl DiskImage {
    fn disk(&self) -> napi::Result<&Disk> {
        self.disk.as_ref().ok_or_else(|| to_js(Error::Unsupported("the disk image was closed".into())))
    }
}


#[napi]
impl DiskImage {
    /// Open `path` (raw or qcow2) read-only; `partition` (1-based) overrides the Linux-root choice.
    #[napi(factory)]
    pub fn open(path: String, partition: Option<u32>) -> napi::Result<DiskImage> {
        let disk = disk::open(&PathBuf::from(&path), partition).map_err(to_js)?;
        Ok(DiskImage { disk: Some(disk) })
    }

    /// Size in bytes of the filesystem device (the chosen partition, or the whole image).
    #[napi(getter)]
    pub fn size(&self) -> napi::Result<BigInt> {
        Ok(BigInt::from(self.disk()?.fs_device().map_err(to_js)?.size()))
    }

    /// Bytes of the filesystem device at `offset` (≤ 4 MiB, wholly inside the device).
    #[napi]
    pub fn read_at(&self, offset: Either<BigInt, f64>, length: u32) -> napi::Result<Buffer> {
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
        let dev = self.disk()?.fs_device().map_err(to_js)?;
        let mut buf = vec![0u8; length as usize];
        dev.read_at(offset, &mut buf).map_err(to_js)?;
        Ok(buf.into())
    }

    /// The image (format, backing chain, partitions, the filesystem chosen) as a JSON document.
    #[napi]
    pub fn describe(&self) -> napi::Result<String> {
        document(&disk::records::describe(self.disk()?)).map_err(to_js)
    }

    /// statfs of the ext2/3/4 filesystem exactly as the guest kernel computes it, df's figures and the
    /// superblock's facts, as a JSON document.
    #[napi]
    pub fn statfs(&self) -> napi::Result<String> {
        document(&disk::records::usage(self.disk()?).map_err(to_js)?).map_err(to_js)
    }

    /// Close the image file now rather than at garbage collection; later calls fail.
    #[napi]
    pub fn close(&mut self) {
        self.disk = None;
    }
}

/// What the file's first 4 KiB say it is when it is a disk image ("an ext4 filesystem image", "a qcow2 disk
/// image" …), or null (also for an unreadable file).
#[napi]
pub fn image_kind(path: String) -> Option<String> {
    use std::io::Read;
    let mut head = Vec::with_capacity(4096);
    std::fs::File::open(&path).ok()?.take(4096).read_to_end(&mut head).ok()?;
    crate::disk::detect::image_kind(&head).map(str::to_string)
}
