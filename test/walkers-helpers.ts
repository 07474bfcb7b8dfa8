// Helpers for the process/memory truth tests: the committed sample, its truth.json, and the built CLI run on it.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const cli = join(root, 'dist', 'src', 'cli', 'main.js');

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

/** `nearfield CMD --json` on the sample's RAM file (ram.raw or core.elf). */
export function json<T = Truth>(cmd: string, ramFile: string, extra: string[] = []): T {
  const r = run([cmd, '--ram', ramFile, '--json', ...extra]);
  if (r.status !== 0) throw new Error(`nearfield ${cmd} exited ${r.status}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}
