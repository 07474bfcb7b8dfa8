// Opening a guest's RAM as a native `Guest` (kernel discovered, profile cache honoured): the one path every RAM command takes.

import { call } from './native/gateway.js';
import { NearfieldError } from './errors.js';
import type { Target } from './target.js';
import type { Guest } from '../native/binding.js';

/** Fallback symbol/type sources and cache use, as the CLI flags give them. */
export interface GuestOpenOptions {
  systemMap?: string;
  vmlinux?: string;
  isf?: string;
  /** commander's `--no-cache` sets this to false. */
  cache?: boolean;
}

/** Open the target's RAM file and discover its kernel; errors name the RAM file. */
export async function openGuest(target: Target, opts: GuestOpenOptions = {}): Promise<Guest> {
  const ram = target.ram;
  if (!ram) throw new NearfieldError('NOT_FOUND', 'the target has no RAM file (give --ram FILE)', target.dir ?? target.name);
  return call(ram, (n) =>
    n.Guest.open({
      ram,
      layout: target.ramLayout,
      systemMap: opts.systemMap,
      vmlinux: opts.vmlinux,
      isf: opts.isf,
      useCache: opts.cache !== false,
    }),
  );
}
