// `nearfield ps [target]`: every process (or thread) from the guest's task list, like `ps -eo pid,ppid,user,stat,ni,nlwp,rss,vsz,stime,time,cmd`.

import type { Command } from 'commander';
import { withFormats, withTarget, type CommonOptions } from '../common.js';
import { action, printJson, printJsonl, printTable, NearfieldError } from '../output.js';
import { finish, guestFor, num, printable, NS_PER_TICK } from '../walkers-common.js';

interface PsOptions extends CommonOptions {
  threads?: boolean;
  sort?: string;
  state?: string;
  cmdline?: boolean;
}

const PAGE_KB = 4; // x86-64

/** One row of ps output, also the JSON record. */
export interface PsRow {
  pid: number;
  tid: number | null;
  ppid: number;
  uid: number;
  gid: number;
  euid: number;
  egid: number;
  state: string;
  nice: number;
  priority: number;
  nlwp: number;
  rss_kb: number | null;
  vsz_kb: number | null;
  /** Boot-relative start, in USER_HZ ticks (/proc/PID/stat field 22) and in seconds. */
  start_ticks: number;
  start_s: number;
  /** Wall-clock start (ISO 8601, UTC) when the boot time is known. */
  start_wall: string | null;
  /** utime/stime in USER_HZ ticks (fields 14/15; the guest's own cputime_adjust split). */
  utime_ticks: number;
  stime_ticks: number;
  time_s: number;
  comm: string;
  cmdline: string[] | null;
  cmdline_error: string | null;
  kernel_thread: boolean;
  processor: number | null;
  address: string;
}

type TaskListRecord = ReturnType<Awaited<ReturnType<typeof guestFor>>['guest']['tasks']>;
type TaskRecord = TaskListRecord['tasks'][number];

function row(t: TaskRecord, pid: number, tid: number | null, bootWallNs: number | null): PsRow {
  const start = num(t.startTimeNs) ?? 0;
  const utime = Math.floor((num(t.utimeNs) ?? 0) / NS_PER_TICK);
  const stime = Math.floor((num(t.stimeNs) ?? 0) / NS_PER_TICK);
  return {
    pid,
    tid,
    ppid: t.ppid,
    uid: t.uid,
    gid: t.gid,
    euid: t.euid,
    egid: t.egid,
    state: t.state,
    nice: t.nice,
    priority: t.priority,
    nlwp: t.nrThreads,
    rss_kb: t.rssPages === null || t.rssPages === undefined ? null : t.rssPages * PAGE_KB,
    vsz_kb: t.vszBytes === null || t.vszBytes === undefined ? null : Math.floor(t.vszBytes / 1024),
    start_ticks: Math.floor(start / NS_PER_TICK),
    start_s: start / 1e9,
    start_wall: bootWallNs === null ? null : new Date((bootWallNs + start) / 1e6).toISOString(),
    utime_ticks: utime,
    stime_ticks: stime,
    time_s: (utime + stime) / 100,
    comm: t.comm,
    cmdline: t.cmdline ?? null,
    cmdline_error: t.cmdlineError ?? null,
    kernel_thread: t.kernelThread,
    processor: t.processor ?? null,
    address: t.address,
  };
}

/** The CMD column as ps prints it: argv, or [comm] when there is none; zombies get <defunct>. */
export function cmdColumn(r: PsRow): string {
  let s: string;
  if (r.cmdline === null) s = `${r.comm} (cmdline ${r.cmdline_error ?? 'unreadable'})`;
  else if (r.cmdline.length === 0 || r.cmdline.every((a) => a === '')) s = `[${r.comm}]`;
  else s = r.cmdline.join(' ');
  if (r.state === 'Z') s += ' <defunct>';
  return printable(s);
}

/** [DD-]HH:MM:SS like ps's TIME. */
function timeColumn(seconds: number): string {
  const s = Math.floor(seconds);
  const dd = Math.floor(s / 86400);
  const hh = String(Math.floor((s % 86400) / 3600)).padStart(2, '0');
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  return `${dd ? `${dd}-` : ''}${hh}:${mm}:${ss}`;
}

const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** ps's STIME: HH:MM when started within the last 24 h of the guest's clock, else MonDD (UTC). */
function startColumn(r: PsRow, nowMs: number | null): string {
  if (r.start_wall === null) return `+${r.start_s.toFixed(0)}s`;
  const d = new Date(r.start_wall);
  if (nowMs !== null && nowMs - d.getTime() < 86_400_000) {
    return `${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}`;
  }
  return `${months[d.getUTCMonth()]}${String(d.getUTCDate()).padStart(2, '0')}`;
}

const sortKeys: Record<string, (r: PsRow) => number | string> = {
  pid: (r) => r.pid,
  tid: (r) => r.tid ?? r.pid,
  ppid: (r) => r.ppid,
  uid: (r) => r.uid,
  state: (r) => r.state,
  stat: (r) => r.state,
  ni: (r) => r.nice,
  nice: (r) => r.nice,
  nlwp: (r) => r.nlwp,
  rss: (r) => r.rss_kb ?? -1,
  vsz: (r) => r.vsz_kb ?? -1,
  start: (r) => r.start_ticks,
  time: (r) => r.utime_ticks + r.stime_ticks,
  comm: (r) => r.comm,
  cmd: (r) => cmdColumn(r),
};

export function sortRows(rows: PsRow[], spec: string): PsRow[] {
  const desc = spec.startsWith('-');
  const name = spec.replace(/^[-+]/, '').toLowerCase();
  const key = sortKeys[name];
  if (!key) throw new NearfieldError('USAGE', `--sort takes one of ${Object.keys(sortKeys).join(', ')} (prefix - for descending), not "${spec}"`);
  return [...rows].sort((a, b) => {
    const x = key(a);
    const y = key(b);
    const c = x < y ? -1 : x > y ? 1 : a.pid - b.pid || (a.tid ?? 0) - (b.tid ?? 0);
    return desc ? -c : c;
  });
}

export function registerPs(program: Command): void {
  const cmd = program
    .command('ps')
    .description('processes of the guest from its RAM, like ps -eo pid,ppid,uid,stat,ni,nlwp,rss,vsz,stime,time,cmd')
    .option('-L, --threads', 'one row per thread (TID column), like ps -eL')
    .option('--sort <field>', 'sort by pid, ppid, uid, state, nice, nlwp, rss, vsz, start, time, comm or cmd; -field for descending', 'pid')
    .option('--state <letters>', 'only tasks in these /proc states (R S D T t X Z P I), e.g. D or RD')
    .option('--no-cmdline', 'do not read cmdlines from process memory (show [comm])');
  withFormats(withTarget(cmd)).action(
    action('ps', async (positional: string | undefined, opts: PsOptions) => {
      const { guest } = await guestFor(positional, opts);
      // tasksJson: one JSON text parsed by V8 is much cheaper than napi building every task object
      const list = JSON.parse(guest.tasksJson({ threads: opts.threads === true, cmdline: opts.cmdline !== false })) as TaskListRecord;
      let bootWall: number | null = null;
      let nowMs: number | null = null;
      try {
        const u = guest.uptime();
        bootWall = num(u.bootWallNs);
        nowMs = (num(u.realtimeNs) ?? 0) / 1e6;
      } catch {
        // start times stay boot-relative
      }
      let rows: PsRow[] = [];
      for (const t of list.tasks) {
        if (opts.threads) for (const th of t.threads) rows.push(row({ ...th, rssPages: t.rssPages, vszBytes: t.vszBytes, cmdline: t.cmdline, cmdlineError: t.cmdlineError, nrThreads: t.nrThreads, ppid: t.ppid }, t.pid, th.pid, bootWall));
        else rows.push(row(t, t.pid, null, bootWall));
      }
      if (opts.state) {
        const wanted = new Set(opts.state.split(''));
        rows = rows.filter((r) => wanted.has(r.state));
      }
      rows = sortRows(rows, opts.sort ?? 'pid');
      if (opts.json) printJson({ tasks: rows, warnings: list.warnings });
      else if (opts.jsonl) printJsonl(rows);
      else {
        const head = opts.threads
          ? ['PID', 'TID', 'PPID', 'UID', 'S', 'NI', 'NLWP', 'RSS', 'VSZ', 'STIME', 'TIME', 'CMD']
          : ['PID', 'PPID', 'UID', 'S', 'NI', 'NLWP', 'RSS', 'VSZ', 'STIME', 'TIME', 'CMD'];
        const right = opts.threads
          ? [true, true, true, true, false, true, true, true, true, false, false, false]
          : [true, true, true, false, true, true, true, true, false, false, false];
        printTable(
          head,
          rows.map((r) => [
            r.pid,
            ...(opts.threads ? [r.tid] : []),
            r.ppid, r.uid, r.state, r.nice, r.nlwp, r.rss_kb ?? 0, r.vsz_kb ?? 0,
            startColumn(r, nowMs), timeColumn(r.time_s), cmdColumn(r),
          ]),
          right,
        );
      }
      return finish(list.warnings, opts);
    }),
  );
}
