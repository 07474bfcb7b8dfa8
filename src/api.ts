// nearfield's importable API: `import { openGuest, openDisk } from 'nearfield'` — the same walkers and
// records the CLI prints, typed from their Rust definitions (src/generated/records.ts).

import { Guest, type GuestOpenOptions } from './guest.js';
import { Disk, type DiskOpenOptions } from './disk.js';

export { Guest, Disk };
export type { GuestOpenOptions, WalkerMethods } from './guest.js';
export type { DiskOpenOptions } from './disk.js';
export { NearfieldError, ExitCode, type ErrorCode } from './errors.js';
export * from './generated/records.js';

/** Open a guest's RAM (raw file, QEMU ELF core, LiME or kdump-compressed dump) and discover its kernel. */
export async function openGuest(ram: string | GuestOpenOptions): Promise<Guest> {
  return Guest.open(typeof ram === 'string' ? { ram } : ram);
}

/** Open a guest's disk image read-only. */
export function openDisk(path: string, opts: DiskOpenOptions = {}): Disk {
  return Disk.open(path, opts);
}
