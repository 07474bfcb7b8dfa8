// Shared by the file commands (ls, cat, stat, find, inspect): target → mounted image, guest paths, ls-style rendering.

import { ExitCode, NearfieldError, toNearfieldError } from '../errors.js';
import { resolveTarget, type TargetOptions } from '../target.js';
import type { GuestFiles } from '../../wasm/client.js';
import type { StatRecord, Time } from '../../wasm/protocol.js';
import { normalizeGuestPath } from '../../wasm/guest-path.js';
import { clearStatus, info, type OutputOptions } from './output.js';

/** A guest path from the command line: absolute (relative means from /), no climbing above the guest's root. */
export function guestPath(arg: string | undefined): string {
  const raw = arg === undefined || arg === '' ? '/' : arg;
  if (raw.includes('\0')) throw new NearfieldError('USAGE', 'a path cannot contain a NUL byte');
  const p = normalizeGuestPath(raw.startsWith('/') ? raw : `/${raw}`, false);
  if (p === null) throw new NearfieldError('USAGE', `"${raw}" climbs above the guest's root directory`);
  return p;
}

/** Mount the target's disk image read-only in the libext2fs worker, run fn, end the worker. */
export async function withGuestFiles<T>(positional: string | undefined, opts: TargetOptions & OutputOptions, fn: (g: GuestFiles) => Promise<T>): Promise<T> {
  const target = await resolveTarget(positional, opts);
  if (!target.disk) throw new NearfieldError('NOT_FOUND', 'the target has no disk image (give one with --disk)', target.dir ?? target.ram);
  // Loaded only here: commands that never read files do not load the worker client (nor, in turn, libext2fs).
  const { GuestFiles } = await import('../../wasm/client.js');
  const g = await GuestFiles.open(target.disk, target.partition);
  try {
    if (g.info.maskedFeatures.length > 0) info(opts, `note: hid read-only-compatible features ${g.info.maskedFeatures.join(', ')} from libext2fs (it never writes)`);
    if (g.info.needsRecovery) info(opts, 'note: the journal has not been replayed (live or crashed guest): the newest changes may be missing');
    return await fn(g);
  } finally {
    await g.close();
  }
}

/** Like output.ts action(), but the "what failed" names the path the user gave: `nearfield: ls /nope: …`. */
export function fileAction<A extends unknown[]>(verb: string, pathOf: (first: NoInfer<A>[0]) => string | undefined, fn: (...args: A) => Promise<number | void>) {
  return async (...args: A): Promise<void> => {
    try {
      const code = await fn(...args);
      process.exitCode = typeof code === 'number' ? code : ExitCode.ok;
    } catch (e) {
      const err = toNearfieldError(e);
      clearStatus();
      const p = pathOf(args[0]);
      process.stderr.write(err.format(p === undefined ? verb : `${verb} ${p}`) + '\n');
      if (err.code === 'INTERNAL' && process.env.NEARFIELD_DEBUG) process.stderr.write(String((e as Error).stack) + '\n');
      process.exitCode = err.exitCode;
    }
  };
}

const typeChar: Record<string, string> = { file: '-', dir: 'd', symlink: 'l', chr: 'c', blk: 'b', fifo: 'p', sock: 's', unknown: '?' };

/** `drwxr-xr-x`, with s/S, t/T as ls prints them. */
export function modeString(r: Pick<StatRecord, 'mode' | 'type'>): string {
  const m = r.mode;
  const bit = (mask: number, c: string): string => (m & mask ? c : '-');
  const special = (x: boolean, s: boolean, lower: string, upper: string): string => (s ? (x ? lower : upper) : x ? 'x' : '-');
  return (
    (typeChar[r.type] ?? '?') +
    bit(0o400, 'r') + bit(0o200, 'w') + special(!!(m & 0o100), !!(m & 0o4000), 's', 'S') +
    bit(0o040, 'r') + bit(0o020, 'w') + special(!!(m & 0o010), !!(m & 0o2000), 's', 'S') +
    bit(0o004, 'r') + bit(0o002, 'w') + special(!!(m & 0o001), !!(m & 0o1000), 't', 'T')
  );
}

/** Permission bits as four octal digits, `0755`. */
export function octalMode(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

/** 2026-11-23T19:05:12.123456789Z: UTC with the inode's nanoseconds (the guest's timezone is not the host's). */
export function isoTime(t: Time): string {
  const d = new Date(t.sec * 1000);
  if (Number.isNaN(d.getTime())) return String(t.sec);
  return d.toISOString().replace(/\.\d{3}Z$/, `.${String(t.nsec).padStart(9, '0')}Z`);
}

export function jsonTime(t: Time | null): { sec: number; nsec: number; iso: string } | null {
  return t === null ? null : { sec: t.sec, nsec: t.nsec, iso: isoTime(t) };
}

const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** ls's short time (UTC): "Nov 23 19:05" within six months of now, else "Nov 23  2024". */
export function lsTime(t: Time, nowSec = Date.now() / 1000): string {
  const d = new Date(t.sec * 1000);
  if (Number.isNaN(d.getTime())) return String(t.sec);
  const day = String(d.getUTCDate()).padStart(2, ' ');
  const recent = Math.abs(nowSec - t.sec) < 182.5 * 86400;
  const tail = recent
    ? `${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}`
    : ` ${d.getUTCFullYear()}`;
  return `${months[d.getUTCMonth()]} ${day} ${tail}`;
}

/** uid → name and gid → name from the guest's own /etc/passwd and /etc/group (absent or unreadable: numbers only). */
export interface IdNames {
  user(uid: number): string | undefined;
  group(gid: number): string | undefined;
}

export function parseIdFile(text: string): Map<number, string> {
  const m = new Map<number, string>();
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 3 || line.startsWith('#')) continue;
    const id = Number(f[2]);
    if (Number.isInteger(id) && !m.has(id)) m.set(id, f[0]!);
  }
  return m;
}

export async function loadIdNames(g: GuestFiles): Promise<IdNames> {
  const read = async (p: string): Promise<Map<number, string>> => {
    try {
      return parseIdFile((await g.readFile(p)).toString('utf8'));
    } catch (e) {
      if (e instanceof NearfieldError && e.message.startsWith('libext2fs aborted')) throw e;
      return new Map();
    }
  };
  const users = await read('/etc/passwd');
  const groups = await read('/etc/group');
  return { user: (u) => users.get(u), group: (gr) => groups.get(gr) };
}

/** Byte-order name comparison (ls under LC_ALL=C). */
export function byName(a: { name: string }, b: { name: string }): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}
