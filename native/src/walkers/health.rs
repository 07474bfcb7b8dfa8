//! Is this kernel well? Per-CPU state (kernel/sched/sched.h struct rq), panic state (kernel/panic.c
//! panic_cpu, tainted_mask; kernel/exit.c oops_count), the panic message and oops RIP as the log has them,
//! OOM kills and hung-task reports in the log, and a summary of the tasks in D (walkers::hung).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::objects::taint::{taint_flags, taint_letters};
use crate::records::Hex;
use crate::walkers::dmesg::{dmesg, LogRecord, LOGLEVEL_ERR};
use crate::walkers::hung::hung_tasks;
use crate::walkers::stacks::{cpu_infos, tracer, CpuInfo};
use crate::walkers::Context;
use crate::Result;

crate::walker! {
    /// Per-CPU and panic state, taint, the panic message and oops RIP from the log, OOM kills, and the
    /// tasks blocked in D: what `triage` and the report's health section stand on.
    name: "health",
    options: HealthOptions,
    record: Health,
    run: walk,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct HealthOptions {
    /// Summarise the tasks in D (default true; `triage` reads them in full from the hung walker instead).
    pub hung: bool,
}

impl Default for HealthOptions {
    fn default() -> Self {
        HealthOptions { hung: true }
    }
}

/// The kernel's panic and taint state.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PanicState {
    /// panic_cpu is set, or the log has "Kernel panic - not syncing".
    pub panicked: bool,
    /// panic_cpu (kernel/panic.c): the CPU that called panic().
    pub panic_cpu: Option<u32>,
    /// "sysrq triggered crash": the text after "Kernel panic - not syncing: " in the log.
    pub message: Option<String>,
    /// oops_count (kernel/exit.c, 6.2+ and 6.1.y): oopses since boot.
    pub oops_count: Option<u64>,
    /// The first oops or BUG line of the log ("Oops: 0002 [#1] …", "BUG: kernel NULL pointer dereference …").
    pub oops: Option<String>,
    /// The first kernel-mode "RIP: 0010:function+0x…/0x…" line of the log.
    pub oops_rip: Option<String>,
    /// tainted_mask, its value as /proc/sys/kernel/tainted prints it, and the letters of its set bits
    /// (taint_flags[]: P proprietary module, D died (oops), W warning, O out-of-tree, E unsigned …).
    pub tainted_mask: Hex,
    pub tainted: u64,
    pub taint_letters: String,
}

/// What the log says about trouble.
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LogFacts {
    pub records: usize,
    /// Records at level err or worse (0–3), and the first of them.
    pub errors: usize,
    pub first_error: Option<LogRecord>,
    /// "Out of memory: Killed process …" (and memory-cgroup OOM) kills.
    pub oom_kills: usize,
    /// khungtaskd's "INFO: task … blocked for more than N seconds" reports.
    pub hung_task_reports: usize,
    /// The panic line's sequence number, to show the log around it.
    pub panic_seq: Option<u64>,
}

/// Tasks in D at a glance (the `hung` command has them in full).
#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HungSummary {
    pub blocked: usize,
    /// khungtaskd has reported them, or would at its next check.
    pub reported: usize,
    pub would_report: usize,
    pub timeout_secs: Option<u64>,
    /// Frozen filesystems ("ext4 /mnt/root") with tasks waiting on them.
    pub frozen_filesystems: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    pub cpus: Vec<CpuInfo>,
    pub panic: PanicState,
    pub log: LogFacts,
    /// Null when not asked for (option `hung: false`).
    pub hung: Option<HungSummary>,
    pub warnings: Vec<String>,
}

fn walk(cx: &Context, o: &HealthOptions) -> Result<Health> {
    let k = cx.kernel;
    let mut out = Health::default();
    let t = tracer(cx, &[], &mut out.warnings)?;
    out.warnings.extend(t.warnings.iter().cloned());
    out.cpus = cpu_infos(&t);
    out.panic.panic_cpu = t.panic_cpu;
    match k.symbol("tainted_mask").and_then(|a| k.read_u64(a)) {
        Ok(mask) => {
            out.panic.tainted_mask = Hex(mask);
            out.panic.tainted = mask;
            out.panic.taint_letters = taint_letters(&taint_flags(k), mask, false);
        }
        Err(e) => out.warnings.push(format!("tainted_mask: {e}")),
    }
    out.panic.oops_count = k.symbol("oops_count").and_then(|a| k.read_u32(a)).ok().map(u64::from);
    match dmesg(k) {
        Ok(log) => read_log(&log.records, &mut out),
        Err(e) => out.warnings.push(format!("kernel log: {e}")),
    }
    out.panic.panicked = out.panic.panic_cpu.is_some() || out.panic.message.is_some();
    match if o.hung { Some(hung_tasks(cx)) } else { None }.transpose() {
        Ok(None) => {}
        Ok(Some(h)) => {
            out.hung = Some(HungSummary {
                blocked: h.tasks.len(),
                reported: h.tasks.iter().filter(|t| t.khungtaskd.verdict == "reported").count(),
                would_report: h.tasks.iter().filter(|t| t.khungtaskd.verdict == "would-report").count(),
                timeout_secs: h.timeout_secs,
                frozen_filesystems: h
                    .frozen
                    .iter()
                    .filter(|f| !f.waiters.is_empty())
                    .map(|f| format!("{} {}", f.fstype.as_deref().unwrap_or("?"), f.mountpoints.first().map_or("?", String::as_str)))
                    .collect(),
            });
            for w in h.warnings {
                if !out.warnings.contains(&w) {
                    out.warnings.push(w);
                }
            }
        }
        Err(e) => out.warnings.push(format!("hung tasks: {e}")),
    }
    Ok(out)
}

/// The log's panic, oops, OOM and hung-task lines.
fn read_log(records: &[LogRecord], out: &mut Health) {
    out.log.records = records.len();
    for r in records {
        let text = r.text.as_str();
        if r.level <= LOGLEVEL_ERR {
            out.log.errors += 1;
            if out.log.first_error.is_none() {
                out.log.first_error = Some(r.clone());
            }
        }
        if let Some(msg) = text.strip_prefix("Kernel panic - not syncing: ") {
            if out.panic.message.is_none() {
                out.panic.message = Some(msg.trim_end().to_string());
                out.log.panic_seq = Some(r.seq);
            }
        }
        if out.panic.oops.is_none() && (text.starts_with("Oops: ") || text.starts_with("BUG: ") || text.starts_with("general protection fault") || text.starts_with("kernel BUG at ")) {
            out.panic.oops = Some(text.to_string());
        }
        if out.panic.oops_rip.is_none() && text.starts_with("RIP: 0010:") {
            out.panic.oops_rip = Some(text.to_string());
        }
        if text.contains("Killed process") && (text.starts_with("Out of memory") || text.starts_with("Memory cgroup out of memory")) {
            out.log.oom_kills += 1;
        }
        if text.starts_with("INFO: task ") && text.contains(" blocked for more than ") {
            out.log.hung_task_reports += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seq: u64, level: u8, text: &str) -> LogRecord {
        LogRecord { seq, ts_usec: seq * 1000, level, facility: 0, flags: 0, caller: "T1".into(), text: text.into(), subsystem: String::new(), device: String::new() }
    }

    #[test]
    fn the_log_gives_the_panic_message_the_oops_rip_and_oom_kills() {
        let mut h = Health::default();
        read_log(
            &[
                rec(1, 6, "Linux version 6.1"),
                rec(2, 3, "Out of memory: Killed process 123 (big) total-vm:1kB"),
                rec(3, 1, "BUG: kernel NULL pointer dereference, address: 0000000000000000"),
                rec(4, 4, "RIP: 0033:0x43dd40"),
                rec(5, 4, "RIP: 0010:sysrq_handle_crash+0x16/0x20"),
                rec(6, 0, "Kernel panic - not syncing: Fatal exception"),
                rec(7, 3, "INFO: task dd:191 blocked for more than 3 seconds."),
            ],
            &mut h,
        );
        assert_eq!(h.panic.message.as_deref(), Some("Fatal exception"));
        assert_eq!(h.log.panic_seq, Some(6));
        assert_eq!(h.panic.oops_rip.as_deref(), Some("RIP: 0010:sysrq_handle_crash+0x16/0x20"));
        assert!(h.panic.oops.as_deref().unwrap().starts_with("BUG: kernel NULL"));
        assert_eq!((h.log.oom_kills, h.log.hung_task_reports, h.log.errors), (1, 1, 4));
        assert_eq!(h.log.first_error.as_ref().unwrap().seq, 2);
    }
}
