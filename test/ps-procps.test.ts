// ps, pstree and uname as procps/psmisc/coreutils users expect them, against each guest's own /proc: the STAT
// modifiers, NI, RTPRIO, CLS and TTY that procps-ng 4 (src/ps/output.c) derives from /proc/PID/stat fields 5–8,
// 19, 20, 40, 41 and status VmLck (truth.json processes[].raw), user names from the guest's /etc/passwd (read with
// debugfs), -o/-f/aux, multi-key --sort, --no-cmdline; pstree -p and a PID; uname's flags against utsname.

import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { builtGuests } from './built-guests.js';
import { root, run, type Truth } from './walkers-helpers.js';

interface Guest { name: string; ram: string; disk: string | null; truth: Truth }

/** The committed sample (its unpacked files) and every built guest present. */
function guests(): Guest[] {
  const sampleDir = join(root, 'images', '.cache', 'sample');
  const out: Guest[] = [{ name: 'sample', ram: join(sampleDir, 'ram.raw'), disk: join(sampleDir, 'rootfs.ext4'), truth: JSON.parse(readFileSync(join(sampleDir, 'truth.json'), 'utf8')) }];
  for (const g of builtGuests().filter((b) => b.present)) out.push({ name: g.name, ram: g.ram, disk: join(g.dir, 'rootfs.ext4'), truth: JSON.parse(readFileSync(g.truth, 'utf8')) });
  return out;
}
const all = guests();
/** Guests whose workload has the session with a terminal and locked memory (nf-session, since issue 12). */
const withSession = all.filter((g) => g.truth.processes.some((p: Truth) => p.comm === 'nf-session'));

/** /proc/PID/stat fields by their man-page numbers (1-based; the comm may hold spaces and parentheses). */
function statFields(p: Truth): (n: number) => string {
  const raw = p.raw.stat as string;
  const rest = raw.slice(raw.lastIndexOf(')') + 2).trim().split(/\s+/);
  return (n: number) => rest[n - 3]!;
}

/** VmLck from /proc/PID/status, kB (absent for kernel threads and zombies). */
function vmLckKb(p: Truth): number | null {
  const m = /^VmLck:\s+(\d+) kB$/m.exec(p.raw.status as string);
  return m ? Number(m[1]) : null;
}

/** What procps-ng 4's pr_stat prints, from the guest's own /proc fields. */
function procpsStat(p: Truth): string {
  const f = statFields(p);
  let s = f(3);
  const nice = Number(f(19));
  if (nice < 0) s += '<';
  if (nice > 0) s += 'N';
  if ((vmLckKb(p) ?? 0) > 0) s += 'L';
  if (f(6) === String(p.tgid)) s += 's';
  if (Number(f(20)) > 1) s += 'l';
  if (f(5) === f(8)) s += '+';
  return s;
}

/** procps' TTY name for a tty_nr (the devices this guest can have: the serial console, ttyN, pts). */
function ttyName(ttyNr: number): string {
  if (ttyNr === 0) return '?';
  const major = (ttyNr >> 8) & 0xfff;
  const minor = (ttyNr & 0xff) | ((ttyNr >> 12) & 0xfff00);
  if (major === 4) return minor >= 64 ? `ttyS${minor - 64}` : `tty${minor}`;
  if (major >= 136 && major <= 143) return `pts/${(major - 136) * 256 + minor}`;
  if (major === 5 && minor === 1) return 'console';
  throw new Error(`no name known here for tty ${major}:${minor}`);
}

/** `ps -o k1=,k2=,…` rows as arrays of cells (blank-separated; the last column may hold blanks). */
function psColumns(g: Guest, keys: string[], extra: string[] = []): string[][] {
  const r = run(['ps', '--ram', g.ram, '-o', keys.map((k) => `${k}=`).join(','), ...extra]);
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.trimEnd().split('\n').map((l) => {
    const cells = l.trim().split(/\s+/);
    return [...cells.slice(0, keys.length - 1), cells.slice(keys.length - 1).join(' ')];
  });
}

const printerPid = (g: Guest) => g.truth.printer_pid as number;
/** Tasks whose state may have moved between the print and the pause (test/processes.test.ts, built-guests.test.ts):
 *  those running then, and kernel threads then waiting for I/O (jbd2 D → S). */
const mayHaveMoved = (g: Guest) =>
  new Set<number>(g.truth.processes.filter((p: Truth) => p.state === 'R' || (p.state === 'D' && p.kernel_thread)).map((p: Truth) => p.pid));

describe.each(all.map((g) => [g.name, g] as const))('ps on %s against its /proc', (_name, g) => {
  it('pgrp, session, tty_nr, tpgid, policy, rt_priority and VmLck are the guest\'s own', () => {
    const r = run(['ps', '--ram', g.ram, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const ours = new Map<number, Truth>(JSON.parse(r.stdout).tasks.map((t: Truth) => [t.pid, t]));
    for (const p of g.truth.processes as Truth[]) {
      const f = statFields(p);
      const o = ours.get(p.pid);
      const want = { pgrp: Number(f(5)), session: Number(f(6)), ttyNr: Number(f(7)), tpgid: Number(f(8)), rtPriority: Number(f(40)), policy: Number(f(41)), locked: vmLckKb(p) };
      const lck = o.lockedBytes === null ? null : o.lockedBytes / 1024;
      expect({ pgrp: o.pgrp, session: o.session, ttyNr: o.ttyNr, tpgid: o.tpgid, rtPriority: o.rtPriority, policy: o.policy, locked: p.state === 'Z' ? vmLckKb(p) : lck }, `pid ${p.pid} ${p.comm}`).toEqual(want);
    }
  });

  it('STAT, NI, RTPRIO, CLS and TTY are what procps prints from those fields', () => {
    const rows = new Map(psColumns(g, ['pid', 'stat', 'ni', 'rtprio', 'cls', 'tty']).map((c) => [Number(c[0]), c.slice(1)]));
    const classes = ['TS', 'FF', 'RR', 'B', 'ISO', 'IDL', 'DLN'];
    for (const p of g.truth.processes as Truth[]) {
      const f = statFields(p);
      const [stat, ni, rtprio, cls, tty] = rows.get(p.pid)!;
      const want = procpsStat(p);
      // a task running (or a kthread waiting for I/O) at the print may have changed state by the pause; its modifiers may not
      // (a kernel thread woken by a timer may be R at the pause: rcu_preempt on one hung guest)
      if (p.pid === printerPid(g) || mayHaveMoved(g).has(p.pid) || (p.kernel_thread && stat!.startsWith('R'))) expect(stat!.slice(1), `pid ${p.pid} ${p.comm}`).toBe(want.slice(1));
      else expect(stat, `pid ${p.pid} ${p.comm}`).toBe(want);
      const policy = Number(f(41));
      expect(ni, `pid ${p.pid} NI`).toBe(policy === 0 || policy === 3 ? f(19) : '-');
      expect(rtprio, `pid ${p.pid} RTPRIO`).toBe(policy === 0 ? '-' : f(40));
      expect(cls).toBe(classes[policy]);
      expect(tty, `pid ${p.pid} TTY`).toBe(ttyName(Number(f(7))));
    }
    // what the sample guests are known to hold: real-time kthreads (NI "-"), < and N, a multi-threaded worker
    const stats = [...rows.values()];
    expect(stats.some(([, ni]) => ni === '-')).toBe(true);
    for (const mod of ['<', 'N', 'l']) expect(stats.some(([stat]) => stat!.includes(mod)), `a STAT with ${mod}`).toBe(true);
  });

  it('-L: every thread of a multi-threaded process carries l and its own state', () => {
    const worker = (g.truth.processes as Truth[]).find((p) => p.comm === 'nf-threads')!;
    const rows = psColumns(g, ['pid', 'tid', 'stat', 'comm'], ['-L']).filter((c) => Number(c[0]) === worker.pid);
    expect(rows.map((c) => Number(c[1])).sort((a, b) => a - b)).toEqual(worker.threads.map((t: Truth) => t.tid).sort((a: number, b: number) => a - b));
    for (const [, tid, stat] of rows) expect(stat, `tid ${tid}`).toBe(`${worker.threads.find((t: Truth) => t.tid === Number(tid)).state}l`);
  });
});

describe.skipIf(withSession.length === 0)('the session with a terminal (nf-session, built guests since issue 12)', () => {
  it.each(withSession.map((g) => [g.name, g] as const))('%s: the leader is SLs+ on ttyS0, its child S+', (_name, g) => {
    const rows = new Map(psColumns(g, ['comm', 'stat', 'tty', 'sid', 'tpgid']).map((c) => [c[0], c.slice(1)]));
    const leader = (g.truth.processes as Truth[]).find((p) => p.comm === 'nf-session')!;
    expect(rows.get('nf-session')).toEqual(['SLs+', 'ttyS0', String(leader.pid), String(leader.pid)]);
    expect(rows.get('nf-session-fg')).toEqual(['S+', 'ttyS0', String(leader.pid), String(leader.pid)]);
  });
});

describe('ps formats and sorting on the sample', () => {
  const g = all[0]!;
  const passwd = execFileSync('debugfs', ['-R', 'cat /etc/passwd', g.disk!], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  const users = new Map(passwd.trim().split('\n').map((l) => l.split(':')).map((f) => [Number(f[2]), f[0]!]));

  it("user names come from the guest's /etc/passwd when its disk is given, numbers without it", () => {
    const named = new Map(run(['ps', '--ram', g.ram, '--disk', g.disk!, '-o', 'pid=,user=,uid=']).stdout.trim().split('\n').map((l) => l.trim().split(/\s+/)).map((c) => [Number(c[0]), c.slice(1)]));
    for (const p of g.truth.processes as Truth[]) expect(named.get(p.pid), `pid ${p.pid}`).toEqual([users.get(p.euid) ?? String(p.euid), String(p.euid)]);
    expect([...named.values()].some(([u]) => u === 'nf')).toBe(true);
    const numeric = run(['ps', '--ram', g.ram, '-o', 'pid=,user=']).stdout;
    expect(numeric).toMatch(/\s1000\n/);
  });

  it('aux, -f and -fL print the headers procps prints', () => {
    const header = (args: string[]) => run(['ps', ...args, '--ram', g.ram, '--disk', g.disk!]).stdout.split('\n')[0]!.trim().split(/\s+/);
    expect(header(['aux'])).toEqual(['USER', 'PID', '%CPU', '%MEM', 'VSZ', 'RSS', 'TTY', 'STAT', 'START', 'TIME', 'COMMAND']);
    expect(header(['-ef'])).toEqual(['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD']);
    expect(header(['-fL'])).toEqual(['UID', 'PID', 'PPID', 'LWP', 'C', 'NLWP', 'STIME', 'TTY', 'TIME', 'CMD']);
  });

  it('%MEM is resident over MemTotal and the spinner shows its CPU in %CPU', () => {
    const rows = new Map(psColumns(g, ['comm', '%mem', '%cpu']).map((c) => [c[0], c.slice(1).map(Number)]));
    const big = (g.truth.processes as Truth[]).find((p) => p.comm === 'nf-big')!;
    const pmem = Math.floor((big.rss_pages * 4 * 1000) / g.truth.meminfo.MemTotal) / 10;
    expect(Math.abs(rows.get('nf-big')![0]! - pmem)).toBeLessThanOrEqual(0.1);
    const spin = (g.truth.processes as Truth[]).find((p) => p.comm === 'nf-spin')!;
    const atPrint = ((spin.utime + spin.stime) * 100) / (g.truth.uptime.uptime_s * 100 - spin.starttime);
    expect(rows.get('nf-spin')![1]!).toBeGreaterThanOrEqual(Math.floor(atPrint * 0.8));
  });

  it('--sort takes several keys', () => {
    const rows = psColumns(g, ['vsz', 'pid'], ['--sort', '-vsz,pid']).map((c) => c.map(Number));
    for (let i = 1; i < rows.length; i++) {
      const [a, b] = [rows[i - 1]!, rows[i]!];
      expect(a[0]! > b[0]! || (a[0] === b[0] && a[1]! < b[1]!), `${a} before ${b}`).toBe(true);
    }
    const vsz = new Map((g.truth.processes as Truth[]).map((p) => [p.pid, Math.floor(p.vsize / 1024)]));
    for (const [v, pid] of rows) if (pid !== printerPid(g)) expect(v, `pid ${pid}`).toBe(vsz.get(pid!));
  });

  it('--no-cmdline shows [comm], as its help says', () => {
    const r = run(['ps', '--ram', g.ram, '--no-cmdline', '-o', 'pid=,args=']);
    expect(r.status, r.stderr).toBe(0);
    const comms = new Map<number, Truth>(JSON.parse(run(['ps', '--ram', g.ram, '--json', '--no-cmdline']).stdout).tasks.map((t: Truth) => [t.pid, t]));
    for (const line of r.stdout.trim().split('\n')) {
      const [, pid, args] = /^\s*(\d+)\s+(.*)$/.exec(line)!;
      const t = comms.get(Number(pid))!;
      expect(args).toBe(`[${t.comm}]${t.state === 'Z' ? ' <defunct>' : ''}`);
    }
  });
});

describe('pstree', () => {
  const g = all[0]!;
  const children = (pid: number) => (g.truth.processes as Truth[]).filter((p) => p.ppid === pid && p.pid !== pid);
  const subtree = (pid: number): number[] => [pid, ...children(pid).flatMap((c) => subtree(c.pid))];

  it('-p PID draws that subtree, each process once with its pid, under its parent', () => {
    const r = run(['pstree', '-p', '1', '--ram', g.ram]);
    expect(r.status, r.stderr).toBe(0);
    const shown = [...r.stdout.matchAll(/\((\d+)\)/g)].map((m) => Number(m[1]));
    expect(shown.sort((a, b) => a - b)).toEqual(subtree(1).sort((a, b) => a - b));
    // every process is drawn right of its parent's label: the parent's "(pid)" ends before the child begins
    const lines = r.stdout.split('\n');
    const col = (pid: number) => { const l = lines.find((x) => x.includes(`(${pid})`))!; return l.indexOf(`(${pid})`); };
    for (const pid of subtree(1).slice(1)) {
      const p = (g.truth.processes as Truth[]).find((x) => x.pid === pid)!;
      expect(col(pid), `pid ${pid}`).toBeGreaterThan(col(p.ppid));
    }
  });

  it('without -p, identical leaves are merged as pstree merges them; -A draws in ASCII', () => {
    const r = run(['pstree', '2', '-A', '--ram', g.ram]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^kthreadd-\+-/);
    expect(r.stdout).not.toMatch(/[─┬├└│]/);
    const names = children(2).map((p) => p.comm);
    const dup = names.find((n, i) => names.indexOf(n) !== i && !children(2).find((p) => p.comm === n && children(p.pid).length));
    if (dup) expect(r.stdout).toContain(`*[${dup}]`);
  });

  it('a PID the guest does not have is an error', () => {
    const r = run(['pstree', '99999', '--ram', g.ram]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`nearfield: pstree: no process 99999 in the guest\n`);
  });
});

describe('uname', () => {
  const g = all[0]!;
  const u = g.truth.uname;
  it.each([
    [['-a'], `${u.sysname} ${u.nodename} ${u.release} ${u.version} ${u.machine} GNU/Linux`],
    [['-s'], u.sysname],
    [[], u.sysname],
    [['-n'], u.nodename],
    [['-r'], u.release],
    [['-v'], u.version],
    [['-m'], u.machine],
    [['-r', '-m'], `${u.release} ${u.machine}`],
    [['-p', '-i'], 'unknown unknown'],
  ])('uname %j', (flags, want) => {
    const r = run(['uname', '--ram', g.ram, ...flags]);
    expect(r.status, r.stderr).toBe(0);
    // bare `uname` is the facts table (the kernel command); with a flag, uname's one line
    if (flags.length === 0) expect(r.stdout).toMatch(/^fact\s+source\s+value/);
    else expect(r.stdout).toBe(`${want}\n`);
  });
});
