// A guest disk image (raw, MBR/GPT partitioned, qcow2 with backing files), opened read-only, as a typed object.

import { call } from './native/gateway.js';
import type { DiskDescription, FilesystemUsage } from './generated/records.js';
import type { DiskImage } from '../native/binding.js';

export interface DiskOpenOptions {
  /** 1-based partition number (default: the Linux root partition, or the whole image). */
  partition?: number;
}

export class Disk {
  private constructor(private readonly handle: DiskImage, readonly path: string) {}

  /** Open `path` read-only; errors name it. Nothing is ever written to the image. */
  static open(path: string, opts: DiskOpenOptions = {}): Disk {
    return new Disk(call(path, (n) => n.DiskImage.open(path, opts.partition)), path);
  }

  /** The filesystem's space as the guest kernel's statfs computes it, df's figures and the superblock's facts. */
  statfs(): FilesystemUsage {
    return JSON.parse(call(this.path, () => this.handle.statfs())) as FilesystemUsage;
  }

  /** The image: format, backing chain, partitions, and which filesystem was chosen. */
  describe(): DiskDescription {
    return JSON.parse(call(this.path, () => this.handle.describe())) as DiskDescription;
  }

  /** Close the image file now; later calls fail. */
  close(): void {
    this.handle.close();
  }
}
