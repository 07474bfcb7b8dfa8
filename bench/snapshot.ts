// Snapshot benchmark: copy time of a 512 MiB RAM file (the pause window's lower bound) and of a sparse disk.

import { mkdtempSync, rmSync, writeFileSync, truncateSync, openSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { captureSnapshot } from '../src/snapshot/capture.js';
import { median, row } from './util.js';

export async function benchSnapshot(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'nf-bench-snap-'));
  try {
    // A 512 MiB RAM file with ~200 MiB of data spread in 2 MiB runs, like a booted guest's backing file.
    const ram = join(dir, 'ram');
    writeFileSync(ram, '');
    truncateSync(ram, 512 << 20);
    const fd = openSync(ram, 'r+');
    const block = Buffer.alloc(2 << 20, 0x5a);
    for (let off = 0; off < 512 << 20; off += 5 << 20) writeSync(fd, block, 0, block.length, off);
    closeSync(fd);
    const disk = join(dir, 'disk.img');
    writeFileSync(disk, '');
    truncateSync(disk, 8 << 30);

    const windows: number[] = [];
    const totals: number[] = [];
    for (let i = 0; i < 5; i++) {
      const m = await captureSnapshot({ ram, disk, out: join(dir, `s${i}`), pause: { kind: 'none' }, diskInPause: true, sha256: false });
      windows.push(m.pause.copyInPauseMs);
      totals.push(m.totalMs);
      rmSync(join(dir, `s${i}`), { recursive: true });
    }
    row('pause window: copy 512 MiB RAM (200 MiB data) + 8 GiB sparse disk', `${median(windows).toFixed(1)} ms median of 5 (target ≤ 300 ms)`);
    row('whole snapshot incl. fsync after resume', `${median(totals).toFixed(1)} ms median of 5`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
