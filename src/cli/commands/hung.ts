// `nearfield hung [target]`: every task in uninterruptible sleep (D) — how long it has been blocked, whether
// khungtaskd reported or would report it, what it waits on (a lock's owner, a frozen filesystem, its wait
// channel) and its kernel stack.

import type { HungTask, HungTasks } from '../../generated/records.js';
import { defineRecordCommand, printable } from '../define.js';
import { renderTable } from '../output.js';
import { traceText } from './bt.js';

interface HungFlags {
  brief?: boolean;
}

/** Seconds (one decimal) from a decimal-string ns count. */
export function seconds(ns: string | null | undefined): string {
  if (ns === null || ns === undefined) return '-';
  return `${(Number(BigInt(ns) / 1_000_000n) / 1000).toFixed(1)} s`;
}

export function waitsOnText(t: HungTask): string {
  return printable(t.waitsOn.description);
}

export function hungText(h: HungTasks, brief = false): string {
  const out: string[] = [];
  const timeout = h.timeoutSecs === null ? 'unknown' : h.timeoutSecs === 0 ? 'off' : `${h.timeoutSecs} s`;
  const left = h.warningsLeft === null ? '' : h.warningsLeft < 0 ? ', reports unlimited' : `, ${h.warningsLeft} reports left`;
  out.push(`khungtaskd: timeout ${timeout}${left}${h.hz ? `, HZ ${h.hz}` : ''}`);
  for (const f of h.frozen) {
    const who = f.waiters.map((w) => `${printable(w.comm)} (${w.pid})`).join(', ');
    out.push(`frozen: ${f.fstype ?? '?'} ${f.mountpoints.join(' ') || '(not mounted)'} (${f.device ?? '?'}, level ${f.level})${who ? `: waiting ${who}` : ''}`);
  }
  if (h.tasks.length === 0) {
    out.push('no task is in uninterruptible sleep (D)');
    return out.join('\n') + '\n';
  }
  const rows = h.tasks.map((t) => [t.pid, printable(t.comm), t.state, seconds(t.blockedForNs), t.khungtaskd.verdict, waitsOnText(t)]);
  out.push('', renderTable(['PID', 'COMM', 'S', 'BLOCKED', 'KHUNGTASKD', 'WAITS ON'], rows, [true, false, false, true, false, false]));
  if (!brief) {
    for (const t of h.tasks) {
      out.push('', `${printable(t.comm)} (${t.pid}): ${t.khungtaskd.note}`);
      if (t.stack) out.push(traceText(t.stack));
    }
  }
  return out.join('\n') + '\n';
}

export const command = defineRecordCommand({
  name: 'hung',
  description: 'tasks blocked in D: for how long, khungtaskd, what they wait on (lock owner, frozen fs), their stacks',
  flags: (cmd) => cmd.option('--brief', 'the table only, without stacks'),
  read: async (s) => (await s.guest()).hung(),
  items: (h) => h.tasks,
  text: (h, f: HungFlags) => hungText(h, f.brief === true),
});
