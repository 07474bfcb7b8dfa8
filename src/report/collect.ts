// Collecting one VM: open its RAM (one Guest) and its disk (one Disk), run every declared collector in order into
// a VmReport; a failing collector costs only its own sections.

import { basename } from 'node:path';
import type { Target } from '../target.js';
import { openTargetGuest, type Guest, type GuestOpenOptions } from '../guest.js';
import { Disk } from '../disk.js';
import { toNearfieldError } from '../errors.js';
import { SCHEMA_VERSION, type VmReport } from '../generated/records.js';
import { loadCollectors, type Collector } from './collectors.js';

export interface CollectOptions extends Omit<GuestOpenOptions, 'ram' | 'layout'> {
  /** How many processes in each top list. */
  top: number;
}

/** An empty report for `target`, to be filled by collectors (or marked failed). */
export function emptyReport(target: Target): VmReport {
  return {
    schemaVersion: SCHEMA_VERSION,
    vm: target.name,
    up: true,
    target: { dir: target.dir ?? null, ram: target.ram ?? null, disk: target.disk ?? null, sample: target.isSample },
    consistency: consistencyOf(target),
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
    collectedAt: new Date().toISOString(),
    durationMs: 0,
    sections: {},
    warnings: [],
    errors: [{ collector: 'target', message: err.message + (err.file && err.file !== path ? ` (${err.file})` : '') }],
  };
}

/** A nearfield snapshot says how it was taken; a sample guest was paused over QMP before capture. */
function consistencyOf(target: Target): VmReport['consistency'] {
  const m = target.manifest;
  if (m?.nearfieldSnapshot === 2 || m?.nearfield_snapshot === 1) return m.consistency === 'live' ? 'live' : 'paused';
  if (typeof m?.format === 'string' && m.format.startsWith('nearfield-sample-guest/')) return 'paused';
  return 'unknown';
}

function warningsOf(section: unknown): string[] {
  const w = (section as { warnings?: unknown })?.warnings;
  return Array.isArray(w) ? w.filter((x): x is string => typeof x === 'string') : [];
}

export async function collectVm(target: Target, opts: CollectOptions, collectors?: Collector[]): Promise<VmReport> {
  const started = performance.now();
  const all = collectors ?? (await loadCollectors());
  const report = emptyReport(target);
  const fail = (collector: string, e: unknown, file: string | undefined) => {
    const err = toNearfieldError(e, file);
    report.errors.push({ collector, message: err.message + (err.file ? ` (${err.file})` : '') });
  };

  // Each source is opened once; one that cannot be is one error (`ram` / `disk`), and its collectors do not run.
  let guest: Guest | undefined;
  let disk: Disk | undefined;
  if (target.ram) {
    try {
      guest = await openTargetGuest(target, opts);
    } catch (e) {
      fail('ram', e, target.ram);
    }
  }
  if (target.disk) {
    try {
      disk = Disk.open(target.disk, { partition: target.partition });
    } catch (e) {
      fail('disk', e, target.disk);
    }
  }
  report.up = guest !== undefined || disk !== undefined;
  if (guest) report.warnings.push(...guest.damage());
  try {
    for (const c of all) {
      const handle = c.needs === 'ram' ? guest : disk;
      if (!handle) continue;
      const before = new Set(Object.keys(report.sections));
      try {
        c.collect({ guest, disk, sections: report.sections, top: opts.top });
      } catch (e) {
        fail(c.name, e, c.needs === 'ram' ? target.ram : target.disk);
      }
      for (const [k, v] of Object.entries(report.sections)) if (!before.has(k)) report.warnings.push(...warningsOf(v));
    }
  } finally {
    guest?.close();
    disk?.close();
  }
  // Each warning once, though several collectors' records carry the discovery's
  report.warnings = [...new Set(report.warnings)];
  report.durationMs = Math.round((performance.now() - started) * 10) / 10;
  return report;
}
