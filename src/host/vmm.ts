// The host tier of a VM (the project's starting idea: the in-guest view beside the host's view of the same VM):
// the VMM process's CPU and RSS (proc(5) /proc/PID/stat, status), each vCPU thread's CPU time and run-queue delay
// (/proc/PID/task/TID/stat, schedstat: Documentation/scheduler/sched-stats.rst), block I/O from QMP query-blockstats,
// the tap devices' counters (/proc/PID/fdinfo "iff:" → /sys/class/net/IF/statistics), and the VMM's cgroup v2
// cpu.stat and memory.current.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { QmpClient } from '../snapshot/qmp.js';
import type { HostTier } from '../generated/records.js';

/** USER_HZ: /proc reports times in these ticks on Linux (sysconf(_SC_CLK_TCK) is 100 on every arch Linux runs KVM on). */
const USER_HZ = 100;

/** Where /proc and /sys are (tests point them at a fake tree). */
export interface HostRoots { proc: string; sys: string }
const realRoots: HostRoots = { proc: '/proc', sys: '/sys' };

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** Fields of a /proc/PID/stat line after the comm (which may hold spaces and parentheses): [0] is the state. */
export function statFields(text: string): string[] {
  const close = text.lastIndexOf(')');
  return close < 0 ? [] : text.slice(close + 2).trim().split(/\s+/);
}

/** utime and stime (fields 14 and 15 of /proc/PID/stat) in seconds. */
export function statCpuSeconds(text: string): { user: number; system: number } | undefined {
  const f = statFields(text);
  const u = Number(f[11]);
  const s = Number(f[12]);
  return Number.isFinite(u) && Number.isFinite(s) ? { user: u / USER_HZ, system: s / USER_HZ } : undefined;
}

/** /proc/PID/task/TID/schedstat: "time on CPU (ns) time waiting on a run queue (ns) timeslices". */
export function parseSchedstat(text: string): { runNs: number; delayNs: number } | undefined {
  const [run, delay] = text.trim().split(/\s+/).map(Number);
  return Number.isFinite(run) && Number.isFinite(delay) ? { runNs: run as number, delayNs: delay as number } : undefined;
}

/** "key value" lines (cgroup cpu.stat, memory.stat). */
export function keyValues(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v !== undefined && Number.isFinite(Number(v))) out[k] = Number(v);
  }
  return out;
}

/** The tap (tun) interfaces a process holds open: drivers/net/tun.c prints "iff:\tNAME" in their fdinfo. */
export function tapInterfaces(pid: number, roots: HostRoots = realRoots): string[] {
  const dir = join(roots.proc, String(pid), 'fdinfo');
  let fds: string[];
  try {
    fds = readdirSync(dir);
  } catch {
    return [];
  }
  const names = new Set<string>();
  for (const fd of fds.slice(0, 65536)) {
    const m = /^iff:\s*(\S+)/m.exec(read(join(dir, fd)) ?? '');
    if (m) names.add(m[1] as string);
  }
  return [...names].sort();
}

/** Where the cgroup v2 hierarchy is mounted (fs type cgroup2 in /proc/self/mountinfo). */
function cgroup2Mount(roots: HostRoots): string | undefined {
  for (const line of (read(join(roots.proc, 'self', 'mountinfo')) ?? '').split('\n')) {
    const [left, right] = line.split(' - ');
    if (right?.startsWith('cgroup2 ')) return left?.split(' ')[4];
  }
  return undefined;
}

type Block = HostTier['block'][number];

/** QMP query-blockstats as libvirt's block stats: bytes, requests and time per device. */
export function blockStats(reply: unknown): Block[] {
  const out: Block[] = [];
  for (const d of Array.isArray(reply) ? reply : []) {
    const e = d as { device?: string; qdev?: string; stats?: Record<string, number> };
    const s = e.stats;
    if (!s) continue;
    out.push({
      device: e.device || e.qdev || '?',
      readBytes: s.rd_bytes ?? 0,
      writeBytes: s.wr_bytes ?? 0,
      readRequests: s.rd_operations ?? 0,
      writeRequests: s.wr_operations ?? 0,
      flushRequests: s.flush_operations ?? 0,
      readTimeSeconds: (s.rd_total_time_ns ?? 0) / 1e9,
      writeTimeSeconds: (s.wr_total_time_ns ?? 0) / 1e9,
      flushTimeSeconds: (s.flush_total_time_ns ?? 0) / 1e9,
    });
  }
  return out;
}

/** Read the host tier of the VMM `pid` now; with its QMP socket, exact vCPU threads and block statistics. */
export async function readHostTier(pid: number, qmpSocket?: string, roots: HostRoots = realRoots): Promise<HostTier> {
  const warnings: string[] = [];
  const base = join(roots.proc, String(pid));
  const stat = read(join(base, 'stat'));
  if (stat === undefined) throw new Error(`process ${pid} is gone (no ${base}/stat)`);
  const cpu = statCpuSeconds(stat);
  const rssKb = Number(/^VmRSS:\s+(\d+) kB/m.exec(read(join(base, 'status')) ?? '')?.[1]);

  let threads: { index: number; tid: number }[] = [];
  let block: Block[] = [];
  if (qmpSocket) {
    try {
      const qmp = await QmpClient.connect(qmpSocket, 5000);
      try {
        const cpus = (await qmp.execute('query-cpus-fast')) as { 'cpu-index': number; 'thread-id': number }[];
        threads = cpus.map((c) => ({ index: c['cpu-index'], tid: c['thread-id'] }));
        block = blockStats(await qmp.execute('query-blockstats'));
      } finally {
        qmp.close();
      }
    } catch (e) {
      warnings.push(`QMP: ${(e as Error).message}`);
    }
  }
  if (threads.length === 0) {
    // Without QMP: QEMU names its vCPU threads "CPU N/KVM" (or /TCG …), but only when started with
    // `-name …,debug-threads=on`; otherwise every thread is "qemu-system-x86" and no vCPU is found.
    for (const tid of safeList(join(base, 'task'))) {
      const m = /^CPU (\d+)\/\w+/.exec((read(join(base, 'task', tid, 'comm')) ?? '').trim());
      if (m) threads.push({ index: Number(m[1]), tid: Number(tid) });
    }
  }
  const vcpus: HostTier['vcpus'] = [];
  for (const t of threads.sort((a, b) => a.index - b.index)) {
    const tstat = read(join(base, 'task', String(t.tid), 'stat'));
    const sched = parseSchedstat(read(join(base, 'task', String(t.tid), 'schedstat')) ?? '');
    const c = tstat ? statCpuSeconds(tstat) : undefined;
    vcpus.push({
      index: t.index,
      threadId: t.tid,
      cpuSeconds: c ? c.user + c.system : null,
      runSeconds: sched ? sched.runNs / 1e9 : null,
      delaySeconds: sched ? sched.delayNs / 1e9 : null,
    });
  }

  const interfaces: HostTier['interfaces'] = [];
  for (const ifname of tapInterfaces(pid, roots)) {
    const dir = join(roots.sys, 'class', 'net', ifname, 'statistics');
    const n = (f: string) => {
      const v = Number(read(join(dir, f)));
      return Number.isFinite(v) ? v : 0;
    };
    // The tap's host side sends what the guest receives: libvirt swaps them too (virNetDevTapInterfaceStats).
    interfaces.push({
      device: ifname,
      receiveBytes: n('tx_bytes'), receivePackets: n('tx_packets'), receiveErrors: n('tx_errors'), receiveDrops: n('tx_dropped'),
      transmitBytes: n('rx_bytes'), transmitPackets: n('rx_packets'), transmitErrors: n('rx_errors'), transmitDrops: n('rx_dropped'),
    });
  }

  let cgroup: HostTier['cgroup'] = null;
  const path = /^0::(.*)$/m.exec(read(join(base, 'cgroup')) ?? '')?.[1];
  const mount = cgroup2Mount(roots);
  if (path !== undefined && mount) {
    const dir = join(mount, path);
    const cs = keyValues(read(join(dir, 'cpu.stat')) ?? '');
    const mem = Number(read(join(dir, 'memory.current')));
    cgroup = {
      path,
      cpuUsageSeconds: cs.usage_usec !== undefined ? cs.usage_usec / 1e6 : null,
      cpuUserSeconds: cs.user_usec !== undefined ? cs.user_usec / 1e6 : null,
      cpuSystemSeconds: cs.system_usec !== undefined ? cs.system_usec / 1e6 : null,
      memoryCurrentBytes: existsSync(join(dir, 'memory.current')) && Number.isFinite(mem) ? mem : null,
    };
  }

  return {
    pid,
    qmp: qmpSocket ?? null,
    cpuUserSeconds: cpu?.user ?? null,
    cpuSystemSeconds: cpu?.system ?? null,
    rssBytes: Number.isFinite(rssKb) ? rssKb * 1024 : null,
    vcpus,
    block,
    interfaces,
    cgroup,
    tiers: null,
    warnings,
  };
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir).slice(0, 100_000);
  } catch {
    return [];
  }
}

/** Where the two tiers disagree: guest busy CPU time against the vCPU threads' CPU time, guest MemTotal against the
 *  VMM's RSS. Ratios above 1 mean the guest claims more than the host gave it. */
export function compareTiers(host: HostTier, guest: { busySeconds?: number | null; memTotalBytes?: number | null }): HostTier['tiers'] {
  const vcpuSeconds = host.vcpus.length > 0 && host.vcpus.every((v) => v.cpuSeconds !== null) ? host.vcpus.reduce((s, v) => s + (v.cpuSeconds ?? 0), 0) : null;
  const busy = guest.busySeconds ?? null;
  const mem = guest.memTotalBytes ?? null;
  return {
    guestCpuSeconds: busy,
    vcpuCpuSeconds: vcpuSeconds,
    cpuRatio: busy !== null && vcpuSeconds ? busy / vcpuSeconds : null,
    guestMemTotalBytes: mem,
    vmmRssBytes: host.rssBytes,
    memoryRatio: mem !== null && host.rssBytes ? mem / host.rssBytes : null,
  };
}
