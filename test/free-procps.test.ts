// `nearfield free` against the real procps-ng free (Debian 12: 4.0.2) run on the same /proc/meminfo, byte for
// byte: in a private mount namespace (unshare -m, as root) a file is bind-mounted over /proc/meminfo and free reads
// it. Once on each guest's meminfo (as nearfield computes it) with every unit and layout flag, and once on a few
// hundred synthetic figures that walk the formatter's edges (9.95 Gi, 1023 Mi, 999 K …).
// Skipped only when `unshare -m` is not available here (not root, or no mount namespaces); the reason is printed.

import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builtGuests } from './built-guests.js';
import { breathe, run, sample } from './walkers-helpers.js';
import { freeScaled, type FreeUnits } from '../src/report/units.js';

const probe = spawnSync('unshare', ['-m', 'sh', '-c', 'mount --bind /proc/version /proc/meminfo && free -V'], { encoding: 'utf8' });
const unshareOk = probe.status === 0 && /procps-ng 4\./.test(probe.stdout);
if (!unshareOk) {
  console.warn(`free-procps: skipped: cannot run the real free on a chosen meminfo here (unshare -m / mount --bind as root, procps-ng 4): ${(probe.stderr || probe.stdout || String(probe.error)).trim()}`);
}

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'nf-free-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Run the real free once per flag set on `meminfo` (a file's text), all in one mount namespace; outputs in order. */
function realFree(meminfo: string, flagSets: string[][]): string[] {
  const file = join(work, `meminfo-${Math.random().toString(36).slice(2)}`);
  writeFileSync(file, meminfo);
  const sep = '@@NF-FREE@@';
  const script = ['mount --bind "$1" /proc/meminfo || exit 99', ...flagSets.map((f) => `free ${f.join(' ')}; echo ${sep}`)].join('\n');
  const r = spawnSync('unshare', ['-m', 'sh', '-c', script, 'sh', file], { encoding: 'utf8', env: { ...process.env, LC_ALL: 'C' } });
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.split(`${sep}\n`).slice(0, flagSets.length);
}

const flagSets = [
  [], ['-h'], ['-m'], ['-g'], ['-b'], ['-k'], ['--si'], ['-h', '--si'], ['--kilo'], ['--mega'], ['--giga'], ['--tebi'], ['--pebi'],
  ['-w'], ['-w', '-h'], ['-l'], ['-t'], ['-v'], ['-h', '-l', '-t', '-v', '-w'], ['--mega', '-t'],
];

describe.skipIf(!unshareOk)('nearfield free equals procps-ng free on the same meminfo', () => {
  const guests = async () => [{ name: 'sample', ram: (await sample()).ram }, ...builtGuests().filter((g) => g.present).map((g) => ({ name: g.name, ram: g.ram }))];

  it('every unit and layout flag on the sample, the default and -h on each built guest', async () => {
    for (const g of await guests()) {
      const mi = run(['meminfo', '--ram', g.ram]);
      expect(mi.status, mi.stderr).toBe(0);
      const sets = g.name === 'sample' ? flagSets : [[], ['-h']];
      const want = realFree(mi.stdout, sets);
      for (const [i, flags] of sets.entries()) {
        await breathe();
        const ours = run(['free', '--ram', g.ram, ...flags]);
        expect(ours.status, ours.stderr).toBe(0);
        expect(ours.stdout, `${g.name}: free ${flags.join(' ')}`).toBe(want[i]);
      }
    }
  }, 120_000);

  it("the report's memory block is free -h", async () => {
    const s = await sample();
    const want = realFree(run(['meminfo', '--ram', s.ram]).stdout, [['-h']])[0]!;
    const r = run(['report', '--ram', s.ram]);
    expect(r.stdout).toContain(`-- memory\n${want}`);
  });

  it('the formatter on synthetic figures: powers of 1024 and 1000, rounding and truncation at every edge', () => {
    // Values (KiB) around each unit's 9.95/10 and 999/1000/1023/1024 edges, and a seeded spread of magnitudes.
    const edges = [0, 1, 9, 10, 99, 100, 999, 1000, 1023, 1024, 1025];
    const values = new Set<number>(edges);
    for (const unit of [1, 1024, 1024 ** 2, 1024 ** 3]) {
      for (const x of [9.94, 9.949, 9.95, 9.951, 9.96, 9.99, 9.999, 10, 99.9, 99.95, 999.4, 999.5, 999.9, 1000, 1023.4, 1023.5, 1023.95]) values.add(Math.round(x * unit));
    }
    for (const unit of [1000 / 1024, 1e6 / 1024, 1e9 / 1024]) for (const x of [9.949, 9.95, 9.96, 99.9, 999.5, 1000]) values.add(Math.round(x * unit));
    let seed = 12;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let i = 0; i < 120; i++) values.add(Math.floor(rand() * 10 ** (1 + rand() * 11)));
    const list = [...values].sort((a, b) => a - b);
    // Six figures a row: MemTotal, MemFree, Shmem, Cached (buff/cache), MemAvailable (so used = total − avail), swap.
    const human: FreeUnits[] = [{ exponent: 0, si: false, human: true }, { exponent: 0, si: true, human: true }, { exponent: 3, si: false, human: false }, { exponent: 4, si: true, human: false }];
    const flags = [['-h'], ['-h', '--si'], ['-m'], ['--giga']];
    for (let i = 0; i < list.length; i += 6) {
      const [free, shared, cached, avail, swapFree, extra] = [0, 1, 2, 3, 4, 5].map((k) => list[(i + k) % list.length]!);
      const total = Math.max(free + cached, avail, shared) + extra;
      const swapTotal = swapFree + extra;
      const meminfo = [
        `MemTotal: ${total} kB`, `MemFree: ${free} kB`, `MemAvailable: ${avail} kB`, 'Buffers: 0 kB', `Cached: ${cached} kB`,
        `Shmem: ${shared} kB`, 'SReclaimable: 0 kB', `SwapTotal: ${swapTotal} kB`, `SwapFree: ${swapFree} kB`,
      ].join('\n') + '\n';
      const outs = realFree(meminfo, flags);
      outs.forEach((out, k) => {
        const lines = out.split('\n');
        const mem = lines[1]!.slice(9).trim().split(/\s+/);
        const swap = lines[2]!.slice(9).trim().split(/\s+/);
        const available = avail === 0 || avail > total ? free : avail;
        const ours = [total, total - available, free, shared, cached, available].map((v) => freeScaled(v, human[k]!));
        expect(mem, `${meminfo} free ${flags[k]!.join(' ')}`).toEqual(ours);
        expect(swap).toEqual([swapTotal, swapTotal - swapFree, swapFree].map((v) => freeScaled(v, human[k]!)));
      });
    }
  }, 120_000);
});
