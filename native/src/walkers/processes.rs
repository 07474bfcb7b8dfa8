//! A summary of the task list for reports: counts by /proc state and the top processes by RSS and by CPU
//! time, as `top`/`ps --sort` would rank them.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::walkers::tasks::{walk_tasks, Task, TaskOptions};
use crate::walkers::Context;
use crate::Result;

crate::walker! {
    /// Process and thread counts, processes per state, and the top `top` processes by RSS and by CPU time.
    name: "processes",
    options: ProcessesOptions,
    record: ProcessSummary,
    run: walk,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ProcessesOptions {
    /// How many processes in each top list (default 5).
    pub top: usize,
}

impl Default for ProcessesOptions {
    fn default() -> Self {
        ProcessesOptions { top: 5 }
    }
}

/// One process in a top list.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProcessRow {
    pub pid: i32,
    pub ppid: i32,
    pub comm: String,
    pub state: char,
    pub uid: u32,
    /// Resident memory; null without an mm.
    pub rss_bytes: Option<u64>,
    /// utime + stime of the whole group, seconds.
    pub cpu_seconds: f64,
    pub threads: i32,
    /// argv joined by spaces; null for kernel threads and processes without one.
    pub cmdline: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProcessSummary {
    pub processes: usize,
    /// Threads of all processes (Σ nr_threads).
    pub threads: u64,
    /// Processes per /proc state letter.
    pub by_state: BTreeMap<char, usize>,
    pub top_rss: Vec<ProcessRow>,
    pub top_cpu: Vec<ProcessRow>,
    pub warnings: Vec<String>,
}

fn row(t: &Task) -> ProcessRow {
    let argv = t.cmdline.as_ref().filter(|a| !t.kernel_thread && !a.is_empty() && a.iter().any(|s| !s.is_empty()));
    ProcessRow {
        pid: t.pid,
        ppid: t.ppid,
        comm: t.comm.clone(),
        state: t.state,
        uid: t.uid,
        rss_bytes: t.rss.map(|r| r.bytes),
        cpu_seconds: (t.utime_ns.0.saturating_add(t.stime_ns.0)) as f64 / 1e9,
        threads: t.nr_threads,
        cmdline: argv.map(|a| a.join(" ")),
    }
}

fn walk(cx: &Context, o: &ProcessesOptions) -> Result<ProcessSummary> {
    let list = walk_tasks(cx.kernel, &TaskOptions::default())?;
    let mut s = ProcessSummary { processes: list.tasks.len(), warnings: list.warnings, ..Default::default() };
    for t in &list.tasks {
        *s.by_state.entry(t.state).or_default() += 1;
        s.threads = s.threads.saturating_add(t.nr_threads.max(1) as u64);
    }
    let rows: Vec<ProcessRow> = list.tasks.iter().map(row).collect();
    let mut by_rss = rows.clone();
    by_rss.sort_by(|a, b| b.rss_bytes.unwrap_or(0).cmp(&a.rss_bytes.unwrap_or(0)).then(a.pid.cmp(&b.pid)));
    by_rss.retain(|r| r.rss_bytes.is_some());
    by_rss.truncate(o.top);
    let mut by_cpu = rows;
    by_cpu.sort_by(|a, b| b.cpu_seconds.total_cmp(&a.cpu_seconds).then(a.pid.cmp(&b.pid)));
    by_cpu.truncate(o.top);
    s.top_rss = by_rss;
    s.top_cpu = by_cpu;
    Ok(s)
}
