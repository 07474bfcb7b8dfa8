//! Seed corpora for the fuzz targets: real structures from the sample guest (its core's headers, VMCOREINFO,
//! kallsyms, BTF, printk records, the pages the walkers read) and small images made with qemu-img, sfdisk,
//! sgdisk and mkfs.ext4, each written in the input format of its target (see the entry points in mod.rs).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{kallsyms_input, qcow2_file_name, Walkers, PAGE, PRINTK_AT};
use crate::kernel::btf::{builder, Btf};
use crate::kernel::kallsyms::{self, KallsymsLocation};
use crate::kernel::{isf, vmcoreinfo, Kernel};
use crate::mem::{elfcore, lime};
use crate::walkers::dmesg;
use crate::walkers::testkit::KBASE;
use crate::{Error, Result};

/// Where seeds go, and how many each target got.
struct Out {
    dir: PathBuf,
    count: HashMap<&'static str, usize>,
}

impl Out {
    fn put(&mut self, target: &'static str, name: &str, bytes: &[u8]) -> Result<()> {
        let d = self.dir.join(target);
        std::fs::create_dir_all(&d)?;
        std::fs::write(d.join(format!("seed-{name}")), bytes)?;
        *self.count.entry(target).or_default() += 1;
        Ok(())
    }
}

/// Seeds written per target, and the steps that were skipped (a missing tool) with why.
pub struct Written {
    pub counts: Vec<(&'static str, usize)>,
    pub warnings: Vec<String>,
}

/// Write every target's seeds under `out`/<target>/; with `sample` (an unpacked sample guest dir), also
/// the ones taken from it.
pub fn write_all(sample: Option<&Path>, out: &Path) -> Result<Written> {
    let mut o = Out { dir: out.to_path_buf(), count: HashMap::new() };
    let mut warnings = Vec::new();
    synthetic(&mut o)?;
    let mut images = |name: &str, r: Result<()>| {
        if let Err(e) = r {
            warnings.push(format!("{name} seeds skipped: {e}"));
        }
    };
    images("kdump", kdump_real(&mut o, &kdump_dirs(sample)));
    images("qcow2", qcow2_images(&mut o));
    images("partition", partition_images(&mut o));
    images("ext4", ext4_images(&mut o));
    if let Some(dir) = sample {
        from_sample(&mut o, dir)?;
    }
    let mut counts: Vec<(&'static str, usize)> = o.count.into_iter().collect();
    counts.sort();
    Ok(Written { counts, warnings })
}

// ---------------------------------------------------------------------------------------------
// Made here

const VMCOREINFO_TEXT: &str = "OSRELEASE=6.1.0-56-amd64\nBUILD-ID=0123456789abcdef\nPAGESIZE=4096\n\
SYMBOL(init_top_pgt)=ffffffff8be10000\nSYMBOL(kallsyms_names)=ffffffff8b000000\nSYMBOL(kallsyms_num_syms)=ffffffff8affff00\n\
SYMBOL(kallsyms_token_table)=ffffffff8b100000\nSYMBOL(kallsyms_token_index)=ffffffff8b101000\n\
SYMBOL(kallsyms_offsets)=ffffffff8ae00000\nSYMBOL(kallsyms_relative_base)=ffffffff8affff08\n\
OFFSET(task_struct.pid)=2456\nNUMBER(phys_base)=-1048576\nKERNELOFFSET=9400000\nNUMBER(pgtable_l5_enabled)=1\nLENGTH(node_data)=1024\n";

fn synthetic(o: &mut Out) -> Result<()> {
    let page: Vec<u8> = (0..PAGE).map(|i| (i * 7) as u8).collect();
    let notes = [("VMCOREINFO", 0, VMCOREINFO_TEXT.as_bytes().to_vec()), ("QEMU", 0, elfcore::qemu_cpu_note(0x1000, 1 << 12)), ("CORE", 1, vec![0u8; 336])];
    let core = elfcore::build_core(&[(0, &page), (0x10_0000, &page[..100])], &notes);
    o.put("elf_core", "synthetic", &core)?;
    let lime = lime::build_lime(&[(0, &page), (0x1000, &page), (0x10_0000, &page[..100])]);
    o.put("lime", "synthetic", &lime)?;
    for (i, (len, spec)) in [
        (256u64 << 20, "auto"),
        (5 << 30, "auto"),
        (4 << 30, "qemu-pc:3.5G"),
        (3 << 30, "q35"),
        (4 << 30, "firecracker-1.12"),
        (4 << 30, "qemu-q35:0xb0000000"),
        (1 << 30, "flat"),
        (3 << 30, "pc:2048M"),
        (3 << 30, "libvirt:2.75GiB"),
    ]
    .iter()
    .enumerate()
    {
        o.put("raw_layout", &format!("spec{i}"), &[len.to_le_bytes().as_slice(), spec.as_bytes()].concat())?;
    }
    o.put("ram_source", "elf", &[&[0u8][..], &core].concat())?;
    o.put("ram_source", "lime", &[&[2u8][..], &lime].concat())?;
    o.put("ram_source", "raw", &[&[1u8][..], &page, &page].concat())?;
    o.put("vmcoreinfo", "text", VMCOREINFO_TEXT.as_bytes())?;
    let mut ram = vec![0u8; 3 * PAGE];
    let note = vmcoreinfo::note_bytes(VMCOREINFO_TEXT);
    ram[PAGE..PAGE + note.len()].copy_from_slice(&note);
    let banner = b"Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC\n\0";
    ram[2 * PAGE..2 * PAGE + banner.len()].copy_from_slice(banner);
    o.put("vmcoreinfo", "ram", &ram)?;
    let btf = builder::sample().build();
    o.put("btf", "synthetic", &btf)?;
    let parsed = Btf::parse(btf).map_err(|e| e.context("the BTF builder's sample"))?;
    let banner = "Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org) #1 SMP\n";
    o.put("isf", "synthetic", isf::export(&super::BannerOnly, &parsed, banner, 0)?.as_bytes())?;
    o.put(
        "isf",
        "anonymous",
        br#"{"metadata":{"format":"6.2.0"},"base_types":{"int":{"kind":"int","size":4,"signed":true,"endian":"little"}},
"enums":{"e":{"size":4,"base":"int","constants":{"A":1,"B":-2}}},"symbols":{"init_task":{"address":18446744071562067968}},
"user_types":{"a":{"kind":"struct","size":8,"fields":{"u":{"offset":0,"anonymous":true,"type":{"kind":"struct","name":"b"}},
"x":{"offset":4,"type":{"kind":"bitfield","bit_position":3,"bit_length":2,"type":{"kind":"base","name":"int"}}}}},
"b":{"kind":"union","size":8,"fields":{"y":{"offset":0,"type":{"kind":"array","count":2,"subtype":{"kind":"base","name":"int"}}}}}}}"#,
    )?;
    o.put("system_map", "synthetic", b"0000000000000000 A fixed_percpu_data\nffffffff81000000 T _text\nffffffff81000000 T startup_64\nffffffff82a0c940 D init_task\n")?;
    o.put("vmlinux", "synthetic", &crate::kernel::vmlinux::builder::tiny_elf(true))?;
    o.put("printk", "synthetic", &printk_ring(&synthetic_records()))?;
    kdump_synthetic(o)?;
    let long = "x".repeat(200); // a two-byte length
    let syms = [('A', "fixed_percpu_data", 0), ('T', "_stext", kallsyms::builder::BASE), ('D', "init_task", kallsyms::builder::BASE + 0x1a0_0000), ('t', long.as_str(), kallsyms::builder::BASE + 0x400)];
    o.put("kallsyms", "percpu", &kallsyms_input_of(&kallsyms::builder::build(&syms, true, kallsyms::builder::BASE)))?;
    // Plain base-relative tables hold no absolute (per-cpu) symbols.
    o.put("kallsyms", "relative", &kallsyms_input_of(&kallsyms::builder::build(&syms[1..], false, kallsyms::builder::BASE)))?;
    Ok(())
}

/// Small dumps of every shape the reader knows: each compression, dump levels 1 and 31, header versions 1–6, a
/// split part, an incomplete dump, the flattened stream in and out of order.
fn kdump_synthetic(o: &mut Out) -> Result<()> {
    use crate::mem::kdump::build::{self, page_of, Spec, DH_HEADER_VERSION, DH_STATUS, METHODS, STATUS_INCOMPLETE, STATUS_ZLIB};
    let spec = |dump_level: i32, status: u32| Spec {
        max_mapnr: 64,
        pages: (0..12u64).chain(40..44).map(|p| (p, page_of(p), METHODS[p as usize % METHODS.len()])).collect(),
        excluded: vec![20, 21, 22],
        dump_level,
        vmcoreinfo: Some("OSRELEASE=6.1.0-56-amd64\nPAGESIZE=4096\nSYMBOL(init_top_pgt)=ffffffff8be10000\n"),
        status,
    };
    let d31 = build::standard(&spec(31, STATUS_ZLIB));
    o.put("kdump", "d31", &d31)?;
    o.put("kdump", "d1", &build::standard(&spec(1, STATUS_ZLIB)))?;
    let mut incomplete = build::standard(&spec(31, STATUS_ZLIB | STATUS_INCOMPLETE));
    incomplete.truncate(incomplete.len() - 200); // the last page's data cut short
    o.put("kdump", "incomplete", &incomplete)?;
    for version in [1u32, 2, 3, 4, 5] {
        let mut v = d31.clone();
        v[DH_HEADER_VERSION..DH_HEADER_VERSION + 4].copy_from_slice(&version.to_le_bytes());
        o.put("kdump", &format!("v{version}"), &v)?;
    }
    let mut status = d31.clone();
    status[DH_STATUS..DH_STATUS + 4].copy_from_slice(&0x30u32.to_le_bytes()); // zstd, unused vmemmap excluded
    o.put("kdump", "status", &status)?;
    o.put("kdump", "split", &build::shrink(&d31, 8, 6)?)?;
    let chunks = d31.len().div_ceil(1500);
    o.put("kdump", "flattened", &build::flattened(&d31, 4096, None))?;
    o.put("kdump", "flattened-reversed", &build::flattened(&d31, 1500, Some((0..chunks).rev().collect())))?;
    o.put("ram_source", "kdump", &[&[0u8][..], &d31].concat())?;
    Ok(())
}

/// Where real dumps may be: the kdump guest the tests read (NEARFIELD_KDUMP_GUEST, else images/out/no5lvl-256m)
/// and the sample guest's directory.
fn kdump_dirs(sample: Option<&Path>) -> Vec<PathBuf> {
    let guest = std::env::var_os("NEARFIELD_KDUMP_GUEST")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../images/out/no5lvl-256m"));
    std::iter::once(guest).chain(sample.map(Path::to_path_buf)).collect()
}

/// Seeds cut from real dumps (QEMU's kdump-*, makedumpfile's vmcore-*, any kdump file in `dirs`): their first
/// pages, and a split part from 16 MiB on (the kernel image), each also as a flattened stream written out of order.
fn kdump_real(o: &mut Out, dirs: &[PathBuf]) -> Result<()> {
    use crate::mem::kdump::{build, is_kdump};
    let mut found = 0;
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else { continue };
        let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect();
        files.sort();
        for path in files {
            let mut head = [0u8; 16];
            let is_dump = std::fs::File::open(&path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head)).is_ok() && is_kdump(&head);
            if !is_dump {
                continue;
            }
            let bytes = std::fs::read(&path)?;
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            for (tag, first, pages) in [("head", 0u64, 24usize), ("kernel", 0x1000, 16)] {
                let small = build::shrink(&bytes, first, pages).map_err(|e| e.context(format!("cutting {}", path.display())))?;
                let chunks = small.len().div_ceil(4096);
                o.put("kdump", &format!("{name}-{tag}"), &small)?;
                o.put("kdump", &format!("{name}-{tag}-flattened"), &build::flattened(&small, 4096, Some((0..chunks).rev().collect())))?;
            }
            found += 1;
        }
    }
    if found == 0 {
        let where_ = dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ");
        return Err(Error::NotFound(format!("no kdump-compressed dump in {where_} (images/build-guest.mjs writes them; or set NEARFIELD_KDUMP_GUEST)")));
    }
    Ok(())
}

/// Tables made by kallsyms::builder in the kallsyms target's input format (a header, then the tables).
fn kallsyms_input_of(built: &kallsyms::builder::Built) -> Vec<u8> {
    use kallsyms_input as h;
    let mut b = vec![0u8; h::HEADER_LEN];
    let at = |addr: Option<u64>| addr.map_or(h::ABSENT, |a| (a - built.vm.base) as u32 + h::HEADER_LEN as u32);
    let loc = &built.loc;
    for (field, addr) in [
        (h::NAMES, Some(loc.names)),
        (h::NUM_SYMS, Some(loc.num_syms)),
        (h::TOKEN_TABLE, Some(loc.token_table)),
        (h::TOKEN_INDEX, Some(loc.token_index)),
        (h::OFFSETS, loc.offsets),
        (h::RELATIVE_BASE, loc.relative_base),
        (h::ADDRESSES, loc.addresses),
        (h::MARKERS, loc.markers),
    ] {
        b[field..field + 4].copy_from_slice(&at(addr).to_le_bytes());
    }
    b.extend(&built.vm.bytes);
    b
}

// ---------------------------------------------------------------------------------------------
// printk

pub(super) fn synthetic_records() -> Vec<dmesg::LogRecord> {
    let rec = |seq: u64, text: &str, caller: &str| dmesg::LogRecord {
        seq,
        ts_usec: seq * 1_000,
        level: 6,
        facility: 0,
        flags: 2,
        caller: caller.into(),
        text: text.into(),
        subsystem: if seq == 2 { "pci".into() } else { String::new() },
        device: if seq == 2 { "+pci:0000:00:01.0".into() } else { String::new() },
    };
    vec![rec(0, "Linux version 6.1.0-56-amd64", "T0"), rec(1, "Command line: quiet", "T0"), rec(2, "pci 0000:00:01.0: probe", "C1"), rec(3, "", "T1")]
}

/// A printk ring (6.1 layout, the printk target's input format) holding `records`, with 32 descriptors and
/// a 4 KiB text ring entered part-way through a lap, so that the newest blocks wrap.
pub fn printk_ring(records: &[dmesg::LogRecord]) -> Vec<u8> {
    const COUNT_BITS: u32 = 5;
    const SIZE_BITS: u32 = 12;
    let (count, size) = (1u64 << COUNT_BITS, 1u64 << SIZE_BITS);
    let records = &records[records.len().saturating_sub(count as usize - 1)..];
    let descs_at = 0x100u64;
    let infos_at = descs_at + count * 24;
    let text_at = infos_at + count * 88;
    let mut b = vec![0u8; (text_at + size) as usize];
    let va = |off: u64| KBASE + PRINTK_AT + off;
    let put = |b: &mut Vec<u8>, off: u64, v: &[u8]| b[off as usize..off as usize + v.len()].copy_from_slice(v);
    let tail_id = 3 * count + 7;
    let head_id = tail_id + records.len().max(1) as u64 - 1;
    put(&mut b, 0, &COUNT_BITS.to_le_bytes());
    put(&mut b, 8, &va(descs_at).to_le_bytes());
    put(&mut b, 16, &va(infos_at).to_le_bytes());
    put(&mut b, 24, &head_id.to_le_bytes());
    put(&mut b, 32, &tail_id.to_le_bytes());
    put(&mut b, 48, &SIZE_BITS.to_le_bytes());
    put(&mut b, 56, &va(text_at).to_le_bytes());
    let mut lpos = 2 * size + size - 200;
    for (i, r) in records.iter().enumerate() {
        let id = tail_id + i as u64;
        let idx = id & (count - 1);
        let text = r.text.chars().map(|c| c as u32 as u8).take(1000).collect::<Vec<u8>>();
        let need = (8 + text.len() as u64).div_ceil(8) * 8;
        let (begin, next, data_at) = if text.is_empty() {
            (1, 1, None) // a data-less record
        } else if lpos % size + need > size {
            let next = (lpos / size + 1) * size + need;
            (lpos, next, Some(0))
        } else {
            (lpos, lpos + need, Some(lpos % size))
        };
        if let Some(at) = data_at {
            put(&mut b, text_at + at, &id.to_le_bytes());
            put(&mut b, text_at + at + 8, &text);
            lpos = next;
        }
        let d = descs_at + idx * 24;
        put(&mut b, d, &((2u64 << 62) | id).to_le_bytes());
        put(&mut b, d + 8, &begin.to_le_bytes());
        put(&mut b, d + 16, &next.to_le_bytes());
        let inf = infos_at + idx * 88;
        put(&mut b, inf, &r.seq.to_le_bytes());
        put(&mut b, inf + 8, &r.ts_usec.saturating_mul(1000).to_le_bytes());
        put(&mut b, inf + 16, &(text.len() as u16).to_le_bytes());
        put(&mut b, inf + 18, &[r.facility, (r.flags & 0x1f) | (r.level << 5)]);
        let caller = match r.caller.split_at(1.min(r.caller.len())) {
            ("C", n) => 0x8000_0000 | n.parse::<u32>().unwrap_or(0),
            (_, n) => n.parse::<u32>().unwrap_or(0),
        };
        put(&mut b, inf + 20, &caller.to_le_bytes());
        put(&mut b, inf + 24, &r.subsystem.as_bytes()[..r.subsystem.len().min(15)]);
        put(&mut b, inf + 40, &r.device.as_bytes()[..r.device.len().min(47)]);
    }
    b
}

// ---------------------------------------------------------------------------------------------
// Images made with the Debian tools the tests use (.ci/setup installs them)

fn tool(dir: &Path, cmd: &str, args: &[&str]) -> Result<()> {
    let out = Command::new(cmd)
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|e| Error::Io(format!("running {cmd}: {e}")))?;
    if !out.status.success() {
        return Err(Error::Io(format!("{cmd} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim())));
    }
    Ok(())
}

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);
impl Scratch {
    fn new(tag: &str) -> Result<Scratch> {
        let d = std::env::temp_dir().join(format!("nearfield-seeds-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d)?;
        Ok(Scratch(d))
    }
}
impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The image without its trailing zeros (reads past the end then fail, as on a truncated image), at most `cap` bytes.
fn trimmed(path: &Path, cap: usize) -> Result<Vec<u8>> {
    let mut b = std::fs::read(path)?;
    b.truncate(cap);
    let end = b.iter().rposition(|&x| x != 0).map_or(0, |i| i + 1);
    b.truncate(end.next_multiple_of(512).min(b.len()));
    Ok(b)
}

/// A 1 MiB raw disk with a few recognisable 4 KiB blocks; the rest zeros.
fn patterned_raw(path: &Path) -> Result<()> {
    let mut raw = vec![0u8; 1 << 20];
    for (i, at) in [0usize, 0x3000, 0x8_1000, 0xF_F000].iter().enumerate() {
        for (j, b) in raw[*at..*at + 4096].iter_mut().enumerate() {
            *b = (i * 31 + j / 16) as u8 | 1;
        }
    }
    std::fs::write(path, raw)?;
    Ok(())
}

/// The qcow2 target's input: [u32 length][file] for every file but the last, then the last.
fn qcow2_input(files: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, f) in files.iter().enumerate() {
        if i + 1 < files.len() {
            out.extend((f.len() as u32).to_le_bytes());
        }
        out.extend(f);
    }
    out
}

fn qcow2_images(o: &mut Out) -> Result<()> {
    let s = Scratch::new("qcow2")?;
    let d = &s.0;
    patterned_raw(&d.join("raw"))?;
    let read = |name: &str| std::fs::read(d.join(name)).map_err(Error::from);
    for (name, opts, compress) in [
        ("v3-4k", "cluster_size=4096", false),
        ("v2-4k", "compat=0.10,cluster_size=4096", false),
        ("v3-64k", "cluster_size=65536", false),
        ("deflate", "cluster_size=4096", true),
        ("zstd", "cluster_size=4096,compression_type=zstd", true),
        ("extl2", "cluster_size=16384,extended_l2=on", false),
    ] {
        let mut args = vec!["convert", "-q", "-f", "raw", "-O", "qcow2", "-o", opts];
        if compress {
            args.push("-c");
        }
        args.extend(["raw", name]);
        tool(d, "qemu-img", &args)?;
        o.put("qcow2", name, &read(name)?)?;
    }
    // Backing chains by relative name, as the target resolves them: 0 → 1 (qcow2) → 2 (raw).
    let (f0, f1, f2) = (qcow2_file_name(0), qcow2_file_name(1), qcow2_file_name(2));
    let rel = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let (n0, n1, n2) = (rel(&f0), rel(&f1), rel(&f2));
    std::fs::write(d.join(&n2), std::fs::read(d.join("raw"))?.get(..64 << 10).unwrap_or(&[]))?;
    tool(d, "qemu-img", &["create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", "-b", &n2, "-F", "raw", &n1])?;
    tool(d, "qemu-io", &["-c", "write -P 0x5a 8k 4k", &n1])?;
    tool(d, "qemu-img", &["create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", "-b", &n1, "-F", "qcow2", &n0])?;
    tool(d, "qemu-io", &["-c", "write -P 0xa5 0 4k", &n0])?;
    o.put("qcow2", "chain", &qcow2_input(&[read(&n0)?, read(&n1)?, read(&n2)?]))?;
    // No backing format: the backing file is probed. qemu-img insists on one, so its header extension is
    // renamed to a type nobody knows (readers skip those).
    tool(d, "qemu-img", &["create", "-q", "-f", "qcow2", "-o", "cluster_size=4096", "-b", &n1, "-F", "qcow2", "x"])?;
    let mut x = read("x")?;
    let at = x.windows(4).take(4096).position(|w| w == [0xE2, 0x79, 0x2A, 0xCA]).ok_or_else(|| Error::bad("no backing-format extension"))?;
    x[at..at + 4].copy_from_slice(&0x4E46_5A5Au32.to_be_bytes());
    o.put("qcow2", "chain-probed", &qcow2_input(&[x, read(&n1)?]))?;
    Ok(())
}

fn partition_images(o: &mut Out) -> Result<()> {
    let s = Scratch::new("part")?;
    let d = &s.0;
    let sized = |name: &str, len: u64| -> Result<()> {
        std::fs::File::create(d.join(name))?.set_len(len)?;
        Ok(())
    };
    sized("gpt", 128 << 10)?;
    tool(d, "sgdisk", &["-a", "1", "-n", "1:34:+32K", "-t", "1:ef00", "-c", "1:EFI", "-n", "2:0:+40K", "-t", "2:8304", "-c", "2:root", "-n", "3:0:0", "-t", "3:8300", "gpt"])?;
    o.put("partition", "gpt", &std::fs::read(d.join("gpt"))?)?;
    sized("mbr", 128 << 10)?;
    let script = "label: dos\nstart=8, size=40, type=83\nstart=48, size=200, type=5\nstart=56, size=40, type=83\nstart=104, size=40, type=82\nstart=248, size=8, type=c\n";
    let mut child = Command::new("sfdisk")
        .args(["-q", "--no-reread", "--no-tell-kernel", "mbr"])
        .current_dir(d)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| Error::Io(format!("running sfdisk: {e}")))?;
    use std::io::Write;
    child.stdin.take().ok_or_else(|| Error::Io("sfdisk stdin".into()))?.write_all(script.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(Error::Io(format!("sfdisk: {}", String::from_utf8_lossy(&out.stderr).trim())));
    }
    o.put("partition", "mbr", &trimmed(&d.join("mbr"), 128 << 10)?)?;
    Ok(())
}

fn ext4_images(o: &mut Out) -> Result<()> {
    let s = Scratch::new("ext4")?;
    let d = &s.0;
    for (name, size, args) in [
        ("ext4-1k", "1M", &["-t", "ext4", "-b", "1024"][..]),
        ("ext4-4k-csum", "2M", &["-t", "ext4", "-b", "4096", "-O", "metadata_csum,64bit,^has_journal"][..]),
        ("ext4-journal", "4M", &["-t", "ext4", "-b", "4096", "-J", "size=1"][..]),
        ("ext4-bigalloc", "8M", &["-t", "ext4", "-b", "4096", "-O", "bigalloc,^has_journal", "-C", "16384"][..]),
        ("ext4-meta-bg", "2M", &["-t", "ext4", "-b", "1024", "-O", "meta_bg,^resize_inode,^has_journal", "-g", "1024"][..]),
        ("ext4-sparse2", "2M", &["-t", "ext4", "-b", "1024", "-O", "sparse_super2,^has_journal", "-g", "2048"][..]),
        ("ext2", "1M", &["-t", "ext2"][..]),
        ("ext3", "4M", &["-t", "ext3", "-J", "size=1"][..]),
    ] {
        let img = d.join(name);
        std::fs::File::create(&img)?;
        let mut a = vec!["-q", "-F", "-E", "nodiscard,root_owner=0:0", "-L", "fuzz", "-U", "4f68bce3-e8cd-4db1-96e7-fbcaf984b709"];
        a.extend(args);
        let img_s = img.to_string_lossy().into_owned();
        a.extend([img_s.as_str(), size]);
        tool(d, "mkfs.ext2", &a)?;
        o.put("ext4", name, &trimmed(&img, 256 << 10)?)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// From the sample guest

fn from_sample(o: &mut Out, dir: &Path) -> Result<()> {
    // The core's ELF header, program headers and notes (its RAM segments left out: they read as missing).
    let core = std::fs::read(dir.join("core.elf")).map_err(|e| Error::Io(format!("reading the sample's core.elf: {e}")))?;
    let parsed = elfcore::parse(&core, core.len() as u64)?;
    let first_load = parsed.segments.iter().map(|s| s.file_offset).min().unwrap_or(core.len() as u64);
    o.put("elf_core", "sample-head", &core[..(first_load as usize).min(core.len()).min(64 << 10)])?;
    o.put("ram_source", "sample-core-head", &[&[0u8][..], &core[..(first_load as usize).min(core.len()).min(64 << 10)]].concat())?;
    drop(core);

    let w = Walkers::on_sample(dir)?;
    let k = w.kernel();
    // RAM pages as LiME ranges and as a raw file.
    let mut pages = Vec::new();
    for pfn in [1u64, 2, 0x100] {
        let mut p = vec![0u8; PAGE];
        k.phys.read_phys(pfn * PAGE as u64, &mut p)?;
        pages.push((pfn * PAGE as u64, p));
    }
    let refs: Vec<(u64, &[u8])> = pages.iter().map(|(a, p)| (*a, p.as_slice())).collect();
    o.put("lime", "sample-pages", &lime::build_lime(&refs))?;
    o.put("ram_source", "sample-lime", &[&[3u8][..], &lime::build_lime(&refs)].concat())?;

    // VMCOREINFO as in RAM: note header and text.
    let text: String = k.facts.vmcoreinfo.iter().map(|(key, v)| format!("{key}={v}\n")).collect();
    o.put("vmcoreinfo", "sample-text", text.as_bytes())?;
    o.put("vmcoreinfo", "sample-note", &vmcoreinfo::note_bytes(&text))?;

    for (n, percpu_first) in [(300u32, false), (2000, true)] {
        o.put("kallsyms", &format!("sample-{n}"), &kallsyms_seed(k, n, percpu_first)?)?;
    }

    // The sample's symbols as a System.map (link-time: minus KERNELOFFSET), a slice of it.
    let mut all = k.symbols.all();
    all.sort_by_key(|s| s.1);
    let map: String = all
        .iter()
        .step_by((all.len() / 400).max(1))
        .map(|(n, a)| format!("{:016x} {} {n}\n", a.wrapping_sub(k.facts.kaslr_offset), if n.starts_with("__") { 'd' } else { 'T' }))
        .collect();
    o.put("system_map", "sample", map.as_bytes())?;

    // printk: the sample's newest records in the printk target's synthetic ring.
    let log = dmesg::dmesg(k)?;
    o.put("printk", "sample", &printk_ring(&log.records))?;

    // Walkers: the pages each walker reads, four to an input, in the order it reads them (the first 80 of each:
    // an input costs every walker, ~0.2 s instrumented, so a larger corpus only slows the start).
    for (walker, pfns) in w.pages_read() {
        for (i, group) in pfns.chunks(4).take(20).enumerate() {
            let mut input = Vec::new();
            for &pfn in group {
                let mut p = vec![0u8; PAGE];
                if u32::try_from(pfn).is_err() || k.phys.read_phys(pfn * PAGE as u64, &mut p).is_err() {
                    continue;
                }
                input.extend((pfn as u32).to_le_bytes());
                input.extend(p);
            }
            if !input.is_empty() {
                o.put("walkers", &format!("{walker}-{i:03}"), &input)?;
            }
        }
    }
    Ok(())
}

/// The sample's kallsyms tables cut to their first `n` symbols, in the kallsyms target's input format.
fn kallsyms_seed(k: &Kernel, n: u32, with_known: bool) -> Result<Vec<u8>> {
    use kallsyms_input as h;
    let loc = KallsymsLocation::from_vmcoreinfo(&k.facts.vmcoreinfo)?;
    let total = u32::from_le_bytes(k.read_vec(loc.num_syms, 4, "kallsyms_num_syms")?.try_into().unwrap_or([0; 4]));
    let n = n.min(total);
    let names_all = k.read_vec(loc.names, 256 << 10, "kallsyms_names")?;
    let mut pos = 0usize;
    for _ in 0..n {
        let b0 = *names_all.get(pos).ok_or_else(|| Error::bad("kallsyms names cut short"))? as usize;
        let (len, hdr) = if b0 & 0x80 != 0 { ((b0 & 0x7f) | (*names_all.get(pos + 1).unwrap_or(&0) as usize) << 7, 2) } else { (b0, 1) };
        pos += hdr + len;
    }
    let names = names_all.get(..pos).ok_or_else(|| Error::bad("kallsyms names cut short"))?;
    let index = k.read_vec(loc.token_index, 512, "kallsyms_token_index")?;
    let max_index = index.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]) as usize).max().unwrap_or(0);
    let table = k.read_vec(loc.token_table, max_index as u64 + 64, "kallsyms_token_table")?;
    let offsets_at = loc.offsets.ok_or_else(|| Error::NotFound("the sample's kallsyms has no offsets".into()))?;
    let offsets = k.read_vec(offsets_at, n as u64 * 4, "kallsyms_offsets")?;
    let base = k.read_vec(loc.relative_base.ok_or_else(|| Error::NotFound("no relative_base".into()))?, 8, "kallsyms_relative_base")?;

    let mut b = vec![0u8; h::HEADER_LEN];
    let field = |b: &mut Vec<u8>, hdr_at: usize, bytes: &[u8]| {
        while !b.len().is_multiple_of(8) {
            b.push(0);
        }
        let at = b.len() as u32;
        b[hdr_at..hdr_at + 4].copy_from_slice(&at.to_le_bytes());
        b.extend(bytes);
    };
    field(&mut b, h::OFFSETS, &offsets);
    field(&mut b, h::RELATIVE_BASE, &base);
    field(&mut b, h::NUM_SYMS, &n.to_le_bytes());
    field(&mut b, h::NAMES, names);
    field(&mut b, h::TOKEN_TABLE, &table);
    field(&mut b, h::TOKEN_INDEX, &index);
    for absent in [h::ADDRESSES, h::MARKERS] {
        b[absent..absent + 4].copy_from_slice(&h::ABSENT.to_le_bytes());
    }
    if with_known {
        // Vouch for the first symbol, as VMCOREINFO vouches for a few.
        let (loc, _) = super::kallsyms_location(&b);
        let t = kallsyms::decode(&kallsyms::builder::FlatVm { base: h::BASE, bytes: b.clone() }, &loc)?;
        let first = t.iter().find(|s| s.name.len() < 40).map(|s| (s.address, s.name.to_string()));
        drop(t);
        if let Some((address, name)) = first {
            b[h::KNOWN_ADDR..h::KNOWN_ADDR + 8].copy_from_slice(&address.to_le_bytes());
            b[h::KNOWN_NAME..h::KNOWN_NAME + name.len()].copy_from_slice(name.as_bytes());
        }
    }
    Ok(b)
}


#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_seeds_parse_as_their_targets_expect() {
        let out = std::env::temp_dir().join(format!("nearfield-seed-test-{}", std::process::id()));
        let mut o = Out { dir: out.clone(), count: HashMap::new() };
        synthetic(&mut o).unwrap();
        let read = |t: &str, n: &str| std::fs::read(out.join(t).join(format!("seed-{n}"))).unwrap();
        assert!(elfcore::parse(&read("elf_core", "synthetic"), u64::MAX).unwrap().notes.vmcoreinfo.is_some());
        let log = dmesg::dmesg(&super::super::printk_guest(&read("printk", "synthetic"))).unwrap();
        let want = synthetic_records();
        assert_eq!(log.records, want, "{:?}", log.warnings);
        let input = read("kallsyms", "percpu");
        let (loc, _) = super::super::kallsyms_location(&input);
        let table = kallsyms::decode(&kallsyms::builder::FlatVm { base: kallsyms_input::BASE, bytes: input }, &loc).unwrap();
        assert_eq!(table.get("init_task").map(|s| s.address), Some(kallsyms::builder::BASE + 0x1a0_0000));
        // Every kdump seed opens, and its pages read back as built (each compression, in and out of order).
        use crate::mem::kdump::{build::page_of, KdumpRam};
        use crate::mem::PhysicalMemory;
        let mut page = vec![0u8; PAGE];
        for name in ["d31", "d1", "incomplete", "v1", "v2", "v3", "v4", "v5", "status", "split", "flattened", "flattened-reversed"] {
            let ram = KdumpRam::from_bytes(read("kdump", name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            for pfn in [8u64, 9, 10, 11] {
                ram.read_phys(pfn * PAGE as u64, &mut page).unwrap_or_else(|e| panic!("{name} pfn {pfn}: {e}"));
                assert_eq!(page, page_of(pfn), "{name} pfn {pfn}");
            }
        }
        let _ = std::fs::remove_dir_all(out);
    }
}
