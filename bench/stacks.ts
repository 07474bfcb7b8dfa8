// Stacks benchmark (issue #10): `bt --all` in-process on the sample — the first call on a freshly opened guest (ORC
// tables, kallsyms index and module symbols found then) and warm calls — and `triage` whole-process against `ps`.
// Targets: bt --all ≤ 50 ms in-process; triage ≤ 1.3× ps, whole process.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Guest } from '../src/guest.js';
import { samplePaths } from '../src/target.js';
import { median, nearfield, row, timeInProcess } from './util.js';

export async function benchStacks(): Promise<void> {
  const s = await samplePaths();
  const cacheDir = mkdtempSync(join(tmpdir(), 'nf-bench-stacks-'));
  const env = { ...process.env, NEARFIELD_CACHE_DIR: cacheDir };
  const saved = process.env.NEARFIELD_CACHE_DIR;
  process.env.NEARFIELD_CACHE_DIR = cacheDir;
  try {
    for (const [label, file] of [['raw RAM', s.ram], ['ELF core', s.core]] as const) {
      Guest.openSync({ ram: file }).close(); // fill the profile cache
      const first: number[] = [];
      let tasks = 0;
      for (let i = 0; i < 9; i++) {
        const g = Guest.openSync({ ram: file });
        const t = performance.now();
        tasks = g.stacks({ all: true }).tasks.length;
        first.push(performance.now() - t);
        g.close();
      }
      row(`bt --all, ${tasks} tasks, ${label}, first call (in-process)`, `${median(first).toFixed(1)} ms median of 9 (target ≤ 50 ms)`);
      const g = Guest.openSync({ ram: file });
      const warm = await timeInProcess(() => g.stacks({ all: true }), 21, 2);
      row(`bt --all, ${label}, warm (in-process)`, `${warm.toFixed(1)} ms median of 21`);
      g.close();
    }
    nearfield(['ps', '--ram', s.ram, '--json'], 1, env);
    const ps = nearfield(['ps', '--ram', s.ram], 9, env);
    const triage = nearfield(['triage', '--ram', s.ram, '--disk', s.disk], 9, env);
    row('nearfield ps, whole process (profile cached)', `${ps.medianMs.toFixed(0)} ms median of ${ps.runs}`);
    row('nearfield triage, whole process (profile cached)', `${triage.medianMs.toFixed(0)} ms median of ${triage.runs}, ${(triage.medianMs / ps.medianMs).toFixed(2)}× ps (target ≤ 1.3×)`);
  } finally {
    if (saved === undefined) delete process.env.NEARFIELD_CACHE_DIR;
    else process.env.NEARFIELD_CACHE_DIR = saved;
    rmSync(cacheDir, { recursive: true, force: true });
  }
}
