// Inventory benchmark (issue 14): `lsof` over every process and `net` on the sample, in-process on an opened Guest,
// and on a built guest with the workload (images/out/k612-256m) when one is there. Target: ≤ 20 ms each on the sample.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Guest } from '../src/guest.js';
import { samplePaths } from '../src/target.js';
import { row, timeInProcess } from './util.js';

export async function benchInventory(): Promise<void> {
  const s = await samplePaths();
  const built = join(process.cwd(), 'images', 'out', 'k612-256m', 'ram.raw');
  const targets: [string, string][] = [['sample', s.ram], ...(existsSync(built) ? [['k612-256m', built] as [string, string]] : [])];
  for (const [label, file] of targets) {
    const guest = Guest.openSync({ ram: file, cache: false });
    try {
      const files = guest.files();
      const lsof = await timeInProcess(() => guest.files(), 31, 3);
      row(`lsof, every process (${files.files.length} fds in ${files.processes} tables), ${label} (in-process)`, `${lsof.toFixed(2)} ms median of 31 (target ≤ 20 ms)`);
      const n = guest.net();
      const net = await timeInProcess(() => guest.net(), 31, 3);
      row(`net (${n.interfaces.length} interfaces, ${n.sockets.length} inet + ${n.unix.length} unix sockets), ${label} (in-process)`, `${net.toFixed(2)} ms median of 31 (target ≤ 20 ms)`);
      for (const [what, fn] of [['pmap --all', () => guest.maps()], ['env --all', () => guest.environ()], ['cgroups', () => guest.cgroups()]] as const) {
        const t = await timeInProcess(fn, 31, 3);
        row(`${what}, ${label} (in-process)`, `${t.toFixed(2)} ms median of 31`);
      }
    } finally {
      guest.close();
    }
  }
}
