// lsmod from outside vs the guest's own /proc/modules (truth.json), on ram.raw and core.elf of the sample.

import { beforeAll, describe, expect, it } from 'vitest';
import { json, readTruth, run, sample, type Truth } from './walkers-helpers.js';

let truth: Truth;
let files: Record<string, string>;

beforeAll(async () => {
  const s = await sample();
  truth = readTruth(s);
  files = { 'ram.raw': s.ram, 'core.elf': s.core };
});

describe.each(['ram.raw', 'core.elf'])('lsmod on %s', (name) => {
  it('equals /proc/modules: name, size, references, users, state and address, in order', () => {
    const ours = json('lsmod', files[name]!);
    expect(ours.warnings).toEqual([]);
    expect(truth.modules.length).toBeGreaterThan(5);
    const got = ours.modules.map((m: Truth) => ({ name: m.name, size: m.sizeBytes, refcount: m.refcount, deps: m.usedBy, state: m.state, address: m.address }));
    expect(got).toEqual(truth.modules);
    for (const m of ours.modules) {
      expect(m.taints, m.name).toBe(''); // Debian's signed in-tree modules taint nothing
      expect(m.symbols, m.name).toBeGreaterThan(0);
    }
  });
});

describe('lsmod CLI', () => {
  it('prints lsmod lines, and /proc/modules lines with --proc', () => {
    const r = run(['modules', '--ram', files['ram.raw']!]);
    expect(r.status).toBe(0);
    const virtio = truth.modules.find((m: Truth) => m.name === 'virtio');
    expect(r.stdout.split('\n')[0]).toBe('Module                  Size  Used by');
    expect(r.stdout).toContain(`${'virtio'.padEnd(19)} ${String(virtio.size).padStart(8)}  ${virtio.refcount} ${virtio.deps.join(',')}\n`);
    const p = run(['lsmod', '--proc', '--ram', files['ram.raw']!]);
    expect(p.stdout.split('\n')[0]).toBe(`${truth.modules[0].name} ${truth.modules[0].size} ${truth.modules[0].refcount} - Live ${truth.modules[0].address}`);
  });
});
