//! A process's environment as /proc/PID/environ gives it (fs/proc/base.c environ_read): mm->env_start ..
//! env_end read through the process's own page tables, split at NUL bytes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::kernel::Kernel;
use crate::objects::usermem::{nul_separated, user_read_error, UserMemory};
use crate::walkers::tasks::{walk_tasks, TaskOptions};
use crate::walkers::Context;
use crate::{Error, Result};

crate::walker! {
    /// The environment of one process (`pid`) or of every process, read from its memory through its own page
    /// tables, as /proc/PID/environ gives it.
    name: "environ",
    options: EnvironOptions,
    record: EnvironList,
    run: walk,
}

/// Bytes of environment read per process by default (the kernel's own limit is the stack rlimit / 4).
pub const MAX_ENVIRON: u64 = 1 << 20;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct EnvironOptions {
    /// Only this process; every process when absent.
    pub pid: Option<i32>,
    /// Bytes of environment to read at most per process (default 1 MiB).
    pub max_bytes: u64,
}

impl Default for EnvironOptions {
    fn default() -> Self {
        EnvironOptions { pid: None, max_bytes: MAX_ENVIRON }
    }
}

/// One process's environment.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProcessEnviron {
    pub pid: i32,
    pub comm: String,
    /// "KEY=value" strings in the process's order (bytes as Latin-1); None when unreadable.
    pub environ: Option<Vec<String>>,
    /// Bytes between env_start and env_end, and whether max_bytes cut them.
    pub size_bytes: u64,
    pub truncated: bool,
    /// Why the environment could not be read (e.g. a page not resident).
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
pub struct EnvironList {
    /// Processes with an address space (kernel threads and zombies have none).
    pub processes: Vec<ProcessEnviron>,
    pub warnings: Vec<String>,
}

fn walk(cx: &Context, o: &EnvironOptions) -> Result<EnvironList> {
    environ(cx.kernel, o)
}

pub fn environ(k: &Kernel, o: &EnvironOptions) -> Result<EnvironList> {
    let mm_off = k.offset("task_struct", "mm")?;
    let (env_start, env_end) = (k.member("mm_struct", "env_start")?, k.member("mm_struct", "env_end")?);
    let list = walk_tasks(k, &TaskOptions { threads: false, cmdline: false, ..Default::default() })?;
    let mut out = EnvironList { warnings: list.warnings, ..Default::default() };
    let mut found = false;
    for t in list.tasks.iter().filter(|t| o.pid.is_none_or(|p| p == t.pid)) {
        found = true;
        let mm = match k.read_u64(t.address.0.wrapping_add(mm_off)) {
            Ok(0) => continue,
            Ok(mm) => mm,
            Err(e) => {
                out.warnings.push(format!("pid {}: mm unreadable: {e}", t.pid));
                continue;
            }
        };
        let mut p = ProcessEnviron { pid: t.pid, comm: t.comm.clone(), environ: None, size_bytes: 0, truncated: false, error: None };
        let read = || -> Result<(Vec<String>, u64)> {
            let (start, end) = (k.read_member(mm, env_start)?, k.read_member(mm, env_end)?);
            let size = end.saturating_sub(start);
            Ok((nul_separated(&UserMemory::of(k, mm)?.read_range(start, end, o.max_bytes)?), size))
        };
        match read() {
            Ok((env, size)) => {
                p.environ = Some(env);
                p.size_bytes = size;
                p.truncated = size > o.max_bytes;
            }
            Err(e) => p.error = Some(user_read_error(e)),
        }
        out.processes.push(p);
    }
    if let (Some(p), false) = (o.pid, found) {
        return Err(Error::NotFound(format!("no process with pid {p}")));
    }
    Ok(out)
}
