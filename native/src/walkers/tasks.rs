//! Processes and threads as fs/proc/array.c (do_task_stat, task_state) shows them, walked from
//! init_task.tasks and signal->thread_head (kernel/fork.c, include/linux/sched/signal.h, 6.1).

use std::collections::HashMap;

use crate::kernel::{Kernel, Member};
use crate::walkers::util::{latin1, walk_list, Snapshot};
use crate::{Error, Result};

/// Bounds on what a walk will believe.
pub const MAX_TASKS: usize = 1_000_000;
const MAX_THREADS_PER_GROUP: usize = 100_000;
/// PID_MAX_LIMIT on 64-bit (include/linux/threads.h): 4 Mi.
const PID_MAX_LIMIT: i64 = 4 * 1024 * 1024;
const TASK_COMM_LEN: u64 = 16;
/// Largest cmdline we read (the kernel itself has no limit; ps shows 128 KiB at most).
pub const MAX_CMDLINE: u64 = 128 * 1024;

/// include/linux/sched.h (6.1): the task state bits /proc reports.
mod state {
    pub const TASK_UNINTERRUPTIBLE: u32 = 0x0002;
    pub const TASK_REPORT: u32 = 0x007f;
    pub const TASK_NOLOAD: u32 = 0x0400;
    pub const TASK_RTLOCK_WAIT: u32 = 0x1000;
    pub const TASK_IDLE: u32 = TASK_UNINTERRUPTIBLE | TASK_NOLOAD;
    pub const TASK_REPORT_IDLE: u32 = TASK_REPORT + 1;
    /// fs/proc/array.c task_state_array, indexed by fls(state).
    pub const LETTERS: [char; 9] = ['R', 'S', 'D', 'T', 't', 'X', 'Z', 'P', 'I'];
}

/// include/linux/sched.h: PF_KTHREAD, PF_WQ_WORKER.
pub const PF_KTHREAD: u32 = 0x0020_0000;
pub const PF_WQ_WORKER: u32 = 0x0000_0020;
/// fs/proc/array.c proc_task_name(): the name buffer /proc fills (comm plus a workqueue suffix).
const PROC_NAME_LEN: usize = 64;

/// The /proc state letter for `__state` and `exit_state`, as __task_state_index() computes it.
pub fn state_letter(task_state: u32, exit_state: u32) -> char {
    let mut s = (task_state | exit_state) & state::TASK_REPORT;
    if task_state & state::TASK_IDLE == state::TASK_IDLE {
        s = state::TASK_REPORT_IDLE;
    }
    if task_state == state::TASK_RTLOCK_WAIT {
        s = state::TASK_UNINTERRUPTIBLE;
    }
    let fls = 32 - s.leading_zeros() as usize;
    state::LETTERS.get(fls).copied().unwrap_or('?')
}

/// RSS counters of an mm (pages), as get_mm_counter() reads them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rss {
    pub file: u64,
    pub anon: u64,
    pub shmem: u64,
}

impl Rss {
    /// get_mm_rss(): what /proc/PID/stat field 24 prints.
    pub fn total(&self) -> u64 {
        self.file.saturating_add(self.anon).saturating_add(self.shmem)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Task {
    /// Kernel address of the task_struct.
    pub address: u64,
    pub pid: i32,
    pub tgid: i32,
    pub ppid: i32,
    pub comm: String,
    pub state: char,
    /// Raw `__state` and `exit_state`.
    pub task_state: u32,
    pub exit_state: u32,
    pub flags: u32,
    pub uid: u32,
    pub euid: u32,
    pub suid: u32,
    pub fsuid: u32,
    pub gid: u32,
    pub egid: u32,
    pub sgid: u32,
    pub fsgid: u32,
    /// task_prio(): prio − MAX_RT_PRIO, as /proc field 18.
    pub priority: i32,
    /// task_nice(): static_prio − DEFAULT_PRIO, as /proc field 19.
    pub nice: i32,
    pub nr_threads: i32,
    /// start_boottime, ns since boot (/proc field 22 is this in USER_HZ ticks).
    pub start_boottime_ns: u64,
    /// utime/stime as /proc shows them (cputime_adjust'ed), ns; for a process, the whole group.
    pub utime_ns: u64,
    pub stime_ns: u64,
    /// Raw sum_exec_runtime (group total for a process), ns.
    pub runtime_ns: u64,
    pub processor: Option<u32>,
    /// None for tasks without an mm (kernel threads, zombies).
    pub rss: Option<Rss>,
    pub vsz_bytes: Option<u64>,
    /// argv as /proc/PID/cmdline gives it; Some(empty) when there is no mm; None when unreadable.
    pub cmdline: Option<Vec<String>>,
    pub cmdline_error: Option<String>,
    /// Threads of the group (with `threads: true`), the leader included, as /proc/PID/task lists them.
    pub threads: Vec<Task>,
}

impl Task {
    pub fn kernel_thread(&self) -> bool {
        self.flags & PF_KTHREAD != 0
    }
}

#[derive(Debug, Clone, Default)]
pub struct TaskList {
    pub tasks: Vec<Task>,
    /// Why the walk stopped early or what it skipped; the list holds what was read.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct TaskOptions {
    pub threads: bool,
    pub cmdline: bool,
    /// Bytes of cmdline to read at most.
    pub cmdline_max: u64,
}

impl Default for TaskOptions {
    fn default() -> Self {
        TaskOptions { threads: false, cmdline: true, cmdline_max: MAX_CMDLINE }
    }
}

/// Offsets of everything read, resolved once per walk from the kernel's types.
struct Layout {
    task_size: u64,
    tasks: u64,
    pid: Member,
    tgid: Member,
    real_parent: u64,
    comm: u64,
    state: Member,
    exit_state: Member,
    flags: Member,
    real_cred: u64,
    mm: u64,
    prio: Member,
    static_prio: Member,
    start_boottime: Member,
    utime: Member,
    stime: Member,
    sum_exec_runtime: Member,
    prev_utime: Option<Member>,
    prev_stime: Option<Member>,
    signal: u64,
    thread_node: u64,
    cpu: Option<Member>,
    wq: Option<WqLayout>,
    cred: [Member; 8],
    mm_pgd: u64,
    mm_total_vm: Member,
    mm_args: [Member; 4],
    rss: RssLayout,
    sig_nr_threads: Member,
    sig_thread_head: u64,
    sig_utime: Member,
    sig_stime: Member,
    sig_runtime: Member,
    sig_prev_utime: Option<Member>,
    sig_prev_stime: Option<Member>,
}

/// task->worker_private → struct kthread → data → struct worker (kernel/workqueue_internal.h).
struct WqLayout {
    worker_private: u64,
    kthread_data: u64,
    pool: u64,
    current_work: u64,
    desc: Member,
    /// kthread.full_name: the whole name of a kthread whose comm was truncated (5.17+).
    full_name: Option<u64>,
}

/// Where the mm's RSS counters live: 6.1 `rss_stat.count[]` (atomic_long_t), 6.2+ `rss_stat[]` (percpu_counter).
struct RssLayout {
    base: u64,
    stride: u64,
    /// Offset of the value within one element (0, or percpu_counter.count).
    value: u64,
    file: u64,
    anon: u64,
    shmem: u64,
}

impl Layout {
    fn resolve(k: &Kernel) -> Result<Self> {
        let t = |p: &str| k.member("task_struct", p);
        let cred = |p: &str| k.member("cred", p);
        let mm = |p: &str| k.member("mm_struct", p);
        let sig = |p: &str| k.member("signal_struct", p);
        let rss = {
            let idx = |e: &str| -> Result<u64> {
                let v = k.enumerator(e)?;
                u64::try_from(v).map_err(|_| Error::bad(format!("{e} = {v}")))
            };
            let (file, anon, shmem) = (idx("MM_FILEPAGES")?, idx("MM_ANONPAGES")?, idx("MM_SHMEMPAGES")?);
            if let Some(m) = k.types.member("mm_struct", "rss_stat.count") {
                RssLayout { base: m.offset, stride: 8, value: 0, file, anon, shmem }
            } else {
                let m = mm("rss_stat")?;
                let n = m.array_len.unwrap_or(0).max(1);
                RssLayout { base: m.offset, stride: m.size / n, value: k.offset("percpu_counter", "count")?, file, anon, shmem }
            }
        };
        Ok(Layout {
            task_size: k.size_of("task_struct")?,
            tasks: t("tasks")?.offset,
            pid: t("pid")?,
            tgid: t("tgid")?,
            real_parent: t("real_parent")?.offset,
            comm: t("comm")?.offset,
            state: t("__state").or_else(|_| t("state"))?,
            exit_state: t("exit_state")?,
            flags: t("flags")?,
            real_cred: t("real_cred")?.offset,
            mm: t("mm")?.offset,
            prio: t("prio")?,
            static_prio: t("static_prio")?,
            start_boottime: t("start_boottime").or_else(|_| t("real_start_time"))?,
            utime: t("utime")?,
            stime: t("stime")?,
            sum_exec_runtime: t("se.sum_exec_runtime")?,
            prev_utime: t("prev_cputime.utime").ok(),
            prev_stime: t("prev_cputime.stime").ok(),
            signal: t("signal")?.offset,
            thread_node: t("thread_node")?.offset,
            cpu: t("cpu").or_else(|_| t("thread_info.cpu")).ok(),
            wq: (|| -> Result<WqLayout> {
                Ok(WqLayout {
                    worker_private: t("worker_private")?.offset,
                    kthread_data: k.offset("kthread", "data")?,
                    pool: k.offset("worker", "pool")?,
                    current_work: k.offset("worker", "current_work")?,
                    desc: k.member("worker", "desc")?,
                    full_name: k.types.member("kthread", "full_name").map(|m| m.offset),
                })
            })()
            .ok(),
            cred: [cred("uid")?, cred("euid")?, cred("suid")?, cred("fsuid")?, cred("gid")?, cred("egid")?, cred("sgid")?, cred("fsgid")?],
            mm_pgd: mm("pgd")?.offset,
            mm_total_vm: mm("total_vm")?,
            mm_args: [mm("arg_start")?, mm("arg_end")?, mm("env_start")?, mm("env_end")?],
            rss,
            sig_nr_threads: sig("nr_threads")?,
            sig_thread_head: sig("thread_head")?.offset,
            sig_utime: sig("utime")?,
            sig_stime: sig("stime")?,
            sig_runtime: sig("sum_sched_runtime")?,
            sig_prev_utime: sig("prev_cputime.utime").ok(),
            sig_prev_stime: sig("prev_cputime.stime").ok(),
        })
    }
}

/// Walk every process (and with `threads`, every thread) of the guest.
/// Errors only when the walk cannot start (no init_task, missing types); damage found on the way
/// ends the walk with a warning and the tasks read so far.
pub fn walk_tasks(k: &Kernel, opts: &TaskOptions) -> Result<TaskList> {
    let layout = Layout::resolve(k)?;
    let init_task = k.symbol("init_task")?;
    let head = init_task + layout.tasks;
    let walk = walk_list(k, head, MAX_TASKS, "task list (init_task.tasks)");
    let mut out = TaskList::default();
    // init_task.tasks holds thread-group leaders only, one per signal_struct: a list that comes back to a
    // group already listed would have every visit walk that group's threads again.
    let mut groups: HashMap<u64, u64> = HashMap::new();
    for node in walk.nodes {
        let addr = node.wrapping_sub(layout.tasks); // container_of
        let signal = k.read_u64(addr.wrapping_add(layout.signal)).unwrap_or(0); // unreadable: read_task says why
        if signal != 0 {
            if let Some(first) = groups.get(&signal) {
                out.warnings.push(format!(
                    "task list: task_struct {addr:#x} skipped: its thread group (signal_struct {signal:#x}) was listed already with task_struct {first:#x}"
                ));
                continue;
            }
            groups.insert(signal, addr);
        }
        // The list itself was walked and checked already: one unreadable task is skipped, the listing goes on.
        let mut task = match read_task(k, &layout, addr, true) {
            Ok(t) => t,
            Err(e) => {
                out.warnings.push(format!("task list: task_struct {addr:#x} skipped: {e}"));
                continue;
            }
        };
        if opts.cmdline {
            out.warnings.extend(read_cmdline_into(k, &layout, &mut task, opts.cmdline_max));
        }
        if opts.threads {
            match read_threads(k, &layout, addr) {
                Ok((threads, warn)) => {
                    task.threads = threads;
                    out.warnings.extend(warn);
                }
                Err(e) => out.warnings.push(format!("threads of pid {}: {e}", task.pid)),
            }
        }
        out.tasks.push(task);
    }
    out.warnings.extend(walk.warning);
    Ok(out)
}

fn read_threads(k: &Kernel, l: &Layout, leader: u64) -> Result<(Vec<Task>, Option<String>)> {
    let signal = k.read_u64(leader.wrapping_add(l.signal))?;
    let walk = walk_list(k, signal.wrapping_add(l.sig_thread_head), MAX_THREADS_PER_GROUP, "thread list (signal->thread_head)");
    let mut threads = Vec::with_capacity(walk.nodes.len());
    for node in walk.nodes {
        let addr = node.wrapping_sub(l.thread_node);
        match read_task(k, l, addr, false) {
            Ok(t) => threads.push(t),
            Err(e) => return Ok((threads, Some(format!("thread list of {leader:#x}: stopped at {addr:#x}: {e}")))),
        }
    }
    Ok((threads, walk.warning))
}

/// One task_struct. `whole` = the process view of /proc/PID/stat (group times and counts).
fn read_task(k: &Kernel, l: &Layout, addr: u64, whole: bool) -> Result<Task> {
    let s = Snapshot::read(k, addr, l.task_size).map_err(|e| e.context(format!("reading task_struct at {addr:#x}")))?;
    let pid = s.int(l.pid)?;
    let tgid = s.int(l.tgid)?;
    if !(0..=PID_MAX_LIMIT).contains(&pid) || !(0..=PID_MAX_LIMIT).contains(&tgid) {
        return Err(Error::bad(format!("task_struct at {addr:#x} has implausible pid {pid} / tgid {tgid}")));
    }
    let mut comm = s.cstr(l.comm, TASK_COMM_LEN)?;
    let task_state = s.uint(l.state)? as u32;
    let exit_state = s.uint(l.exit_state)? as u32;
    let flags = s.uint(l.flags)? as u32;
    // fs/proc/array.c proc_task_name(): workqueue workers get their work's name, other kthreads their full name
    if flags & PF_WQ_WORKER != 0 {
        if let Some(suffix) = l.wq.as_ref().and_then(|wq| worker_desc(k, wq, &s).ok().flatten()) {
            comm.push_str(&suffix);
            comm = comm.chars().take(PROC_NAME_LEN - 1).collect();
        }
    } else if flags & PF_KTHREAD != 0 {
        if let Some(name) = l.wq.as_ref().and_then(|wq| kthread_full_name(k, wq, &s).ok().flatten()) {
            comm = name;
        }
    }

    let parent = s.u64_at(l.real_parent)?;
    let ppid = if parent == 0 || parent == addr && pid == 0 {
        0
    } else {
        k.read_uint(parent.wrapping_add(l.tgid.offset), l.tgid.size)
            .map(|v| v as u32 as i32)
            .map_err(|e| e.context(format!("reading real_parent of pid {pid}")))?
    };

    let cred_addr = s.u64_at(l.real_cred)?;
    let cred = Snapshot::read(k, cred_addr, l.cred.iter().map(|m| m.offset + m.size).max().unwrap_or(8))
        .map_err(|e| e.context(format!("reading real_cred of pid {pid}")))?;
    let c = |i: usize| -> Result<u32> { Ok(cred.uint(l.cred[i])? as u32) };

    let signal = s.u64_at(l.signal)?;
    let sig_len = [l.sig_nr_threads, l.sig_utime, l.sig_stime, l.sig_runtime]
        .iter()
        .chain(l.sig_prev_utime.iter())
        .chain(l.sig_prev_stime.iter())
        .map(|m| m.offset + m.size)
        .max()
        .unwrap_or(8);
    let sig = Snapshot::read(k, signal, sig_len).map_err(|e| e.context(format!("reading signal_struct of pid {pid}")))?;
    let nr_threads = sig.int(l.sig_nr_threads)? as i32;

    // cputime: the task's own, or the group's (exited threads' totals kept in signal_struct plus every live thread).
    let own = CpuTime { utime: s.uint(l.utime)?, stime: s.uint(l.stime)?, runtime: s.uint(l.sum_exec_runtime)? };
    let (cpu, prev) = if whole {
        let mut sum = CpuTime { utime: sig.uint(l.sig_utime)?, stime: sig.uint(l.sig_stime)?, runtime: sig.uint(l.sig_runtime)? };
        let walk = walk_list(k, signal.wrapping_add(l.sig_thread_head), MAX_THREADS_PER_GROUP, "thread list");
        for node in &walk.nodes {
            let t = node.wrapping_sub(l.thread_node);
            let rd = |m: Member| k.read_uint(t.wrapping_add(m.offset), m.size);
            sum.utime = sum.utime.wrapping_add(rd(l.utime)?);
            sum.stime = sum.stime.wrapping_add(rd(l.stime)?);
            sum.runtime = sum.runtime.wrapping_add(rd(l.sum_exec_runtime)?);
        }
        let prev = match (l.sig_prev_utime, l.sig_prev_stime) {
            (Some(u), Some(st)) => Some((sig.uint(u)?, sig.uint(st)?)),
            _ => None,
        };
        (sum, prev)
    } else {
        let prev = match (l.prev_utime, l.prev_stime) {
            (Some(u), Some(st)) => Some((s.uint(u)?, s.uint(st)?)),
            _ => None,
        };
        (own, prev)
    };
    let (utime_ns, stime_ns) = cputime_adjust(cpu, prev);

    let mm = s.u64_at(l.mm)?;
    let (rss, vsz_bytes) = if mm == 0 {
        (None, None)
    } else {
        let r = &l.rss;
        let counter = |i: u64| -> Result<u64> {
            let v = k.read_i64(mm.wrapping_add(r.base + i * r.stride + r.value))?;
            Ok(if v < 0 { 0 } else { v as u64 })
        };
        let rss = Rss { file: counter(r.file)?, anon: counter(r.anon)?, shmem: counter(r.shmem)? };
        let total_vm = k.read_uint(mm.wrapping_add(l.mm_total_vm.offset), l.mm_total_vm.size)?;
        (Some(rss), Some(total_vm.saturating_mul(k.facts.page_size.max(4096))))
    };

    Ok(Task {
        address: addr,
        pid: pid as i32,
        tgid: tgid as i32,
        ppid,
        comm,
        state: state_letter(task_state, exit_state),
        task_state,
        exit_state,
        flags,
        uid: c(0)?,
        euid: c(1)?,
        suid: c(2)?,
        fsuid: c(3)?,
        gid: c(4)?,
        egid: c(5)?,
        sgid: c(6)?,
        fsgid: c(7)?,
        // MAX_RT_PRIO and DEFAULT_PRIO off the guest's ints, which a damaged task may hold at their extremes
        priority: (s.int(l.prio)? as i32).wrapping_sub(100),
        nice: (s.int(l.static_prio)? as i32).wrapping_sub(120),
        nr_threads,
        start_boottime_ns: s.uint(l.start_boottime)?,
        utime_ns,
        stime_ns,
        runtime_ns: cpu.runtime,
        processor: l.cpu.and_then(|m| s.uint(m).ok()).map(|v| v as u32),
        rss,
        vsz_bytes,
        cmdline: if mm == 0 { Some(Vec::new()) } else { None },
        cmdline_error: None,
        threads: Vec::new(),
    })
}

/// kernel/workqueue.c wq_worker_comm(): "+desc" while a work item runs, "-desc" after, nothing before any.
fn worker_desc(k: &Kernel, wq: &WqLayout, task: &Snapshot) -> Result<Option<String>> {
    let kthread = task.u64_at(wq.worker_private)?;
    if kthread == 0 {
        return Ok(None);
    }
    let worker = k.read_u64(kthread.wrapping_add(wq.kthread_data))?;
    if worker == 0 || k.read_u64(worker.wrapping_add(wq.pool))? == 0 {
        return Ok(None);
    }
    let desc = k.read_cstr(worker.wrapping_add(wq.desc.offset), wq.desc.size.min(64) as usize)?;
    if desc.is_empty() {
        return Ok(None);
    }
    let busy = k.read_u64(worker.wrapping_add(wq.current_work))? != 0;
    Ok(Some(format!("{}{desc}", if busy { '+' } else { '-' })))
}

/// kernel/kthread.c get_kthread_comm(): kthread->full_name when the name did not fit in comm.
fn kthread_full_name(k: &Kernel, wq: &WqLayout, task: &Snapshot) -> Result<Option<String>> {
    let Some(off) = wq.full_name else { return Ok(None) };
    let kthread = task.u64_at(wq.worker_private)?;
    if kthread == 0 {
        return Ok(None);
    }
    let name = k.read_u64(kthread.wrapping_add(off))?;
    if name == 0 {
        return Ok(None);
    }
    let mut buf = [0u8; PROC_NAME_LEN - 1];
    k.read(name, &mut buf)?;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Ok(Some(latin1(&buf[..end])))
}

#[derive(Debug, Clone, Copy)]
struct CpuTime {
    utime: u64,
    stime: u64,
    runtime: u64,
}

/// kernel/sched/cputime.c cputime_adjust(): split the precise runtime in the tick-sampled utime:stime
/// ratio, never going below what was shown before (prev_cputime). We do not write prev back.
fn cputime_adjust(c: CpuTime, prev: Option<(u64, u64)>) -> (u64, u64) {
    let (pu, ps) = prev.unwrap_or((0, 0));
    let rtime = c.runtime;
    if pu.saturating_add(ps) >= rtime {
        return (pu, ps);
    }
    let mut stime = if c.stime == 0 {
        0
    } else if c.utime == 0 {
        rtime
    } else {
        ((c.stime as u128 * rtime as u128) / (c.stime as u128 + c.utime as u128)) as u64
    };
    stime = stime.max(ps).min(rtime);
    let mut utime = rtime - stime;
    if utime < pu {
        utime = pu;
        stime = rtime.saturating_sub(utime);
    }
    (utime, stime)
}

/// /proc/PID/cmdline (fs/proc/base.c get_mm_cmdline): the argument area read through the process's own
/// page tables. A non-resident page leaves cmdline None with the reason; an area longer than `max` is cut
/// there, and the warning returned says so.
fn read_cmdline_into(k: &Kernel, l: &Layout, task: &mut Task, max: u64) -> Option<String> {
    task.rss?; // no mm: Some(empty), like /proc
    match read_cmdline(k, l, task.address, max) {
        Ok((args, len)) => {
            task.cmdline = Some(args);
            return (len > max).then(|| format!("pid {}: cmdline of {len} bytes cut to the first {max}", task.pid));
        }
        Err(e) => {
            task.cmdline = None;
            task.cmdline_error = Some(match e {
                Error::Fault { addr, .. } => format!("not resident (user page at {addr:#x})"),
                other => other.to_string(),
            });
        }
    }
    None
}

/// The arguments, and the length of the area they were read from (before the cut at `max`).
fn read_cmdline(k: &Kernel, l: &Layout, task: u64, max: u64) -> Result<(Vec<String>, u64)> {
    let mm = k.read_u64(task.wrapping_add(l.mm))?;
    let field = |m: Member| k.read_uint(mm.wrapping_add(m.offset), m.size);
    let (arg_start, arg_end) = (field(l.mm_args[0])?, field(l.mm_args[1])?);
    let (mut env_start, mut env_end) = (field(l.mm_args[2])?, field(l.mm_args[3])?);
    if arg_start >= arg_end {
        return Ok((Vec::new(), 0));
    }
    if env_start != arg_end || env_end < env_start {
        env_start = arg_end;
        env_end = arg_end;
    }
    let _ = env_start;
    let pgd = k.read_u64(mm.wrapping_add(l.mm_pgd))?;
    let pgd_phys = k.spaces.kernel_virt_to_phys(pgd).map_err(|e| e.context("mm->pgd"))?;
    let vm = k.spaces.user(pgd_phys);
    let mut last = [0u8; 1];
    vm.read_virt(arg_end - 1, &mut last)?; // arg_end > arg_start ≥ 0
    // setproctitle(3) overwrote the final NUL: the kernel then shows one string running into the environment.
    let (area, proctitle) = if last[0] != 0 { (env_end - arg_start, true) } else { (arg_end - arg_start, false) };
    let mut buf = vec![0u8; area.min(max) as usize];
    read_user(&*vm, arg_start, &mut buf)?;
    if proctitle {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        return Ok((vec![latin1(&buf[..end])], area));
    }
    let body = buf.strip_suffix(&[0]).unwrap_or(&buf);
    Ok((body.split(|&b| b == 0).map(latin1).collect(), area))
}

/// Read user memory page by page, so a fault names the first missing page.
fn read_user(vm: &dyn crate::mem::VirtualMemory, addr: u64, buf: &mut [u8]) -> Result<()> {
    let mut done = 0usize;
    while done < buf.len() {
        let at = addr.wrapping_add(done as u64);
        let in_page = (4096 - (at & 4095)) as usize;
        let n = in_page.min(buf.len() - done);
        vm.read_virt(at, &mut buf[done..done + n]).map_err(|_| Error::fault(at & !4095, "user page"))?;
        done += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::walkers::testkit::{Fake, UBASE};

    // A compact synthetic layout; offsets are arbitrary but consistent.
    const TS: u64 = 0x200;
    const MM: u64 = 0x100;
    const SIG: u64 = 0x80;
    const CRED: u64 = 0x40;

    struct G {
        f: Fake,
        init: u64,
    }

    fn layout(f: &mut Fake) {
        f.size("task_struct", TS);
        for (p, o, s) in [
            ("tasks", 0x00, 16), ("pid", 0x10, 4), ("tgid", 0x14, 4), ("real_parent", 0x18, 8), ("comm", 0x20, 16),
            ("__state", 0x30, 4), ("exit_state", 0x34, 4), ("flags", 0x38, 4), ("real_cred", 0x40, 8), ("mm", 0x48, 8),
            ("prio", 0x50, 4), ("static_prio", 0x54, 4), ("start_boottime", 0x58, 8), ("utime", 0x60, 8), ("stime", 0x68, 8),
            ("se.sum_exec_runtime", 0x70, 8), ("signal", 0x78, 8), ("thread_node", 0x80, 16),
        ] {
            f.member("task_struct", p, o, s, None);
        }
        for (i, p) in ["uid", "euid", "suid", "fsuid", "gid", "egid", "sgid", "fsgid"].iter().enumerate() {
            f.member("cred", p, 4 + i as u64 * 4, 4, None);
        }
        for (p, o) in [("pgd", 0x00), ("total_vm", 0x08), ("arg_start", 0x10), ("arg_end", 0x18), ("env_start", 0x20), ("env_end", 0x28)] {
            f.member("mm_struct", p, o, 8, None);
        }
        f.member("mm_struct", "rss_stat.count", 0x40, 32, Some(4));
        f.enumerator("MM_FILEPAGES", 0);
        f.enumerator("MM_ANONPAGES", 1);
        f.enumerator("MM_SWAPENTS", 2);
        f.enumerator("MM_SHMEMPAGES", 3);
        for (p, o, s) in [("nr_threads", 0x00, 4), ("thread_head", 0x08, 16), ("utime", 0x18, 8), ("stime", 0x20, 8), ("sum_sched_runtime", 0x28, 8)] {
            f.member("signal_struct", p, o, s, None);
        }
    }

    impl G {
        fn new() -> G {
            G::with_ram(1 << 20)
        }

        fn with_ram(bytes: usize) -> G {
            let mut f = Fake::new(bytes);
            layout(&mut f);
            let init = f.alloc(TS);
            f.sym("init_task", init);
            let mut g = G { f, init };
            g.f.put_u64(init, init);
            g.f.put_u64(init + 8, init);
            let (sig, cred) = (g.f.alloc(SIG), g.f.alloc(CRED));
            g.f.put_u64(init + 0x78, sig);
            g.f.put_u64(sig + 8, sig + 8);
            g.f.put_u64(sig + 16, sig + 8);
            g.f.put_u64(init + 0x40, cred);
            g.f.put(init + 0x20, b"swapper/0");
            g
        }

        /// A new task appended to init_task.tasks, as the leader of its own thread group.
        fn task(&mut self, pid: u32, comm: &[u8], parent: u64, state: u32, uid: u32) -> u64 {
            let f = &mut self.f;
            let t = f.alloc(TS);
            let last = u64::from_le_bytes(f.mem[(self.init + 8 - crate::walkers::testkit::KBASE) as usize..][..8].try_into().unwrap());
            f.put_u64(last, t); // last.next = t
            f.put_u64(t, self.init);
            f.put_u64(t + 8, last);
            f.put_u64(self.init + 8, t);
            f.put_u32(t + 0x10, pid);
            f.put_u32(t + 0x14, pid);
            f.put_u64(t + 0x18, parent);
            f.put(t + 0x20, comm);
            f.put_u32(t + 0x30, state);
            f.put_u32(t + 0x50, 120);
            f.put_u32(t + 0x54, 120);
            let cred = f.alloc(CRED);
            f.put_u32(cred + 4, uid);
            f.put_u64(t + 0x40, cred);
            let sig = f.alloc(SIG);
            f.put_u64(t + 0x78, sig);
            f.put_u32(sig, 1);
            f.put_u64(sig + 8, t + 0x80);
            f.put_u64(sig + 16, t + 0x80);
            f.put_u64(t + 0x80, sig + 8);
            f.put_u64(t + 0x88, sig + 8);
            t
        }

        fn give_mm(&mut self, t: u64, args: &[u8], anon: u64, file: u64) {
            let f = &mut self.f;
            let mm = f.alloc(MM);
            f.put_u64(t + 0x48, mm);
            f.put_u64(mm, crate::walkers::testkit::KBASE + 0x1000);
            f.put_u64(mm + 0x08, 1000);
            f.put_u64(mm + 0x40, file);
            f.put_u64(mm + 0x48, anon);
            f.put_u64(mm + 0x58, u64::MAX); // a negative shmem counter reads as 0
            let user = UBASE + 0x8_0000 + (t & 0xfff0) * 4;
            f.put(user, args);
            f.put_u64(mm + 0x10, user);
            f.put_u64(mm + 0x18, user + args.len() as u64);
            f.put_u64(mm + 0x20, user + args.len() as u64);
            f.put_u64(mm + 0x28, user + args.len() as u64);
        }
    }

    #[test]
    fn state_letters_match_proc() {
        assert_eq!(state_letter(0, 0), 'R');
        assert_eq!(state_letter(1, 0), 'S');
        assert_eq!(state_letter(2, 0), 'D');
        assert_eq!(state_letter(0x402, 0), 'I');
        assert_eq!(state_letter(4, 0), 'T');
        assert_eq!(state_letter(8, 0), 't');
        assert_eq!(state_letter(0x80, 0x20), 'Z');
        assert_eq!(state_letter(0x80, 0x10), 'X');
        assert_eq!(state_letter(0x40, 0), 'P');
        assert_eq!(state_letter(0x1000, 0), 'D');
        assert_eq!(state_letter(0x8000, 0), 'R');
    }

    #[test]
    fn walks_processes_with_cmdline_and_rss() {
        let mut g = G::new();
        let init = g.init;
        let a = g.task(1, b"init", init, 1, 0);
        let b = g.task(2, b"kthreadd", init, 0x402, 0);
        let c = g.task(77, b"nf-user", a, 0, 1000);
        g.f.put_u32(b + 0x38, PF_KTHREAD);
        g.give_mm(a, b"/sbin/init\0", 10, 5);
        g.give_mm(c, b"worker\0--beta\0two words\0\0", 300, 20);
        let k = g.f.kernel();
        let list = walk_tasks(&k, &TaskOptions { threads: true, ..Default::default() }).unwrap();
        assert!(list.warnings.is_empty(), "{:?}", list.warnings);
        let pids: Vec<i32> = list.tasks.iter().map(|t| t.pid).collect();
        assert_eq!(pids, vec![1, 2, 77]);
        let t = &list.tasks[2];
        assert_eq!((t.ppid, t.uid, t.state, t.comm.as_str()), (1, 1000, 'R', "nf-user"));
        assert_eq!(t.rss.unwrap().total(), 320);
        assert_eq!(t.cmdline.as_deref().unwrap(), ["worker", "--beta", "two words", ""]);
        assert_eq!(t.vsz_bytes, Some(1000 * 4096));
        assert_eq!(t.threads.len(), 1);
        assert_eq!(list.tasks[1].state, 'I');
        assert!(list.tasks[1].kernel_thread());
        assert_eq!(list.tasks[1].cmdline.as_deref(), Some(&[][..]));
        assert_eq!(list.tasks[0].ppid, 0);
    }

    #[test]
    fn cycle_ends_with_a_warning_and_partial_list() {
        let mut g = G::new();
        let init = g.init;
        let a = g.task(1, b"init", init, 1, 0);
        let b = g.task(2, b"kthreadd", init, 1, 0);
        let _c = g.task(3, b"x", init, 1, 0);
        g.f.put_u64(b, a); // b.next → a: a loop that never returns to the head
        let k = g.f.kernel();
        let list = walk_tasks(&k, &TaskOptions::default()).unwrap();
        assert_eq!(list.tasks.len(), 2);
        assert!(list.warnings[0].contains("torn list") || list.warnings[0].contains("cycle"), "{:?}", list.warnings);
    }

    #[test]
    fn pure_cycle_without_prev_check_is_caught() {
        let mut g = G::new();
        let init = g.init;
        let a = g.task(1, b"init", init, 1, 0);
        let b = g.task(2, b"kthreadd", init, 1, 0);
        g.f.put_u64(b, a);
        g.f.put_u64(a + 8, b); // a's back pointer now disagrees with the head's next
        let k = g.f.kernel();
        let list = walk_tasks(&k, &TaskOptions::default()).unwrap();
        assert!(list.tasks.len() <= 2, "{:?}", list.warnings);
        assert_eq!(list.warnings.len(), 1);
    }

    #[test]
    fn pointer_out_of_ram_stops_the_walk() {
        let mut g = G::new();
        let init = g.init;
        let a = g.task(1, b"init", init, 1, 0);
        g.f.put_u64(a, 0xffff_8880_7fff_0000);
        let k = g.f.kernel();
        let list = walk_tasks(&k, &TaskOptions::default()).unwrap();
        assert_eq!(list.tasks.len(), 1);
        assert!(list.warnings[0].contains("unreadable"), "{:?}", list.warnings);
    }

    #[test]
    fn tiny_and_huge_pointers_do_not_overflow() {
        for bad in [0x10u64, u64::MAX - 8] {
            let mut g = G::new();
            let init = g.init;
            let a = g.task(1, b"init", init, 1, 0);
            g.f.put_u64(a, bad);
            g.f.put_u64(a + 0x78, bad); // signal
            g.f.put_u64(a + 0x48, bad); // mm
            let k = g.f.kernel();
            let list = walk_tasks(&k, &TaskOptions { threads: true, ..Default::default() }).unwrap();
            assert!(!list.warnings.is_empty());
        }
    }

    #[test]
    fn absurd_task_is_skipped_with_a_warning() {
        let mut g = G::new();
        let init = g.init;
        let _a = g.task(1, &[0xff; 16], init, 1, 0);
        let b = g.task(2, b"ok", init, 1, 0);
        g.f.put_u32(b + 0x10, 0x7fff_ffff);
        let _c = g.task(3, b"after", init, 1, 0);
        let k = g.f.kernel();
        let list = walk_tasks(&k, &TaskOptions::default()).unwrap();
        assert_eq!(list.tasks.iter().map(|t| t.pid).collect::<Vec<_>>(), vec![1, 3], "the absurd task is skipped, the rest listed");
        assert_eq!(list.tasks[0].comm.chars().count(), 16, "comm is bounded to TASK_COMM_LEN");
        assert!(list.warnings[0].contains("implausible pid"), "{:?}", list.warnings);
    }

    /// Found by fuzzing (walkers): a task whose prio is i32::MIN overflowed task_prio()'s subtraction.
    #[test]
    fn extreme_priorities_do_not_overflow() {
        let mut g = G::new();
        let init = g.init;
        let a = g.task(1, b"init", init, 1, 0);
        g.f.put_u32(a + 0x50, i32::MIN as u32);
        g.f.put_u32(a + 0x54, i32::MIN as u32);
        let k = g.f.kernel();
        let list = walk_tasks(&k, &TaskOptions::default()).unwrap();
        assert_eq!((list.tasks[0].priority, list.tasks[0].nice), (i32::MIN.wrapping_sub(100), i32::MIN.wrapping_sub(120)));
    }

    #[test]
    fn unmapped_cmdline_is_none_with_reason() {
        let mut g = G::new();
        let init = g.init;
        let a = g.task(1, b"init", init, 1, 0);
        g.give_mm(a, b"init\0", 1, 1);
        let mm = u64::from_le_bytes(g.f.mem[(a + 0x48 - crate::walkers::testkit::KBASE) as usize..][..8].try_into().unwrap());
        g.f.put_u64(mm + 0x10, UBASE + (1 << 40));
        g.f.put_u64(mm + 0x18, UBASE + (1 << 40) + 5);
        let k = g.f.kernel();
        let list = walk_tasks(&k, &TaskOptions::default()).unwrap();
        assert_eq!(list.tasks[0].cmdline, None);
        assert!(list.tasks[0].cmdline_error.as_deref().unwrap().starts_with("not resident"));
    }

    /// Hostile guest: after one process with 1000 threads, the task list comes back to that thread group
    /// 100 times (each entry's signal points at it). Each visit would walk the 1000 threads twice again;
    /// the group is listed once and every return is skipped with a warning.
    #[test]
    fn task_list_returning_to_one_thread_group_lists_it_once() {
        let mut g = G::with_ram(4 << 20);
        let init = g.init;
        let leader = g.task(1, b"init", init, 1, 0);
        let sig = u64::from_le_bytes(g.f.mem[(leader + 0x78 - crate::walkers::testkit::KBASE) as usize..][..8].try_into().unwrap());
        let mut last = leader + 0x80; // the leader's thread_node, last in signal->thread_head
        for pid in 2..1002 {
            let t = g.f.alloc(TS);
            g.f.put_u32(t + 0x10, pid);
            g.f.put_u32(t + 0x14, 1);
            g.f.put_u64(t + 0x40, init + 0x100); // a readable cred
            g.f.put_u64(t + 0x78, sig);
            g.f.put_u64(last, t + 0x80);
            g.f.put_u64(t + 0x80, sig + 8);
            g.f.put_u64(t + 0x88, last);
            g.f.put_u64(sig + 16, t + 0x80);
            last = t + 0x80;
        }
        for pid in 2000..2100 {
            let again = g.task(pid, b"again", init, 1, 0);
            g.f.put_u64(again + 0x78, sig);
        }
        let k = g.f.kernel();
        let list = walk_tasks(&k, &TaskOptions { threads: true, ..Default::default() }).unwrap();
        assert_eq!(list.tasks.iter().map(|t| t.pid).collect::<Vec<_>>(), vec![1]);
        assert_eq!(list.tasks[0].threads.len(), 1001);
        assert_eq!(list.warnings.len(), 100, "{:?}", &list.warnings[..3.min(list.warnings.len())]);
        assert!(list.warnings[0].contains("was listed already"), "{}", list.warnings[0]);
    }

    /// Hostile guest: a process claiming a 1 GiB cmdline, mapped by page tables whose every entry points back
    /// at the table itself (so every user address reads). The read stops at MAX_CMDLINE, with a warning.
    #[test]
    fn one_gib_cmdline_through_self_mapping_tables_is_cut_with_a_warning() {
        let mut g = G::new();
        g.f.user_page_tables(4);
        let init = g.init;
        let a = g.task(1, b"init", init, 1, 0);
        g.give_mm(a, b"x\0", 1, 1);
        let table = (g.f.alloc(2 * 4096) + 4095) & !4095; // page-aligned within the allocation
        for i in 0..512 {
            g.f.put_u64(table + i * 8, (table - crate::walkers::testkit::KBASE) | 0x7); // present, rw, user
        }
        let mm = u64::from_le_bytes(g.f.mem[(a + 0x48 - crate::walkers::testkit::KBASE) as usize..][..8].try_into().unwrap());
        g.f.put_u64(mm, table);
        let start = 0x7f00_0000_0000u64;
        for (off, v) in [(0x10, start), (0x18, start + (1 << 30)), (0x20, start + (1 << 30)), (0x28, start + (1 << 30))] {
            g.f.put_u64(mm + off, v);
        }
        let k = g.f.kernel();
        let list = walk_tasks(&k, &TaskOptions::default()).unwrap();
        let args = list.tasks[0].cmdline.as_ref().expect("the self-mapped area reads");
        let bytes = args.iter().map(|a| a.len() + 1).sum::<usize>();
        assert_eq!(bytes as u64, MAX_CMDLINE, "{} arguments", args.len());
        assert_eq!(list.warnings, vec![format!("pid 1: cmdline of {} bytes cut to the first {MAX_CMDLINE}", 1u64 << 30)]);
    }

    #[test]
    fn cputime_adjust_scales_and_keeps_monotonic() {
        let c = CpuTime { utime: 3, stime: 1, runtime: 400 };
        assert_eq!(cputime_adjust(c, None), (300, 100));
        assert_eq!(cputime_adjust(c, Some((350, 60))), (350, 60));
        assert_eq!(cputime_adjust(c, Some((350, 10))), (350, 50));
        assert_eq!(cputime_adjust(c, Some((300, 200))), (300, 200));
        assert_eq!(cputime_adjust(CpuTime { utime: 0, stime: 0, runtime: 9 }, None), (9, 0));
    }
}
