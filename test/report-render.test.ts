// Renderers: the Prometheus exposition parses with a real text-format parser; the vhostmd XML keeps vhostmd's metric.dtd rules.

import { describe, expect, it } from 'vitest';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { XMLParser } from 'fast-xml-parser';
import { renderPrometheus } from '../src/report/render/prometheus.js';
import { renderVhostmd } from '../src/report/render/vhostmd.js';
import type { FilesystemUsage, Uptime, VmReport } from '../src/generated/records.js';
import { loadCollectors, type Collector } from '../src/report/collectors.js';

const collectors: Collector[] = await loadCollectors();

/** A report as collectors fill it, with records cut down to what the renderers read. */
function report(vm: string, overrides: Partial<VmReport> = {}): VmReport {
  const uptime = {
    schemaVersion: 1, boottimeNs: '31250000000', uptimeSeconds: 31.25, monotonicNs: '31250000000', realtimeNs: '1790000031250000000', bootWallNs: '1790000000000000000',
    avenrun: [1065, 328, 102], loadavg: ['0.52', '0.16', '0.05'], nrRunning: 2, nrThreads: 70, lastPid: 160, onlineCpus: [0, 1], jiffies: '4294968296',
    sysname: 'Linux', nodename: 'web "1"\\x', release: '6.1.0-56-amd64', version: '#1 SMP', machine: 'x86_64', domainname: '(none)', warnings: [],
  } satisfies Uptime;
  const statfs = {
    device: 'rootfs.ext4', filesystem: 'ext4', mountpoint: '/',
    statfs: { fType: '0xef53', fBsize: 4096, fFrsize: 4096, fBlocks: 14325, fBfree: 10558, fBavail: 9412, fFiles: 16384, fFfree: 14334, fNamelen: 255, fFsid: ['0x1', '0x2'] },
    df: { sizeBytes: 14325 * 4096, usedBytes: (14325 - 10558) * 4096, availBytes: 9412 * 4096, usePercent: 29, inodes: 16384, inodesUsed: 2050, inodesFree: 14334, inodesUsePercent: 13 },
    superblock: { needsRecovery: false },
  } as unknown as FilesystemUsage;
  return {
    schemaVersion: 1,
    vm,
    up: true,
    target: { dir: `/snap/${vm}`, ram: null, disk: null, sample: false },
    consistency: 'paused',
    retries: 0,
    tornReads: 0,
    torn: [],
    collectedAt: '2026-11-23T00:00:00.000Z',
    durationMs: 42.5,
    sections: {
      uptime,
      processes: { schemaVersion: 1, processes: 67, threads: 70, byState: { R: 2, S: 40, I: 23, Z: 1, T: 1 }, topRss: [], topCpu: [], warnings: [] },
      meminfo: { schemaVersion: 1, fields: [{ name: 'MemTotal', value: 208472, unit: 'kB' }, { name: 'MemFree', value: 100000, unit: 'kB' }, { name: 'Active(anon)', value: 1234, unit: 'kB' }, { name: 'HugePages_Total', value: 0, unit: '' }], warnings: [] },
      buddyinfo: {
        schemaVersion: 1, pageSize: 4096, zones: [{ node: 0, zone: 'DMA32', free: [1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 5] }],
        summary: { freePages: 5000, freeBytes: 5000 * 4096, largestOrder: 10, largestBlockBytes: 4 << 20, highOrder: 9, highOrderPercent: 82.5 },
      },
      statfs,
    },
    warnings: [],
    errors: [],
    ...overrides,
  };
}

type Family = { name: string; type: string; metrics: { value: string; labels?: Record<string, string>; buckets?: unknown }[] };

describe('prometheus renderer', () => {
  const b = report('vm-b', { errors: [{ collector: 'memory', message: 'x' }] });
  delete b.sections.meminfo;
  const text = renderPrometheus([report('vm-a'), b], collectors, { instance: 'host1' });
  const families = parsePrometheusTextFormat(text) as Family[];
  const family = (n: string) => families.find((f) => f.name === n);

  it('declares each family once with one sample per VM', () => {
    expect(new Set(families.map((f) => f.name)).size).toBe(families.length);
    expect(family('node_load1')?.metrics.map((m) => m.labels?.vm)).toEqual(['vm-a', 'vm-b']);
    expect(family('node_load1')?.metrics.every((m) => m.labels?.instance === 'host1')).toBe(true);
  });

  it('uses node_exporter names and units', () => {
    expect(family('node_memory_MemTotal_bytes')?.metrics[0]?.value).toBe(String(208472 * 1024));
    expect(family('node_memory_Active_anon_bytes')?.metrics[0]?.value).toBe(String(1234 * 1024));
    expect(family('node_memory_HugePages_Total')?.metrics[0]?.value).toBe('0');
    expect(family('node_filesystem_avail_bytes')?.metrics[0]?.labels).toMatchObject({ mountpoint: '/', fstype: 'ext4' });
    expect(family('node_filesystem_avail_bytes')?.metrics[0]?.value).toBe(String(9412 * 4096));
    expect(family('node_buddyinfo_blocks')?.metrics.find((m) => m.labels?.size === '10')?.value).toBe('5');
    expect(family('node_load1')?.metrics[0]?.value).toBe('0.52');
  });

  it('escapes label values and reports failed collectors', () => {
    expect(family('node_uname_info')?.metrics[0]?.labels?.nodename).toBe('web "1"\\x');
    const success = family('nearfield_collector_success')?.metrics.filter((m) => m.labels?.vm === 'vm-b' && m.labels?.collector === 'memory');
    expect(success?.[0]?.value).toBe('0');
    expect(family('node_memory_MemTotal_bytes')?.metrics.length).toBe(1);
  });
});

describe('a VM that could not be read', () => {
  const down = report('stray', { up: false, sections: {}, consistency: 'unknown', errors: [{ collector: 'target', message: 'not a snapshot directory' }] });
  const diskless = report('vm-c', { errors: [{ collector: 'disk', message: 'no ext4 superblock' }] });
  delete diskless.sections.statfs;
  const families = parsePrometheusTextFormat(renderPrometheus([report('vm-a'), down, diskless], collectors)) as Family[];
  const family = (n: string) => families.find((f) => f.name === n);

  it('is up 0 with its reason, and has no other samples', () => {
    expect(family('nearfield_target_up')?.metrics.map((m) => [m.labels?.vm, m.value])).toEqual([['vm-a', '1'], ['stray', '0'], ['vm-c', '1']]);
    const why = family('nearfield_target_error_info')?.metrics.map((m) => [m.labels?.vm, m.labels?.source, m.labels?.reason, m.value]);
    expect(why).toEqual([['stray', 'target', 'not a snapshot directory', '1'], ['vm-c', 'disk', 'no ext4 superblock', '1']]);
    for (const f of families) {
      if (f.name === 'nearfield_target_up' || f.name === 'nearfield_target_error_info' || f.name === 'nearfield_report_duration_seconds') continue;
      expect(f.metrics.some((m) => m.labels?.vm === 'stray'), f.name).toBe(false);
    }
  });

  it('a source that could not be opened fails exactly the collectors that read it', () => {
    const success = family('nearfield_collector_success')!.metrics.filter((m) => m.labels?.vm === 'vm-c');
    const byNeed = new Map(collectors.map((c) => [c.name, c.needs]));
    for (const m of success) expect(m.value, m.labels?.collector).toBe(byNeed.get(m.labels!.collector!) === 'disk' ? '0' : '1');
  });

  it('is TargetUp 0 with a TargetError in vhostmd', () => {
    const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '', isArray: (n) => n === 'metric', parseTagValue: false }).parse(renderVhostmd([down], collectors)) as {
      metrics: { metric: { id?: string; name: string; value: string }[] };
    };
    expect(doc.metrics.metric.map((m) => [m.name, m.value])).toEqual([['TargetUp', '0'], ['TargetError', 'not a snapshot directory']]);
  });
});

describe('vhostmd renderer', () => {
  const xml = renderVhostmd([report('vm-a'), report('vm<b>')], collectors);
  const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '', isArray: (n) => n === 'metric', parseTagValue: false }).parse(xml) as {
    metrics: { metric: { type: string; context: string; id?: string; name: string; value: string }[] };
  };

  it('has only metrics with the DTD types and contexts, each with a name and a value', () => {
    const types = new Set(['int32', 'uint32', 'int64', 'uint64', 'real32', 'real64', 'string']);
    expect(doc.metrics.metric.length).toBeGreaterThan(20);
    for (const m of doc.metrics.metric) {
      expect(types.has(m.type)).toBe(true);
      expect(['host', 'vm']).toContain(m.context);
      expect(typeof m.name).toBe('string');
      expect(m.value).toBeDefined();
      if (m.type === 'uint64') expect(m.value).toMatch(/^\d+$/);
      if (m.type === 'real64') expect(Number.isFinite(Number(m.value))).toBe(true);
    }
  });

  it('keeps values and escapes names', () => {
    const a = doc.metrics.metric.filter((m) => m.id === 'vm-a');
    expect(a.find((m) => m.name === 'MemTotalKiB')?.value).toBe('208472');
    expect(a.find((m) => m.name === 'LoadAverage1')?.value).toBe('0.52');
    expect(doc.metrics.metric.some((m) => m.id === 'vm<b>')).toBe(true);
  });
});
