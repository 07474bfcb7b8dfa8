//! Per-CPU runqueues as kernel/sched/sched.h keeps them (struct rq, `runqueues`): what each CPU was
//! running, how many tasks it had queued, and its clock; plus `panic_cpu` (kernel/panic.c).

use super::percpu::{cpus_in_mask, per_cpu_ptr};
use crate::kernel::Kernel;
use crate::Result;

/// One CPU's runqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunQueue {
    pub cpu: u32,
    /// In cpu_online_mask (a CPU stopped by a panic leaves it).
    pub online: bool,
    /// rq->curr: the task on the CPU; rq->idle: its idle task.
    pub curr: u64,
    pub idle: u64,
    pub nr_running: u64,
    /// rq->clock (sched_clock ns at its last update) and rq->clock_task (less IRQ and steal time).
    pub clock: u64,
    pub clock_task: u64,
}

impl RunQueue {
    pub fn is_idle(&self) -> bool {
        self.curr == self.idle
    }
}

/// Every possible CPU's runqueue (a CPU that went offline keeps its last state).
pub fn runqueues(k: &Kernel) -> Result<(Vec<RunQueue>, Vec<String>)> {
    let rq = k.symbol("runqueues")?;
    let t = k.struct_type("rq")?;
    let (curr, idle, nr, clock, clock_task) = (t.field("curr")?, t.field("idle")?, t.field("nr_running")?, t.field("clock")?, t.field("clock_task")?);
    let online = cpus_in_mask(k, "__cpu_online_mask").unwrap_or_default();
    let mut out = Vec::new();
    let mut warnings = Vec::new();
    for cpu in cpus_in_mask(k, "__cpu_possible_mask")? {
        let one = || -> Result<RunQueue> {
            let at = per_cpu_ptr(k, rq, cpu)?;
            let r = |m| k.read_member(at, m);
            Ok(RunQueue { cpu, online: online.contains(&cpu), curr: r(curr)?, idle: r(idle)?, nr_running: r(nr)?, clock: r(clock)?, clock_task: r(clock_task)? })
        };
        match one() {
            Ok(q) => out.push(q),
            Err(e) => warnings.push(format!("runqueue of CPU {cpu}: {e}")),
        }
    }
    Ok((out, warnings))
}

/// `panic_cpu` (atomic_t, PANIC_CPU_INVALID −1): the CPU that called panic(), if one did.
pub fn panic_cpu(k: &Kernel) -> Result<Option<u32>> {
    let v = k.read_u32(k.symbol("panic_cpu")?)? as i32;
    Ok(u32::try_from(v).ok())
}
