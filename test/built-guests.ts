// Where the guests that images/build-guest.mjs makes for tests live, and whether a run requires them.
// CI (.ci/run) builds them and lists them in NEARFIELD_REQUIRED_GUESTS, so a guest that failed to build fails
// its tests there instead of skipping them; on a developer's machine an absent guest is skipped.

import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { root } from './walkers-helpers.js';

export interface BuiltGuest {
  name: string;
  dir: string;
  ram: string;
  core: string;
  truth: string;
  /** ram.raw, core.elf and truth.json are all there. */
  present: boolean;
  /** NEARFIELD_REQUIRED_GUESTS names it: absent must fail, not skip. */
  required: boolean;
}

const requiredGuests = new Set((process.env.NEARFIELD_REQUIRED_GUESTS ?? '').split(/[\s,]+/).filter(Boolean));

export function builtGuest(name: string): BuiltGuest {
  const dir = join(root, 'images', 'out', name);
  const ram = join(dir, 'ram.raw');
  const core = join(dir, 'core.elf');
  const truth = join(dir, 'truth.json');
  return { name, dir, ram, core, truth, present: [ram, core, truth].every((f) => existsSync(f)), required: requiredGuests.has(name) };
}

/** Every guest to compare with its truth besides the sample: CI's fresh guest (NEARFIELD_FRESH_GUEST), every required
 *  one, and any other built under images/out/. */
export function builtGuests(): BuiltGuest[] {
  const out = join(root, 'images', 'out');
  const names = new Set([...requiredGuests, ...(existsSync(out) ? readdirSync(out) : [])]);
  const guests = [...names].sort().map(builtGuest);
  const fresh = process.env.NEARFIELD_FRESH_GUEST;
  if (fresh && !guests.some((g) => g.dir === fresh)) {
    const ram = join(fresh, 'ram.raw');
    const truth = join(fresh, 'truth.json');
    guests.push({ name: 'fresh', dir: fresh, ram, core: join(fresh, 'core.elf'), truth, present: existsSync(ram) && existsSync(truth), required: false });
  }
  return guests.filter((g) => g.present || g.required);
}
