//! A task by its pid in the initial pid namespace, as kernel/pid.c find_task_by_pid_ns() finds it: the
//! struct pid in init_pid_ns.idr, then the task on that pid's tasks[PIDTYPE_PID] list.

use super::{hlist_entries, idr_entries};
use crate::kernel::Kernel;
use crate::{Error, Result};

/// The task_struct of `nr` in init_pid_ns.
pub fn find_task_by_pid(k: &Kernel, nr: u64) -> Result<u64> {
    let idr = k.symbol("init_pid_ns")?.wrapping_add(k.offset("pid_namespace", "idr")?);
    // The IDR is walked in index order: at most nr + 1 entries lie at or below nr.
    let bound = usize::try_from(nr).unwrap_or(usize::MAX).saturating_add(1).min(1 << 22);
    let pids = idr_entries(k, idr, bound, "init_pid_ns.idr").items;
    let pid = pids.iter().find(|e| e.index == nr).ok_or_else(|| Error::NotFound(format!("no pid {nr} in init_pid_ns")))?.entry;
    let tasks = k.offset("pid", "tasks")?; // tasks[PIDTYPE_PID] is the first
    let link = k.offset("task_struct", "pid_links")?;
    hlist_entries(k, pid.wrapping_add(tasks), link, 4, "pid->tasks[PIDTYPE_PID]")
        .items
        .first()
        .copied()
        .ok_or_else(|| Error::NotFound(format!("pid {nr} has no task")))
}
