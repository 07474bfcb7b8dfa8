//! Guest RAM read live from a running QEMU process, as drgn's `--qemu` does: QEMU's RAMBlocks are host-virtual
//! mappings in the VMM (softmmu/physmem.c), read with process_vm_readv(2), or pread(2) on /proc/PID/mem where that
//! syscall is missing. Nothing is ever written to the process. The guest-physical → host-virtual map comes from
//! QEMU's monitor (`info mtree -f` + `gpa2hva`, given by the caller) or, without one, from /proc/PID/maps and
//! QEMU's own command line (`-m`, `-machine`) through the raw layouts of mem::layout.

use std::fs::File;
use std::os::unix::fs::FileExt;

use super::layout::{self, RawLayout};
use super::{PhysRange, PhysicalMemory, Segment};
use crate::{Error, Result};

/// One guest-physical range and where QEMU maps it: `Segment::file_offset` is the host-virtual address.
pub type HostSegment = Segment;

/// Most bytes one process_vm_readv call moves (the kernel caps an iovec at MAX_RW_COUNT anyway).
const MAX_CHUNK: usize = 1 << 30;

/// How bytes are fetched from the VMM.
enum Reader {
    /// process_vm_readv(2): one syscall per read, no file descriptor.
    VmReadv,
    /// /proc/PID/mem opened read-only (kernels without CONFIG_CROSS_MEMORY_ATTACH).
    ProcMem(File),
}

/// Guest-physical memory of a running QEMU, read from its process.
pub struct ProcessRam {
    pid: i32,
    segments: Vec<HostSegment>,
    ranges: Vec<PhysRange>,
    reader: Reader,
    /// How the map was learnt, for the facts ("qmp: info mtree -f + gpa2hva", "/proc/PID/maps …").
    pub describe: String,
}

impl std::fmt::Debug for ProcessRam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessRam").field("pid", &self.pid).field("segments", &self.segments).finish()
    }
}

/// The one-line error for a process we may not read.
fn denied(pid: i32) -> Error {
    Error::Io(format!(
        "cannot read the memory of process {pid}: permission denied (reading another process's memory needs CAP_SYS_PTRACE, \
         or the same user with kernel.yama.ptrace_scope 0; run as root or `setcap cap_sys_ptrace+ep` on node)"
    ))
}

fn gone(pid: i32) -> Error {
    Error::Io(format!("process {pid} does not exist (the VM was stopped or restarted?)"))
}

impl ProcessRam {
    /// Read the guest RAM of process `pid` mapped by `segments` (guest-physical → host-virtual), checked: sorted,
    /// non-overlapping, and the first byte readable (so a missing privilege is one clear error, up front).
    pub fn open(pid: i32, mut segments: Vec<HostSegment>, describe: String) -> Result<ProcessRam> {
        if pid <= 0 {
            return Err(Error::Unsupported(format!("{pid} is not a process id")));
        }
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            return Err(gone(pid));
        }
        segments.retain(|s| s.len > 0);
        segments.sort_by_key(|s| s.gpa);
        for w in segments.windows(2) {
            if w[0].gpa.checked_add(w[0].len).is_none_or(|end| end > w[1].gpa) {
                return Err(Error::bad(format!("process {pid}: guest-physical ranges overlap at {:#x}", w[1].gpa)));
            }
        }
        for s in &segments {
            if s.file_offset.checked_add(s.len).is_none() || s.gpa.checked_add(s.len).is_none() {
                return Err(Error::bad(format!("process {pid}: range at guest-physical {:#x} wraps around", s.gpa)));
            }
        }
        let first = *segments.first().ok_or_else(|| Error::bad(format!("process {pid}: no guest RAM ranges")))?;
        let mut ranges: Vec<PhysRange> = Vec::new();
        for s in &segments {
            match ranges.last_mut() {
                Some(r) if r.start + r.len == s.gpa => r.len += s.len,
                _ => ranges.push(PhysRange { start: s.gpa, len: s.len }),
            }
        }
        let mut ram = ProcessRam { pid, segments, ranges, reader: Reader::VmReadv, describe };
        let mut probe = [0u8; 1];
        match ram.read_host(first.file_offset, &mut probe) {
            Ok(()) => {}
            Err(ReadError::NoSyscall) => {
                let f = File::open(format!("/proc/{pid}/mem")).map_err(|e| match e.raw_os_error() {
                    Some(libc::EACCES) | Some(libc::EPERM) => denied(pid),
                    Some(libc::ENOENT) | Some(libc::ESRCH) => gone(pid),
                    _ => Error::Io(format!("cannot open /proc/{pid}/mem: {e}")),
                })?;
                ram.reader = Reader::ProcMem(f);
                ram.read_host(first.file_offset, &mut probe).map_err(|e| e.into_error(pid, first.gpa))?;
            }
            Err(e) => return Err(e.into_error(pid, first.gpa)),
        }
        Ok(ram)
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    pub fn segments(&self) -> &[HostSegment] {
        &self.segments
    }

    fn segment_of(&self, gpa: u64) -> Option<&HostSegment> {
        let i = self.segments.partition_point(|s| s.gpa <= gpa);
        let s = self.segments.get(i.checked_sub(1)?)?;
        (gpa - s.gpa < s.len).then_some(s)
    }

    /// Copy `buf.len()` bytes from host-virtual `hva` of the VMM.
    fn read_host(&self, hva: u64, buf: &mut [u8]) -> std::result::Result<(), ReadError> {
        let mut done = 0usize;
        while done < buf.len() {
            let want = (buf.len() - done).min(MAX_CHUNK);
            let at = hva.wrapping_add(done as u64);
            let dst = &mut buf[done..done + want];
            let n = match &self.reader {
                Reader::VmReadv => {
                    let local = libc::iovec { iov_base: dst.as_mut_ptr().cast(), iov_len: want };
                    let remote = libc::iovec { iov_base: at as usize as *mut libc::c_void, iov_len: want };
                    // SAFETY: `local` describes `dst`, memory we own and may write; the kernel only reads the
                    // remote process (it never writes there) and checks the remote range itself.
                    let r = unsafe { libc::process_vm_readv(self.pid, &local, 1, &remote, 1, 0) };
                    if r < 0 {
                        return Err(ReadError::from_errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(0), done));
                    }
                    r as usize
                }
                Reader::ProcMem(f) => match f.read_at(dst, at) {
                    Ok(n) => n,
                    Err(e) => return Err(ReadError::from_errno(e.raw_os_error().unwrap_or(0), done)),
                },
            };
            if n == 0 {
                return Err(ReadError::Unmapped(done));
            }
            done += n;
        }
        Ok(())
    }
}

/// Why a read of the VMM failed.
#[derive(Debug)]
enum ReadError {
    NoSyscall,
    Denied,
    Gone,
    /// Bytes read before an unmapped host address.
    Unmapped(usize),
    Other(i32),
}

impl ReadError {
    fn from_errno(errno: i32, done: usize) -> ReadError {
        match errno {
            libc::ENOSYS => ReadError::NoSyscall,
            libc::EPERM | libc::EACCES => ReadError::Denied,
            libc::ESRCH => ReadError::Gone,
            libc::EFAULT | libc::EIO => ReadError::Unmapped(done),
            e => ReadError::Other(e),
        }
    }

    fn into_error(self, pid: i32, gpa: u64) -> Error {
        match self {
            ReadError::NoSyscall => Error::Unsupported("process_vm_readv is not available".into()),
            ReadError::Denied => denied(pid),
            ReadError::Gone => gone(pid),
            ReadError::Unmapped(done) => Error::fault(gpa.wrapping_add(done as u64), format!("guest RAM not mapped in process {pid}")),
            ReadError::Other(e) => Error::Io(format!("reading process {pid}: {}", std::io::Error::from_raw_os_error(e))),
        }
    }
}

impl PhysicalMemory for ProcessRam {
    fn read_phys(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let at = addr.checked_add(done as u64).ok_or_else(|| Error::fault(addr, "physical read wraps around"))?;
            let seg = self.segment_of(at).ok_or_else(|| Error::fault(at, "physical read"))?;
            let within = at - seg.gpa;
            let n = ((seg.len - within) as usize).min(buf.len() - done);
            self.read_host(seg.file_offset + within, &mut buf[done..done + n]).map_err(|e| e.into_error(self.pid, at))?;
            done += n;
        }
        Ok(())
    }

    fn phys_slice(&self, addr: u64, _len: usize) -> Result<&[u8]> {
        Err(Error::fault(addr, "a live process has no stable view to borrow (copy with read_phys)"))
    }

    fn ranges(&self) -> &[PhysRange] {
        &self.ranges
    }
}

/// QEMU's guest RAM size and machine from its command line (`-m 256M`, `-m size=4G,maxmem=…`, `-machine q35,…`,
/// `-M pc-q35-7.2`), for the /proc/PID/maps fallback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuCommandLine {
    pub ram_bytes: u64,
    /// "qemu-pc" or "qemu-q35" (the layout name).
    pub layout: &'static str,
    pub machine: String,
}

/// QEMU's default RAM when `-m` is absent (hw/core/machine.c default_ram_size, 128 MiB on x86).
const QEMU_DEFAULT_RAM: u64 = 128 << 20;

pub fn parse_qemu_cmdline(args: &[String]) -> Result<QemuCommandLine> {
    let mut ram = None;
    let mut machine = String::from("pc");
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let value = |i: usize| args.get(i + 1).map(String::as_str);
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f == "-m" || f == "--m" => (f, Some(v)),
            _ => (a, None),
        };
        match flag.trim_start_matches('-') {
            "m" => {
                let v = inline.or_else(|| value(i)).ok_or_else(|| Error::bad("QEMU command line: -m without a size"))?;
                let size = v.split(',').find_map(|p| match p.split_once('=') {
                    Some(("size", s)) => Some(s),
                    None => Some(p),
                    _ => None,
                });
                if let Some(s) = size {
                    ram = Some(qemu_size(s)?);
                }
                i += 1;
            }
            "machine" | "M" => {
                let v = value(i).unwrap_or("");
                let t = v.split(',').find_map(|p| match p.split_once('=') {
                    Some(("type", t)) => Some(t),
                    None => Some(p),
                    _ => None,
                });
                if let Some(t) = t {
                    machine = t.to_string();
                }
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    let layout = if machine == "q35" || machine.starts_with("pc-q35") { "qemu-q35" } else { "qemu-pc" };
    Ok(QemuCommandLine { ram_bytes: ram.unwrap_or(QEMU_DEFAULT_RAM), layout, machine })
}

/// QEMU's size syntax: a number with an optional K/M/G/T suffix; a bare number means MiB for `-m`.
fn qemu_size(s: &str) -> Result<u64> {
    let s = s.trim();
    let bad = || Error::bad(format!("QEMU command line: cannot read -m size \"{s}\""));
    let (num, mult) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (
            &s[..i],
            match c.to_ascii_uppercase() {
                'B' => 1u64,
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => return Err(bad()),
            },
        ),
        _ => (s, 1 << 20),
    };
    let v: f64 = num.parse().map_err(|_| bad())?;
    if !(v.is_finite() && v > 0.0 && v < (1u64 << 50) as f64 / mult as f64) {
        return Err(bad());
    }
    Ok((v * mult as f64) as u64)
}

/// One line of /proc/PID/maps that matters here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapsEntry {
    pub start: u64,
    pub end: u64,
    pub readable: bool,
    pub writable: bool,
    /// No backing file (anonymous, or a memfd QEMU made for RAM).
    pub anonymous: bool,
}

/// Parse /proc/PID/maps text (fs/proc/task_mmu.c show_map_vma: "start-end perms offset dev inode path").
pub fn parse_maps(text: &str) -> Vec<MapsEntry> {
    let mut out = Vec::new();
    for line in text.lines().take(1_000_000) {
        let mut f = line.split_ascii_whitespace();
        let (Some(range), Some(perms)) = (f.next(), f.next()) else { continue };
        let Some((s, e)) = range.split_once('-') else { continue };
        let (Ok(start), Ok(end)) = (u64::from_str_radix(s, 16), u64::from_str_radix(e, 16)) else { continue };
        let path = f.nth(3).unwrap_or("");
        let anonymous = path.is_empty() || path.starts_with("/memfd:") || path.starts_with("[anon");
        let p = perms.as_bytes();
        out.push(MapsEntry {
            start,
            end,
            readable: p.first() == Some(&b'r'),
            writable: p.get(1) == Some(&b'w'),
            anonymous,
        });
    }
    out
}

/// The host-virtual start of QEMU's guest RAM: the one anonymous read-write mapping of exactly `ram_bytes`
/// (QEMU maps each RAMBlock on its own, between PROT_NONE guard pages), or a run of adjacent ones that add up.
pub fn find_ram_mapping(maps: &[MapsEntry], ram_bytes: u64) -> Result<u64> {
    let rw_anon = |m: &&MapsEntry| m.readable && m.writable && m.anonymous;
    let exact: Vec<u64> = maps.iter().filter(rw_anon).filter(|m| m.end.wrapping_sub(m.start) == ram_bytes).map(|m| m.start).collect();
    match exact.as_slice() {
        [one] => return Ok(*one),
        [] => {}
        many => {
            return Err(Error::NotFound(format!(
                "{} anonymous mappings of {ram_bytes} bytes could each be guest RAM; give the QMP socket (--qmp) for the exact map",
                many.len()
            )))
        }
    }
    // The kernel may have split one RAM mapping into VMAs (madvise, THP): join neighbours.
    let mut runs: Vec<(u64, u64)> = Vec::new();
    for m in maps.iter().filter(rw_anon) {
        match runs.last_mut() {
            Some(r) if r.1 == m.start => r.1 = m.end,
            _ => runs.push((m.start, m.end)),
        }
    }
    let joined: Vec<u64> = runs.iter().filter(|r| r.1 - r.0 == ram_bytes).map(|r| r.0).collect();
    match joined.as_slice() {
        [one] => Ok(*one),
        _ => Err(Error::NotFound(format!(
            "no single anonymous mapping of {ram_bytes} bytes (QEMU's -m) in the process; give the QMP socket (--qmp) for the exact map"
        ))),
    }
}

/// The map learnt without a monitor: QEMU's RAM mapping found in /proc/PID/maps, laid out as its machine lays a
/// flat RAM file (mem::layout). Returns the segments and a description that says it was guessed.
pub fn map_from_proc(pid: i32) -> Result<(Vec<HostSegment>, String)> {
    let read = |what: &str| -> Result<Vec<u8>> {
        std::fs::read(format!("/proc/{pid}/{what}")).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::ESRCH) => gone(pid),
            Some(libc::EACCES) | Some(libc::EPERM) => denied(pid),
            _ => Error::Io(format!("cannot read /proc/{pid}/{what}: {e}")),
        })
    };
    let cmdline: Vec<String> = read("cmdline")?.split(|&b| b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect();
    let exe = cmdline.first().map(String::as_str).unwrap_or("");
    if !exe.rsplit('/').next().unwrap_or("").starts_with("qemu") {
        return Err(Error::Unsupported(format!("process {pid} ({exe}) is not QEMU; only QEMU processes are read live")));
    }
    let q = parse_qemu_cmdline(&cmdline)?;
    let maps = parse_maps(&String::from_utf8_lossy(&read("maps")?));
    let base = find_ram_mapping(&maps, q.ram_bytes)?;
    let raw = RawLayout::parse(q.layout, q.ram_bytes)?;
    let segments = layout::segments(&raw, q.ram_bytes)
        .into_iter()
        .map(|s| Segment { gpa: s.gpa, file_offset: base + s.file_offset, len: s.len })
        .collect();
    let describe = format!(
        "guessed from /proc/{pid}/maps and QEMU's command line (no monitor given): -m {} MiB, machine {} → {}",
        q.ram_bytes >> 20,
        q.machine,
        raw.describe()
    );
    Ok((segments, describe))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_memory_through_process_vm_readv() {
        let data: Vec<u8> = (0..3 * 4096u32).map(|i| (i % 251) as u8).collect();
        let hva = data.as_ptr() as u64;
        let pid = std::process::id() as i32;
        // guest-physical 0x1000.. = the first page, 0x10_0000.. = the other two
        let segs = vec![Segment { gpa: 0x10_0000, file_offset: hva + 4096, len: 8192 }, Segment { gpa: 0x1000, file_offset: hva, len: 4096 }];
        let ram = ProcessRam::open(pid, segs, "test".into()).unwrap();
        assert_eq!(ram.ranges(), &[PhysRange { start: 0x1000, len: 4096 }, PhysRange { start: 0x10_0000, len: 8192 }]);
        let mut b = [0u8; 4];
        ram.read_phys(0x1000 + 10, &mut b).unwrap();
        assert_eq!(b, [10, 11, 12, 13]);
        ram.read_phys(0x10_0000 + 4095, &mut b).unwrap();
        assert_eq!(b.to_vec(), data[8191..8195].to_vec());
        // outside the map, and across its end
        assert!(matches!(ram.read_phys(0x2000, &mut b), Err(Error::Fault { addr: 0x2000, .. })));
        assert!(matches!(ram.read_phys(0x10_0000 + 8190, &mut b), Err(Error::Fault { .. })));
        assert!(ram.phys_slice(0x1000, 4).is_err());
        drop(ram);
        drop(data);
    }

    #[test]
    fn an_unmapped_host_address_is_a_fault_and_a_missing_process_an_io_error() {
        let pid = std::process::id() as i32;
        // the zero page is never mapped in a process
        let r = ProcessRam::open(pid, vec![Segment { gpa: 0, file_offset: 0x1000, len: 4096 }], "t".into());
        assert!(matches!(r, Err(Error::Fault { .. })), "{r:?}");
        let r = ProcessRam::open(i32::MAX - 7, vec![Segment { gpa: 0, file_offset: 0x1000, len: 4096 }], "t".into());
        assert!(matches!(r, Err(Error::Io(ref m)) if m.contains("does not exist")), "{r:?}");
        assert!(ProcessRam::open(pid, vec![], "t".into()).is_err());
        let overlapping = vec![Segment { gpa: 0, file_offset: 0, len: 8192 }, Segment { gpa: 4096, file_offset: 0, len: 4096 }];
        assert!(matches!(ProcessRam::open(pid, overlapping, "t".into()), Err(Error::BadData(_))));
    }

    #[test]
    fn qemu_command_lines() {
        let v = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        let q = parse_qemu_cmdline(&v("qemu-system-x86_64 -accel tcg -m 256M -machine q35 -kernel k")).unwrap();
        assert_eq!((q.ram_bytes, q.layout), (256 << 20, "qemu-q35"));
        let q = parse_qemu_cmdline(&v("qemu-system-x86_64 -m size=5G,slots=2,maxmem=8G -M pc-i440fx-7.2,accel=kvm")).unwrap();
        assert_eq!((q.ram_bytes, q.layout), (5 << 30, "qemu-pc"));
        let q = parse_qemu_cmdline(&v("qemu-system-x86_64 -machine type=pc-q35-7.2,accel=tcg -m 3072")).unwrap();
        assert_eq!((q.ram_bytes, q.layout), (3 << 30, "qemu-q35"));
        assert_eq!(parse_qemu_cmdline(&v("qemu-system-x86_64")).unwrap().ram_bytes, 128 << 20);
        assert!(parse_qemu_cmdline(&v("qemu -m lots")).is_err());
        assert!(parse_qemu_cmdline(&v("qemu -m 1e30G")).is_err());
    }

    #[test]
    fn the_ram_mapping_is_the_one_anonymous_rw_mapping_of_the_ram_size() {
        let text = "\
55d0c0000000-55d0c0100000 r-xp 00000000 08:01 123 /usr/bin/qemu-system-x86_64
7f0000000000-7f0000001000 ---p 00000000 00:00 0
7f0000001000-7f0010001000 rw-p 00000000 00:00 0
7f0010001000-7f0010002000 ---p 00000000 00:00 0
7f1000000000-7f1000200000 rw-p 00000000 00:00 0
7f2000000000-7f2008000000 rw-p 00000000 00:00 0
7f2008000000-7f2010000000 rw-p 00000000 00:00 0 [anon:split]
";
        let maps = parse_maps(text);
        assert_eq!(maps.len(), 7);
        assert_eq!(find_ram_mapping(&maps, 256 << 20).unwrap(), 0x7f00_0000_1000);
        // two VMAs that together make 256 MiB when no single one does
        let joined: Vec<MapsEntry> = maps.iter().filter(|m| m.start != 0x7f00_0000_1000).cloned().collect();
        assert_eq!(find_ram_mapping(&joined, 256 << 20).unwrap(), 0x7f20_0000_0000);
        assert!(find_ram_mapping(&maps, 3 << 30).is_err());
        let twice = [maps.clone(), vec![MapsEntry { start: 0x7f30_0000_0000, end: 0x7f30_1000_0000, readable: true, writable: true, anonymous: true }]].concat();
        assert!(matches!(find_ram_mapping(&twice, 256 << 20), Err(Error::NotFound(m)) if m.contains("--qmp")));
    }
}
