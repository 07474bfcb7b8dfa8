//! Byte source under the libext2fs bridge: the native block layer (DiskImage: raw, MBR/GPT, qcow2) or a plain read-only file.

import { closeSync, fstatSync, openSync, readSync, constants } from 'node:fs';

/** Read-only bytes of one filesystem (partition offsets and qcow2 mapping already applied). */
export interface BlockSource {
  readonly size: number;
  /** Exactly `length` bytes at `offset` (zeros past the end are the caller's business: we throw). */
  read(offset: number, length: number): Buffer;
  /** What the user named: the image path (and partition). */
  readonly label: string;
  close(): void;
}

export class BlockSourceError extends Error {
  constructor(readonly code: 'NOT_FOUND' | 'IO' | 'BAD_DATA' | 'UNSUPPORTED', message: string, readonly offset?: number) {
    super(message);
  }
}

/** A bare filesystem image read with pread on an O_RDONLY descriptor. */
export class FileBlockSource implements BlockSource {
  readonly size: number;
  private fd: number | undefined;

  constructor(readonly label: string) {
    try {
      this.fd = openSync(label, constants.O_RDONLY | (constants.O_NOATIME ?? 0));
    } catch {
      // O_NOATIME needs ownership of the file; fall back to a plain read-only open.
      this.fd = openSync(label, constants.O_RDONLY);
    }
    this.size = fstatSync(this.fd).size;
  }

  read(offset: number, length: number): Buffer {
    if (this.fd === undefined) throw new BlockSourceError('IO', 'image already closed');
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new BlockSourceError('BAD_DATA', `read of ${length} bytes at ${offset} runs past the image end (${this.size} bytes)`, offset);
    }
    const buf = Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = readSync(this.fd, buf, done, length - done, offset + done);
      if (n <= 0) throw new BlockSourceError('IO', `short read at ${offset + done}`, offset + done);
      done += n;
    }
    return buf;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/** The shape of the native block layer's napi class, when the addon has it (native/src/binding/disk.rs). */
interface NativeDiskImage {
  size: bigint | number;
  readAt(offset: number | bigint, length: number): Buffer;
}
interface NativeDiskImageClass {
  open(path: string, partition?: number): NativeDiskImage;
}

/** DiskImage.readAt serves at most 4 MiB per call. */
const NATIVE_MAX_READ = 4 << 20;

class NativeBlockSource implements BlockSource {
  readonly size: number;
  constructor(private readonly disk: NativeDiskImage, readonly label: string) {
    this.size = Number(disk.size);
  }
  read(offset: number, length: number): Buffer {
    if (offset < 0 || length < 0 || offset + length > this.size) {
      throw new BlockSourceError('BAD_DATA', `read of ${length} bytes at ${offset} runs past the filesystem end (${this.size} bytes)`, offset);
    }
    if (length <= NATIVE_MAX_READ) return this.disk.readAt(offset, length);
    const out = Buffer.allocUnsafe(length);
    for (let done = 0; done < length; done += NATIVE_MAX_READ) {
      this.disk.readAt(offset + done, Math.min(NATIVE_MAX_READ, length - done)).copy(out, done);
    }
    return out;
  }
  close(): void {}
}

/**
 * Open the filesystem bytes of an image: through the native DiskImage when the addon provides it (so qcow2 and
 * partition tables work), else as a bare filesystem file.
 */
export async function openBlockSource(path: string, partition?: number): Promise<BlockSource> {
  const label = partition === undefined ? path : `${path} partition ${partition}`;
  // A bare filesystem image (Firecracker's rootfs, ext4 magic at byte 1080) needs no block layer: skip loading
  // the native addon (~25 ms) and read the file directly.
  if (partition === undefined) {
    const src = new FileBlockSource(path);
    if (src.size >= 2048 && src.read(1080, 2).readUInt16LE(0) === 0xef53) return src;
    src.close();
  }
  let DiskImage: NativeDiskImageClass | undefined;
  try {
    const gateway = await import('../src/native/gateway.js');
    DiskImage = (gateway.native() as unknown as { DiskImage?: NativeDiskImageClass }).DiskImage;
  } catch {
    DiskImage = undefined; // addon not built: bare filesystem files still work
  }
  if (DiskImage) {
    const gateway = await import('../src/native/gateway.js');
    const disk = gateway.call(path, () => DiskImage!.open(path, partition));
    return new NativeBlockSource(disk, label);
  }
  if (partition !== undefined) {
    throw new BlockSourceError('UNSUPPORTED', '--partition needs the native block layer (run `npm run build`)');
  }
  const src = new FileBlockSource(path);
  if (src.size >= 4 && src.read(0, 4).toString('latin1') === 'QFI\xfb') {
    src.close();
    throw new BlockSourceError('UNSUPPORTED', 'qcow2 images need the native block layer (run `npm run build`)');
  }
  return src;
}
