// Shared timing helpers for the benchmarks: medians over repeated runs, whole-process timings, peak RSS.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../src/target.js';

/** The checkout (benchmarks run from dist/bench/; tests import them from bench/). */
export const root = packageRoot();
/** The CLI as users run it: package.json's bin (the bundle scripts/bundle.mjs makes). */
export const cliPath = join(root, (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: { nearfield: string } }).bin.nearfield);

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** Time `fn` `runs` times (after `warmup` untimed runs); returns the median in ms. */
export async function timeInProcess(fn: () => unknown | Promise<unknown>, runs = 15, warmup = 2): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  return median(times);
}

export interface ProcessTiming { medianMs: number; peakRssMb: number; runs: number }

/** Whole-process timing of a command (Node start-up included), with peak RSS from /usr/bin/time when available. */
export function timeProcess(cmd: string, args: string[], runs = 9, env: NodeJS.ProcessEnv = process.env): ProcessTiming {
  const times: number[] = [];
  let peak = 0;
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    const r = spawnSync('/usr/bin/time', ['-f', '%M', cmd, ...args], { env, encoding: 'utf8', maxBuffer: 64 << 20 });
    times.push(performance.now() - t);
    if (r.status !== 0 && r.status !== 3) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr.trim().split('\n').slice(-2).join(' ')}`);
    const kb = Number(r.stderr.trim().split('\n').pop());
    if (Number.isFinite(kb)) peak = Math.max(peak, kb / 1024);
  }
  return { medianMs: median(times), peakRssMb: Math.round(peak), runs };
}

export function nearfield(args: string[], runs = 9, env?: NodeJS.ProcessEnv): ProcessTiming {
  return timeProcess(process.execPath, [cliPath, ...args], runs, env);
}

export function row(label: string, value: string): void {
  process.stdout.write(`${label.padEnd(48)} ${value}\n`);
}

export interface Timed { label: string; cmd: string; args: string[]; env?: NodeJS.ProcessEnv; before?: () => void; after?: () => void }

/**
 * Whole-process timings of several commands, interleaved (round r runs every command once, in order), so a
 * machine that gets busier or quieter during the run weighs on all of them alike. Wall time is measured around
 * the spawn; peak RSS is the child's ru_maxrss as GNU time reports it (%M, from wait4's rusage). `before` and
 * `after` run around each timed run, untimed (a fresh cache directory for a cold run).
 */
export function interleaved(commands: Timed[], runs: number): Map<string, ProcessTiming> {
  const times = new Map<string, number[]>(commands.map((c) => [c.label, []]));
  const peaks = new Map<string, number>(commands.map((c) => [c.label, 0]));
  for (let i = 0; i < runs; i++) {
    for (const c of commands) {
      c.before?.();
      const t = performance.now();
      const r = spawnSync('/usr/bin/time', ['-f', '%M', c.cmd, ...c.args], { env: c.env ?? process.env, encoding: 'utf8', maxBuffer: 256 << 20 });
      const ms = performance.now() - t;
      c.after?.();
      if (r.status !== 0 && r.status !== 3) throw new Error(`${c.cmd} ${c.args.join(' ')} exited ${r.status}: ${r.stderr.trim().split('\n').slice(-2).join(' ')}`);
      times.get(c.label)!.push(ms);
      const kb = Number(r.stderr.trim().split('\n').pop());
      if (Number.isFinite(kb)) peaks.set(c.label, Math.max(peaks.get(c.label)!, kb / 1024));
    }
  }
  return new Map(commands.map((c) => [c.label, { medianMs: median(times.get(c.label)!), peakRssMb: Math.round(peaks.get(c.label)!), runs }]));
}

/** Runs per measurement: NEARFIELD_BENCH_RUNS, else `fallback` (at least 7, the floor). */
export function benchRuns(fallback = 11): number {
  const n = Number(process.env.NEARFIELD_BENCH_RUNS);
  return Number.isInteger(n) && n >= 1 ? n : fallback;
}
