// Shared by ps/free/meminfo/buddyinfo/uptime: open the guest's kernel from a target and render /proc-style values.

import { openGuest } from '../guest.js';
import { resolveTarget } from '../target.js';
import { ExitCode } from '../errors.js';
import { warn, type OutputOptions } from './output.js';
import type { CommonOptions } from './common.js';

export type NativeGuest = Awaited<ReturnType<typeof openGuest>>;

/** Resolve the target and open its RAM as a Guest (kernel discovered, profile cache honoured). */
export async function guestFor(positional: string | undefined, opts: CommonOptions): Promise<{ guest: NativeGuest; file: string }> {
  const target = await resolveTarget(positional, opts);
  const guest = await openGuest(target, opts);
  return { guest, file: target.ram ?? target.name };
}

/** Print warnings on stderr and pick the exit code: 3 when the data is partial. */
export function finish(warnings: string[], opts: OutputOptions): number {
  void opts;
  for (const w of warnings) warn(w);
  return warnings.length ? ExitCode.partial : ExitCode.ok;
}

/** The bigint/number the native side gives, as a JS number (times in ns stay exact below 104 days). */
export function num(v: bigint | number | null | undefined): number | null {
  if (v === null || v === undefined) return null;
  return typeof v === 'bigint' ? Number(v) : v;
}

/** Replace bytes ps would not print (control characters) with '?', as ps does. */
export function printable(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\x00-\x1f\x7f-\x9f]/g, '?');
}

/** USER_HZ as /proc reports ticks (include/asm-generic/param.h). */
export const USER_HZ = 100;
export const NS_PER_TICK = 1_000_000_000 / USER_HZ;
