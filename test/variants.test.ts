// Every built guest besides the sample (CI builds 4-level, 5 GiB, fresh and 6.12 guests): lsmod and mount equal the
// guest's own /proc/modules and /proc/mounts, so the 6.4+ module layout and 6.8+ mount tree are checked too.

import { describe, expect, it } from 'vitest';
import { json, type Truth } from './walkers-helpers.js';
import { builtGuests } from './guests.js';

const guests = builtGuests();

describe.each(guests.map((g) => [g.label, g] as const))('built guest %s', (_label, g) => {
  it('lsmod equals its /proc/modules', () => {
    const ours = json('lsmod', `${g.dir}/ram.raw`, ['--no-cache']);
    expect(ours.warnings).toEqual([]);
    expect(ours.modules.map((m: Truth) => ({ name: m.name, size: m.sizeBytes, refcount: m.refcount, deps: m.usedBy, state: m.state, address: m.address }))).toEqual(g.truth.modules);
  });

  it('mount equals its /proc/mounts (generic options only where the filesystem\'s own are not decoded)', () => {
    const ours = json('mount', `${g.dir}/ram.raw`, ['--no-cache']);
    expect(ours.warnings).toEqual([]);
    const got = ours.mounts.map((m: Truth) => ({ device: m.device, mountpoint: m.mountpoint, fstype: m.fstype, options: m.options }));
    const want = g.truth.mounts.map((m: Truth, i: number) => (ours.mounts[i]?.fsOptionsComplete === false ? { ...m, options: m.options.slice(0, ours.mounts[i].options.length) } : m));
    expect(got).toEqual(want);
  });
});

it.runIf(guests.length === 0)('no built guest besides the sample here (CI builds them; locally: node images/build-guest.mjs --out images/out/NAME)', () => {
  expect(process.env.NEARFIELD_CI, 'CI (.ci/run) builds the variant guests before npm test').toBeUndefined();
});
