// A guest's RAM with its kernel discovered, as a typed object: `walk(name, options)` and one method per walker
// (tasks(), meminfo() …), each returning the walker's record as its Rust definition generated it.

import { call, callAsync } from './native/gateway.js';
import { NearfieldError } from './errors.js';
import { walkerNames, type WalkerName, type Walkers } from './generated/records.js';
import { ramLabel, type Target } from './target.js';
import { resolveLiveRam, type HostSegment } from './live/qemu.js';
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
  /** Read a running QEMU process (then `ram` only names it in messages) … */
  pid?: number;
  /** … through QEMU's own guest-physical → host-virtual map (absent: guessed from /proc/PID/maps, with a warning). */
  processMap?: HostSegment[];
  processMapSource?: string;
}

/** How the walks since the last `takeConsistency()` held together (walkers::run's retry policy). */
export interface Consistency {
  /** The RAM was read live (a running VM, not paused for the read). */
  live: boolean;
  walks: number;
  /** Walks re-run because what they read did not hold together. */
  retries: number;
  /** Torn reads seen, those the retries repaired included. */
  tornReads: number;
  /** What was still torn after the last retry. */
  torn: string[];
}

/** What the RAM source is: its format ("qemu-process" for a live VM), layout, and discovery's warnings. */
export interface SourceInfo { format: string; layout: string; layoutGuessed: boolean; warnings: string[] }

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

  /** How the walks since the last call held together (and start counting afresh). */
  takeConsistency(): Consistency {
    return JSON.parse(call(this.ram, () => this.handle.takeConsistency())) as Consistency;
  }

  /** Say whether the RAM may change while read (false while the VM is paused for the read). */
  setLive(live: boolean): void {
    call(this.ram, () => this.handle.setLive(live));
  }

  /** The boot read again from RAM now ("BUILD-ID/KASLR"): a reboot or a new kernel changes it. */
  bootIdentity(): string {
    return call(this.ram, () => this.handle.bootIdentity());
  }

  /** Drop the RAM file's pages this guest has mapped in (it stays open; later reads fault them back). */
  releaseMemory(): void {
    call(this.ram, () => this.handle.releaseMemory());
  }

  sourceInfo(): SourceInfo {
    return JSON.parse(call(this.ram, () => this.handle.sourceInfo())) as SourceInfo;
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
  return {
    ram: o.ram, layout: o.layout, systemMap: o.systemMap, vmlinux: o.vmlinux, isf: o.isf, useCache: o.cache !== false,
    pid: o.pid, processMap: o.processMap === undefined ? undefined : JSON.stringify(o.processMap), processMapSource: o.processMapSource,
  };
}

type TargetGuestOptions = Omit<GuestOpenOptions, 'ram' | 'layout' | 'pid' | 'processMap' | 'processMapSource'>;

/** The target's RAM as a Guest (what every RAM command does first): a file, or a running QEMU read live. */
export async function openTargetGuest(target: Target, opts: TargetGuestOptions = {}): Promise<Guest> {
  if (target.live) {
    const live = await resolveLiveRam(target.live);
    target.live.pid = live.pid;
    const label = ramLabel(target) ?? `QEMU pid ${live.pid}`;
    const guest = await Guest.open({ ...opts, ram: label, pid: live.pid, processMap: live.map, processMapSource: live.mapSource });
    return guest;
  }
  if (!target.ram) throw new NearfieldError('NOT_FOUND', 'the target has no RAM file (give --ram FILE)', target.dir ?? target.name);
  return Guest.open({ ...opts, ram: target.ram, layout: target.ramLayout });
}
