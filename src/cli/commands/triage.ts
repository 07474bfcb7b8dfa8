// `nearfield triage [target]`: one screen for the person on call — verdict lines first (a panic, tasks blocked on a
// frozen filesystem or a lock chain, memory, disk, load), then the evidence: stacks of the blocked and running
// tasks and the kernel log around the panic or the first error. And the report's health collector.

import type {
  FilesystemUsage, Health, HungTask, HungTasks, Log, LogRecord, Meminfo, StackList, Triage, Uptime, VcpuRegisterText, Verdict,
} from '../../generated/records.js';
import { SCHEMA_VERSION } from '../../generated/records.js';
import { defineRecordCommand, printable } from '../define.js';
import { defineCollector } from '../../report/collector.js';
import { readVcpuRegisters } from '../../stacks/qmp-registers.js';
import { dmesgLine } from './dmesg.js';
import { hungText } from './hung.js';
import { traceText } from './bt.js';
import { mountpointOf } from './df.js';

interface TriageFlags {
  qmp?: string;
}

/** What the verdicts are computed from: walker records (null where a walker failed). */
export interface TriageInputs {
  vm: string;
  health: Health | null;
  hung: HungTasks | null;
  stacks: StackList | null;
  meminfo: Meminfo | null;
  uptime: Uptime | null;
  log: Log | null;
  statfs: FilesystemUsage | null;
  warnings: string[];
}

/** Thresholds for the memory, disk and load lines. */
const LOW_MEMORY_PERCENT = 10;
const FULL_DISK_PERCENT = 90;
const LOAD_PER_CPU = 2;
/** Log records shown around the panic, the first error, or at the tail. */
const BEFORE_PANIC = 10;
const AFTER_PANIC = 60;
const AROUND_ERROR = 8;
const TAIL = 12;

const who = (t: { comm: string; pid: number }) => `${printable(t.comm)} (${t.pid})`;
const secondsOf = (ns: string | null) => (ns === null ? 0 : Math.floor(Number(BigInt(ns) / 1_000_000n) / 1000));

/** A waiter's chain: "nf-lock-pipewr (180) → mutex held by nf-lock/fault (182) → frozen ext4 /mnt/root". */
function lockChain(t: HungTask, byAddress: Map<string, HungTask>): string {
  const parts = [who(t)];
  const seen = new Set<string>([t.address]);
  let cur: HungTask | undefined = t;
  for (let i = 0; cur && i < 16; i++) {
    const w: HungTask['waitsOn'] = cur.waitsOn;
    if (w.kind === 'frozen-fs' || w.kind === 'wchan') {
      if (cur !== t) parts.push(w.kind === 'frozen-fs' ? `frozen ${w.fstype ?? '?'} ${w.mountpoints[0] ?? '?'}` : `blocked in ${w.description}`);
      break;
    }
    const lock = w.kind === 'rwsem' ? (w.mmapLockOf ? `mmap_lock of ${who(w.mmapLockOf)}` : 'rwsem') : 'mutex';
    const mode = w.kind === 'rwsem' ? ` for ${w.wantsWrite ? 'write' : 'read'}` : '';
    const held = w.writerLocked === false && (w.readers ?? 0) > 0 ? 'held for read' : 'held';
    if (!w.owner) {
      parts.push(`${lock}${mode} (owner unknown)`);
      break;
    }
    parts.push(`${lock}${mode} ${held} by ${who(w.owner)}`);
    if (seen.has(w.owner.address)) {
      parts.push('(a cycle: deadlock)');
      break;
    }
    seen.add(w.owner.address);
    cur = byAddress.get(w.owner.address);
    if (!cur) break;
  }
  return parts.join(' → ');
}

function hungVerdicts(h: HungTasks): Verdict[] {
  const out: Verdict[] = [];
  const severity = (ts: HungTask[]) => (ts.some((t) => t.khungtaskd.verdict === 'reported' || t.khungtaskd.verdict === 'would-report') ? 'critical' : 'warning');
  const frozen = new Map<string, HungTask[]>();
  const locks: HungTask[] = [];
  const wchan = new Map<string, HungTask[]>();
  for (const t of h.tasks) {
    if (t.waitsOn.kind === 'frozen-fs') frozen.set(t.waitsOn.address ?? '?', [...(frozen.get(t.waitsOn.address ?? '?') ?? []), t]);
    else if (t.waitsOn.kind === 'mutex' || t.waitsOn.kind === 'rwsem') locks.push(t);
    else wchan.set(t.waitsOn.description, [...(wchan.get(t.waitsOn.description) ?? []), t]);
  }
  const n = (ts: HungTask[]) => `${ts.length} task${ts.length === 1 ? '' : 's'}`;
  const longest = (ts: HungTask[]) => Math.max(...ts.map((t) => secondsOf(t.blockedForNs)));
  for (const ts of frozen.values()) {
    const w = ts[0]!.waitsOn;
    out.push({ severity: severity(ts), kind: 'hung', text: `${n(ts)} blocked ${longest(ts)} s on frozen ${w.fstype ?? 'filesystem'} ${w.mountpoints[0] ?? '(unmounted)'}: ${ts.map(who).join(', ')}` });
  }
  const byAddress = new Map(h.tasks.map((t) => [t.address, t]));
  for (const t of locks) out.push({ severity: severity([t]), kind: 'lock', text: `blocked ${secondsOf(t.blockedForNs)} s: ${lockChain(t, byAddress)}` });
  for (const [where, ts] of wchan) {
    out.push({ severity: severity(ts), kind: 'hung', text: `${n(ts)} blocked ${longest(ts)} s in ${printable(where)}: ${ts.map(who).join(', ')}` });
  }
  return out;
}

/** kB of a /proc/meminfo field. */
function field(m: Meminfo, name: string): number | undefined {
  return m.fields.find((f) => f.name === name)?.value;
}

/** The log excerpt: around the panic, else the first error, else the tail. */
function excerpt(log: Log | null, health: Health | null): Triage['log'] {
  if (!log) return { around: 'tail', records: [] };
  const at = (seq: number, before: number, after: number): LogRecord[] => log.records.filter((r) => r.seq >= seq - before && r.seq <= seq + after);
  if (health?.log.panicSeq !== null && health?.log.panicSeq !== undefined) return { around: 'panic', records: at(health.log.panicSeq, BEFORE_PANIC, AFTER_PANIC) };
  if (health?.log.firstError) return { around: 'first error', records: at(health.log.firstError.seq, AROUND_ERROR, AROUND_ERROR) };
  return { around: 'tail', records: log.records.slice(-TAIL) };
}

/** The verdicts and evidence from the walkers' records. */
export function buildTriage(i: TriageInputs): Triage {
  const verdicts: Verdict[] = [];
  const p = i.health?.panic;
  if (p?.panicked) {
    const taint = p.taintLetters ? `; tainted ${p.taintLetters}` : '';
    verdicts.push({ severity: 'critical', kind: 'panic', text: `kernel PANIC on CPU ${p.panicCpu ?? '?'}: ${p.message ?? 'no panic message in the log'}${taint}` });
  }
  if (p && (p.oops || p.oopsRip)) {
    const rip = p.oopsRip ? ` at ${p.oopsRip.replace(/^RIP: 0010:/, '')}` : '';
    verdicts.push({ severity: p.panicked ? 'critical' : 'warning', kind: 'oops', text: `${p.oops ?? 'oops'}${rip}${p.oopsCount ? ` (${p.oopsCount} oops${p.oopsCount === 1 ? '' : 'es'} since boot)` : ''}` });
  }
  if (i.hung) verdicts.push(...hungVerdicts(i.hung));
  let memory: Triage['memory'] = null;
  if (i.meminfo) {
    const total = field(i.meminfo, 'MemTotal');
    const avail = field(i.meminfo, 'MemAvailable');
    if (total && avail !== undefined) {
      const pct = Math.round((avail / total) * 1000) / 10;
      const oom = i.health?.log.oomKills ?? 0;
      memory = { memTotalKib: total, memAvailableKib: avail, availablePercent: pct, oomKills: oom };
      if (pct < LOW_MEMORY_PERCENT || oom > 0) {
        const kills = oom > 0 ? `, ${oom} OOM kill${oom === 1 ? '' : 's'} in the log` : '';
        verdicts.push({ severity: pct < 2 ? 'critical' : 'warning', kind: 'memory', text: `memory: MemAvailable ${Math.round(pct)} %${kills}` });
      }
    }
  }
  const filesystems: Triage['filesystems'] = [];
  if (i.statfs) {
    const u = i.statfs;
    const where = u.mountpoint ?? (u.superblock.lastMountedOn || u.device);
    filesystems.push({ device: u.device, mountpoint: u.mountpoint, usePercent: u.df.usePercent, inodesUsePercent: u.df.inodesUsePercent, availBytes: u.df.availBytes });
    if ((u.df.usePercent ?? 0) >= FULL_DISK_PERCENT) verdicts.push({ severity: u.df.availBytes === 0 ? 'critical' : 'warning', kind: 'disk', text: `${where} ${u.df.usePercent} % full` });
    if ((u.df.inodesUsePercent ?? 0) >= FULL_DISK_PERCENT) verdicts.push({ severity: 'warning', kind: 'disk', text: `${where} ${u.df.inodesUsePercent} % of inodes used` });
  }
  let load: Triage['load'] = null;
  if (i.uptime) {
    const cpus = Math.max(1, i.uptime.onlineCpus.length);
    load = { loadavg: i.uptime.loadavg, onlineCpus: i.uptime.onlineCpus.length, running: i.uptime.nrRunning };
    const l1 = Number(i.uptime.loadavg[0]);
    if (l1 >= LOAD_PER_CPU * cpus) verdicts.push({ severity: 'warning', kind: 'load', text: `load ${Math.round(l1)} on ${cpus} CPU${cpus === 1 ? '' : 's'}` });
  }
  const rank = { critical: 0, warning: 1, ok: 2 } as const;
  verdicts.sort((a, b) => rank[a.severity] - rank[b.severity]);
  if (verdicts.length === 0) {
    verdicts.push({ severity: 'ok', kind: 'ok', text: 'no panic, no task blocked in D; memory, disk and load normal' });
  }
  return {
    schemaVersion: SCHEMA_VERSION,
    vm: i.vm,
    verdicts,
    health: i.health,
    hung: i.hung,
    running: i.stacks?.tasks.filter((t) => t.onCpu !== null) ?? [],
    log: excerpt(i.log, i.health),
    memory,
    load,
    filesystems,
    warnings: i.warnings,
  };
}

export function triageText(t: Triage): string {
  const out: string[] = [];
  const mark = { critical: '!!', warning: ' !', ok: 'ok' } as const;
  for (const v of t.verdicts) out.push(`${mark[v.severity]} ${v.text}`);
  if (t.health) {
    out.push('', 'CPUs:');
    for (const c of t.health.cpus) {
      out.push(`  CPU ${c.cpu}: ${c.idle ? 'idle' : `${printable(c.comm ?? '?')} (${c.pid ?? '?'})`}${c.online ? '' : ', offline'}${c.panicking ? ', panicking' : ''}, ${c.nrRunning} runnable`);
    }
  }
  if (t.hung && t.hung.tasks.length > 0) out.push('', '== blocked tasks ==', hungText(t.hung).trimEnd());
  if (t.running.length > 0) out.push('', '== running ==', t.running.map((r) => traceText(r)).join('\n\n'));
  if (t.log.records.length > 0) out.push('', `== kernel log around the ${t.log.around} ==`, ...t.log.records.map((r) => dmesgLine(r)));
  return out.join('\n') + '\n';
}

/** Run `fn`, keeping its failure as a warning: one broken walker costs its part, not the triage. */
function part<T>(what: string, warnings: string[], fn: () => T): T | null {
  try {
    return fn();
  } catch (e) {
    warnings.push(`${what}: ${(e as Error).message}`);
    return null;
  }
}

export const command = defineRecordCommand({
  name: 'triage',
  description: 'why is this VM stuck? verdict lines (panic, blocked tasks, lock chains, memory, disk, load), then the evidence',
  read: async (s, f: TriageFlags): Promise<Triage> => {
    const warnings: string[] = [];
    let registers: VcpuRegisterText[] = [];
    if (f.qmp) registers = await readVcpuRegisters(f.qmp);
    const g = await s.guest();
    const health = part('health', warnings, () => g.health({ hung: false }));
    const hung = part('hung tasks', warnings, () => g.hung());
    const stacks = part('running tasks', warnings, () => g.stacks({ cpu: true, registers }));
    const meminfo = part('memory', warnings, () => g.meminfo());
    const uptime = part('load', warnings, () => g.uptime());
    const log = part('kernel log', warnings, () => g.dmesg());
    const statfs = s.target.disk
      ? part('filesystem', warnings, () => {
        const u = s.disk().statfs();
        u.mountpoint = mountpointOf(u, part('mounts', warnings, () => g.mounts()) ?? undefined);
        return u;
      })
      : null;
    for (const r of [health, hung, stacks]) for (const w of r?.warnings ?? []) if (!warnings.includes(w)) warnings.push(w);
    return buildTriage({ vm: s.target.name, health, hung, stacks, meminfo, uptime, log, statfs, warnings });
  },
  items: (t) => t.verdicts,
  text: (t) => triageText(t),
});

export const collectors = [
  defineCollector({
    name: 'health',
    needs: 'ram',
    order: 15,
    collect: ({ guest, sections }) => {
      sections.health = guest!.health();
    },
    table: (r) => {
      const h = r.sections.health;
      if (!h) return undefined;
      const lines: string[] = [];
      if (h.panic.panicked) lines.push(`kernel PANIC on CPU ${h.panic.panicCpu ?? '?'}: ${h.panic.message ?? '?'}`);
      if (h.panic.oopsRip) lines.push(`oops ${h.panic.oopsRip}`);
      lines.push(`tainted: ${h.panic.taintLetters || 'no'}${h.panic.oopsCount ? `, ${h.panic.oopsCount} oopses` : ''}`);
      if (h.hung) {
        const frozen = h.hung.frozenFilesystems.length ? `; frozen: ${h.hung.frozenFilesystems.join(', ')}` : '';
        lines.push(`tasks in D: ${h.hung.blocked}, ${h.hung.reported + h.hung.wouldReport} hung past khungtaskd's ${h.hung.timeoutSecs ?? '?'} s${frozen}`);
      }
      if (h.log.oomKills) lines.push(`OOM kills in the log: ${h.log.oomKills}`);
      for (const c of h.cpus) lines.push(`CPU ${c.cpu}: ${c.idle ? 'idle' : `${c.comm ?? '?'} (${c.pid ?? '?'})`}${c.online ? '' : ', offline'}, ${c.nrRunning} runnable`);
      const bad = h.panic.panicked || (h.hung?.reported ?? 0) + (h.hung?.wouldReport ?? 0) > 0;
      return { title: `health: ${h.panic.panicked ? 'PANIC' : bad ? 'hung tasks' : 'ok'}`, body: lines.join('\n') };
    },
    prometheus: (r, m) => {
      const h = r.sections.health;
      if (!h) return;
      m.gauge('nearfield_kernel_panicked', 'Whether the guest kernel has panicked (panic_cpu set, or a panic in its log).', h.panic.panicked ? 1 : 0);
      m.gauge('nearfield_kernel_tainted', "The guest kernel's taint mask, as /proc/sys/kernel/tainted.", h.panic.tainted);
      m.gauge('nearfield_kernel_oops_count', 'Oopses since boot (oops_count).', h.panic.oopsCount);
      m.gauge('nearfield_oom_kills_logged', 'OOM kills in the kernel log.', h.log.oomKills);
      if (h.hung) {
        m.gauge('nearfield_blocked_tasks', 'Tasks in uninterruptible sleep (D).', h.hung.blocked);
        m.gauge('nearfield_hung_tasks', "Tasks in D that khungtaskd reported or would report (blocked past hung_task_timeout_secs).", h.hung.reported + h.hung.wouldReport);
        m.gauge('nearfield_frozen_filesystems', 'Frozen filesystems that tasks wait on.', h.hung.frozenFilesystems.length);
      }
    },
    vhostmd: (r, emit) => {
      const h = r.sections.health;
      emit('uint32', 'KernelPanicked', h ? (h.panic.panicked ? 1 : 0) : undefined);
      emit('uint32', 'HungTasks', h?.hung ? h.hung.reported + h.hung.wouldReport : undefined);
    },
  }),
];
