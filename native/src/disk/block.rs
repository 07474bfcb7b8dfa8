//! Read-only block devices: a host file, and a byte window onto another device (a partition).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::{Error, Result};

/// A disk as a run of bytes. Read-only by construction: there is no write method anywhere.
pub trait BlockDevice: Send + Sync {
    fn size(&self) -> u64;
    /// Fill `buf` from `offset`; any byte past `size()` is an error, never a short read.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()>;
    /// What this device is, for error messages ("raw image /x/disk.img", "partition 2 of …").
    fn describe(&self) -> String;
}

/// Refuse a read that is not wholly inside `[0, size)`.
pub fn check_range(offset: u64, len: usize, size: u64, what: &dyn Fn() -> String) -> Result<()> {
    let end = offset.checked_add(len as u64);
    match end {
        Some(end) if end <= size => Ok(()),
        _ => Err(Error::bad(format!(
            "read of {len} bytes at offset {offset:#x} runs past the end of {} ({size} bytes; truncated image?)",
            what()
        ))),
    }
}

/// Integers out of a byte slice, 0 where the slice is too short (callers have checked the length).
pub fn le_u16(b: &[u8], off: usize) -> u16 {
    crate::bytes::le_u16(b, off).unwrap_or(0)
}
pub fn le_u32(b: &[u8], off: usize) -> u32 {
    crate::bytes::le_u32(b, off).unwrap_or(0)
}
pub fn le_u64(b: &[u8], off: usize) -> u64 {
    crate::bytes::le_u64(b, off).unwrap_or(0)
}
pub fn be_u32(b: &[u8], off: usize) -> u32 {
    crate::bytes::be_u32(b, off).unwrap_or(0)
}
pub fn be_u64(b: &[u8], off: usize) -> u64 {
    crate::bytes::be_u64(b, off).unwrap_or(0)
}

/// Read `len` bytes at `offset` into a new vector.
pub fn read_vec(dev: &dyn BlockDevice, offset: u64, len: usize) -> Result<Vec<u8>> {
    let mut v = vec![0u8; len];
    dev.read_at(offset, &mut v)?;
    Ok(v)
}

/// A host file opened read-only and read with pread: a 1 TiB sparse image opens instantly, and a file
/// that shrinks under us gives an error instead of the SIGBUS an mmap would.
pub struct HostFile {
    file: File,
    size: u64,
    path: PathBuf,
    label: &'static str,
}

impl HostFile {
    pub fn open(path: &Path, label: &'static str) -> Result<Self> {
        let file = File::open(path).map_err(|e| {
            let msg = format!("cannot open {}: {e}", path.display());
            if e.kind() == std::io::ErrorKind::NotFound { Error::NotFound(msg) } else { Error::Io(msg) }
        })?;
        let meta = file.metadata().map_err(|e| Error::Io(format!("cannot stat {}: {e}", path.display())))?;
        if meta.is_dir() {
            return Err(Error::Io(format!("{} is a directory, not a disk image", path.display())));
        }
        // Block devices report length 0 in metadata; ask the file itself.
        let size = if meta.len() == 0 && !meta.is_file() {
            use std::io::{Seek, SeekFrom};
            let mut f = &file;
            f.seek(SeekFrom::End(0)).map_err(|e| Error::Io(format!("cannot size {}: {e}", path.display())))?
        } else {
            meta.len()
        };
        Ok(HostFile { file, size, path: path.to_path_buf(), label })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl BlockDevice for HostFile {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_range(offset, buf.len(), self.size, &|| self.describe())?;
        self.file.read_exact_at(buf, offset).map_err(|e| {
            Error::Io(format!("reading {} bytes at offset {offset:#x} of {}: {e}", buf.len(), self.path.display()))
        })
    }

    fn describe(&self) -> String {
        format!("{} {}", self.label, self.path.display())
    }
}

/// A byte window [start, start+len) of another device: a partition.
pub struct Window {
    inner: Arc<dyn BlockDevice>,
    start: u64,
    len: u64,
    label: String,
}

impl Window {
    /// A window must lie wholly inside its device (a partition past the end is BAD_DATA).
    pub fn new(inner: Arc<dyn BlockDevice>, start: u64, len: u64, label: String) -> Result<Self> {
        match start.checked_add(len) {
            Some(end) if end <= inner.size() => Ok(Window { inner, start, len, label }),
            _ => Err(Error::bad(format!(
                "{label} (bytes {start:#x}+{len:#x}) extends past the end of {} ({} bytes)",
                inner.describe(),
                inner.size()
            ))),
        }
    }
}

impl BlockDevice for Window {
    fn size(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_range(offset, buf.len(), self.len, &|| self.describe())?;
        self.inner.read_at(self.start + offset, buf)
    }

    fn describe(&self) -> String {
        format!("{} of {}", self.label, self.inner.describe())
    }
}

/// An in-memory device, for tests and synthetic images.
pub struct MemDevice {
    pub bytes: Vec<u8>,
    pub name: String,
}

impl BlockDevice for MemDevice {
    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_range(offset, buf.len(), self.size(), &|| self.describe())?;
        let start = offset as usize;
        let src = self.bytes.get(start..start + buf.len()).ok_or_else(|| Error::bad("in-memory read out of range"))?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn describe(&self) -> String {
        self.name.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_bounds() {
        let dev: Arc<dyn BlockDevice> = Arc::new(MemDevice { bytes: (0..=255u8).collect(), name: "m".into() });
        assert!(Window::new(dev.clone(), 200, 100, "p".into()).is_err());
        assert!(Window::new(dev.clone(), u64::MAX, 2, "p".into()).is_err());
        let w = Window::new(dev, 16, 32, "p".into()).unwrap();
        let mut b = [0u8; 4];
        w.read_at(0, &mut b).unwrap();
        assert_eq!(b, [16, 17, 18, 19]);
        assert!(w.read_at(30, &mut b).is_err());
        assert!(w.read_at(u64::MAX - 1, &mut b).is_err());
    }
}
