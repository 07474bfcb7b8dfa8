// Target resolution: a snapshot directory, explicit --ram/--disk files, or the embedded sample guest in images/.

import { existsSync, readFileSync, statSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { NearfieldError } from './errors.js';
import { fromNative, native } from './native/gateway.js';
import { liveName } from './live/qemu.js';

/** Options every command accepts to say what to look at. */
export interface TargetOptions {
  ram?: string;
  disk?: string;
  ramLayout?: string;
  partition?: string;
  /** A running QEMU as the RAM source: its pid … */
  pid?: string;
  /** … or its QMP socket (QEMU's exact memory map; the pid is the socket's peer). */
  qmp?: string;
  /** Pause the VM over QMP while reading (only if it was running; resumed after). */
  pause?: boolean;
}

/** A running QEMU read live (`--pid`, `--qmp`). */
export interface LiveTarget {
  pid?: number;
  qmp?: string;
  /** Pause it through QMP for the read. */
  pause: boolean;
}

export interface Target {
  /** Short name for labels (Prometheus `vm`, report headers): the directory or file name. */
  name: string;
  /** The snapshot directory, when the target is one. */
  dir?: string;
  /** RAM source: raw memory file, ELF core, LiME or kdump-compressed dump. */
  ram?: string;
  /** Raw RAM layout ('auto' when unsaid): qemu-pc, qemu-q35, firecracker, flat, or NAME:SPLIT forms the native side parses. */
  ramLayout: string;
  /** Disk image: raw, partitioned or qcow2. */
  disk?: string;
  /** `--partition N` (1-based) when given. */
  partition?: number;
  /** The snapshot's manifest.json, when present. */
  manifest?: Record<string, unknown>;
  /** True for the embedded sample in images/. */
  isSample: boolean;
  /** Set when the RAM is a running QEMU process rather than a file. */
  live?: LiveTarget;
}

/** What to call the target's RAM in messages: the file, or the live QEMU. */
export function ramLabel(target: Target): string | undefined {
  if (target.live) return target.live.qmp ? `QEMU at ${target.live.qmp}` : `QEMU pid ${target.live.pid}`;
  return target.ram;
}

/** The package root (where package.json lives, and images/ in a checkout), from dist/src/ or src/. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && /"name":\s*"nearfield"/.test(readFileSync(pkg, 'utf8'))) return dir;
    dir = dirname(dir);
  }
  throw new NearfieldError('INTERNAL', 'cannot find the nearfield package root');
}

// File names tried in a snapshot directory when its manifest does not name them.
const ramNames = ['ram.raw', 'memory.raw', 'mem.raw', 'ram', 'memory', 'snapshot.mem', 'mem.file'];
const coreNames = ['core.elf', 'vmcore', 'memory.lime', 'ram.lime'];
const diskNames = ['rootfs.ext4', 'rootfs.img', 'disk.qcow2', 'disk.img', 'disk.raw', 'rootfs.qcow2'];

/**
 * What a command reads: `positional` (a snapshot directory), or the files given with --ram/--disk, or the
 * embedded sample. `command` names the command in hints. Usage errors (exit 2): a directory and --ram/--disk
 * together (one VM, one source for each), an unknown --ram-layout, a bad --partition.
 */
export async function resolveTarget(positional: string | undefined, opts: TargetOptions, command = 'ps'): Promise<Target> {
  const partition = parsePartition(opts.partition);
  if (opts.ramLayout !== undefined) checkRamLayout(opts.ramLayout);
  const ramLayout = opts.ramLayout ?? 'auto';
  if (opts.pid !== undefined || opts.qmp !== undefined) return liveTarget(positional, opts, partition);
  if (opts.pause) throw new NearfieldError('USAGE', '--pause pauses a running VM through QMP: give --qmp SOCKET');
  if (positional !== undefined && (opts.ram || opts.disk)) {
    throw new NearfieldError('USAGE', `give a snapshot directory or --ram/--disk files, not both (the directory "${positional}" names its own ${opts.ram ? 'RAM file' : 'disk image'})`);
  }
  if (positional === undefined && (opts.ram || opts.disk)) {
    const ram = opts.ram ? checkFile(opts.ram, '--ram') : undefined;
    const disk = opts.disk ? checkFile(opts.disk, '--disk') : undefined;
    return { name: basename(ram ?? disk ?? 'vm'), ram, disk, ramLayout, partition, isSample: false };
  }
  if (positional === undefined) return sampleTarget(ramLayout, partition);

  const path = resolve(positional);
  if (!existsSync(path)) throw new NearfieldError('NOT_FOUND', 'no such snapshot directory or file', positional);
  if (!statSync(path).isDirectory()) {
    const flag = looksLikeDisk(path) ? '--disk' : '--ram';
    throw new NearfieldError('USAGE', `not a snapshot directory; give a ${flag === '--disk' ? 'disk image' : 'RAM file'} with ${flag}`, positional,
      `nearfield ${command} ${flag} ${positional}`);
  }
  const manifest = readManifest(path);
  const named = (key: 'ram' | 'disk'): string | undefined => {
    const entry = manifest?.[key] as { file?: unknown } | string | undefined;
    const file = typeof entry === 'string' ? entry : typeof entry?.file === 'string' ? entry.file : undefined;
    return file ? join(path, file) : undefined;
  };
  const ram = named('ram') ?? firstExisting(path, ramNames) ?? firstExisting(path, coreNames);
  const disk = named('disk') ?? firstExisting(path, diskNames);
  if (!ram && !disk) {
    throw new NearfieldError('NOT_FOUND', `no RAM file or disk image in the directory (looked for manifest.json, ${ramNames[0]}, ${diskNames[0]} …)`, positional);
  }
  const layoutFromManifest = (manifest?.ram as { layout?: unknown } | undefined)?.layout;
  return {
    name: basename(path),
    dir: path,
    ram,
    disk,
    ramLayout: opts.ramLayout ?? (typeof layoutFromManifest === 'string' ? layoutFromManifest : 'auto'),
    partition,
    manifest,
    isSample: false,
  };
}

/** A --ram-layout the native side would refuse is a usage error, found before anything is opened. */
export function checkRamLayout(spec: string): void {
  try {
    native().checkRamLayout(spec);
  } catch (e) {
    const err = fromNative(e);
    if (err instanceof NearfieldError && err.code !== 'INTERNAL') throw new NearfieldError('USAGE', `--ram-layout: ${err.message}`);
    throw err;
  }
}

/** Whether a file starts like a disk image (for the hint when one is given where a directory belongs). */
function looksLikeDisk(path: string): boolean {
  try {
    return native().imageKind(path) !== null;
  } catch {
    return false;
  }
}

/** `--pid PID` / `--qmp SOCKET`: a running QEMU, with an optional `--disk`. */
function liveTarget(positional: string | undefined, opts: TargetOptions, partition: number | undefined): Target {
  if (opts.ram) throw new NearfieldError('USAGE', '--ram and --pid/--qmp name two RAM sources: give one');
  if (positional !== undefined) throw new NearfieldError('USAGE', `a live VM (--pid/--qmp) takes no snapshot directory (got "${positional}")`);
  let pid: number | undefined;
  if (opts.pid !== undefined) {
    pid = Number(opts.pid);
    if (!Number.isInteger(pid) || pid < 1 || pid > 4_194_304) throw new NearfieldError('USAGE', `--pid takes a process id, not "${opts.pid}"`);
  }
  if (opts.qmp !== undefined && !existsSync(opts.qmp)) throw new NearfieldError('NOT_FOUND', 'no such QMP socket (given with --qmp)', opts.qmp);
  if (opts.pause && !opts.qmp) throw new NearfieldError('USAGE', '--pause pauses the VM through QMP: give --qmp SOCKET too');
  const disk = opts.disk ? checkFile(opts.disk, '--disk') : undefined;
  return {
    name: liveName({ pid, qmp: opts.qmp }),
    disk,
    ramLayout: 'auto',
    partition,
    isSample: false,
    live: { pid, qmp: opts.qmp === undefined ? undefined : resolve(opts.qmp), pause: opts.pause === true },
  };
}

function readManifest(dir: string): Record<string, unknown> | undefined {
  const file = join(dir, 'manifest.json');
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new NearfieldError('BAD_DATA', `manifest is not valid JSON: ${(e as Error).message}`, file);
  }
}

/** A host directory that holds a snapshot: a manifest.json, or a RAM file or disk image by a known name. */
export function isSnapshotDir(path: string): boolean {
  try {
    if (!statSync(path).isDirectory()) return false;
    const present = new Set(readdirSync(path));
    return present.has('manifest.json') || [...ramNames, ...coreNames, ...diskNames].some((n) => present.has(n));
  } catch {
    return false;
  }
}

function firstExisting(dir: string, names: string[]): string | undefined {
  const present = new Set(readdirSync(dir));
  const hit = names.find((n) => present.has(n));
  return hit ? join(dir, hit) : undefined;
}

function checkFile(path: string, flag: string): string {
  if (!existsSync(path)) throw new NearfieldError('NOT_FOUND', `no such file (given with ${flag})`, path);
  if (statSync(path).isDirectory()) throw new NearfieldError('USAGE', `${flag} takes a file, not a directory`, path);
  return resolve(path);
}

function parsePartition(p: string | undefined): number | undefined {
  if (p === undefined) return undefined;
  const n = Number(p);
  if (!Number.isInteger(n) || n < 1 || n > 128) throw new NearfieldError('USAGE', `--partition takes a number from 1 to 128, not "${p}"`);
  return n;
}

interface SamplePaths { dir: string; ram: string; core: string; disk: string; truth: string; manifest: string }

/** The embedded sample: unpacked from images/sample/ on first use (images/unpack-sample.mjs). */
export async function samplePaths(): Promise<SamplePaths> {
  const images = join(packageRoot(), 'images');
  const script = join(images, 'unpack-sample.mjs');
  if (!existsSync(script)) throw new NearfieldError('NOT_FOUND', 'the embedded sample is missing', script);
  // Already unpacked: ask the CommonJS half, which spares a warm command Node's ES module loader.
  const cache = join(images, 'sample-cache.cjs');
  if (existsSync(cache)) {
    const fresh = (createRequire(import.meta.url)(cache) as { freshSample(): SamplePaths | null }).freshSample();
    if (fresh) return fresh;
  }
  const mod = (await import(pathToFileURL(script).href)) as { samplePaths(): Promise<SamplePaths> };
  return mod.samplePaths();
}

async function sampleTarget(ramLayout: string, partition: number | undefined): Promise<Target> {
  const s = await samplePaths();
  const manifest = JSON.parse(readFileSync(s.manifest, 'utf8')) as Record<string, unknown>;
  return { name: 'sample', dir: s.dir, ram: s.ram, disk: s.disk, ramLayout, partition, manifest, isSample: true };
}
