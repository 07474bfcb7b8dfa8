// Helpers for the process/memory truth tests: the committed sample, its truth.json, and the built CLI run on it.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
/** The CLI as users run it: package.json's bin, the bundle scripts/bundle.mjs makes at build time. */
export const cli = join(root, (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: { nearfield: string } }).bin.nearfield);

export interface Sample { dir: string; ram: string; core: string; truth: string }

export async function sample(): Promise<Sample> {
  const mod = (await import(join(root, 'images', 'unpack-sample.mjs'))) as { samplePaths(): Promise<Sample> };
  return mod.samplePaths();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Truth = any;

export function readTruth(s: Sample): Truth {
  return JSON.parse(readFileSync(s.truth, 'utf8'));
}

export interface Run { status: number | null; stdout: string; stderr: string }

/** Run the built CLI; `--no-cache` keeps runs independent of the profile cache. */
export function run(args: string[]): Run {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Let vitest's worker answer its own RPC between synchronous runs: a test that blocks its event loop for a
 *  minute (many spawnSync calls on a loaded machine) otherwise fails with "Timeout calling onTaskUpdate". */
export function breathe(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** `nearfield CMD --json` on the sample's RAM file (ram.raw or core.elf). */
export function json<T = Truth>(cmd: string, ramFile: string, extra: string[] = []): T {
  const r = run([cmd, '--ram', ramFile, '--json', ...extra]);
  if (r.status !== 0) throw new Error(`nearfield ${cmd} exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}

/** kB a /proc/meminfo field may still move between the guest's at-end re-read and the pause. The printer stops
 *  periodic vmstat folding and proactive compaction and folds every CPU's deltas right before re-reading; what
 *  remains (measured on 14 builds by the guest builder): one refill of a per-CPU free list from the buddy lists
 *  (pcp->batch, 15 pages = 60 kB on these 256 MiB guests; 2 of 14) and slab pages (4–8 kB on 6 of 14; 16 kB
 *  allowed). 8 of 14 were exact. */
export const PCP_BATCH_PAGES = 15;
export const atEndTolerance: Record<string, number> = {
  MemFree: PCP_BATCH_PAGES * 4, MemAvailable: PCP_BATCH_PAGES * 4, Slab: 16, SReclaimable: 16, SUnreclaim: 16, KReclaimable: 16,
};
