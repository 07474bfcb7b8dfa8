// `nearfield snapshot --qmp` against a real running QEMU guest (TCG): the guest runs on after the snapshot,
// and the snapshot reports the processes the guest printed as its own truth.

import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { createConnection } from 'node:net';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { json, root, run, type Truth } from './walkers-helpers.js';

interface Running { pid: number; qmp: string; ram: string; disk: string }

let work: string;
let guest: Running | undefined;
let truth: { processes: { pid: number; comm: string; state: string }[]; printer_pid: number; clocks: { boottime_ns: number } };
let buildLog = '';

/** One QMP command on a fresh connection (greeting, capabilities, command). */
async function qmp(socket: string, command: string, args?: Record<string, unknown>): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const conn = createConnection(socket);
    let buf = '';
    let step = 0;
    conn.on('data', (d) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const msg = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        if ('event' in msg) continue;
        if (step === 0) conn.write('{"execute":"qmp_capabilities"}\n');
        else if (step === 1) conn.write(JSON.stringify(args ? { execute: command, arguments: args } : { execute: command }) + '\n');
        else {
          conn.destroy();
          resolve(msg.return ?? msg);
        }
        step++;
      }
    });
    conn.on('error', reject);
  });
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'nf-live-'));
  const out = join(work, 'guest');
  const code = await new Promise<number | null>((resolve) => {
    const b = spawn(process.execPath, [join(root, 'images', 'build-guest.mjs'), '--out', out, '--keep-running', '--timeout', '400'], { stdio: ['ignore', 'pipe', 'pipe'] });
    b.stdout.on('data', (d) => (buildLog += d));
    b.stderr.on('data', (d) => (buildLog += d));
    b.on('exit', resolve);
  });
  if (code === 0 && existsSync(join(out, 'running.json'))) {
    guest = JSON.parse(readFileSync(join(out, 'running.json'), 'utf8')) as Running;
    truth = JSON.parse(readFileSync(join(out, 'truth.json'), 'utf8'));
  }
}, 600_000);

afterAll(async () => {
  if (guest) {
    await qmp(guest.qmp, 'quit').catch(() => {});
    try { process.kill(guest.pid, 'SIGKILL'); } catch { /* already gone */ }
  }
  rmSync(work, { recursive: true, force: true });
});

describe('snapshot of a live QEMU guest over QMP', () => {
  it('the guest booted and was left running', async () => {
    expect(guest, `build-guest --keep-running failed:\n${buildLog.slice(-3000)}`).toBeDefined();
    expect((await qmp(guest!.qmp, 'query-status')).status).toBe('running');
  });

  it('pauses only for the copy, resumes the guest, and the snapshot holds the guest\'s processes', async () => {
    expect(guest).toBeDefined();
    const snap = join(work, 'snap');
    const r = run(['snapshot', snap, '--ram', guest!.ram, '--disk', guest!.disk, '--qmp', guest!.qmp, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const m = JSON.parse(r.stdout);
    expect(m.consistency).toBe('paused');
    expect(m.pause.windowMs).toBeGreaterThan(0);
    // The guest runs on after the snapshot.
    expect((await qmp(guest!.qmp, 'query-status')).status).toBe('running');

    const ps = run(['ps', snap, '--json', '--no-cache']);
    expect(ps.status, ps.stderr).toBe(0);
    const tasks = JSON.parse(ps.stdout).tasks as { pid: number; comm: string; state: string }[];
    // The guest printed its truth and went quiet (the printer sleeps in pause()); the snapshot came later.
    expect(tasks.map((t) => t.pid).sort((a, b) => a - b)).toEqual(truth.processes.map((p) => p.pid).sort((a, b) => a - b));
    expect(tasks.find((t) => t.pid === truth.printer_pid)?.state).toBe('S');
    const big = tasks.find((t) => t.comm === 'nf-big');
    expect(big).toBeDefined();

    const up = run(['uptime', snap, '--json']);
    expect(up.status, up.stderr).toBe(0);
    const u = JSON.parse(up.stdout);
    expect(u.uptimeSeconds).toBeGreaterThan(truth.clocks.boottime_ns / 1e9);
  });

  it('bt --qmp on the paused guest, read live from QEMU: the registers from its monitor give the same CPU traces as its ELF core', async () => {
    expect(guest).toBeDefined();
    await qmp(guest!.qmp, 'stop');
    try {
      const core = join(work, 'core.elf');
      await qmp(guest!.qmp, 'dump-guest-memory', { paging: false, protocol: `file:${core}` });
      const live = run(['bt', '--cpu', '--qmp', guest!.qmp, '--json']);
      expect(live.status, live.stderr).toBe(0);
      const viaQmp = JSON.parse(live.stdout);
      const viaCore = json('bt', core, ['--cpu']);
      const view = (l: Truth) => ({
        cpus: l.cpus.map((c: Truth) => [c.cpu, c.ip, c.userMode]),
        tasks: l.tasks.map((t: Truth) => [t.pid, t.end, t.frames.map((f: Truth) => `${f.address} ${f.function} ${f.via}`)]),
      });
      expect(viaQmp.cpus.every((c: Truth) => c.registers === 'QMP')).toBe(true);
      expect(viaCore.cpus.every((c: Truth) => c.registers === 'ELF core')).toBe(true);
      expect(view(viaQmp)).toEqual(view(viaCore));
      // a task in the kernel on a CPU has a trace; one in user mode says where it was
      for (const t of viaQmp.tasks) expect(t.frames.length > 0 || /user mode/.test(t.end ?? ''), `${t.comm}: ${t.note}`).toBe(true);
    } finally {
      await qmp(guest!.qmp, 'cont');
    }
    // a running VM is refused: its registers move under us
    const r = run(['bt', '--cpu', '--qmp', guest!.qmp]);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/pause it first/);
    // --pause stops it for the read and lets it run on after
    const paused = run(['bt', '--cpu', '--qmp', guest!.qmp, '--pause', '--json']);
    expect(paused.status, paused.stderr).toBe(0);
    expect(JSON.parse(paused.stdout).cpus.every((c: Truth) => c.registers === 'QMP')).toBe(true);
    expect((await qmp(guest!.qmp, 'query-status')).status).toBe('running');
  });
});
