//! Kernel stack traces of tasks without debuginfo, as crash's `bt` and `foreach UN bt` and /proc/PID/stack
//! give them: the ORC unwinder over guest RAM (objects::unwind) from each task's switch frame, or from
//! its CPU's registers (ELF core notes, QMP) when it was running; plus what each CPU was running.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::kernel::Kernel;
use crate::mem::elfcore::UserRegs;
use crate::objects::taskstack::{assign_cpus, StartKind, SymFrame, TaskTrace, Tracer, VcpuRegisters};
use crate::objects::unwind::End;
use crate::records::{Hex, U64};
use crate::walkers::tasks::{walk_tasks, TaskOptions};
use crate::walkers::Context;
use crate::{Error, Result};

crate::walker! {
    /// Kernel stacks of the chosen tasks (ORC unwinding over guest RAM, no debuginfo) and what each CPU
    /// was running: crash's bt, foreach UN bt and /proc/PID/stack.
    name: "stacks",
    options: StackOptions,
    record: StackList,
    run: walk,
}

/// One vCPU's registers as a monitor gave them (QMP `info registers -a`), hex strings.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct VcpuRegisterText {
    /// The vCPU's index (QEMU's CPU#N).
    pub index: u32,
    pub rip: String,
    pub rsp: String,
    pub rbp: String,
    /// The CS selector (its low two bits are the privilege level).
    pub cs: String,
    pub r10: String,
    pub r13: String,
    pub rdi: String,
    pub rdx: String,
    /// GS base and MSR_KERNEL_GS_BASE: tell which kernel CPU this vCPU is.
    pub gs_base: String,
    pub kernel_gs_base: String,
}

impl VcpuRegisterText {
    fn parse(&self) -> Result<VcpuRegisters> {
        let h = |name: &str, s: &str| -> Result<u64> {
            if s.is_empty() {
                return Ok(0);
            }
            u64::from_str_radix(s.trim_start_matches("0x"), 16).map_err(|_| Error::Unsupported(format!("vCPU {} register {name}: {s:?} is not hex", self.index)))
        };
        let regs = UserRegs {
            rip: h("rip", &self.rip)?,
            rsp: h("rsp", &self.rsp)?,
            rbp: h("rbp", &self.rbp)?,
            cs: h("cs", &self.cs)?,
            r10: h("r10", &self.r10)?,
            r13: h("r13", &self.r13)?,
            rdi: h("rdi", &self.rdi)?,
            rdx: h("rdx", &self.rdx)?,
            gs_base: h("gsBase", &self.gs_base)?,
            ..Default::default()
        };
        let kgs = h("kernelGsBase", &self.kernel_gs_base)?;
        Ok(VcpuRegisters { index: self.index, gs_base: Some(regs.gs_base), kernel_gs_base: (kgs != 0).then_some(kgs), regs, source: "QMP".into() })
    }
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct StackOptions {
    /// Tasks to trace, by pid (thread id).
    pub pids: Vec<i32>,
    /// Tasks in these /proc states, e.g. "D" (crash's foreach UN bt).
    pub state: Option<String>,
    /// Every task, every thread.
    pub all: bool,
    /// What each CPU was running (rq->curr), idle tasks included. With no selection at all: the CPUs'
    /// tasks and every task in D.
    pub cpu: bool,
    /// CPU registers from a live monitor (QMP), used instead of the RAM file's (an ELF core's notes).
    pub registers: Vec<VcpuRegisterText>,
}

/// One frame of a trace.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StackFrame {
    pub address: Hex,
    /// The function (kallsyms or the module's own symbols); null outside every known symbol.
    pub function: Option<String>,
    pub offset: u64,
    pub size: u64,
    /// The module it lies in; null for vmlinux.
    pub module: Option<String>,
    /// Every step from the start to this frame followed ORC: no guess, no scan.
    pub reliable: bool,
    /// start (the first frame), orc (a return address ORC pointed to), regs (the interrupted IP of an
    /// exception or interrupt frame), scan (a return address found by scanning the stack).
    pub via: String,
    /// The stack it lies on: task, IRQ, NMI, #DF …
    pub stack: String,
    /// The frame's stack pointer.
    pub sp: Hex,
    /// In .sched.text or .spinlock.text: /proc/PID/stack and wchan leave such frames out.
    pub scheduler: bool,
}

impl StackFrame {
    pub fn from_sym(f: &SymFrame) -> StackFrame {
        let s = f.symbol.as_ref();
        StackFrame {
            address: Hex(f.frame.ip),
            function: s.map(|s| s.name.clone()),
            offset: s.map_or(0, |s| s.offset),
            size: s.map_or(0, |s| s.size),
            module: s.and_then(|s| s.module.clone()),
            reliable: f.frame.reliable,
            via: f.frame.via.as_str().into(),
            stack: f.stack_name.clone(),
            sp: Hex(f.frame.sp),
            scheduler: f.scheduler,
        }
    }
}

/// One task's kernel stack.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskStack {
    /// Thread id (what /proc/PID/task lists) and its process.
    pub pid: i32,
    pub tgid: i32,
    pub comm: String,
    pub state: char,
    /// Kernel address of the task_struct.
    pub address: Hex,
    /// The CPU it was running on at the snapshot.
    pub on_cpu: Option<u32>,
    /// It is on the CPU that called panic().
    pub panicking: bool,
    /// Where the trace starts: "switched out (thread.sp)", "CPU registers (ELF core|QMP|crash_notes)",
    /// "stack scan (no registers)", "none".
    pub start: String,
    /// Innermost first.
    pub frames: Vec<StackFrame>,
    /// Why it ends: "returns to user mode at 0x…", "end of stack", "unwind error: …", or null (no trace).
    pub end: Option<String>,
    /// Where it returns to in user mode.
    pub user_ip: Option<Hex>,
    /// /proc/PID/wchan: the first frame outside the scheduler, for a task that is not running.
    pub wchan: Option<String>,
    /// Why there is no trace, or how it was found.
    pub note: Option<String>,
    /// Where ORC unwinding failed and a scan of the stack took over (the frames after are unreliable).
    pub recovered: Vec<String>,
    /// sched_info.last_arrival: when it last got a CPU, on the runqueue clock (ns).
    pub last_arrival_ns: Option<U64>,
}

impl TaskStack {
    pub fn from_trace(t: &TaskTrace, last_arrival: Option<u64>) -> TaskStack {
        let user_ip = match &t.end {
            Some(End::UserMode { ip, .. }) => Some(Hex(*ip)),
            _ => None,
        };
        TaskStack {
            pid: t.task.pid,
            tgid: t.task.tgid,
            comm: t.task.comm.clone(),
            state: t.task.state,
            address: Hex(t.task.address),
            on_cpu: t.on_cpu,
            panicking: t.panicking,
            start: t.start.describe(),
            frames: t.frames.iter().map(StackFrame::from_sym).collect(),
            end: t.end.as_ref().map(End::describe),
            user_ip,
            wchan: t.wchan().map(|s| s.name.clone()),
            note: t.note.clone(),
            recovered: t.recovered.clone(),
            last_arrival_ns: last_arrival.map(U64),
        }
    }
}

/// What one CPU was doing.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CpuInfo {
    pub cpu: u32,
    /// In cpu_online_mask (a panic takes the other CPUs out of it).
    pub online: bool,
    /// It called panic() (panic_cpu).
    pub panicking: bool,
    /// rq->curr: the task it was running, and whether that is its idle task.
    pub task: Hex,
    pub pid: Option<i32>,
    pub comm: Option<String>,
    pub idle: bool,
    /// rq->nr_running: tasks on its runqueue, the running one included.
    pub nr_running: u64,
    /// rq->clock: its scheduler clock at its last update, ns.
    pub clock_ns: U64,
    /// Where its registers came from (ELF core, kdump, QMP, crash_notes), and its IP and privilege there.
    pub registers: Option<String>,
    pub ip: Option<Hex>,
    pub user_mode: Option<bool>,
}

/// The ORC data the unwinder used.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrcInfo {
    /// "before 6.3 (end bit)", "6.3 (signal bit)", "6.4+ (signal bit, .orc_header)".
    pub format: String,
    /// What told us: the .orc_header, the release, the entries' statistics.
    pub evidence: String,
    /// The .orc_header hash (6.4+).
    pub header: Option<String>,
    pub vmlinux_entries: usize,
    pub module_tables: usize,
}

#[derive(Debug, Clone, Default, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StackList {
    pub orc: Option<OrcInfo>,
    /// THREAD_SIZE: each task's kernel stack, bytes.
    pub thread_size: Option<u64>,
    pub cpus: Vec<CpuInfo>,
    pub tasks: Vec<TaskStack>,
    pub warnings: Vec<String>,
}

/// The CPU registers this RAM file carries (an ELF core's or a kdump's notes) or the options give (QMP).
pub fn tracer<'k>(cx: &Context<'k>, given: &[VcpuRegisterText], warnings: &mut Vec<String>) -> Result<Tracer<'k>> {
    let vcpus: Vec<VcpuRegisters> = if given.is_empty() {
        let source = if cx.report.format.starts_with("kdump") { "kdump" } else { "ELF core" };
        cx.report.vcpu_registers.iter().map(|p| VcpuRegisters::from_prstatus(p, source)).collect()
    } else {
        given.iter().map(VcpuRegisterText::parse).collect::<Result<_>>()?
    };
    let regs = assign_cpus(cx.kernel, &vcpus, warnings);
    Ok(Tracer::new(cx.kernel, regs))
}

/// Each CPU's state from the runqueues and the registers.
pub fn cpu_infos(t: &Tracer) -> Vec<CpuInfo> {
    t.runqueues
        .iter()
        .map(|q| {
            let who = t.ident(q.curr).ok();
            let regs = t.registers.iter().find(|r| r.cpu == q.cpu);
            CpuInfo {
                cpu: q.cpu,
                online: q.online,
                panicking: t.panic_cpu == Some(q.cpu),
                task: Hex(q.curr),
                pid: who.as_ref().map(|w| w.pid),
                comm: who.map(|w| w.comm),
                idle: q.is_idle(),
                nr_running: q.nr_running,
                clock_ns: U64(q.clock),
                registers: regs.map(|r| r.source.clone()),
                ip: regs.map(|r| Hex(r.regs.ip)),
                user_mode: regs.map(|r| r.regs.user_mode()),
            }
        })
        .collect()
}

pub fn orc_info(t: &Tracer) -> Option<OrcInfo> {
    t.orc().map(|o| OrcInfo {
        format: o.format.name.clone(),
        evidence: o.format.evidence.clone(),
        header: o.format.header.clone(),
        vmlinux_entries: o.vmlinux_entries(),
        module_tables: o.module_tables(),
    })
}

/// sched_info.last_arrival of a task (CONFIG_SCHED_INFO), ns on its runqueue's clock.
pub fn last_arrival(k: &Kernel, task: u64) -> Option<u64> {
    let m = k.types.member("task_struct", "sched_info.last_arrival")?;
    k.read_member(task, m).ok()
}

/// Trace one task into its record, or a warning.
pub fn task_stack(t: &Tracer, addr: u64, warnings: &mut Vec<String>) -> Option<TaskStack> {
    match t.trace(addr) {
        Ok(tr) => {
            if let Some(End::Error(e)) = &tr.end {
                warnings.push(format!("{} ({}): partial trace: {e}", tr.task.comm, tr.task.pid));
            }
            for why in &tr.recovered {
                warnings.push(format!("{} ({}): partial trace: {why}; the frames after it were found by scanning the stack", tr.task.comm, tr.task.pid));
            }
            Some(TaskStack::from_trace(&tr, last_arrival(t.kernel(), addr)))
        }
        Err(e) => {
            warnings.push(format!("task at {addr:#x}: {e}"));
            None
        }
    }
}

fn walk(cx: &Context, o: &StackOptions) -> Result<StackList> {
    let k = cx.kernel;
    let mut out = StackList::default();
    let t = tracer(cx, &o.registers, &mut out.warnings)?;
    out.warnings.extend(t.warnings.iter().cloned());
    out.orc = orc_info(&t);
    out.thread_size = t.layout().map(|l| l.thread_size());
    out.cpus = cpu_infos(&t);
    let nothing_chosen = o.pids.is_empty() && o.state.is_none() && !o.all && !o.cpu;
    let states: Vec<char> = match &o.state {
        Some(s) => s.chars().collect(),
        None if nothing_chosen => vec!['D'],
        None => Vec::new(),
    };
    let mut chosen: Vec<u64> = Vec::new();
    if o.cpu || nothing_chosen {
        chosen.extend(t.runqueues.iter().map(|q| q.curr));
    }
    let list = walk_tasks(k, &TaskOptions { threads: true, cmdline: false, ..Default::default() })?;
    out.warnings.extend(list.warnings);
    let mut missing: Vec<i32> = o.pids.clone();
    for p in &list.tasks {
        for th in &p.threads {
            let wanted = o.all || o.pids.contains(&th.pid) || states.contains(&th.state);
            missing.retain(|&m| m != th.pid);
            if wanted && !chosen.contains(&th.address.0) {
                chosen.push(th.address.0);
            }
        }
    }
    for m in missing {
        out.warnings.push(format!("no task with pid {m}"));
    }
    for addr in chosen {
        if let Some(s) = task_stack(&t, addr, &mut out.warnings) {
            out.tasks.push(s);
        }
    }
    out.warnings.extend(t.lookup_warnings());
    Ok(out)
}

/// StartKind is used by callers that only need to know whether a trace exists.
pub fn traced(t: &TaskStack) -> bool {
    t.start != StartKind::None.describe()
}
