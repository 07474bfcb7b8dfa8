// `nearfield ps [target]`: every process (or thread) from the guest's task list, with procps-ng 4's columns
// (src/ps/output.c: STAT with its modifiers, NI "-" for real-time tasks, %CPU, TTY …), its -o/-f/aux formats and
// multi-key --sort; user names from the guest's own /etc/passwd when its disk is given. And the report's
// processes collector.

import { existsSync } from 'node:fs';
import type { Task, TaskList } from '../../generated/records.js';
import { NearfieldError } from '../../errors.js';
import { defineRecordCommand, printable, type Column, type Sources } from '../define.js';
import { note, renderTable } from '../output.js';
import { defineCollector } from '../../report/collector.js';
import { humanBytes } from '../../report/units.js';
import { loadIdNames, type IdNames } from '../files-common.js';

interface PsFlags {
  threads?: boolean;
  sort?: string;
  state?: string;
  cmdline?: boolean;
  format?: string[];
  full?: boolean;
  everything?: boolean;
  /** BSD-style option words given as an argument (`ps aux`). */
  bsd?: string;
  quiet?: boolean;
}

/** One row: a process, or with -L one of its threads (then `process` is the group leader's record). */
export interface PsRow {
  task: Task;
  process: Task;
}

/** What cells need besides the row: the guest's clock and memory, user names, and how cmdlines were read. */
interface PsContext {
  /** Guest wall clock: boot time and now, ms since the epoch (null when unknown). */
  bootWallMs: number | null;
  nowMs: number | null;
  /** CLOCK_BOOTTIME at the snapshot, seconds. */
  uptimeSeconds: number | null;
  memTotalKib: number | null;
  ids?: IdNames;
  cmdlineRead: boolean;
}

/** USER_HZ: /proc's clock ticks per second. */
const HZ = 100;

/** The CMD column as ps prints it: argv, or [comm] when there is none; zombies get <defunct>. */
export function cmdColumn(task: Pick<Task, 'comm' | 'state' | 'cmdline' | 'cmdlineError'>, cmdlineRead = true): string {
  let s: string;
  if (!cmdlineRead || (task.cmdline !== null && (task.cmdline.length === 0 || task.cmdline.every((a) => a === '')))) s = `[${task.comm}]`;
  else if (task.cmdline === null) s = `${task.comm} (cmdline ${task.cmdlineError ?? 'unreadable'})`;
  else s = task.cmdline.join(' ');
  if (task.state === 'Z') s += ' <defunct>';
  return printable(s);
}

/**
 * procps' STAT (pr_stat): the state letter, then `<` (nice < 0) or `N` (nice > 0), `L` (pages locked in
 * memory), `s` (session leader), `l` (multi-threaded), `+` (in the foreground process group of its terminal).
 */
export function statColumn(t: Pick<Task, 'state' | 'nice' | 'lockedBytes' | 'session' | 'tgid' | 'pgrp' | 'tpgid'>, nlwp: number): string {
  let s = t.state;
  if (t.nice < 0) s += '<';
  if (t.nice > 0) s += 'N';
  if ((t.lockedBytes ?? 0) >= 1024) s += 'L';
  if (t.session !== null && t.session === t.tgid) s += 's';
  if (nlwp > 1) s += 'l';
  if (t.pgrp !== null && t.pgrp === t.tpgid) s += '+';
  return s;
}

/** procps' NI (pr_nice): the nice value for SCHED_NORMAL and SCHED_BATCH tasks, "-" for the others (real-time …). */
export function niColumn(t: Pick<Task, 'nice' | 'policy'>): string {
  return t.policy === 0 || t.policy === 3 ? String(t.nice) : '-';
}

const policyNames = ['TS', 'FF', 'RR', 'B', 'ISO', 'IDL', 'DLN'];

/** The terminal as ps names it (pr_tty8): the kernel's name, pts3 as pts/3; "?" without one. */
export function ttyColumn(t: Pick<Task, 'tty'>): string {
  if (t.tty === null) return '?';
  const pts = /^pts(\d+)$/.exec(t.tty);
  return printable(pts ? `pts/${pts[1]}` : t.tty);
}

/** [DD-]HH:MM:SS like ps's TIME. */
function timeColumn(ticks: number): string {
  const s = Math.floor(ticks / HZ);
  const dd = Math.floor(s / 86400);
  const hh = String(Math.floor((s % 86400) / 3600)).padStart(2, '0');
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  return `${dd ? `${dd}-` : ''}${hh}:${mm}:${ss}`;
}

/** ps's ELAPSED: [[DD-]HH:]MM:SS. */
function etimeColumn(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const dd = Math.floor(s / 86400);
  const hh = Math.floor((s % 86400) / 3600);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${dd ? `${dd}-` : ''}${dd || hh ? `${two(hh)}:` : ''}${two(Math.floor((s % 3600) / 60))}:${two(s % 60)}`;
}

const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number) => String(n).padStart(2, '0');

/** Start time in ms since the epoch on the guest's clock, or null. */
function startedMs(t: Task, cx: PsContext): number | null {
  return cx.bootWallMs === null ? null : cx.bootWallMs + Number(BigInt(t.startTimeNs) / 1_000_000n);
}

/** procps' STIME/START (pr_stime): HH:MM on the same day as the guest's clock, MonDD in the same year, else the
 *  year (UTC: the guest's time zone is not known from outside). */
function stimeColumn(t: Task, cx: PsContext): string {
  const ms = startedMs(t, cx);
  if (ms === null) return `+${Math.floor(Number(BigInt(t.startTimeNs) / 1_000_000_000n))}s`;
  const d = new Date(ms);
  const now = new Date(cx.nowMs ?? ms);
  if (d.getUTCFullYear() !== now.getUTCFullYear()) return String(d.getUTCFullYear());
  if (d.toISOString().slice(0, 10) !== now.toISOString().slice(0, 10)) return `${months[d.getUTCMonth()]}${two(d.getUTCDate())}`;
  return `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}`;
}

/** procps' STARTED (pr_start): HH:MM:SS within 24 hours of now, else "Mon DD". */
function startColumn(t: Task, cx: PsContext): string {
  const ms = startedMs(t, cx);
  if (ms === null) return '-';
  const d = new Date(ms);
  if (ms + 86_400_000 > (cx.nowMs ?? ms)) return `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())}`;
  return `${months[d.getUTCMonth()]} ${two(d.getUTCDate())}`;
}

/** Seconds the task has existed at the snapshot (procps TIME_ELAPSED). */
function elapsed(t: Task, cx: PsContext): number | null {
  return cx.uptimeSeconds === null ? null : Math.max(0, cx.uptimeSeconds - t.startTicks / HZ);
}

/** procps' %CPU in tenths (pr_pcpu): CPU ticks over the ticks the task has existed. */
function pcpuTenths(t: Task, cx: PsContext): number {
  const e = elapsed(t, cx);
  const jiffies = e === null ? 0 : Math.floor(e * HZ);
  return jiffies > 0 ? Math.floor(((t.utimeTicks + t.stimeTicks) * 1000) / jiffies) : 0;
}

/** procps' %MEM in tenths (pr_pmem): resident KiB over MemTotal, capped at 99.9. */
function pmemTenths(p: Task, cx: PsContext): number {
  if (!cx.memTotalKib) return 0;
  return Math.min(999, Math.floor((kib(p.rss?.bytes) * 1000) / cx.memTotalKib));
}

const kib = (bytes: number | null | undefined) => (bytes === null || bytes === undefined ? 0 : Math.floor(bytes / 1024));

/** A user name as ps's 8-wide USER column shows it: longer names end in "+"; no name: the number. */
function userName(uid: number, cx: PsContext): string {
  const name = cx.ids?.user(uid);
  if (name === undefined) return String(uid);
  return name.length > 8 ? `${name.slice(0, 7)}+` : printable(name);
}

function groupName(gid: number, cx: PsContext): string {
  const name = cx.ids?.group(gid);
  if (name === undefined) return String(gid);
  return name.length > 8 ? `${name.slice(0, 7)}+` : printable(name);
}

/** A column ps knows by name (-o, --sort): header, cell, sort value, and what it needs read. */
interface PsColumn {
  header: string;
  right?: boolean;
  cell(r: PsRow, cx: PsContext): string | number;
  sort?(r: PsRow, cx: PsContext): number | string;
  /** Needs the guest's user and group names (its /etc/passwd and /etc/group). */
  names?: boolean;
}

const pid: PsColumn = { header: 'PID', right: true, cell: (r) => r.process.pid };
const tid: PsColumn = { header: 'TID', right: true, cell: (r) => r.task.pid };
const user: PsColumn = { header: 'USER', cell: (r, cx) => userName(r.task.euid, cx), sort: (r, cx) => userName(r.task.euid, cx), names: true };
const args: PsColumn = { header: 'COMMAND', cell: (r, cx) => cmdColumn(r.process, cx.cmdlineRead) };
const comm: PsColumn = { header: 'COMMAND', cell: (r) => printable(r.task.comm) + (r.task.state === 'Z' ? ' <defunct>' : '') };
const tty: PsColumn = { header: 'TT', cell: (r) => ttyColumn(r.task) };
const stat: PsColumn = { header: 'STAT', cell: (r) => statColumn(r.task, r.process.nrThreads) };
const state: PsColumn = { header: 'S', cell: (r) => r.task.state };
const time: PsColumn = { header: 'TIME', right: true, cell: (r) => timeColumn(r.task.utimeTicks + r.task.stimeTicks), sort: (r) => r.task.utimeTicks + r.task.stimeTicks };
const ni: PsColumn = { header: 'NI', right: true, cell: (r) => niColumn(r.task), sort: (r) => r.task.nice };
const rss: PsColumn = { header: 'RSS', right: true, cell: (r) => kib(r.process.rss?.bytes), sort: (r) => r.process.rss?.bytes ?? -1 };
const vsz: PsColumn = { header: 'VSZ', right: true, cell: (r) => kib(r.process.vszBytes), sort: (r) => r.process.vszBytes ?? -1 };
const cls: PsColumn = { header: 'CLS', cell: (r) => policyNames[r.task.policy] ?? '?', sort: (r) => r.task.policy };
const stime: PsColumn = { header: 'STIME', right: true, cell: (r, cx) => stimeColumn(r.task, cx), sort: (r) => r.task.startTicks };
const pcpu: PsColumn = { header: '%CPU', right: true, cell: (r, cx) => { const v = pcpuTenths(r.task, cx); return v > 999 ? String(Math.floor(v / 10)) : `${Math.floor(v / 10)}.${v % 10}`; }, sort: (r, cx) => pcpuTenths(r.task, cx) };
const pmem: PsColumn = { header: '%MEM', right: true, cell: (r, cx) => { const v = pmemTenths(r.process, cx); return `${Math.floor(v / 10)}.${v % 10}`; }, sort: (r, cx) => pmemTenths(r.process, cx) };
const sess: PsColumn = { header: 'SESS', right: true, cell: (r) => r.task.session ?? '-', sort: (r) => r.task.session ?? -1 };
const pgid: PsColumn = { header: 'PGID', right: true, cell: (r) => r.task.pgrp ?? '-', sort: (r) => r.task.pgrp ?? -1 };
const nlwp: PsColumn = { header: 'NLWP', right: true, cell: (r) => r.process.nrThreads };

/** The columns by procps-ng's names (src/ps/output.c format_array), with its headers. */
export const psColumns: Record<string, PsColumn> = {
  pid, tgid: { ...pid, header: 'TGID' },
  tid, lwp: { ...tid, header: 'LWP' }, spid: { ...tid, header: 'SPID' },
  ppid: { header: 'PPID', right: true, cell: (r) => r.process.ppid },
  pgid, pgrp: { ...pgid, header: 'PGRP' },
  sid: { ...sess, header: 'SID' }, sess, session: sess,
  tpgid: { header: 'TPGID', right: true, cell: (r) => r.task.tpgid },
  tty, tt: tty, tname: { ...tty, header: 'TTY' },
  uid: { header: 'UID', right: true, cell: (r) => r.task.euid }, euid: { header: 'EUID', right: true, cell: (r) => r.task.euid },
  ruid: { header: 'RUID', right: true, cell: (r) => r.task.uid },
  user, uname: user, euser: { ...user, header: 'EUSER' },
  ruser: { header: 'RUSER', cell: (r, cx) => userName(r.task.uid, cx), names: true },
  gid: { header: 'GID', right: true, cell: (r) => r.task.egid }, egid: { header: 'EGID', right: true, cell: (r) => r.task.egid },
  group: { header: 'GROUP', cell: (r, cx) => groupName(r.task.egid, cx), names: true }, egroup: { header: 'EGROUP', cell: (r, cx) => groupName(r.task.egid, cx), names: true },
  stat, s: state, state,
  ni, nice: ni,
  pri: { header: 'PRI', right: true, cell: (r) => 39 - r.task.priority, sort: (r) => 39 - r.task.priority },
  rtprio: { header: 'RTPRIO', right: true, cell: (r) => (r.task.policy === 0 ? '-' : r.task.rtPriority), sort: (r) => r.task.rtPriority },
  cls, class: cls, policy: { ...cls, header: 'POL' },
  nlwp, thcount: { ...nlwp, header: 'THCNT' },
  rss, rssize: rss, rsz: { ...rss, header: 'RSZ' },
  vsz, vsize: vsz,
  sz: { header: 'SZ', right: true, cell: (r) => Math.floor(kib(r.process.vszBytes) / 4), sort: (r) => r.process.vszBytes ?? -1 },
  '%mem': pmem, pmem,
  '%cpu': pcpu, pcpu,
  c: { header: 'C', right: true, cell: (r, cx) => Math.min(99, Math.floor(pcpuTenths(r.task, cx) / 10)), sort: (r, cx) => pcpuTenths(r.task, cx) },
  stime, start_time: { ...stime, header: 'START' },
  start: { header: 'STARTED', right: true, cell: (r, cx) => startColumn(r.task, cx), sort: (r) => r.task.startTicks },
  etime: { header: 'ELAPSED', right: true, cell: (r, cx) => { const e = elapsed(r.task, cx); return e === null ? '-' : etimeColumn(e); }, sort: (r) => -r.task.startTicks },
  etimes: { header: 'ELAPSED', right: true, cell: (r, cx) => { const e = elapsed(r.task, cx); return e === null ? '-' : Math.floor(e); }, sort: (r) => -r.task.startTicks },
  time, cputime: time,
  times: { header: 'TIME', right: true, cell: (r) => Math.floor((r.task.utimeTicks + r.task.stimeTicks) / HZ), sort: (r) => r.task.utimeTicks + r.task.stimeTicks },
  bsdtime: { header: 'TIME', right: true, cell: (r) => { const s = Math.floor((r.task.utimeTicks + r.task.stimeTicks) / HZ); return `${Math.floor(s / 60)}:${two(s % 60)}`; }, sort: (r) => r.task.utimeTicks + r.task.stimeTicks },
  comm, ucomm: comm, ucmd: { ...comm, header: 'CMD' },
  args, command: args, cmd: { ...args, header: 'CMD' },
  psr: { header: 'PSR', right: true, cell: (r) => r.task.processor ?? '-', sort: (r) => r.task.processor ?? -1 },
  f: { header: 'F', right: true, cell: (r) => ((r.task.flags >>> 6) & 7).toString(8) }, flags: { header: 'F', right: true, cell: (r) => ((r.task.flags >>> 6) & 7).toString(8) },
};

/** Formats: nearfield's default (one row per process with the figures an operator wants), -f, and BSD u. */
const formats = {
  default: 'pid,ppid,uid,stat,ni,nlwp,rss,vsz,stime,time,args=CMD',
  defaultThreads: 'pid,tid,ppid,uid,stat,ni,nlwp,rss,vsz,stime,time,args=CMD',
  // procps -f (generate_sysv_list): UID shows the user name
  full: 'user=UID,pid,ppid,c,stime,tname,time,args=CMD',
  fullThreads: 'user=UID,pid,ppid,lwp,c,nlwp,stime,tname,time,args=CMD',
  // procps' bsd_u_format
  bsdU: 'user,pid,%cpu,%mem,vsz,rss,tname,stat,start_time,bsdtime,args',
  bsdUThreads: 'user,pid,lwp,%cpu,%mem,vsz,rss,tname,stat,start_time,bsdtime,args',
};

interface ChosenColumn { key: string; column: PsColumn; header: string }

/** `-o pid,stat,args=COMMAND`: columns split at commas and blanks, each `key` or `key=HEADER` (`key=` leaves
 *  the header empty, as ps does; several -o add up). */
function parseFormat(spec: string): ChosenColumn[] {
  const items = spec.split(/[\s,]+/).filter(Boolean);
  if (items.length === 0) throw new NearfieldError('USAGE', '-o takes a list of columns, e.g. -o pid,stat,args');
  return items.map((item) => {
    const eq = item.indexOf('=');
    const key = (eq < 0 ? item : item.slice(0, eq)).toLowerCase();
    const column = psColumns[key];
    if (!column) throw new NearfieldError('USAGE', `unknown ps column "${key}" (known: ${Object.keys(psColumns).join(', ')})`);
    return { key, column, header: eq < 0 ? column.header : item.slice(eq + 1) };
  });
}

/** BSD option words `ps` accepts as an argument: a, u, x (and w, e, which change nothing here). */
const bsdWord = /^[auxwe]+$/;

function chosenColumns(f: PsFlags): ChosenColumn[] {
  if (f.format?.length) return f.format.flatMap((spec) => parseFormat(spec));
  const t = f.threads === true;
  if (f.full) return parseFormat(t ? formats.fullThreads : formats.full);
  if (f.bsd?.includes('u')) return parseFormat(t ? formats.bsdUThreads : formats.bsdU);
  return parseFormat(t ? formats.defaultThreads : formats.default);
}

/** `--sort -vsz,pid`: several keys, each ascending or (with -) descending, by the columns' own names. */
function sortKeys(spec: string): { key: PsColumn; desc: boolean }[] {
  const keys = spec.split(',').map((s) => s.trim()).filter(Boolean);
  if (keys.length === 0) throw new NearfieldError('USAGE', '--sort takes one or more columns, e.g. --sort -rss,pid');
  return keys.map((k) => {
    const column = psColumns[k.replace(/^[-+]/, '').toLowerCase()];
    if (!column) throw new NearfieldError('USAGE', `--sort takes columns (${Object.keys(psColumns).join(', ')}), each with - for descending, not "${k}"`);
    return { key: column, desc: k.startsWith('-') };
  });
}

const stateLetters = 'RSDTtXZPI';

function checkState(letters: string): void {
  const bad = [...letters].filter((c) => !stateLetters.includes(c));
  if (bad.length || letters === '') throw new NearfieldError('USAGE', `--state takes /proc state letters (${stateLetters.split('').join(' ')}), not "${bad.join('') || letters}"`);
}

/** Rows in the order and selection the flags ask for. */
export function psRows(list: TaskList, f: PsFlags, cx?: PsContext): PsRow[] {
  let rows: PsRow[] = [];
  for (const p of list.tasks) {
    if (f.threads) for (const th of p.threads) rows.push({ task: th, process: p });
    else rows.push({ task: p, process: p });
  }
  if (f.state) {
    const wanted = new Set(f.state.split(''));
    rows = rows.filter((r) => wanted.has(r.task.state));
  }
  const context = cx ?? { bootWallMs: null, nowMs: null, uptimeSeconds: null, memTotalKib: null, cmdlineRead: f.cmdline !== false };
  const keys = sortKeys(f.sort ?? 'pid');
  const value = (c: PsColumn, r: PsRow) => (c.sort ?? c.cell)(r, context);
  return rows.sort((a, b) => {
    for (const { key, desc } of keys) {
      const x = value(key, a);
      const y = value(key, b);
      if (x !== y) return (x < y ? -1 : 1) * (desc ? -1 : 1);
    }
    return a.process.pid - b.process.pid || a.task.pid - b.task.pid;
  });
}

/** The guest's clock and MemTotal (for STIME, %CPU, %MEM) and its user names (from its disk) when the columns want them. */
async function context(s: Sources, f: PsFlags, columns: ChosenColumn[]): Promise<PsContext> {
  const cx: PsContext = { bootWallMs: null, nowMs: null, uptimeSeconds: null, memTotalKib: null, cmdlineRead: f.cmdline !== false };
  const guest = await s.guest();
  try {
    const u = guest.uptime();
    cx.bootWallMs = Number(BigInt(u.bootWallNs) / 1_000_000n);
    cx.nowMs = Number(BigInt(u.realtimeNs) / 1_000_000n);
    cx.uptimeSeconds = u.uptimeSeconds;
  } catch {
    // start times stay boot-relative
  }
  if (columns.some((c) => c.key === '%mem' || c.key === 'pmem')) {
    try {
      cx.memTotalKib = guest.meminfo().fields.find((x) => x.name === 'MemTotal')?.value ?? null;
    } catch {
      // %MEM shows 0.0
    }
  }
  if (columns.some((c) => c.column.names) && s.target.disk) {
    try {
      const { GuestFiles } = await import('../../../wasm/client.js');
      const g = await GuestFiles.open(s.target.disk, s.target.partition);
      try {
        cx.ids = await loadIdNames(g);
      } finally {
        await g.close();
      }
    } catch (e) {
      note(f, `user names unknown (showing numbers): ${(e as Error).message}`);
    }
  }
  return cx;
}

export const command = defineRecordCommand({
  name: 'ps',
  description: 'processes of the guest from its RAM, like procps ps (default columns pid,ppid,uid,stat,ni,nlwp,rss,vsz,stime,time,cmd)',
  flags: (cmd) =>
    cmd
      .argument('[bsd]', 'BSD-style options as one word, e.g. aux (a u x: every process, user-oriented columns)')
      .option('-e, --everything', 'every process (always so; accepted for ps -e/-A habits)')
      .option('-A', 'every process (always so)')
      .option('-f, --full', 'full format: UID PID PPID C STIME TTY TIME CMD, user names from the guest')
      .option('-o, --format <columns>', 'columns by procps name, e.g. pid,stat,ni,rtprio,tty,user,%cpu,%mem,args (header with =NAME); repeatable',
        (v: string, prev: string[] | undefined) => [...(prev ?? []), v])
      .option('-L, --threads', 'one row per thread (TID column), like ps -eL')
      .option('--sort <keys>', 'sort by columns, e.g. -rss or -vsz,pid (- for descending)', 'pid')
      .option('--state <letters>', `only tasks in these /proc states (${stateLetters.split('').join(' ')}), e.g. D or RD`)
      .option('--no-cmdline', 'do not read cmdlines from process memory (show [comm])'),
  target: (positionals, f: PsFlags) => {
    // `ps aux`: BSD words come as an argument; anything else (or an existing path) is the target
    const words = positionals.filter((p): p is string => p !== undefined);
    const bsd = words.find((w) => bsdWord.test(w) && !existsSync(w));
    if (bsd !== undefined) f.bsd = bsd;
    const rest = words.filter((w) => w !== bsd);
    if (rest.length > 1) throw new NearfieldError('USAGE', `one target, not ${rest.join(' and ')}`);
    return rest[0];
  },
  validate: (f: PsFlags) => {
    sortKeys(f.sort ?? 'pid');
    if (f.state !== undefined) checkState(f.state);
    chosenColumns(f);
  },
  read: async (s, f: PsFlags): Promise<TaskList> => {
    const list = (await s.guest()).tasks({ threads: f.threads === true, cmdline: f.cmdline !== false });
    // --json keeps the record's shape: processes (with their threads), filtered and sorted like the table
    const seen = new Set<Task>();
    const tasks = psRows(list, f).map((r) => r.process).filter((p) => !seen.has(p) && seen.add(p));
    return { ...list, tasks };
  },
  items: (list, f: PsFlags) => psRows(list, f).map((r) => r.task),
  view: async (list, s, f: PsFlags) => {
    const chosen = chosenColumns(f);
    return { list, chosen, cx: await context(s, f, chosen) };
  },
  rows: ({ list, cx }, f: PsFlags) => psRows(list, f, cx),
  columns: (_f: PsFlags, { chosen, cx }) =>
    chosen.map(({ column, header }): Column<PsRow> => ({ header, right: column.right, cell: (r) => column.cell(r, cx) })),
  headers: (_f: PsFlags, { chosen }) => chosen.some((c) => c.header !== ''),
});

export const collectors = [
  defineCollector({
    name: 'processes',
    needs: 'ram',
    order: 40,
    collect: ({ guest, sections, top }) => {
      sections.processes = guest!.processes({ top });
    },
    table: (r) => {
      const p = r.sections.processes;
      if (!p) return undefined;
      const states = Object.entries(p.byState).sort().map(([s, n]) => `${n} ${s}`).join(', ');
      const head = ['PID', 'PPID', 'S', 'RSS', 'CPU s', 'CMD'];
      const align = [true, true, false, true, true, false];
      const rows = (list: typeof p.topRss) =>
        list.map((t) => [t.pid, t.ppid, t.state, t.rssBytes === null ? '-' : humanBytes(t.rssBytes), t.cpuSeconds.toFixed(2), printable(t.cmdline ?? `[${t.comm}]`)]);
      return {
        title: `processes: ${p.processes} (${p.threads} threads): ${states}`,
        body: 'top by RSS\n' + renderTable(head, rows(p.topRss), align) + '\ntop by CPU time\n' + renderTable(head, rows(p.topCpu), align),
      };
    },
    prometheus: (r, m) => {
      const p = r.sections.processes;
      if (!p) return;
      for (const [state, n] of Object.entries(p.byState)) m.gauge('node_processes_state', 'Number of processes in each state.', n, { state });
      m.gauge('node_processes_threads', 'Allocated threads in system', p.threads);
      m.gauge('node_processes_pids', 'Number of PIDs', p.processes);
    },
    vhostmd: (r, emit) => {
      emit('uint64', 'Processes', r.sections.processes?.processes);
      emit('uint64', 'Threads', r.sections.processes?.threads);
    },
  }),
];
