// Collecting one VM: open its RAM (one Guest) and its disk (one Disk), run every declared collector in order into
// a VmReport; a failing collector costs only its own sections.

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
    target: { dir: target.dir ?? null, ram: target.ram ?? null, disk: target.disk ?? null, sample: target.isSample },
    consistency: consistencyOf(target),
    collectedAt: new Date().toISOString(),
    durationMs: 0,
    sections: {},
    warnings: [],
    errors: [],
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

  let guest: Guest | undefined;
  let disk: Disk | undefined;
  let guestError: unknown;
  let diskError: unknown;
  if (target.ram) {
    try {
      guest = await openTargetGuest(target, opts);
    } catch (e) {
      guestError = e;
    }
  }
  if (target.disk) {
    try {
      disk = Disk.open(target.disk, { partition: target.partition });
    } catch (e) {
      diskError = e;
    }
  }
  try {
    for (const c of all) {
      const source = c.needs === 'ram' ? { present: target.ram, handle: guest, error: guestError } : { present: target.disk, handle: disk, error: diskError };
      if (!source.present) continue;
      if (!source.handle) {
        fail(c.name, source.error, source.present);
        continue;
      }
      const before = new Set(Object.keys(report.sections));
      try {
        c.collect({ guest, disk, sections: report.sections, top: opts.top });
      } catch (e) {
        fail(c.name, e, source.present);
      }
      for (const [k, v] of Object.entries(report.sections)) if (!before.has(k)) report.warnings.push(...warningsOf(v));
    }
  } finally {
    guest?.close();
    disk?.close();
  }
  report.durationMs = Math.round((performance.now() - started) * 10) / 10;
  return report;
}
