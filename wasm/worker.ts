//! The libext2fs worker thread: mounts one image through ReadOnlyDisk and answers wasm/protocol.ts requests.
// Runs apart from the CLI so an abort of the WASM module (16 MiB heap exhausted, its global rethrowing handlers)
// ends this thread only. libext2fs resolves paths and reads directory and file contents; inode attributes are
// decoded here from the inode table (libext2fs's bindings expose only 16-bit ids, 32-bit seconds and no crtime,
// and a per-entry stat would re-scan the directory for every entry).

import { createRequire } from 'node:module';
import { parentPort } from 'node:worker_threads';
import { BlockSourceError, openBlockSource, type BlockSource } from './block-source.js';
import {
  Ext4FormatError, INCOMPAT_RECOVER, EXT4_INLINE_DATA_FL, S_IFDIR, S_IFLNK, S_IFMT, SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE,
  fastSymlinkTarget, featureNames, packInodeFields, symlinkDataBlock, groupDescriptorOffset, inodeTableBlock, maskSuperblock, parseDirents,
  parseInlineDirents, parseInode, parseSuperblock, roCompatNames, type Dirent, type Inode, type Superblock,
} from './ext4.js';
import { globToRegExp, guestBasename, guestDirname, guestJoin, normalizeGuestPath } from './guest-path.js';
import {
  MAX_CHUNK, PACKED_STAT_FIELDS, typeOfMode, type PackedListing, type DiskStats, type FileType, type FindResult, type MountInfo, type Request,
  type RequestEnvelope, type ResponseEnvelope, type StatRecord, type WorkerErrorInfo,
} from './protocol.js';
import { ReadOnlyDisk } from './readonly-disk.js';

const O_RDONLY = 0;
const O_NOATIME = 0o1000000; // node_ext2fs_read skips its atime update only with this flag
const MAX_SYMLINK_HOPS = 40; // MAXSYMLINKS
const MAX_DIR_BYTES = 256 * 1024 * 1024;
const MAX_DIR_ENTRIES = 4_000_000;
const EXT2_ET_BASE = 2133571328;

// The npm package's own surface (CommonJS, untyped).
interface Ext2Fs {
  promises: {
    open(path: string | Buffer, flags: number): Promise<{ fd: number }>;
    close(fd: number): Promise<void>;
    read(fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<{ bytesRead: number }>;
    readlink(path: string | Buffer, opts: { encoding: 'buffer' }): Promise<Buffer>;
  };
}
interface Ext2FsModule {
  mount(disk: unknown, offset: number): Promise<Ext2Fs>;
  umount(fs: Ext2Fs): Promise<void>;
}
interface Ext2Binding {
  stat_ino(fd: number): Promise<number>;
}

class WorkerError extends Error {
  constructor(readonly code: WorkerErrorInfo['code'], message: string, readonly offset?: number) {
    super(message);
  }
}

/** Inode table reads with a small window cache (inodes of one directory sit together). */
class InodeReader {
  private readonly groupTables = new Map<number, number>();
  private readonly windows = new Map<number, Buffer>();
  private static readonly WINDOW = 64 * 1024;
  private static readonly MAX_WINDOWS = 256;

  constructor(private readonly src: BlockSource, private readonly sb: Superblock) {}

  private inodeTable(group: number): number {
    let block = this.groupTables.get(group);
    if (block === undefined) {
      const off = groupDescriptorOffset(this.sb, group);
      block = inodeTableBlock(this.sb, this.src.read(off, this.sb.descSize));
      if (block === 0 || block >= this.sb.s_blocks_count) throw new Ext4FormatError(`group ${group} inode table at absurd block ${block}`, off);
      this.groupTables.set(group, block);
    }
    return block;
  }

  private bytes(offset: number, length: number): Buffer {
    const W = InodeReader.WINDOW;
    const start = Math.floor(offset / W) * W;
    if (offset + length > start + W) return this.src.read(offset, length);
    let win = this.windows.get(start);
    if (!win) {
      if (this.windows.size >= InodeReader.MAX_WINDOWS) this.windows.clear();
      win = this.src.read(start, Math.min(W, this.src.size - start));
      this.windows.set(start, win);
    }
    if (offset - start + length > win.length) throw new Ext4FormatError('inode lies past the image end', offset);
    return win.subarray(offset - start, offset - start + length);
  }

  private offsetOf(ino: number): number {
    if (!Number.isInteger(ino) || ino < 1 || ino > this.sb.s_inodes_count) throw new Ext4FormatError(`inode number ${ino} out of range`);
    const group = Math.floor((ino - 1) / this.sb.s_inodes_per_group);
    const index = (ino - 1) % this.sb.s_inodes_per_group;
    return this.inodeTable(group) * this.sb.blockSize + index * this.sb.s_inode_size;
  }

  read(ino: number): Inode {
    return parseInode(this.sb, ino, this.bytes(this.offsetOf(ino), this.sb.s_inode_size));
  }

  /** Decode inode `ino` into the packed listing array at `o` (no intermediate objects); returns i_mode. */
  pack(ino: number, a: Float64Array, o: number): number {
    const offset = this.offsetOf(ino);
    const size = this.sb.s_inode_size;
    const W = InodeReader.WINDOW;
    const start = Math.floor(offset / W) * W;
    if (offset + size > start + W) return packInodeFields(this.sb, ino, this.src.read(offset, size), 0, size, a, o);
    let win = this.windows.get(start);
    if (!win) {
      this.bytes(offset, size); // loads the window
      win = this.windows.get(start)!;
    }
    return packInodeFields(this.sb, ino, win, offset - start, size, a, o);
  }
}


const direntTypes: FileType[] = ['unknown', 'file', 'dir', 'chr', 'blk', 'fifo', 'sock', 'symlink'];

class Session {
  private fs!: Ext2Fs;
  private mod!: Ext2FsModule;
  private binding!: Ext2Binding;
  private disk!: ReadOnlyDisk;
  private src!: BlockSource;
  private inodes!: InodeReader;
  private sb!: Superblock;
  private readonly handles = new Map<number, { fd: number; size: number; pos: number }>();
  private nextHandle = 1;

  async mount(image: string, partition?: number): Promise<MountInfo> {
    this.src = await openBlockSource(image, partition);
    if (this.src.size < SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE) throw new WorkerError('BAD_DATA', `image is ${this.src.size} bytes, too small for ext2/3/4`);
    const raw = this.src.read(SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE);
    this.sb = parseSuperblock(raw);
    const masked = maskSuperblock(raw);
    this.disk = new ReadOnlyDisk(this.src, masked.bytes);
    this.inodes = new InodeReader(this.src, this.sb);
    // Loaded here, not at import: only file commands pay for the WASM module.
    const require = createRequire(import.meta.url);
    this.mod = require('ext2fs') as Ext2FsModule;
    this.binding = require('ext2fs/lib/binding') as Ext2Binding;
    try {
      this.fs = await this.mod.mount(this.disk, 0);
    } catch (e) {
      throw this.mountError(e);
    }
    const label = raw.subarray(0x78, 0x88);
    const nul = label.indexOf(0);
    return {
      blockSize: this.sb.blockSize,
      inodeSize: this.sb.s_inode_size,
      blocksCount: this.sb.s_blocks_count,
      inodesCount: this.sb.s_inodes_count,
      maskedFeatures: [...featureNames(masked.maskedRoCompat, roCompatNames), ...(masked.maskedIncompat ? ['mmp'] : [])],
      needsRecovery: (this.sb.s_feature_incompat & INCOMPAT_RECOVER) !== 0,
      label: Buffer.from(nul < 0 ? label : label.subarray(0, nul)).toString('utf8'),
    };
  }

  private mountError(e: unknown): Error {
    const errno = (e as { errno?: number }).errno;
    if (this.disk.attempts > 0) return new WorkerError('UNSUPPORTED', `libext2fs tried to write while opening (${this.disk.recorded[0]?.op}); refused`);
    if (errno === EXT2_ET_BASE + 67) return new WorkerError('UNSUPPORTED', `libext2fs 1.44 does not support this filesystem's incompat features (${incompatNames(this.sb.s_feature_incompat).join(', ')})`);
    if (errno === EXT2_ET_BASE + 68) return new WorkerError('UNSUPPORTED', 'libext2fs 1.44 refused a read-only-compatible feature');
    if (typeof errno === 'number' && errno > EXT2_ET_BASE && errno < EXT2_ET_BASE + 256) {
      return new WorkerError('BAD_DATA', `libext2fs cannot open the filesystem (ext2 error ${errno - EXT2_ET_BASE}; run e2fsck -n on a copy)`);
    }
    return e as Error;
  }

  /** Resolve a path without following a final symlink (lstat semantics): the parent through libext2fs, the last
   *  component from the parent's entries (the npm build's open follows a final symlink). */
  private async namei(path: string): Promise<number> {
    if (path === '/') return 2; // EXT2_ROOT_INO
    const parent = await this.nameiFollow(guestDirname(path));
    const name = guestBasename(path);
    const hit = (await this.direntsCached(guestDirname(path), parent)).get(name);
    if (hit === undefined) throw new WorkerError('NOT_FOUND', 'no such file or directory');
    return hit;
  }

  private lastDir: { ino: number; byName: Map<string, number> } | undefined;

  /** The entries of one directory by name, remembered for the next lookup in the same directory. */
  private async direntsCached(path: string, ino: number): Promise<Map<string, number>> {
    if (this.lastDir?.ino === ino) return this.lastDir.byName;
    const byName = new Map<string, number>();
    for (const d of await this.dirents(path, ino)) byName.set(d.name, d.inode);
    this.lastDir = { ino, byName };
    return byName;
  }

  /** Resolve a path through libext2fs, following symlinks in every component, the last one included. */
  private async nameiFollow(path: string): Promise<number> {
    const fh = await this.fs.promises.open(path, O_RDONLY | O_NOATIME);
    try {
      return await this.binding.stat_ino(fh.fd);
    } finally {
      await this.fs.promises.close(fh.fd);
    }
  }

  private async symlinkTarget(path: string, inode: Inode): Promise<string> {
    const fast = fastSymlinkTarget(inode);
    if (fast) return Buffer.from(fast).toString('utf8');
    // A slow symlink: its target fills the start of one data block (ext4 caps targets at a block).
    if (inode.size > this.sb.blockSize) throw new Ext4FormatError(`symlink ${path} claims a ${inode.size}-byte target`);
    const block = symlinkDataBlock(inode);
    if (block === 0 || block >= this.sb.s_blocks_count) throw new Ext4FormatError(`symlink ${path} points at block ${block}`);
    return this.src.read(block * this.sb.blockSize, inode.size).toString('utf8');
  }

  private async statOf(path: string, ino: number, name = guestBasename(path)): Promise<StatRecord> {
    const i = this.inodes.read(ino);
    const rec: StatRecord = {
      path, name, ino, type: typeOfMode(i.mode), mode: i.mode, links: i.links, uid: i.uid, gid: i.gid, size: i.size,
      blocks: i.blocks, atime: i.atime, mtime: i.mtime, ctime: i.ctime, crtime: i.crtime, flags: i.flags,
    };
    if ((i.mode & S_IFMT) === S_IFLNK) rec.target = await this.symlinkTarget(path, i);
    return rec;
  }

  async lstat(path: string): Promise<StatRecord> {
    return this.statOf(path, await this.namei(path));
  }

  /** Follow the last component's symlinks too (bounded), returning the final path and its inode number. */
  async resolve(path: string): Promise<{ path: string; ino: number }> {
    let p = path;
    for (let hop = 0; hop <= MAX_SYMLINK_HOPS; hop++) {
      const ino = await this.namei(p);
      const inode = this.inodes.read(ino);
      if ((inode.mode & S_IFMT) !== S_IFLNK) return { path: p, ino };
      const target = await this.symlinkTarget(p, inode);
      p = normalizeGuestPath(target.startsWith('/') ? target : guestJoin(guestDirname(p), target), true) ?? '/';
    }
    throw new WorkerError('IO', `too many levels of symbolic links at ${path}`);
  }

  async stat(path: string): Promise<StatRecord> {
    const r = await this.resolve(path);
    return this.statOf(r.path, r.ino);
  }

  /** Read a whole file or directory body through libext2fs, sequentially (explicit positions are 32-bit there). */
  private async readAll(path: string, size: number, max: number): Promise<Buffer> {
    const want = Math.min(size, max);
    const fh = await this.fs.promises.open(path, O_RDONLY | O_NOATIME);
    try {
      const out = Buffer.allocUnsafe(want);
      let done = 0;
      while (done < want) {
        const len = Math.min(MAX_CHUNK, want - done);
        const { bytesRead } = await this.fs.promises.read(fh.fd, out, done, len, -1);
        if (bytesRead <= 0) break;
        done += bytesRead;
      }
      return out.subarray(0, done);
    } finally {
      await this.fs.promises.close(fh.fd);
    }
  }

  private async dirents(path: string, ino: number): Promise<Dirent[]> {
    const inode = this.inodes.read(ino);
    if ((inode.mode & S_IFMT) !== S_IFDIR) throw new WorkerError('NOT_FOUND', 'not a directory');
    if (inode.size > MAX_DIR_BYTES) throw new WorkerError('BAD_DATA', `directory is ${inode.size} bytes, over the ${MAX_DIR_BYTES}-byte bound`);
    const body = await this.readAll(path, inode.size, MAX_DIR_BYTES);
    const out: Dirent[] = [];
    if (inode.flags & EXT4_INLINE_DATA_FL) parseInlineDirents(ino, body, MAX_DIR_ENTRIES, out);
    else parseDirents(body, this.sb.blockSize, MAX_DIR_ENTRIES, out);
    return out;
  }

  async readdir(path: string, follow: boolean, withStat: boolean): Promise<PackedListing> {
    const r = follow ? await this.resolve(path) : { path, ino: await this.namei(path) };
    const dir = await this.statOf(r.path, r.ino, guestBasename(path));
    const ents = await this.dirents(r.path, r.ino);
    const names: string[] = new Array(ents.length);
    const paths: string[] = new Array(ents.length);
    const types: FileType[] = [];
    const targets: Record<number, string> = {};
    const numbers = new Float64Array(withStat ? ents.length * PACKED_STAT_FIELDS : ents.length);
    for (let i = 0; i < ents.length; i++) {
      const d = ents[i]!;
      const name = d.name;
      names[i] = name;
      const p = name === '.' ? r.path : name === '..' ? guestDirname(r.path) : guestJoin(r.path, name);
      paths[i] = p;
      if (!withStat) {
        numbers[i] = d.inode;
        types.push(direntTypes[d.fileType] ?? 'unknown');
        continue;
      }
      const mode = this.inodes.pack(d.inode, numbers, i * PACKED_STAT_FIELDS);
      if ((mode & S_IFMT) === S_IFLNK) targets[i] = await this.symlinkTarget(p, this.inodes.read(d.inode));
    }
    return { dir, names, paths, numbers, withStat, types, targets };
  }

  async open(path: string): Promise<{ handle: number; size: number; path: string }> {
    const r = await this.resolve(path);
    const inode = this.inodes.read(r.ino);
    if ((inode.mode & S_IFMT) === S_IFDIR) throw new WorkerError('IO', 'is a directory');
    const fh = await this.fs.promises.open(r.path, O_RDONLY | O_NOATIME);
    const handle = this.nextHandle++;
    this.handles.set(handle, { fd: fh.fd, size: inode.size, pos: 0 });
    return { handle, size: inode.size, path: r.path };
  }

  async read(handle: number, length: number): Promise<Buffer> {
    const h = this.handles.get(handle);
    if (!h) throw new WorkerError('INTERNAL', `no open file ${handle}`);
    const len = Math.max(0, Math.min(length, MAX_CHUNK, h.size - h.pos));
    const buf = Buffer.alloc(len);
    if (len === 0) return buf;
    const { bytesRead } = await this.fs.promises.read(h.fd, buf, 0, len, -1);
    h.pos += bytesRead;
    return buf.subarray(0, bytesRead);
  }

  async close(handle: number): Promise<void> {
    const h = this.handles.get(handle);
    if (!h) return;
    this.handles.delete(handle);
    await this.fs.promises.close(h.fd);
  }

  async readFile(path: string, max: number): Promise<Buffer> {
    const r = await this.resolve(path);
    const inode = this.inodes.read(r.ino);
    if ((inode.mode & S_IFMT) === S_IFDIR) throw new WorkerError('IO', 'is a directory');
    return this.readAll(r.path, inode.size, Math.min(max, 16 * MAX_CHUNK));
  }

  async find(path: string, glob: string | undefined, type: FileType | undefined, max: number, maxDirs: number): Promise<FindResult> {
    const re = glob === undefined ? undefined : globToRegExp(glob);
    const matches: FindResult['matches'] = [];
    const root = await this.resolve(path);
    const rootInode = this.inodes.read(root.ino);
    const rootType = typeOfMode(rootInode.mode);
    const test = (p: string, name: string, t: FileType): boolean =>
      (re === undefined || re.test(name)) && (type === undefined || type === t);
    if (test(root.path, guestBasename(root.path), rootType)) matches.push({ path: path, type: rootType });
    const stack: { path: string; ino: number; shown: string }[] = rootType === 'dir' ? [{ path: root.path, ino: root.ino, shown: path }] : [];
    const seen = new Set<number>([root.ino]);
    let dirsVisited = 0;
    while (stack.length > 0 && matches.length < max) {
      if (dirsVisited >= maxDirs) return { matches, truncated: true, dirsVisited };
      const d = stack.pop()!;
      dirsVisited++;
      let ents: Dirent[];
      try {
        ents = await this.dirents(d.path, d.ino);
      } catch (e) {
        if (isAbort(e)) throw e;
        continue; // an unreadable directory does not end the walk
      }
      const sub: typeof stack = [];
      for (const e of ents) {
        const name = e.name;
        if (name === '.' || name === '..') continue;
        let t = direntTypes[e.fileType] ?? 'unknown';
        if (t === 'unknown') t = typeOfMode(this.inodes.read(e.inode).mode);
        const shown = guestJoin(d.shown, name);
        if (test(shown, name, t)) {
          matches.push({ path: shown, type: t });
          if (matches.length >= max) return { matches, truncated: stack.length > 0 || sub.length > 0 || true, dirsVisited };
        }
        if (t === 'dir' && !seen.has(e.inode)) {
          seen.add(e.inode);
          sub.push({ path: guestJoin(d.path, name), ino: e.inode, shown });
        }
      }
      // Depth-first in name order, like find's output on a fresh filesystem.
      sub.sort((a, b) => (a.shown < b.shown ? 1 : a.shown > b.shown ? -1 : 0));
      stack.push(...sub);
    }
    return { matches, truncated: stack.length > 0, dirsVisited };
  }

  async umount(): Promise<DiskStats> {
    for (const h of [...this.handles.keys()]) await this.close(h);
    try {
      await this.mod.umount(this.fs);
    } catch {
      // a refused flush lands here; the attempt is counted below
    }
    return this.stats();
  }

  stats(): DiskStats {
    return { reads: this.disk.reads, bytesRead: this.disk.bytesRead, writeAttempts: this.disk.attempts, recorded: this.disk.recorded };
  }
}

function incompatNames(bits: number): string[] {
  return featureNames(bits, {
    0x1: 'compression', 0x2: 'filetype', 0x4: 'needs_recovery', 0x8: 'journal_dev', 0x10: 'meta_bg', 0x40: 'extent',
    0x80: '64bit', 0x100: 'mmp', 0x200: 'flex_bg', 0x400: 'ea_inode', 0x1000: 'dirdata', 0x2000: 'metadata_csum_seed',
    0x4000: 'large_dir', 0x8000: 'inline_data', 0x10000: 'encrypt', 0x20000: 'casefold',
  });
}

function isAbort(e: unknown): boolean {
  const msg = (e as Error)?.message ?? String(e);
  return e instanceof WebAssembly.RuntimeError || /Aborted\(|abort\(|already aborted|out of memory/i.test(msg);
}

const errnoMessages: Record<string, [WorkerErrorInfo['code'], string]> = {
  ENOENT: ['NOT_FOUND', 'no such file or directory'],
  ENOTDIR: ['NOT_FOUND', 'not a directory'],
  EIO: ['IO', 'input/output error reading the image'],
  ELOOP: ['IO', 'too many levels of symbolic links'],
};

function describe(e: unknown): WorkerErrorInfo {
  if (isAbort(e)) return { code: 'ABORTED', message: (e as Error)?.message ?? String(e) };
  if (e instanceof WorkerError) return { code: e.code, message: e.message, offset: e.offset };
  if (e instanceof BlockSourceError) return { code: e.code, message: e.message, offset: e.offset };
  if (e instanceof Ext4FormatError) return { code: 'BAD_DATA', message: e.message, offset: e.offset };
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string') {
    const known = errnoMessages[code];
    if (known) return { code: known[0], message: known[1] };
    if (['NOT_FOUND', 'IO', 'BAD_DATA', 'UNSUPPORTED'].includes(code)) return { code: code as WorkerErrorInfo['code'], message: (e as Error).message };
    if (code.startsWith('E')) return { code: 'IO', message: `${code}: ${(e as Error).message}` };
  }
  return { code: 'INTERNAL', message: (e as Error)?.message ?? String(e) };
}

const session = new Session();
let dead = false;

async function handle(req: Request): Promise<{ value: unknown; transfer?: ArrayBuffer[] }> {
  switch (req.op) {
    case 'mount': return { value: await session.mount(req.image, req.partition) };
    case 'lstat': return { value: await session.lstat(req.path) };
    case 'stat': return { value: await session.stat(req.path) };
    case 'readdir': {
      const v = await session.readdir(req.path, req.follow, req.withStat);
      return { value: v, transfer: [v.numbers.buffer as ArrayBuffer] };
    }
    case 'open': return { value: await session.open(req.path) };
    case 'read': {
      const b = await session.read(req.handle, req.length);
      const copy = new Uint8Array(b); // own ArrayBuffer, transferred without a second copy
      return { value: copy, transfer: [copy.buffer] };
    }
    case 'close': return { value: await session.close(req.handle) };
    case 'readFile': {
      const copy = new Uint8Array(await session.readFile(req.path, req.max));
      return { value: copy, transfer: [copy.buffer] };
    }
    case 'find': return { value: await session.find(req.path, req.glob, req.type, req.max, req.maxDirs) };
    case 'umount': return { value: await session.umount() };
    case 'stats': return { value: session.stats() };
  }
}

// Requests are answered one at a time: libext2fs serializes its calls anyway.
let chain: Promise<void> = Promise.resolve();
parentPort?.on('message', (msg: RequestEnvelope) => {
  chain = chain.then(async () => {
    let res: ResponseEnvelope;
    let transfer: ArrayBuffer[] | undefined;
    if (dead) {
      res = { id: msg.id, ok: false, error: { code: 'ABORTED', message: 'the WASM module aborted earlier' } };
    } else {
      try {
        const out = await handle(msg.req);
        res = { id: msg.id, ok: true, value: out.value };
        transfer = out.transfer;
      } catch (e) {
        const error = describe(e);
        if (error.code === 'ABORTED') dead = true;
        res = { id: msg.id, ok: false, error };
      }
    }
    parentPort?.postMessage(res, transfer ?? []);
  });
});
