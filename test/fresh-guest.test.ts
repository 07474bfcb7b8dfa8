// Drift check: a guest built fresh by CI from today's newest Debian 6.1 kernel package, compared with its own in-guest truth.
// CI sets NEARFIELD_FRESH_GUEST (see .ci/run); a developer can build one with `node images/build-guest.mjs --out DIR`.

import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from './walkers-helpers.js';

const dir = process.env.NEARFIELD_FRESH_GUEST;
const present = dir !== undefined && existsSync(join(dir, 'truth.json'));

describe.skipIf(!dir)('fresh guest from the current kernel package (NEARFIELD_FRESH_GUEST)', () => {
  it('was built', () => {
    expect(present, `no truth.json in ${dir}: the guest build failed (see CI output above)`).toBe(true);
  });

  const truth = present ? JSON.parse(readFileSync(join(dir!, 'truth.json'), 'utf8')) : undefined;
  const json = (args: string[]) => {
    const r = run([...args, dir!, '--json', '--no-cache']);
    expect(r.status, r.stderr).toBe(0);
    return JSON.parse(r.stdout);
  };

  it.runIf(present)('kernel: release and banner are the guest\'s', () => {
    const k = json(['kernel']);
    expect(k.release).toBe(truth.uname.release);
    expect(k.banner).toContain(truth.uname.version);
  });

  it.runIf(present)('ps: the same PIDs with the same comm, ppid and uid', () => {
    const ps = json(['ps']);
    const ours = new Map<number, { comm: string; ppid: number; uid: number }>(ps.tasks.map((t: { pid: number }) => [t.pid, t]));
    expect([...ours.keys()].sort((a, b) => a - b)).toEqual(truth.processes.map((p: { pid: number }) => p.pid).sort((a: number, b: number) => a - b));
    for (const p of truth.processes) {
      const o = ours.get(p.pid)!;
      // A workqueue worker's name carries the last workqueue it ran ("kworker/1:1-events"), which moves between print and pause.
      const stable = (comm: string) => (comm.startsWith('kworker/') ? comm.split('-')[0] : comm);
      expect(stable(o.comm), `pid ${p.pid}`).toBe(stable(p.comm));
      expect(o.ppid, `pid ${p.pid}`).toBe(p.ppid);
      expect(o.uid, `pid ${p.pid}`).toBe(p.uid);
    }
  });

  it.runIf(present)('report: MemTotal, buddy zones and the rootfs statfs are the guest\'s', () => {
    const [r] = json(['report']);
    expect(r.sections.meminfo.fields.find((f: { name: string }) => f.name === 'MemTotal').value).toBe(truth.meminfo.MemTotal);
    expect(r.sections.buddyinfo.zones.map((z: { zone: string }) => z.zone)).toEqual(truth.buddyinfo.map((z: { zone: string }) => z.zone));
    const fs = r.sections.statfs;
    expect(fs.df.sizeBytes).toBe(truth.statfs.f_blocks * truth.statfs.f_bsize);
    expect(fs.df.availBytes).toBe(truth.statfs.f_bavail * truth.statfs.f_bsize);
    expect(fs.df.inodesFree).toBe(truth.statfs.f_ffree);
    expect(fs.mountpoint).toBe(truth.mounts.find((m: { fstype: string }) => m.fstype === 'ext4').mountpoint);
  });
});
