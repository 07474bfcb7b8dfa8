//! A process's memory map as /proc/PID/maps prints it (fs/proc/task_mmu.c show_map_vma, get_vma_name):
//! the VMAs of mm->mm_mt (the maple tree, 6.1+), their permissions, offset, device, inode and name.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::kernel::{Kernel, Member};
use crate::objects::file::{dev_text, init_root, path_name, FileLayout, Root};
use crate::objects::maple_entries;
use crate::objects::usermem::UserMemory;
use crate::records::Hex;
use crate::walkers::tasks::{walk_tasks, Task, TaskOptions};
use crate::walkers::Context;
use crate::{Error, Result};

crate::walker! {
    /// The VMAs of one process (`pid`) or of every process, as /proc/PID/maps prints them: range,
    /// permissions, offset, device, inode and path or [heap]/[stack]/[vdso]/[vvar]/[anon:name], with the
    /// totals ps shows (VSZ, RSS).
    name: "maps",
    options: MapsOptions,
    record: MapsList,
    run: walk,
}

/// include/linux/mm.h vm_flags bits /proc/PID/maps shows.
const VM_READ: u64 = 0x1;
const VM_WRITE: u64 = 0x2;
const VM_EXEC: u64 = 0x4;
const VM_MAYSHARE: u64 = 0x80;
/// A process may have at most sysctl vm.max_map_count VMAs (default 65530); a tree claiming far more is not
/// believed, nor a walk listing more than MAX_VMAS_IN_ALL for all processes together (a guest whose trees share
/// aliased nodes can claim any number).
const MAX_VMAS: usize = 1 << 20;
const MAX_VMAS_IN_ALL: usize = 1 << 22;
/// Page-table entries the RSS of one process's VMAs may read (a fully mapped 64 GiB), and of every process's
/// together: VMAs that all claim the whole address space over tables that map themselves would otherwise each
/// cost the per-range bound, millions of times over.
const MAX_TABLE_ENTRIES_PER_MM: u64 = crate::mem::paging::MAX_RESIDENT_ENTRIES;
const MAX_TABLE_ENTRIES: u64 = 4 * MAX_TABLE_ENTRIES_PER_MM;

/// What the rest of one maps walk may still read.
pub(crate) struct Budget {
    pub vmas: usize,
    pub table_entries: u64,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct MapsOptions {
    /// Only this process; every process when absent.
    pub pid: Option<i32>,
}

/// One VMA, one line of /proc/PID/maps.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Vma {
    pub start: Hex,
    pub end: Hex,
    /// r/w/x and s (shared) or p (private), e.g. "r-xp".
    pub perms: String,
    /// vm_pgoff << PAGE_SHIFT for file mappings, else 0.
    pub offset: Hex,
    /// The file's superblock device as major:minor (hex), "00:00" when anonymous.
    pub dev: String,
    pub inode: u64,
    /// The file's path (" (deleted)" when unlinked; newlines shown as \012), or [heap], [stack], [vdso],
    /// [vvar], [anon:name]; None for an unnamed anonymous mapping.
    pub path: Option<String>,
    /// The raw vm_flags.
    pub vm_flags: Hex,
    pub size_bytes: u64,
    /// Bytes resident in RAM (present pages, as smaps' Rss counts them); None when unreadable.
    pub rss_bytes: Option<u64>,
}

/// The map of one process.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProcessMaps {
    pub pid: i32,
    pub comm: String,
    pub vmas: Vec<Vma>,
    /// What ps prints: VSZ (total_vm) and RSS (the mm's counters), in bytes.
    pub vsz_bytes: Option<u64>,
    pub rss_bytes: Option<u64>,
    /// Why the map is missing or partial.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct MapsList {
    /// Processes with an address space (kernel threads and zombies have none).
    pub processes: Vec<ProcessMaps>,
    pub warnings: Vec<String>,
}

fn walk(cx: &Context, o: &MapsOptions) -> Result<MapsList> {
    maps(cx.kernel, o)
}

struct Layout {
    file: FileLayout,
    root: Root,
    mm: u64,
    mm_mt: u64,
    start_brk: Member,
    brk: Member,
    start_stack: Member,
    vm_start: Member,
    vm_end: Member,
    vm_flags: Member,
    vm_pgoff: Member,
    vm_file: u64,
    vm_ops: u64,
    vm_private_data: u64,
    vm_mm: u64,
    anon_name: Option<u64>,
    anon_name_name: u64,
    ops_name: u64,
    special_mapping_name: Option<u64>,
    sm_name: u64,
    f_path_mnt: u64,
    f_path_dentry: u64,
    f_inode: u64,
    i_ino: Member,
    i_sb: u64,
    s_dev: Member,
    /// vma_is_initial_heap() compares strictly since 6.5; 6.1 – 6.4 printed [heap] on touching ranges too.
    strict_heap: bool,
    /// Physical address of the shared zero page (empty_zero_page): mapped, but not resident memory of the process.
    zero_page: Option<u64>,
}

/// (major, minor) of a release string such as "6.12.117+deb12-amd64".
fn release_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

impl Layout {
    fn of(k: &Kernel) -> Result<Layout> {
        let mm = k.struct_type("mm_struct")?;
        let vma = k.struct_type("vm_area_struct")?;
        let f = k.struct_type("file")?;
        let f_path = f.field("f_path")?.offset;
        Ok(Layout {
            file: FileLayout::of(k)?,
            root: init_root(k)?,
            mm: k.offset("task_struct", "mm")?,
            mm_mt: mm.field("mm_mt")?.offset,
            start_brk: mm.field("start_brk")?,
            brk: mm.field("brk")?,
            start_stack: mm.field("start_stack")?,
            vm_start: vma.field("vm_start")?,
            vm_end: vma.field("vm_end")?,
            vm_flags: vma.field("vm_flags")?,
            vm_pgoff: vma.field("vm_pgoff")?,
            vm_file: vma.field("vm_file")?.offset,
            vm_ops: vma.field("vm_ops")?.offset,
            vm_private_data: vma.field("vm_private_data")?.offset,
            vm_mm: vma.field("vm_mm")?.offset,
            // anon_vma_name() returns a name only with CONFIG_ANON_VMA_NAME (not in Debian's 6.1 and 6.12
            // configs), whose mm/madvise.c then defines it; 6.1 has the member either way, in a union
            anon_name: vma.opt_field("anon_name").filter(|_| k.symbols.address_of("anon_vma_name").is_some()).map(|m| m.offset),
            anon_name_name: k.offset("anon_vma_name", "name").unwrap_or(4),
            ops_name: k.offset("vm_operations_struct", "name")?,
            special_mapping_name: k.symbols.address_of("special_mapping_name"),
            sm_name: k.offset("vm_special_mapping", "name").unwrap_or(0),
            f_path_mnt: f_path + k.offset("path", "mnt")?,
            f_path_dentry: f_path + k.offset("path", "dentry")?,
            f_inode: f.field("f_inode")?.offset,
            i_ino: k.member("inode", "i_ino")?,
            i_sb: k.offset("inode", "i_sb")?,
            s_dev: k.member("super_block", "s_dev")?,
            strict_heap: k.facts.release.as_deref().and_then(release_version).is_none_or(|v| v >= (6, 5)),
            zero_page: k.symbols.address_of("empty_zero_page").and_then(|a| k.spaces.kernel_virt_to_phys(a).ok()),
        })
    }
}

/// The maps of every process, or of `o.pid`.
pub fn maps(k: &Kernel, o: &MapsOptions) -> Result<MapsList> {
    maps_within(k, o, Budget { vmas: MAX_VMAS_IN_ALL, table_entries: MAX_TABLE_ENTRIES })
}

/// `maps`, reading at most what `budget` allows.
pub(crate) fn maps_within(k: &Kernel, o: &MapsOptions, mut budget: Budget) -> Result<MapsList> {
    let l = Layout::of(k)?;
    let vmas_in_all = budget.vmas;
    let list = walk_tasks(k, &TaskOptions { threads: false, cmdline: false, ..Default::default() })?;
    let mut out = MapsList { warnings: list.warnings, ..Default::default() };
    let mut found = false;
    let mut left_out = 0usize;
    for t in list.tasks.iter().filter(|t| o.pid.is_none_or(|p| p == t.pid)) {
        found = true;
        let mm = match k.read_u64(t.address.0.wrapping_add(l.mm)) {
            Ok(0) => continue,
            Ok(mm) => mm,
            Err(e) => {
                out.warnings.push(format!("pid {}: mm unreadable: {e}", t.pid));
                continue;
            }
        };
        left_out += (budget.vmas == 0) as usize;
        out.processes.push(process_maps(k, &l, t, mm, &mut budget, &mut out.warnings));
    }
    if left_out > 0 {
        out.warnings.push(format!("the maps of {left_out} processes were not read: the walk listed {vmas_in_all} VMAs already"));
    }
    if let (Some(p), false) = (o.pid, found) {
        return Err(Error::NotFound(format!("no process with pid {p}")));
    }
    Ok(out)
}

/// One process's map, within what is left of the walk's `budget` (what it read is taken off).
fn process_maps(k: &Kernel, l: &Layout, t: &Task, mm: u64, walk: &mut Budget, warnings: &mut Vec<String>) -> ProcessMaps {
    let mut p = ProcessMaps { pid: t.pid, comm: t.comm.clone(), vmas: Vec::new(), vsz_bytes: t.vsz_bytes, rss_bytes: t.rss.map(|r| r.bytes), error: None };
    if walk.vmas == 0 {
        p.error = Some("not read: the walk listed as many VMAs as it may already".into());
        return p;
    }
    let bounds = (|| -> Result<(u64, u64, u64)> { Ok((k.read_member(mm, l.start_brk)?, k.read_member(mm, l.brk)?, k.read_member(mm, l.start_stack)?)) })();
    let Ok((start_brk, brk, start_stack)) = bounds.map_err(|e| p.error = Some(format!("mm_struct {mm:#x}: {e}"))) else { return p };
    let w = maple_entries(k, mm.wrapping_add(l.mm_mt), walk.vmas.min(MAX_VMAS), &format!("VMAs of pid {} (mm_mt)", t.pid));
    walk.vmas -= w.items.len();
    if let Some(warning) = &w.warning {
        p.error = Some(warning.clone());
        warnings.push(warning.clone());
    }
    let mem = UserMemory::of(k, mm).map_err(|e| warnings.push(format!("pid {}: page tables: {e}", t.pid))).ok();
    let budget_at_start = walk.table_entries.min(MAX_TABLE_ENTRIES_PER_MM);
    let mut budget = budget_at_start;
    let mut rss_left_out = 0usize;
    for e in w.items {
        match vma(k, l, e.entry, (start_brk, brk, start_stack)) {
            Ok(mut v) => {
                v.rss_bytes = mem.as_ref().and_then(|m| m.resident_bytes(v.start.0, v.end.0, l.zero_page, &mut budget)).and_then(|r| r.ok());
                rss_left_out += (budget == 0) as usize;
                p.vmas.push(v)
            }
            Err(err) => {
                warnings.push(format!("pid {}: VMA {:#x} skipped: {err}", t.pid, e.entry));
            }
        }
    }
    walk.table_entries -= budget_at_start - budget;
    if rss_left_out > 0 {
        let why = if budget_at_start < MAX_TABLE_ENTRIES_PER_MM {
            format!("the walk has read {MAX_TABLE_ENTRIES} page-table entries already")
        } else {
            format!("its page tables hold more than {MAX_TABLE_ENTRIES_PER_MM} entries under its VMAs")
        };
        warnings.push(format!("pid {}: RSS of {rss_left_out} VMAs left out: {why}", t.pid));
    }
    p
}

fn vma(k: &Kernel, l: &Layout, v: u64, (start_brk, brk, start_stack): (u64, u64, u64)) -> Result<Vma> {
    let start = k.read_member(v, l.vm_start)?;
    let end = k.read_member(v, l.vm_end)?;
    if end <= start {
        return Err(Error::bad(format!("VMA {v:#x} ends at {end:#x}, before it starts at {start:#x}")));
    }
    let flags = k.read_member(v, l.vm_flags)?;
    let perms: String = [(VM_READ, 'r'), (VM_WRITE, 'w'), (VM_EXEC, 'x')].iter().map(|&(b, c)| if flags & b != 0 { c } else { '-' }).chain(std::iter::once(if flags & VM_MAYSHARE != 0 { 's' } else { 'p' })).collect();
    let file = k.read_u64(v.wrapping_add(l.vm_file))?;
    let mut out = Vma { start: Hex(start), end: Hex(end), perms, offset: Hex(0), dev: "00:00".into(), inode: 0, path: None, vm_flags: Hex(flags), size_bytes: end - start, rss_bytes: None };
    // 6.1 keeps anon_name in a union with the file-backed fields: only anonymous VMAs have one there
    let anon_name = |k: &Kernel| -> Result<Option<String>> {
        let Some(off) = l.anon_name else { return Ok(None) };
        let n = k.read_u64(v.wrapping_add(off))?;
        if n == 0 {
            return Ok(None);
        }
        Ok(Some(k.read_cstr(n.wrapping_add(l.anon_name_name), 256)?))
    };
    if file != 0 {
        let inode = k.read_u64(file.wrapping_add(l.f_inode))?;
        let sb = k.read_u64(inode.wrapping_add(l.i_sb))?;
        out.dev = dev_text(k.read_member(sb, l.s_dev)? as u32);
        out.inode = k.read_member(inode, l.i_ino)?;
        out.offset = Hex(k.read_member(v, l.vm_pgoff)?.wrapping_shl(12));
        let (path, _) = path_name(k, &l.file, k.read_u64(file.wrapping_add(l.f_path_mnt))?, k.read_u64(file.wrapping_add(l.f_path_dentry))?, l.root)?;
        out.path = Some(path.replace('\n', "\\012")); // seq_file_path(m, file, "\n")
        return Ok(out);
    }
    let ops = k.read_u64(v.wrapping_add(l.vm_ops))?;
    if ops != 0 {
        let name_fn = k.read_u64(ops.wrapping_add(l.ops_name))?;
        if name_fn != 0 {
            if Some(name_fn) != l.special_mapping_name {
                let f = crate::objects::symbolize(k, name_fn).map_or_else(|| format!("{name_fn:#x}"), |s| s.name);
                return Err(Error::Unsupported(format!("VMA named by {f}(), which nearfield does not know")));
            }
            // special_mapping_name(): the vm_special_mapping's own name ([vdso], [vvar] …)
            let sm = k.read_u64(v.wrapping_add(l.vm_private_data))?;
            let name = k.read_u64(sm.wrapping_add(l.sm_name))?;
            if name != 0 {
                out.path = Some(k.read_cstr(name, 64)?);
                return Ok(out);
            }
        }
    }
    if k.read_u64(v.wrapping_add(l.vm_mm))? == 0 {
        out.path = Some("[vdso]".into()); // get_vma_name(): a VMA without an mm (the gate area)
        return Ok(out);
    }
    let heap = if l.strict_heap { start < brk && end > start_brk } else { start <= brk && end >= start_brk };
    if heap {
        out.path = Some("[heap]".into());
    } else if start <= start_stack && end >= start_stack {
        out.path = Some("[stack]".into());
    } else if let Some(n) = anon_name(k)? {
        out.path = Some(format!("[anon:{n}]"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_versions() {
        assert_eq!(release_version("6.12.117+deb12-amd64"), Some((6, 12)));
        assert_eq!(release_version("6.1.0-57-amd64"), Some((6, 1)));
        assert_eq!(release_version("garbage"), None);
    }
}
