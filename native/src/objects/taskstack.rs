//! A task's kernel stack trace as /proc/PID/stack (kernel/stacktrace.c stack_trace_save_tsk) and crash's
//! `bt` give it: where the task's stacks are (include/linux/sched/task_stack.h; arch/x86/kernel/irq_64.c
//! hardirq_stack_ptr; cpu_entry_area's exception stacks), where unwinding starts (a switched-out task's
//! struct inactive_task_frame at thread.sp, a CPU's registers, or a scan of a running task's stack), and
//! each frame symbolised as %pB prints it and marked as in_sched_functions() sees it (6.1, 6.12).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::orc::{orc, Orc};
use super::percpu::{per_cpu_ptr, possible_cpus};
use super::runqueue::{panic_cpu, runqueues, RunQueue};
use super::symbolize::{symbol_extent, symbolize, Symbolized};
use super::unwind::{End, Frame, PtRegsLayout, Registers, Stack, Start, Trace, Unwinder};
use super::{latin1, Object};
use crate::kernel::{Kernel, Member};
use crate::mem::elfcore::{PrStatus, UserRegs};
use crate::walkers::tasks::state_letter;
use crate::{Error, Result};

/// THREAD_SIZE on x86-64 without KASAN (16 KiB), when __start_init_task/__end_init_task do not say.
const DEFAULT_THREAD_SIZE: u64 = 16 * 1024;
/// IRQ_STACK_SIZE likewise, when struct irq_stack is not in the types.
const DEFAULT_IRQ_STACK_SIZE: u64 = 16 * 1024;
/// Stacks bigger than this are not kernel stacks.
const MAX_STACK_SIZE: u64 = 1 << 20;
/// Members of struct cea_exception_stacks (arch/x86/include/asm/cpu_entry_area.h) and what crash calls them.
const EXCEPTION_STACKS: [(&str, &str); 6] = [("DF_stack", "#DF"), ("NMI_stack", "NMI"), ("DB_stack", "#DB"), ("MCE_stack", "#MC"), ("VC_stack", "#VC"), ("VC2_stack", "#VC2")];
/// TASK_COMM_LEN.
const TASK_COMM_LEN: u64 = 16;

/// Where registers for a CPU came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuRegisters {
    pub cpu: u32,
    pub regs: Registers,
    /// "ELF core", "kdump", "QMP", "crash_notes".
    pub source: String,
}

impl CpuRegisters {
    pub fn from_user_regs(cpu: u32, r: &UserRegs, source: &str) -> CpuRegisters {
        CpuRegisters {
            cpu,
            regs: Registers { ip: r.rip, sp: r.rsp, bp: r.rbp, cs: r.cs, r10: r.r10, r13: r.r13, di: r.rdi, dx: r.rdx },
            source: source.into(),
        }
    }
}

/// A vCPU's registers before we know which kernel CPU it is: its index and GS base (in kernel mode, the
/// CPU's per-CPU offset).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VcpuRegisters {
    pub index: u32,
    pub gs_base: Option<u64>,
    /// MSR_KERNEL_GS_BASE: the per-CPU offset while the vCPU runs user code (swapgs).
    pub kernel_gs_base: Option<u64>,
    pub regs: UserRegs,
    pub source: String,
}

impl VcpuRegisters {
    /// QEMU's NT_PRSTATUS notes (pr_pid is the vCPU index + 1), from the dump that carried them: "ELF core" or
    /// "kdump" (QEMU copies the same notes into a kdump's header).
    pub fn from_prstatus(p: &PrStatus, source: &str) -> VcpuRegisters {
        VcpuRegisters { index: p.pr_pid.saturating_sub(1), gs_base: Some(p.regs.gs_base), kernel_gs_base: None, regs: p.regs, source: source.into() }
    }
}

/// Give each vCPU its kernel CPU number: the CPU whose per-CPU offset is the vCPU's GS base, else the
/// vCPU index (QEMU numbers vCPUs as Linux numbers CPUs on x86).
pub fn assign_cpus(k: &Kernel, vcpus: &[VcpuRegisters], warnings: &mut Vec<String>) -> Vec<CpuRegisters> {
    let cpus = possible_cpus(k).unwrap_or_default();
    let by_offset: HashMap<u64, u32> = cpus.iter().filter_map(|&c| per_cpu_ptr(k, 0, c).ok().filter(|&o| o != 0).map(|o| (o, c))).collect();
    let mut out: Vec<CpuRegisters> = Vec::new();
    for v in vcpus {
        let by_gs = [v.gs_base, v.kernel_gs_base].into_iter().flatten().find_map(|gs| by_offset.get(&gs).copied());
        let cpu = by_gs.unwrap_or(v.index);
        if !cpus.contains(&cpu) {
            warnings.push(format!("vCPU {} ({}) matches no possible CPU of the guest", v.index, v.source));
            continue;
        }
        if out.len() >= cpus.len() || out.iter().any(|c| c.cpu == cpu) {
            warnings.push(format!("two vCPUs claim CPU {cpu} ({}); keeping the first", v.source));
            continue;
        }
        out.push(CpuRegisters::from_user_regs(cpu, &v.regs, &v.source));
    }
    out
}

/// include/linux/kexec.h crash_notes: per CPU, an ELF note "CORE"/NT_PRSTATUS that crash_save_cpu()
/// fills when the kernel panics with a crash kernel loaded. Empty notes are skipped.
pub fn crash_notes(k: &Kernel) -> Vec<CpuRegisters> {
    let Ok(notes) = k.symbol("crash_notes").and_then(|s| k.read_u64(s)) else { return Vec::new() };
    if notes == 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    for cpu in possible_cpus(k).unwrap_or_default() {
        let Ok(at) = per_cpu_ptr(k, notes, cpu) else { continue };
        let mut b = [0u8; 12 + 8 + 336];
        if k.read(at, &mut b).is_err() {
            continue;
        }
        // Elf64_Nhdr { namesz 5, descsz, type NT_PRSTATUS 1 } "CORE\0" padded to 8
        let (namesz, descsz, ty) = (crate::bytes::le_u32(&b, 0), crate::bytes::le_u32(&b, 4), crate::bytes::le_u32(&b, 8));
        if namesz != Some(5) || ty != Some(1) || descsz.is_none_or(|d| d < 336) || &b[12..17] != b"CORE\0" {
            continue;
        }
        if let Some((_, regs)) = UserRegs::from_prstatus(&b[20..]) {
            if regs.rip != 0 {
                out.push(CpuRegisters::from_user_regs(cpu, &regs, "crash_notes"));
            }
        }
    }
    out
}

/// Offsets and facts resolved once per kernel.
pub struct StackLayout {
    pt_regs: PtRegsLayout,
    thread_size: u64,
    irq_stack_size: u64,
    task_size: u64,
    stack: Member,
    thread_sp: Member,
    pid: Member,
    tgid: Member,
    comm: u64,
    state: Member,
    exit_state: Member,
    frame_size: u64,
    frame_bp: u64,
    frame_ret: u64,
    /// ret_from_fork (and ret_from_fork_asm, 6.5+): a new task's first "return address" is exact.
    ret_from_fork: Vec<u64>,
    /// in_sched_functions(): [__sched_text_start, __sched_text_end) and [__lock_text_start, __lock_text_end).
    sched_text: Vec<(u64, u64)>,
}

impl StackLayout {
    fn resolve(k: &Kernel) -> Result<StackLayout> {
        let r = |p: &str| k.offset("pt_regs", p);
        let t = k.struct_type("task_struct")?;
        let f = k.struct_type("inactive_task_frame")?;
        let range = |a: &str, b: &str| -> Option<(u64, u64)> {
            let (x, y) = (k.symbol(a).ok()?, k.symbol(b).ok()?);
            (y > x).then_some((x, y))
        };
        let thread_size = range("__start_init_task", "__end_init_task").map_or(DEFAULT_THREAD_SIZE, |(a, b)| b - a);
        if thread_size == 0 || thread_size > MAX_STACK_SIZE || thread_size % 4096 != 0 {
            return Err(Error::bad(format!("THREAD_SIZE {thread_size:#x} (from __start_init_task/__end_init_task) is not plausible")));
        }
        let irq_stack_size = k.size_of("irq_stack").unwrap_or(DEFAULT_IRQ_STACK_SIZE);
        Ok(StackLayout {
            pt_regs: PtRegsLayout { size: k.size_of("pt_regs")?, ip: r("ip")?, sp: r("sp")?, bp: r("bp")?, cs: r("cs")?, r10: r("r10")?, r13: r("r13")?, di: r("di")?, dx: r("dx")? },
            thread_size,
            irq_stack_size: if irq_stack_size == 0 || irq_stack_size > MAX_STACK_SIZE { DEFAULT_IRQ_STACK_SIZE } else { irq_stack_size },
            task_size: t.size,
            stack: t.field("stack")?,
            thread_sp: t.field("thread.sp")?,
            pid: t.field("pid")?,
            tgid: t.field("tgid")?,
            comm: t.field("comm")?.offset,
            // task_struct.__state since 5.14, .state before
            state: t.field_any(&["__state", "state"])?,
            exit_state: t.field("exit_state")?,
            frame_size: f.size,
            frame_bp: f.field("bp")?.offset,
            frame_ret: f.field("ret_addr")?.offset,
            ret_from_fork: ["ret_from_fork", "ret_from_fork_asm"].iter().filter_map(|s| k.symbol(s).ok()).collect(),
            sched_text: [("__sched_text_start", "__sched_text_end"), ("__lock_text_start", "__lock_text_end")].iter().filter_map(|(a, b)| range(a, b)).collect(),
        })
    }

    pub fn thread_size(&self) -> u64 {
        self.thread_size
    }

    /// in_sched_functions(): the frames /proc/PID/stack and wchan leave out.
    pub fn in_sched_functions(&self, addr: u64) -> bool {
        self.sched_text.iter().any(|&(a, b)| addr >= a && addr < b)
    }
}

/// The stack layout of this kernel, resolved once.
pub fn stack_layout(k: &Kernel) -> Arc<std::result::Result<StackLayout, Error>> {
    k.memo(|| StackLayout::resolve(k))
}

/// Who a task is: enough to print a trace's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskIdent {
    pub address: u64,
    pub pid: i32,
    pub tgid: i32,
    pub comm: String,
    pub state: char,
    pub task_state: u32,
    pub exit_state: u32,
}

/// One frame, symbolised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymFrame {
    pub frame: Frame,
    pub symbol: Option<Symbolized>,
    /// In .sched.text or .spinlock.text (in_sched_functions).
    pub scheduler: bool,
    pub stack_name: String,
}

/// How a trace started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartKind {
    /// From the task's saved switch frame (it was not on a CPU).
    SwitchedOut,
    /// From a CPU's registers ("ELF core", "kdump", "QMP", "crash_notes").
    Registers(String),
    /// Found by scanning the stack of a running task without its registers.
    Scan,
    /// Not traced (why is in the note).
    None,
}

impl StartKind {
    pub fn describe(&self) -> String {
        match self {
            StartKind::SwitchedOut => "switched out (thread.sp)".into(),
            StartKind::Registers(s) => format!("CPU registers ({s})"),
            StartKind::Scan => "stack scan (no registers)".into(),
            StartKind::None => "none".into(),
        }
    }
}

/// A task's trace, ready to print.
#[derive(Debug, Clone)]
pub struct TaskTrace {
    pub task: TaskIdent,
    /// The CPU it was running on at the snapshot, if any.
    pub on_cpu: Option<u32>,
    /// It is on the CPU that called panic().
    pub panicking: bool,
    pub start: StartKind,
    pub frames: Vec<SymFrame>,
    pub end: Option<End>,
    /// What to know about this trace (no registers, no stack …).
    pub note: Option<String>,
    /// Where ORC failed and scanning took over.
    pub recovered: Vec<String>,
}

impl TaskTrace {
    /// /proc/PID/wchan (__get_wchan): the first frame outside the scheduler, for a task not running.
    pub fn wchan(&self) -> Option<&Symbolized> {
        if self.on_cpu.is_some() || self.task.task_state == 0 {
            return None;
        }
        self.frames.iter().find(|f| !f.scheduler).and_then(|f| f.symbol.as_ref())
    }
}

/// Traces tasks of one kernel: its ORC data, stack layout, runqueues and whatever CPU registers we have.
pub struct Tracer<'k> {
    k: &'k Kernel,
    layout: Arc<std::result::Result<StackLayout, Error>>,
    orc: Arc<std::result::Result<Orc, Error>>,
    pub runqueues: Vec<RunQueue>,
    pub registers: Vec<CpuRegisters>,
    pub panic_cpu: Option<u32>,
    panic_fn: Option<(u64, u64)>,
    cpu_stacks: Mutex<HashMap<u32, Vec<Stack>>>,
    pub warnings: Vec<String>,
}

impl<'k> Tracer<'k> {
    /// `registers`: CPU registers we were given (ELF core, QMP); crash_notes are added for CPUs without.
    pub fn new(k: &'k Kernel, mut registers: Vec<CpuRegisters>) -> Tracer<'k> {
        let mut warnings = Vec::new();
        let layout = stack_layout(k);
        let orc = orc(k);
        match &*orc {
            Ok(o) => warnings.extend(o.warnings.iter().cloned()),
            Err(e) => warnings.push(format!("no ORC unwind data: {e}")),
        }
        if let Err(e) = &*layout {
            warnings.push(format!("stack layout: {e}"));
        }
        let runqueues = match runqueues(k) {
            Ok((q, w)) => {
                warnings.extend(w);
                q
            }
            Err(e) => {
                warnings.push(format!("runqueues: {e}"));
                Vec::new()
            }
        };
        for c in crash_notes(k) {
            if !registers.iter().any(|r| r.cpu == c.cpu) {
                registers.push(c);
            }
        }
        let panic_cpu = panic_cpu(k).unwrap_or_else(|e| {
            warnings.push(format!("panic_cpu: {e}"));
            None
        });
        let panic_fn = symbol_extent(k, "panic").map(|(a, n)| (a, a.saturating_add(n)));
        Tracer { k, layout, orc, runqueues, registers, panic_cpu, panic_fn, cpu_stacks: Mutex::new(HashMap::new()), warnings }
    }

    pub fn orc(&self) -> Option<&Orc> {
        self.orc.as_ref().as_ref().ok()
    }

    pub fn layout(&self) -> Option<&StackLayout> {
        self.layout.as_ref().as_ref().ok()
    }

    /// Name, pid and state of the task at `addr`.
    pub fn ident(&self, addr: u64) -> Result<TaskIdent> {
        let l = self.layout().ok_or_else(|| Error::NotFound("no stack layout".into()))?;
        let o = Object::read(self.k, addr, l.task_size)?;
        let (task_state, exit_state) = (o.get(l.state)? as u32, o.get(l.exit_state)? as u32);
        let comm = o.cstr_at(l.comm, TASK_COMM_LEN)?;
        Ok(TaskIdent { address: addr, pid: o.int(l.pid)? as i32, tgid: o.int(l.tgid)? as i32, comm, state: state_letter(task_state, exit_state), task_state, exit_state })
    }

    /// The CPU the task is running on: the runqueue whose curr it is (or on_cpu with a matching CPU).
    pub fn running_on(&self, addr: u64) -> Option<u32> {
        self.runqueues.iter().find(|q| q.curr == addr).map(|q| q.cpu)
    }

    /// The task's own stack, read whole (the part that reads, from the top down, when a page is missing).
    fn task_stack(&self, l: &StackLayout, addr: u64) -> Result<Option<Stack>> {
        let base = self.k.read_member(addr, l.stack)?;
        if base == 0 {
            return Ok(None);
        }
        Ok(Some(read_stack(self.k, "task", base, l.thread_size)?))
    }

    /// The CPU's IRQ stack and exception stacks (cached).
    fn cpu_stacks(&self, l: &StackLayout, cpu: u32) -> Vec<Stack> {
        if let Some(s) = self.cpu_stacks.lock().ok().and_then(|m| m.get(&cpu).cloned()) {
            return s;
        }
        let mut out = Vec::new();
        // hardirq_stack_ptr (pcpu_hot.hardirq_stack_ptr since 6.2) points at the top-most word
        let ptr = self
            .k
            .symbol("hardirq_stack_ptr")
            .or_else(|_| Ok::<u64, Error>(self.k.symbol("pcpu_hot")?.wrapping_add(self.k.offset("pcpu_hot", "hardirq_stack_ptr")?)))
            .and_then(|v| per_cpu_ptr(self.k, v, cpu))
            .and_then(|a| self.k.read_u64(a));
        if let Ok(top) = ptr {
            let hi = top.wrapping_add(8);
            if let Ok(s) = read_stack(self.k, "IRQ", hi.wrapping_sub(l.irq_stack_size), l.irq_stack_size) {
                out.push(s);
            }
        }
        let estacks = self.k.symbol("cea_exception_stacks").and_then(|v| per_cpu_ptr(self.k, v, cpu)).and_then(|a| self.k.read_u64(a));
        if let Ok(base) = estacks {
            for (member, name) in EXCEPTION_STACKS {
                if let Some(m) = self.k.types.member("cea_exception_stacks", member) {
                    if m.size > 0 && m.size <= MAX_STACK_SIZE {
                        if let Ok(s) = read_stack(self.k, name, base.wrapping_add(m.offset), m.size) {
                            out.push(s);
                        }
                    }
                }
            }
        }
        if let Ok(mut m) = self.cpu_stacks.lock() {
            m.insert(cpu, out.clone());
        }
        out
    }

    /// Trace the task at `addr`.
    pub fn trace(&self, addr: u64) -> Result<TaskTrace> {
        let task = self.ident(addr)?;
        let l = self.layout().ok_or_else(|| Error::NotFound("no stack layout".into()))?;
        let on_cpu = self.running_on(addr);
        let panicking = on_cpu.is_some() && on_cpu == self.panic_cpu;
        let mut out = TaskTrace { task, on_cpu, panicking, start: StartKind::None, frames: Vec::new(), end: None, note: None, recovered: Vec::new() };
        let Some(orc) = self.orc() else {
            out.note = Some("no ORC unwind data".into());
            return Ok(out);
        };
        let Some(own) = self.task_stack(l, addr)? else {
            out.note = Some("no kernel stack (the task has exited)".into());
            return Ok(out);
        };
        let mut stacks = vec![own];
        if let Some(cpu) = on_cpu {
            stacks.extend(self.cpu_stacks(l, cpu));
        }
        let k = self.k;
        let after_call = |addr: u64| after_call(k, addr);
        let u = Unwinder { orc, mem: k.vm(), stacks: &stacks, pt_regs: l.pt_regs, after_call: &after_call };
        let trace = match on_cpu {
            Some(cpu) => {
                if let Some(r) = self.registers.iter().find(|r| r.cpu == cpu) {
                    out.start = StartKind::Registers(r.source.clone());
                    Some(u.unwind(Start::registers(r.regs), true))
                } else if panicking {
                    // the panicking CPU spins in panic(): resume at its frame, else at any clean chain
                    match u.scan_start(0, self.panic_fn).or_else(|| u.scan_start(0, None)) {
                        Some(start) => {
                            out.start = StartKind::Scan;
                            out.note = Some(format!("CPU {cpu} panicked; without its registers the trace starts at the innermost return address on its stack from which ORC unwinds cleanly"));
                            Some(u.unwind(start, false))
                        }
                        None => {
                            out.note = Some(format!("CPU {cpu} panicked; without its registers no place to start on its stack was found"));
                            None
                        }
                    }
                } else {
                    let what = if self.runqueues.iter().any(|q| q.idle == addr) { "idle" } else { "running" };
                    out.note = Some(format!(
                        "{what} on CPU {cpu}: its stack starts where the CPU was interrupted, and a raw RAM file does not hold CPU registers (give the QEMU ELF core, or --qmp SOCK for a paused VM)"
                    ));
                    None
                }
            }
            None => {
                let sp = k.read_member(addr, l.thread_sp)?;
                let mut frame = [0u8; 64];
                let n = (l.frame_size as usize).min(64);
                match k.read(sp, &mut frame[..n]) {
                    Ok(()) => {
                        let word = |o: u64| crate::bytes::le_u64(&frame, o as usize).unwrap_or(0);
                        let (ret, bp) = (word(l.frame_ret), word(l.frame_bp));
                        out.start = StartKind::SwitchedOut;
                        Some(u.unwind(Start::switched_out(ret, bp, sp.wrapping_add(l.frame_size), l.ret_from_fork.contains(&ret)), true))
                    }
                    Err(e) => {
                        out.note = Some(format!("its saved stack pointer {sp:#x} is unreadable: {e}"));
                        None
                    }
                }
            }
        };
        if let Some(Trace { frames, end, recovered, .. }) = trace {
            out.frames = frames.into_iter().map(|f| self.symbolize_frame(l, &stacks, f)).collect();
            out.end = Some(end);
            out.recovered = recovered;
        }
        Ok(out)
    }

    fn symbolize_frame(&self, l: &StackLayout, stacks: &[Stack], f: Frame) -> SymFrame {
        // %pB: a return address is looked up one byte back (a call at the very end of a function)
        let symbol = if f.is_return_address() {
            symbolize(self.k, f.ip.wrapping_sub(1)).map(|mut s| {
                s.offset += 1;
                s
            })
        } else {
            symbolize(self.k, f.ip)
        };
        SymFrame { scheduler: l.in_sched_functions(f.ip), stack_name: stacks.get(f.stack).map_or_else(String::new, |s| s.name.clone()), symbol, frame: f }
    }

    /// Name of the task at `addr` ("comm" and pid), for owners and waiters.
    pub fn name_of(&self, addr: u64) -> Option<(i32, String)> {
        self.ident(addr).ok().map(|t| (t.pid, t.comm))
    }

    pub fn kernel(&self) -> &'k Kernel {
        self.k
    }

    /// The task's own kernel stack (a copy) and its saved stack pointer, for looking at what lies on it.
    pub fn own_stack(&self, addr: u64) -> Result<Option<(Stack, u64)>> {
        let l = self.layout().ok_or_else(|| Error::NotFound("no stack layout".into()))?;
        let sp = self.k.read_member(addr, l.thread_sp)?;
        Ok(self.task_stack(l, addr)?.map(|s| (s, sp)))
    }

    /// Warnings found while unwinding (a corrupt ORC index, a table out of order), to add to a record.
    pub fn lookup_warnings(&self) -> Vec<String> {
        self.orc().map(Orc::lookup_warnings).unwrap_or_default()
    }
}

/// Read a stack of `len` bytes at `lo`; when some pages do not read, keep the readable run at the top
/// (where the frames are).
fn read_stack(k: &Kernel, name: &str, lo: u64, len: u64) -> Result<Stack> {
    if len == 0 || len > MAX_STACK_SIZE || lo.checked_add(len).is_none() {
        return Err(Error::bad(format!("{name} stack at {lo:#x} of {len} bytes is not plausible")));
    }
    let mut bytes = vec![0u8; len as usize];
    if k.read(lo, &mut bytes).is_ok() {
        return Ok(Stack::new(name, lo, bytes));
    }
    let mut start = len;
    while start >= 4096 {
        let at = start - 4096;
        if k.read(lo + at, &mut bytes[at as usize..start as usize]).is_err() {
            break;
        }
        start = at;
    }
    if start == len {
        return Err(Error::fault(lo, format!("{name} stack")));
    }
    Ok(Stack::new(name, lo + start, bytes.split_off(start as usize)))
}

/// Does the code just before `addr` end with a call? (e8 rel32; ff /2 with the common encodings.)
fn after_call(k: &Kernel, addr: u64) -> Option<bool> {
    let mut b = [0u8; 7];
    k.read(addr.checked_sub(7)?, &mut b).ok()?;
    let call_rel32 = b[2] == 0xe8;
    let modrm_is_call = |m: u8| (m >> 3) & 7 == 2;
    // ff /2: register (2 bytes, 3 with REX), [reg] forms, [rip+disp32] (6 bytes), [reg+disp8] (3)
    let ff_reg = b[5] == 0xff && modrm_is_call(b[6]) && b[6] >> 6 == 3;
    let ff_rip = b[1] == 0xff && b[2] == 0x15;
    let ff_disp8 = b[4] == 0xff && modrm_is_call(b[5]) && b[5] >> 6 == 1;
    let ff_disp32 = b[1] == 0xff && modrm_is_call(b[2]) && b[2] >> 6 == 2;
    let ff_mem = b[5] == 0xff && modrm_is_call(b[6]) && b[6] >> 6 == 0;
    Some(call_rel32 || ff_reg || ff_rip || ff_disp8 || ff_disp32 || ff_mem)
}

/// A task's comm, for callers that have only its address.
pub fn comm_of(k: &Kernel, task: u64) -> Option<String> {
    let off = k.offset("task_struct", "comm").ok()?;
    let mut b = [0u8; TASK_COMM_LEN as usize];
    k.read(task.wrapping_add(off), &mut b).ok()?;
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    Some(latin1(&b[..end]))
}
