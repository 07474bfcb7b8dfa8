// `nearfield free [target]`: memory use like procps-ng 4 `free`, from the guest's /proc/meminfo computed outside it.

import type { Command } from 'commander';
import { withFormats, withTarget, type CommonOptions } from '../common.js';
import { action, printJson, printTable } from '../output.js';
import { finish, guestFor } from '../walkers-common.js';
import { meminfoLine } from './meminfo.js';

interface FreeOptions extends CommonOptions {
  bytes?: boolean;
  kibi?: boolean;
  mebi?: boolean;
  gibi?: boolean;
  human?: boolean;
  all?: boolean;
}

export interface FreeRecord {
  /** All values in kB (KiB) like /proc/meminfo. */
  mem: { total: number; used: number; free: number; shared: number; buff_cache: number; available: number };
  swap: { total: number; used: number; free: number };
}

/** procps-ng 4: used = total − available; buff/cache = Buffers + Cached + SReclaimable. */
export function freeRecord(m: Record<string, number>): FreeRecord {
  const g = (k: string) => m[k] ?? 0;
  const total = g('MemTotal');
  const buffCache = g('Buffers') + g('Cached') + g('SReclaimable');
  const available = m.MemAvailable ?? Math.max(0, g('MemFree') + buffCache);
  let used = total - available;
  if (used < 0) used = total - g('MemFree') - buffCache;
  return {
    mem: { total, used, free: g('MemFree'), shared: g('Shmem'), buff_cache: buffCache, available },
    swap: { total: g('SwapTotal'), used: g('SwapTotal') - g('SwapFree'), free: g('SwapFree') },
  };
}

/** procps -h style: the largest binary unit that keeps the value ≥ 1, one decimal below 10. */
function human(kb: number): string {
  const units = ['Ki', 'Mi', 'Gi', 'Ti', 'Pi'];
  if (kb === 0) return '0B';
  let v = kb;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? (Math.round(v * 10) / 10).toFixed(1) : Math.round(v)}${units[i]}`;
}

export function registerFree(program: Command): void {
  const cmd = program
    .command('free')
    .description('amount of free and used memory in the guest, like procps free (used = total - available)')
    .option('-b, --bytes', 'show bytes')
    .option('-k, --kibi', 'show KiB (default)')
    .option('-m, --mebi', 'show MiB')
    .option('-g, --gibi', 'show GiB')
    .option('-h, --human', 'show human-readable units')
    .option('-a, --all', 'every /proc/meminfo field instead of the table (like nearfield meminfo)');
  withFormats(withTarget(cmd), false).action(
    action('free', async (positional: string | undefined, opts: FreeOptions) => {
      const { guest } = await guestFor(positional, opts);
      const info = guest.meminfo();
      const m = Object.fromEntries(info.fields.map((f) => [f.name, f.value]));
      const r = freeRecord(m);
      if (opts.all && !opts.json) {
        process.stdout.write(info.fields.map((f) => meminfoLine(f.name, f.value, f.unit)).join('\n') + '\n');
        return finish(info.warnings, opts);
      }
      if (opts.json) {
        printJson({ ...r, unit: 'kB', ...(opts.all ? { meminfo: m } : {}), warnings: info.warnings });
        return finish(info.warnings, opts);
      }
      const fmt = (kb: number): string | number => {
        if (opts.human) return human(kb);
        if (opts.bytes) return kb * 1024;
        if (opts.mebi) return Math.floor(kb / 1024);
        if (opts.gibi) return Math.floor(kb / 1048576);
        return kb;
      };
      printTable(
        ['', 'total', 'used', 'free', 'shared', 'buff/cache', 'available'],
        [
          ['Mem:', fmt(r.mem.total), fmt(r.mem.used), fmt(r.mem.free), fmt(r.mem.shared), fmt(r.mem.buff_cache), fmt(r.mem.available)],
          ['Swap:', fmt(r.swap.total), fmt(r.swap.used), fmt(r.swap.free), '', '', ''],
        ],
        [false, true, true, true, true, true, true],
      );
      return finish(info.warnings, opts);
    }),
  );
}
