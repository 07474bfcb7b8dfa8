//! The inventory walkers on a real guest whose memory was damaged the way a malicious guest could: an fdtable
//! claiming 2^31 fds, a dentry chain that loops, a maple tree with a cycle, an mm claiming 10^9 VMAs over page
//! tables that map themselves. Each walk ends, bounded, with a warning naming what was wrong, and lists everything
//! else.

use std::sync::Arc;

use crate::kernel::discover::{discover, DiscoverOptions};
use crate::kernel::Kernel;
use crate::mem::{PhysRange, PhysicalMemory, X86AddressSpaces};
use crate::objects::pid::find_task_by_pid;
use crate::test_support::real_guest_dir;
use crate::objects::maple_entries;
use crate::walkers::{files, maps, tasks};
use crate::Result;

/// Guest RAM with some bytes overwritten.
struct Patched {
    inner: Arc<dyn PhysicalMemory>,
    patches: Vec<(u64, Vec<u8>)>,
}

impl PhysicalMemory for Patched {
    fn read_phys(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        self.inner.read_phys(addr, buf)?;
        let end = addr.saturating_add(buf.len() as u64);
        for (at, bytes) in &self.patches {
            let (from, to) = (addr.max(*at), end.min(at + bytes.len() as u64));
            if from < to {
                buf[(from - addr) as usize..(to - addr) as usize].copy_from_slice(&bytes[(from - at) as usize..(to - at) as usize]);
            }
        }
        Ok(())
    }
    fn phys_slice(&self, addr: u64, _len: usize) -> Result<&[u8]> {
        Err(crate::Error::fault(addr, "patched RAM has no slices"))
    }
    fn ranges(&self) -> &[PhysRange] {
        self.inner.ranges()
    }
}

/// The real guest's kernel with `patch(k)`'s (kernel virtual address, bytes) written into its RAM.
fn damaged(patch: impl FnOnce(&Kernel) -> Vec<(u64, Vec<u8>)>) -> Option<Kernel> {
    let dir = real_guest_dir()?;
    let d = discover(&DiscoverOptions { ram: dir.join("ram.raw"), layout: "auto".into(), use_cache: false, ..Default::default() }).unwrap();
    let k = d.kernel;
    let patches = patch(&k).into_iter().map(|(va, b)| (k.spaces.kernel_virt_to_phys(va).unwrap(), b)).collect();
    let phys: Arc<dyn PhysicalMemory> = Arc::new(Patched { inner: k.phys.clone(), patches });
    let spaces = X86AddressSpaces::new(phys.clone(), k.facts.dtb, k.facts.paging_levels).unwrap();
    let Kernel { symbols, types, facts, .. } = k;
    Some(Kernel::from_parts(phys, Box::new(spaces), symbols, types, facts))
}

fn pid1(k: &Kernel) -> u64 {
    find_task_by_pid(k, 1).unwrap()
}

#[test]
fn an_fdtable_claiming_2_to_the_31_fds_is_read_to_the_bound_with_a_warning() {
    let Some(k) = damaged(|k| {
        let files = k.field(pid1(k), "task_struct", "files").unwrap();
        let fdt = k.field(files, "files_struct", "fdt").unwrap();
        vec![(fdt + k.offset("fdtable", "max_fds").unwrap(), (1u32 << 31).to_le_bytes().to_vec())]
    }) else {
        return;
    };
    let l = files::open_files(&k, &Default::default()).unwrap();
    assert!(l.warnings.iter().any(|w| w.contains("fd table of pid 1") && w.contains("claims 2147483648 fds")), "{:?}", l.warnings);
    assert!(l.files.iter().any(|f| f.pid == 1), "pid 1's real fds are still listed");
    assert!(l.files.iter().any(|f| f.pid != 1), "and every other process's");
}

#[test]
fn a_dentry_chain_that_loops_costs_that_fd_its_name_with_a_warning() {
    let mut victim = (0, 0);
    let Some(k) = damaged(|k| {
        // two files' dentries (neither a mount's root) made each other's parent: a chain that never ends
        let l = files::open_files(k, &Default::default()).unwrap();
        let f_path = k.offset("file", "f_path").unwrap();
        let d_parent = k.offset("dentry", "d_parent").unwrap();
        let mnt_root = k.offset("vfsmount", "mnt_root").unwrap();
        let mut picked: Vec<(i32, u32, u64)> = Vec::new();
        for f in l.files.iter().filter(|f| f.target.as_deref().is_some_and(|t| t.starts_with('/'))) {
            let dentry = k.field(f.file.0 + f_path, "path", "dentry").unwrap();
            let root = k.read_u64(k.field(f.file.0 + f_path, "path", "mnt").unwrap() + mnt_root).unwrap();
            if dentry != root && picked.iter().all(|p| p.2 != dentry) {
                picked.push((f.pid, f.fd, dentry));
            }
        }
        let [(pid, fd, a), (_, _, b), ..] = picked[..] else { panic!("two files in directories") };
        victim = (pid, fd);
        vec![(a + d_parent, b.to_le_bytes().to_vec()), (b + d_parent, a.to_le_bytes().to_vec())]
    }) else {
        return;
    };
    let l = files::open_files(&k, &Default::default()).unwrap();
    let f = l.files.iter().find(|f| (f.pid, f.fd) == victim).unwrap();
    assert_eq!(f.target, None);
    assert!(l.warnings.iter().any(|w| w.starts_with(&format!("pid {} fd {}: ", victim.0, victim.1)) && (w.contains("PATH_MAX") || w.contains("loop"))), "{:?}", l.warnings);
    assert!(l.files.iter().filter(|f| f.target.is_some()).count() > 10, "the other fds keep their names");
}

#[test]
fn a_maple_tree_with_a_cycle_ends_that_process_map_with_a_warning() {
    let mut victim = 0;
    let Some(k) = damaged(|k| {
        // the first process whose mm_mt has an internal root node: its first slot points back at the root
        let ma_root = k.offset("mm_struct", "mm_mt").unwrap() + k.offset("maple_tree", "ma_root").unwrap();
        let list = crate::walkers::tasks::walk_tasks(k, &Default::default()).unwrap();
        let (pid, root) = list
            .tasks
            .iter()
            .filter_map(|t| {
                let mm = k.field(t.address.0, "task_struct", "mm").ok().filter(|&mm| mm != 0)?;
                let root = k.read_u64(mm + ma_root).ok()?;
                (root & 2 == 2 && (root >> 3) & 0xf >= 2).then_some((t.pid, root))
            })
            .next()
            .expect("a process with more VMAs than one maple leaf holds");
        victim = pid;
        let slot = if (root >> 3) & 0xf == 3 { k.offset("maple_arange_64", "slot") } else { k.offset("maple_range_64", "slot") }.unwrap();
        vec![((root & !0xff) + slot, root.to_le_bytes().to_vec())]
    }) else {
        return;
    };
    let m = maps::maps(&k, &Default::default()).unwrap();
    let p = m.processes.iter().find(|p| p.pid == victim).unwrap();
    assert!(p.error.as_deref().is_some_and(|e| e.contains("cycle")), "{:?}", p.error);
    assert!(m.warnings.iter().any(|w| w.contains(&format!("VMAs of pid {victim}")) && w.contains("cycle")), "{:?}", m.warnings);
    assert!(m.processes.iter().filter(|p| p.pid != victim).all(|p| p.error.is_none() && !p.vmas.is_empty()));
}

/// An mm claiming 10^9 VMAs and 10^9 pages of address space, whose VMAs all span the whole user half and whose user
/// page tables map themselves (so every page of it reads as present): ps shows the VSZ it claims, and the maps walk
/// stops counting RSS at its page-table budget for that process, with a warning, instead of once per VMA.
#[test]
fn an_mm_claiming_a_billion_vmas_over_self_mapping_tables_costs_one_budget_with_a_warning() {
    let mut vmas = 0;
    let Some(k) = damaged(|k| {
        let mm = k.field(pid1(k), "task_struct", "mm").unwrap();
        let billion = 1_000_000_000u64;
        let mut patches = vec![
            (mm + k.offset("mm_struct", "map_count").unwrap(), (billion as u32).to_le_bytes().to_vec()),
            (mm + k.offset("mm_struct", "total_vm").unwrap(), billion.to_le_bytes().to_vec()),
        ];
        let pgd = k.field(mm, "mm_struct", "pgd").unwrap();
        let pgd_phys = k.spaces.kernel_virt_to_phys(pgd).unwrap();
        patches.push((pgd, (0..256).flat_map(|_| (pgd_phys | 0x67).to_le_bytes()).collect())); // present, rw, user, A, D
        let tree = mm + k.offset("mm_struct", "mm_mt").unwrap();
        let (start, end) = (k.offset("vm_area_struct", "vm_start").unwrap(), k.offset("vm_area_struct", "vm_end").unwrap());
        for e in maple_entries(k, tree, 1 << 16, "VMAs").items {
            patches.push((e.entry + start, 0x1000u64.to_le_bytes().to_vec()));
            patches.push((e.entry + end, 0x7fff_ffff_f000u64.to_le_bytes().to_vec()));
            vmas += 1;
        }
        patches
    }) else {
        return;
    };
    let list = tasks::walk_tasks(&k, &Default::default()).unwrap();
    assert_eq!(list.tasks.iter().find(|t| t.pid == 1).unwrap().vsz_bytes, Some(1_000_000_000 * 4096));
    let m = maps::maps(&k, &Default::default()).unwrap();
    let p = m.processes.iter().find(|p| p.pid == 1).unwrap();
    assert!(vmas >= 5 && p.vmas.len() == vmas, "every VMA is listed: {} of {vmas}", p.vmas.len());
    assert!(p.vmas.iter().all(|v| v.rss_bytes.is_none()), "no VMA's RSS is believed");
    let budget = crate::mem::paging::MAX_RESIDENT_ENTRIES;
    let want = format!("pid 1: RSS of {vmas} VMAs left out: its page tables hold more than {budget} entries under its VMAs");
    assert!(m.warnings.contains(&want), "{want:?} in {:?}", m.warnings);
    // The other processes keep theirs.
    assert!(m.processes.iter().filter(|p| p.pid != 1).all(|p| p.vmas.iter().any(|v| v.rss_bytes.is_some_and(|r| r > 0))));
}

/// However many processes claim however many VMAs, one maps walk lists at most its budget of them in all: the
/// processes after that are named, without their maps, and one warning says how many.
#[test]
fn a_maps_walk_stops_at_its_vma_budget_and_says_how_many_processes_it_left_out() {
    let Some(k) = damaged(|_| Vec::new()) else { return };
    let whole = maps::maps(&k, &Default::default()).unwrap();
    // all of the first process's VMAs and one of the second's
    assert!(whole.processes.len() > 3 && whole.processes[1].vmas.len() > 1);
    let budget = whole.processes[0].vmas.len() + 1;
    let m = maps::maps_within(&k, &Default::default(), maps::Budget { vmas: budget, table_entries: u64::MAX }).unwrap();
    assert_eq!(m.processes.len(), whole.processes.len(), "every process is named");
    assert_eq!(m.processes.iter().map(|p| p.vmas.len()).sum::<usize>(), budget);
    let cut = 1;
    assert_eq!(m.processes[cut].vmas.len(), 1);
    assert!(m.processes[cut].error.as_deref().is_some_and(|e| e.contains("stopped after 1 entries")), "{:?}", m.processes[cut].error);
    let not_read = m.processes.iter().skip(cut + 1).filter(|p| p.error.as_deref().is_some_and(|e| e.starts_with("not read"))).count();
    assert_eq!(not_read, m.processes.len() - cut - 1);
    assert!(not_read > 0 && m.warnings.contains(&format!("the maps of {not_read} processes were not read: the walk listed {budget} VMAs already")), "{:?}", m.warnings);
}
