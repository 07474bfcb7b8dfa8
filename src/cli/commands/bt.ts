// `nearfield bt [PID…] [target]`: kernel stack traces from guest RAM without debuginfo, like crash's `bt`,
// `bt -a` and `foreach UN bt`: ORC unwinding from each task's switch frame, or from its CPU's registers (an ELF
// core's notes, or --qmp for a paused VM) when it was running.

import type { StackFrame, StackList, TaskStack, VcpuRegisterText } from '../../generated/records.js';
import { NearfieldError } from '../../errors.js';
import { defineRecordCommand, printable } from '../define.js';
import { readVcpuRegisters } from '../../stacks/qmp-registers.js';

interface BtFlags {
  state?: string;
  all?: boolean;
  cpu?: boolean;
  qmp?: string;
}

/** "function+0x1f/0x60 [module]", or the bare address outside every symbol. */
export function frameText(f: StackFrame): string {
  if (f.function === null) return f.address;
  return `${f.function}+0x${f.offset.toString(16)}/0x${f.size.toString(16)}${f.module ? ` [${f.module}]` : ''}`;
}

/** One task's trace in crash's layout: a header line, then `#N [sp] function+off/size`, `?` for unreliable frames,
 *  a marker where the trace changes stacks, and how it ends. */
export function traceText(t: TaskStack): string {
  const lines: string[] = [];
  const cpu = t.onCpu === null ? '-' : String(t.onCpu);
  lines.push(`PID: ${String(t.pid).padEnd(7)} TASK: ${t.address.replace(/^0x/, '')}  CPU: ${cpu}  COMMAND: "${printable(t.comm)}"  STATE: ${t.state}${t.panicking ? '  PANIC' : ''}`);
  if (t.frames.length > 0) lines.push(`  start: ${t.start}`);
  let stack = t.frames[0]?.stack;
  t.frames.forEach((f, i) => {
    if (f.stack !== stack) {
      lines.push(`  --- <${f.stack} stack> ---`);
      stack = f.stack;
    }
    const mark = f.reliable ? ' ' : '?';
    const regs = f.via === 'regs' ? '  (interrupted here)' : '';
    lines.push(` ${mark}#${String(i).padEnd(2)} [${f.sp.replace(/^0x/, '')}] ${frameText(f)}${regs}`);
  });
  if (t.end) lines.push(`  ${t.end}`);
  if (t.note) lines.push(`  note: ${t.note}`);
  return lines.join('\n');
}

function cpuLines(list: StackList): string[] {
  return list.cpus.map((c) => {
    const who = c.pid === null ? c.task : `${printable(c.comm ?? '?')} (${c.pid})`;
    const regs = c.registers ? `, registers from ${c.registers}${c.userMode ? ' (user mode)' : ''}` : '';
    return `CPU ${c.cpu}: ${c.idle ? 'idle' : who}${c.online ? '' : ', offline'}${c.panicking ? ', PANIC' : ''}, ${c.nrRunning} runnable${regs}`;
  });
}

export const command = defineRecordCommand({
  name: 'bt',
  description: 'kernel stack traces of tasks from guest RAM, no debuginfo (crash bt): PIDs, --state D, --all or --cpu',
  flags: (cmd) =>
    cmd
      .option('--state <letters>', 'every task in these /proc states, e.g. D (like crash foreach UN bt)')
      .option('-a, --all', 'every task and thread')
      .option('--cpu', "what each CPU was running (rq->curr), idle tasks included (with --qmp: the paused VM's vCPU registers from its monitor)"),
  variadic: 'PIDs (thread ids) to trace, then optionally the snapshot directory (default: the embedded sample guest)',
  target: (words) => {
    const rest = words.filter((w): w is string => w !== undefined && !/^\d+$/.test(w));
    if (rest.length > 1) throw new NearfieldError('USAGE', `one target at most, after the PIDs (got ${rest.join(', ')})`);
    return rest[0];
  },
  validate: (f: BtFlags) => {
    if (f.state !== undefined && !/^[RSDTtXZPI]+$/.test(f.state)) throw new NearfieldError('USAGE', `--state takes /proc state letters (R S D T t X Z P I), not "${f.state}"`);
  },
  read: async (s, f: BtFlags, pids): Promise<StackList> => {
    let registers: VcpuRegisterText[] = [];
    if (f.qmp) registers = await readVcpuRegisters(f.qmp);
    return (await s.guest()).stacks({ pids: pids.map(Number), state: f.state ?? null, all: f.all === true, cpu: f.cpu === true, registers });
  },
  items: (l) => l.tasks,
  text: (l) => {
    const head = cpuLines(l);
    if (l.orc) head.push(`ORC: ${l.orc.format}, ${l.orc.vmlinuxEntries} vmlinux entries, ${l.orc.moduleTables} module tables (${l.orc.evidence})`);
    return [head.join('\n'), ...l.tasks.map(traceText)].join('\n\n') + '\n';
  },
});
