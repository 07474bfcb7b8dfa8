//! The disk object handed to libext2fs (npm ext2fs `mount(disk)`): reads through a BlockSource, refuses every write.

import type { BlockSource } from './block-source.js';
import { SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE } from './ext4.js';

/** One refused write, discard or flush, kept so tests and the CLI can report what libext2fs tried. */
export interface WriteAttempt {
  op: 'write' | 'discard' | 'flush';
  offset: number;
  length: number;
}

export class ReadOnlyViolation extends Error {
  constructor(op: string, label: string) {
    super(`refused ${op} on ${label}: nearfield opens images read-only`);
    this.name = 'ReadOnlyViolation';
  }
}

const MAX_RECORDED = 64;

export class ReadOnlyDisk {
  reads = 0;
  bytesRead = 0;
  attempts = 0;
  readonly recorded: WriteAttempt[] = [];

  /**
   * @param source the filesystem bytes
   * @param superblock what libext2fs is shown at bytes 1024..2048 (the masked copy from maskSuperblock)
   */
  constructor(private readonly source: BlockSource, private readonly superblock: Uint8Array) {}

  async read(buffer: Buffer, bufferOffset: number, length: number, fileOffset: number): Promise<{ bytesRead: number; buffer: Buffer }> {
    const bytes = this.source.read(fileOffset, length);
    bytes.copy(buffer, bufferOffset, 0, length);
    // Any read that overlaps the primary superblock sees the masked copy (block 0 of a 4 KiB fs includes it).
    const lo = Math.max(fileOffset, SUPERBLOCK_OFFSET);
    const hi = Math.min(fileOffset + length, SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE);
    if (lo < hi) {
      buffer.set(this.superblock.subarray(lo - SUPERBLOCK_OFFSET, hi - SUPERBLOCK_OFFSET), bufferOffset + (lo - fileOffset));
    }
    this.reads++;
    this.bytesRead += length;
    return { bytesRead: length, buffer };
  }

  async write(_buffer: Buffer, _bufferOffset: number, length: number, fileOffset: number): Promise<never> {
    this.refuse({ op: 'write', offset: fileOffset, length });
  }

  async discard(offset: number, length: number): Promise<never> {
    this.refuse({ op: 'discard', offset, length });
  }

  async flush(): Promise<never> {
    this.refuse({ op: 'flush', offset: 0, length: 0 });
  }

  private refuse(a: WriteAttempt): never {
    this.attempts++;
    if (this.recorded.length < MAX_RECORDED) this.recorded.push(a);
    throw new ReadOnlyViolation(a.op, this.source.label);
  }
}
