// `nearfield free [target]`: memory use like procps-ng 4 `free`, from the guest's /proc/meminfo computed outside it;
// and the report's memory collector (the free table, node_memory_* metrics, vhostmd memory metrics).

import type { Free } from '../../generated/records.js';
import { NearfieldError } from '../../errors.js';
import { defineRecordCommand } from '../define.js';
import { defineCollector } from '../../report/collector.js';
import { freeScaled, type FreeUnits } from '../../report/units.js';
import { meminfoLine } from './meminfo.js';

interface FreeFlags {
  bytes?: boolean;
  kibi?: boolean;
  mebi?: boolean;
  gibi?: boolean;
  tebi?: boolean;
  pebi?: boolean;
  kilo?: boolean;
  mega?: boolean;
  giga?: boolean;
  tera?: boolean;
  peta?: boolean;
  human?: boolean;
  si?: boolean;
  wide?: boolean;
  lohi?: boolean;
  total?: boolean;
  committed?: boolean;
  all?: boolean;
}

/** What free prints besides Mem: and Swap:, as procps-ng 4.0's options say. */
export interface FreeLayout {
  units: FreeUnits;
  wide?: boolean;
  lohi?: boolean;
  total?: boolean;
  committed?: boolean;
}

/** The unit flags as procps free reads them: -b 1, -k/--kilo 2, -m/--mega 3 … (--kilo … --peta are --si units). */
const unitFlags: [keyof FreeFlags, number, boolean][] = [
  ['bytes', 1, false], ['kibi', 2, false], ['mebi', 3, false], ['gibi', 4, false], ['tebi', 5, false], ['pebi', 6, false],
  ['kilo', 2, true], ['mega', 3, true], ['giga', 4, true], ['tera', 5, true], ['peta', 6, true],
];

function unitsOf(f: FreeFlags): FreeUnits {
  const chosen = unitFlags.filter(([flag]) => f[flag]);
  if (chosen.length > 1) throw new NearfieldError('USAGE', `choose one unit, not ${chosen.map(([flag]) => `--${flag}`).join(' and ')}`);
  const [, exponent, si] = chosen[0] ?? ['kibi', 0, false];
  return { exponent, si: si || f.si === true, human: f.human === true };
}

/**
 * free's output, byte for byte as procps-ng 4.0 prints it (src/free.c): the header, then each row's label padded
 * to 9 columns and every figure right-aligned in 11 (after one space).
 */
export function freeText(f: Free, layout: FreeLayout): string {
  const fmt = (kib: number) => freeScaled(kib, layout.units).padStart(11);
  const row = (label: string, figures: number[]) => label.padEnd(9) + figures.map(fmt).join(' ') + '\n';
  const { mem, swap } = f;
  let out = layout.wide
    ? '               total        used        free      shared     buffers       cache   available\n'
    : '               total        used        free      shared  buff/cache   available\n';
  out += row('Mem:', [mem.totalKib, mem.usedKib, mem.freeKib, mem.sharedKib, ...(layout.wide ? [mem.buffersKib, mem.cacheKib] : [mem.buffCacheKib]), mem.availableKib]);
  if (layout.lohi) {
    out += row('Low:', [f.low.totalKib, f.low.usedKib, f.low.freeKib]);
    out += row('High:', [f.high.totalKib, f.high.usedKib, f.high.freeKib]);
  }
  out += row('Swap:', [swap.totalKib, swap.usedKib, swap.freeKib]);
  if (layout.total) out += row('Total:', [mem.totalKib + swap.totalKib, mem.usedKib + swap.usedKib, mem.freeKib + swap.freeKib]);
  if (layout.committed) out += row('Comm:', [f.commit.limitKib, f.commit.committedKib, f.commit.leftKib]);
  return out;
}

export const command = defineRecordCommand({
  name: 'free',
  description: 'amount of free and used memory in the guest, like procps-ng free (used = total - available)',
  flags: (cmd) =>
    cmd
      .option('-b, --bytes', 'show output in bytes')
      .option('--kilo', 'show output in kilobytes')
      .option('--mega', 'show output in megabytes')
      .option('--giga', 'show output in gigabytes')
      .option('--tera', 'show output in terabytes')
      .option('--peta', 'show output in petabytes')
      .option('-k, --kibi', 'show output in kibibytes (the default)')
      .option('-m, --mebi', 'show output in mebibytes')
      .option('-g, --gibi', 'show output in gibibytes')
      .option('--tebi', 'show output in tebibytes')
      .option('--pebi', 'show output in pebibytes')
      .option('-h, --human', 'show human-readable output')
      .option('--si', 'use powers of 1000 not 1024')
      .option('-l, --lohi', 'show detailed low and high memory statistics')
      .option('-t, --total', 'show total for RAM + swap')
      .option('-v, --committed', 'show committed memory and commit limit')
      .option('-w, --wide', 'wide output (buffers and cache apart)')
      .option('-a, --all', 'every /proc/meminfo field instead of the table (like nearfield meminfo)'),
  validate: (f: FreeFlags) => void unitsOf(f),
  read: async (s) => (await s.guest()).free(),
  // free -a prints every /proc/meminfo line instead (its --json stays the free record)
  view: async (free, s, f: FreeFlags) => ({ free, meminfo: f.all ? (await s.guest()).meminfo() : undefined }),
  text: ({ free, meminfo }, f: FreeFlags) => {
    if (meminfo) return meminfo.fields.map((x) => meminfoLine(x.name, x.value, x.unit)).join('\n') + '\n';
    return freeText(free, { units: unitsOf(f), wide: f.wide, lohi: f.lohi, total: f.total, committed: f.committed });
  },
});

export const collectors = [
  defineCollector({
    name: 'memory',
    needs: 'ram',
    order: 20,
    collect: ({ guest, sections }) => {
      sections.meminfo = guest!.meminfo();
      sections.free = guest!.free();
    },
    // the report's memory block is `free -h`, through the same formatter
    table: (r) => r.sections.free && { title: 'memory', body: freeText(r.sections.free, { units: { exponent: 0, si: false, human: true } }).trimEnd() },
    prometheus: (r, m) => {
      for (const f of r.sections.meminfo?.fields ?? []) {
        // node_exporter's meminfo collector: "Active(anon)" → node_memory_Active_anon_bytes; HugePages_* are counts.
        const name = f.name.replace(/\((.*)\)/, '_$1').replace(/[^a-zA-Z0-9_]/g, '_');
        if (f.unit === 'kB') m.gauge(`node_memory_${name}_bytes`, `Memory information field ${name}_bytes.`, f.value * 1024);
        else m.gauge(`node_memory_${name}`, `Memory information field ${name}.`, f.value);
      }
    },
    vhostmd: (r, emit) => {
      const fields = new Map((r.sections.meminfo?.fields ?? []).map((f) => [f.name, f.value]));
      // vhostmd's own memory metrics are in MiB or kB depending on the action; we say kB in the name.
      for (const f of ['MemTotal', 'MemFree', 'MemAvailable', 'Buffers', 'Cached', 'SwapTotal', 'SwapFree', 'Shmem', 'Slab']) emit('uint64', `${f}KiB`, fields.get(f));
    },
  }),
];
