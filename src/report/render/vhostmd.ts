// vhostmd metrics XML (vhostmd's metric.dtd: <metrics><metric type context [id]><name/><value/></metric></metrics>).

import type { VmReport } from '../model.js';

type VhostmdType = 'int32' | 'uint32' | 'int64' | 'uint64' | 'real32' | 'real64' | 'string';
interface Metric { type: VhostmdType; name: string; value: string | number }

/** One <metrics> document; every metric has context "vm" and the VM's name as id. */
export function renderVhostmd(reports: VmReport[]): string {
  const out = ['<?xml version="1.0" ?>', '<metrics>'];
  for (const r of reports) {
    for (const m of vmMetrics(r)) {
      out.push(
        `  <metric type="${m.type}" context="vm" id="${xml(r.vm)}">`,
        `    <name>${xml(m.name)}</name>`,
        `    <value>${xml(String(m.value))}</value>`,
        '  </metric>',
      );
    }
  }
  out.push('</metrics>');
  return out.join('\n') + '\n';
}

function vmMetrics(r: VmReport): Metric[] {
  const m: Metric[] = [];
  const u64 = (name: string, v: number | null | undefined) => { if (v !== null && v !== undefined && Number.isFinite(v)) m.push({ type: 'uint64', name, value: Math.round(v) }); };
  const r64 = (name: string, v: number | null | undefined) => { if (v !== null && v !== undefined && Number.isFinite(v)) m.push({ type: 'real64', name, value: v }); };
  const str = (name: string, v: string | null | undefined) => { if (v) m.push({ type: 'string', name, value: v }); };

  str('KernelRelease', r.kernel?.release ?? r.uptime?.release);
  str('Hostname', r.uptime?.hostname);
  r64('Uptime', r.uptime?.uptimeSeconds);
  r64('LoadAverage1', r.uptime?.load1);
  r64('LoadAverage5', r.uptime?.load5);
  r64('LoadAverage15', r.uptime?.load15);
  u64('NumberOfCPUs', r.uptime?.cpus);
  u64('Processes', r.processes?.total);
  u64('Threads', r.processes?.threads);
  u64('ProcessesRunning', r.uptime?.runnable);
  const mem = r.memory?.fields;
  if (mem) {
    // vhostmd's own memory metrics are in MiB or kB depending on the action; we say kB in the name.
    for (const f of ['MemTotal', 'MemFree', 'MemAvailable', 'Buffers', 'Cached', 'SwapTotal', 'SwapFree', 'Shmem', 'Slab']) u64(`${f}KiB`, mem[f]);
  }
  u64('FreePagesBuddy', r.buddy?.freePages);
  for (const fs of r.filesystems ?? []) {
    u64(`FilesystemSizeBytes:${fs.mountpoint}`, fs.sizeBytes);
    u64(`FilesystemAvailBytes:${fs.mountpoint}`, fs.availBytes);
    u64(`FilesystemFreeBytes:${fs.mountpoint}`, fs.freeBytes);
  }
  str('SnapshotConsistency', r.consistency);
  return m;
}

function xml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '');
}
