// `nearfield snapshot --qmp` against real QEMUs (TCG, no guest OS: SeaBIOS with a RAM file): a running VM is stopped
// and resumed; one its operator paused, one QEMU stopped on an I/O error (a blkdebug drive failing every read with
// rerror=stop: SeaBIOS's first boot read stops the VM), and one never started (-S) are copied and left as they were.

import { describe, expect, it, beforeAll, afterAll, afterEach } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { createConnection } from 'node:net';
import { existsSync, mkdtempSync, rmSync, writeFileSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './walkers-helpers.js';

let work: string;
const started: ChildProcess[] = [];

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'nf-snap-qemu-'));
});

// Each test's QEMU ends with it (TCG spins a CPU while SeaBIOS waits for a boot disk).
afterEach(() => {
  for (const p of started.splice(0)) if (p.exitCode === null) p.kill('SIGKILL');
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

/** One QMP command on a fresh connection; its `return`. */
function qmp(socket: string, execute: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const conn = createConnection(socket);
    let buf = '';
    let step = 0;
    const timer = setTimeout(() => { conn.destroy(); reject(new Error(`QMP ${execute}: no reply`)); }, 10_000);
    conn.on('data', (d) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const msg = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        if ('event' in msg) continue;
        if (step === 0) conn.write('{"execute":"qmp_capabilities"}\n');
        else if (step === 1) conn.write(JSON.stringify({ execute }) + '\n');
        else {
          clearTimeout(timer);
          conn.destroy();
          if (msg.error) reject(new Error(`QMP ${execute}: ${msg.error.desc}`));
          else resolve(msg.return ?? {});
        }
        step++;
      }
    });
    conn.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

const status = async (socket: string) => (await qmp(socket, 'query-status')).status as string;

async function waitFor(cond: () => Promise<boolean>, what: string, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      if (await cond()) return;
    } catch {
      // the socket may not be there yet
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A QEMU pc with 32 MiB of RAM in a file (what nearfield copies) and a QMP socket; `failingDisk` adds a virtio
 *  disk whose every read fails (blkdebug, errno 5) with rerror=stop. */
async function startQemu(name: string, opts: { prelaunch?: boolean; failingDisk?: boolean } = {}): Promise<{ socket: string; ram: string }> {
  const ram = join(work, `${name}.ram`);
  const socket = join(work, `${name}.qmp`);
  truncateSync(writeAndReturn(ram), 32 << 20);
  const args = [
    '-machine', 'pc,memory-backend=ram0', '-object', `memory-backend-file,id=ram0,size=32M,mem-path=${ram},share=on`, '-m', '32M',
    '-nodefaults', '-display', 'none', '-accel', 'tcg', '-qmp', `unix:${socket},server=on,wait=off`,
  ];
  if (opts.prelaunch) args.push('-S');
  if (opts.failingDisk) {
    const disk = join(work, `${name}.img`);
    truncateSync(writeAndReturn(disk), 1 << 20);
    const conf = join(work, `${name}.blkdebug`);
    writeFileSync(conf, '[inject-error]\nevent = "read_aio"\nerrno = "5"\n');
    args.push('-drive', `file=blkdebug:${conf}:${disk},format=raw,if=none,id=d0,rerror=stop,werror=stop`, '-device', 'virtio-blk-pci,drive=d0,bootindex=1');
  }
  const p = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  started.push(p);
  let stderr = '';
  p.stderr!.on('data', (d) => (stderr += d));
  await waitFor(async () => existsSync(socket) && (await status(socket)) !== undefined, `QEMU ${name} (${stderr.trim()})`);
  return { socket, ram };
}

function writeAndReturn(path: string): string {
  writeFileSync(path, '');
  return path;
}

function snapshot(name: string, socket: string, ram: string) {
  const r = run(['snapshot', join(work, `snap-${name}`), '--ram', ram, '--qmp', socket, '--json']);
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { consistency: string; pause: Record<string, unknown> };
}

describe('snapshot --qmp on real QEMUs', () => {
  it('a running VM is stopped for the copy and runs on', async () => {
    const { socket, ram } = await startQemu('running');
    expect(await status(socket)).toBe('running');
    const m = snapshot('running', socket, ram);
    expect(m.pause).toMatchObject({ stateBefore: 'running', pausedByNearfield: true });
    expect(m.pause.windowMs).toBeGreaterThan(0);
    expect(await status(socket)).toBe('running');
  });

  it('a VM its operator paused stays paused', async () => {
    const { socket, ram } = await startQemu('operator-paused');
    await qmp(socket, 'stop');
    expect(await status(socket)).toBe('paused');
    const m = snapshot('paused', socket, ram);
    expect(m.consistency).toBe('paused');
    expect(m.pause).toMatchObject({ stateBefore: 'paused', pausedByNearfield: false, windowMs: null });
    expect(await status(socket)).toBe('paused');
  });

  it('a VM stopped on an I/O error stays stopped', async () => {
    const { socket, ram } = await startQemu('io-error', { failingDisk: true });
    await waitFor(async () => (await status(socket)) === 'io-error', 'SeaBIOS to hit the failing disk');
    const m = snapshot('io-error', socket, ram);
    expect(m.pause).toMatchObject({ stateBefore: 'io-error', pausedByNearfield: false, windowMs: null });
    expect(await status(socket)).toBe('io-error');
  });

  it('a VM that was never started (-S) is not started', async () => {
    const { socket, ram } = await startQemu('prelaunch', { prelaunch: true });
    expect(await status(socket)).toBe('prelaunch');
    const m = snapshot('prelaunch', socket, ram);
    expect(m.pause).toMatchObject({ stateBefore: 'prelaunch', pausedByNearfield: false });
    expect(await status(socket)).toBe('prelaunch');
  });
});
