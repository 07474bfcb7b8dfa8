// Processes/memory benchmark (issue #4): `nearfield ps` whole-process cold (no profile cache) and warm, and the
// in-process walks on an opened Guest. Targets: ps ≤ 300 ms cold, ≤ 100 ms warm; walk of ~200 tasks with cmdlines ≤ 5 ms.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Guest } from '../src/guest.js';
import { samplePaths } from '../src/target.js';
import { nearfield, row, timeInProcess } from './util.js';

export async function benchProcesses(): Promise<void> {
  const s = await samplePaths();
  const cacheDir = mkdtempSync(join(tmpdir(), 'nf-bench-ps-'));
  const env = { ...process.env, NEARFIELD_CACHE_DIR: cacheDir };
  try {
    for (const [label, file] of [['raw RAM', s.ram], ['ELF core', s.core]] as const) {
      const guest = Guest.openSync({ ram: file, cache: false });
      const n = guest.tasks().tasks.length;
      const walk = await timeInProcess(() => guest.tasks({ cmdline: true }), 31, 3);
      row(`task walk + cmdlines, ${n} tasks, ${label} (in-process, records)`, `${walk.toFixed(2)} ms median of 31 (target ≤ 5 ms for ~200)`);
      const threads = await timeInProcess(() => guest.tasks({ threads: true, cmdline: true }), 31, 3);
      row(`task walk with threads, ${label} (in-process)`, `${threads.toFixed(2)} ms median of 31`);
      for (const [what, fn] of [['meminfo', () => guest.meminfo()], ['buddyinfo', () => guest.buddyinfo()], ['uptime', () => guest.uptime()]] as const) {
        const t = await timeInProcess(fn, 31, 3);
        row(`${what}, ${label} (in-process)`, `${t.toFixed(3)} ms median of 31`);
      }
      const cold = nearfield(['ps', '--ram', file, '--json', '--no-cache'], 5, env);
      row(`nearfield ps --no-cache, ${label} (whole process)`, `${cold.medianMs.toFixed(1)} ms median of ${cold.runs}, ${cold.peakRssMb} MB peak (target ≤ 300 ms)`);
      nearfield(['ps', '--ram', file, '--json'], 1, env); // fill the profile cache
      const warm = nearfield(['ps', '--ram', file, '--json'], 9, env);
      row(`nearfield ps, profile cached, ${label} (whole process)`, `${warm.medianMs.toFixed(1)} ms median of ${warm.runs}, ${warm.peakRssMb} MB peak (target ≤ 100 ms)`);
    }
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
}
