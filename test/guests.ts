// The guests built by images/build-guest.mjs besides the committed sample: CI's fresh guest (NEARFIELD_FRESH_GUEST)
// and every directory under images/out/ holding a RAM file and its truth (the variants .ci/run builds).

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { root, type Truth } from './walkers-helpers.js';

export interface BuiltGuest { label: string; dir: string; truth: Truth }

export function builtGuests(): BuiltGuest[] {
  const dirs = new Set<string>();
  if (process.env.NEARFIELD_FRESH_GUEST) dirs.add(process.env.NEARFIELD_FRESH_GUEST);
  const out = join(root, 'images', 'out');
  if (existsSync(out)) for (const d of readdirSync(out)) dirs.add(join(out, d));
  return [...dirs]
    .filter((d) => existsSync(join(d, 'ram.raw')) && existsSync(join(d, 'truth.json')))
    .sort()
    .map((dir) => {
      const truth = JSON.parse(readFileSync(join(dir, 'truth.json'), 'utf8'));
      return { label: `${dir.split('/').pop()} (${truth.uname.release})`, dir, truth };
    });
}
