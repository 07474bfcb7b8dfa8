// Disk benchmark: `nearfield df` on a 1 TiB sparse ext4 (raw and qcow2), whole-process and in-process,
// side by side with debugfs / dumpe2fs (and virt-df when installed) on the same images.

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { call } from '../src/native/gateway.js';
import { nearfield, row, timeInProcess, timeProcess } from './util.js';

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

export async function benchDisk(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'nf-bench-disk-'));
  try {
    const raw = join(dir, 'tera.img');
    execFileSync('truncate', ['-s', '1T', raw]);
    execFileSync('mkfs.ext4', ['-q', '-F', '-E', 'nodiscard,lazy_itable_init=1', raw]);
    const qcow = join(dir, 'tera.qcow2');
    execFileSync('qemu-img', ['convert', '-O', 'qcow2', raw, qcow]);

    for (const [label, img] of [['1 TiB sparse raw', raw], ['1 TiB qcow2', qcow]] as const) {
      const ours = nearfield(['df', '--disk', img], 11);
      row(`nearfield df, ${label} (whole process)`, `${ours.medianMs.toFixed(1)} ms median of ${ours.runs}, ${ours.peakRssMb} MB peak (target ≤ 50 ms)`);
      const inproc = await timeInProcess(() => call(img, (n) => n.DiskImage.open(img).statfs()), 21, 3);
      row(`  in-process open+statfs, ${label}`, `${inproc.toFixed(2)} ms median of 21`);
      if (img === raw) {
        for (const [name, cmd, args] of [
          ['debugfs -R stats', 'debugfs', ['-R', 'stats', img]],
          ['dumpe2fs -h', 'dumpe2fs', ['-h', img]],
        ] as const) {
          const t = timeProcess(cmd, [...args], 5);
          row(`  ${name}, ${label}`, `${t.medianMs.toFixed(1)} ms median of 5 (${(t.medianMs / ours.medianMs).toFixed(1)}× ours)`);
        }
      }
      if (have('virt-df')) {
        const t = timeProcess('virt-df', ['-a', img], 1);
        row(`  virt-df, ${label}`, `${t.medianMs.toFixed(0)} ms, 1 run (${(t.medianMs / ours.medianMs).toFixed(0)}× ours)`);
      } else if (img === raw) {
        row('  virt-df', 'not installed (libguestfs-tools); ~16–17 s per run under TCG per FORMATS.md');
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
