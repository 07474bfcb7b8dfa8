// Kernel discovery benchmark: cold (no cache) and warm (profile cached in this process), in-process and
// whole-process, on the sample guest's raw RAM and ELF core. Targets (issue #3): cold ≤ 200 ms, warm ≤ 10 ms, RSS ≤ 150 MB.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Guest } from '../src/guest.js';
import { nearfield, row, timeInProcess } from './util.js';

interface SamplePaths { ram: string; core: string }

export async function benchKernel(samplePaths: () => Promise<SamplePaths>): Promise<void> {
  const s = await samplePaths();
  // Keep the user's cache out of it.
  const cacheDir = mkdtempSync(join(tmpdir(), 'nf-bench-kernel-'));
  const saved = process.env.NEARFIELD_CACHE_DIR;
  process.env.NEARFIELD_CACHE_DIR = cacheDir;
  try {
    for (const [label, file] of [['raw RAM', s.ram], ['ELF core', s.core]] as const) {
      const open = (cache: boolean) => Guest.openSync({ ram: file, cache }).kernel();
      const cold = await timeInProcess(() => open(false), 9, 1);
      row(`kernel discovery cold, ${label} (in-process)`, `${cold.toFixed(1)} ms median of 9 (target ≤ 200 ms)`);
      open(true);
      const warm = await timeInProcess(() => open(true), 21, 2);
      row(`kernel discovery warm, ${label} (in-process)`, `${warm.toFixed(2)} ms median of 21 (target ≤ 10 ms)`);
      const env = { ...process.env, NEARFIELD_CACHE_DIR: cacheDir };
      const coldProc = nearfield(['kernel', '--ram', file, '--json', '--no-cache'], 5, env);
      row(`nearfield kernel --no-cache, ${label} (whole process)`, `${coldProc.medianMs.toFixed(1)} ms median of ${coldProc.runs}, ${coldProc.peakRssMb} MB peak (target ≤ 150 MB)`);
      const warmProc = nearfield(['kernel', '--ram', file, '--json'], 5, env);
      row(`nearfield kernel, disk cache warm, ${label} (whole process)`, `${warmProc.medianMs.toFixed(1)} ms median of ${warmProc.runs}, ${warmProc.peakRssMb} MB peak`);
    }
  } finally {
    if (saved === undefined) delete process.env.NEARFIELD_CACHE_DIR;
    else process.env.NEARFIELD_CACHE_DIR = saved;
    rmSync(cacheDir, { recursive: true, force: true });
  }
}
