// Runs `report` over one or many targets: in-process for one, a pool of worker threads for several, one failing VM never hiding the others.

import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { collectVm, emptyReport, type CollectOptions } from './collect.js';
import type { VmReport } from '../generated/records.js';
import type { Collector } from './collector.js';
import type { Target } from '../target.js';

export async function collectAll(targets: Target[], opts: CollectOptions, collectors: Collector[], parallel = availableParallelism()): Promise<VmReport[]> {
  if (targets.length === 1) return [await collectVm(targets[0] as Target, opts, collectors)];
  const results: VmReport[] = new Array(targets.length);
  let next = 0;
  const runOne = async (): Promise<void> => {
    while (next < targets.length) {
      const i = next++;
      const target = targets[i] as Target;
      results[i] = await inWorker(target, opts).catch((e: Error) => failedReport(target, e.message));
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(parallel, targets.length)) }, runOne));
  return results;
}

function inWorker(target: Target, opts: CollectOptions): Promise<VmReport> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: { target, opts } });
    let settled = false;
    worker.once('message', (r: VmReport) => { settled = true; resolve(r); });
    worker.once('error', (e) => { settled = true; reject(e); });
    worker.once('exit', (code) => { if (!settled) reject(new Error(`collector thread exited with code ${code}`)); });
  });
}

/** A VM whose collection crashed outright still gets a report that says so, once. */
function failedReport(target: Target, message: string): VmReport {
  const r = emptyReport(target);
  r.up = false;
  r.errors = [{ collector: 'target', message }];
  return r;
}
