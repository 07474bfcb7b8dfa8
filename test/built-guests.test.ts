// Guests built by images/build-guest.mjs (CI builds them: .ci/run) — the Debian 6.12 kernel, the hung guest and
// the panicked guest — each compared with its own in-guest truth: kernel facts, every process, memory, the log.
//
// What may move between the print and the pause is in each truth.after_print.known_changes; the exceptions
// below are the ones measured on these guests, each with its reason.

import { beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { builtGuest } from './built-guests.js';
import { atEndTolerance, json, PCP_BATCH_PAGES, run, type Truth } from './walkers-helpers.js';

/** /dev/kmsg escapes bytes below space, from 127 up, and the backslash as \xNN (kernel/printk/printk.c). */
const kmsgEscape = (s: string) => s.replace(/[\x00-\x1f\x7f-\xff\\]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

const tolerance = atEndTolerance;
const PCP_BATCH = PCP_BATCH_PAGES;

const guests = [
  { name: 'k612-256m', label: 'Debian 6.12 kernel (5-level paging)', levels: 5 },
  { name: 'hung-256m', label: 'hung guest (frozen rootfs, blocked writers, a lock chain)', levels: 4 },
  { name: 'panic-256m', label: 'panicked guest (sysrq crash after the truth)', levels: 4 },
];

for (const spec of guests) {
  const g = builtGuest(spec.name);
  describe.skipIf(!g.present && !g.required)(`built guest ${spec.name}: ${spec.label}`, () => {
    it('was built', () => {
      expect(g.present, `no ram.raw/core.elf/truth.json in ${g.dir}: the guest build failed (see the CI output above)`).toBe(true);
    });
    if (!g.present) return;

    let truth: Truth;
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    let ps: { tasks: any[]; warnings: string[] };
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    let threads: { tasks: any[]; warnings: string[] };
    beforeAll(() => {
      truth = JSON.parse(readFileSync(g.truth, 'utf8'));
      ps = json('ps', g.ram, ['--no-cache']);
      threads = json('ps', g.ram, ['--threads']);
    });
    const scenario = () => truth.scenario?.name ?? 'none';
    const printer = () => truth.printer_pid as number;
    // Tasks on a CPU or runnable at the print kept running; the printer sleeps in pause() at the pause,
    // except in the panicked guest, where it is the task that panicked (still on its CPU).
    const running = () => new Set<number>(truth.processes.filter((p: Truth) => p.state === 'R').map((p: Truth) => p.pid));
    const printerStateAtPause = () => (scenario() === 'panic' ? 'R' : 'S');

    it('kernel: release, banner, paging levels and KASLR offset are the guest\'s (ram.raw and core.elf)', () => {
      for (const file of [g.ram, g.core]) {
        const k = json('kernel', file, ['--no-cache']);
        expect(k.release).toBe(truth.uname.release);
        expect(k.banner).toBe(truth.kernel.proc_version);
        expect(k.pagingLevels).toBe(spec.levels);
        expect(k.symbolSource).toBe('kallsyms');
        expect(k.typeSource).toBe('btf');
        expect(k.warnings).toEqual([]);
        expect(BigInt(k.kaslrOffset)).toBe(BigInt(truth.kernel.symbols._text.address) - 0xffffffff81000000n);
      }
    });

    it('ps: exactly the PIDs the guest listed, with comm, ppid, uids, nice, threads, start time and vsize', () => {
      expect(ps.warnings).toEqual([]);
      const ours = new Map<number, Truth>(ps.tasks.map((t) => [t.pid, t]));
      expect([...ours.keys()].sort((a, b) => a - b)).toEqual(truth.processes.map((p: Truth) => p.pid));
      for (const p of truth.processes) {
        const o = ours.get(p.pid);
        const want = { comm: p.comm, ppid: p.ppid, uid: p.uid, gid: p.gid, euid: p.euid, nice: p.nice, nlwp: p.num_threads, start: p.starttime, vsz: p.vsize, kthread: p.kernel_thread };
        const got = { comm: o.comm, ppid: o.ppid, uid: o.uid, gid: o.gid, euid: o.euid, nice: o.nice, nlwp: o.nrThreads, start: o.startTicks, vsz: o.vszBytes ?? 0, kthread: o.kernelThread };
        if (p.pid === printer()) got.vsz = want.vsz; // its address space grows with the document
        // a kworker's "-suffix" names the workqueue of its latest work item, which changes when it runs
        if (/^kworker\//.test(p.comm) && o.comm.split(/[-+]/)[0] === p.comm.split(/[-+]/)[0]) got.comm = want.comm;
        expect(got, `pid ${p.pid}`).toEqual(want);
      }
    });

    it('ps: the state of every task that was not running at the print, D tasks included', () => {
      const ours = new Map<number, Truth>(threads.tasks.flatMap((p) => p.threads).map((t: Truth) => [t.pid, t]));
      for (const p of truth.processes) {
        for (const t of p.threads) {
          const o = ours.get(t.tid);
          expect(o, `tid ${t.tid} ${t.comm}`).toBeDefined();
          if (t.tid === printer()) expect(o.state).toBe(printerStateAtPause());
          else if (running().has(p.pid) || t.state === 'R') expect('RSDI', `tid ${t.tid} ${t.comm}`).toContain(o.state);
          // a kernel thread may have been woken (timer, interrupt) and be runnable at the pause (rcu_preempt: I at
          // the print, R at the pause on one hung guest), or have finished waiting for I/O (jbd2/vda-8: D, then S)
          else if (p.kernel_thread && t.state === 'D') expect('RSDI', `tid ${t.tid} ${t.comm}`).toContain(o.state);
          else if (p.kernel_thread) expect([t.state, 'R'], `tid ${t.tid} ${t.comm}`).toContain(o.state);
          else expect(o.state, `tid ${t.tid} ${t.comm}`).toBe(t.state);
        }
      }
    });

    it('ps: every cmdline read from process memory equals /proc/PID/cmdline', () => {
      const ours = new Map<number, Truth>(ps.tasks.map((t) => [t.pid, t]));
      for (const p of truth.processes) {
        if (p.cmdline === null) continue; // mm_skipped: the printer could not read it (contended mmap_lock)
        expect(ours.get(p.pid).cmdline, `pid ${p.pid}`).toEqual(p.cmdline);
      }
    });

    it('ps -L: utime/stime of every user task identical, except those running at the print (only larger)', () => {
      const ours = new Map<number, Truth>(threads.tasks.flatMap((p) => p.threads).map((t: Truth) => [t.pid, t]));
      for (const p of truth.processes) {
        for (const t of p.threads) {
          const o = ours.get(t.tid);
          // Kernel threads work while the document crosses the UART (ksoftirqd, kworkers, rcu_preempt: each seen
          // one tick further at the pause on these guests); user tasks that were asleep stay asleep.
          if (t.state === 'R' || running().has(p.pid) || p.kernel_thread) {
            expect(o.utimeTicks + o.stimeTicks, `tid ${t.tid} ${t.comm}`).toBeGreaterThanOrEqual(t.utime + t.stime);
          } else {
            expect([o.utimeTicks, o.stimeTicks], `tid ${t.tid} ${t.comm}`).toEqual([t.utime, t.stime]);
          }
        }
      }
    });

    it('ps: RSS within one page of /proc/PID/stat', () => {
      const ours = new Map<number, Truth>(ps.tasks.map((t) => [t.pid, t]));
      for (const p of truth.processes) {
        if (p.pid === printer()) continue; // it builds its document after reading its own stat
        const pages = ours.get(p.pid).rss?.pages ?? 0;
        expect(Math.abs(pages - p.rss_pages), `pid ${p.pid} ${p.comm}`).toBeLessThanOrEqual(1);
      }
    });

    it('meminfo and buddyinfo: the values the guest re-read just before the pause', () => {
      const m = json('meminfo', g.ram);
      expect(m.fields.map((f: Truth) => f.name)).toEqual(Object.keys(truth.meminfo));
      const fields: Record<string, number> = Object.fromEntries(m.fields.map((f: Truth) => [f.name, f.value]));
      for (const [field, want] of Object.entries(truth.at_end.meminfo as Record<string, number>)) {
        // panic() stopped the other CPUs and took them out of cpu_online_mask; Committed_AS is a percpu_counter
        // summed over online CPUs (as the kernel would now sum it), so the stopped CPUs' deltas drop out.
        if (field === 'Committed_AS' && scenario() === 'panic') continue;
        const tol = tolerance[field] ?? 0;
        expect(Math.abs(fields[field]! - want), `${field}: ours ${fields[field]} vs guest ${want} (±${tol})`).toBeLessThanOrEqual(tol);
      }
      const b = json('buddyinfo', g.ram);
      expect(b.zones.map((z: Truth) => [z.node, z.zone, z.free.length])).toEqual(truth.at_end.buddyinfo.map((z: Truth) => [z.node, z.zone, z.free.length]));
      const pages = (free: number[]) => free.reduce((sum, n, order) => sum + n * 2 ** order, 0);
      truth.at_end.buddyinfo.forEach((z: Truth, i: number) => {
        const ours = b.zones[i].free as number[];
        if (pages(ours) === pages(z.free)) expect(ours, `zone ${z.zone}`).toEqual(z.free);
        else expect(Math.abs(pages(ours) - pages(z.free)), `zone ${z.zone}: ${ours} vs ${z.free}`).toBeLessThanOrEqual(PCP_BATCH);
      });
    });

    it('dmesg: every record the guest read from /dev/kmsg, same sequence number and text', () => {
      const d = json('dmesg', g.ram);
      const ours = new Map<number, Truth>(d.records.map((r: Truth) => [r.seq, r]));
      expect(truth.dmesg.length).toBeGreaterThan(100);
      for (const r of truth.dmesg) expect(kmsgEscape(ours.get(r.seq)?.text ?? ''), `seq ${r.seq}`).toBe(r.text);
    });

    if (spec.name.startsWith('hung')) {
      it('hung: khungtaskd\'s reports are in the log, and ps shows the blocked tasks in D', () => {
        const h = truth.scenario.hung;
        expect(h.timeout_secs).toBe(Number(truth.sysctl['kernel.hung_task_timeout_secs']));
        const d = json('dmesg', g.ram);
        for (const want of h.expected_reports) {
          expect(d.records.some((r: Truth) => r.text.startsWith(`INFO: task ${want} blocked for more than `)), want).toBe(true);
        }
        const dTasks = threads.tasks.flatMap((p) => p.threads).filter((t: Truth) => t.state === 'D').map((t: Truth) => t.pid).sort((a: number, b: number) => a - b);
        const blocked = [...h.writers.map((w: Truth) => w.pid), ...h.locks.tasks.map((t: Truth) => t.tid)].sort((a: number, b: number) => a - b);
        expect(dTasks).toEqual(blocked);
      });
    }

    if (spec.name.startsWith('panic')) {
      it('panic: the log in RAM ends with the panic the console showed', () => {
        const p = truth.scenario.panic;
        expect(p.message).toBe('sysrq triggered crash');
        const d = json('dmesg', g.ram);
        const after = d.records.filter((r: Truth) => r.seq > truth.dmesg.at(-1).seq).map((r: Truth) => r.text);
        expect(after).toContain(`Kernel panic - not syncing: ${p.message}`);
        // Each console line (timestamp stripped) is a record of the log, in order.
        const consoleLines = (p.console_text as string).split('\n').map((l) => l.replace(/^\[\s*\d+\.\d+\]\s?/, '').trimEnd());
        const logLines = after.flatMap((t: string) => t.split('\n')).map((l: string) => l.trimEnd());
        expect(logLines.slice(-consoleLines.length)).toEqual(consoleLines);
      });
    }

    it('prints tables on the CLI without warnings (exit 0)', () => {
      for (const cmd of ['ps', 'meminfo', 'dmesg']) {
        const r = run([cmd, '--ram', g.ram]);
        expect(r.status, `${cmd}: ${r.stderr}`).toBe(0);
      }
    });
  });
}
