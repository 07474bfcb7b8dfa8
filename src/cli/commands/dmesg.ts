// `nearfield dmesg [target]`: the guest's kernel log from its printk ring buffer, like util-linux dmesg; and the
// report's dmesg collector (the log's tail: what a hung guest said last).

import type { Log, LogRecord } from '../../generated/records.js';
import { NearfieldError } from '../../errors.js';
import { defineRecordCommand } from '../define.js';
import { defineCollector } from '../../report/collector.js';

interface DmesgFlags {
  raw?: boolean;
  level?: string;
  ctime?: boolean;
}

const levels = ['emerg', 'alert', 'crit', 'err', 'warn', 'notice', 'info', 'debug'];

function parseLevels(spec: string): Set<number> {
  const out = new Set<number>();
  for (const name of spec.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean)) {
    const i = levels.indexOf(name);
    if (i < 0) throw new NearfieldError('USAGE', `--level takes a list of ${levels.join(', ')}, not "${name}"`);
    out.add(i);
  }
  return out;
}

/** `[    4.820973] text`, continuation lines indented under the first, as dmesg prints a record. */
export function dmesgLine(r: LogRecord, stamp?: string, prefix = ''): string {
  const head = `${prefix}[${stamp ?? `${String(Math.floor(r.tsUsec / 1e6)).padStart(5)}.${String(r.tsUsec % 1e6).padStart(6, '0')}`}] `;
  return head + r.text.split('\n').join(`\n${' '.repeat(head.length)}`);
}

export const command = defineRecordCommand({
  name: 'dmesg',
  description: 'the guest kernel log, read from the printk ring buffer in its RAM',
  flags: (cmd) =>
    cmd
      .option('-r, --raw', 'print the <level> prefix, like dmesg -r')
      .option('-l, --level <list>', `only these levels (${levels.join(',')})`)
      .option('-T, --ctime', "wall-clock timestamps (UTC), from the guest's boot time"),
  validate: (f: DmesgFlags) => void (f.level && parseLevels(f.level)),
  read: async (s, f: DmesgFlags): Promise<Log> => {
    const log = (await s.guest()).dmesg();
    if (!f.level) return log;
    const want = parseLevels(f.level);
    return { ...log, records: log.records.filter((r) => want.has(r.level)) };
  },
  items: (log) => log.records,
  view: async (log, s, f: DmesgFlags) => ({ log, bootWallMs: f.ctime ? Number(BigInt((await s.guest()).uptime().bootWallNs) / 1_000_000n) : null }),
  text: ({ log, bootWallMs }, f: DmesgFlags) => {
    const lines = log.records.map((r) =>
      dmesgLine(r, bootWallMs === null ? undefined : new Date(bootWallMs + r.tsUsec / 1000).toISOString(), f.raw ? `<${r.level}>` : ''));
    return lines.join('\n') + (lines.length ? '\n' : '');
  },
});

export const collectors = [
  defineCollector({
    name: 'dmesg',
    needs: 'ram',
    order: 60,
    collect: ({ guest, sections, top }) => {
      // the newest lines: what a hung guest said last
      sections.dmesg = guest!.dmesg({ tail: top * 2 });
    },
    table: (r) => {
      const k = r.sections.dmesg;
      if (!k || k.records.length === 0) return undefined;
      return {
        title: `kernel log: last ${k.records.length} of ${k.total} records, ${k.errorsOrWorse} at level err or worse`,
        body: k.records.map((l) => `[${(l.tsUsec / 1e6).toFixed(6).padStart(12)}] ${l.text}`).join('\n'),
      };
    },
    prometheus: (r, m) => {
      const k = r.sections.dmesg;
      m.gauge('nearfield_kernel_log_records', "Records in the guest kernel's printk ring buffer.", k?.total);
      m.gauge('nearfield_kernel_log_errors', 'Kernel log records at level err or worse (0-3).', k?.errorsOrWorse);
    },
  }),
];
