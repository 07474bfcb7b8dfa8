// Disk benchmark: `nearfield df` on a 1 TiB sparse ext4 (raw and qcow2), whole-process and in-process,
// side by side with debugfs / dumpe2fs (and virt-df when installed) on the same images.

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { call } from '../src/native/gateway.js';
import { cliPath, median, nearfield, row, timeInProcess, timeProcess } from './util.js';

/** Median CPU time (user+sys, ms) of a command: steadier than wall time on a shared, loaded machine. */
function cpuMs(cmd: string, args: string[], runs = 7): number {
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const r = spawnSync('/usr/bin/time', ['-f', '%U %S', cmd, ...args], { encoding: 'utf8' });
    const [u, sy] = r.stderr.trim().split('\n').pop()!.split(' ').map(Number);
    xs.push(((u ?? 0) + (sy ?? 0)) * 1000);
  }
  return median(xs);
}

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

    const bare = timeProcess(process.execPath, ['-e', ''], 11);
    row('baseline: node -e "" (whole process)', `${bare.medianMs.toFixed(1)} ms median, ${cpuMs(process.execPath, ['-e', '']).toFixed(0)} ms CPU`);
    for (const [label, img] of [['1 TiB sparse raw', raw], ['1 TiB qcow2', qcow]] as const) {
      const ours = nearfield(['df', '--disk', img], 11);
      row(`nearfield df, ${label} (whole process)`, `${ours.medianMs.toFixed(1)} ms median of ${ours.runs}, ${ours.peakRssMb} MB peak (target ≤ 50 ms)`);
      row(`  CPU time of nearfield df, ${label}`, `${cpuMs(process.execPath, [cliPath, 'df', '--disk', img]).toFixed(0)} ms user+sys median of 7`);
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
