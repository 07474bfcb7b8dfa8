// A running QEMU as a RAM source (README "RAM sources"): which process serves a QMP socket (SO_PEERCRED), QEMU's
// exact guest-physical → host-virtual map from its monitor (query-memdev, `info mtree -f`, `gpa2hva`), and pausing
// it over QMP for a read (`--pause`: only when it was running, and only ever restoring what we found).

import { basename } from 'node:path';
import { call } from '../native/gateway.js';
import { NearfieldError } from '../errors.js';
import { QmpClient } from '../snapshot/qmp.js';

/** One guest-physical range of a RAM backend and where QEMU maps it (hex strings, for the native side). */
export interface HostSegment { gpa: string; hva: string; len: string }

/** What the native process source needs: the pid, and QEMU's map when a monitor gave it. */
export interface LiveRam {
  pid: number;
  qmp?: string;
  /** Absent: the native side guesses from /proc/PID/maps and QEMU's command line, and warns. */
  map?: HostSegment[];
  mapSource: string;
}

/** One line of a flat view: `  0000000000100000-000000000fffffff (prio 0, ram): pc.ram @0000000000100000 KVM`. */
export interface FlatRange { start: bigint; end: bigint; kind: string; region: string; offset: bigint }

/** The ranges of the flat view that the address space "memory" (what the vCPUs see) uses, from `info mtree -f`. */
export function parseFlatView(text: string, addressSpace = 'memory'): FlatRange[] {
  const views = text.split(/\n(?=FlatView #)/);
  const view = views.find((v) => v.split('\n').some((l) => l.trim().startsWith(`AS "${addressSpace}",`)));
  if (!view) throw new NearfieldError('BAD_DATA', `QEMU's \`info mtree -f\` has no flat view for address space "${addressSpace}"`);
  const out: FlatRange[] = [];
  for (const line of view.split('\n')) {
    const m = /^\s+([0-9a-f]{16})-([0-9a-f]{16}) \(prio -?\d+, ([a-z/-]+)\): (\S+)(?: @([0-9a-f]{16}))?/.exec(line);
    if (!m) continue;
    out.push({ start: BigInt(`0x${m[1]}`), end: BigInt(`0x${m[2]}`), kind: m[3] as string, region: m[4] as string, offset: m[5] ? BigInt(`0x${m[5]}`) : 0n });
  }
  return out;
}

const hex = (v: bigint) => `0x${v.toString(16)}`;

/** Guest RAM ranges (those backed by a memory backend QEMU lists in query-memdev), merged where they touch. */
export function ramRanges(flat: FlatRange[], memdevs: Set<string>): FlatRange[] {
  const ram = flat.filter((r) => (r.kind === 'ram' || r.kind === 'rom') && memdevs.has(r.region));
  const merged: FlatRange[] = [];
  for (const r of ram) {
    const last = merged[merged.length - 1];
    if (last && last.region === r.region && last.end + 1n === r.start && last.offset + (last.end - last.start) + 1n === r.offset) last.end = r.end;
    else merged.push({ ...r });
  }
  return merged;
}

/** The pid serving a QMP socket (the socket's peer credentials). */
export function qmpPeerPid(socket: string): number {
  return call(socket, (n) => n.unixSocketPeerPid(socket));
}

/** Ask QEMU for its exact map: every RAM range of address space "memory" and its host-virtual address (gpa2hva). */
export async function qemuRamMap(qmp: QmpClient, socket: string): Promise<{ map: HostSegment[]; describe: string }> {
  const memdevs = (await qmp.execute('query-memdev')) as { id?: string; size: number }[];
  const ids = new Set(memdevs.map((m) => m.id).filter((id): id is string => typeof id === 'string'));
  if (ids.size === 0) throw new NearfieldError('NOT_FOUND', 'QEMU lists no memory backend (query-memdev)', socket);
  const mtree = (await qmp.execute('human-monitor-command', { 'command-line': 'info mtree -f' })) as string;
  const ranges = ramRanges(parseFlatView(mtree), ids);
  if (ranges.length === 0) throw new NearfieldError('NOT_FOUND', `no guest RAM in QEMU's flat view (memory backends: ${[...ids].join(', ')})`, socket);
  const map: HostSegment[] = [];
  for (const r of ranges) {
    const reply = (await qmp.execute('human-monitor-command', { 'command-line': `gpa2hva ${hex(r.start)}` })) as string;
    const m = /Host virtual address for 0x[0-9a-f]+ \((.*)\) is (0x[0-9a-f]+)/.exec(reply);
    if (!m) throw new NearfieldError('BAD_DATA', `gpa2hva ${hex(r.start)}: ${reply.trim() || 'no answer'}`, socket);
    map.push({ gpa: hex(r.start), hva: m[2] as string, len: hex(r.end - r.start + 1n) });
  }
  const total = ranges.reduce((n, r) => n + (r.end - r.start + 1n), 0n);
  return { map, describe: `qmp: info mtree -f + gpa2hva, ${map.length} range(s) of ${[...new Set(ranges.map((r) => r.region))].join(', ')}, ${total >> 20n} MiB` };
}

/** Resolve `--pid`/`--qmp` to a live RAM source: the process, and QEMU's own map when a monitor is given. */
export async function resolveLiveRam(opts: { pid?: number; qmp?: string }): Promise<LiveRam> {
  if (!opts.qmp) {
    if (opts.pid === undefined) throw new NearfieldError('USAGE', 'a live VM needs --pid PID or --qmp SOCKET');
    return { pid: opts.pid, mapSource: '/proc/PID/maps' };
  }
  const pid = qmpPeerPid(opts.qmp);
  if (opts.pid !== undefined && opts.pid !== pid) {
    throw new NearfieldError('USAGE', `--pid ${opts.pid} is not the QEMU serving this QMP socket (that is pid ${pid})`, opts.qmp);
  }
  const qmp = await QmpClient.connect(opts.qmp, 5000);
  try {
    const { map, describe } = await qemuRamMap(qmp, opts.qmp);
    return { pid, qmp: opts.qmp, map, mapSource: describe };
  } finally {
    qmp.close();
  }
}

/** The name a live VM goes by when none is given: the QMP socket's base name, else `qemu-PID`. */
export function liveName(opts: { pid?: number; qmp?: string }): string {
  if (opts.qmp) return basename(opts.qmp).replace(/\.(sock|qmp|socket)$/, '');
  return `qemu-${opts.pid}`;
}

/** A pause taken for a read, and how to undo it. */
export interface Pause { paused: boolean; resume(): Promise<void> }

/** Pause the VM over QMP for a read — only when it was running — and give back what undoes exactly that. */
export async function pauseForRead(socket: string): Promise<Pause> {
  const qmp = await QmpClient.connect(socket, 5000);
  let stopped = false;
  try {
    const status = (await qmp.execute('query-status')) as { status?: string; running?: boolean };
    if (status.running === true || status.status === 'running') {
      await qmp.execute('stop');
      stopped = true;
    }
  } finally {
    qmp.close();
  }
  let resumed = false;
  const resume = async () => {
    if (!stopped || resumed) return;
    resumed = true;
    const again = await QmpClient.connect(socket, 5000);
    try {
      await again.execute('cont');
    } finally {
      again.close();
    }
  };
  // Ctrl-C or SIGTERM while paused must not leave the VM stopped.
  const onSignal = (sig: NodeJS.Signals) => {
    void resume().finally(() => process.kill(process.pid, sig));
  };
  if (stopped) {
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  return {
    paused: true,
    resume: async () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      await resume();
    },
  };
}
