//! Messages between the CLI thread (wasm/client.ts) and the libext2fs worker (wasm/worker.ts).

export type FileType = 'file' | 'dir' | 'symlink' | 'chr' | 'blk' | 'fifo' | 'sock' | 'unknown';

export interface Time {
  sec: number;
  nsec: number;
}

/** One inode as `stat` shows it (uid/gid 32-bit, times with nanoseconds, crtime when the inode has room). */
export interface StatRecord {
  /** Guest path (absolute, normalized). */
  path: string;
  name: string;
  ino: number;
  type: FileType;
  mode: number;
  links: number;
  uid: number;
  gid: number;
  size: number;
  /** 512-byte units. */
  blocks: number;
  atime: Time;
  mtime: Time;
  ctime: Time;
  crtime: Time | null;
  /** i_flags (EXT4_*_FL). */
  flags: number;
  /** Symlink target. */
  target?: string;
}

export interface MountInfo {
  blockSize: number;
  inodeSize: number;
  blocksCount: number;
  inodesCount: number;
  /** ro_compat / incompat feature names hidden from libext2fs (it is never allowed to write). */
  maskedFeatures: string[];
  /** The journal has not been replayed (a live or crashed guest): recent changes may be missing. */
  needsRecovery: boolean;
  label: string;
}

export interface DirListing {
  dir: StatRecord;
  entries: StatRecord[];
}

export interface FindResult {
  matches: { path: string; type: FileType }[];
  /** Stopped at --max results or at the directory-visit bound. */
  truncated: boolean;
  dirsVisited: number;
}

export interface DiskStats {
  reads: number;
  bytesRead: number;
  writeAttempts: number;
  recorded: { op: string; offset: number; length: number }[];
}

export type Request =
  | { op: 'mount'; image: string; partition?: number }
  | { op: 'lstat'; path: string }
  | { op: 'stat'; path: string }
  | { op: 'readdir'; path: string; follow: boolean; withStat: boolean }
  | { op: 'open'; path: string }
  | { op: 'read'; handle: number; length: number }
  | { op: 'close'; handle: number }
  | { op: 'readFile'; path: string; max: number }
  | { op: 'find'; path: string; glob?: string; type?: FileType; max: number; maxDirs: number }
  | { op: 'umount' }
  | { op: 'stats' };

export interface RequestEnvelope {
  id: number;
  req: Request;
}

export interface WorkerErrorInfo {
  /** NearfieldError code, or ABORTED when the WASM module died. */
  code: 'NOT_FOUND' | 'BAD_DATA' | 'UNSUPPORTED' | 'IO' | 'USAGE' | 'INTERNAL' | 'ABORTED';
  message: string;
  offset?: number;
}

export type ResponseEnvelope =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: WorkerErrorInfo };

/** Largest chunk moved per read request: libext2fs mallocs it inside its fixed 16 MiB heap. */
export const MAX_CHUNK = 1 << 20;

/** A directory listing as it crosses the thread boundary: names plus one Float64Array of numbers (cheap to move). */
export interface PackedListing {
  dir: StatRecord;
  names: string[];
  paths: string[];
  /** PACKED_FIELDS numbers per entry, or only the inode number per entry when stats were not asked for. */
  numbers: Float64Array;
  withStat: boolean;
  /** Dirent file types, when stats were not asked for. */
  types: FileType[];
  /** Symlink targets by entry index. */
  targets: Record<number, string>;
}

export const PACKED_STAT_FIELDS = 16;
const PACKED_FIELDS = PACKED_STAT_FIELDS; // order: ext4.ts packInodeFields

export function typeOfMode(mode: number): FileType {
  switch (mode & 0o170000) {
    case 0o100000: return 'file';
    case 0o040000: return 'dir';
    case 0o120000: return 'symlink';
    case 0o020000: return 'chr';
    case 0o060000: return 'blk';
    case 0o010000: return 'fifo';
    case 0o140000: return 'sock';
    default: return 'unknown';
  }
}

export function unpackListing(p: PackedListing): DirListing {
  const entries: StatRecord[] = new Array(p.names.length);
  const a = p.numbers;
  for (let i = 0; i < p.names.length; i++) {
    if (!p.withStat) {
      entries[i] = { path: p.paths[i]!, name: p.names[i]!, ino: a[i]!, type: p.types[i] ?? 'unknown' } as StatRecord;
      continue;
    }
    const o = i * PACKED_FIELDS;
    const mode = a[o + 1]!;
    const rec: StatRecord = {
      path: p.paths[i]!, name: p.names[i]!, ino: a[o]!, type: typeOfMode(mode), mode, links: a[o + 2]!, uid: a[o + 3]!,
      gid: a[o + 4]!, size: a[o + 5]!, blocks: a[o + 6]!, flags: a[o + 7]!,
      atime: { sec: a[o + 8]!, nsec: a[o + 9]! }, mtime: { sec: a[o + 10]!, nsec: a[o + 11]! },
      ctime: { sec: a[o + 12]!, nsec: a[o + 13]! },
      crtime: Number.isNaN(a[o + 14]!) ? null : { sec: a[o + 14]!, nsec: a[o + 15]! },
    };
    const t = p.targets[i];
    if (t !== undefined) rec.target = t;
    entries[i] = rec;
  }
  return { dir: p.dir, entries };
}
