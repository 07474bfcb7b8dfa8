//! A process's memory read through its own page tables (mm->pgd), as mm/memory.c access_remote_vm() reads it
//! for /proc/PID/cmdline and /proc/PID/environ (fs/proc/base.c get_mm_cmdline, environ_read).

use crate::kernel::Kernel;
use crate::mem::VirtualMemory;
use crate::{Error, Result};

const PAGE: u64 = 4096;

/// The user address space of one mm_struct.
pub struct UserMemory<'k> {
    vm: Box<dyn VirtualMemory + 'k>,
}

impl<'k> UserMemory<'k> {
    /// The address space of the mm_struct at `mm` (its pgd translated to physical).
    pub fn of(k: &'k Kernel, mm: u64) -> Result<UserMemory<'k>> {
        let pgd = k.read_u64(mm.wrapping_add(k.offset("mm_struct", "pgd")?))?;
        let pgd_phys = k.spaces.kernel_virt_to_phys(pgd).map_err(|e| e.context("mm->pgd"))?;
        Ok(UserMemory { vm: k.spaces.user(pgd_phys) })
    }

    /// Read `buf.len()` bytes at `addr` page by page, so a fault names the first page that is not resident
    /// (swapped out or never touched): FAULT at that page's address.
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let at = addr.checked_add(done as u64).ok_or_else(|| Error::fault(addr, "user range wraps"))?;
            let in_page = (PAGE - (at & (PAGE - 1))) as usize;
            let n = in_page.min(buf.len() - done);
            self.vm.read_virt(at, &mut buf[done..done + n]).map_err(|e| match e {
                // a filtered dump (makedumpfile -d 8 and up) left the process's own pages out: say so
                Error::Fault { what, .. } if what.contains(crate::error::EXCLUDED_BY_DUMP) => Error::Fault { addr: at & !(PAGE - 1), what },
                _ => Error::fault(at & !(PAGE - 1), "user page"),
            })?;
            done += n;
        }
        Ok(())
    }

    /// Bytes of [start, end) resident in RAM, as smaps counts Rss: present pages, not special PFN mappings
    /// (vvar) nor the shared zero page. None when the address space cannot tell (not x86 page tables).
    /// At most `budget` page-table entries are read (and taken off it): share one across an address space's ranges.
    pub fn resident_bytes(&self, start: u64, end: u64, zero_page_phys: Option<u64>, budget: &mut u64) -> Option<Result<u64>> {
        self.vm.resident(start, end, zero_page_phys, budget)
    }

    /// The bytes of [start, end), at most `max` of them (the rest is cut, as /proc reads stop at a count).
    pub fn read_range(&self, start: u64, end: u64, max: u64) -> Result<Vec<u8>> {
        let len = end.saturating_sub(start).min(max);
        let mut buf = vec![0u8; usize::try_from(len).map_err(|_| Error::bad("user range too long"))?];
        self.read(start, &mut buf)?;
        Ok(buf)
    }
}

/// The NUL-separated strings of an argument or environment area ("a\0b\0" → ["a", "b"]), Latin-1 as
/// /proc's bytes are read; a last string without its NUL is kept.
pub fn nul_separated(bytes: &[u8]) -> Vec<String> {
    if bytes.is_empty() {
        return Vec::new();
    }
    let body = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    body.split(|&b| b == 0).map(super::latin1).collect()
}

/// Why a user read failed, the way ps and env report it: a missing page as "not resident".
pub fn user_read_error(e: Error) -> String {
    match e {
        Error::Fault { addr, what } if what.contains(crate::error::EXCLUDED_BY_DUMP) => format!("user page at {addr:#x}: {what}"),
        Error::Fault { addr, .. } => format!("not resident (user page at {addr:#x})"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::walkers::testkit::{Fake, KBASE, UBASE};

    #[test]
    fn reads_across_pages_and_names_the_missing_page() {
        let mut f = Fake::new(1 << 20);
        f.size("mm_struct", 16);
        f.member("mm_struct", "pgd", 0, 8, None);
        let mm = f.alloc(16);
        f.put_u64(mm, KBASE + 0x1000);
        let at = UBASE + 0x2ffe;
        f.put(at, b"ab\0cd\0");
        let k = f.kernel();
        let u = UserMemory::of(&k, mm).unwrap();
        assert_eq!(nul_separated(&u.read_range(at, at + 6, 100).unwrap()), ["ab", "cd"]);
        assert_eq!(u.read_range(at, at + 6, 2).unwrap(), b"ab", "bounded by max");
        let far = UBASE + (1 << 30) + 5;
        let e = u.read_range(far, far + 10, 100).unwrap_err();
        assert_eq!(user_read_error(e), format!("not resident (user page at {:#x})", far & !4095));
        assert!(u.read_range(u64::MAX - 2, u64::MAX, 100).is_err(), "no wrap-around");
    }

    #[test]
    fn nul_separated_strings() {
        assert_eq!(nul_separated(b""), Vec::<String>::new());
        assert_eq!(nul_separated(b"\0"), [""]);
        assert_eq!(nul_separated(b"A=1\0B=\0"), ["A=1", "B="]);
        assert_eq!(nul_separated(b"A=1\0tail"), ["A=1", "tail"]);
    }
}
