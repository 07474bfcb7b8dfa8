//! Hung tasks: every task in uninterruptible sleep (D) with how long it has been blocked (its
//! sched_info.last_arrival against the runqueue clock; khungtaskd's last_switch_time against jiffies,
//! kernel/hung_task.c check_hung_task of 6.1 and 6.12), whether khungtaskd reported or would report it,
//! what it waits on (objects::locks: a mutex or rwsem owner, a frozen filesystem; else its wait channel)
//! and its kernel stack.

use std::collections::{HashMap, HashSet};

use schemars::JsonSchema;
use serde::Serialize;

use crate::kernel::Kernel;
use crate::objects::locks::{frozen_superblocks, lock_waited_on, FrozenSuper, LockKind, LockWait};
use crate::objects::taskstack::Tracer;
use crate::records::{Hex, U64};
use crate::walkers::dmesg::dmesg;
use crate::walkers::stacks::{last_arrival, task_stack, tracer, TaskStack};
use crate::walkers::tasks::{walk_tasks, TaskOptions};
use crate::walkers::uptime::uptime;
use crate::walkers::{Context, NoOptions};
use crate::Result;

crate::walker! {
    /// Every task in D: how long it has been blocked, whether khungtaskd reported or would report it,
    /// what it waits on (a mutex or rwsem owner, a frozen filesystem, or its wait channel), its stack.
    name: "hung",
    options: NoOptions,
    record: HungTasks,
    run: walk,
}

/// include/linux/sched.h task state bits khungtaskd looks at.
const TASK_UNINTERRUPTIBLE: u32 = 0x0002;
const TASK_WAKEKILL: u32 = 0x0100;
const TASK_NOLOAD: u32 = 0x0400;
const TASK_FROZEN: u32 = 0x8000;
/// CONFIG_HZ values Debian and others build with; INITIAL_JIFFIES is (u32)(−300 × HZ).
const HZ_CANDIDATES: [u64; 5] = [100, 250, 300, 1000, 1024];

/// A task named in a lock chain.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskRef {
    pub pid: i32,
    pub comm: String,
    pub address: Hex,
}

/// What a blocked task waits on.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WaitOn {
    /// frozen-fs (sb_start_write on a frozen superblock), mutex, rwsem, or wchan (only the wait channel is known).
    pub kind: String,
    /// One line: "frozen ext4 /mnt/root (vda)", "mutex 0x… held by nf-lock/fault (182)", "pipe_write" …
    pub description: String,
    /// The lock (struct mutex, rw_semaphore) or superblock address.
    pub address: Option<Hex>,
    /// The lock's owner from its owner word (flags masked); for a reader-owned rwsem, its last reader.
    pub owner: Option<TaskRef>,
    /// rwsem: the waiter wants it for write (else read); held for write, or by this many readers.
    pub wants_write: Option<bool>,
    pub writer_locked: Option<bool>,
    pub readers: Option<u64>,
    /// Tasks queued ahead of it on the same lock.
    pub queued_behind: Vec<TaskRef>,
    /// The rwsem is this process's mm->mmap_lock.
    pub mmap_lock_of: Option<TaskRef>,
    /// Frozen filesystem: its type, device (s_id), mount points and freeze level (1 write … 4 complete).
    pub fstype: Option<String>,
    pub device: Option<String>,
    pub mountpoints: Vec<String>,
    pub frozen_level: Option<u64>,
}

/// khungtaskd's view of one task (kernel/hung_task.c).
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Khungtaskd {
    /// reported (its "INFO: task … blocked for more than N seconds" is in the log), would-report (blocked
    /// past the timeout: reported at the next check unless hung_task_warnings ran out), not-yet, ignored
    /// (killable or idle sleep: khungtaskd never reports these), disabled (timeout 0).
    pub verdict: String,
    pub note: String,
    /// Seconds since khungtaskd last saw it switch: (jiffies − last_switch_time) / HZ.
    pub seconds_since_switch: Option<f64>,
    /// The N of the log's report, when there is one.
    pub reported_seconds: Option<u64>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HungTask {
    pub pid: i32,
    pub tgid: i32,
    pub comm: String,
    pub state: char,
    /// Raw __state (TASK_UNINTERRUPTIBLE 2, | TASK_WAKEKILL 0x100 for killable, | TASK_NOLOAD 0x400 for idle).
    pub task_state: u32,
    pub address: Hex,
    /// Runqueue clock now minus sched_info.last_arrival: how long since it last got a CPU (its last time
    /// slice included), ns.
    pub blocked_for_ns: Option<U64>,
    pub khungtaskd: Khungtaskd,
    pub waits_on: WaitOn,
    pub stack: Option<TaskStack>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FrozenFs {
    pub superblock: Hex,
    pub fstype: Option<String>,
    pub device: Option<String>,
    pub mountpoints: Vec<String>,
    /// s_writers.frozen: 1 writes, 2 page faults, 3 internal writes, 4 complete (FIFREEZE).
    pub level: u64,
    /// Tasks waiting to write to it.
    pub waiters: Vec<TaskRef>,
}

#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HungTasks {
    /// kernel.hung_task_timeout_secs (0: khungtaskd off), hung_task_warnings (reports left; −1 unlimited),
    /// hung_task_check_interval_secs (0: the timeout), hung_task_panic.
    pub timeout_secs: Option<u64>,
    pub warnings_left: Option<i64>,
    pub check_interval_secs: Option<u64>,
    pub panic_on_hung: Option<u64>,
    /// CONFIG_HZ as jiffies and the monotonic clock show it, and jiffies now.
    pub hz: Option<u64>,
    pub jiffies: Option<U64>,
    /// The newest runqueue clock (ns): "now" on the scheduler's clock.
    pub clock_ns: Option<U64>,
    pub tasks: Vec<HungTask>,
    pub frozen: Vec<FrozenFs>,
    pub warnings: Vec<String>,
}

fn walk(cx: &Context, _: &NoOptions) -> Result<HungTasks> {
    hung_tasks(cx)
}

/// A sysctl variable by its symbol.
fn sysctl(k: &Kernel, name: &str, size: u64) -> Option<u64> {
    k.symbol(name).and_then(|a| k.read_uint(a, size)).ok()
}

/// CONFIG_HZ: the candidate whose jiffies since INITIAL_JIFFIES match the monotonic clock within 5 %.
pub fn hz_of(jiffies: u64, monotonic_ns: u64) -> Option<u64> {
    let secs = monotonic_ns as f64 / 1e9;
    if secs < 2.0 {
        return None;
    }
    HZ_CANDIDATES.into_iter().find(|&hz| {
        let initial = (0u32.wrapping_sub((300 * hz) as u32)) as u64;
        let rate = jiffies.wrapping_sub(initial) as f64 / secs;
        (rate - hz as f64).abs() / (hz as f64) < 0.05
    })
}

/// "INFO: task COMM:PID blocked for more than N seconds." lines of the log, by (comm, pid).
pub fn hung_reports(k: &Kernel) -> HashMap<(String, i32), u64> {
    let mut out = HashMap::new();
    let Ok(log) = dmesg(k) else { return out };
    for r in log.records {
        let Some(rest) = r.text.strip_prefix("INFO: task ") else { continue };
        let Some((who, tail)) = rest.split_once(" blocked for more than ") else { continue };
        let Some((comm, pid)) = who.rsplit_once(':') else { continue };
        let (Ok(pid), Some(secs)) = (pid.parse::<i32>(), tail.split(' ').next().and_then(|n| n.parse::<u64>().ok())) else { continue };
        let e = out.entry((comm.to_string(), pid)).or_insert(0);
        *e = (*e).max(secs);
    }
    out
}

/// Superblock → (fstype, device, mount points), from the mounts walker.
fn mount_points(cx: &Context) -> HashMap<u64, (String, String, Vec<String>)> {
    let mut out: HashMap<u64, (String, String, Vec<String>)> = HashMap::new();
    let Ok(doc) = (crate::walkers::mounts::WALKER.run)(cx, serde_json::Value::Null) else { return out };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&doc) else { return out };
    for m in v["mounts"].as_array().into_iter().flatten() {
        let Some(sb) = m["superblock"].as_str().and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok()) else { continue };
        let e = out.entry(sb).or_insert_with(|| (m["fstype"].as_str().unwrap_or("").into(), m["sbId"].as_str().unwrap_or("").into(), Vec::new()));
        if let Some(p) = m["mountpoint"].as_str() {
            e.2.push(p.into());
        }
    }
    out
}

fn task_ref(t: &Tracer, addr: u64) -> TaskRef {
    let (pid, comm) = t.name_of(addr).unwrap_or((-1, "?".into()));
    TaskRef { pid, comm, address: Hex(addr) }
}

/// The process whose mm->mmap_lock is the rwsem at `lock`.
fn mmap_lock_owner(k: &Kernel, lock: u64, processes: &[(u64, u64)]) -> Option<u64> {
    let off = k.offset("mm_struct", "mmap_lock").ok()?;
    processes.iter().find(|(_, mm)| *mm != 0 && mm.wrapping_add(off) == lock).map(|(t, _)| *t)
}

fn describe_lock(t: &Tracer, w: &LockWait, mmap_of: Option<u64>) -> WaitOn {
    let owner = w.owner.map(|o| task_ref(t, o));
    let who = |r: &Option<TaskRef>| r.as_ref().map(|r| format!("{} ({})", r.comm, r.pid)).unwrap_or_else(|| "nobody".into());
    let name = match (w.kind, mmap_of) {
        (LockKind::RwSem, Some(p)) => {
            let r = task_ref(t, p);
            format!("mmap_lock of {} ({})", r.comm, r.pid)
        }
        (LockKind::RwSem, None) => format!("rwsem {:#x}", w.lock),
        (LockKind::Mutex, _) => format!("mutex {:#x}", w.lock),
    };
    let description = match w.kind {
        LockKind::Mutex => format!("{name} held by {}", who(&owner)),
        LockKind::RwSem => {
            let want = if w.exclusive { "write" } else { "read" };
            if w.writer_locked {
                format!("{name} (for {want}), held for write by {}", who(&owner))
            } else if w.readers > 0 {
                let last = owner.as_ref().map(|o| format!(", last taken by {} ({})", o.comm, o.pid)).unwrap_or_default();
                format!("{name} (for {want}), held for read by {} reader{}{last}", w.readers, if w.readers == 1 { "" } else { "s" })
            } else {
                format!("{name} (for {want})")
            }
        }
    };
    let behind: Vec<TaskRef> = w.queued_behind.iter().map(|&a| task_ref(t, a)).collect();
    let description = if behind.is_empty() {
        description
    } else {
        format!("{description}; queued behind {}", behind.iter().map(|b| format!("{} ({})", b.comm, b.pid)).collect::<Vec<_>>().join(", "))
    };
    WaitOn {
        kind: match w.kind {
            LockKind::Mutex => "mutex",
            LockKind::RwSem => "rwsem",
        }
        .into(),
        description,
        address: Some(Hex(w.lock)),
        owner,
        wants_write: (w.kind == LockKind::RwSem).then_some(w.exclusive),
        writer_locked: (w.kind == LockKind::RwSem).then_some(w.writer_locked),
        readers: (w.kind == LockKind::RwSem).then_some(w.readers),
        queued_behind: behind,
        mmap_lock_of: mmap_of.map(|p| task_ref(t, p)),
        ..Default::default()
    }
}

/// Which sleeping-lock slow path the stack shows (its frames are scheduler functions: __sched).
fn lock_kind(stack: &TaskStack) -> Option<LockKind> {
    stack.frames.iter().filter_map(|f| f.function.as_deref()).find_map(|f| {
        if f.starts_with("__mutex_lock") || f.starts_with("mutex_lock") || f.starts_with("__ww_mutex_lock") {
            Some(LockKind::Mutex)
        } else if f.starts_with("rwsem_down_") {
            Some(LockKind::RwSem)
        } else {
            None
        }
    })
}

/// The D tasks of the guest and what holds them.
pub fn hung_tasks(cx: &Context) -> Result<HungTasks> {
    let k = cx.kernel;
    let mut out = HungTasks::default();
    let t = tracer(cx, &[], &mut out.warnings)?;
    out.warnings.extend(t.warnings.iter().cloned());
    out.timeout_secs = sysctl(k, "sysctl_hung_task_timeout_secs", 8);
    out.warnings_left = sysctl(k, "sysctl_hung_task_warnings", 4).map(|v| v as u32 as i32 as i64);
    out.check_interval_secs = sysctl(k, "sysctl_hung_task_check_interval_secs", 8);
    out.panic_on_hung = sysctl(k, "sysctl_hung_task_panic", 4);
    let jiffies = k.symbol("jiffies_64").and_then(|a| k.read_u64(a)).ok();
    out.jiffies = jiffies.map(U64);
    let mono = uptime(k).ok().map(|u| u.monotonic_ns.0);
    out.hz = jiffies.zip(mono).and_then(|(j, m)| hz_of(j, m));
    let now = t.runqueues.iter().map(|q| q.clock).max();
    out.clock_ns = now.map(U64);

    let list = walk_tasks(k, &TaskOptions { threads: true, cmdline: false, ..Default::default() })?;
    out.warnings.extend(list.warnings.iter().cloned());
    let all: HashSet<u64> = list.tasks.iter().flat_map(|p| p.threads.iter().map(|t| t.address.0)).chain(t.runqueues.iter().map(|q| q.curr)).collect();
    let mm_off = k.offset("task_struct", "mm")?;
    let processes: Vec<(u64, u64)> = list.tasks.iter().map(|p| (p.address.0, k.read_u64(p.address.0.wrapping_add(mm_off)).unwrap_or(0))).collect();
    let reports = hung_reports(k);

    let frozen = frozen_superblocks(k, &mut out.warnings).unwrap_or_else(|e| {
        out.warnings.push(format!("frozen filesystems: {e}"));
        Vec::new()
    });
    let mounts = if frozen.is_empty() { HashMap::new() } else { mount_points(cx) };
    let waiting_on_frozen: HashMap<u64, &FrozenSuper> = frozen.iter().flat_map(|f| f.waiters.iter().map(move |(w, _)| (*w, f))).collect();
    for f in &frozen {
        let (fstype, device, points) = mounts.get(&f.sb).cloned().map_or((None, None, Vec::new()), |(a, b, c)| (Some(a), Some(b), c));
        out.frozen.push(FrozenFs { superblock: Hex(f.sb), fstype, device, mountpoints: points, level: f.level, waiters: f.waiters.iter().map(|(w, _)| task_ref(&t, *w)).collect() });
    }

    let task_t = k.struct_type("task_struct")?;
    let (switch_count, switch_time) = (task_t.opt_field("last_switch_count"), task_t.opt_field("last_switch_time"));
    let (nvcsw, nivcsw) = (task_t.field("nvcsw")?, task_t.field("nivcsw")?);
    for p in &list.tasks {
        for th in p.threads.iter().filter(|th| th.state == 'D') {
            let addr = th.address.0;
            let stack = task_stack(&t, addr, &mut out.warnings);
            let blocked_for_ns = now.zip(last_arrival(k, addr)).map(|(n, a)| U64(n.saturating_sub(a)));
            // khungtaskd
            let reported = reports.get(&(th.comm.clone(), th.pid)).copied();
            // last_switch_time is 0 until khungtaskd first looks at the task (jiffies start near 2^32)
            let since_switch = switch_time.and_then(|m| k.read_member(addr, m).ok()).filter(|&s| s != 0).zip(jiffies).zip(out.hz).map(|((s, j), hz)| j.wrapping_sub(s) as f64 / hz as f64);
            let counted = switch_count.and_then(|m| k.read_member(addr, m).ok());
            let switches = k.read_member(addr, nvcsw).ok().zip(k.read_member(addr, nivcsw).ok()).map(|(a, b)| a.wrapping_add(b));
            let khungtaskd = khungtaskd_view(th.task_state, out.timeout_secs, out.warnings_left, reported, since_switch, counted, switches);
            // what it waits on
            let mut waits_on = None;
            if let Some(f) = waiting_on_frozen.get(&addr) {
                let (fstype, device, points) = mounts.get(&f.sb).cloned().map_or((None, None, Vec::new()), |(a, b, c)| (Some(a), Some(b), c));
                let level = f.waiters.iter().find(|(w, _)| *w == addr).map(|(_, l)| *l);
                waits_on = Some(WaitOn {
                    kind: "frozen-fs".into(),
                    description: format!(
                        "frozen {} {} ({})",
                        fstype.as_deref().unwrap_or("filesystem"),
                        points.first().map_or("(not mounted in PID 1's namespace)", |p| p.as_str()),
                        device.as_deref().unwrap_or("?")
                    ),
                    address: Some(Hex(f.sb)),
                    fstype,
                    device,
                    mountpoints: points,
                    frozen_level: level,
                    ..Default::default()
                });
            }
            if waits_on.is_none() {
                if let (Some(kind), Ok(Some((own, sp)))) = (stack.as_ref().and_then(lock_kind), t.own_stack(addr)) {
                    if let Some(w) = lock_waited_on(k, kind, addr, &own, sp, &all) {
                        let mmap = if kind == LockKind::RwSem { mmap_lock_owner(k, w.lock, &processes) } else { None };
                        waits_on = Some(describe_lock(&t, &w, mmap));
                    }
                }
            }
            let waits_on = waits_on.unwrap_or_else(|| {
                let wchan = stack.as_ref().and_then(|s| s.wchan.clone());
                WaitOn { kind: "wchan".into(), description: wchan.unwrap_or_else(|| "unknown".into()), ..Default::default() }
            });
            out.tasks.push(HungTask {
                pid: th.pid,
                tgid: th.tgid,
                comm: th.comm.clone(),
                state: th.state,
                task_state: th.task_state,
                address: th.address,
                blocked_for_ns,
                khungtaskd,
                waits_on,
                stack,
            });
        }
    }
    out.warnings.extend(t.lookup_warnings());
    Ok(out)
}

/// check_uninterruptible_tasks() and check_hung_task() as they would judge this task now.
fn khungtaskd_view(state: u32, timeout: Option<u64>, warnings_left: Option<i64>, reported: Option<u64>, since_switch: Option<f64>, counted: Option<u64>, switches: Option<u64>) -> Khungtaskd {
    let v = |verdict: &str, note: String| Khungtaskd { verdict: verdict.into(), note, seconds_since_switch: since_switch, reported_seconds: reported };
    if state & TASK_UNINTERRUPTIBLE == 0 {
        return v("ignored", "not an uninterruptible sleep".into());
    }
    if state & TASK_WAKEKILL != 0 {
        return v("ignored", "killable sleep (TASK_KILLABLE): khungtaskd never reports it".into());
    }
    if state & TASK_NOLOAD != 0 {
        return v("ignored", "idle sleep (TASK_IDLE): khungtaskd never reports it".into());
    }
    if state & TASK_FROZEN != 0 {
        return v("ignored", "frozen by the freezer".into());
    }
    if let Some(secs) = reported {
        return v("reported", format!("the log has its report (blocked for more than {secs} seconds)"));
    }
    let Some(timeout) = timeout else {
        return v("not-yet", "khungtaskd's settings are unreadable".into());
    };
    if timeout == 0 {
        return v("disabled", "hung_task_timeout_secs is 0: khungtaskd does not check".into());
    }
    if switches == Some(0) {
        return v("ignored", "it never ran: khungtaskd skips tasks without context switches".into());
    }
    if counted.is_some() && switches.is_some() && counted != switches {
        return v("not-yet", "khungtaskd has not checked it since it last ran; it will at its next check".into());
    }
    match since_switch {
        Some(s) if s >= timeout as f64 => {
            if warnings_left == Some(0) {
                v("would-report", format!("blocked {s:.0} s ≥ the {timeout} s timeout, but hung_task_warnings is 0: no more reports are printed"))
            } else {
                v("would-report", format!("blocked {s:.0} s ≥ the {timeout} s timeout: reported at khungtaskd's next check"))
            }
        }
        Some(s) => v("not-yet", format!("blocked {s:.0} s of the {timeout} s timeout")),
        None => v("not-yet", "CONFIG_DETECT_HUNG_TASK fields are unreadable".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hz_is_recognised_from_jiffies_and_the_clock() {
        // HZ 250: INITIAL_JIFFIES = 2^32 − 75000; after 20 s, 5000 more
        let initial = (1u64 << 32) - 75_000;
        assert_eq!(hz_of(initial + 5_000, 20_000_000_000), Some(250));
        assert_eq!(hz_of(((1u64 << 32) - 300_000) + 20_000, 20_000_000_000), Some(1000));
        assert_eq!(hz_of(initial + 5_000, 1_000_000_000), None, "too early to tell");
        assert_eq!(hz_of(12345, 20_000_000_000), None);
    }

    #[test]
    fn khungtaskd_judges_like_check_hung_task() {
        let d = TASK_UNINTERRUPTIBLE;
        assert_eq!(khungtaskd_view(d | TASK_WAKEKILL, Some(3), Some(10), None, Some(9.0), Some(1), Some(1)).verdict, "ignored");
        assert_eq!(khungtaskd_view(d | TASK_NOLOAD, Some(3), Some(10), None, Some(9.0), Some(1), Some(1)).verdict, "ignored");
        assert_eq!(khungtaskd_view(d, Some(3), Some(10), Some(3), Some(9.0), Some(1), Some(1)).verdict, "reported");
        assert_eq!(khungtaskd_view(d, Some(0), Some(10), None, Some(9.0), Some(1), Some(1)).verdict, "disabled");
        assert_eq!(khungtaskd_view(d, Some(3), Some(10), None, Some(9.0), Some(1), Some(2)).verdict, "not-yet");
        assert_eq!(khungtaskd_view(d, Some(3), Some(10), None, Some(2.0), Some(1), Some(1)).verdict, "not-yet");
        let w = khungtaskd_view(d, Some(3), Some(0), None, Some(9.0), Some(1), Some(1));
        assert_eq!(w.verdict, "would-report");
        assert!(w.note.contains("hung_task_warnings is 0"));
    }
}
