// `nearfield dmesg [target]`: the guest's kernel log from its printk ring buffer, like util-linux dmesg.

import type { Command } from 'commander';
import { withFormats, withTarget, type CommonOptions } from '../common.js';
import { action, printJson, printJsonl, NearfieldError } from '../output.js';
import { finish, guestFor, num } from '../walkers-common.js';

interface DmesgOptions extends CommonOptions {
  raw?: boolean;
  level?: string;
  ctime?: boolean;
}

const levels = ['emerg', 'alert', 'crit', 'err', 'warn', 'notice', 'info', 'debug'];
/** printk_info.flags: LOG_CONT (kernel/printk/printk_ringbuffer.h). */
const LOG_CONT = 8;

/** One record as /dev/kmsg describes it (seq, µs, level, facility, flag, text, SUBSYSTEM=/DEVICE= dict). */
export interface DmesgRecord {
  seq: number;
  ts_usec: number;
  level: number;
  facility: number;
  flags: string;
  caller: string;
  text: string;
  dict: string[];
}

function parseLevels(spec: string): Set<number> {
  const out = new Set<number>();
  for (const name of spec.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean)) {
    const i = levels.indexOf(name);
    if (i < 0) throw new NearfieldError('USAGE', `--level takes a list of ${levels.join(', ')}, not "${name}"`);
    out.add(i);
  }
  return out;
}

export function registerDmesg(program: Command): void {
  const cmd = program
    .command('dmesg')
    .description('the guest kernel log, read from the printk ring buffer in its RAM')
    .option('-r, --raw', 'print the <level> prefix, like dmesg -r')
    .option('-l, --level <list>', `only these levels (${levels.join(',')})`)
    .option('-T, --ctime', 'wall-clock timestamps (UTC), from the guest\'s boot time');
  withFormats(withTarget(cmd)).action(
    action('dmesg', async (positional: string | undefined, opts: DmesgOptions) => {
      const want = opts.level ? parseLevels(opts.level) : undefined;
      const { guest } = await guestFor(positional, opts);
      const log = guest.dmesg();
      let bootWallMs: number | null = null;
      if (opts.ctime) bootWallMs = (num(guest.uptime().bootWallNs) ?? 0) / 1e6;
      const records: DmesgRecord[] = log.records
        .filter((r) => !want || want.has(r.level))
        .map((r) => ({
          seq: r.seq,
          ts_usec: r.tsUsec,
          level: r.level,
          facility: r.facility,
          flags: r.flags & LOG_CONT ? 'c' : '-',
          caller: r.caller,
          text: r.text,
          dict: [...(r.subsystem ? [`SUBSYSTEM=${r.subsystem}`] : []), ...(r.device ? [`DEVICE=${r.device}`] : [])],
        }));
      if (opts.json) printJson({ records, warnings: log.warnings });
      else if (opts.jsonl) printJsonl(records);
      else {
        const lines = records.map((r) => {
          const stamp =
            bootWallMs !== null
              ? new Date(bootWallMs + r.ts_usec / 1000).toISOString()
              : `${String(Math.floor(r.ts_usec / 1e6)).padStart(5)}.${String(r.ts_usec % 1e6).padStart(6, '0')}`;
          const prefix = `${opts.raw ? `<${r.level}>` : ''}[${stamp}] `;
          // a record holding several lines: the rest indented under the first, as dmesg does
          return prefix + r.text.split('\n').join(`\n${' '.repeat(prefix.length)}`);
        });
        process.stdout.write(lines.join('\n') + (lines.length ? '\n' : ''));
      }
      return finish(log.warnings, opts);
    }),
  );
}
