// triage's verdicts from walker records: the memory, disk and load lines, lock chains followed to their root (and a
// cycle named as a deadlock), severity order. (On real guests: stacks.test.ts, against the hung and panicked guests.)

import { describe, expect, it } from 'vitest';
import { buildTriage, type TriageInputs } from '../src/cli/commands/triage.js';
import type { FilesystemUsage, Health, HungTask, HungTasks, Meminfo, Uptime } from '../src/generated/records.js';

const none: TriageInputs = { vm: 'vm', health: null, hung: null, stacks: null, meminfo: null, uptime: null, log: null, statfs: null, warnings: [] };

function health(over: Partial<Health['panic']> = {}, oomKills = 0): Health {
  return {
    schemaVersion: 1, cpus: [], warnings: [], hung: null,
    panic: { panicked: false, panicCpu: null, message: null, oopsCount: 0, oops: null, oopsRip: null, taintedMask: '0x0', tainted: 0, taintLetters: '', ...over },
    log: { records: 10, errors: 0, firstError: null, oomKills, hungTaskReports: 0, panicSeq: null },
  };
}

function task(pid: number, comm: string, waitsOn: Partial<HungTask['waitsOn']>, verdict = 'reported'): HungTask {
  return {
    pid, tgid: pid, comm, state: 'D', taskState: 2, address: `0x${pid.toString(16)}`, blockedForNs: '14000000000', stack: null,
    khungtaskd: { verdict, note: '', secondsSinceSwitch: 14, reportedSeconds: null },
    waitsOn: { kind: 'wchan', description: '?', address: null, owner: null, wantsWrite: null, writerLocked: null, readers: null, queuedBehind: [], mmapLockOf: null, fstype: null, device: null, mountpoints: [], frozenLevel: null, ...waitsOn },
  };
}

const hung = (tasks: HungTask[]): HungTasks => ({ schemaVersion: 1, timeoutSecs: 120, warningsLeft: 10, checkIntervalSecs: 0, panicOnHung: 0, hz: 250, jiffies: '1', clockNs: '1', tasks, frozen: [], warnings: [] });
const ref = (pid: number, comm: string) => ({ pid, comm, address: `0x${pid.toString(16)}` });

describe('triage verdicts', () => {
  it('a healthy guest: one ok line', () => {
    const t = buildTriage({ ...none, health: health(), hung: hung([]) });
    expect(t.verdicts).toEqual([{ severity: 'ok', kind: 'ok', text: 'no panic, no task blocked in D; memory, disk and load normal' }]);
  });

  it('panic first, with the taint letters; then blocked tasks; memory, disk and load after', () => {
    const meminfo = { schemaVersion: 1, warnings: [], fields: [{ name: 'MemTotal', value: 1000, unit: 'kB' }, { name: 'MemAvailable', value: 20, unit: 'kB' }] } as Meminfo;
    const uptime = { loadavg: ['24.10', '20.00', '9.00'], onlineCpus: [0, 1], nrRunning: 24 } as unknown as Uptime;
    const statfs = { device: 'disk.raw', mountpoint: '/', df: { usePercent: 99, inodesUsePercent: 10, availBytes: 4096 }, superblock: { lastMountedOn: '/' } } as unknown as FilesystemUsage;
    const t = buildTriage({
      ...none,
      health: health({ panicked: true, panicCpu: 1, message: 'Fatal exception', taintLetters: 'D', oops: 'Oops: 0002 [#1] PREEMPT SMP NOPTI', oopsRip: 'RIP: 0010:foo+0x16/0x20' }, 3),
      hung: hung([task(176, 'dd', { kind: 'frozen-fs', address: '0xsb', fstype: 'ext4', mountpoints: ['/mnt'] }), task(177, 'sh', { kind: 'frozen-fs', address: '0xsb', fstype: 'ext4', mountpoints: ['/mnt'] })]),
      meminfo, uptime, statfs,
    });
    expect(t.verdicts.map((v) => v.text)).toEqual([
      'kernel PANIC on CPU 1: Fatal exception; tainted D',
      'Oops: 0002 [#1] PREEMPT SMP NOPTI at foo+0x16/0x20',
      '2 tasks blocked 14 s on frozen ext4 /mnt: dd (176), sh (177)',
      'memory: MemAvailable 2 %, 3 OOM kills in the log',
      '/ 99 % full',
      'load 24 on 2 CPUs',
    ]);
    expect(t.memory).toEqual({ memTotalKib: 1000, memAvailableKib: 20, availablePercent: 2, oomKills: 3 });
  });

  it('lock chains are followed to their root, and a cycle is called a deadlock', () => {
    const a = task(10, 'a', { kind: 'mutex', owner: ref(11, 'b') });
    const b = task(11, 'b', { kind: 'rwsem', wantsWrite: true, writerLocked: false, readers: 1, owner: ref(12, 'c') }, 'ignored');
    const c = task(12, 'c', { kind: 'frozen-fs', address: '0xsb', fstype: 'ext4', mountpoints: ['/'] });
    const x = task(20, 'x', { kind: 'mutex', owner: ref(21, 'y') });
    const y = task(21, 'y', { kind: 'mutex', owner: ref(20, 'x') });
    const t = buildTriage({ ...none, hung: hung([a, b, c, x, y]) });
    const text = t.verdicts.map((v) => v.text);
    expect(text).toContain('blocked 14 s: a (10) → mutex held by b (11) → rwsem for write held for read by c (12) → frozen ext4 /');
    expect(text).toContain('blocked 14 s: x (20) → mutex held by y (21) → mutex held by x (20) → (a cycle: deadlock)');
    // b is killable (khungtaskd ignores it): its own line is a warning, after the critical ones
    const bLine = t.verdicts.find((v) => v.text.startsWith('blocked 14 s: b (11)'))!;
    expect(bLine.severity).toBe('warning');
    expect(t.verdicts.findIndex((v) => v === bLine)).toBeGreaterThan(t.verdicts.findIndex((v) => v.text.startsWith('blocked 14 s: a (10)')));
  });
});
