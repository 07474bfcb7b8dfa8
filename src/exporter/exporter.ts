// The long-running exporter: many VMs opened once each (profile resident, handles kept), collected on every scrape
// through the report's own collection (collectWith) and rendered by the report's renderers (Prometheus, Graphite).
// A reboot (build id or KASLR offset changed) or a replaced snapshot file is noticed and the VM rediscovered; a VM
// that cannot be read costs only its own nearfield_collector_success{vm,collector}=0.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve as resolvePath } from 'node:path';
import { resolveTarget, type Target } from '../target.js';
import { NearfieldError, toNearfieldError } from '../errors.js';
import { closeHandles, collectWith, emptyReport, openHandles, type CollectOptions, type VmHandles } from '../report/collect.js';
import type { Collector } from '../report/collector.js';
import type { VmReport } from '../generated/records.js';

/** One VM as configured: its label and what to read ("DIR", "qmp:SOCKET", "pid:PID", or a socket path). */
export interface VmSpec { name: string; target: string }

/** `NAME=TARGET`, as --vm and each config-file line give it. */
export function parseVmSpec(text: string, where = '--vm'): VmSpec {
  const m = /^\s*([^=\s]+)\s*(?:=|\s)\s*(\S.*?)\s*$/.exec(text);
  if (!m) throw new NearfieldError('USAGE', `${where} takes NAME=TARGET (a snapshot directory, qmp:SOCKET or pid:PID), not "${text}"`);
  return { name: m[1] as string, target: m[2] as string };
}

/** A config file: one `NAME=TARGET` (or `NAME TARGET`) per line; `#` starts a comment. */
export function parseConfig(text: string, file: string): VmSpec[] {
  const out: VmSpec[] = [];
  text.split('\n').forEach((line, i) => {
    const l = line.replace(/#.*$/, '').trim();
    if (l) out.push(parseVmSpec(l, `${file}:${i + 1}`));
  });
  return out;
}

/** A directory of VMs: each snapshot directory and each QMP socket in it is one VM, named after the entry. */
export function scanDirectory(dir: string): VmSpec[] {
  const out: VmSpec[] = [];
  for (const entry of readdirSync(dir).sort()) {
    if (entry.startsWith('.')) continue;
    const path = join(dir, entry);
    let st;
    try {
      st = statSync(path);
    } catch {
      continue;
    }
    if (st.isSocket()) out.push({ name: entry.replace(/\.(sock|qmp|socket)$/, ''), target: `qmp:${path}` });
    else if (st.isDirectory()) out.push({ name: entry, target: path });
  }
  return out;
}

/** A spec's target: qmp:SOCKET / a socket file → live over QMP, pid:PID → live, else a snapshot directory. */
export async function specTarget(spec: VmSpec): Promise<Target> {
  const t = spec.target;
  let target: Target;
  if (t.startsWith('qmp:')) target = await resolveTarget(undefined, { qmp: t.slice(4) });
  else if (t.startsWith('pid:')) target = await resolveTarget(undefined, { pid: t.slice(4) });
  else if (existsSync(t) && statSync(t).isSocket()) target = await resolveTarget(undefined, { qmp: t });
  else target = await resolveTarget(t, {});
  target.name = spec.name;
  return target;
}

type VmStatus = 'new' | 'up' | 'down';

/** One VM held by the exporter. */
export class VmState {
  target: Target | undefined;
  handles: VmHandles = {};
  status: VmStatus = 'new';
  /** The boot the guest was discovered in ("BUILD-ID/KASLR"), or the RAM file's identity. */
  boot: string | undefined;
  lastError: string | undefined;
  /** Counters kept across scrapes (Prometheus counters must not go down). */
  tornReadsTotal = 0;
  retriesTotal = 0;
  rediscoveries = 0;

  constructor(readonly spec: VmSpec) {}

  get name(): string {
    return this.spec.name;
  }
}

function fileIdentity(path: string): string | undefined {
  try {
    const st = statSync(path);
    return `${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch {
    return undefined;
  }
}

export interface ExporterOptions extends CollectOptions {
  /** One line per VM state change (stderr in the CLI). */
  log: (line: string) => void;
}

export class Exporter {
  readonly vms = new Map<string, VmState>();
  private chain: Promise<unknown> = Promise.resolve();

  constructor(readonly collectors: Collector[], readonly opts: ExporterOptions) {}

  /** Make the VM set `specs`: new ones are added (opened on first collection), gone ones closed. */
  setVms(specs: VmSpec[]): { added: string[]; removed: string[] } {
    const wanted = new Map(specs.map((s) => [s.name, s]));
    const added: string[] = [];
    const removed: string[] = [];
    for (const [name, vm] of this.vms) {
      const s = wanted.get(name);
      if (!s || s.target !== vm.spec.target) {
        closeHandles(vm.handles);
        this.vms.delete(name);
        removed.push(name);
      }
    }
    for (const s of specs) {
      if (!this.vms.has(s.name)) {
        this.vms.set(s.name, new VmState(s));
        added.push(s.name);
      }
    }
    return { added, removed };
  }

  private setStatus(vm: VmState, status: VmStatus, detail: string): void {
    if (vm.status === status && (status !== 'down' || vm.lastError === detail)) return;
    vm.status = status;
    vm.lastError = status === 'down' ? detail : undefined;
    this.opts.log(`vm ${vm.name}: ${status}${detail ? ` (${detail})` : ''}`);
  }

  /** Open the VM if it is not, and rediscover it when its guest rebooted or its snapshot file was replaced. */
  private async ensureOpen(vm: VmState): Promise<void> {
    if (vm.target && (vm.handles.guest || vm.handles.disk)) {
      const now = this.identity(vm);
      if (now !== undefined && now === vm.boot) return;
      const why = now === undefined ? 'its RAM cannot be read any more' : vm.target.live ? `rebooted (boot ${vm.boot} → ${now})` : 'its RAM file was replaced';
      closeHandles(vm.handles);
      vm.rediscoveries++;
      this.opts.log(`vm ${vm.name}: ${why}; rediscovering`);
    }
    vm.target = await specTarget(vm.spec);
    vm.handles = await openHandles(vm.target, this.opts);
    if (vm.handles.guest) vm.handles.guest.setLive(vm.target.live !== undefined);
    vm.boot = this.identity(vm);
  }

  /** What changes on a reboot (live: BUILD-ID/KASLR read from RAM now) or a new snapshot (the RAM file's inode and mtime). */
  private identity(vm: VmState): string | undefined {
    const g = vm.handles.guest;
    if (!vm.target) return undefined;
    if (!vm.target.live) return vm.target.ram ? fileIdentity(vm.target.ram) : 'disk-only';
    if (!g) return undefined;
    try {
      return g.bootIdentity();
    } catch {
      return undefined;
    }
  }

  /** Collect one VM; never throws (a failure is the VM's own report with its errors). */
  async collectOne(vm: VmState): Promise<VmReport> {
    const started = performance.now();
    let report: VmReport;
    try {
      await this.ensureOpen(vm);
      const target = vm.target as Target;
      report = await collectWith(target, vm.handles, this.opts, this.collectors, started);
      // Keep the exporter's RSS bounded by its VMs' profiles, not by the RAM pages each scrape touched.
      vm.handles.guest?.releaseMemory();
      const failedOpen = vm.handles.guestError ?? vm.handles.diskError;
      if (failedOpen !== undefined) {
        this.setStatus(vm, 'down', toNearfieldError(failedOpen).message);
        closeHandles(vm.handles); // try again from scratch next time
        vm.target = undefined;
      } else {
        const k = report.sections.kernel;
        this.setStatus(vm, 'up', [k?.release, target.live ? `live QEMU pid ${target.live.pid}` : target.dir ?? target.ram].filter(Boolean).join(', '));
      }
      // A live guest that vanished mid-collection (QEMU exited) is reopened next time.
      if (report.errors.some((e) => /does not exist|permission denied/.test(e.message)) && target.live) {
        this.setStatus(vm, 'down', report.errors[0]?.message ?? 'unreadable');
        closeHandles(vm.handles);
        vm.target = undefined;
      }
    } catch (e) {
      const err = toNearfieldError(e);
      report = emptyReport(vm.target ?? { name: vm.name, ramLayout: 'auto', isSample: false });
      report.vm = vm.name;
      report.errors = this.collectors.map((c) => ({ collector: c.name, message: err.message }));
      this.setStatus(vm, 'down', err.message);
      closeHandles(vm.handles);
      vm.target = undefined;
    }
    vm.tornReadsTotal += report.tornReads;
    vm.retriesTotal += report.retries;
    report.tornReads = vm.tornReadsTotal;
    report.retries = vm.retriesTotal;
    return report;
  }

  /** Collect every VM, one after another (the native reads are synchronous; one scrape at a time). */
  collectAll(): Promise<VmReport[]> {
    const run = async () => {
      const out: VmReport[] = [];
      for (const vm of this.vms.values()) out.push(await this.collectOne(vm));
      return out;
    };
    const next = this.chain.then(run, run);
    this.chain = next.catch(() => undefined);
    return next;
  }

  /** Resolves when no collection is running. */
  idle(): Promise<void> {
    return this.chain.then(() => undefined);
  }

  close(): void {
    for (const vm of this.vms.values()) closeHandles(vm.handles);
  }
}

/** Where the VM list comes from, read again on SIGHUP. */
export interface VmSources { vm: string[]; config?: string; dir?: string }

export function loadSpecs(src: VmSources): VmSpec[] {
  const specs = src.vm.map((v) => parseVmSpec(v));
  if (src.config) {
    let text: string;
    try {
      text = readFileSync(src.config, 'utf8');
    } catch (e) {
      throw new NearfieldError('IO', `cannot read the config file: ${(e as Error).message}`, src.config);
    }
    specs.push(...parseConfig(text, src.config));
  }
  if (src.dir) {
    if (!existsSync(src.dir) || !statSync(src.dir).isDirectory()) throw new NearfieldError('NOT_FOUND', 'no such directory (given with --dir)', src.dir);
    specs.push(...scanDirectory(resolvePath(src.dir)));
  }
  const seen = new Set<string>();
  for (const s of specs) {
    if (seen.has(s.name)) throw new NearfieldError('USAGE', `two VMs are named "${s.name}"`);
    seen.add(s.name);
  }
  return specs;
}

