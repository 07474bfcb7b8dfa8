// meminfo/free/buddyinfo/uptime from outside vs the guest's own /proc (truth.json of the committed sample).
//
// truth.c prints /proc/meminfo, buddyinfo and loadavg first, then pushes the document through the UART; by the
// pause memory had moved. So it re-reads them (and uptime, the clocks, vmstat) after transmission, with vmstat
// folded and compaction stopped, and sends them just before END (truth.at_end). What may still move between that
// re-read and the pause is walkers-helpers.ts atEndTolerance (measured on 14 builds).

import { beforeAll, describe, expect, it } from 'vitest';
import { atEndTolerance, json, readTruth, run, sample, type Truth } from './walkers-helpers.js';

let truth: Truth;
let files: Record<string, string>;
const out: Record<string, { meminfo: Truth; buddy: Truth; uptime: Truth; free: Truth }> = {};

beforeAll(async () => {
  const s = await sample();
  truth = readTruth(s);
  files = { 'ram.raw': s.ram, 'core.elf': s.core };
  for (const [name, file] of Object.entries(files)) {
    const meminfo = json('meminfo', file);
    // fields by name, in the kernel's order
    meminfo.byName = Object.fromEntries(meminfo.fields.map((f: Truth) => [f.name, f.value]));
    out[name] = { meminfo, buddy: json('buddyinfo', file), uptime: json('uptime', file), free: json('free', file) };
  }
});

const tolerance = atEndTolerance;

describe.each(['ram.raw', 'core.elf'])('memory on %s', (name) => {
  it('prints the same /proc/meminfo fields, in the same order', () => {
    expect(out[name]!.meminfo.fields.map((f: Truth) => f.name)).toEqual(Object.keys(truth.meminfo));
    for (const f of out[name]!.meminfo.fields) expect(f.unit, f.name).toBe(f.name.startsWith('HugePages_') ? '' : 'kB');
    expect(out[name]!.meminfo.warnings).toEqual([]);
  });

  it('has every field the guest re-read just before the pause identical, within the measured tolerance', () => {
    const ours = out[name]!.meminfo.byName as Record<string, number>;
    expect(ours.MemTotal).toBe(truth.meminfo.MemTotal);
    expect(Object.keys(truth.at_end.meminfo)).toEqual(Object.keys(truth.meminfo));
    for (const [field, want] of Object.entries(truth.at_end.meminfo as Record<string, number>)) {
      const tol = tolerance[field] ?? 0;
      expect(Math.abs(ours[field]! - want), `${field}: ours ${ours[field]} vs guest ${want} (±${tol})`).toBeLessThanOrEqual(tol);
    }
  });

  it('has MemFree equal to the pages on the buddy free lists (NR_FREE_PAGES counts exactly those)', () => {
    expect(out[name]!.meminfo.byName.MemFree * 1024).toBe(out[name]!.buddy.summary.freeBytes);
  });

  it('computes free like procps-ng 4: used = total − available, buff/cache = Buffers + Cached + SReclaimable', () => {
    const m = out[name]!.meminfo.byName;
    const f = out[name]!.free;
    expect(f.mem).toEqual({
      totalKib: m.MemTotal, usedKib: m.MemTotal - m.MemAvailable, freeKib: m.MemFree, sharedKib: m.Shmem, buffersKib: m.Buffers,
      cacheKib: m.Cached + m.SReclaimable, buffCacheKib: m.Buffers + m.Cached + m.SReclaimable, availableKib: m.MemAvailable,
    });
    expect(f.swap).toEqual({ totalKib: m.SwapTotal, usedKib: m.SwapTotal - m.SwapFree, freeKib: m.SwapFree });
  });

  it('has the buddy free counts of every zone and order the guest re-read just before the pause', () => {
    const ours = out[name]!.buddy.zones;
    expect(ours.map((z: Truth) => [z.node, z.zone, z.free.length])).toEqual(truth.buddyinfo.map((z: Truth) => [z.node, z.zone, z.free.length]));
    expect(ours.map((z: Truth) => [z.node, z.zone, z.free])).toEqual(truth.at_end.buddyinfo.map((z: Truth) => [z.node, z.zone, z.free]));
    const truthFreeKb = truth.at_end.buddyinfo.reduce((s: number, z: Truth) => s + z.free.reduce((a: number, n: number, o: number) => a + n * 4 * 2 ** o, 0), 0);
    expect(truthFreeKb).toBe(truth.at_end.meminfo.MemFree); // the truth's own two files agree
  });

  it('has the hostname, release, CPUs, thread count and last pid the guest printed', () => {
    const u = out[name]!.uptime;
    expect(u.nodename).toBe(truth.hostname);
    expect(u.release).toBe(truth.kernel.osrelease);
    expect(u.version).toBe(truth.kernel.version);
    expect(u.onlineCpus).toEqual([0, 1]);
    expect(truth.kernel.cpus_online).toBe('0-1');
    expect(u.nrThreads).toBe(truth.at_end.loadavg.total);
    expect(u.lastPid).toBe(truth.at_end.loadavg.last_pid);
    expect(u.warnings).toEqual([]);
  });

  it('has an uptime between the guest\'s last clock reading and the pause', () => {
    const u = out[name]!.uptime;
    const reread = truth.at_end.clocks.boottime_ns / 1e9;
    // host pause time minus the guest's wall clock at its last reading: how long the guest ran after it
    const gap = (Date.parse(truth.after_print.host_paused) - truth.at_end.clocks.realtime_ns / 1e6) / 1000;
    expect(u.uptimeSeconds).toBeGreaterThanOrEqual(truth.at_end.uptime.uptime_s);
    expect(u.uptimeSeconds).toBeGreaterThanOrEqual(Math.floor(reread * 100) / 100);
    expect(u.uptimeSeconds).toBeLessThanOrEqual(reread + Math.max(gap, 0) + 1); // 1 s: guest/host clock skew under TCG
  });

  it('has the load averages the guest re-read just before the pause', () => {
    const ours: string[] = out[name]!.uptime.loadavg;
    const l = truth.at_end.loadavg;
    expect(ours).toEqual([l.load1, l.load5, l.load15].map((v: number) => v.toFixed(2)));
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
