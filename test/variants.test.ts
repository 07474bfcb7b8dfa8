// Every built guest besides the sample (CI builds 4-level, 5 GiB, fresh, 6.12, hung and panicked guests): lsmod and
// mount equal the guest's own /proc/modules and /proc/mounts, so the 6.4+ module layout and the 6.8+ mount tree
// are checked too.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { json, type Truth } from './walkers-helpers.js';
import { builtGuests } from './built-guests.js';

describe.each(builtGuests().map((g) => [g.name, g] as const))('built guest %s', (_name, g) => {
  it.runIf(g.required)('was built', () => {
    expect(g.present, `no ram.raw/truth.json in ${g.dir}: the guest build failed (see the CI output above)`).toBe(true);
  });

  it.runIf(g.present)('lsmod equals its /proc/modules', () => {
    const truth = JSON.parse(readFileSync(g.truth, 'utf8'));
    const ours = json('lsmod', g.ram, ['--no-cache']);
    expect(ours.warnings).toEqual([]);
    expect(ours.modules.map((m: Truth) => ({ name: m.name, size: m.sizeBytes, refcount: m.refcount, deps: m.usedBy, state: m.state, address: m.address }))).toEqual(truth.modules);
  });

  it.runIf(g.present)('mount equals its /proc/mounts (generic options only where the filesystem\'s own are not decoded)', () => {
    const truth = JSON.parse(readFileSync(g.truth, 'utf8'));
    const ours = json('mount', g.ram, ['--no-cache']);
    expect(ours.warnings).toEqual([]);
    const got = ours.mounts.map((m: Truth) => ({ device: m.device, mountpoint: m.mountpoint, fstype: m.fstype, options: m.options }));
    const want = truth.mounts.map((m: Truth, i: number) => (ours.mounts[i]?.fsOptionsComplete === false ? { ...m, options: m.options.slice(0, ours.mounts[i].options.length) } : m));
    expect(got).toEqual(want);
  });
});
