// Start-up benchmark (issue 13): whole-process warm commands on the embedded sample against a bare `node -e 0`,
// interleaved in one run, medians and ratios to node measured in that same run, and every command's peak RSS.
// Target: warm `nearfield ps` ≤ 1.5× `node -e 0`; peak RSS ≤ 150 MB.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchRuns, cliPath, interleaved, row, type Timed } from './util.js';

export async function benchStartup(): Promise<void> {
  const cacheDir = mkdtempSync(join(tmpdir(), 'nf-bench-startup-'));
  const env = { ...process.env, NEARFIELD_CACHE_DIR: cacheDir };
  const node = process.execPath;
  const nf = (label: string, args: string[]): Timed => ({ label, cmd: node, args: [cliPath, ...args], env });
  try {
    // Unpack the sample if needed and fill the profile cache: every nearfield command below is warm.
    interleaved([nf('fill', ['ps'])], 1);
    const commands: Timed[] = [
      { label: 'node -e 0', cmd: node, args: ['-e', '0'] },
      nf('nearfield --version', ['--version']),
      nf('nearfield ps', ['ps']),
      nf('nearfield ps --json', ['ps', '--json']),
      nf('nearfield free', ['free']),
      nf('nearfield df', ['df']),
      nf('nearfield report', ['report']),
    ];
    const runs = benchRuns(11);
    const t = interleaved(commands, runs);
    const base = t.get('node -e 0')!.medianMs;
    row('command (warm, embedded sample)', `median of ${runs} interleaved runs, ratio to node -e 0, peak RSS (GNU time %M)`);
    for (const c of commands) {
      const { medianMs, peakRssMb } = t.get(c.label)!;
      const target = c.label === 'nearfield ps' ? ' (target ≤ 1.5×)' : '';
      row(`  ${c.label}`, `${medianMs.toFixed(1).padStart(6)} ms  ${(medianMs / base).toFixed(2)}×${target}  ${String(peakRssMb).padStart(4)} MB`);
    }
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
}
