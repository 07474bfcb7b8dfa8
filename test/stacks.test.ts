// Kernel stacks, hung tasks and triage compared with what the guests said about themselves: /proc/PID/stack and
// /proc/PID/wchan of every thread (truth.json), the hung scenario's writers and lock chain, the panic's console trace.
//
// /proc/PID/stack is stack_trace_save_tsk() through stack_trace_consume_entry_nosched(): it drops every address
// in_sched_functions() names — .sched.text (every __sched function: __schedule, schedule, the mutex and rwsem slow
// paths, __percpu_down_read …) and .spinlock.text — wherever it is in the trace, not only at the top. bt marks
// those frames `scheduler`; with them left out, its frames must equal the kernel's exactly (function, offset, size,
// module), for every task that did not run after the guest read its stack.

import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builtGuest, builtGuests, type BuiltGuest } from './built-guests.js';
import { json, root, run, sample, type Truth } from './walkers-helpers.js';

/** Threads whose truth has a non-empty /proc/PID/stack. */
function truthStacks(truth: Truth): { tid: number; comm: string; stack: Truth[]; wchan: string }[] {
  return truth.processes.flatMap((p: Truth) => (p.threads ?? []).filter((t: Truth) => Array.isArray(t.stack) && t.stack.length > 0));
}

const frame = (f: Truth) => `${f.symbol}+${f.offset}/${f.size}${f.module ? ` [${f.module}]` : ''}`;
const ourFrame = (f: Truth) => `${f.function}+${f.offset}/${f.size}${f.module ? ` [${f.module}]` : ''}`;

/** The truth's frames appear in `ours` as one contiguous run (function names only). */
function containsRun(ours: string[], want: string[]): boolean {
  for (let i = 0; i + want.length <= ours.length; i++) if (want.every((w, j) => ours[i + j] === w)) return true;
  return false;
}

const guests: BuiltGuest[] = builtGuests().filter((g) => g.present);

describe('bt: every thread\'s kernel stack equals /proc/PID/stack, less the frames in_sched_functions() drops', () => {
  it.skipIf(!process.env.NEARFIELD_REQUIRED_GUESTS)('the required guests carry stack truth (a 6.1 and a 6.12 kernel at least)', () => {
    const withStacks = guests.filter((g) => truthStacks(JSON.parse(readFileSync(g.truth, 'utf8'))).length > 0).map((g) => g.name);
    expect(withStacks).toEqual(expect.arrayContaining(['k612-256m', 'hung-256m']));
  });

  for (const g of guests) {
    const truth: Truth = JSON.parse(readFileSync(g.truth, 'utf8'));
    const stacks = truthStacks(truth);
    if (stacks.length === 0) continue;
    for (const file of ['ram.raw', 'core.elf']) {
      it(`${g.name} (${truth.uname.release}), ${file}`, () => {
        const bt = json('bt', join(g.dir, file), ['--all']);
        // the layout the kernel's ORC data has: told by its .orc_header (6.4+) or its release, not guessed
        const [maj, min] = (truth.uname.release as string).split('.').map(Number);
        expect(bt.orc.format).toBe(maj! > 6 || (maj === 6 && min! >= 4) ? '6.4+ (signal bit, .orc_header)' : 'before 6.3 (end bit)');
        expect(bt.orc.evidence).not.toMatch(/statistics/);
        const ours = new Map<number, Truth>(bt.tasks.map((t: Truth) => [t.pid, t]));
        // a thread that got a CPU after the guest began reading (clocks_begin) may have moved; the runqueue clock
        // runs ~50 ms behind CLOCK_BOOTTIME on these guests
        const began = BigInt(truth.clocks_begin.boottime_ns) - 100_000_000n;
        let compared = 0;
        for (const t of stacks) {
          const o = ours.get(t.tid);
          expect(o, `tid ${t.tid} ${t.comm}`).toBeDefined();
          if (o.lastArrivalNs === null || BigInt(o.lastArrivalNs) > began) continue;
          compared++;
          const kept = o.frames.filter((f: Truth) => !f.scheduler);
          expect(kept.map(ourFrame), `tid ${t.tid} ${t.comm}: ${o.end}`).toEqual(t.stack.map(frame));
          expect(o.frames.every((f: Truth) => f.reliable), `tid ${t.tid}`).toBe(true);
          if (t.wchan !== '0') expect(o.wchan, `tid ${t.tid} ${t.comm} wchan`).toBe(t.wchan);
        }
        // the filter above must not hollow the test out: three in four threads at least are compared (kworkers and softirq threads run while the document crosses the UART)
        expect(compared, `${compared} of ${stacks.length} compared`).toBeGreaterThanOrEqual(Math.floor(stacks.length * 0.75));
        expect(bt.warnings).toEqual([]);
      });
    }
  }
});

const panicGuest = builtGuest('panic-256m');
describe.skipIf(!panicGuest.present && !panicGuest.required)('bt on the panicked guest', () => {
  let truth: Truth;
  beforeAll(() => {
    truth = JSON.parse(readFileSync(panicGuest.truth, 'utf8'));
  });
  // At the pause the panicking CPU spins in panic()'s delay loop: dump_stack_lvl, first in the console's trace,
  // has returned. From panic() on, the console's reliable frames are the stack.
  const consoleFrom = (t: Truth) => {
    const reliable = (t.scenario.panic.call_trace as Truth[]).filter((f) => f.reliable).map((f) => f.symbol as string);
    return reliable.slice(reliable.indexOf('panic'));
  };

  it('the ELF core: the panicking task unwinds from its vCPU registers through panic() to the syscall entry', () => {
    const bt = json('bt', panicGuest.core, ['--cpu']);
    const p = truth.scenario.panic;
    const cpu = bt.cpus.find((c: Truth) => c.panicking);
    expect(cpu.cpu).toBe(p.cpu);
    expect(cpu.pid).toBe(p.pid);
    const t = bt.tasks.find((x: Truth) => x.pid === p.pid);
    expect(t.start).toBe('CPU registers (ELF core)');
    expect(t.panicking).toBe(true);
    const names = t.frames.map((f: Truth) => f.function);
    expect(containsRun(names, consoleFrom(truth)), names.join(' ')).toBe(true);
    expect(t.frames.every((f: Truth) => f.reliable)).toBe(true);
    expect(t.end).toMatch(/^returns to user mode/);
  });

  it('raw RAM: without registers, a scan of its stack finds panic() and ORC the rest (all marked unreliable)', () => {
    const bt = json('bt', panicGuest.ram, ['--cpu']);
    const t = bt.tasks.find((x: Truth) => x.pid === truth.scenario.panic.pid);
    expect(t.start).toBe('stack scan (no registers)');
    const names = t.frames.map((f: Truth) => f.function);
    expect(names.slice(0, consoleFrom(truth).length)).toEqual(consoleFrom(truth));
    expect(t.frames.some((f: Truth) => f.reliable)).toBe(false);
    // the other CPU was running too: said plainly, no made-up trace
    const other = bt.tasks.find((x: Truth) => x.onCpu !== null && x.onCpu !== truth.scenario.panic.cpu);
    expect(other.frames).toEqual([]);
    expect(other.note).toMatch(/does not hold CPU registers/);
  });
});

const hungGuest = builtGuest('hung-256m');
describe.skipIf(!hungGuest.present && !hungGuest.required)('hung on the hung guest', () => {
  let truth: Truth;
  let h: Truth;
  beforeAll(() => {
    truth = JSON.parse(readFileSync(hungGuest.truth, 'utf8'));
    h = json('hung', hungGuest.ram);
  });
  const byPid = (pid: number) => h.tasks.find((t: Truth) => t.pid === pid);

  it('names both writers, blocked at least as long as the guest saw them wait, on the frozen filesystem', () => {
    const s = truth.scenario.hung;
    expect(h.warnings).toEqual([]);
    expect(h.timeoutSecs).toBe(s.timeout_secs);
    expect(h.frozen.map((f: Truth) => f.mountpoints)).toEqual([[s.frozen_path]]);
    for (const w of s.writers) {
      const t = byPid(w.pid);
      expect(t, `${w.comm} ${w.pid}`).toBeDefined();
      expect(t.comm).toBe(w.comm);
      expect(t.waitsOn.kind).toBe('frozen-fs');
      expect(t.waitsOn.mountpoints).toContain(s.frozen_path);
      expect(Number(BigInt(t.blockedForNs)) / 1e9, `${w.comm}`).toBeGreaterThanOrEqual(w.blocked_for_s_at_print);
      expect(t.stack.wchan).toBe(w.wchan);
    }
  });

  it('the lock chain: who holds the pipe mutex and the mmap_lock, who queues behind whom', () => {
    const l = truth.scenario.hung.locks;
    for (const want of l.tasks) {
      const t = byPid(want.tid);
      expect(t, `${want.role} ${want.tid}`).toBeDefined();
      const w = t.waitsOn;
      if (want.waits_for === 'sb_freeze') expect(w.kind).toBe('frozen-fs');
      if (want.waits_for === 'pipe_mutex') {
        expect(w.kind).toBe('mutex');
        expect(w.owner.pid).toBe(want.held_by_tid);
      }
      if (want.waits_for.startsWith('mmap_lock:')) {
        expect(w.kind).toBe('rwsem');
        expect(w.wantsWrite).toBe(want.waits_for === 'mmap_lock:write');
        expect(w.mmapLockOf.pid).toBe(l.locker_pid);
        if (want.held_by_tid !== null) expect(w.owner.pid).toBe(want.held_by_tid);
        if (want.queued_behind_tid !== null && want.queued_behind_tid !== undefined) expect(w.queuedBehind.map((q: Truth) => q.pid)).toContain(want.queued_behind_tid);
      }
      expect(Number(BigInt(t.blockedForNs)) / 1e9).toBeGreaterThanOrEqual(want.blocked_for_s_at_print);
    }
  });

  it('khungtaskd: reported exactly the tasks the guest saw reported; killable waits are never reported', () => {
    const reported = h.tasks.filter((t: Truth) => t.khungtaskd.verdict === 'reported').map((t: Truth) => `${t.comm}:${t.pid}`).sort();
    expect(reported).toEqual([...truth.scenario.hung.expected_reports].sort());
    for (const t of h.tasks.filter((x: Truth) => x.khungtaskd.verdict !== 'reported')) {
      expect(t.khungtaskd.verdict, `${t.comm}`).toBe('ignored');
      expect(t.taskState & 0x100, `${t.comm} is killable`).toBe(0x100);
    }
  });
});

describe('triage', () => {
  it.skipIf(!panicGuest.present && !panicGuest.required)('the panicked guest: the panic message first', () => {
    const truth = JSON.parse(readFileSync(panicGuest.truth, 'utf8'));
    const t = json('triage', panicGuest.ram);
    expect(t.verdicts[0].kind).toBe('panic');
    expect(t.verdicts[0].text).toBe(`kernel PANIC on CPU ${truth.scenario.panic.cpu}: ${truth.scenario.panic.message}`);
    expect(t.log.around).toBe('panic');
    expect(t.log.records.map((r: Truth) => r.text)).toContain(`Kernel panic - not syncing: ${truth.scenario.panic.message}`);
    const text = run(['triage', '--ram', panicGuest.ram]);
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout.split('\n')[0]).toBe(`!! kernel PANIC on CPU ${truth.scenario.panic.cpu}: ${truth.scenario.panic.message}`);
  });

  it.skipIf(!hungGuest.present && !hungGuest.required)('the hung guest: the blocked tasks first, on the frozen filesystem', () => {
    const truth = JSON.parse(readFileSync(hungGuest.truth, 'utf8'));
    const t = json('triage', hungGuest.ram);
    expect(t.verdicts[0].kind).toBe('hung');
    expect(t.verdicts[0].severity).toBe('critical');
    for (const w of truth.scenario.hung.writers) expect(t.verdicts[0].text).toContain(`${w.comm} (${w.pid})`);
    expect(t.verdicts[0].text).toContain(`frozen ext4 ${truth.scenario.hung.frozen_path}`);
    expect(t.verdicts.some((v: Truth) => v.kind === 'panic')).toBe(false);
    const text = run(['triage', '--ram', hungGuest.ram]).stdout.split('\n');
    expect(text[0]).toMatch(/^!! \d+ tasks blocked \d+ s on frozen ext4 /);
  });

  it('the sample (a healthy guest): no panic, nothing blocked', async () => {
    const s = await sample();
    const t = json('triage', s.ram);
    expect(t.verdicts.some((v: Truth) => v.kind === 'panic' || v.kind === 'hung' || v.kind === 'lock')).toBe(false);
    expect(t.health.panic.panicked).toBe(false);
  });
});

describe('report: the health collector', () => {
  const gauge = (text: string, name: string) => Number(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'm').exec(text)?.[1]);
  it.skipIf(!hungGuest.present && !hungGuest.required)('hung guest: nearfield_hung_tasks counts what khungtaskd reported', () => {
    const truth = JSON.parse(readFileSync(hungGuest.truth, 'utf8'));
    const r = run(['report', '--ram', hungGuest.ram, '--prometheus']);
    expect(r.status === 0 || r.status === 3, r.stderr).toBe(true);
    expect(gauge(r.stdout, 'nearfield_hung_tasks')).toBe(truth.scenario.hung.expected_reports.length);
    expect(gauge(r.stdout, 'nearfield_blocked_tasks')).toBe(truth.scenario.hung.writers.length + truth.scenario.hung.locks.tasks.length);
    expect(gauge(r.stdout, 'nearfield_kernel_panicked')).toBe(0);
  });
  it.skipIf(!panicGuest.present && !panicGuest.required)('panicked guest: nearfield_kernel_panicked 1, tainted as the guest said', () => {
    const truth = JSON.parse(readFileSync(panicGuest.truth, 'utf8'));
    const r = run(['report', '--ram', panicGuest.ram, '--prometheus']);
    expect(gauge(r.stdout, 'nearfield_kernel_panicked')).toBe(1);
    expect(gauge(r.stdout, 'nearfield_kernel_tainted')).toBe(truth.kernel.tainted);
  });
});

describe.skipIf(!hungGuest.present && !hungGuest.required)('hostile ORC data: bounded partial traces and warnings, never a failure', () => {
  let work: string;
  let ram: string;
  beforeAll(async () => {
    // a copy of the hung guest whose orc_lookup index is garbage and whose scheduler functions' ORC entries send
    // the stack pointer 32 KiB up (off every stack)
    work = mkdtempSync(join(tmpdir(), 'nf-hostile-orc-'));
    ram = join(work, 'ram.raw');
    expect(spawnSync('cp', ['--sparse=always', hungGuest.ram, ram]).status).toBe(0);
    // the built addon, as the CLI loads it (the gateway finds it from dist/)
    const { Guest } = (await import(join(root, 'dist', 'src', 'guest.js'))) as typeof import('../src/guest.js');
    const g = Guest.openSync({ ram: hungGuest.ram, cache: false });
    const k = g.kernel();
    const names = ['orc_lookup', 'orc_lookup_end', '__start_orc_unwind_ip', '__stop_orc_unwind_ip', '__start_orc_unwind', '__sched_text_start', '__sched_text_end'];
    const addresses = new Map(names.map((n) => [n, BigInt(g.symbol(n)!)]));
    g.close();
    const sym = (n: string) => addresses.get(n)!;
    const phys = (v: bigint) => Number((v - 0xffffffff80000000n + BigInt(k.physBase)) & 0xffffffffffffffffn);
    const fd = openSync(ram, 'r+');
    try {
      const lookup = phys(sym('orc_lookup'));
      const lookupLen = Number(sym('orc_lookup_end') - sym('orc_lookup'));
      writeSync(fd, Buffer.alloc(lookupLen, 0xff), 0, lookupLen, lookup);
      const ipAt = sym('__start_orc_unwind_ip');
      const n = Number((sym('__stop_orc_unwind_ip') - ipAt) / 4n);
      const ips = Buffer.alloc(n * 4);
      readSync(fd, ips, 0, n * 4, phys(ipAt));
      const [from, to] = [sym('__sched_text_start'), sym('__sched_text_end')];
      const orc = phys(sym('__start_orc_unwind'));
      // the 6.1 (end-bit) layout: sp_offset 0x7ff0, sp_reg SP (5), type CALL (0)
      const bad = Buffer.from([0xf0, 0x7f, 0, 0, 5, 0]);
      let hit = 0;
      for (let i = 0; i < n; i++) {
        const ip = ipAt + BigInt(i * 4) + BigInt(ips.readInt32LE(i * 4));
        if (ip >= from && ip < to) {
          writeSync(fd, bad, 0, 6, orc + i * 6);
          hit++;
        }
      }
      expect(hit).toBeGreaterThan(10);
    } finally {
      closeSync(fd);
    }
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('bt --state D: every trace ends bounded, says it is partial, and still finds the frames below the damage', () => {
    const truth = JSON.parse(readFileSync(hungGuest.truth, 'utf8'));
    const r = run(['bt', '--state', 'D', '--ram', ram, '--json', '--no-cache']);
    expect(r.status, r.stderr).toBe(3);
    const bt = JSON.parse(r.stdout);
    expect(bt.warnings.some((w: string) => w.includes('orc_lookup'))).toBe(true);
    for (const t of bt.tasks) {
      expect(t.recovered.length, `${t.comm}`).toBeGreaterThan(0);
      expect(bt.warnings.some((w: string) => w.startsWith(`${t.comm} (${t.pid}): partial trace`)), `${t.comm}`).toBe(true);
    }
    for (const w of truth.scenario.hung.writers) {
      const t = bt.tasks.find((x: Truth) => x.pid === w.pid);
      expect(t.frames.length).toBeLessThanOrEqual(128);
      expect(t.frames[0].reliable).toBe(true);
      expect(t.frames.slice(1).some((f: Truth) => f.reliable)).toBe(false);
      // below the damaged scheduler frames the scan resumes and ORC finds the syscall path again
      const names = t.frames.map((f: Truth) => f.function);
      expect(containsRun(names, (w.stack as Truth[]).slice(-3).map((f) => f.symbol)), names.join(' ')).toBe(true);
    }
    expect(r.stderr).toMatch(/warning: .*partial trace/);
  });
});
