//! Sparse-aware, reflink-first file copy: ioctl FICLONE (linux/fs.h), then lseek SEEK_DATA/SEEK_HOLE + copy_file_range(2).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::{Error, Result};

/// How the bytes got there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyMethod {
    /// Shared extents (btrfs, xfs, bcachefs): instant, no data moved.
    Reflink,
    /// Only the data extents were copied; holes stay holes.
    SparseCopy,
}

impl CopyMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            CopyMethod::Reflink => "reflink",
            CopyMethod::SparseCopy => "sparse-copy",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct CopyStats {
    pub method: CopyMethod,
    /// Apparent size of the file.
    pub size: u64,
    /// Bytes actually copied (the data extents; 0 for a reflink).
    pub data_bytes: u64,
}

/// Progress and cancellation shared with the caller's thread.
#[derive(Default)]
pub struct CopyControl {
    pub bytes_done: AtomicU64,
    pub cancel: AtomicBool,
}

const CHUNK: u64 = 16 << 20;
// linux/fs.h: #define FICLONE _IOW(0x94, 9, int)
const FICLONE: libc::c_ulong = 0x4004_9409;

/// Copy `src` to a new file `dst` (which must not exist). The source is opened read-only and never modified.
pub fn copy_file(src: &Path, dst: &Path, control: &CopyControl) -> Result<CopyStats> {
    let from = File::open(src).map_err(|e| Error::Io(format!("cannot open {}: {e}", src.display())))?;
    let size = from.metadata().map_err(|e| Error::Io(format!("cannot stat {}: {e}", src.display())))?.len();
    let to = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dst)
        .map_err(|e| Error::Io(format!("cannot create {}: {e}", dst.display())))?;

    // SAFETY: FICLONE takes the source fd as its argument; both fds are open for the call's duration.
    let cloned = unsafe { libc::ioctl(to.as_raw_fd(), FICLONE as _, from.as_raw_fd()) } == 0;
    if cloned {
        control.bytes_done.store(size, Ordering::Relaxed);
        return Ok(CopyStats { method: CopyMethod::Reflink, size, data_bytes: 0 });
    }

    to.set_len(size).map_err(|e| Error::Io(format!("cannot size {}: {e}", dst.display())))?;
    let mut data_bytes = 0u64;
    let mut offset = 0u64;
    // Each iteration moves past one data extent; a file has at most size/4096 of them.
    let max_extents = size / 4096 + 2;
    for _ in 0..max_extents {
        if offset >= size {
            break;
        }
        let Some(data_start) = seek(&from, offset, libc::SEEK_DATA).map_err(|e| io_err(src, e))? else {
            break; // only a hole remains
        };
        let data_end = seek(&from, data_start, libc::SEEK_HOLE).map_err(|e| io_err(src, e))?.unwrap_or(size).min(size);
        let mut pos = data_start;
        while pos < data_end {
            if control.cancel.load(Ordering::Relaxed) {
                return Err(Error::Io(format!("copy of {} cancelled", src.display())));
            }
            let want = (data_end - pos).min(CHUNK);
            let n = copy_range(&from, &to, pos, want).map_err(|e| io_err(src, e))?;
            if n == 0 {
                return Err(Error::Io(format!("{} shrank while being copied (at offset {pos})", src.display())));
            }
            pos += n;
            data_bytes += n;
            control.bytes_done.store(pos, Ordering::Relaxed);
        }
        offset = data_end;
    }
    control.bytes_done.store(size, Ordering::Relaxed);
    Ok(CopyStats { method: CopyMethod::SparseCopy, size, data_bytes })
}

fn io_err(path: &Path, e: io::Error) -> Error {
    Error::Io(format!("copying {}: {e}", path.display()))
}

/// lseek with SEEK_DATA/SEEK_HOLE; `None` when there is no more data (ENXIO).
fn seek(f: &File, offset: u64, whence: libc::c_int) -> io::Result<Option<u64>> {
    // SAFETY: plain syscall on an open fd.
    let r = unsafe { libc::lseek(f.as_raw_fd(), offset as libc::off_t, whence) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return if e.raw_os_error() == Some(libc::ENXIO) { Ok(None) } else { Err(e) };
    }
    Ok(Some(r as u64))
}

/// copy_file_range at explicit offsets, falling back to pread/pwrite where the kernel or fs refuses it.
fn copy_range(from: &File, to: &File, pos: u64, len: u64) -> io::Result<u64> {
    let mut off_in = pos as libc::loff_t;
    let mut off_out = pos as libc::loff_t;
    // SAFETY: valid fds and offset pointers that live across the call.
    let r = unsafe { libc::copy_file_range(from.as_raw_fd(), &mut off_in, to.as_raw_fd(), &mut off_out, len as usize, 0) };
    if r >= 0 {
        return Ok(r as u64);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EXDEV) | Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP) => {
            use std::os::unix::fs::FileExt;
            let mut buf = vec![0u8; len as usize];
            let n = from.read_at(&mut buf, pos)?;
            to.write_all_at(&buf[..n], pos)?;
            Ok(n as u64)
        }
        _ => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};
    use std::os::unix::fs::MetadataExt;

    fn tmpdir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("nf-copy-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn sparse_file_copies_data_and_keeps_holes() {
        let d = tmpdir("sparse");
        let src = d.join("src");
        let mut f = File::create(&src).unwrap();
        f.set_len(64 << 20).unwrap();
        f.seek(SeekFrom::Start(8 << 20)).unwrap();
        f.write_all(&[0xAB; 4096]).unwrap();
        f.seek(SeekFrom::Start(40 << 20)).unwrap();
        f.write_all(b"tail").unwrap();
        drop(f);
        let ctl = CopyControl::default();
        let stats = copy_file(&src, &d.join("dst"), &ctl).unwrap();
        assert_eq!(stats.size, 64 << 20);
        assert_eq!(std::fs::read(&src).unwrap(), std::fs::read(d.join("dst")).unwrap());
        if stats.method == CopyMethod::SparseCopy {
            assert!(stats.data_bytes < 1 << 20, "copied {} bytes of a mostly-hole file", stats.data_bytes);
            assert!(std::fs::metadata(d.join("dst")).unwrap().blocks() * 512 < 4 << 20);
        }
        assert_eq!(ctl.bytes_done.load(Ordering::Relaxed), 64 << 20);
    }

    #[test]
    fn refuses_to_overwrite_and_reports_missing_source() {
        let d = tmpdir("exists");
        std::fs::write(d.join("a"), b"x").unwrap();
        std::fs::write(d.join("b"), b"y").unwrap();
        let ctl = CopyControl::default();
        assert!(matches!(copy_file(&d.join("a"), &d.join("b"), &ctl), Err(Error::Io(_))));
        assert_eq!(std::fs::read(d.join("b")).unwrap(), b"y");
        assert!(matches!(copy_file(&d.join("none"), &d.join("c"), &ctl), Err(Error::Io(_))));
    }

    #[test]
    fn cancel_stops_the_copy() {
        let d = tmpdir("cancel");
        std::fs::write(d.join("a"), vec![1u8; 1 << 20]).unwrap();
        let ctl = CopyControl::default();
        ctl.cancel.store(true, Ordering::Relaxed);
        match copy_file(&d.join("a"), &d.join("b"), &ctl) {
            Ok(s) => assert_eq!(s.method, CopyMethod::Reflink),
            Err(e) => assert!(e.to_string().contains("cancelled")),
        }
    }
}
