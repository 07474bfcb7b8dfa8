//! x86-64 ORC unwinder over guest RAM, arch/x86/kernel/unwind_orc.c (__unwind_start, unwind_next_frame)
//! and stacktrace.c (arch_stack_walk: which addresses a trace lists) of 6.1 and 6.12, over stacks copied
//! out of guest memory (dumpstack_64.c get_stack_info: the task's stack, its CPU's IRQ and exception
//! stacks). Bounded: every read is checked against the known stacks, the stack pointer must rise on one
//! stack, a stack once left is never re-entered, and a trace has at most `MAX_FRAMES` frames. Where ORC
//! has no answer the rest of the stack is scanned for return addresses (crash's `bt -t`), marked unreliable.

use super::orc::{reg, Orc, OrcEntry, OrcType};
use crate::bytes::le_u64;
use crate::mem::VirtualMemory;

/// Frames in one trace at most (/proc/PID/stack shows 64).
pub const MAX_FRAMES: usize = 128;
/// Scan candidates tried as places to resume ORC unwinding, and frames in each trial.
const MAX_RESYNC_TRIALS: usize = 64;
const TRIAL_FRAMES: usize = 48;
/// Places tried for an unknown frame pointer (a start found by scanning that meets a BP-based frame).
const MAX_BP_GUESSES: u8 = 8;

/// One stack the unwinder may read: its name ("task", "IRQ", "NMI" …), its range [lo, hi), its bytes.
#[derive(Debug, Clone)]
pub struct Stack {
    pub name: String,
    pub lo: u64,
    pub hi: u64,
    bytes: Vec<u8>,
}

impl Stack {
    /// A stack whose bytes were read from guest memory (`bytes.len()` = hi − lo).
    pub fn new(name: impl Into<String>, lo: u64, bytes: Vec<u8>) -> Stack {
        let hi = lo.saturating_add(bytes.len() as u64);
        Stack { name: name.into(), lo, hi, bytes }
    }

    pub fn contains(&self, addr: u64, len: u64) -> bool {
        addr >= self.lo && addr.checked_add(len).is_some_and(|end| end <= self.hi)
    }

    fn word(&self, addr: u64) -> Option<u64> {
        if !self.contains(addr, 8) {
            return None;
        }
        le_u64(&self.bytes, usize::try_from(addr - self.lo).ok()?)
    }

    /// The word at `addr` on this stack, if it lies there.
    pub fn word_at(&self, addr: u64) -> Option<u64> {
        self.word(addr)
    }
}

/// Offsets in struct pt_regs (from the kernel's types) that unwinding reads.
#[derive(Debug, Clone, Copy)]
pub struct PtRegsLayout {
    pub size: u64,
    pub ip: u64,
    pub sp: u64,
    pub bp: u64,
    pub cs: u64,
    pub r10: u64,
    pub r13: u64,
    pub di: u64,
    pub dx: u64,
}

impl PtRegsLayout {
    /// IRET_FRAME_OFFSET: the hardware frame (ip, cs, flags, sp, ss) starts at regs->ip.
    fn iret_offset(&self) -> u64 {
        self.ip
    }
    fn iret_size(&self) -> u64 {
        self.size.saturating_sub(self.ip)
    }
    /// The x86-64 layout (arch/x86/include/asm/ptrace.h), for tests.
    pub const X86_64: PtRegsLayout = PtRegsLayout { size: 168, ip: 128, sp: 152, bp: 32, cs: 136, r10: 56, r13: 16, di: 112, dx: 96 };
}

/// Registers of a stopped CPU or saved by the kernel: what a trace can start from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Registers {
    pub ip: u64,
    pub sp: u64,
    pub bp: u64,
    pub cs: u64,
    pub r10: u64,
    pub r13: u64,
    pub di: u64,
    pub dx: u64,
}

impl Registers {
    /// user_mode(): CPL 3 in the code segment selector.
    pub fn user_mode(&self) -> bool {
        self.cs & 3 != 0
    }
}

/// Where the registers of the frame being unwound are, when it has any (ORC_TYPE_REGS* frames).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RegsAt {
    /// A struct pt_regs in memory; `full` false when only its IRET part is valid.
    Memory { addr: u64, full: bool },
    /// Registers given from outside (a vCPU, crash_notes): always full.
    Given(Registers),
}

/// How a frame was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The starting point: a switched-out task's saved frame, or CPU registers.
    Start,
    /// A return address ORC pointed to.
    Call,
    /// The interrupted IP in an exception or interrupt frame (struct pt_regs) ORC pointed to.
    Regs,
    /// A text address found by scanning the stack, where ORC had no answer.
    Scan,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Start => "start",
            Via::Call => "orc",
            Via::Regs => "regs",
            Via::Scan => "scan",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub ip: u64,
    /// The stack pointer of the frame (where its caller's return address was read, plus 8).
    pub sp: u64,
    /// Index into the stacks the trace was given.
    pub stack: usize,
    pub via: Via,
    /// Every step from the start to this frame followed ORC (no guess, no scan).
    pub reliable: bool,
}

impl Frame {
    /// A return address points after its call: symbolise ip − 1 (%pB), unless the IP is exact.
    pub fn is_return_address(&self) -> bool {
        matches!(self.via, Via::Call | Via::Scan)
    }
}

/// Why a trace ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The entry frame of a user task: it returns to user mode at `ip` with stack `sp`.
    UserMode { ip: u64, sp: u64 },
    /// The bottom of a kernel thread's stack (an end-of-stack ORC entry).
    EndOfStack,
    /// Unwinding failed; the frames after the failure (if any) came from scanning.
    Error(String),
    /// MAX_FRAMES reached.
    Limit,
}

impl End {
    pub fn is_clean(&self) -> bool {
        matches!(self, End::UserMode { .. } | End::EndOfStack)
    }

    pub fn describe(&self) -> String {
        match self {
            End::UserMode { ip, .. } => format!("returns to user mode at {ip:#x}"),
            End::EndOfStack => "end of stack".into(),
            End::Error(e) => format!("unwind error: {e}"),
            End::Limit => format!("stopped after {MAX_FRAMES} frames"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    pub frames: Vec<Frame>,
    pub end: End,
    /// A frame pointer had to be guessed on the way.
    pub bp_guessed: bool,
    /// Where ORC failed and a scan of the stack took over (the frames after it are unreliable).
    pub recovered: Vec<String>,
}

/// Where unwinding starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Start {
    pub ip: u64,
    pub sp: u64,
    pub bp: u64,
    /// The IP is exact (registers, ret_from_fork), not a return address: ORC is looked up at ip, not ip − 1.
    pub signal: bool,
    regs: Option<RegsAt>,
    /// BP holds the frame's real value (false when the start was found by scanning).
    bp_known: bool,
    /// When BP must be guessed: take the n-th candidate.
    bp_guess: u8,
}

impl Start {
    /// A switched-out task: __unwind_start() from its struct inactive_task_frame (sp just above it).
    pub fn switched_out(ret_addr: u64, bp: u64, sp: u64, is_ret_from_fork: bool) -> Start {
        Start { ip: ret_addr, sp, bp, signal: is_ret_from_fork, regs: None, bp_known: true, bp_guess: 0 }
    }

    /// A CPU's registers (ELF core, QMP, crash_notes): full regs, the IP exact.
    pub fn registers(r: Registers) -> Start {
        Start { ip: r.ip, sp: r.sp, bp: r.bp, signal: true, regs: Some(RegsAt::Given(r)), bp_known: true, bp_guess: 0 }
    }

    /// A return address found on the stack at `slot` (so the frame's SP is slot + 8); BP unknown.
    pub fn return_address_at(slot: u64, ip: u64) -> Start {
        Start { ip, sp: slot.wrapping_add(8), bp: 0, signal: false, regs: None, bp_known: false, bp_guess: 0 }
    }
}

/// The unwinder: ORC tables, the stacks a task may use, and how to tell code from data.
pub struct Unwinder<'a> {
    pub orc: &'a Orc,
    /// Guest memory the ORC tables are read from.
    pub mem: &'a dyn VirtualMemory,
    pub stacks: &'a [Stack],
    pub pt_regs: PtRegsLayout,
    /// Does the code before `addr` end with a call instruction? (Reads kernel text; None: cannot tell.)
    pub after_call: &'a dyn Fn(u64) -> Option<bool>,
}

struct State {
    ip: u64,
    sp: u64,
    bp: u64,
    signal: bool,
    regs: Option<RegsAt>,
    prev_regs: Option<RegsAt>,
    bp_known: bool,
    bp_guess: u8,
    bp_guessed: bool,
    stack: usize,
    /// Stacks left behind: never entered again (get_stack_info's stack_mask).
    left: Vec<usize>,
}

enum Step {
    Frame(Via),
    End(End),
}

impl<'a> Unwinder<'a> {
    fn stack_of(&self, addr: u64, len: u64) -> Option<usize> {
        self.stacks.iter().position(|s| s.contains(addr, len))
    }

    fn word(&self, addr: u64) -> Option<u64> {
        self.stack_of(addr, 8).and_then(|i| self.stacks[i].word(addr))
    }

    fn deref(&self, addr: u64, what: &str) -> Result<u64, String> {
        self.word(addr).ok_or_else(|| format!("{what} at {addr:#x} is outside the task's stacks"))
    }

    fn regs_word(&self, at: RegsAt, off: u64, given: impl Fn(&Registers) -> u64) -> Option<u64> {
        match at {
            RegsAt::Given(r) => Some(given(&r)),
            RegsAt::Memory { addr, .. } => self.word(addr.wrapping_add(off)),
        }
    }

    fn user_mode(&self, at: RegsAt) -> bool {
        self.regs_word(at, self.pt_regs.cs, |r| r.cs).is_some_and(|cs| cs & 3 != 0)
    }

    /// get_reg(): a register from the full pt_regs of this frame, or of the one before a partial frame.
    fn get_reg(&self, st: &State, off: u64, given: impl Fn(&Registers) -> u64 + Copy) -> Option<u64> {
        match st.regs? {
            RegsAt::Memory { full: false, .. } => match st.prev_regs? {
                RegsAt::Memory { full: false, .. } => None,
                prev => self.regs_word(prev, off, given),
            },
            full => self.regs_word(full, off, given),
        }
    }

    /// Unwind from `start` (on `start_stack`), listing what arch_stack_walk() would and then some:
    /// frames found by scanning after a failure are kept, marked unreliable.
    pub fn unwind(&self, start: Start, reliable: bool) -> Trace {
        self.unwind_bounded(start, reliable, MAX_FRAMES, true)
    }

    fn unwind_bounded(&self, start: Start, reliable: bool, max: usize, scan: bool) -> Trace {
        if let Some(RegsAt::Given(r)) = start.regs {
            if r.user_mode() {
                return Trace { frames: Vec::new(), end: End::UserMode { ip: r.ip, sp: r.sp }, bp_guessed: false, recovered: Vec::new() };
            }
        }
        let Some(stack) = self.stack_of(start.sp, 1).or_else(|| self.stack_of(start.sp.wrapping_sub(8), 8)) else {
            return Trace { frames: Vec::new(), end: End::Error(format!("the starting stack pointer {:#x} is outside the task's stacks", start.sp)), bp_guessed: false, recovered: Vec::new() };
        };
        let mut st = State { ip: start.ip, sp: start.sp, bp: start.bp, signal: start.signal, regs: start.regs, prev_regs: None, bp_known: start.bp_known, bp_guess: start.bp_guess, bp_guessed: false, stack, left: Vec::new() };
        let mut frames = Vec::new();
        if let Some(r) = st.regs {
            if self.user_mode(r) {
                return Trace { frames, end: End::UserMode { ip: st.ip, sp: st.sp }, bp_guessed: false, recovered: Vec::new() };
            }
        }
        if !self.orc.is_text(st.ip) {
            return Trace { frames, end: End::Error(format!("the starting IP {:#x} is not kernel text", st.ip)), bp_guessed: false, recovered: Vec::new() };
        }
        frames.push(Frame { ip: st.ip, sp: st.sp, stack: st.stack, via: Via::Start, reliable });
        let mut reliable = reliable;
        let mut recovered = Vec::new();
        loop {
            if frames.len() >= max {
                return Trace { frames, end: End::Limit, bp_guessed: st.bp_guessed, recovered };
            }
            let failed_sp = st.sp;
            let failed_stack = st.stack;
            match self.next(&mut st) {
                Ok(Step::Frame(via)) => {
                    if let Some(r) = st.regs {
                        if self.user_mode(r) {
                            return Trace { frames, end: End::UserMode { ip: st.ip, sp: st.sp }, bp_guessed: st.bp_guessed, recovered };
                        }
                    }
                    if !self.orc.is_text(st.ip) {
                        // unwind_get_return_address() gives 0 here and arch_stack_walk() stops
                        let why = format!("{:#x} is not kernel text", st.ip);
                        if !scan {
                            return Trace { frames, end: End::Error(why), bp_guessed: st.bp_guessed, recovered };
                        }
                        match self.scan_and_resync(failed_stack, failed_sp, &mut frames, max, st.left.iter().copied().filter(|&l| l != failed_stack).collect()) {
                            Some(resumed) => {
                                st = resumed;
                                reliable = false;
                                recovered.push(why);
                                continue;
                            }
                            None => return Trace { frames, end: End::Error(why), bp_guessed: st.bp_guessed, recovered },
                        }
                    }
                    frames.push(Frame { ip: st.ip, sp: st.sp, stack: st.stack, via, reliable })
                }
                Ok(Step::End(end)) => return Trace { frames, end, bp_guessed: st.bp_guessed, recovered },
                Err(why) => {
                    if !scan {
                        return Trace { frames, end: End::Error(why), bp_guessed: st.bp_guessed, recovered };
                    }
                    // the rest of this stack, scanned; ORC resumes at the first return address it can follow
                    match self.scan_and_resync(failed_stack, failed_sp, &mut frames, max, st.left.iter().copied().filter(|&l| l != failed_stack).collect()) {
                        Some(resumed) => {
                            st = resumed;
                            reliable = false;
                            recovered.push(why);
                        }
                        None => return Trace { frames, end: End::Error(why), bp_guessed: st.bp_guessed, recovered },
                    }
                }
            }
        }
    }

    /// unwind_next_frame(): one step up the stack, or the end, or why not.
    fn next(&self, st: &mut State) -> Result<Step, String> {
        if let Some(r) = st.regs {
            if self.user_mode(r) {
                return Ok(Step::End(End::UserMode { ip: st.ip, sp: st.sp }));
            }
        }
        // a return address points after the call: look up the call itself
        let lookup = if st.signal { st.ip } else { st.ip.wrapping_sub(1) };
        let orc: OrcEntry = self.orc.find(self.mem, lookup).ok_or_else(|| format!("no ORC entry for {:#x}", st.ip))?;
        match orc.kind {
            OrcType::Undefined => return Err(format!("ORC has no unwind rule at {:#x}", st.ip)),
            OrcType::EndOfStack => return Ok(Step::End(End::EndOfStack)),
            OrcType::Unknown(n) => return Err(format!("unknown ORC entry type {n} at {:#x}", st.ip)),
            OrcType::Call | OrcType::Regs | OrcType::RegsPartial => {}
        }
        let off = orc.sp_offset as i64 as u64;
        let p = self.pt_regs;
        // the CFA: the caller's SP before it made the call (or the address of the saved registers)
        let cfa = match orc.sp_reg {
            reg::SP => st.sp.wrapping_add(off),
            reg::BP if !st.bp_known => self.guess_frame_pointer(st)?.wrapping_add(off),
            reg::BP => st.bp.wrapping_add(off),
            reg::SP_INDIRECT => {
                if self.orc.format.sp_indirect_adds_after {
                    self.deref(st.sp, "indirect SP")?.wrapping_add(off)
                } else {
                    self.deref(st.sp.wrapping_add(off), "indirect SP")?
                }
            }
            reg::BP_INDIRECT => self.deref(st.bp.wrapping_add(off), "indirect BP")?,
            reg::R10 => self.get_reg(st, p.r10, |r| r.r10).ok_or("R10 needed but no registers saved here")?,
            reg::R13 => self.get_reg(st, p.r13, |r| r.r13).ok_or("R13 needed but no registers saved here")?,
            reg::DI => self.get_reg(st, p.di, |r| r.di).ok_or("RDI needed but no registers saved here")?,
            reg::DX => self.get_reg(st, p.dx, |r| r.dx).ok_or("RDX needed but no registers saved here")?,
            r => return Err(format!("unknown ORC SP base register {r} at {:#x}", st.ip)),
        };
        let (prev_sp, prev_stack) = (st.sp, st.stack);
        let (via, sp) = match orc.kind {
            OrcType::Call => {
                st.ip = self.deref(cfa.wrapping_sub(8), "return address")?;
                st.regs = None;
                st.prev_regs = None;
                (Via::Call, cfa)
            }
            OrcType::Regs => {
                if self.stack_of(cfa, p.size).is_none() {
                    return Err(format!("registers at {cfa:#x} are outside the task's stacks"));
                }
                st.ip = self.deref(cfa.wrapping_add(p.ip), "pt_regs ip")?;
                let sp = self.deref(cfa.wrapping_add(p.sp), "pt_regs sp")?;
                st.regs = Some(RegsAt::Memory { addr: cfa, full: true });
                st.prev_regs = None;
                (Via::Regs, sp)
            }
            _ => {
                let regs = cfa.wrapping_sub(p.iret_offset());
                if self.stack_of(cfa, p.iret_size()).is_none() {
                    return Err(format!("IRET frame at {cfa:#x} is outside the task's stacks"));
                }
                st.ip = self.deref(regs.wrapping_add(p.ip), "iret ip")?;
                let sp = self.deref(regs.wrapping_add(p.sp), "iret sp")?;
                st.prev_regs = match st.regs {
                    Some(r @ (RegsAt::Memory { full: true, .. } | RegsAt::Given(_))) => Some(r),
                    _ => None,
                };
                st.regs = Some(RegsAt::Memory { addr: regs, full: false });
                (Via::Regs, sp)
            }
        };
        st.signal = orc.signal;
        match orc.bp_reg {
            reg::UNDEFINED => {
                if let Some(bp) = self.get_reg(st, p.bp, |r| r.bp) {
                    st.bp = bp;
                    st.bp_known = true;
                }
            }
            reg::PREV_SP => {
                st.bp = self.deref(cfa.wrapping_add(orc.bp_offset as i64 as u64), "saved BP")?;
                st.bp_known = true;
            }
            reg::BP if !st.bp_known => return Err("the saved BP is needed but BP is unknown".into()),
            reg::BP => st.bp = self.deref(st.bp.wrapping_add(orc.bp_offset as i64 as u64), "saved BP")?,
            r => return Err(format!("unknown ORC BP base register {r} at {:#x}", st.ip)),
        }
        // a user-mode frame's SP is a user address: the next step ends there
        if let Some(r) = st.regs {
            if self.user_mode(r) {
                st.sp = sp;
                return Ok(Step::Frame(via));
            }
        }
        let Some(stack) = self.stack_of(sp, 1).or_else(|| self.stack_of(sp.wrapping_sub(8), 8)) else {
            return Err(format!("the stack pointer {sp:#x} left the task's stacks"));
        };
        if stack == prev_stack {
            // "stack going in the wrong direction?": on one stack, every frame lies above the last
            if sp <= prev_sp {
                return Err(format!("the stack pointer went down ({prev_sp:#x} → {sp:#x})"));
            }
        } else {
            if st.left.contains(&stack) {
                return Err(format!("the unwind returned to the {} stack it had left", self.stacks[stack].name));
            }
            st.left.push(prev_stack);
        }
        st.sp = sp;
        st.stack = stack;
        Ok(Step::Frame(via))
    }

    /// A frame-pointer frame (CFA = BP + 16) reached without knowing BP (a start found by scanning): BP
    /// points at the saved BP with the return address above it, so take the lowest slot at or above SP
    /// whose next word is a return address.
    fn guess_frame_pointer(&self, st: &mut State) -> Result<u64, String> {
        let s = &self.stacks[st.stack];
        let mut at = st.sp & !7;
        let mut skip = st.bp_guess;
        while at.checked_add(16).is_some_and(|e| e <= s.hi) {
            if let Some(v) = s.word(at + 8) {
                if self.orc.is_text(v) && (self.after_call)(v) != Some(false) {
                    if skip == 0 {
                        st.bp = at;
                        st.bp_known = true;
                        st.bp_guessed = true;
                        return Ok(at);
                    }
                    skip -= 1;
                }
            }
            at += 8;
        }
        Err("a frame-pointer frame with BP unknown, and no return address above it".into())
    }

    /// Scan the stack `stack` upward from `from` for return addresses; list each one (unreliable) and
    /// resume ORC at the first one from which ORC reaches a clean end (the stacks already `left` stay
    /// closed). None: no place to resume.
    fn scan_and_resync(&self, stack: usize, from: u64, frames: &mut Vec<Frame>, max: usize, left: Vec<usize>) -> Option<State> {
        let s = &self.stacks[stack];
        let mut slot = from.max(s.lo) & !7;
        let mut trials = 0;
        while slot.checked_add(8).is_some_and(|e| e <= s.hi) && frames.len() < max {
            let here = slot;
            slot += 8;
            let Some(v) = s.word(here) else { break };
            if !self.orc.is_text(v) || (self.after_call)(v) == Some(false) {
                continue;
            }
            if trials < MAX_RESYNC_TRIALS {
                trials += 1;
                let start = Start::return_address_at(here, v);
                let t = self.unwind_bounded(start, false, TRIAL_FRAMES, false);
                if t.end.is_clean() && t.frames.len() >= 2 {
                    frames.push(Frame { ip: v, sp: here + 8, stack, via: Via::Scan, reliable: false });
                    return Some(State { ip: v, sp: here + 8, bp: 0, signal: false, regs: None, prev_regs: None, bp_known: false, bp_guess: 0, bp_guessed: false, stack, left });
                }
            }
            frames.push(Frame { ip: v, sp: here + 8, stack, via: Via::Scan, reliable: false });
        }
        None
    }

    /// Where to start on a running task's stack without its registers: the lowest return address from
    /// which ORC reaches a clean end (and, given `within`, one inside that function, e.g. panic()).
    pub fn scan_start(&self, stack: usize, within: Option<(u64, u64)>) -> Option<Start> {
        let s = self.stacks.get(stack)?;
        let mut slot = s.lo;
        let mut trials = 0;
        while slot.checked_add(8).is_some_and(|e| e <= s.hi) && trials < 4 * MAX_RESYNC_TRIALS {
            let here = slot;
            slot += 8;
            let Some(v) = s.word(here) else { break };
            if within.is_some_and(|(a, b)| v < a || v >= b) || !self.orc.is_text(v) || (self.after_call)(v) == Some(false) {
                continue;
            }
            for guess in 0..MAX_BP_GUESSES {
                trials += 1;
                let start = Start { bp_guess: guess, ..Start::return_address_at(here, v) };
                let t = self.unwind_bounded(start, false, TRIAL_FRAMES, false);
                if t.end.is_clean() && t.frames.len() >= 2 {
                    return Some(start);
                }
                if !t.bp_guessed {
                    break;
                }
            }
        }
        None
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::objects::orc::{detect_format, OrcTable};

    pub const TEXT: u64 = 0xffff_ffff_8100_0000;
    pub const STACK: u64 = 0xffff_c900_0000_0000;

    /// Raw ORC bytes for a table in the 6.12 layout: (ip, sp_offset, sp_reg, type).
    pub fn orc_of(rules: &[(u64, i16, u8, u8)]) -> Orc {
        let mut ip_raw = Vec::new();
        let mut orc_raw = Vec::new();
        let base = TEXT + 0x10_0000;
        for (i, &(ip, off, sp_reg, kind)) in rules.iter().enumerate() {
            ip_raw.extend_from_slice(&((ip as i64 - (base + 4 * i as u64) as i64) as i32).to_le_bytes());
            let mut e = [0u8; 6];
            e[0..2].copy_from_slice(&off.to_le_bytes());
            e[4] = sp_reg;
            e[5] = kind;
            orc_raw.extend_from_slice(&e);
        }
        let mut w = Vec::new();
        let mut calls = Vec::new();
        for _ in 0..32 {
            calls.extend_from_slice(&[8, 0, 0, 0, reg::SP, 2]);
        }
        let fmt = detect_format(Some("6.12.0"), Some(&[0u8; 20]), &calls, &mut w).unwrap();
        let t = OrcTable::decode(&fmt, base, &ip_raw, &orc_raw, "test", &mut w);
        Orc::from_tables(fmt, t, vec![(TEXT, TEXT + 0x10_0000)])
    }

    /// A stack with `words` at its bottom-most slots from `STACK`.
    pub fn stack_of(words: &[(u64, u64)], size: u64) -> Stack {
        let mut b = vec![0u8; size as usize];
        for &(at, v) in words {
            let o = (at - STACK) as usize;
            b[o..o + 8].copy_from_slice(&v.to_le_bytes());
        }
        Stack::new("task", STACK, b)
    }

    const CALL: u8 = 2;
    const END: u8 = 1;
    const REGS: u8 = 3;

    fn names(t: &Trace) -> Vec<u64> {
        t.frames.iter().map(|f| f.ip).collect()
    }

    /// Memory that holds nothing: the tests' ORC tables are decoded copies.
    pub struct NoMemory;
    impl VirtualMemory for NoMemory {
        fn read_virt(&self, addr: u64, _: &mut [u8]) -> crate::Result<()> {
            Err(crate::Error::fault(addr, "no memory in this test"))
        }
    }

    fn unwinder<'a>(orc: &'a Orc, stacks: &'a [Stack]) -> Unwinder<'a> {
        Unwinder { orc, mem: &NoMemory, stacks, pt_regs: PtRegsLayout::X86_64, after_call: &|_| None }
    }

    // Functions: A at TEXT+0x100 (frame 16 bytes), B at +0x200 (frame 32), entry at +0x300 (REGS), kthread
    // end at +0x400.
    fn rules() -> Orc {
        orc_of(&[
            (TEXT + 0x100, 16, reg::SP, CALL),
            (TEXT + 0x200, 32, reg::SP, CALL),
            (TEXT + 0x300, 0, reg::SP, REGS),
            (TEXT + 0x400, 0, reg::UNDEFINED, END),
            (TEXT + 0x500, 0, reg::UNDEFINED, 0),
        ])
    }

    #[test]
    fn a_sleeping_chain_unwinds_to_user_mode_through_pt_regs() {
        let orc = rules();
        // start in A with sp = STACK+0x100: A's CFA = +0x110, return into B at +0x108
        // B's CFA = +0x110 + 32 = +0x130: return into entry at +0x128; entry (REGS) regs at +0x130
        let regs = STACK + 0x130;
        let p = PtRegsLayout::X86_64;
        let s = stack_of(&[(STACK + 0x108, TEXT + 0x210), (STACK + 0x128, TEXT + 0x310), (regs + p.ip, 0x40_1000), (regs + p.cs, 0x33), (regs + p.sp, 0x7ffd_0000)], 0x4000);
        let stacks = [s];
        let u = unwinder(&orc, &stacks);
        let t = u.unwind(Start::switched_out(TEXT + 0x110, 0, STACK + 0x100, false), true);
        assert_eq!(names(&t), vec![TEXT + 0x110, TEXT + 0x210, TEXT + 0x310]);
        assert_eq!(t.end, End::UserMode { ip: 0x40_1000, sp: 0x7ffd_0000 });
        assert!(t.frames.iter().all(|f| f.reliable));
    }

    #[test]
    fn a_kernel_thread_ends_at_its_end_of_stack_entry() {
        let orc = rules();
        let s = stack_of(&[(STACK + 0x108, TEXT + 0x410)], 0x4000);
        let stacks = [s];
        let t = unwinder(&orc, &stacks).unwind(Start::switched_out(TEXT + 0x110, 0, STACK + 0x100, false), true);
        assert_eq!(names(&t), vec![TEXT + 0x110, TEXT + 0x410]);
        assert_eq!(t.end, End::EndOfStack);
    }

    #[test]
    fn loops_wrong_directions_and_wild_pointers_end_bounded_with_a_reason() {
        // A's frame size 0: the return address slot is read at sp-8 and the SP never rises
        let orc = orc_of(&[(TEXT + 0x100, 0, reg::SP, CALL), (TEXT + 0x200, 0x7ff0, reg::SP, CALL), (TEXT + 0x300, -64, reg::SP, CALL)]);
        let s = stack_of(&[(STACK + 0xf8, TEXT + 0x110)], 0x4000);
        let stacks = [s];
        let u = unwinder(&orc, &stacks);
        let t = u.unwind(Start::switched_out(TEXT + 0x110, 0, STACK + 0x100, false), true);
        assert!(matches!(&t.end, End::Error(e) if e.contains("went down")), "{:?}", t.end);
        assert!(t.frames.len() <= MAX_FRAMES);
        // a huge offset: the SP leaves the stack
        let t = u.unwind(Start::switched_out(TEXT + 0x210, 0, STACK + 0x100, false), true);
        assert!(matches!(&t.end, End::Error(e) if e.contains("outside") || e.contains("left")), "{:?}", t.end);
        // a negative offset
        let t = u.unwind(Start::switched_out(TEXT + 0x310, 0, STACK + 0x100, false), true);
        assert!(matches!(t.end, End::Error(_)), "{:?}", t.end);
        // a start outside every stack
        let t = u.unwind(Start::switched_out(TEXT + 0x110, 0, 0xdead_0000, false), true);
        assert!(t.frames.is_empty() && matches!(t.end, End::Error(_)));
    }

    #[test]
    fn no_orc_entry_falls_back_to_scanning_and_resumes_where_orc_can_follow() {
        let orc = rules();
        // start at an IP with an undefined rule: scan finds a junk text address (no clean end from it),
        // then B's return address from which the chain ends cleanly at the kthread end
        let s = stack_of(&[(STACK + 0x110, TEXT + 0x510), (STACK + 0x118, TEXT + 0x210), (STACK + 0x138, TEXT + 0x410)], 0x4000);
        let stacks = [s];
        let t = unwinder(&orc, &stacks).unwind(Start::switched_out(TEXT + 0x510, 0, STACK + 0x110, false), true);
        assert_eq!(names(&t), vec![TEXT + 0x510, TEXT + 0x510, TEXT + 0x210, TEXT + 0x410]);
        assert_eq!(t.frames[1].via, Via::Scan);
        assert!(!t.frames[2].reliable && !t.frames[3].reliable);
        assert_eq!(t.recovered.len(), 1, "{:?}", t.recovered);
        assert!(t.frames[0].reliable);
        assert_eq!(t.end, End::EndOfStack);
    }

    #[test]
    fn a_stack_once_left_is_not_entered_again() {
        // an IRQ stack whose frame points back to the task stack, whose frame points to the IRQ stack again
        let irq = 0xffff_c900_1000_0000u64;
        let orc = orc_of(&[(TEXT + 0x100, 0, reg::SP_INDIRECT, CALL), (TEXT + 0x200, 0, reg::SP_INDIRECT, CALL)]);
        let task = stack_of(&[(STACK + 0x200, irq + 0x200), (STACK + 0x1f8, TEXT + 0x110)], 0x4000);
        let mut ib = vec![0u8; 0x4000];
        ib[0x100..0x108].copy_from_slice(&(STACK + 0x200).to_le_bytes()); // *(sp) = task sp
        ib[0x1f8..0x200].copy_from_slice(&(TEXT + 0x210).to_le_bytes());
        let stacks = [task, Stack::new("IRQ", irq, ib)];
        let u = unwinder(&orc, &stacks);
        let t = u.unwind(Start::switched_out(TEXT + 0x210, 0, irq + 0x100, false), true);
        // IRQ → task (ok) → IRQ (refused)
        assert!(matches!(&t.end, End::Error(e) if e.contains("had left")), "{:?} {:?}", t.end, t.frames);
    }

    #[test]
    fn registers_in_user_mode_give_an_empty_trace_and_kernel_ones_start_exactly() {
        let orc = rules();
        let s = stack_of(&[(STACK + 0x108, TEXT + 0x210), (STACK + 0x128, TEXT + 0x410)], 0x4000);
        let stacks = [s];
        let u = unwinder(&orc, &stacks);
        let user = Registers { ip: 0x40_0000, sp: 0x7ffd_0000, cs: 0x33, ..Default::default() };
        let t = u.unwind(Start::registers(user), true);
        assert!(t.frames.is_empty() && matches!(t.end, End::UserMode { .. }));
        // exact IP at A's first byte: looked up at ip (not ip − 1, which is outside A)
        let kern = Registers { ip: TEXT + 0x100, sp: STACK + 0x100, cs: 0x10, ..Default::default() };
        let t = u.unwind(Start::registers(kern), true);
        assert_eq!(names(&t), vec![TEXT + 0x100, TEXT + 0x210, TEXT + 0x410]);
        // scan_start finds the same chain (less its first frame) from the stack alone
        let st = u.scan_start(0, None).unwrap();
        assert_eq!((st.ip, st.sp), (TEXT + 0x210, STACK + 0x110));
        assert!(u.scan_start(0, Some((TEXT + 0x300, TEXT + 0x380))).is_none());
    }

    #[test]
    fn a_scan_start_meets_a_frame_pointer_function_and_guesses_bp_from_the_stack() {
        // F at +0x600 keeps its frame with BP (CFA = BP + 16, caller's BP saved at BP); it called A
        // (return address F+0x10 at slot 0x100) from a frame whose BP sits at 0x140 — with a decoy
        // text address at 0x118 that is not a return address of a clean chain
        let orc = orc_of(&[
            (TEXT + 0x100, 16, reg::SP, CALL),
            (TEXT + 0x400, 0, reg::UNDEFINED, END),
            (TEXT + 0x600, 16, reg::BP, CALL),
            (TEXT + 0x700, 0, reg::UNDEFINED, 0),
        ]);
        let s = stack_of(&[(STACK + 0x100, TEXT + 0x610), (STACK + 0x120, TEXT + 0x710), (STACK + 0x140, 0), (STACK + 0x148, TEXT + 0x410)], 0x4000);
        let stacks = [s];
        let u = unwinder(&orc, &stacks);
        let start = u.scan_start(0, Some((TEXT + 0x600, TEXT + 0x700))).expect("a start in F");
        assert_eq!(start.ip, TEXT + 0x610);
        let t = u.unwind(start, false);
        assert_eq!(names(&t), vec![TEXT + 0x610, TEXT + 0x410]);
        assert_eq!(t.end, End::EndOfStack);
        assert!(t.bp_guessed && t.frames.iter().all(|f| !f.reliable));
    }
}
