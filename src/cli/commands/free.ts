// `nearfield free [target]`: memory use like procps-ng 4 `free`, from the guest's /proc/meminfo computed outside it;
// and the report's memory collector (the free table, node_memory_* metrics, vhostmd memory metrics).

import type { Free } from '../../generated/records.js';
import { NearfieldError } from '../../errors.js';
import { defineRecordCommand } from '../define.js';
import { renderTable } from '../output.js';
import { defineCollector } from '../../report/collector.js';
import { humanBytes } from '../../report/units.js';
import { meminfoLine } from './meminfo.js';

interface FreeFlags {
  bytes?: boolean;
  kibi?: boolean;
  mebi?: boolean;
  gibi?: boolean;
  human?: boolean;
  all?: boolean;
  json?: boolean;
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

/** The Mem:/Swap: table with each figure through `fmt`. */
export function freeTable(f: Free, fmt: (kib: number) => string | number): string {
  const { mem, swap } = f;
  return renderTable(
    ['', 'total', 'used', 'free', 'shared', 'buff/cache', 'available'],
    [
      ['Mem:', fmt(mem.totalKib), fmt(mem.usedKib), fmt(mem.freeKib), fmt(mem.sharedKib), fmt(mem.buffCacheKib), fmt(mem.availableKib)],
      ['Swap:', fmt(swap.totalKib), fmt(swap.usedKib), fmt(swap.freeKib), '', '', ''],
    ],
    [false, true, true, true, true, true, true],
  );
}

export const command = defineRecordCommand({
  name: 'free',
  description: 'amount of free and used memory in the guest, like procps free (used = total - available)',
  flags: (cmd) =>
    cmd
      .option('-b, --bytes', 'show bytes')
      .option('-k, --kibi', 'show KiB (default)')
      .option('-m, --mebi', 'show MiB')
      .option('-g, --gibi', 'show GiB')
      .option('-h, --human', 'show human-readable units')
      .option('-a, --all', 'every /proc/meminfo field instead of the table (like nearfield meminfo)'),
  validate: (f: FreeFlags) => {
    if ([f.bytes, f.kibi, f.mebi, f.gibi, f.human].filter(Boolean).length > 1) throw new NearfieldError('USAGE', 'choose one unit: -b, -k, -m, -g or -h');
  },
  read: async (s) => (await s.guest()).free(),
  // free -a prints every /proc/meminfo line instead (its --json stays the free record)
  view: async (free, s, f: FreeFlags) => ({ free, meminfo: f.all ? (await s.guest()).meminfo() : undefined }),
  text: ({ free, meminfo }, f: FreeFlags) => {
    if (meminfo) return meminfo.fields.map((x) => meminfoLine(x.name, x.value, x.unit)).join('\n') + '\n';
    const fmt = (kb: number): string | number => {
      if (f.human) return human(kb);
      if (f.bytes) return kb * 1024;
      if (f.mebi) return Math.floor(kb / 1024);
      if (f.gibi) return Math.floor(kb / 1048576);
      return kb;
    };
    return freeTable(free, fmt) + '\n';
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
    table: (r) => r.sections.free && { title: 'memory', body: freeTable(r.sections.free, (kib) => humanBytes(kib * 1024)) },
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
