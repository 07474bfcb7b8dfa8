// Opening a guest's RAM as a native `Guest` (kernel discovered, profile cache honoured): the one path every RAM command takes.

import { call, native } from './native/gateway.js';
import { NearfieldError, toNearfieldError, type ErrorCode } from './errors.js';
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

const codePrefix = /^(FAULT|BAD_DATA|UNSUPPORTED|NOT_FOUND|IO): /;

/** Async twin of `openGuest` (discovery off the JS thread). napi async tasks reject with the closed
 *  error code as a message prefix ("FAULT: …"); this turns it back into the NearfieldError code. */
export async function openGuestAsync(target: Target, opts: GuestOpenOptions = {}): Promise<Guest> {
  const ram = target.ram;
  if (!ram) throw new NearfieldError('NOT_FOUND', 'the target has no RAM file (give --ram FILE)', target.dir ?? target.name);
  const n = native();
  try {
    return await n.Guest.openAsync({
      ram,
      layout: target.ramLayout,
      systemMap: opts.systemMap,
      vmlinux: opts.vmlinux,
      isf: opts.isf,
      useCache: opts.cache !== false,
    });
  } catch (e) {
    const message = (e as Error)?.message ?? String(e);
    const m = codePrefix.exec(message);
    if (m?.[1]) throw new NearfieldError(m[1] as ErrorCode, message.slice(m[0].length), ram);
    throw toNearfieldError(e, ram);
  }
}
