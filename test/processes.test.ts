// ps from outside vs the guest's own /proc (truth.json of the committed sample), on ram.raw and core.elf.

import { copyFileSync, mkdtempSync, openSync, writeSync, closeSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { json, readTruth, run, sample, type Truth } from './walkers-helpers.js';

let truth: Truth;
let files: Record<string, string>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const ps: Record<string, { tasks: any[]; warnings: string[] }> = {};
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const threads: Record<string, { tasks: any[]; warnings: string[] }> = {};

beforeAll(async () => {
  const s = await sample();
  truth = readTruth(s);
  files = { 'ram.raw': s.ram, 'core.elf': s.core };
  for (const [name, file] of Object.entries(files)) {
    ps[name] = json('ps', file);
    threads[name] = json('ps', file, ['--threads']);
  }
});

// What moves between the print and the pause (truth.after_print.known_changes), measured on the sample:
// - tasks that were R (on a CPU or runnable) when /proc was read kept running: the printer (then asleep in
//   pause(): S), the spinner nf-spin, and e.g. rcu_preempt (then idle: I). Their state may differ and their
//   CPU time only grows; every other task's state and utime/stime must be identical, except:
// - kernel threads work on their own timers while the document crosses the UART: rcu_preempt, ksoftirqd and
//   kworkers were each seen one tick further at the pause (on this sample: kworker/0:1, stime 18 → 19). Their
//   CPU time may only grow; a user task that was asleep stays asleep and its times are identical.
// - the printer's RSS grows after it read its own /proc/PID/stat (it then builds a ~200 KB document):
//   196 → 243 pages on the sample, and its VSZ with it. Every other RSS must be within one page.
const printerPid = () => truth.printer_pid as number;
const running = () => new Set<number>(truth.processes.filter((p: Truth) => p.state === 'R').map((p: Truth) => p.pid));
const selfWaking = () => new Set<number>(truth.processes.filter((p: Truth) => p.kernel_thread).map((p: Truth) => p.pid));

describe.each(['ram.raw', 'core.elf'])('ps on %s', (name) => {
  const procs = () => new Map<number, Truth>(ps[name]!.tasks.map((r) => [r.pid, r]));

  it('walks the task list cleanly', () => {
    expect(ps[name]!.warnings).toEqual([]);
    expect(threads[name]!.warnings).toEqual([]);
  });

  it('finds exactly the PIDs the guest listed', () => {
    expect([...procs().keys()].sort((a, b) => a - b)).toEqual(truth.processes.map((p: Truth) => p.pid).sort((a: number, b: number) => a - b));
  });

  it('has comm, ppid, uid/gid, nice, priority, thread count, start time and vsize identical for every PID', () => {
    const ours = procs();
    for (const p of truth.processes) {
      const o = ours.get(p.pid);
      const want = { comm: p.comm, ppid: p.ppid, uid: p.uid, gid: p.gid, euid: p.euid, egid: p.egid, nice: p.nice, priority: p.priority, nlwp: p.num_threads, start_ticks: p.starttime, vsz: p.vsize, kthread: p.kernel_thread };
      const got = { comm: o.comm, ppid: o.ppid, uid: o.uid, gid: o.gid, euid: o.euid, egid: o.egid, nice: o.nice, priority: o.priority, nlwp: o.nrThreads, start_ticks: o.startTicks, vsz: o.vszBytes ?? 0, kthread: o.kernelThread };
      if (p.pid === printerPid()) got.vsz = want.vsz; // its address space grows with the document, like its RSS
      // a kworker's "-suffix" names the workqueue of its latest work item (wq_worker_comm), which changes
      // each time it runs: kworkers that ran after the print differ there (seen on other built guests)
      if (/^kworker\//.test(p.comm) && o.comm.split(/[-+]/)[0] === p.comm.split(/[-+]/)[0]) got.comm = want.comm;
      expect(got, `pid ${p.pid}`).toEqual(want);
    }
  });

  it('has the /proc state letter of every PID that was not running at the print (the printer: S at the pause)', () => {
    const ours = procs();
    for (const p of truth.processes) {
      if (p.pid === printerPid()) expect(ours.get(p.pid).state).toBe('S');
      else if (running().has(p.pid)) expect('RSDI', `pid ${p.pid} ${p.comm}`).toContain(ours.get(p.pid).state);
      else expect(ours.get(p.pid).state, `pid ${p.pid} ${p.comm}`).toBe(p.state);
    }
    const letters = new Set(truth.processes.map((p: Truth) => p.state));
    for (const l of ['S', 'I', 'T', 'Z', 'R']) expect(letters, `the sample has a task in state ${l}`).toContain(l);
  });

  it('has RSS within one page of /proc/PID/stat field 24', () => {
    const ours = procs();
    for (const p of truth.processes) {
      if (p.pid === printerPid()) continue;
      const pages = ours.get(p.pid).rss?.pages ?? 0;
      expect(Math.abs(pages - p.rss_pages), `pid ${p.pid} ${p.comm}: ${pages} vs ${p.rss_pages}`).toBeLessThanOrEqual(1);
    }
  });

  it('reads every cmdline from process memory, byte for byte', () => {
    const ours = procs();
    for (const p of truth.processes) {
      expect(ours.get(p.pid).cmdline, `pid ${p.pid}`).toEqual(p.cmdline);
    }
  });

  it('has utime/stime identical, except for tasks running at the print (only larger)', () => {
    const ours = procs();
    for (const p of truth.processes) {
      const o = ours.get(p.pid);
      if (running().has(p.pid) || selfWaking().has(p.pid)) {
        expect(o.utimeTicks + o.stimeTicks).toBeGreaterThanOrEqual(p.utime + p.stime);
      } else {
        expect([o.utimeTicks, o.stimeTicks], `pid ${p.pid} ${p.comm}`).toEqual([p.utime, p.stime]);
      }
    }
  });

  it('lists the threads of the multi-threaded worker with their own comm and state', () => {
    const worker = truth.processes.find((p: Truth) => p.comm === 'nf-threads');
    const ours = threads[name]!.tasks.find((r) => r.pid === worker.pid).threads.map((r: Truth) => ({ tid: r.pid, comm: r.comm, state: r.state, start: r.startTicks }));
    const want = worker.threads.map((t: Truth) => ({ tid: t.tid, comm: t.comm, state: t.state, start: t.starttime }));
    expect(ours.sort((a, b) => a.tid - b.tid)).toEqual(want.sort((a: Truth, b: Truth) => a.tid - b.tid));
    expect(want.length).toBeGreaterThan(1);
  });
});

describe('ps CLI', () => {
  it('gives the same records on ram.raw and core.elf', () => {
    expect(ps['core.elf']!.tasks).toEqual(ps['ram.raw']!.tasks);
    expect(threads['core.elf']!.tasks).toEqual(threads['ram.raw']!.tasks);
  });

  it('prints a table with kernel threads in brackets and zombies marked, exit 0', () => {
    const r = run(['ps', '--ram', files['ram.raw']!]);
    expect(r.status).toBe(0);
    expect(r.stdout.split('\n')[0]).toMatch(/^\s*PID\s+PPID\s+UID\s+STAT\s+NI\s+NLWP\s+RSS\s+VSZ\s+STIME\s+TIME\s+CMD$/);
    expect(r.stdout).toMatch(/ \[kthreadd\]\n/);
    expect(r.stdout).toMatch(/\[nf-zombie\] <defunct>/);
    expect(r.stdout).toContain('/bin/worker nf-longcmd 1 0 --alpha=1 --beta two words --gamma=  last-arg');
  });

  it('filters by state and sorts descending', () => {
    const z = json<{ tasks: Truth[] }>('ps', files['ram.raw']!, ['--state', 'Z']);
    expect(z.tasks.map((t) => t.comm)).toEqual(truth.processes.filter((p: Truth) => p.state === 'Z').map((p: Truth) => p.comm));
    const byRss = json<{ tasks: Truth[] }>('ps', files['ram.raw']!, ['--sort', '-rss']);
    const biggest = [...truth.processes].sort((a: Truth, b: Truth) => b.rss_pages - a.rss_pages)[0];
    expect(byRss.tasks[0].pid).toBe(biggest.pid);
  });

  it('emits one JSON record per line with --jsonl', () => {
    const r = run(['ps', '--ram', files['ram.raw']!, '--jsonl']);
    expect(r.status).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines.length).toBe(truth.processes.length);
    expect(JSON.parse(lines[0]!).pid).toBe(1);
  });

  it('refuses an unknown sort key with a usage error', () => {
    const r = run(['ps', '--ram', files['ram.raw']!, '--sort', 'colour']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^nearfield: ps: --sort takes columns \(pid, /);
  });
});

describe('ps on a damaged task list', () => {
  it('prints what it read, warns on stderr and exits 3', () => {
    // Overwrite one worker's task_struct (it lives in the direct map: phys = address − page_offset_base)
    // in a copy of the RAM file: the walk must stop there with a warning, keeping the tasks before it.
    const dir = mkdtempSync(join(tmpdir(), 'nf-ps-damaged-'));
    try {
      const ram = join(dir, 'ram.raw');
      copyFileSync(files['ram.raw']!, ram);
      const kernel = JSON.parse(run(['kernel', '--ram', ram, '--json', '--no-cache']).stdout);
      const victim = ps['ram.raw']!.tasks.find((t) => t.comm === 'nf-nice');
      const phys = Number(BigInt(victim.address) - BigInt(kernel.pageOffsetBase));
      const fd = openSync(ram, 'r+');
      writeSync(fd, Buffer.alloc(12 * 1024, 0xff), 0, 12 * 1024, phys);
      closeSync(fd);
      const r = run(['ps', '--ram', ram, '--json']);
      expect(r.status).toBe(3);
      expect(r.stderr).toMatch(/^nearfield: warning: task list/m);
      const got = JSON.parse(r.stdout);
      // the list is in fork order, not pid order: expect the tasks read before the victim, and none after
      const all = new Set(ps['ram.raw']!.tasks.map((t) => t.pid));
      const read = got.tasks.map((t: Truth) => t.pid);
      expect(read.every((pid: number) => all.has(pid))).toBe(true);
      expect(read).not.toContain(victim.pid);
      expect(read).toEqual(expect.arrayContaining([1, 2]));
      expect(read.length).toBeGreaterThan(all.size / 2);
      expect(read.length).toBeLessThan(all.size);
      expect(got.warnings.length).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('pstree', () => {
  it('hangs every process under the parent the guest reported', () => {
    const { roots: tree } = json<{ roots: Truth[] }>('pstree', files['ram.raw']!);
    const parentOf = new Map<number, number>();
    const visit = (n: Truth, parent: number) => {
      parentOf.set(n.pid, parent);
      for (const c of n.children) visit(c, n.pid);
    };
    for (const r of tree) visit(r, 0);
    for (const p of truth.processes) expect(parentOf.get(p.pid), `pid ${p.pid}`).toBe(p.ppid);
  });
});
