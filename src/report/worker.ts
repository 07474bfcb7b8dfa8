// Worker thread for `report` over several VMs: collects one target and posts its VmReport back.

import { parentPort, workerData } from 'node:worker_threads';
import { collectVm, type CollectOptions } from './collect.js';
import type { Target } from '../target.js';

const { target, opts } = workerData as { target: Target; opts: CollectOptions };
// No top-level await: the shipped worker is a CommonJS bundle (scripts/bundle.mjs). A rejection is uncaught, as before.
void collectVm(target, opts).then((report) => parentPort?.postMessage(report));
