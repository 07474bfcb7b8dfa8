// Collectors: read one VM (RAM through the native Guest, disk through DiskImage) into a VmReport; each collector fails alone.

import type { Target } from '../target.js';
import type { Guest, TaskRecord } from '../../native/binding.js';
import { call } from '../native/gateway.js';
import { openGuest, type GuestOpenOptions } from '../guest.js';
import { toNearfieldError } from '../errors.js';
import type { ProcessRow, VmReport } from './model.js';

export interface CollectOptions extends GuestOpenOptions {
  /** How many processes in each top list. */
  top: number;
}

/** Everything `report` runs, in order; RAM collectors share one opened Guest. */
export async function collectVm(target: Target, opts: CollectOptions): Promise<VmReport> {
  const started = performance.now();
  const report: VmReport = {
    vm: target.name,
    target: { dir: target.dir ?? null, ram: target.ram ?? null, disk: target.disk ?? null, sample: target.isSample },
    consistency: consistencyOf(target),
    collectedAt: new Date().toISOString(),
    durationMs: 0,
    warnings: [],
    errors: [],
  };
  const attempt = (collector: string, file: string | undefined, fn: () => void) => {
    try {
      fn();
    } catch (e) {
      const err = toNearfieldError(e, file);
      report.errors.push({ collector, message: err.message + (err.file ? ` (${err.file})` : '') });
    }
  };

  if (target.ram) {
    let guest: Guest | undefined;
    try {
      guest = await openGuest(target, opts);
    } catch (e) {
      const err = toNearfieldError(e, target.ram);
      for (const c of ['kernel', 'uptime', 'processes', 'memory', 'buddyinfo', 'dmesg']) {
        report.errors.push({ collector: c, message: `${err.message} (${err.file ?? target.ram})` });
      }
    }
    if (guest) {
      const g = guest;
      attempt('kernel', target.ram, () => collectKernel(g, report));
      attempt('uptime', target.ram, () => collectUptime(g, report));
      attempt('processes', target.ram, () => collectProcesses(g, report, opts.top));
      attempt('memory', target.ram, () => collectMemory(g, report));
      attempt('buddyinfo', target.ram, () => collectBuddy(g, report));
      attempt('dmesg', target.ram, () => collectKernelLog(g, report, opts.top * 2));
    }
  }
  if (target.disk) {
    const disk = target.disk;
    attempt('filesystems', disk, () => collectFilesystem(disk, target.partition, report));
  }
  report.durationMs = Math.round((performance.now() - started) * 10) / 10;
  return report;
}

/** A nearfield snapshot says how it was taken; a sample guest was paused over QMP before capture. */
function consistencyOf(target: Target): VmReport['consistency'] {
  const m = target.manifest;
  if (m?.nearfield_snapshot === 1) return m.consistency === 'live' ? 'live' : 'paused';
  if (typeof m?.format === 'string' && m.format.startsWith('nearfield-sample-guest/')) return 'paused';
  return 'unknown';
}

function collectKernel(g: Guest, r: VmReport): void {
  const k = g.kernelInfo();
  r.kernel = {
    release: k.release ?? null,
    banner: k.banner ?? null,
    buildId: k.buildId ?? null,
    kaslrOffset: k.kaslrOffset,
    pagingLevels: k.pagingLevels,
    symbols: k.symbolCount,
    btfTypes: k.btfTypeCount,
  };
  r.warnings.push(...k.warnings);
}

function collectUptime(g: Guest, r: VmReport): void {
  const u = g.uptime();
  const seconds = (ns: bigint) => Number(ns) / 1e9;
  r.uptime = {
    uptimeSeconds: seconds(u.boottimeNs),
    bootTimeSeconds: u.bootWallNs > 0n ? seconds(u.bootWallNs) : null,
    guestTimeSeconds: u.realtimeNs > 0n ? seconds(u.realtimeNs) : null,
    // /proc/loadavg's own rounding, so the numbers equal what the guest would print.
    load1: Number(u.loadavg[0]),
    load5: Number(u.loadavg[1]),
    load15: Number(u.loadavg[2]),
    runnable: u.nrRunning ?? null,
    threads: u.nrThreads ?? null,
    cpus: u.onlineCpus.length,
    hostname: u.nodename,
    domainname: u.domainname,
    release: u.release,
    version: u.version,
    machine: u.machine,
  };
  r.warnings.push(...u.warnings);
}

function collectProcesses(g: Guest, r: VmReport, top: number): void {
  const list = g.tasks({ threads: false, cmdline: true });
  const pageKib = g.kernelInfo().pageSize / 1024;
  const byState: Record<string, number> = {};
  let threads = 0;
  for (const t of list.tasks) {
    byState[t.state] = (byState[t.state] ?? 0) + 1;
    threads += Math.max(1, t.nrThreads);
  }
  const rows = list.tasks.map((t) => processRow(t, pageKib));
  r.processes = {
    total: list.tasks.length,
    threads,
    byState,
    topRss: [...rows].sort((a, b) => (b.rssKib ?? -1) - (a.rssKib ?? -1) || a.pid - b.pid).slice(0, top),
    topCpu: [...rows].sort((a, b) => (b.cpuSeconds ?? -1) - (a.cpuSeconds ?? -1) || a.pid - b.pid).slice(0, top),
  };
  r.warnings.push(...list.warnings);
}

function processRow(t: TaskRecord, pageKib: number): ProcessRow {
  return {
    pid: t.pid,
    ppid: t.ppid,
    comm: t.comm,
    state: t.state,
    uid: t.uid,
    rssKib: t.rssPages === undefined ? null : t.rssPages * pageKib,
    cpuSeconds: Number(t.utimeNs + t.stimeNs) / 1e9,
    threads: t.nrThreads,
    cmdline: t.kernelThread ? null : t.cmdline && t.cmdline.length > 0 ? t.cmdline.join(' ') : null,
  };
}

function collectMemory(g: Guest, r: VmReport): void {
  const m = g.meminfo();
  r.memory = { fields: Object.fromEntries(m.fields.map((f) => [f.name, f.value])) };
  r.warnings.push(...m.warnings);
}

function collectBuddy(g: Guest, r: VmReport): void {
  const b = g.buddyinfo();
  r.buddy = { zones: b.zones, freePages: b.freePages, largestOrder: b.largestOrder ?? null, highOrderPercent: b.highOrderPercent };
}

function collectKernelLog(g: Guest, r: VmReport, tail: number): void {
  const log = g.dmesg();
  r.kernelLog = {
    lines: log.records.slice(-tail).map((l) => ({ seconds: l.tsUsec / 1e6, level: l.level, text: l.text })),
    // syslog levels 0–3: emerg, alert, crit, err
    errorsOrWorse: log.records.filter((l) => l.level <= 3).length,
    total: log.records.length,
  };
  r.warnings.push(...log.warnings);
}

function collectFilesystem(disk: string, partition: number | undefined, r: VmReport): void {
  const image = call(disk, (n) => n.DiskImage.open(disk, partition));
  const s = call(disk, () => image.statfs());
  const d = image.describe();
  const bytes = (blocks: bigint) => Number(blocks * s.fFrsize);
  const device = d.selectedPartition ? `${disk}:${d.selectedPartition}` : disk;
  r.filesystems = [{
    device,
    fstype: s.filesystem,
    mountpoint: '/',
    label: s.label || null,
    uuid: s.uuid || null,
    sizeBytes: bytes(s.fBlocks),
    freeBytes: bytes(s.fBfree),
    availBytes: bytes(s.fBavail),
    files: Number(s.fFiles),
    filesFree: Number(s.fFfree),
    blockSize: s.blockSize,
    needsRecovery: s.needsRecovery,
    lastWrite: s.writeTime ? new Date(s.writeTime * 1000).toISOString() : null,
    superblockFreeBytes: bytes(s.superblockFreeBlocks),
  }];
  // needs_recovery is the normal state of a mounted guest's disk, not partial data: the row carries it, the table says it.
  r.warnings.push(...s.warnings, ...d.warnings);
}
