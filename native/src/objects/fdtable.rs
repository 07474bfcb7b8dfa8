//! A process's open file descriptors, include/linux/fdtable.h (files_struct → fdt → fd[], open_fds,
//! close_on_exec): what fs/proc/fd.c lists under /proc/PID/fd, in fd order.

use super::Walk;
use crate::bytes::le_u64;
use crate::kernel::Kernel;

/// fs/file.c sysctl_nr_open's default (NR_OPEN, 1024 * 1024): tables claiming more fds are read only this far.
pub const MAX_FDS: u64 = 1 << 20;
/// fd[] pointers read in one go.
const CHUNK: u64 = 512;

/// One installed descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFd {
    pub fd: u32,
    /// The struct file.
    pub file: u64,
    /// Set in close_on_exec: fdinfo's flags carry O_CLOEXEC for it.
    pub close_on_exec: bool,
}

/// The descriptors of the files_struct at `files`: every bit set in open_fds below max_fds whose fd[] slot
/// holds a file (a reserved but not yet installed fd has none, and /proc skips it too).
pub fn open_fds(k: &Kernel, files: u64, what: &str) -> Walk<OpenFd> {
    let mut out = Vec::new();
    let layout = (|| -> crate::Result<_> {
        let fdt = k.read_u64(files.wrapping_add(k.offset("files_struct", "fdt")?))?;
        let t = k.struct_type("fdtable")?;
        let o = k.object(fdt, &t)?;
        Ok((o.get(t.field("max_fds")?)?, o.get(t.field("fd")?)?, o.get(t.field("open_fds")?)?, o.get(t.field("close_on_exec")?)?))
    })();
    let (max_fds, fd_array, open, cloexec) = match layout {
        Ok(v) => v,
        Err(e) => return Walk::stopped(out, what, format!("cannot read the fdtable of files_struct {files:#x}: {e}")),
    };
    let mut warning = None;
    let n = if max_fds > MAX_FDS {
        warning = Some(format!("{what}: the fdtable claims {max_fds} fds; only the first {MAX_FDS} were read"));
        MAX_FDS
    } else {
        max_fds
    };
    let words = n.div_ceil(64);
    let bitmap = |addr: u64| -> crate::Result<Vec<u8>> {
        let mut b = vec![0u8; (words * 8) as usize];
        k.read(addr, &mut b)?;
        Ok(b)
    };
    let (open, cloexec) = match (bitmap(open), bitmap(cloexec)) {
        (Ok(o), Ok(c)) => (o, c),
        (Err(e), _) | (_, Err(e)) => return Walk::stopped(out, what, format!("cannot read the fd bitmaps: {e}")),
    };
    let bit = |map: &[u8], i: u64| map.get((i / 8) as usize).is_some_and(|b| b & (1 << (i % 8)) != 0);
    let mut chunk: Vec<u8> = Vec::new();
    let mut chunk_base = u64::MAX;
    for w in 0..words {
        if le_u64(&open, (w * 8) as usize).unwrap_or(0) == 0 {
            continue;
        }
        for i in w * 64..((w + 1) * 64).min(n) {
            if !bit(&open, i) {
                continue;
            }
            let base = i - i % CHUNK;
            if base != chunk_base {
                let len = CHUNK.min(n - base);
                chunk = vec![0u8; (len * 8) as usize];
                if let Err(e) = k.read(fd_array.wrapping_add(base * 8), &mut chunk) {
                    return Walk::stopped(out, what, format!("fd[] at {fd_array:#x} is unreadable near fd {i}: {e}"));
                }
                chunk_base = base;
            }
            let file = le_u64(&chunk, ((i - base) * 8) as usize).unwrap_or(0);
            if file != 0 {
                out.push(OpenFd { fd: i as u32, file, close_on_exec: bit(&cloexec, i) });
            }
        }
    }
    Walk { items: out, warning }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::walkers::testkit::Fake;

    /// files_struct { fdt@0 }, fdtable { max_fds@0 u32, fd@8, close_on_exec@16, open_fds@24 }.
    fn table(f: &mut Fake, max_fds: u32, open: &[u32], cloexec: &[u32]) -> (u64, u64) {
        f.size("files_struct", 64);
        f.member("files_struct", "fdt", 0, 8, None);
        f.size("fdtable", 56);
        f.member("fdtable", "max_fds", 0, 4, None);
        f.member("fdtable", "fd", 8, 8, None);
        f.member("fdtable", "close_on_exec", 16, 8, None);
        f.member("fdtable", "open_fds", 24, 8, None);
        let files = f.alloc(64);
        let fdt = f.alloc(56);
        let words = (max_fds as u64).div_ceil(64).min(64);
        let (fds, om, cm) = (f.alloc(8 * (max_fds as u64).min(4096)), f.alloc(8 * words), f.alloc(8 * words));
        f.put_u64(files, fdt);
        f.put_u32(fdt, max_fds);
        f.put_u64(fdt + 8, fds);
        f.put_u64(fdt + 16, cm);
        f.put_u64(fdt + 24, om);
        for &i in open {
            let byte = om + i as u64 / 8;
            let old = f.mem[(byte - crate::walkers::testkit::KBASE) as usize];
            f.put(byte, &[old | 1 << (i % 8)]);
            f.put_u64(fds + 8 * i as u64, 0xffff_8880_dead_0000 + i as u64 * 0x100);
        }
        for &i in cloexec {
            let byte = cm + i as u64 / 8;
            let old = f.mem[(byte - crate::walkers::testkit::KBASE) as usize];
            f.put(byte, &[old | 1 << (i % 8)]);
        }
        (files, fds)
    }

    #[test]
    fn open_bits_with_files_in_fd_order() {
        let mut f = Fake::new(1 << 20);
        let (files, fds) = table(&mut f, 128, &[0, 1, 2, 65, 70], &[65]);
        f.put_u64(fds + 8 * 70, 0); // reserved, not installed
        let k = f.kernel();
        let w = open_fds(&k, files, "t");
        assert_eq!(w.warning, None);
        assert_eq!(w.items.iter().map(|o| o.fd).collect::<Vec<_>>(), [0, 1, 2, 65]);
        assert_eq!(w.items[3].file, 0xffff_8880_dead_0000 + 65 * 0x100);
        assert_eq!(w.items.iter().map(|o| o.close_on_exec).collect::<Vec<_>>(), [false, false, false, true]);
    }

    #[test]
    fn a_table_claiming_2_to_the_31_fds_is_read_only_up_to_the_bound() {
        let mut f = Fake::new(1 << 20);
        let (files, _) = table(&mut f, 1 << 31, &[3, 200], &[200]);
        let k = f.kernel();
        let w = open_fds(&k, files, "fds of pid 7");
        // 2^20 slots' bitmaps (128 KiB each) are read, not 2^31 slots': the listing ends, with a warning
        assert_eq!(w.items.iter().map(|o| (o.fd, o.close_on_exec)).collect::<Vec<_>>(), [(3, false), (200, true)]);
        assert_eq!(w.warning.as_deref(), Some("fds of pid 7: the fdtable claims 2147483648 fds; only the first 1048576 were read"));
    }

    #[test]
    fn an_unreadable_fd_array_stops_with_a_warning() {
        let mut f = Fake::new(1 << 20);
        let (files, _) = table(&mut f, 64, &[1], &[]);
        let fdt = u64::from_le_bytes(f.mem[(files - crate::walkers::testkit::KBASE) as usize..][..8].try_into().unwrap());
        f.put_u64(fdt + 8, 0xffff_8880_7fff_0000);
        let k = f.kernel();
        let w = open_fds(&k, files, "t");
        assert!(w.items.is_empty());
        assert!(w.warning.unwrap().contains("unreadable"));
    }
}
