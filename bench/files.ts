// Files benchmark: `nearfield ls` of a 20 000-entry directory, whole-process (target ≤ 200 ms), next to debugfs.

import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nearfield, row, timeProcess } from './util.js';

/**
 * An ext4 image whose /many holds `entries` empty files. mkfs.ext4 -d inserts entries in O(n²) (100 s for 20 000
 * here), so fill it through a loop mount when this machine allows one, and fall back to mkfs -d otherwise.
 */
export function makeWideDirImage(dir: string, entries: number, mkfsArgs: string[] = ['-b', '4096']): string {
  const img = join(dir, `wide-${entries}.img`);
  const mnt = join(dir, 'mnt');
  mkdirSync(mnt, { recursive: true });
  execFileSync('mkfs.ext4', ['-q', '-F', '-N', String(entries + 1000), '-I', '256', ...mkfsArgs, img, '96M'], { stdio: 'pipe' });
  if (spawnSync('mount', ['-o', 'loop', img, mnt], { stdio: 'ignore' }).status === 0) {
    try {
      mkdirSync(join(mnt, 'many'));
      for (let i = 0; i < entries; i++) closeSync(openSync(join(mnt, 'many', `f${String(i).padStart(5, '0')}`), 'w'));
    } finally {
      execFileSync('umount', [mnt]);
    }
    return img;
  }
  const tree = join(dir, 'wide-tree');
  mkdirSync(join(tree, 'many'), { recursive: true });
  for (let i = 0; i < entries; i++) closeSync(openSync(join(tree, 'many', `f${String(i).padStart(5, '0')}`), 'w'));
  execFileSync('mkfs.ext4', ['-q', '-F', '-N', String(entries + 1000), '-I', '256', ...mkfsArgs, '-d', tree, img, '96M'], { stdio: 'pipe' });
  return img;
}

export async function benchFiles(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'nf-bench-files-'));
  try {
    const img = makeWideDirImage(dir, 20_000);
    const ls = nearfield(['ls', '/many', '--disk', img], 11);
    row('nearfield ls, 20 000 entries (whole process)', `${ls.medianMs.toFixed(1)} ms median of ${ls.runs}, ${ls.peakRssMb} MB peak (target ≤ 200 ms)`);
    const lsl = nearfield(['ls', '-l', '/many', '--disk', img], 11);
    row('nearfield ls -l, 20 000 entries (whole process)', `${lsl.medianMs.toFixed(1)} ms median of ${lsl.runs}, ${lsl.peakRssMb} MB peak`);
    const help = nearfield(['--help'], 11);
    row('  nearfield --help (start-up floor)', `${help.medianMs.toFixed(1)} ms median of ${help.runs}`);
    const dbg = timeProcess('debugfs', ['-R', 'ls -l /many', img], 5);
    row('  debugfs -R "ls -l /many"', `${dbg.medianMs.toFixed(1)} ms median of 5 (${(dbg.medianMs / lsl.medianMs).toFixed(2)}× our ls -l)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
