// `nearfield ps [target]`: every process (or thread) from the guest's task list, like
// `ps -eo pid,ppid,uid,stat,ni,nlwp,rss,vsz,stime,time,cmd`; and the report's processes collector.

import type { Task, TaskList } from '../../generated/records.js';
import { NearfieldError } from '../../errors.js';
import { defineRecordCommand, printable, type Column } from '../define.js';
import { renderTable } from '../output.js';
import { defineCollector } from '../../report/collector.js';
import { humanBytes } from '../../report/units.js';

interface PsFlags {
  threads?: boolean;
  sort?: string;
  state?: string;
  cmdline?: boolean;
}

/** One row: a process, or with -L one of its threads (then `process` is the group leader's record). */
export interface PsRow {
  task: Task;
  process: Task;
}

/** The CMD column as ps prints it: argv, or [comm] when there is none; zombies get <defunct>. */
export function cmdColumn(task: Pick<Task, 'comm' | 'state' | 'cmdline' | 'cmdlineError'>): string {
  let s: string;
  if (task.cmdline === null) s = `${task.comm} (cmdline ${task.cmdlineError ?? 'unreadable'})`;
  else if (task.cmdline.length === 0 || task.cmdline.every((a) => a === '')) s = `[${task.comm}]`;
  else s = task.cmdline.join(' ');
  if (task.state === 'Z') s += ' <defunct>';
  return printable(s);
}

/** [DD-]HH:MM:SS like ps's TIME. */
function timeColumn(ticks: number): string {
  const s = Math.floor(ticks / 100);
  const dd = Math.floor(s / 86400);
  const hh = String(Math.floor((s % 86400) / 3600)).padStart(2, '0');
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  return `${dd ? `${dd}-` : ''}${hh}:${mm}:${ss}`;
}

const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** The guest's clock, for STIME. */
interface Clock { bootWallMs: number | null; nowMs: number | null }

/** ps's STIME: HH:MM when started within the last 24 h of the guest's clock, else MonDD (UTC). */
function startColumn(t: Task, clock: Clock): string {
  const startMs = Number(BigInt(t.startTimeNs) / 1_000_000n);
  if (clock.bootWallMs === null) return `+${Math.floor(startMs / 1000)}s`;
  const d = new Date(clock.bootWallMs + startMs);
  if (clock.nowMs !== null && clock.nowMs - d.getTime() < 86_400_000) {
    return `${String(d.getUTCHours()).padStart(2, '0')}:${String(d.getUTCMinutes()).padStart(2, '0')}`;
  }
  return `${months[d.getUTCMonth()]}${String(d.getUTCDate()).padStart(2, '0')}`;
}

const kib = (bytes: number | null | undefined) => (bytes === null || bytes === undefined ? 0 : Math.floor(bytes / 1024));

const sortKeys: Record<string, (r: PsRow) => number | string> = {
  pid: (r) => r.process.pid,
  tid: (r) => r.task.pid,
  ppid: (r) => r.process.ppid,
  uid: (r) => r.task.uid,
  state: (r) => r.task.state,
  stat: (r) => r.task.state,
  ni: (r) => r.task.nice,
  nice: (r) => r.task.nice,
  nlwp: (r) => r.process.nrThreads,
  rss: (r) => r.process.rss?.bytes ?? -1,
  vsz: (r) => r.process.vszBytes ?? -1,
  start: (r) => r.task.startTicks,
  time: (r) => r.task.utimeTicks + r.task.stimeTicks,
  comm: (r) => r.task.comm,
  cmd: (r) => cmdColumn(r.process),
};

function sortKey(spec: string): { key: (r: PsRow) => number | string; desc: boolean } {
  const key = sortKeys[spec.replace(/^[-+]/, '').toLowerCase()];
  if (!key) throw new NearfieldError('USAGE', `--sort takes one of ${Object.keys(sortKeys).join(', ')} (prefix - for descending), not "${spec}"`);
  return { key, desc: spec.startsWith('-') };
}

/** Rows in the order and selection the flags ask for. */
export function psRows(list: TaskList, f: PsFlags): PsRow[] {
  let rows: PsRow[] = [];
  for (const p of list.tasks) {
    if (f.threads) for (const th of p.threads) rows.push({ task: th, process: p });
    else rows.push({ task: p, process: p });
  }
  if (f.state) {
    const wanted = new Set(f.state.split(''));
    rows = rows.filter((r) => wanted.has(r.task.state));
  }
  const { key, desc } = sortKey(f.sort ?? 'pid');
  return rows.sort((a, b) => {
    const x = key(a);
    const y = key(b);
    const c = x < y ? -1 : x > y ? 1 : a.process.pid - b.process.pid || a.task.pid - b.task.pid;
    return desc ? -c : c;
  });
}

function columns(f: PsFlags, clock: Clock): Column<PsRow>[] {
  return [
    { header: 'PID', cell: (r) => r.process.pid, right: true },
    ...(f.threads ? [{ header: 'TID', cell: (r: PsRow) => r.task.pid, right: true }] : []),
    { header: 'PPID', cell: (r) => r.process.ppid, right: true },
    { header: 'UID', cell: (r) => r.task.uid, right: true },
    { header: 'S', cell: (r) => r.task.state },
    { header: 'NI', cell: (r) => r.task.nice, right: true },
    { header: 'NLWP', cell: (r) => r.process.nrThreads, right: true },
    { header: 'RSS', cell: (r) => kib(r.process.rss?.bytes), right: true },
    { header: 'VSZ', cell: (r) => kib(r.process.vszBytes), right: true },
    { header: 'STIME', cell: (r) => startColumn(r.task, clock) },
    { header: 'TIME', cell: (r) => timeColumn(r.task.utimeTicks + r.task.stimeTicks) },
    { header: 'CMD', cell: (r) => cmdColumn(r.process) },
  ];
}

export const command = defineRecordCommand({
  name: 'ps',
  description: 'processes of the guest from its RAM, like ps -eo pid,ppid,uid,stat,ni,nlwp,rss,vsz,stime,time,cmd',
  flags: (cmd) =>
    cmd
      .option('-L, --threads', 'one row per thread (TID column), like ps -eL')
      .option('--sort <field>', `sort by ${Object.keys(sortKeys).join(', ')}; -field for descending`, 'pid')
      .option('--state <letters>', 'only tasks in these /proc states (R S D T t X Z P I), e.g. D or RD')
      .option('--no-cmdline', 'do not read cmdlines from process memory (show [comm])'),
  validate: (f: PsFlags) => void sortKey(f.sort ?? 'pid'),
  read: async (s, f: PsFlags): Promise<TaskList> => {
    const list = (await s.guest()).tasks({ threads: f.threads === true, cmdline: f.cmdline !== false });
    // --json keeps the record's shape: processes (with their threads), filtered and sorted like the table
    const seen = new Set<Task>();
    const tasks = psRows(list, f).map((r) => r.process).filter((p) => !seen.has(p) && seen.add(p));
    return { ...list, tasks };
  },
  items: (list, f: PsFlags) => psRows(list, f).map((r) => r.task),
  view: async (list, s) => {
    let clock: Clock = { bootWallMs: null, nowMs: null };
    try {
      const u = (await s.guest()).uptime();
      clock = { bootWallMs: Number(BigInt(u.bootWallNs) / 1_000_000n), nowMs: Number(BigInt(u.realtimeNs) / 1_000_000n) };
    } catch {
      // start times stay boot-relative
    }
    return { list, clock };
  },
  rows: ({ list }, f: PsFlags) => psRows(list, f),
  columns: (f: PsFlags, { clock }) => columns(f, clock),
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
