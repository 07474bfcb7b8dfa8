// Collecting one VM: open its RAM (one Guest) and its disk (one Disk), run every declared collector in order into
// a VmReport; a failing collector costs only its own sections. The exporter keeps the handles open between scrapes
// and runs the same collection (`collectWith`) on them.

import { basename } from 'node:path';
import { ramLabel, type Target } from '../target.js';
import { openTargetGuest, type Guest, type GuestOpenOptions } from '../guest.js';
import { Disk } from '../disk.js';
import { toNearfieldError } from '../errors.js';
import { SCHEMA_VERSION, type VmReport } from '../generated/records.js';
import { loadCollectors, type Collector } from './collectors.js';
import { beginRead, tornWarning } from '../live/read.js';

export interface CollectOptions extends Omit<GuestOpenOptions, 'ram' | 'layout' | 'pid' | 'processMap' | 'processMapSource'> {
  /** How many processes in each top list. */
  top: number;
}

/** An empty report for `target`, to be filled by collectors (or marked failed). */
export function emptyReport(target: Target): VmReport {
  return {
    schemaVersion: SCHEMA_VERSION,
    vm: target.name,
    up: true,
    target: {
      dir: target.dir ?? null, ram: target.ram ?? null, disk: target.disk ?? null, sample: target.isSample,
      ...(target.live ? { pid: target.live.pid ?? null, qmp: target.live.qmp ?? null } : {}),
    },
    consistency: consistencyOf(target),
    retries: 0,
    tornReads: 0,
    torn: [],
    collectedAt: new Date().toISOString(),
    durationMs: 0,
    sections: {},
    warnings: [],
    errors: [],
  };
}

/** The report of a target that could not be read at all (not a snapshot directory, a bad manifest …): down, with
 *  the reason once. */
export function failedTarget(name: string, path: string | undefined, e: unknown): VmReport {
  const err = toNearfieldError(e);
  return {
    schemaVersion: SCHEMA_VERSION,
    vm: basename(name),
    up: false,
    target: { dir: path ?? null, ram: null, disk: null, sample: false },
    consistency: 'unknown',
    retries: 0,
    tornReads: 0,
    torn: [],
    collectedAt: new Date().toISOString(),
    durationMs: 0,
    sections: {},
    warnings: [],
    errors: [{ collector: 'target', message: err.message + (err.file && err.file !== path ? ` (${err.file})` : '') }],
  };
}

/** A live VM is read live (or paused for the read); a nearfield snapshot says how it was taken; a sample guest was paused over QMP before capture. */
function consistencyOf(target: Target): VmReport['consistency'] {
  if (target.live) return target.live.pause ? 'paused' : 'live';
  const m = target.manifest;
  if (m?.nearfieldSnapshot === 2 || m?.nearfield_snapshot === 1) return m.consistency === 'live' ? 'live' : 'paused';
  if (typeof m?.format === 'string' && m.format.startsWith('nearfield-sample-guest/')) return 'paused';
  return 'unknown';
}

function warningsOf(section: unknown): string[] {
  const w = (section as { warnings?: unknown })?.warnings;
  return Array.isArray(w) ? w.filter((x): x is string => typeof x === 'string') : [];
}

/** The readers of one VM, opened once (and, in the exporter, kept open). */
export interface VmHandles {
  guest?: Guest;
  disk?: Disk;
  guestError?: unknown;
  diskError?: unknown;
}

/** Open the target's RAM and disk; a failure is kept for the collectors that needed it. */
export async function openHandles(target: Target, opts: Omit<CollectOptions, 'top'>): Promise<VmHandles> {
  const h: VmHandles = {};
  if (target.ram || target.live) {
    try {
      h.guest = await openTargetGuest(target, opts);
    } catch (e) {
      h.guestError = e;
    }
  }
  if (target.disk) {
    try {
      h.disk = Disk.open(target.disk, { partition: target.partition });
    } catch (e) {
      h.diskError = e;
    }
  }
  return h;
}

export function closeHandles(h: VmHandles): void {
  h.guest?.close();
  h.disk?.close();
  h.guest = undefined;
  h.disk = undefined;
}

/** Run every collector on open handles into a fresh report (the handles stay open). */
export async function collectWith(target: Target, h: VmHandles, opts: CollectOptions, all: Collector[], started = performance.now()): Promise<VmReport> {
  const report = emptyReport(target);
  const fail = (collector: string, e: unknown, file: string | undefined) => {
    const err = toNearfieldError(e, file);
    report.errors.push({ collector, message: err.message + (err.file ? ` (${err.file})` : '') });
  };
  // Each source is opened once; one that could not be is one error (`ram` / `disk`), and its collectors do not run.
  if (h.guestError !== undefined) fail('ram', h.guestError, ramLabel(target));
  if (h.diskError !== undefined) fail('disk', h.diskError, target.disk);
  report.up = h.guest !== undefined || h.disk !== undefined;
  if (h.guest) report.warnings.push(...h.guest.damage());
  h.guest?.takeConsistency(); // count this collection's walks only
  for (const c of all) {
    const source = c.needs === 'ram' ? { present: ramLabel(target), handle: h.guest }
      : c.needs === 'disk' ? { present: target.disk, handle: h.disk }
      : { present: target.live?.pid !== undefined ? `QEMU pid ${target.live.pid}` : undefined, handle: target.live };
    if (!source.present || !source.handle) continue;
    const before = new Set(Object.keys(report.sections));
    try {
      await c.collect({ guest: h.guest, disk: h.disk, target, sections: report.sections, top: opts.top });
    } catch (e) {
      fail(c.name, e, source.present);
    }
    for (const [k, v] of Object.entries(report.sections)) if (!before.has(k)) report.warnings.push(...warningsOf(v));
  }
  if (h.guest) {
    const c = h.guest.takeConsistency();
    report.retries = c.retries;
    report.tornReads = c.tornReads;
    report.torn = c.torn;
    const torn = tornWarning(c);
    if (torn) report.warnings.push(torn);
    if (target.live) report.warnings.push(...h.guest.sourceInfo().warnings.filter((w) => w.startsWith('no QEMU monitor given')));
  }
  // Each warning once, though several collectors' records carry the discovery's
  report.warnings = [...new Set(report.warnings)];
  report.durationMs = Math.round((performance.now() - started) * 10) / 10;
  return report;
}

export async function collectVm(target: Target, opts: CollectOptions, collectors?: Collector[]): Promise<VmReport> {
  const started = performance.now();
  const all = collectors ?? (await loadCollectors());
  const session = await beginRead(target);
  let h: VmHandles = {};
  try {
    h = await openHandles(target, opts);
    if (h.guest) session.opened(h.guest);
    return await collectWith(target, h, opts, all, started);
  } finally {
    closeHandles(h);
    await session.end();
  }
}
