// meminfo/free/buddyinfo/uptime from outside vs the guest's own /proc (truth.json of the committed sample).
//
// truth.c reads /proc/meminfo, buddyinfo and loadavg first, then spends seconds building a ~200 KB document
// (every /proc/PID file, /proc/kallsyms, the kernel log) and pushing it through the UART before the pause.
// Measured on the committed sample, that activity moves MemFree by −696 kB, MemAvailable by −232 kB,
// AnonPages by +304 kB, Slab by +540 kB and Committed_AS by +568 kB between the print and the pause, and
// splits one order-10 block of zone DMA32; Buffers and Cached do not move. Those tolerances are stated per
// field below; everything else must be identical.

import { beforeAll, describe, expect, it } from 'vitest';
import { json, readTruth, run, sample, type Truth } from './walkers-helpers.js';

let truth: Truth;
let files: Record<string, string>;
const out: Record<string, { meminfo: Truth; buddy: Truth; uptime: Truth; free: Truth }> = {};

beforeAll(async () => {
  const s = await sample();
  truth = readTruth(s);
  files = { 'ram.raw': s.ram, 'core.elf': s.core };
  for (const [name, file] of Object.entries(files)) {
    out[name] = { meminfo: json('meminfo', file), buddy: json('buddyinfo', file), uptime: json('uptime', file), free: json('free', file) };
  }
});

/** kB each field may move between print and pause (see the header); absent = must be identical. */
const tolerance: Record<string, number> = {
  MemFree: 1024,
  MemAvailable: 1024,
  Buffers: 64,
  Cached: 64,
  Active: 1024, Inactive: 1024, 'Active(anon)': 1024, 'Inactive(anon)': 1024, 'Active(file)': 256, 'Inactive(file)': 256,
  AnonPages: 1024, Mapped: 256, Shmem: 64, Dirty: 256, Writeback: 256,
  KReclaimable: 1024, Slab: 1024, SReclaimable: 1024, SUnreclaim: 1024, KernelStack: 64, PageTables: 256,
  Committed_AS: 2048, VmallocUsed: 256, Percpu: 64,
};

// loadavg.h: one LOAD_FREQ update of avenrun with `n` active tasks (kernel/sched/loadavg.c calc_load).
const FIXED_1 = 2048;
const EXP = [1884, 2014, 2037];
const calcLoad = (load: number, exp: number, n: number) => {
  const active = n * FIXED_1;
  let next = load * exp + active * (FIXED_1 - exp);
  if (active >= load) next += FIXED_1 - 1;
  return Math.floor(next / FIXED_1);
};
const loadText = (raw: number) => {
  const x = raw + FIXED_1 / 200;
  return `${Math.floor(x / FIXED_1)}.${String(Math.floor(((x & (FIXED_1 - 1)) * 100) / FIXED_1)).padStart(2, '0')}`;
};

describe.each(['ram.raw', 'core.elf'])('memory on %s', (name) => {
  it('prints the same /proc/meminfo fields, in the same order', () => {
    expect(Object.keys(out[name]!.meminfo.fields)).toEqual(Object.keys(truth.meminfo));
    expect(out[name]!.meminfo.warnings).toEqual([]);
  });

  it('has MemTotal and the fields that do not move identical, the rest within the stated tolerance', () => {
    const ours = out[name]!.meminfo.fields as Record<string, number>;
    expect(ours.MemTotal).toBe(truth.meminfo.MemTotal);
    for (const [field, want] of Object.entries(truth.meminfo as Record<string, number>)) {
      const tol = tolerance[field] ?? 0;
      expect(Math.abs(ours[field]! - want), `${field}: ours ${ours[field]} vs guest ${want} (±${tol})`).toBeLessThanOrEqual(tol);
    }
  });

  it('has MemFree equal to the pages on the buddy free lists (NR_FREE_PAGES counts exactly those)', () => {
    expect(out[name]!.meminfo.fields.MemFree).toBe(out[name]!.buddy.summary.free_kb);
  });

  it('computes free like procps-ng 4: used = total − available, buff/cache = Buffers + Cached + SReclaimable', () => {
    const m = out[name]!.meminfo.fields;
    const f = out[name]!.free;
    expect(f.mem).toEqual({
      total: m.MemTotal, used: m.MemTotal - m.MemAvailable, free: m.MemFree, shared: m.Shmem,
      buff_cache: m.Buffers + m.Cached + m.SReclaimable, available: m.MemAvailable,
    });
  });

  it('has the same buddyinfo zones, zone DMA (untouched by the printer) identical, the free total within MemFree\'s tolerance', () => {
    const ours = out[name]!.buddy.zones;
    expect(ours.map((z: Truth) => [z.node, z.zone, z.free.length])).toEqual(truth.buddyinfo.map((z: Truth) => [z.node, z.zone, z.free.length]));
    for (const [i, z] of truth.buddyinfo.entries()) {
      if (z.zone === 'DMA') expect(ours[i].free).toEqual(z.free);
    }
    const truthFreeKb = truth.buddyinfo.reduce((s: number, z: Truth) => s + z.free.reduce((a: number, n: number, o: number) => a + n * 4 * 2 ** o, 0), 0);
    expect(truthFreeKb).toBe(truth.meminfo.MemFree); // the truth's own two files agree
    expect(Math.abs(out[name]!.buddy.summary.free_kb - truthFreeKb)).toBeLessThanOrEqual(tolerance.MemFree!);
  });

  it('has the hostname, release, CPUs, thread count and last pid the guest printed', () => {
    const u = out[name]!.uptime;
    expect(u.hostname).toBe(truth.hostname);
    expect(u.release).toBe(truth.kernel.osrelease);
    expect(u.version).toBe(truth.kernel.version);
    expect(u.online_cpus).toEqual([0, 1]);
    expect(truth.kernel.cpus_online).toBe('0-1');
    expect(u.threads).toBe(truth.loadavg.total);
    expect(u.last_pid).toBe(truth.loadavg.last_pid);
    expect(u.warnings).toEqual([]);
  });

  it('has an uptime between the guest\'s last clock reading and the pause', () => {
    const u = out[name]!.uptime;
    const printedEnd = truth.clocks.boottime_ns / 1e9;
    // host pause time minus the guest's wall clock at its last reading: how long the guest ran after it
    const gap = (Date.parse(truth.after_print.host_paused) - truth.clocks.realtime_ns / 1e6) / 1000;
    expect(u.uptime_s).toBeGreaterThanOrEqual(Math.floor(truth.uptime.uptime_s * 100) / 100);
    expect(u.uptime_s).toBeGreaterThanOrEqual(Math.floor(printedEnd * 100) / 100);
    expect(u.uptime_s).toBeLessThanOrEqual(printedEnd + Math.max(gap, 0) + 1); // 1 s: guest/host clock skew under TCG
  });

  it('has the load averages the guest printed, or what the kernel\'s own 5-second updates make of them since', () => {
    const ours: string[] = out[name]!.uptime.loadavg.map((v: number) => v.toFixed(2));
    const printed = [truth.loadavg.load1, truth.loadavg.load5, truth.loadavg.load15].map((v: number) => v.toFixed(2));
    if (ours.join() === printed.join()) return;
    // Between print and pause (measured in uptime), calc_global_load may have run once or twice.
    const elapsed = out[name]!.uptime.uptime_s - truth.uptime.uptime_s;
    const steps = Math.min(2, Math.ceil(elapsed / 5));
    const rawFor = (text: string) => Array.from({ length: 40 * FIXED_1 }, (_, r) => r).filter((r) => loadText(r) === text);
    const starts = printed.map(rawFor);
    const reachable = (i: number, ns: number[]) => starts[i]!.some((r) => loadText(ns.reduce((x, n) => calcLoad(x, EXP[i]!, n), r)) === ours[i]);
    const seqs: number[][] = [];
    for (let a = 0; a <= 8; a++) {
      seqs.push([a]);
      if (steps > 1) for (let b = 0; b <= 8; b++) seqs.push([a, b]);
    }
    expect(steps).toBeGreaterThan(0);
    expect(seqs.some((ns) => [0, 1, 2].every((i) => reachable(i, ns))), `${ours} from ${printed} in ${steps} update(s)`).toBe(true);
  });
});

describe('memory CLI', () => {
  it('gives identical results on ram.raw and core.elf', () => {
    expect(out['core.elf']).toEqual(out['ram.raw']);
  });

  it('prints /proc/meminfo lines with the kernel\'s widths', () => {
    const r = run(['meminfo', '--ram', files['ram.raw']!]);
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe(`MemTotal:       ${String(truth.meminfo.MemTotal).padStart(8)} kB`);
    expect(lines.find((l) => l.startsWith('HugePages_Total:'))).toBe(truth.raw.files['/proc/meminfo'].split('\n').find((l: string) => l.startsWith('HugePages_Total:')));
  });

  it('prints /proc/buddyinfo lines in the kernel\'s format', () => {
    const r = run(['buddyinfo', '--ram', files['ram.raw']!]);
    expect(r.status).toBe(0);
    const want = truth.raw.files['/proc/buddyinfo'].split('\n')[0].replace(/\s+\d+\s+\d+\s*$/, '');
    expect(r.stdout.split('\n')[0]!.startsWith(want.slice(0, 22))).toBe(true); // "Node 0, zone      DMA "
    expect(r.stdout).toMatch(/largest free block: order \d+/);
  });

  it('prints free and uptime tables, exit 0', () => {
    const f = run(['free', '-m', '--ram', files['ram.raw']!]);
    expect(f.status).toBe(0);
    expect(f.stdout).toMatch(/^\s+total\s+used\s+free\s+shared\s+buff\/cache\s+available\nMem:\s+203\s/);
    const u = run(['uptime', '--ram', files['ram.raw']!]);
    expect(u.status).toBe(0);
    expect(u.stdout).toMatch(/ up \d+ sec,  load average: \d+\.\d\d, \d+\.\d\d, \d+\.\d\d\n/);
    expect(u.stdout).toContain(truth.hostname);
  });
});
