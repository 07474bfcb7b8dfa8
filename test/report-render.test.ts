// Renderers: the Prometheus exposition parses with a real text-format parser; the vhostmd XML keeps vhostmd's metric.dtd rules.

import { describe, expect, it } from 'vitest';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { XMLParser } from 'fast-xml-parser';
import { renderPrometheus } from '../src/report/render/prometheus.js';
import { renderVhostmd } from '../src/report/render/vhostmd.js';
import type { VmReport } from '../src/report/model.js';

function report(vm: string, overrides: Partial<VmReport> = {}): VmReport {
  return {
    vm,
    target: { dir: `/snap/${vm}`, ram: null, disk: null, sample: false },
    consistency: 'paused',
    collectedAt: '2026-11-23T00:00:00.000Z',
    durationMs: 42.5,
    uptime: {
      uptimeSeconds: 31.25, bootTimeSeconds: 1_790_000_000, guestTimeSeconds: 1_790_000_031.25,
      load1: 0.52, load5: 0.16, load15: 0.05, runnable: 2, threads: 70, cpus: 2,
      hostname: 'web "1"\\x', domainname: '(none)', release: '6.1.0-56-amd64', version: '#1 SMP', machine: 'x86_64',
    },
    processes: { total: 67, threads: 70, byState: { R: 2, S: 40, I: 23, Z: 1, T: 1 }, topRss: [], topCpu: [] },
    memory: { fields: { MemTotal: 208472, MemFree: 100000, 'Active(anon)': 1234, HugePages_Total: 0 } },
    buddy: { zones: [{ node: 0, zone: 'DMA32', free: [1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 5] }], freePages: 5000, largestOrder: 10, highOrderPercent: 82.5 },
    filesystems: [{
      device: 'rootfs.ext4', fstype: 'ext4', mountpoint: '/', label: null, uuid: null,
      sizeBytes: 14325 * 4096, freeBytes: 10558 * 4096, availBytes: 9412 * 4096, files: 16384, filesFree: 14334,
      blockSize: 4096, needsRecovery: false, lastWrite: null, superblockFreeBytes: null,
    }],
    warnings: [],
    errors: [],
    ...overrides,
  };
}

type Family = { name: string; type: string; metrics: { value: string; labels?: Record<string, string>; buckets?: unknown }[] };

describe('prometheus renderer', () => {
  const text = renderPrometheus([report('vm-a'), report('vm-b', { errors: [{ collector: 'memory', message: 'x' }], memory: undefined })], { instance: 'host1' });
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

describe('vhostmd renderer', () => {
  const xml = renderVhostmd([report('vm-a'), report('vm<b>')]);
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
