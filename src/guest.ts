// A guest's RAM with its kernel discovered, as a typed object: `walk(name, options)` and one method per walker
// (tasks(), meminfo() …), each returning the walker's record as its Rust definition generated it.

import { call, callAsync } from './native/gateway.js';
import { NearfieldError } from './errors.js';
import { walkerNames, type WalkerName, type Walkers } from './generated/records.js';
import type { Target } from './target.js';
import type { Guest as NativeGuest } from '../native/binding.js';

/** Where the RAM is, and the fallbacks and cache use the CLI flags give. */
export interface GuestOpenOptions {
  /** Guest RAM: raw memory file, QEMU ELF core, LiME or kdump-compressed dump. */
  ram: string;
  /** Raw RAM layout: auto (default), qemu-pc, qemu-q35, firecracker, flat[:SPLIT]. */
  layout?: string;
  systemMap?: string;
  vmlinux?: string;
  isf?: string;
  /** false: neither use nor write the kernel profile cache. */
  cache?: boolean;
}

/** One method per walker: `guest.tasks({ threads: true })` is `guest.walk('tasks', { threads: true })`. */
export type WalkerMethods = { [N in WalkerName]: (options?: Walkers[N]['options']) => Walkers[N]['record'] };

export interface Guest extends WalkerMethods {}

export class Guest {
  private constructor(private readonly handle: NativeGuest, readonly ram: string) {}

  /** Discover the kernel in the RAM file (off the JS thread); errors name the RAM file. */
  static async open(opts: GuestOpenOptions): Promise<Guest> {
    const handle = await callAsync(opts.ram, (n) => n.Guest.openAsync(nativeOptions(opts)));
    return new Guest(handle, opts.ram);
  }

  /** Synchronous twin of `open`. */
  static openSync(opts: GuestOpenOptions): Guest {
    return new Guest(call(opts.ram, (n) => n.Guest.open(nativeOptions(opts))), opts.ram);
  }

  /** Run a walker; its record (already carrying schemaVersion). */
  walk<N extends WalkerName>(name: N, options?: Walkers[N]['options']): Walkers[N]['record'] {
    const text = call(this.ram, () => this.handle.walk(name, options === undefined ? undefined : JSON.stringify(options)));
    return JSON.parse(text) as Walkers[N]['record'];
  }

  /** A kernel symbol's address ("0x…"), or null. */
  symbol(name: string): string | null {
    return call(this.ram, () => this.handle.symbol(name)) ?? null;
  }

  /** Write a Volatility 3 ISF of this kernel to `path`; the bytes written. */
  exportIsf(path: string): number {
    return call(path, () => this.handle.exportIsf(path));
  }

  /** The raw VMCOREINFO lines, [key, value]. */
  vmcoreinfo(): [string, string][] {
    return call(this.ram, () => this.handle.vmcoreinfo()) as [string, string][];
  }

  /** What the RAM file lacks of the guest's memory (it is truncated), one sentence each; empty when whole. */
  damage(): string[] {
    return call(this.ram, () => this.handle.damage());
  }

  /** Unmap the RAM now; later calls fail. */
  close(): void {
    this.handle.close();
  }
}

for (const name of walkerNames) {
  Object.defineProperty(Guest.prototype, name, {
    value(this: Guest, options?: object) {
      return this.walk(name, options as never);
    },
  });
}

function nativeOptions(o: GuestOpenOptions) {
  return { ram: o.ram, layout: o.layout, systemMap: o.systemMap, vmlinux: o.vmlinux, isf: o.isf, useCache: o.cache !== false };
}

/** The target's RAM as a Guest (what every RAM command does first). */
export async function openTargetGuest(target: Target, opts: Omit<GuestOpenOptions, 'ram' | 'layout'> = {}): Promise<Guest> {
  if (!target.ram) throw new NearfieldError('NOT_FOUND', 'the target has no RAM file (give --ram FILE)', target.dir ?? target.name);
  return Guest.open({ ...opts, ram: target.ram, layout: target.ramLayout });
}
