// kdump benchmark (issue 15): `nearfield ps` whole-process on a kdump-zlib dump vs on ram.raw of the same paused
// guest, in one run. Targets: ps on the dump ≤ 1.3× ps on ram.raw, peak RSS ≤ 150 MB.
// The guest: the sample when it carries kdump-zlib, else a sample-sized guest the builder made in images/out/.

import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Guest } from '../src/guest.js';
import { native } from '../src/native/gateway.js';
import { packageRoot } from '../src/target.js';
import { nearfield, row, timeInProcess } from './util.js';

interface SamplePaths { dir: string; ram: string }

function guestWithDump(sampleDir: string): string | null {
  const out = join(packageRoot(), 'images', 'out');
  const candidates = [process.env.NEARFIELD_KDUMP_GUEST, sampleDir, join(out, 'no5lvl-256m'), join(out, 'ci-fresh'), join(out, 'default-256m')];
  return candidates.find((d): d is string => d !== undefined && existsSync(join(d, 'kdump-zlib')) && existsSync(join(d, 'ram.raw'))) ?? null;
}

export async function benchKdump(samplePaths: () => Promise<SamplePaths>): Promise<void> {
  const s = await samplePaths();
  const dir = guestWithDump(dirname(s.ram));
  if (!dir) {
    row('kdump', 'skipped: no guest with kdump-zlib (node images/build-guest.mjs --out images/out/no5lvl-256m --no5lvl)');
    return;
  }
  const raw = join(dir, 'ram.raw');
  const dump = join(dir, 'kdump-zlib');
  const cacheDir = mkdtempSync(join(tmpdir(), 'nf-bench-kdump-'));
  const env = { ...process.env, NEARFIELD_CACHE_DIR: cacheDir };
  try {
    row('guest', dir);
    const cold = new Map<string, number>();
    const warm = new Map<string, number>();
    // Interleaved, so a busy machine slows both alike.
    for (let round = 0; round < 2; round++) {
      for (const [label, file] of [['ram.raw', raw], ['kdump-zlib', dump]] as const) {
        const c = nearfield(['ps', '--ram', file, '--json', '--no-cache'], 5, env);
        if (round === 1) {
          cold.set(label, c.medianMs);
          row(`nearfield ps --no-cache, ${label} (whole process)`, `${c.medianMs.toFixed(1)} ms median of ${c.runs}, ${c.peakRssMb} MB peak${label === 'kdump-zlib' ? ' (target ≤ 150 MB)' : ''}`);
        }
        nearfield(['ps', '--ram', file, '--json'], 1, env); // fill the profile cache
        const w = nearfield(['ps', '--ram', file, '--json'], 9, env);
        if (round === 1) {
          warm.set(label, w.medianMs);
          row(`nearfield ps, profile cached, ${label} (whole process)`, `${w.medianMs.toFixed(1)} ms median of ${w.runs}, ${w.peakRssMb} MB peak`);
        }
      }
    }
    const ratio = (m: Map<string, number>) => (m.get('kdump-zlib')! / m.get('ram.raw')!).toFixed(2);
    row('ps on kdump-zlib / ps on ram.raw, cold', `${ratio(cold)}× (target ≤ 1.3×)`);
    row('ps on kdump-zlib / ps on ram.raw, cached', `${ratio(warm)}× (target ≤ 1.3×)`);

    for (const [label, file] of [['ram.raw', raw], ['kdump-zlib', dump]] as const) {
      const open = await timeInProcess(() => Guest.openSync({ ram: file, cache: false }).close(), 5, 1);
      const guest = Guest.openSync({ ram: file, cache: true });
      const walk = await timeInProcess(() => guest.tasks({ cmdline: true }), 21, 3);
      row(`discovery cold + task walk, ${label} (in-process)`, `${open.toFixed(1)} ms + ${walk.toFixed(2)} ms medians`);
    }

    const out = join(cacheDir, 'dump.elf');
    const t = performance.now();
    const r = await new (native().RamConvert)(dump, out, 'elf', 'auto').start();
    row('convert kdump-zlib --to elf (in-process)', `${(performance.now() - t).toFixed(0)} ms, ${(r.memoryBytes / 2 ** 20).toFixed(0)} MiB of memory, ${(r.dataBytes / 2 ** 20).toFixed(0)} MiB written`);
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
}
