//! Uptime, boot time, load averages and identity as fs/proc/uptime.c, fs/proc/loadavg.c and kernel/utsname
//! show them: CLOCK_BOOTTIME from tk_core.timekeeper (kernel/time/timekeeping.c), avenrun (kernel/sched/loadavg.c).

use schemars::JsonSchema;
use serde::Serialize;

use crate::kernel::Kernel;
use crate::records::{I64, U64};
use crate::walkers::{Context, NoOptions};
use crate::objects::{online_cpus, per_cpu_ptr};
use crate::{Error, Result};

/// include/linux/sched/loadavg.h
const FSHIFT: u32 = 11;
const FIXED_1: u64 = 1 << FSHIFT;
const NEW_UTS_LEN: u64 = 65;

crate::walker! {
    /// Uptime and boot time (CLOCK_BOOTTIME from the timekeeper), load averages, runnable and total
    /// tasks, online CPUs and the kernel's utsname: /proc/uptime, /proc/loadavg and uname in one.
    name: "uptime",
    options: NoOptions,
    record: Uptime,
    run: walk,
}

fn walk(cx: &Context, _: &NoOptions) -> Result<Uptime> {
    uptime(cx.kernel)
}

#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Uptime {
    /// CLOCK_BOOTTIME at the last timekeeping update (what /proc/uptime printed then), ns, and in seconds.
    pub boottime_ns: U64,
    pub uptime_seconds: f64,
    /// CLOCK_MONOTONIC at the same instant (boottime minus time spent suspended), ns.
    pub monotonic_ns: U64,
    /// CLOCK_REALTIME at the same instant, ns since the epoch.
    pub realtime_ns: I64,
    /// Wall-clock time of boot: realtime − boottime, ns since the epoch.
    pub boot_wall_ns: I64,
    /// avenrun[] raw fixed-point values, and as /proc/loadavg prints them ("0.42").
    pub avenrun: [u64; 3],
    pub loadavg: [String; 3],
    /// nr_running() over online CPUs, and nr_threads: the "1/80" of /proc/loadavg.
    pub nr_running: Option<u64>,
    pub nr_threads: Option<u64>,
    /// The last pid handed out in the initial pid namespace.
    pub last_pid: Option<i64>,
    pub online_cpus: Vec<u32>,
    pub jiffies: Option<U64>,
    pub sysname: String,
    pub nodename: String,
    pub release: String,
    pub version: String,
    pub machine: String,
    pub domainname: String,
    pub warnings: Vec<String>,
}

/// fs/proc/loadavg.c: LOAD_INT.LOAD_FRAC of avenrun + FIXED_1/200 (rounding to two decimals).
pub fn loadavg_text(avenrun: u64) -> String {
    let x = avenrun.wrapping_add(FIXED_1 / 200);
    let int = x >> FSHIFT;
    let frac = ((x & (FIXED_1 - 1)) * 100) >> FSHIFT;
    format!("{int}.{frac:02}")
}

pub fn uptime(k: &Kernel) -> Result<Uptime> {
    let mut u = Uptime::default();
    let mut warn = |what: &str, e: Error| u.warnings.push(format!("{what}: {e}"));
    let clocks = timekeeper(k);
    let online = online_cpus(k);
    let avenrun = k.symbol("avenrun");
    let nr_running = online.as_ref().map_err(Clone::clone).and_then(|c| nr_running(k, c));
    let nr_threads = k.symbol("nr_threads").and_then(|a| k.read_u32(a)).map(|v| v as u64);
    let last_pid = last_pid(k);
    let jiffies = k.symbol("jiffies_64").and_then(|a| k.read_u64(a));
    let uts = utsname(k);
    match nr_running {
        Ok(v) => u.nr_running = Some(v),
        Err(e) => warn("nr_running", e),
    }
    match nr_threads {
        Ok(v) => u.nr_threads = Some(v),
        Err(e) => warn("nr_threads", e),
    }
    match last_pid {
        Ok(v) => u.last_pid = Some(v),
        Err(e) => warn("last pid", e),
    }
    match jiffies {
        Ok(v) => u.jiffies = Some(U64(v)),
        Err(e) => warn("jiffies_64", e),
    }
    let (boot, mono, real) = clocks?;
    u.boottime_ns = U64(boot);
    u.uptime_seconds = boot as f64 / 1e9;
    u.monotonic_ns = U64(mono);
    u.realtime_ns = I64(real);
    u.boot_wall_ns = I64(real.saturating_sub(boot as i64));
    let avenrun = avenrun?;
    for i in 0..3 {
        u.avenrun[i] = k.read_u64(avenrun + i as u64 * 8)?;
        u.loadavg[i] = loadavg_text(u.avenrun[i]);
    }
    u.online_cpus = online?;
    let uts = uts?;
    [u.sysname, u.nodename, u.release, u.version, u.machine, u.domainname] = uts;
    Ok(u)
}

/// (boottime, monotonic, realtime) in ns at the last timekeeping update, from tk_core.timekeeper.
fn timekeeper(k: &Kernel) -> Result<(u64, u64, i64)> {
    // tk_core is an anonymous struct { seqcount_raw_spinlock_t seq; struct timekeeper timekeeper; }: the count's
    // `sequence` comes first, and a running guest's timekeeper is read the way ktime_get_boottime() reads it.
    let seq_addr = k.symbol("tk_core")?;
    let seq = k.types.struct_size("seqcount_raw_spinlock").unwrap_or(4);
    let tk = seq_addr + seq.div_ceil(8) * 8;
    let m = |p: &str| k.offset("timekeeper", p);
    let (o_base, o_nsec, o_shift, o_sec, o_boot) = (m("tkr_mono.base")?, m("tkr_mono.xtime_nsec")?, m("tkr_mono.shift")?, m("xtime_sec")?, m("offs_boot")?);
    let (base, xtime_nsec, shift, xtime_sec, offs_boot) = crate::objects::read_seqcount(k, seq_addr, "tk_core.seq", || {
        Ok((k.read_i64(tk + o_base)?, k.read_u64(tk + o_nsec)?, k.read_u32(tk + o_shift)?, k.read_i64(tk + o_sec)?, k.read_i64(tk + o_boot)?))
    })?;
    if shift >= 64 {
        return Err(Error::bad(format!("timekeeper at {tk:#x}: tkr_mono.shift = {shift}")));
    }
    let nsec = (xtime_nsec >> shift) as i64;
    let mono = base.checked_add(nsec).ok_or_else(|| Error::bad("monotonic clock overflows"))?;
    let boot = mono.checked_add(offs_boot).ok_or_else(|| Error::bad("boottime overflows"))?;
    if mono < 0 || boot < 0 {
        return Err(Error::bad(format!("timekeeper at {tk:#x}: negative monotonic time {mono}")));
    }
    let real = xtime_sec.saturating_mul(1_000_000_000).saturating_add(nsec);
    Ok((boot as u64, mono as u64, real))
}

/// kernel/sched/core.c nr_running(): Σ cpu_rq(cpu)->nr_running over online CPUs.
fn nr_running(k: &Kernel, cpus: &[u32]) -> Result<u64> {
    let rq = k.symbol("runqueues")?;
    let m = k.member("rq", "nr_running")?;
    let mut sum = 0u64;
    for &cpu in cpus {
        sum = sum.saturating_add(k.read_member(per_cpu_ptr(k, rq, cpu)?, m)?);
    }
    Ok(sum)
}

/// fs/proc/loadavg.c: idr_get_cursor(&init_pid_ns.idr) − 1.
fn last_pid(k: &Kernel) -> Result<i64> {
    let m = k.member("pid_namespace", "idr.idr_next")?;
    Ok(k.read_member(k.symbol("init_pid_ns")?, m)? as u32 as i64 - 1)
}

/// init_uts_ns.name: sysname, nodename, release, version, machine, domainname.
fn utsname(k: &Kernel) -> Result<[String; 6]> {
    let base = k.symbol("init_uts_ns")? + k.offset("uts_namespace", "name")?;
    let f = |name: &str| -> Result<String> {
        let off = k.offset("new_utsname", name).unwrap_or(match name {
            "sysname" => 0,
            "nodename" => NEW_UTS_LEN,
            "release" => 2 * NEW_UTS_LEN,
            "version" => 3 * NEW_UTS_LEN,
            "machine" => 4 * NEW_UTS_LEN,
            _ => 5 * NEW_UTS_LEN,
        });
        k.read_cstr(base + off, NEW_UTS_LEN as usize)
    };
    Ok([f("sysname")?, f("nodename")?, f("release")?, f("version")?, f("machine")?, f("domainname")?])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loadavg_rounds_like_proc() {
        assert_eq!(loadavg_text(0), "0.00");
        assert_eq!(loadavg_text(FIXED_1), "1.00");
        assert_eq!(loadavg_text(FIXED_1 / 2), "0.50");
        // the +FIXED_1/200 rounding step
        assert_eq!(loadavg_text(2038), "1.00");
        assert_eq!(loadavg_text(2037), "0.99");
    }
}
