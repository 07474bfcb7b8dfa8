//! Processes and threads as fs/proc/array.c (do_task_stat, task_state) shows them, walked from
//! init_task.tasks and signal->thread_head (kernel/fork.c, include/linux/sched/signal.h, 6.1).

use std::collections::HashMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::kernel::{Kernel, Member};
use crate::objects::pid::{GroupPids, PidLayout};
use crate::objects::usermem::{nul_separated, user_read_error, UserMemory};
use crate::objects::{latin1, list_entries, Object};
use crate::records::{Hex, U64};
use crate::walkers::Context;
use crate::{Error, Result};

crate::walker! {
    /// Every process (and with `threads`, every thread) from init_task.tasks, with what /proc/PID/stat,
    /// status and cmdline show for it.
    name: "tasks",
    options: TaskOptions,
    record: TaskList,
    run: walk,
}

fn walk(cx: &Context, o: &TaskOptions) -> Result<TaskList> {
    walk_tasks(cx.kernel, o)
}

/// Bounds on what a walk will believe.
pub const MAX_TASKS: usize = 1_000_000;
const MAX_THREADS_PER_GROUP: usize = 100_000;
/// PID_MAX_LIMIT on 64-bit (include/linux/threads.h): 4 Mi.
const PID_MAX_LIMIT: i64 = 4 * 1024 * 1024;
const TASK_COMM_LEN: u64 = 16;
/// Largest cmdline we read (the kernel itself has no limit; ps shows 128 KiB at most).
pub const MAX_CMDLINE: u64 = 128 * 1024;

/// include/linux/sched.h (5.14+): the task state bits /proc reports.
mod state {
    pub const TASK_UNINTERRUPTIBLE: u32 = 0x0002;
    pub const TASK_REPORT: u32 = 0x007f;
    pub const TASK_NOLOAD: u32 = 0x0400;
    pub const TASK_RTLOCK_WAIT: u32 = 0x1000;
    pub const TASK_IDLE: u32 = TASK_UNINTERRUPTIBLE | TASK_NOLOAD;
    pub const TASK_REPORT_IDLE: u32 = TASK_REPORT + 1;
    /// fs/proc/array.c task_state_array as 4.14+ has it (used when the kernel's own copy is unreadable).
    pub const LETTERS: [char; 9] = ['R', 'S', 'D', 'T', 't', 'X', 'Z', 'P', 'I'];
}

/// USER_HZ (include/asm-generic/param.h): /proc's clock ticks.
const USER_HZ: u64 = 100;
const NS_PER_TICK: u64 = 1_000_000_000 / USER_HZ;

/// include/linux/sched.h: PF_KTHREAD, PF_WQ_WORKER.
pub const PF_KTHREAD: u32 = 0x0020_0000;
pub const PF_WQ_WORKER: u32 = 0x0000_0020;
/// fs/proc/array.c proc_task_name(): the name buffer /proc fills (comm plus a workqueue suffix).
const PROC_NAME_LEN: usize = 64;

/// The /proc state letter for `__state` and `exit_state`, as __task_state_index() computes it, with the
/// 4.14+ letters.
pub fn state_letter(task_state: u32, exit_state: u32) -> char {
    state_letter_in(&state::LETTERS, task_state, exit_state)
}

fn state_letter_in(letters: &[char], task_state: u32, exit_state: u32) -> char {
    let mut s = (task_state | exit_state) & state::TASK_REPORT;
    if task_state & state::TASK_IDLE == state::TASK_IDLE {
        s = state::TASK_REPORT_IDLE;
    }
    if task_state == state::TASK_RTLOCK_WAIT {
        s = state::TASK_UNINTERRUPTIBLE;
    }
    let fls = 32 - s.leading_zeros() as usize;
    letters.get(fls).copied().unwrap_or('?')
}

/// The letters of the kernel's own fs/proc/array.c task_state_array ("R (running)", …), so a kernel that
/// adds or moves a state is read as it says; None when the array is absent or does not look like one.
fn kernel_state_letters(k: &Kernel) -> Option<Vec<char>> {
    let array = k.symbol("task_state_array").ok()?;
    let mut letters = Vec::with_capacity(state::LETTERS.len());
    for i in 0..state::LETTERS.len() as u64 {
        let text = k.read_cstr(k.read_u64(array + i * 8).ok()?, 32).ok()?;
        let mut chars = text.chars();
        let (letter, rest) = (chars.next()?, chars.as_str());
        if !letter.is_ascii_alphabetic() || !rest.starts_with(" (") || !rest.ends_with(')') {
            return None;
        }
        letters.push(letter);
    }
    Some(letters)
}

/// Resident memory of an mm, as get_mm_counter() reads its counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rss {
    /// MM_FILEPAGES, MM_ANONPAGES, MM_SHMEMPAGES (/proc/PID/status RssFile, RssAnon, RssShmem in pages).
    pub file_pages: u64,
    pub anon_pages: u64,
    pub shmem_pages: u64,
    /// get_mm_rss(): their sum, /proc/PID/stat field 24.
    pub pages: u64,
    /// `pages` times the kernel's page size (ps's RSS is this in KiB).
    pub bytes: u64,
}

impl Rss {
    fn new(file: u64, anon: u64, shmem: u64, page_size: u64) -> Rss {
        let pages = file.saturating_add(anon).saturating_add(shmem);
        Rss { file_pages: file, anon_pages: anon, shmem_pages: shmem, pages, bytes: pages.saturating_mul(page_size) }
    }
}

/// One process or thread.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// Kernel address of the task_struct.
    pub address: Hex,
    pub pid: i32,
    pub tgid: i32,
    pub ppid: i32,
    /// The name /proc shows: comm, a workqueue worker's work name, or a kthread's full name.
    pub comm: String,
    /// The /proc state letter (R S D T t X Z P I), from the kernel's own task_state_array.
    pub state: char,
    /// Raw `__state` and `exit_state`.
    pub task_state: u32,
    pub exit_state: u32,
    /// task->flags (PF_*).
    pub flags: u32,
    /// PF_KTHREAD is set.
    pub kernel_thread: bool,
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
    /// start_boottime in ns since boot, and in USER_HZ ticks as /proc/PID/stat field 22.
    pub start_time_ns: U64,
    pub start_ticks: u64,
    /// utime/stime as /proc shows them (cputime_adjust'ed; for a process, the whole group), in ns and in
    /// USER_HZ ticks (/proc/PID/stat fields 14 and 15).
    pub utime_ns: U64,
    pub stime_ns: U64,
    pub utime_ticks: u64,
    pub stime_ticks: u64,
    /// Raw sum_exec_runtime (group total for a process), ns.
    pub runtime_ns: U64,
    /// The CPU it last ran on (/proc/PID/stat field 39).
    pub processor: Option<u32>,
    /// Process group and session (/proc/PID/stat fields 5 and 6): signal->pids[PIDTYPE_PGID], [PIDTYPE_SID]
    /// (4.19+; None on older kernels).
    pub pgrp: Option<i32>,
    pub session: Option<i32>,
    /// The controlling terminal's device as /proc/PID/stat field 7 encodes it (new_encode_dev), 0 without one;
    pub tty_nr: u32,
    /// its name as the kernel calls it (tty->name: "ttyS0", "pts3"), None without one;
    pub tty: Option<String>,
    /// and its foreground process group (field 8): −1 without a terminal, 0 when it has none.
    pub tpgid: i32,
    /// Scheduling policy (SCHED_NORMAL 0, FIFO 1, RR 2, BATCH 3, IDLE 5, DEADLINE 6) and real-time priority
    /// (/proc/PID/stat fields 41 and 40).
    pub policy: u32,
    pub rt_priority: u32,
    /// None for tasks without an mm (kernel threads, zombies).
    pub rss: Option<Rss>,
    pub vsz_bytes: Option<u64>,
    /// mm->locked_vm in bytes: /proc/PID/status VmLck (mlock'ed memory); None without an mm.
    pub locked_bytes: Option<u64>,
    /// argv as /proc/PID/cmdline gives it; Some(empty) when there is no mm; None when unreadable.
    pub cmdline: Option<Vec<String>>,
    pub cmdline_error: Option<String>,
    /// Threads of the group (with `threads: true`), the leader included, as /proc/PID/task lists them.
    pub threads: Vec<Task>,
}

/// The task list.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct TaskList {
    pub tasks: Vec<Task>,
    /// Why the walk stopped early or what it skipped; the list holds what was read.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct TaskOptions {
    /// Also list every thread of each process (signal->thread_head) under `threads`.
    pub threads: bool,
    /// Read each process's cmdline through its own page tables (default true).
    pub cmdline: bool,
    /// Bytes of cmdline to read at most (default 128 KiB).
    pub cmdline_max: u64,
}

impl Default for TaskOptions {
    fn default() -> Self {
        TaskOptions { threads: false, cmdline: true, cmdline_max: MAX_CMDLINE }
    }
}

/// Offsets of everything read, resolved once per walk from the kernel's types.
struct Layout {
    /// State letters indexed like task_state_array.
    letters: Vec<char>,
    page_size: u64,
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
    policy: Member,
    rt_priority: Member,
    pid_nr: Option<PidLayout>,
    group_pids: Option<GroupPids>,
    sig_tty: Option<u64>,
    tty: Option<TtyLayout>,
    mm_total_vm: Member,
    mm_locked_vm: Member,
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

/// A controlling terminal (include/linux/tty.h, tty_driver.h): what tty_devnum() and tty_get_pgrp() read.
struct TtyLayout {
    index: Member,
    driver: u64,
    name: Member,
    /// tty->ctrl.pgrp since 5.12, tty->pgrp before.
    pgrp: u64,
    major: Member,
    minor_start: Member,
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
            letters: kernel_state_letters(k).unwrap_or_else(|| state::LETTERS.to_vec()),
            page_size: k.facts.page_size.max(4096),
            task_size: k.size_of("task_struct")?,
            tasks: t("tasks")?.offset,
            pid: t("pid")?,
            tgid: t("tgid")?,
            real_parent: t("real_parent")?.offset,
            comm: t("comm")?.offset,
            // task_struct.__state since 5.14, .state before
            state: t("__state").or_else(|_| t("state"))?,
            exit_state: t("exit_state")?,
            flags: t("flags")?,
            real_cred: t("real_cred")?.offset,
            mm: t("mm")?.offset,
            prio: t("prio")?,
            static_prio: t("static_prio")?,
            // start_boottime since 5.5, real_start_time before
            start_boottime: t("start_boottime").or_else(|_| t("real_start_time"))?,
            utime: t("utime")?,
            stime: t("stime")?,
            sum_exec_runtime: t("se.sum_exec_runtime")?,
            prev_utime: t("prev_cputime.utime").ok(),
            prev_stime: t("prev_cputime.stime").ok(),
            signal: t("signal")?.offset,
            thread_node: t("thread_node")?.offset,
            // task_struct.cpu with THREAD_INFO_IN_TASK since 5.16, thread_info.cpu before
            cpu: t("cpu").or_else(|_| t("thread_info.cpu")).ok(),
            wq: (|| -> Result<WqLayout> {
                Ok(WqLayout {
                    worker_private: t("worker_private")?.offset,
                    kthread_data: k.offset("kthread", "data")?,
                    pool: k.offset("worker", "pool")?,
                    current_work: k.offset("worker", "current_work")?,
                    desc: k.member("worker", "desc")?,
                    // kthread.full_name since 5.17
                    full_name: k.types.member("kthread", "full_name").map(|m| m.offset),
                })
            })()
            .ok(),
            cred: [cred("uid")?, cred("euid")?, cred("suid")?, cred("fsuid")?, cred("gid")?, cred("egid")?, cred("sgid")?, cred("fsgid")?],
            policy: t("policy")?,
            rt_priority: t("rt_priority")?,
            pid_nr: PidLayout::resolve(k).ok(),
            group_pids: GroupPids::resolve(k),
            sig_tty: k.types.member("signal_struct", "tty").map(|m| m.offset),
            tty: (|| -> Result<TtyLayout> {
                let tty = |p: &str| k.member("tty_struct", p);
                Ok(TtyLayout {
                    index: tty("index")?,
                    driver: tty("driver")?.offset,
                    name: tty("name")?,
                    // tty_struct.ctrl.pgrp since 5.12, .pgrp before
                    pgrp: tty("ctrl.pgrp").or_else(|_| tty("pgrp"))?.offset,
                    major: k.member("tty_driver", "major")?,
                    minor_start: k.member("tty_driver", "minor_start")?,
                })
            })()
            .ok(),
            mm_total_vm: mm("total_vm")?,
            mm_locked_vm: mm("locked_vm")?,
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
    let walk = list_entries(k, head, layout.tasks, MAX_TASKS, "task list (init_task.tasks)");
    let mut out = TaskList::default();
    let mut pids = std::collections::HashSet::new();
    // init_task.tasks holds thread-group leaders only, one per signal_struct: a list that comes back to a
    // group already listed would have every visit walk that group's threads again.
    let mut groups: HashMap<u64, u64> = HashMap::new();
    for addr in walk.items {
        let signal = k.read_u64(addr.wrapping_add(layout.signal)).unwrap_or(0); // unreadable: read_task says why
        if signal != 0 {
            if let Some(first) = groups.get(&signal) {
                // on a running guest a group that exited and a new one reusing its signal_struct look alike
                k.note_torn(format!("task list: thread group (signal_struct {signal:#x}) listed twice"));
                out.warnings.push(format!(
                    "task list: task_struct {addr:#x} skipped: its thread group (signal_struct {signal:#x}) was listed already with task_struct {first:#x}"
                ));
                continue;
            }
            groups.insert(signal, addr);
        }
        // The list itself was walked and checked already: one unreadable task is skipped, the listing goes on
        // (on a running guest it exited while we read: a torn read the walk is re-run for).
        let mut task = match read_task(k, &layout, addr, true) {
            Ok(t) => t,
            Err(e) => {
                let why = format!("task list: task_struct {addr:#x} skipped: {e}");
                k.note_torn(why.clone());
                out.warnings.push(why);
                continue;
            }
        };
        if !pids.insert(task.pid) {
            k.note_torn(format!("task list: pid {} listed twice", task.pid));
        }
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
    let walk = list_entries(k, signal.wrapping_add(l.sig_thread_head), l.thread_node, MAX_THREADS_PER_GROUP, "thread list (signal->thread_head)");
    let mut threads = Vec::with_capacity(walk.items.len());
    for addr in walk.items {
        match read_task(k, l, addr, false) {
            Ok(t) => threads.push(t),
            Err(e) => return Ok((threads, Some(format!("thread list of {leader:#x}: stopped at {addr:#x}: {e}")))),
        }
    }
    Ok((threads, walk.warning))
}

/// One task_struct. `whole` = the process view of /proc/PID/stat (group times and counts).
fn read_task(k: &Kernel, l: &Layout, addr: u64, whole: bool) -> Result<Task> {
    let s = Object::read(k, addr, l.task_size).map_err(|e| e.context(format!("reading task_struct at {addr:#x}")))?;
    let pid = s.int(l.pid)?;
    let tgid = s.int(l.tgid)?;
    if !(0..=PID_MAX_LIMIT).contains(&pid) || !(0..=PID_MAX_LIMIT).contains(&tgid) {
        return Err(Error::bad(format!("task_struct at {addr:#x} has implausible pid {pid} / tgid {tgid}")));
    }
    let mut comm = s.cstr_at(l.comm, TASK_COMM_LEN)?;
    let task_state = s.get(l.state)? as u32;
    let exit_state = s.get(l.exit_state)? as u32;
    let flags = s.get(l.flags)? as u32;
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

    let parent = s.ptr_at(l.real_parent)?;
    let ppid = if parent == 0 || parent == addr && pid == 0 {
        0
    } else {
        k.read_member(parent, l.tgid)
            .map(|v| v as u32 as i32)
            .map_err(|e| e.context(format!("reading real_parent of pid {pid}")))?
    };

    let cred_addr = s.ptr_at(l.real_cred)?;
    let cred = Object::read(k, cred_addr, l.cred.iter().map(|m| m.offset + m.size).max().unwrap_or(8))
        .map_err(|e| e.context(format!("reading real_cred of pid {pid}")))?;
    let c = |i: usize| -> Result<u32> { Ok(cred.get(l.cred[i])? as u32) };

    let signal = s.ptr_at(l.signal)?;
    let sig_len = [l.sig_nr_threads, l.sig_utime, l.sig_stime, l.sig_runtime]
        .iter()
        .chain(l.sig_prev_utime.iter())
        .chain(l.sig_prev_stime.iter())
        .map(|m| m.offset + m.size)
        .chain(l.group_pids.iter().flat_map(|g| [g.pgid + 8, g.sid + 8]))
        .chain(l.sig_tty.map(|t| t + 8))
        .max()
        .unwrap_or(8);
    let sig = Object::read(k, signal, sig_len).map_err(|e| e.context(format!("reading signal_struct of pid {pid}")))?;
    let nr_threads = sig.int(l.sig_nr_threads)? as i32;
    // fs/proc/array.c do_task_stat(): task_pgrp_nr_ns(), task_session_nr_ns(), and the terminal's.
    let (pgrp, session) = match (l.group_pids, l.pid_nr) {
        (Some(g), Some(p)) => (Some(p.nr(k, sig.ptr_at(g.pgid)?)?), Some(p.nr(k, sig.ptr_at(g.sid)?)?)),
        _ => (None, None),
    };
    let ctty = match l.sig_tty {
        Some(off) => controlling_tty(k, l, sig.ptr_at(off)?).map_err(|e| e.context(format!("reading the terminal of pid {pid}")))?,
        None => None,
    };

    // cputime: the task's own, or the group's (exited threads' totals kept in signal_struct plus every live thread).
    let own = CpuTime { utime: s.get(l.utime)?, stime: s.get(l.stime)?, runtime: s.get(l.sum_exec_runtime)? };
    let (cpu, prev) = if whole {
        let mut sum = CpuTime { utime: sig.get(l.sig_utime)?, stime: sig.get(l.sig_stime)?, runtime: sig.get(l.sig_runtime)? };
        let walk = list_entries(k, signal.wrapping_add(l.sig_thread_head), l.thread_node, MAX_THREADS_PER_GROUP, "thread list");
        for &t in &walk.items {
            let rd = |m: Member| k.read_member(t, m);
            sum.utime = sum.utime.wrapping_add(rd(l.utime)?);
            sum.stime = sum.stime.wrapping_add(rd(l.stime)?);
            sum.runtime = sum.runtime.wrapping_add(rd(l.sum_exec_runtime)?);
        }
        let prev = match (l.sig_prev_utime, l.sig_prev_stime) {
            (Some(u), Some(st)) => Some((sig.get(u)?, sig.get(st)?)),
            _ => None,
        };
        (sum, prev)
    } else {
        let prev = match (l.prev_utime, l.prev_stime) {
            (Some(u), Some(st)) => Some((s.get(u)?, s.get(st)?)),
            _ => None,
        };
        (own, prev)
    };
    let (utime_ns, stime_ns) = cputime_adjust(cpu, prev);

    let mm = s.ptr_at(l.mm)?;
    let (rss, vsz_bytes, locked_bytes) = if mm == 0 {
        (None, None, None)
    } else {
        let r = &l.rss;
        let counter = |i: u64| -> Result<u64> {
            let v = k.read_i64(mm.wrapping_add(r.base + i * r.stride + r.value))?;
            Ok(if v < 0 { 0 } else { v as u64 })
        };
        let rss = Rss::new(counter(r.file)?, counter(r.anon)?, counter(r.shmem)?, l.page_size);
        let total_vm = k.read_member(mm, l.mm_total_vm)?;
        let locked_vm = k.read_member(mm, l.mm_locked_vm)?;
        (Some(rss), Some(total_vm.saturating_mul(l.page_size)), Some(locked_vm.saturating_mul(l.page_size)))
    };

    let start_ns = s.get(l.start_boottime)?;
    Ok(Task {
        address: Hex(addr),
        pid: pid as i32,
        tgid: tgid as i32,
        ppid,
        comm,
        state: state_letter_in(&l.letters, task_state, exit_state),
        task_state,
        exit_state,
        flags,
        kernel_thread: flags & PF_KTHREAD != 0,
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
        start_time_ns: U64(start_ns),
        start_ticks: start_ns / NS_PER_TICK,
        utime_ns: U64(utime_ns),
        stime_ns: U64(stime_ns),
        utime_ticks: utime_ns / NS_PER_TICK,
        stime_ticks: stime_ns / NS_PER_TICK,
        runtime_ns: U64(cpu.runtime),
        processor: l.cpu.and_then(|m| s.get(m).ok()).map(|v| v as u32),
        pgrp,
        session,
        tty_nr: ctty.as_ref().map_or(0, |t| t.tty_nr),
        tpgid: ctty.as_ref().map_or(-1, |t| t.tpgid),
        tty: ctty.map(|t| t.name),
        policy: s.get(l.policy)? as u32,
        rt_priority: s.get(l.rt_priority)? as u32,
        rss,
        vsz_bytes,
        locked_bytes,
        cmdline: if mm == 0 { Some(Vec::new()) } else { None },
        cmdline_error: None,
        threads: Vec::new(),
    })
}

/// A task's controlling terminal as do_task_stat() reports it.
struct ControllingTty {
    tty_nr: u32,
    name: String,
    tpgid: i32,
}

/// signal->tty: tty_devnum() (MKDEV(driver->major, driver->minor_start) + index) encoded by new_encode_dev(),
/// the kernel's name for it, and pid_nr(tty_get_pgrp()). None when there is no terminal.
fn controlling_tty(k: &Kernel, l: &Layout, tty: u64) -> Result<Option<ControllingTty>> {
    let (Some(t), Some(p)) = (&l.tty, &l.pid_nr) else { return Ok(None) };
    if tty == 0 {
        return Ok(None);
    }
    let index = k.read_member(tty, t.index)? as u32;
    let driver = k.read_u64(tty.wrapping_add(t.driver))?;
    let major = k.read_member(driver, t.major)? as u32;
    let minor = (k.read_member(driver, t.minor_start)? as u32).wrapping_add(index);
    let name = k.read_cstr(tty.wrapping_add(t.name.offset), t.name.size.min(64) as usize)?;
    let tpgid = p.nr(k, k.read_u64(tty.wrapping_add(t.pgrp))?)?;
    Ok(Some(ControllingTty { tty_nr: new_encode_dev(major, minor), name, tpgid }))
}

/// include/linux/kdev_t.h new_encode_dev(): the 32-bit device number /proc prints (major in bits 8–19).
fn new_encode_dev(major: u32, minor: u32) -> u32 {
    // MINORBITS is 20: a dev_t holds 12 bits of major, 20 of minor
    let (major, minor) = (major & 0xfff, minor & 0xf_ffff);
    (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
}

/// kernel/workqueue.c wq_worker_comm(): "+desc" while a work item runs, "-desc" after, nothing before any.
fn worker_desc(k: &Kernel, wq: &WqLayout, task: &Object) -> Result<Option<String>> {
    let kthread = task.ptr_at(wq.worker_private)?;
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
fn kthread_full_name(k: &Kernel, wq: &WqLayout, task: &Object) -> Result<Option<String>> {
    let Some(off) = wq.full_name else { return Ok(None) };
    let kthread = task.ptr_at(wq.worker_private)?;
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
pub(crate) struct CpuTime {
    pub(crate) utime: u64,
    pub(crate) stime: u64,
    pub(crate) runtime: u64,
}

/// kernel/sched/cputime.c cputime_adjust(): split the precise runtime in the tick-sampled utime:stime
/// ratio, never going below what was shown before (prev_cputime). We do not write prev back.
pub(crate) fn cputime_adjust(c: CpuTime, prev: Option<(u64, u64)>) -> (u64, u64) {
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
    task.rss.as_ref()?; // no mm: Some(empty), like /proc
    match read_cmdline(k, l, task.address.0, max) {
        Ok((args, len)) => {
            task.cmdline = Some(args);
            return (len > max).then(|| format!("pid {}: cmdline of {len} bytes cut to the first {max}", task.pid));
        }
        Err(e) => {
            task.cmdline = None;
            task.cmdline_error = Some(user_read_error(e));
        }
    }
    None
}

/// The arguments, and the length of the area they were read from (before the cut at `max`).
fn read_cmdline(k: &Kernel, l: &Layout, task: u64, max: u64) -> Result<(Vec<String>, u64)> {
    let mm = k.read_u64(task.wrapping_add(l.mm))?;
    let field = |m: Member| k.read_member(mm, m);
    let (arg_start, arg_end) = (field(l.mm_args[0])?, field(l.mm_args[1])?);
    let (env_start, env_end) = (field(l.mm_args[2])?, field(l.mm_args[3])?);
    if arg_start >= arg_end {
        return Ok((Vec::new(), 0));
    }
    // setproctitle(3) overwrote the final NUL: the kernel then shows one string running into the
    // environment, when the environment follows the arguments.
    let env_end = if env_start == arg_end && env_end >= env_start { env_end } else { arg_end };
    let mem = UserMemory::of(k, mm)?;
    let mut last = [0u8; 1];
    mem.read(arg_end - 1, &mut last)?; // arg_end > arg_start ≥ 0
    let (area, proctitle) = if last[0] != 0 { (env_end - arg_start, true) } else { (arg_end - arg_start, false) };
    let buf = mem.read_range(arg_start, arg_start + area, max)?;
    if proctitle {
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        return Ok((vec![latin1(&buf[..end])], area));
    }
    Ok((nul_separated(&buf), area))
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
            ("se.sum_exec_runtime", 0x70, 8), ("signal", 0x78, 8), ("thread_node", 0x80, 16), ("policy", 0x90, 4),
            ("rt_priority", 0x94, 4),
        ] {
            f.member("task_struct", p, o, s, None);
        }
        for (i, p) in ["uid", "euid", "suid", "fsuid", "gid", "egid", "sgid", "fsgid"].iter().enumerate() {
            f.member("cred", p, 4 + i as u64 * 4, 4, None);
        }
        for (p, o) in [("pgd", 0x00), ("total_vm", 0x08), ("arg_start", 0x10), ("arg_end", 0x18), ("env_start", 0x20), ("env_end", 0x28), ("locked_vm", 0x30)] {
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
        assert_eq!(t.rss.unwrap().pages, 320);
        assert_eq!(t.cmdline.as_deref().unwrap(), ["worker", "--beta", "two words", ""]);
        assert_eq!(t.vsz_bytes, Some(1000 * 4096));
        assert_eq!(t.rss.unwrap().bytes, 320 * 4096);
        assert_eq!(t.threads.len(), 1);
        assert_eq!(list.tasks[1].state, 'I');
        assert!(list.tasks[1].kernel_thread);
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

    /// Group and session pids, a controlling terminal, policy and locked memory, as do_task_stat() shows them.
    #[test]
    fn session_terminal_policy_and_locked_memory() {
        let mut g = G::new();
        // signal_struct.pids[PIDTYPE_MAX] and .tty; struct pid's numbers[0].nr; tty_struct and tty_driver
        g.f.member("signal_struct", "pids", 0x30, 32, Some(4));
        g.f.member("signal_struct", "tty", 0x50, 8, None);
        g.f.enumerator("PIDTYPE_PGID", 2);
        g.f.enumerator("PIDTYPE_SID", 3);
        g.f.member("pid", "level", 4, 4, None);
        g.f.member("pid", "numbers", 0x10, 16, Some(1));
        g.f.member("upid", "nr", 0, 4, None);
        for (p, o, sz) in [("index", 0x00, 4), ("driver", 0x08, 8), ("name", 0x10, 64), ("ctrl.pgrp", 0x50, 8)] {
            g.f.member("tty_struct", p, o, sz, None);
        }
        g.f.member("tty_driver", "major", 0x00, 4, None);
        g.f.member("tty_driver", "minor_start", 0x04, 4, None);
        let init = g.init;
        let leader = g.task(300, b"nf-session", init, 1, 0);
        let other = g.task(301, b"nf-other", init, 1, 0);
        let pid = |f: &mut Fake, nr: u32| {
            let p = f.alloc(0x20);
            f.put_u32(p + 0x10, nr);
            p
        };
        let pid300 = pid(&mut g.f, 300);
        let driver = g.f.alloc(16);
        g.f.put_u32(driver, 4); // serial: major 4, minors from 64 (ttyS0 = 4:64)
        g.f.put_u32(driver + 4, 64);
        let tty = g.f.alloc(0x60);
        g.f.put_u32(tty, 1);
        g.f.put_u64(tty + 0x08, driver);
        g.f.put(tty + 0x10, b"ttyS1\0");
        g.f.put_u64(tty + 0x50, pid300);
        let sig = |f: &Fake, t: u64| u64::from_le_bytes(f.mem[(t + 0x78 - crate::walkers::testkit::KBASE) as usize..][..8].try_into().unwrap());
        let s = sig(&g.f, leader);
        g.f.put_u64(s + 0x40, pid300);
        g.f.put_u64(s + 0x48, pid300);
        g.f.put_u64(s + 0x50, tty);
        g.f.put_u32(leader + 0x90, 1); // SCHED_FIFO
        g.f.put_u32(leader + 0x94, 50);
        g.give_mm(leader, b"x\0", 1, 1);
        let mm = u64::from_le_bytes(g.f.mem[(leader + 0x48 - crate::walkers::testkit::KBASE) as usize..][..8].try_into().unwrap());
        g.f.put_u64(mm + 0x30, 3);
        let k = g.f.kernel();
        let list = walk_tasks(&k, &TaskOptions::default()).unwrap();
        assert!(list.warnings.is_empty(), "{:?}", list.warnings);
        let t = list.tasks.iter().find(|t| t.pid == 300).unwrap();
        assert_eq!((t.pgrp, t.session, t.tpgid), (Some(300), Some(300), 300));
        assert_eq!(t.tty_nr, (4 << 8) | 65, "new_encode_dev(4, 64 + 1)");
        assert_eq!(t.tty.as_deref(), Some("ttyS1"));
        assert_eq!((t.policy, t.rt_priority, t.locked_bytes), (1, 50, Some(3 * 4096)));
        let o = list.tasks.iter().find(|t| t.pid == 301).unwrap();
        assert_eq!((o.pgrp, o.session, o.tty_nr, o.tty.as_deref(), o.tpgid, o.locked_bytes), (Some(0), Some(0), 0, None, -1, None));
        let _ = other;
    }

    #[test]
    fn device_numbers_encode_as_proc_prints_them() {
        assert_eq!(new_encode_dev(136, 3), 0x8803, "pts/3");
        assert_eq!(new_encode_dev(4, 64), 0x440, "ttyS0");
        assert_eq!(new_encode_dev(259, 0x1_2345), (0x45 | (259 << 8) | (0x1_2300 << 12)), "large minors go to the top bits");
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
