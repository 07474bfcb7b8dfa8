//! LiME memory dumps (LiME's lime.h: lime_mem_range_header): a 32-byte header before each range.

use super::Segment;
use crate::{Error, Result};

/// Raw header: magic u32, version u32, s_addr u64, e_addr u64 (inclusive), reserved[8].
mod raw {
    pub const HEADER_LEN: u64 = 32;
    pub const MAGIC: u32 = 0x4C69_4D45;
    pub const VERSION: u32 = 1;
}

const MAX_RANGES: usize = 1 << 16;

pub fn is_lime(head: &[u8]) -> bool {
    head.get(..4).is_some_and(|m| u32::from_le_bytes([m[0], m[1], m[2], m[3]]) == raw::MAGIC)
}

/// The ranges of a LiME file, and the bytes its headers promise that the file does not hold.
pub fn parse(bytes: &[u8], file_len: u64) -> Result<(Vec<Segment>, u64)> {
    let mut segments = Vec::new();
    let mut missing = 0u64;
    let mut pos = 0u64;
    while pos < file_len {
        if segments.len() >= MAX_RANGES {
            return Err(Error::bad(format!("LiME: more than {MAX_RANGES} ranges")));
        }
        let at = pos as usize;
        let h = bytes
            .get(at..at + raw::HEADER_LEN as usize)
            .ok_or_else(|| Error::bad(format!("LiME: range header at file offset {pos:#x} is cut short")))?;
        let field = |o: usize| crate::bytes::le_u64(h, o).unwrap_or(0);
        let magic = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
        let version = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        if magic != raw::MAGIC {
            return Err(Error::bad(format!("LiME: bad range header magic {magic:#x} at file offset {pos:#x}")));
        }
        if version != raw::VERSION {
            return Err(Error::Unsupported(format!("LiME: header version {version} at file offset {pos:#x}")));
        }
        let (start, end) = (field(8), field(16));
        if end < start || end == u64::MAX {
            return Err(Error::bad(format!("LiME: range {start:#x}-{end:#x} at file offset {pos:#x} is inverted")));
        }
        let len = end - start + 1;
        let data_at = pos + raw::HEADER_LEN;
        let held = file_len.saturating_sub(data_at).min(len);
        missing += len - held;
        segments.push(Segment { gpa: start, file_offset: data_at, len: held });
        pos = match data_at.checked_add(len) {
            Some(p) => p,
            None => break,
        };
    }
    Ok((segments, missing))
}

#[cfg(any(test, feature = "fuzzing"))]
pub fn build_lime(ranges: &[(u64, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (start, data) in ranges {
        out.extend(raw::MAGIC.to_le_bytes());
        out.extend(raw::VERSION.to_le_bytes());
        out.extend(start.to_le_bytes());
        out.extend((start + data.len() as u64 - 1).to_le_bytes());
        out.extend([0u8; 8]);
        out.extend(*data);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::source::tests::TempFile;
    use crate::mem::source::{MappedRam, RamFormat};
    use crate::mem::{PhysRange, PhysicalMemory};

    #[test]
    fn lime_ranges() {
        let a = vec![1u8; 4096];
        let b = vec![2u8; 4096];
        let c = vec![3u8; 100];
        let f = TempFile::new("lime", &build_lime(&[(0, &a), (0x1000, &b), (0x10_0000, &c)]));
        let ram = MappedRam::open(&f.0, "qemu-pc").unwrap();
        assert_eq!(ram.info.format, Some(RamFormat::Lime));
        assert_eq!(ram.ranges(), &[PhysRange { start: 0, len: 8192 }, PhysRange { start: 0x10_0000, len: 100 }]);
        let mut buf = [0u8; 4];
        ram.read_phys(0xFFE, &mut buf).unwrap(); // spans two ranges that meet
        assert_eq!(buf, [1, 1, 2, 2]);
        assert!(matches!(ram.read_phys(0x2000, &mut buf), Err(Error::Fault { addr: 0x2000, .. })));
        ram.read_phys(0x10_0000 + 96, &mut buf).unwrap();
        assert!(ram.read_phys(0x10_0000 + 97, &mut buf).is_err());
    }

    #[test]
    fn truncated_and_hostile_lime() {
        let a = vec![1u8; 4096];
        let full = build_lime(&[(0, &a), (0x1000, &a)]);
        let f = TempFile::new("lime-trunc", &full[..full.len() - 100]);
        let ram = MappedRam::open(&f.0, "auto").unwrap();
        assert_eq!(ram.info.missing_bytes, 100);
        let mut buf = [0u8; 1];
        assert!(ram.read_phys(0x1FFF, &mut buf).is_err());
        // Header cut in the middle.
        let f = TempFile::new("lime-hdr", &full[..4096 + 32 + 10]);
        assert!(MappedRam::open(&f.0, "auto").is_err());
        // Inverted range.
        let mut bad = build_lime(&[(0x2000, &a)]);
        bad[16..24].copy_from_slice(&0x1000u64.to_le_bytes());
        let f = TempFile::new("lime-inv", &bad);
        assert!(matches!(MappedRam::open(&f.0, "auto"), Err(Error::BadData(_))));
        // Range whose end is u64::MAX must not overflow.
        let mut huge = build_lime(&[(0, &a)]);
        huge[16..24].copy_from_slice(&(u64::MAX - 1).to_le_bytes());
        let f = TempFile::new("lime-huge", &huge);
        let ram = MappedRam::open(&f.0, "auto").unwrap();
        assert!(ram.read_phys(0x10_0000, &mut buf).is_err());
    }
}
