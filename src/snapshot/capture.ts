// Consistent capture of a VM: pause (QMP / Firecracker API), copy RAM (and disk) sparse/reflink, resume, write manifest last.

import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, open, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, extname, join, resolve } from 'node:path';
import { NearfieldError } from '../errors.js';
import { SCHEMA_VERSION, type CopiedFile, type SnapshotManifest } from '../generated/records.js';
import { native } from '../native/gateway.js';
import { firecrackerSetState, firecrackerState } from './firecracker.js';
import { QmpClient } from './qmp.js';

export type PauseMethod =
  | { kind: 'qmp'; socket: string }
  | { kind: 'firecracker'; socket: string }
  | { kind: 'live' } // no pause: the copy may be torn; readers check and say so
  | { kind: 'none' }; // the VM is already paused or stopped

export interface SnapshotRequest {
  ram?: string;
  disk?: string;
  out: string;
  pause: PauseMethod;
  ramLayout?: string;
  /** Copy the disk inside the pause window (consistent with RAM) rather than after resuming. */
  diskInPause: boolean;
  sha256: boolean;
  onProgress?: (label: string, done: number, total: number) => void;
}

export type { SnapshotManifest };

/**
 * Pauses and resumes one VM, touching only what it changed: a VM found running is stopped and, after the copy,
 * resumed — if it is still merely paused then (not stopped on an I/O error meanwhile). A VM found paused by its
 * operator, stopped on an error, or not started is copied as it is and left so. Resume is idempotent so every
 * exit path can call it.
 */
interface Pauser {
  /** The VM's state before the snapshot, as the VMM names it ("running", "paused", "io-error" … / "Running"). */
  stateBefore: string | null;
  /** Whether nearfield stopped the VM (and so resumes it). */
  pausedByUs: boolean;
  /** Things worth saying afterwards (a VM left stopped because its state changed). */
  notes: string[];
  pause(): Promise<void>;
  resume(): Promise<void>;
}

async function makePauser(method: PauseMethod): Promise<Pauser> {
  switch (method.kind) {
    case 'qmp': {
      const qmp = await QmpClient.connect(method.socket);
      const status = async () => {
        const r = (await qmp.execute('query-status')) as { status?: unknown; running?: unknown };
        if (typeof r?.status !== 'string' || typeof r.running !== 'boolean') throw new NearfieldError('IO', 'query-status gave no status', method.socket);
        return { status: r.status, running: r.running };
      };
      let before: { status: string; running: boolean };
      try {
        before = await status();
      } catch (e) {
        qmp.close();
        throw e;
      }
      const p: Pauser = {
        stateBefore: before.status,
        pausedByUs: false,
        notes: [],
        pause: async () => {
          if (!before.running) return; // paused by its operator, stopped on an error, or not started: copy it as it is
          try {
            await qmp.execute('stop');
          } catch (e) {
            qmp.close();
            throw e;
          }
          p.pausedByUs = true;
        },
        resume: async () => {
          try {
            if (!p.pausedByUs) return;
            p.pausedByUs = false;
            // Only what we stopped: a VM that hit an I/O error (werror=stop) or worse while paused stays stopped.
            const now = await status();
            if (now.status === 'paused') await qmp.execute('cont');
            else p.notes.push(`the VM went to "${now.status}" while paused for the copy; left it so (nearfield resumes only a VM it paused)`);
          } finally {
            qmp.close();
          }
        },
      };
      return p;
    }
    case 'firecracker': {
      const stateBefore = await firecrackerState(method.socket);
      const p: Pauser = {
        stateBefore,
        pausedByUs: false,
        notes: [],
        pause: async () => {
          if (stateBefore !== 'Running') return; // already paused, or not started: copy it as it is
          await firecrackerSetState(method.socket, 'Paused');
          p.pausedByUs = true;
        },
        resume: async () => {
          if (!p.pausedByUs) return;
          p.pausedByUs = false;
          const now = await firecrackerState(method.socket);
          if (now === 'Paused') await firecrackerSetState(method.socket, 'Resumed');
          else p.notes.push(`the VM went to "${now}" during the copy; left it so`);
        },
      };
      return p;
    }
    default:
      return { stateBefore: null, pausedByUs: false, notes: [], pause: async () => {}, resume: async () => {} };
  }
}

/** Capture a snapshot directory. Sources are only read; `out` appears only once complete (rename of a .partial dir). */
export async function captureSnapshot(req: SnapshotRequest): Promise<SnapshotManifest> {
  const started = performance.now();
  if (!req.ram && !req.disk) throw new NearfieldError('USAGE', 'nothing to capture: give --ram and/or --disk');
  const out = resolve(req.out);
  if (existsSync(out)) throw new NearfieldError('USAGE', 'the snapshot directory already exists; choose a new one', out);
  if (!existsSync(dirname(out))) throw new NearfieldError('NOT_FOUND', 'the parent directory does not exist', dirname(out));
  for (const src of [req.ram, req.disk]) {
    if (src && !existsSync(src)) throw new NearfieldError('NOT_FOUND', 'no such file', src);
  }
  const partial = `${out}.partial-${process.pid}`;
  await mkdir(partial);

  const pauser = await makePauser(req.pause).catch(async (e) => { await rm(partial, { recursive: true, force: true }); throw e; });
  const copies: InstanceType<ReturnType<typeof native>['FileCopy']>[] = [];
  const onSignal = () => { for (const c of copies) c.cancel(); };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  let pausedAt: number | null = null;
  let resumedAt: number | null = null;
  try {
    const ramName = req.ram ? 'ram.raw' : undefined;
    const diskName = req.disk ? `disk${extname(req.disk) || '.img'}` : undefined;
    const copyOne = (label: string, src: string, name: string) => {
      const job = new (native().FileCopy)(resolve(src), join(partial, name));
      copies.push(job);
      return trackProgress(job, label, src, name, req.onProgress);
    };

    await pauser.pause();
    pausedAt = performance.now();
    const wePaused = pauser.pausedByUs;
    const inPause: Promise<CopiedFile>[] = [];
    if (req.ram && ramName) inPause.push(copyOne('ram', req.ram, ramName));
    if (req.disk && diskName && req.diskInPause) inPause.push(copyOne('disk', req.disk, diskName));
    let copied: CopiedFile[];
    try {
      copied = await Promise.all(inPause);
    } finally {
      await pauser.resume();
      resumedAt = performance.now();
    }
    if (req.disk && diskName && !req.diskInPause) copied.push(await copyOne('disk', req.disk, diskName));

    for (const f of copied) {
      const handle = await open(join(partial, f.file), 'r+');
      await handle.sync();
      await handle.close();
      if (req.sha256) f.sha256 = await sha256File(join(partial, f.file));
    }
    const ram = req.ram ? copied.find((f) => f.file === ramName) : undefined;
    const disk = req.disk ? copied.find((f) => f.file === diskName) : undefined;
    const isLive = req.pause.kind === 'live';
    // The window is ours only when we paused: a VM that was already stopped was not paused by the snapshot.
    const measured = wePaused && pausedAt !== null && resumedAt !== null;
    const manifest: SnapshotManifest = {
      schemaVersion: SCHEMA_VERSION,
      nearfieldSnapshot: 2,
      created: new Date().toISOString(),
      consistency: isLive ? 'live' : 'paused',
      pause: {
        method: req.pause.kind,
        windowMs: measured ? round(resumedAt! - pausedAt!) : null,
        pausedAt: measured ? wallClock(pausedAt!) : null,
        resumedAt: measured ? wallClock(resumedAt!) : null,
        // The copy done while paused (or would-be paused): what bounds the pause window.
        copyInPauseMs: pausedAt !== null && resumedAt !== null ? round(resumedAt - pausedAt) : 0,
        stateBefore: pauser.stateBefore,
        pausedByNearfield: wePaused,
        notes: pauser.notes,
      },
      ...(ram ? { ram: { ...ram, layout: req.ramLayout ?? 'auto' } } : {}),
      // a live copy was taken while the VM ran, whatever the order of the copies
      ...(disk ? { disk: { ...disk, captured: isLive ? 'live' as const : req.diskInPause ? 'in-pause' as const : 'after-resume' as const } } : {}),
      totalMs: round(performance.now() - started),
    };
    await writeFile(join(partial, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    await rename(partial, out);
    return manifest;
  } catch (e) {
    await pauser.resume().catch(() => {});
    await rm(partial, { recursive: true, force: true });
    throw e;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function trackProgress(
  job: { start(): Promise<{ method: string; size: number; dataBytes: number; millis: number }>; bytesDone(): number },
  label: string,
  src: string,
  name: string,
  onProgress: SnapshotRequest['onProgress'],
): Promise<CopiedFile> {
  const total = (await stat(src)).size;
  const timer = onProgress ? setInterval(() => onProgress(label, job.bytesDone(), total), 100) : undefined;
  try {
    const r = await job.start();
    onProgress?.(label, total, total);
    return { file: name, source: resolve(src), sizeBytes: r.size, copy: { method: r.method, dataBytes: r.dataBytes, ms: round(r.millis) } };
  } finally {
    if (timer) clearInterval(timer);
  }
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

const round = (ms: number) => Math.round(ms * 10) / 10;
const wallClock = (perfMs: number) => new Date(performance.timeOrigin + perfMs).toISOString();
