//! CLI-side handle on the libext2fs worker (wasm/worker.ts): request/response with timeouts, worker death as an error.

import { Worker } from 'node:worker_threads';
import { NearfieldError } from '../src/errors.js';
import {
  MAX_CHUNK, unpackListing, type DirListing, type DiskStats, type FileType, type FindResult, type MountInfo, type PackedListing, type Request,
  type ResponseEnvelope, type StatRecord, type WorkerErrorInfo,
} from './protocol.js';

const NATIVE_HINT = 'libext2fs runs in a sandboxed worker with a 16 MiB heap; `nearfield df` reads the filesystem natively and keeps working';

function timeoutMs(): number {
  const v = Number(process.env.NEARFIELD_EXT2FS_TIMEOUT_MS);
  return Number.isFinite(v) && v > 0 ? v : 60_000;
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
  what: string;
}

/** A mounted image. Always `close()` it: that ends the worker. */
export class GuestFiles {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private failure: NearfieldError | undefined;
  info!: MountInfo;

  private constructor(private readonly worker: Worker, readonly image: string) {
    worker.on('message', (res: ResponseEnvelope) => this.settle(res));
    worker.on('error', (e) => this.die(`libext2fs aborted: ${firstLine(e?.message ?? String(e))}`));
    worker.on('exit', (code) => this.die(`libext2fs worker exited (code ${code})`));
  }

  /** Start the worker and mount `image` read-only (partition: 1-based, needs the native block layer). */
  static async open(image: string, partition?: number): Promise<GuestFiles> {
    const worker = new Worker(new URL('./worker.js', import.meta.url), {
      resourceLimits: { maxOldGenerationSizeMb: 1024 },
      stdout: false,
      stderr: true, // the WASM module prints to stderr on abort; keep it off ours
    });
    worker.stderr?.resume();
    const g = new GuestFiles(worker, image);
    try {
      g.info = (await g.request({ op: 'mount', image, partition })) as MountInfo;
    } catch (e) {
      await g.close();
      throw e;
    }
    return g;
  }

  private die(message: string): void {
    if (!this.failure) this.failure = new NearfieldError('UNSUPPORTED', message, this.image, NATIVE_HINT);
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(this.failure);
    }
  }

  private settle(res: ResponseEnvelope): void {
    const p = this.pending.get(res.id);
    if (!p) return;
    this.pending.delete(res.id);
    clearTimeout(p.timer);
    if (res.ok) p.resolve(res.value);
    else p.reject(this.toError(res.error));
  }

  private toError(e: WorkerErrorInfo): NearfieldError {
    const where = e.offset === undefined ? this.image : `${this.image}@${e.offset}`;
    if (e.code === 'ABORTED') {
      this.failure ??= new NearfieldError('UNSUPPORTED', `libext2fs aborted: ${firstLine(e.message)}`, this.image, NATIVE_HINT);
      return this.failure;
    }
    return new NearfieldError(e.code, e.message, where);
  }

  request(req: Request): Promise<unknown> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new NearfieldError('IO', `libext2fs did not answer ${req.op} within ${timeoutMs()} ms`, this.image,
          'set NEARFIELD_EXT2FS_TIMEOUT_MS for very large directories or slow storage'));
        void this.worker.terminate();
      }, timeoutMs());
      this.pending.set(id, { resolve, reject, timer, what: req.op });
      this.worker.postMessage({ id, req });
    });
  }

  lstat(path: string): Promise<StatRecord> {
    return this.request({ op: 'lstat', path }) as Promise<StatRecord>;
  }

  stat(path: string): Promise<StatRecord> {
    return this.request({ op: 'stat', path }) as Promise<StatRecord>;
  }

  async readdir(path: string, opts: { follow?: boolean; withStat?: boolean } = {}): Promise<DirListing> {
    const packed = (await this.request({ op: 'readdir', path, follow: opts.follow ?? true, withStat: opts.withStat ?? true })) as PackedListing;
    return unpackListing(packed);
  }

  /** Up to `max` bytes of a (small) file, following symlinks. */
  async readFile(path: string, max = MAX_CHUNK): Promise<Buffer> {
    const u = (await this.request({ op: 'readFile', path, max })) as Uint8Array;
    return Buffer.from(u.buffer, u.byteOffset, u.byteLength);
  }

  /** Stream a file's bytes in ≤ 1 MiB chunks (following symlinks); `sink` may return a promise for backpressure. */
  async stream(path: string, sink: (chunk: Buffer) => void | Promise<void>): Promise<number> {
    const { handle, size } = (await this.request({ op: 'open', path })) as { handle: number; size: number };
    let total = 0;
    try {
      while (total < size) {
        const u = (await this.request({ op: 'read', handle, length: MAX_CHUNK })) as Uint8Array;
        if (u.byteLength === 0) break;
        total += u.byteLength;
        await sink(Buffer.from(u.buffer, u.byteOffset, u.byteLength));
      }
    } finally {
      if (!this.failure) await this.request({ op: 'close', handle });
    }
    if (total < size) throw new NearfieldError('IO', `file ended after ${total} of ${size} bytes`, this.image);
    return total;
  }

  find(path: string, opts: { glob?: string; type?: FileType; max: number; maxDirs?: number }): Promise<FindResult> {
    return this.request({ op: 'find', path, glob: opts.glob, type: opts.type, max: opts.max, maxDirs: opts.maxDirs ?? 1_000_000 }) as Promise<FindResult>;
  }

  /** Unmount (reporting any write attempt libext2fs made and we refused) and end the worker. */
  async umount(): Promise<DiskStats> {
    return (await this.request({ op: 'umount' })) as DiskStats;
  }

  stats(): Promise<DiskStats> {
    return this.request({ op: 'stats' }) as Promise<DiskStats>;
  }

  /** End the worker. No unmount needed: nothing was ever written, and ending here cannot flush anything. */
  async close(): Promise<void> {
    this.failure ??= new NearfieldError('INTERNAL', 'image already closed', this.image);
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }
}

/** Emscripten's abort text, shortened to what a user can act on. */
function firstLine(s: string): string {
  if (/Aborted\(OOM\)|out of memory/i.test(s)) return 'out of memory in its fixed 16 MiB heap (the bitmaps of a large filesystem do not fit)';
  return s.split('\n')[0]!.replace(/ Build with -s ASSERTIONS=1 for more info\.?/, '').slice(0, 300);
}
