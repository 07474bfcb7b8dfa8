//! CPU time per CPU as the cpu lines of /proc/stat count it (fs/proc/stat.c show_stat, kernel/sched/cputime.c):
//! kernel_cpustat.cpustat[] of each possible CPU, in ns and in USER_HZ ticks.

use schemars::JsonSchema;
use serde::Serialize;

use crate::kernel::Kernel;
use crate::objects::{per_cpu_ptr, possible_cpus};
use crate::records::U64;
use crate::walkers::{Context, NoOptions};
use crate::{Error, Result};

crate::walker! {
    /// CPU time per CPU and mode (user, nice, system, idle, iowait, irq, softirq, steal, guest, guest_nice) from
    /// each CPU's kernel_cpustat, as /proc/stat's cpu lines; `busySeconds` is what the guest's CPUs spent not idle.
    name: "cpustat",
    options: NoOptions,
    record: CpuStat,
    run: walk,
}

fn walk(cx: &Context, _: &NoOptions) -> Result<CpuStat> {
    cpustat(cx.kernel)
}

/// include/linux/kernel_stat.h enum cpu_usage_stat, in /proc/stat's column order.
const MODES: [(&str, &str); 10] = [
    ("user", "CPUTIME_USER"),
    ("nice", "CPUTIME_NICE"),
    ("system", "CPUTIME_SYSTEM"),
    ("idle", "CPUTIME_IDLE"),
    ("iowait", "CPUTIME_IOWAIT"),
    ("irq", "CPUTIME_IRQ"),
    ("softirq", "CPUTIME_SOFTIRQ"),
    ("steal", "CPUTIME_STEAL"),
    ("guest", "CPUTIME_GUEST"),
    ("guest_nice", "CPUTIME_GUEST_NICE"),
];

/// USER_HZ (include/asm-generic/param.h).
const NS_PER_TICK: u64 = 10_000_000;

/// One CPU's times.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CpuTimes {
    pub cpu: u32,
    /// ns per mode, in MODES order: user, nice, system, idle, iowait, irq, softirq, steal, guest, guest_nice.
    pub ns: Vec<U64>,
    /// The same in USER_HZ ticks, as /proc/stat prints them (nsec_to_clock_t).
    pub ticks: Vec<u64>,
}

#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CpuStat {
    /// The mode names, the order of every `ns` and `ticks` list.
    pub modes: Vec<String>,
    /// Every possible CPU. Idle and iowait are the tick-accounted kernel_cpustat values: /proc/stat shows NOHZ idle
    /// time (tick_sched) instead, so on a tickless idle CPU they run behind it.
    pub cpus: Vec<CpuTimes>,
    /// Σ user + nice + system + irq + softirq + steal over every CPU (guest time is inside user), seconds.
    pub busy_seconds: f64,
    pub warnings: Vec<String>,
}

pub fn cpustat(k: &Kernel) -> Result<CpuStat> {
    let base = k.symbol("kernel_cpustat")?;
    let array = k.member("kernel_cpustat", "cpustat")?;
    let count = array.array_len.unwrap_or(0);
    let mut idx = Vec::with_capacity(MODES.len());
    for (_, e) in MODES {
        let v = k.enumerator(e)?;
        let i = u64::try_from(v).ok().filter(|&i| i < count).ok_or_else(|| Error::bad(format!("{e} = {v} outside kernel_cpustat.cpustat[{count}]")))?;
        idx.push(i);
    }
    let mut out = CpuStat { modes: MODES.iter().map(|(m, _)| m.to_string()).collect(), ..Default::default() };
    let mut busy_ns = 0u64;
    for cpu in possible_cpus(k)? {
        let at = per_cpu_ptr(k, base, cpu)?.wrapping_add(array.offset);
        let mut t = CpuTimes { cpu, ..Default::default() };
        for (m, &i) in idx.iter().enumerate() {
            let ns = k.read_u64(at.wrapping_add(i * 8))?;
            if !matches!(MODES[m].0, "idle" | "iowait" | "guest" | "guest_nice") {
                busy_ns = busy_ns.saturating_add(ns);
            }
            t.ns.push(U64(ns));
            t.ticks.push(ns / NS_PER_TICK);
        }
        out.cpus.push(t);
    }
    out.busy_seconds = busy_ns as f64 / 1e9;
    Ok(out)
}
