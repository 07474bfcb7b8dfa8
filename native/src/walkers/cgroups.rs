//! The cgroup v2 hierarchy as /sys/fs/cgroup shows it (kernel/cgroup/cgroup.c, rstat.c, mm/memcontrol.c,
//! kernel/cgroup/pids.c): each cgroup's path, processes and threads, controllers, memory.current/max/peak,
//! cpu.stat's usage (as a read of it would flush the per-CPU counters) and pids.current/max.

use std::collections::{HashMap, HashSet};

use schemars::JsonSchema;
use serde::Serialize;

use crate::kernel::{Kernel, Member};
use crate::objects::{list_entries, per_cpu_sum, possible_cpus, Object};
use crate::records::Hex;
use crate::walkers::tasks::{cputime_adjust, walk_tasks, CpuTime, TaskOptions};
use crate::walkers::{Context, NoOptions};
use crate::{Error, Result};

crate::walker! {
    /// The cgroup v2 tree (cgrp_dfl_root), root first: each cgroup's path, processes and threads, enabled
    /// and delegated controllers, memory.current, memory.max and memory.peak, cpu.stat's usage, pids.current
    /// and pids.max where the kernel keeps them.
    name: "cgroups",
    options: NoOptions,
    record: CgroupTree,
    run: walk,
}

/// Cgroups believed in one tree (the kernel's default cgroup.max.descendants is unlimited; systemd makes
/// hundreds), and its depth.
const MAX_CGROUPS: usize = 1 << 16;
const MAX_DEPTH: usize = 64;
const NSEC_PER_USEC: u64 = 1000;

/// cpu.stat's first lines.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CgroupCpu {
    pub usage_usec: u64,
    pub user_usec: u64,
    pub system_usec: u64,
}

/// One cgroup (a directory of /sys/fs/cgroup).
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Cgroup {
    /// "/" for the root, "/nf/web" below it (what /proc/PID/cgroup shows after "0::").
    pub path: String,
    pub level: u32,
    /// cgroup.procs and cgroup.threads: live processes (thread-group ids) and threads in it.
    pub procs: Vec<i32>,
    pub threads: Vec<i32>,
    /// cgroup.controllers and cgroup.subtree_control.
    pub controllers: Vec<String>,
    pub subtree_control: Vec<String>,
    /// memory.current, memory.max ("max" or bytes) and memory.peak; None where the file does not exist
    /// (the root, or the memory controller not enabled).
    pub memory_current_bytes: Option<u64>,
    pub memory_max: Option<String>,
    pub memory_peak_bytes: Option<u64>,
    /// cpu.stat's usage, user and system time.
    pub cpu: Option<CgroupCpu>,
    /// pids.current and pids.max ("max" or a number) when the pids controller is enabled.
    pub pids_current: Option<i64>,
    pub pids_max: Option<String>,
    pub cgroup: Hex,
}

#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct CgroupTree {
    /// Root first, then depth first in the kernel's child order.
    pub cgroups: Vec<Cgroup>,
    pub warnings: Vec<String>,
}

fn walk(cx: &Context, _: &NoOptions) -> Result<CgroupTree> {
    cgroup_tree(cx.kernel)
}

struct Layout {
    cgroup_size: u64,
    self_css: u64,
    kn: u64,
    level: Member,
    subtree_control: Member,
    subsys: Member,
    rstat_cpu: u64,
    bstat: u64,
    last_bstat: u64,
    prev_utime: u64,
    prev_stime: u64,
    /// task_cputime within cgroup_base_stat.
    stime: u64,
    utime: u64,
    runtime: u64,
    rstat_bstat: u64,
    rstat_last_bstat: u64,
    css_children: u64,
    css_sibling: u64,
    kn_parent: u64,
    kn_name: u64,
    subsys_names: Vec<String>,
    memory_id: Option<u64>,
    pids_id: Option<u64>,
    page_size: u64,
}

impl Layout {
    fn of(k: &Kernel) -> Result<Layout> {
        let c = k.struct_type("cgroup")?;
        let css = k.struct_type("cgroup_subsys_state")?;
        let kn = k.struct_type("kernfs_node")?;
        let subsys = c.field("subsys")?;
        let count = k.enumerator("CGROUP_SUBSYS_COUNT").ok().and_then(|n| u64::try_from(n).ok()).unwrap_or(subsys.array_len.unwrap_or(0)).min(64);
        // the controllers' names from the kernel's cgroup_subsys[] table, by subsystem id
        let table = k.symbol("cgroup_subsys")?;
        let name_off = k.offset("cgroup_subsys", "name")?;
        let subsys_names = (0..count)
            .map(|i| k.read_u64(table + 8 * i).and_then(|ss| k.read_u64(ss.wrapping_add(name_off))).and_then(|n| k.read_cstr(n, 32)).unwrap_or_else(|_| format!("subsys{i}")))
            .collect();
        let id = |e: &str| k.enumerator(e).ok().and_then(|v| u64::try_from(v).ok()).filter(|&v| v < count);
        let cputime = |p: &str| k.offset("task_cputime", p);
        Ok(Layout {
            cgroup_size: c.size,
            self_css: c.field("self")?.offset,
            kn: c.field("kn")?.offset,
            level: c.field("level")?,
            subtree_control: c.field("subtree_control")?,
            subsys,
            rstat_cpu: c.field("rstat_cpu")?.offset,
            bstat: c.field("bstat")?.offset + k.offset("cgroup_base_stat", "cputime")?,
            last_bstat: c.field("last_bstat")?.offset + k.offset("cgroup_base_stat", "cputime")?,
            prev_utime: c.field("prev_cputime.utime")?.offset,
            prev_stime: c.field("prev_cputime.stime")?.offset,
            stime: cputime("stime")?,
            utime: cputime("utime")?,
            runtime: cputime("sum_exec_runtime")?,
            rstat_bstat: k.offset("cgroup_rstat_cpu", "bstat")? + k.offset("cgroup_base_stat", "cputime")?,
            rstat_last_bstat: k.offset("cgroup_rstat_cpu", "last_bstat")? + k.offset("cgroup_base_stat", "cputime")?,
            css_children: css.field("children")?.offset,
            css_sibling: css.field("sibling")?.offset,
            // kernfs_node.parent (renamed __parent in 6.15)
            kn_parent: kn.field_any(&["__parent", "parent"])?.offset,
            kn_name: kn.field("name")?.offset,
            subsys_names,
            memory_id: id("memory_cgrp_id"),
            pids_id: id("pids_cgrp_id"),
            page_size: k.facts.page_size.max(4096),
        })
    }

    fn names(&self, mask: u64) -> Vec<String> {
        self.subsys_names.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, n)| n.clone()).collect()
    }
}

/// A cgroup's cputime triple (stime, utime, sum_exec_runtime) at `at`.
fn cputime(k: &Kernel, l: &Layout, at: u64) -> Result<[u64; 3]> {
    Ok([k.read_u64(at.wrapping_add(l.stime))?, k.read_u64(at.wrapping_add(l.utime))?, k.read_u64(at.wrapping_add(l.runtime))?])
}

fn add(a: [u64; 3], b: [u64; 3]) -> [u64; 3] {
    [a[0].wrapping_add(b[0]), a[1].wrapping_add(b[1]), a[2].wrapping_add(b[2])]
}

fn sub(a: [u64; 3], b: [u64; 3]) -> [u64; 3] {
    [a[0].wrapping_sub(b[0]), a[1].wrapping_sub(b[1]), a[2].wrapping_sub(b[2])]
}

/// One node of the tree while it is read.
struct Node {
    addr: u64,
    parent: Option<usize>,
    children: Vec<usize>,
    cg: Cgroup,
    /// bstat as a flush would leave it, and last_bstat (what was propagated to the parent already).
    bstat: [u64; 3],
    last_bstat: [u64; 3],
}

pub fn cgroup_tree(k: &Kernel) -> Result<CgroupTree> {
    let l = Layout::of(k)?;
    let root_struct = k.symbol("cgrp_dfl_root")?;
    let root = root_struct.wrapping_add(k.offset("cgroup_root", "cgrp")?);
    let mut out = CgroupTree::default();

    // The tree, depth first through self.children / self.sibling.
    let mut nodes: Vec<Node> = Vec::new();
    let mut seen = HashSet::new();
    let mut stack: Vec<(u64, Option<usize>, usize)> = vec![(root, None, 0)];
    while let Some((addr, parent, depth)) = stack.pop() {
        if nodes.len() >= MAX_CGROUPS || depth > MAX_DEPTH || !seen.insert(addr) {
            out.warnings.push(format!("cgroup tree: stopped at cgroup {addr:#x} (a loop, or more than {MAX_CGROUPS} cgroups or {MAX_DEPTH} levels)"));
            break;
        }
        let o = match Object::read(k, addr, l.cgroup_size) {
            Ok(o) => o,
            Err(e) => {
                out.warnings.push(format!("cgroup {addr:#x} skipped: {e}"));
                continue;
            }
        };
        let idx = nodes.len();
        let children = list_entries(k, addr.wrapping_add(l.self_css + l.css_children), l.css_sibling, MAX_CGROUPS, "cgroup children (css.children)")
            .into_items(&mut out.warnings)
            .into_iter()
            .map(|css| css.wrapping_sub(l.self_css)); // css_of(cgroup) is cgroup->self
        for c in children.collect::<Vec<_>>().into_iter().rev() {
            stack.push((c, Some(idx), depth + 1));
        }
        let path = match kn_path(k, &l, o.ptr_at(l.kn)?) {
            Ok(p) => p,
            Err(e) => {
                out.warnings.push(format!("cgroup {addr:#x}: name unreadable: {e}"));
                format!("?{addr:#x}")
            }
        };
        let bstat = cputime(k, &l, addr.wrapping_add(l.bstat)).unwrap_or_default();
        let last_bstat = cputime(k, &l, addr.wrapping_add(l.last_bstat)).unwrap_or_default();
        nodes.push(Node { addr, parent, children: Vec::new(), cg: Cgroup { path, level: o.int(l.level)? as u32, cgroup: Hex(addr), ..Default::default() }, bstat, last_bstat });
        if let Some(p) = parent {
            nodes[p].children.push(idx);
        }
    }

    controllers(k, &l, root_struct, &mut nodes)?;
    let cpus = possible_cpus(k)?;
    // cgroup_base_stat_flush(), bottom-up: each cgroup takes its per-CPU deltas, and passes what it gained
    // since it last did so to its parent (unless the parent is the root, which counts system-wide time).
    for i in (0..nodes.len()).rev() {
        if nodes[i].parent.is_none() {
            continue;
        }
        let mut pending = [0u64; 3];
        if let Ok(pcpu) = k.read_u64(nodes[i].addr.wrapping_add(l.rstat_cpu)) {
            for &cpu in &cpus {
                let Ok(at) = crate::objects::per_cpu_ptr(k, pcpu, cpu) else { continue };
                if let (Ok(b), Ok(lb)) = (cputime(k, &l, at.wrapping_add(l.rstat_bstat)), cputime(k, &l, at.wrapping_add(l.rstat_last_bstat))) {
                    pending = add(pending, sub(b, lb));
                }
            }
        }
        nodes[i].bstat = add(nodes[i].bstat, pending);
        let from_children = nodes[i].children.iter().fold([0u64; 3], |acc, &c| add(acc, sub(nodes[c].bstat, nodes[c].last_bstat)));
        nodes[i].bstat = add(nodes[i].bstat, from_children);
    }
    for n in nodes.iter_mut() {
        n.cg.cpu = match n.parent {
            Some(_) => {
                let prev = (k.read_u64(n.addr.wrapping_add(l.prev_utime)), k.read_u64(n.addr.wrapping_add(l.prev_stime)));
                let prev = match prev {
                    (Ok(u), Ok(s)) => Some((u, s)),
                    _ => None,
                };
                let (utime, stime) = cputime_adjust(CpuTime { stime: n.bstat[0], utime: n.bstat[1], runtime: n.bstat[2] }, prev);
                Some(CgroupCpu { usage_usec: n.bstat[2] / NSEC_PER_USEC, user_usec: utime / NSEC_PER_USEC, system_usec: stime / NSEC_PER_USEC })
            }
            None => root_cputime(k, &cpus).map_err(|e| out.warnings.push(format!("root cpu.stat: {e}"))).ok(),
        };
        if n.parent.is_some() {
            if let Err(e) = memory_and_pids(k, &l, n) {
                out.warnings.push(format!("cgroup {}: {e}", n.cg.path));
            }
        }
    }
    members(k, &nodes, &mut out.warnings).map(|m| {
        for n in nodes.iter_mut() {
            if let Some((procs, threads)) = m.get(&n.addr) {
                n.cg.procs = procs.clone();
                n.cg.threads = threads.clone();
            }
        }
    })?;
    out.cgroups = nodes.into_iter().map(|n| n.cg).collect();
    Ok(out)
}

/// The cgroup's path from its kernfs node names (the root's node has none).
fn kn_path(k: &Kernel, l: &Layout, kn: u64) -> Result<String> {
    let mut parts = Vec::new();
    let mut at = kn;
    for _ in 0..=MAX_DEPTH {
        let parent = k.read_u64(at.wrapping_add(l.kn_parent))?;
        if parent == 0 {
            parts.reverse();
            return Ok(format!("/{}", parts.join("/")));
        }
        parts.push(k.read_cstr(k.read_u64(at.wrapping_add(l.kn_name))?, 256)?);
        at = parent;
    }
    Err(Error::bad(format!("kernfs node {kn:#x}: more than {MAX_DEPTH} parents")))
}

/// cgroup_control(): the controllers a cgroup may use (its parent's subtree_control; for the root, the
/// hierarchy's controllers less the implicit and inhibited ones), and its own subtree_control.
fn controllers(k: &Kernel, l: &Layout, root_struct: u64, nodes: &mut [Node]) -> Result<()> {
    let root_mask = k.field(root_struct, "cgroup_root", "subsys_mask")?;
    let hidden = ["cgrp_dfl_inhibit_ss_mask", "cgrp_dfl_implicit_ss_mask"].iter().filter_map(|s| k.symbol(s).and_then(|a| k.read_u16(a)).ok()).fold(0u64, |m, v| m | v as u64);
    let masks: Vec<u64> = nodes.iter().map(|n| k.read_member(n.addr, l.subtree_control).unwrap_or(0)).collect();
    for (i, n) in nodes.iter_mut().enumerate() {
        let control = match n.parent {
            Some(p) => masks[p],
            None => root_mask & !hidden,
        };
        n.cg.controllers = l.names(control);
        n.cg.subtree_control = l.names(masks[i]);
    }
    Ok(())
}

/// mm/memcontrol.c memory_current_read/memory_max_show/memory_peak (page_counter usage, max, watermark)
/// and kernel/cgroup/pids.c pids_current_read/pids_max_show.
fn memory_and_pids(k: &Kernel, l: &Layout, n: &mut Node) -> Result<()> {
    let css = |id: Option<u64>| -> Result<u64> {
        match id {
            Some(i) => k.read_u64(n.addr.wrapping_add(l.subsys.offset + 8 * i)),
            None => Ok(0),
        }
    };
    let memcg = css(l.memory_id)?;
    if memcg != 0 {
        // css is mem_cgroup's first member
        let counter = memcg.wrapping_add(k.offset("mem_cgroup", "memory")?);
        let pc = |p: &str| k.field(counter, "page_counter", p);
        let page_counter_max = (i64::MAX as u64) / l.page_size;
        n.cg.memory_current_bytes = Some(pc("usage")?.saturating_mul(l.page_size));
        let max = pc("max")?;
        n.cg.memory_max = Some(if max >= page_counter_max { "max".into() } else { max.saturating_mul(l.page_size).to_string() });
        n.cg.memory_peak_bytes = Some(pc("watermark")?.saturating_mul(l.page_size));
    }
    let pids = css(l.pids_id)?;
    if pids != 0 {
        let counter = k.field(pids, "pids_cgroup", "counter")? as i64;
        let limit = k.field(pids, "pids_cgroup", "limit")? as i64;
        // PIDS_MAX = PID_MAX_LIMIT + 1: no limit
        let pids_max = (4 * 1024 * 1024 + 1) as i64;
        n.cg.pids_current = Some(counter);
        n.cg.pids_max = Some(if limit >= pids_max { "max".into() } else { limit.to_string() });
    }
    Ok(())
}

/// root_cgroup_cputime(): system-wide kernel_cpustat, summed over possible CPUs.
fn root_cputime(k: &Kernel, cpus: &[u32]) -> Result<CgroupCpu> {
    let kcpustat = k.symbol("kernel_cpustat")?;
    let arr = k.member("kernel_cpustat", "cpustat")?;
    let stat = |e: &str| -> Result<u64> {
        let i = u64::try_from(k.enumerator(e)?).map_err(|_| Error::bad(format!("{e} < 0")))?;
        if i >= arr.array_len.unwrap_or(0) {
            return Err(Error::bad(format!("{e} = {i} is past cpustat[]")));
        }
        Ok(per_cpu_sum(k, cpus, kcpustat, arr.offset + 8 * i, 8, false)? as u64)
    };
    let user = stat("CPUTIME_USER")?.wrapping_add(stat("CPUTIME_NICE")?);
    let sys = stat("CPUTIME_SYSTEM")?.wrapping_add(stat("CPUTIME_IRQ")?).wrapping_add(stat("CPUTIME_SOFTIRQ")?);
    Ok(CgroupCpu { usage_usec: user.wrapping_add(sys) / NSEC_PER_USEC, user_usec: user / NSEC_PER_USEC, system_usec: sys / NSEC_PER_USEC })
}

/// Each cgroup's (procs, threads), by its address.
type Members = HashMap<u64, (Vec<i32>, Vec<i32>)>;

/// cgroup.procs and cgroup.threads of every cgroup: each live task's css_set->dfl_cgrp.
fn members(k: &Kernel, nodes: &[Node], warnings: &mut Vec<String>) -> Result<Members> {
    let cgroups_off = k.offset("task_struct", "cgroups")?;
    let dfl = k.offset("css_set", "dfl_cgrp")?;
    let known: HashSet<u64> = nodes.iter().map(|n| n.addr).collect();
    let list = walk_tasks(k, &TaskOptions { threads: true, cmdline: false, ..Default::default() })?;
    warnings.extend(list.warnings);
    let mut m = Members::new();
    let cgroup_of = |task: u64| -> Result<u64> { k.read_u64(k.read_u64(task.wrapping_add(cgroups_off))?.wrapping_add(dfl)) };
    for p in &list.tasks {
        for t in p.threads.iter().filter(|t| t.exit_state == 0) {
            match cgroup_of(t.address.0) {
                Ok(c) if known.contains(&c) => {
                    let e = m.entry(c).or_default();
                    if t.pid == p.pid {
                        e.0.push(p.pid);
                    }
                    e.1.push(t.pid);
                }
                Ok(c) => warnings.push(format!("task {} is in cgroup {c:#x}, which is not in the tree", t.pid)),
                Err(e) => warnings.push(format!("task {}: css_set unreadable: {e}", t.pid)),
            }
        }
    }
    for v in m.values_mut() {
        v.0.sort_unstable();
        v.1.sort_unstable();
    }
    Ok(m)
}
