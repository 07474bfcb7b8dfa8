// `nearfield snapshot`: copies of the sample guest read back as the guest's truth; pause/resume over QMP and the
// Firecracker API (protocol peers run in the test), resume on failure, no half snapshot, sources untouched.

import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { createServer as createNetServer, type Server } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, openSync, writeSync, closeSync, ftruncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, readTruth, run, sample, type Sample, type Truth } from './walkers-helpers.js';

let s: Sample & { disk: string };
let truth: Truth;
let work: string;

beforeAll(async () => {
  s = (await sample()) as typeof s;
  truth = readTruth(s);
  work = mkdtempSync(join(tmpdir(), 'nf-snap-test-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

/**
 * A QMP peer speaking the protocol's greeting/capabilities/command exchange, recording what it was asked. It keeps a
 * run state as QEMU does: query-status answers it; stop makes a running VM "paused" (or `afterStop`, a VM that hit
 * an I/O error while stopped), cont makes it "running". `status` is the state it starts in.
 */
function fakeQmp(socket: string, opts: { failOn?: string; status?: string; afterStop?: string } = {}): Promise<{ server: Server; log: string[]; state: () => string }> {
  const log: string[] = [];
  let status = opts.status ?? 'running';
  const server = createNetServer((conn) => {
    conn.write(JSON.stringify({ QMP: { version: { qemu: { major: 7, minor: 2, micro: 0 } }, capabilities: [] } }) + '\r\n');
    let buf = '';
    conn.on('data', (d) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const msg = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        log.push(msg.execute);
        const reply = (r: unknown) => conn.write(JSON.stringify({ return: r }) + '\r\n');
        if (msg.execute === opts.failOn) conn.write(JSON.stringify({ error: { class: 'GenericError', desc: `refused ${opts.failOn}` } }) + '\r\n');
        else if (msg.execute === 'query-status') reply({ status, singlestep: false, running: status === 'running' });
        else if (msg.execute === 'stop') {
          if (status === 'running') status = opts.afterStop ?? 'paused';
          conn.write(JSON.stringify({ timestamp: { seconds: 0, microseconds: 0 }, event: 'STOP' }) + '\r\n');
          reply({});
        } else if (msg.execute === 'cont') {
          status = 'running';
          reply({});
        } else reply({});
      }
    });
  });
  return new Promise((resolve) => server.listen(socket, () => resolve({ server, log, state: () => status })));
}

/** A Firecracker API peer: GET / (describeInstance) gives `state`; PATCH /vm changes it; every request is logged. */
function fakeFirecracker(socket: string, initial: string): Promise<{ server: ReturnType<typeof createHttpServer>; log: string[]; state: () => string }> {
  const log: string[] = [];
  let state = initial;
  const server = createHttpServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      if (req.method === 'GET' && req.url === '/') {
        log.push('GET /');
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ id: 'vm0', state, vmm_version: '1.7.0', app_name: 'Firecracker' }));
        return;
      }
      const want = JSON.parse(body).state as string;
      log.push(`${req.method} ${req.url} ${want}`);
      state = want === 'Resumed' ? 'Running' : want;
      res.writeHead(204).end();
    });
  });
  return new Promise((resolve) => server.listen(socket, () => resolve({ server, log, state: () => state })));
}

describe('snapshot of the sample guest', () => {
  it('copies RAM and disk sparse, writes the manifest, and the copy reads as the guest', () => {
    const before = [sha(s.ram), sha(s.disk)];
    const out = join(work, 'snap-paused');
    const r = run(['snapshot', out, '--ram', s.ram, '--disk', s.disk, '--paused', '--sha256', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const m = JSON.parse(r.stdout);
    expect(m.nearfieldSnapshot).toBe(2);
    expect(m.schemaVersion).toBe(1);
    expect(m.ram.sha256).toBe(before[0]);
    expect(m.disk.sha256).toBe(before[1]);
    expect(['reflink', 'sparse-copy']).toContain(m.ram.copy.method);
    if (m.ram.copy.method === 'sparse-copy') expect(statSync(join(out, 'ram.raw')).blocks * 512).toBeLessThan(statSync(s.ram).size);
    expect(JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'))).toEqual(m);
    expect([sha(s.ram), sha(s.disk)]).toEqual(before); // sources untouched

    const ps = run(['ps', out, '--json']);
    expect(ps.status, ps.stderr).toBe(0);
    expect(JSON.parse(ps.stdout).tasks.map((t: { pid: number }) => t.pid).sort((a: number, b: number) => a - b))
      .toEqual(truth.processes.map((p: { pid: number }) => p.pid).sort((a: number, b: number) => a - b));
    const df = run(['df', out, '--json']);
    expect(df.status, df.stderr).toBe(0);
    expect(df.stdout).toContain(String(truth.statfs.f_bavail));
  });

  it('refuses an existing directory and a missing source, leaving nothing behind', () => {
    const out = join(work, 'exists');
    writeFileSync(join(work, 'marker'), '');
    const again = run(['snapshot', work, '--ram', s.ram, '--paused']);
    expect(again.status).toBe(2);
    expect(again.stderr).toMatch(/^nearfield: snapshot: the snapshot directory already exists/);
    const missing = run(['snapshot', out, '--ram', join(work, 'nope.raw'), '--paused']);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain('nope.raw');
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(work).filter((n) => n.includes('.partial-'))).toEqual([]);
  });

  it('needs exactly one way to be consistent', () => {
    const r = run(['snapshot', join(work, 'x'), '--ram', s.ram]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--qmp SOCKET, --firecracker-api SOCKET, --paused or --live');
  });
});

describe('pausing over QMP', () => {
  it('stops, copies, continues, and measures the pause window', async () => {
    const sock = join(work, 'qmp.sock');
    const { server, log } = await fakeQmp(sock);
    try {
      const out = join(work, 'snap-qmp');
      const r = await runAsync(['snapshot', out, '--ram', s.ram, '--disk', s.disk, '--qmp', sock, '--json']);
      expect(r.status, r.stderr).toBe(0);
      // asks first, stops a running VM, and before resuming checks it is still merely paused
      expect(log).toEqual(['qmp_capabilities', 'query-status', 'stop', 'query-status', 'cont']);
      const m = JSON.parse(r.stdout);
      expect(m.consistency).toBe('paused');
      expect(m.pause.method).toBe('qmp');
      expect(m.pause.stateBefore).toBe('running');
      expect(m.pause.pausedByNearfield).toBe(true);
      expect(m.disk.captured).toBe('in-pause');
      expect(m.pause.windowMs).toBeGreaterThan(0);
      expect(m.pause.windowMs).toBeGreaterThanOrEqual(m.ram.copy.ms);
    } finally {
      server.close();
    }
  });

  it('resumes the VM when the copy fails, and leaves no snapshot', async () => {
    const sock = join(work, 'qmp2.sock');
    const { server, log } = await fakeQmp(sock);
    try {
      // A target directory on a path that cannot hold the copy: the RAM "file" is a directory.
      const out = join(work, 'snap-fail');
      const r = await runAsync(['snapshot', out, '--ram', s.ram, '--disk', work, '--qmp', sock]);
      expect(r.status).toBe(1);
      expect(log).toEqual(['qmp_capabilities', 'query-status', 'stop', 'query-status', 'cont']);
      expect(existsSync(out)).toBe(false);
      expect(readdirSync(work).filter((n) => n.includes('.partial-'))).toEqual([]);
    } finally {
      server.close();
    }
  });

  it('does not copy when QEMU refuses to stop', async () => {
    const sock = join(work, 'qmp3.sock');
    const { server, log } = await fakeQmp(sock, { failOn: 'stop' });
    try {
      const out = join(work, 'snap-refused');
      const r = await runAsync(['snapshot', out, '--ram', s.ram, '--qmp', sock]);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/refused stop/);
      expect(log).not.toContain('cont');
      expect(existsSync(out)).toBe(false);
    } finally {
      server.close();
    }
  });
});

describe('never resuming what nearfield did not pause', () => {
  // A VM its operator paused for forensics, one QEMU stopped on an I/O error (werror/rerror=stop) or an internal
  // error, one not yet started (-S): copied as it is, and left so. (test/snapshot-qemu.test.ts does the same
  // against a real QEMU for paused, io-error and prelaunch.)
  it.each(['paused', 'io-error', 'internal-error', 'prelaunch', 'guest-panicked'])('a VM found %s is copied without stop or cont', async (status) => {
    const sock = join(work, `qmp-${status}.sock`);
    const { server, log, state } = await fakeQmp(sock, { status });
    try {
      const out = join(work, `snap-found-${status}`);
      const r = await runAsync(['snapshot', out, '--ram', s.ram, '--disk', s.disk, '--qmp', sock, '--json']);
      expect(r.status, r.stderr).toBe(0);
      expect(log).toEqual(['qmp_capabilities', 'query-status']);
      expect(state()).toBe(status);
      const m = JSON.parse(r.stdout);
      expect(m.consistency).toBe('paused');
      expect(m.pause).toMatchObject({ method: 'qmp', stateBefore: status, pausedByNearfield: false, windowMs: null, pausedAt: null, resumedAt: null });
      expect(m.disk.captured).toBe('in-pause');
    } finally {
      server.close();
    }
  });

  it('a VM that stops on an I/O error while nearfield has it paused is left stopped, and says so', async () => {
    const sock = join(work, 'qmp-ioerr-during.sock');
    const { server, log, state } = await fakeQmp(sock, { afterStop: 'io-error' });
    try {
      const out = join(work, 'snap-ioerr-during');
      const r = await runAsync(['snapshot', out, '--ram', s.ram, '--qmp', sock, '--json']);
      expect(r.status, r.stderr).toBe(0);
      expect(log).toEqual(['qmp_capabilities', 'query-status', 'stop', 'query-status']);
      expect(state()).toBe('io-error');
      expect(r.stderr).toMatch(/^nearfield: note: the VM went to "io-error" while paused for the copy; left it so/m);
      expect(JSON.parse(r.stdout).pause.notes).toHaveLength(1);
    } finally {
      server.close();
    }
  });

  it('the manifest of a --live copy never says in-pause', () => {
    const out = join(work, 'snap-live');
    const r = run(['snapshot', out, '--ram', s.ram, '--disk', s.disk, '--live', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const m = JSON.parse(r.stdout);
    expect(m.consistency).toBe('live');
    expect(m.disk.captured).toBe('live');
    expect(m.pause).toMatchObject({ method: 'live', windowMs: null, pausedByNearfield: false, stateBefore: null });
  });
});

describe('pausing a Firecracker VM', () => {
  it('asks its state, PATCHes /vm Paused then Resumed around the copy', async () => {
    const sock = join(work, 'fc.sock');
    const { server, log, state } = await fakeFirecracker(sock, 'Running');
    try {
      const out = join(work, 'snap-fc');
      const r = await runAsync(['snapshot', out, '--ram', s.ram, '--firecracker-api', sock, '--ram-layout', 'firecracker', '--json']);
      expect(r.status, r.stderr).toBe(0);
      expect(log).toEqual(['GET /', 'PATCH /vm Paused', 'GET /', 'PATCH /vm Resumed']);
      expect(state()).toBe('Running');
      const m = JSON.parse(r.stdout);
      expect(m.ram.layout).toBe('firecracker');
      expect(m.pause).toMatchObject({ method: 'firecracker', stateBefore: 'Running', pausedByNearfield: true });
    } finally {
      server.close();
    }
  });

  it.each(['Paused', 'Not started'])('a Firecracker VM found %s is copied without a PATCH and left so', async (initial) => {
    const sock = join(work, `fc-${initial.replace(' ', '-')}.sock`);
    const { server, log, state } = await fakeFirecracker(sock, initial);
    try {
      const out = join(work, `snap-fc-${initial.replace(' ', '-')}`);
      const r = await runAsync(['snapshot', out, '--ram', s.ram, '--firecracker-api', sock, '--json']);
      expect(r.status, r.stderr).toBe(0);
      expect(log).toEqual(['GET /']);
      expect(state()).toBe(initial);
      expect(JSON.parse(r.stdout).pause).toMatchObject({ stateBefore: initial, pausedByNearfield: false, windowMs: null });
    } finally {
      server.close();
    }
  });
});

describe('interrupted snapshot', () => {
  it('Ctrl-C during a long copy resumes the VM and leaves no directory', async () => {
    const big = join(work, 'big.raw');
    const fd = openSync(big, 'w');
    const chunk = Buffer.alloc(8 << 20, 0xa5);
    for (let i = 0; i < 192; i++) writeSync(fd, chunk); // 1.5 GiB of data: long enough to interrupt
    closeSync(fd);
    const sock = join(work, 'qmp4.sock');
    const { server, log } = await fakeQmp(sock);
    try {
      const out = join(work, 'snap-int');
      const child = spawn(process.execPath, [cli, 'snapshot', out, '--ram', big, '--qmp', sock], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      await waitFor(() => log.includes('stop'), 10_000);
      child.kill('SIGINT');
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      expect(code, stderr).toBe(1);
      expect(stderr).toMatch(/cancelled/);
      expect(log).toEqual(['qmp_capabilities', 'query-status', 'stop', 'query-status', 'cont']);
      expect(existsSync(out)).toBe(false);
      expect(readdirSync(work).filter((n) => n.includes('.partial-'))).toEqual([]);
    } finally {
      server.close();
      ftruncateSync(openSync(big, 'r+'), 0);
    }
  });
});

function runAsync(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (status) => resolve({ status, stdout, stderr }));
  });
}

async function waitFor(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 5));
  }
}
