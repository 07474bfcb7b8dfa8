// Scale benchmark (issue 13): a dense 16 GiB RAM file — the 16 GiB guest's own pages where the guest wrote them,
// fast PRNG junk in every page it never touched — so no scan can skip a hole. Cold (no profile cache, no
// VMCOREINFO hint) and warm `kernel` and `ps` on it, interleaved, with every command's peak RSS, warm `ps` on the
// sample in the same run, and `ps` on the guest's kdump-zlib and ELF core. Targets: cold ≤ 2 s, peak RSS
// ≤ 150 MB, warm ≤ 1.2× the sample's warm.
//
// The guest: images/out/bench-16g (NEARFIELD_BENCH_16G to point elsewhere). The dense file is written once beside
// it (NEARFIELD_BENCH_DENSE to choose the path) and reused while the guest's ram.raw is unchanged; ram.raw is only
// read. Holes are found with SEEK_DATA/SEEK_HOLE (asked of python3: Node has no lseek).

import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readSync, realpathSync, renameSync, rmSync, statSync, statfsSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { samplePaths } from '../src/target.js';
import { benchRuns, cliPath, interleaved, root, row, type Timed } from './util.js';

const BUILD_HINT = 'node images/build-guest.mjs --out images/out/bench-16g --mem 16G --timeout 900 (~30 min)';
/** Bumped when the way the dense file is made changes, so an old one is rebuilt. */
const DENSE_FORMAT = 1;
const CHUNK = 8 << 20;

/** The data extents of `file` as [start, end) byte ranges (lseek SEEK_DATA/SEEK_HOLE through python3). */
function dataExtents(file: string): [number, number][] {
  const py = [
    'import os, sys',
    'fd = os.open(sys.argv[1], os.O_RDONLY); end = os.fstat(fd).st_size; pos = 0',
    'while pos < end:',
    '    try: data = os.lseek(fd, pos, os.SEEK_DATA)',
    '    except OSError: break',
    '    hole = os.lseek(fd, data, os.SEEK_HOLE); print(data, min(hole, end)); pos = hole',
  ].join('\n');
  const r = spawnSync('python3', ['-c', py, file], { encoding: 'utf8', maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`listing the data extents of ${file} needs python3: ${r.error?.message ?? r.stderr.trim()}`);
  return r.stdout.trim().split('\n').filter(Boolean).map((l) => l.split(' ').map(Number) as [number, number]);
}

/** xorshift128 junk, 32 bits at a time: fast, and nothing like a kernel structure or a zero page. */
class Junk {
  private s = new Uint32Array([0x9e3779b9, 0x243f6a88, 0xb7e15162, 0x13198a2e]);
  fill(buf: Buffer): void {
    const w = new Uint32Array(buf.buffer, buf.byteOffset, buf.length >>> 2);
    const s = this.s;
    let [x, y, z, v] = [s[0]!, s[1]!, s[2]!, s[3]!];
    for (let i = 0; i < w.length; i++) {
      const t = x ^ (x << 11);
      x = y; y = z; z = v;
      v = (v ^ (v >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
      w[i] = v;
    }
    s.set([x, y, z, v]);
  }
}

interface DenseStamp { format: number; source: string; size: number; mtimeMs: number; ino: number }

/** The dense copy of `ram`, made now unless a copy of this very ram.raw is already at `dense`. */
function denseCopy(ram: string, dense: string): void {
  const st = statSync(ram);
  const stamp: DenseStamp = { format: DENSE_FORMAT, source: realpathSync(ram), size: st.size, mtimeMs: st.mtimeMs, ino: st.ino };
  const stampFile = `${dense}.json`;
  if (existsSync(dense) && existsSync(stampFile) && statSync(dense).size === st.size && readFileSync(stampFile, 'utf8') === JSON.stringify(stamp)) return;
  const free = statfsSync(dirname(dense));
  if (free.bavail * free.bsize < st.size + (1 << 30)) throw new Error(`${dirname(dense)} has ${(free.bavail * free.bsize / 2 ** 30).toFixed(1)} GiB free; the dense copy needs ${(st.size / 2 ** 30).toFixed(0)} GiB (set NEARFIELD_BENCH_DENSE)`);
  const extents = dataExtents(ram);
  const tmp = `${dense}.tmp-${process.pid}`;
  const t0 = performance.now();
  const src = openSync(ram, 'r');
  const out = openSync(tmp, 'w');
  const buf = Buffer.alloc(CHUNK);
  const junk = new Junk();
  let copied = 0;
  let shown = 0;
  try {
    let pos = 0;
    let next = 0;
    while (pos < st.size) {
      // the guest's bytes inside a data extent, junk up to the next one
      const ext = extents[next];
      const inData = ext !== undefined && pos >= ext[0] && pos < ext[1];
      const end = Math.min(pos + CHUNK, inData ? ext[1] : (ext?.[0] ?? st.size), st.size);
      const n = end - pos;
      const view = buf.subarray(0, n);
      if (inData) {
        for (let got = 0; got < n; ) {
          const r = readSync(src, view, got, n - got, pos + got);
          if (r === 0) throw new Error(`${ram} ended at byte ${pos + got}`);
          got += r;
        }
        copied += n;
      } else {
        junk.fill(view);
      }
      let put = 0;
      while (put < n) put += writeSync(out, view, put, n - put, pos + put);
      pos = end;
      if (ext !== undefined && pos >= ext[1]) next++;
      if (Math.floor(pos / 2 ** 30) > shown) {
        shown = Math.floor(pos / 2 ** 30);
        process.stderr.write(`\rdense copy: ${shown} of ${(st.size / 2 ** 30).toFixed(0)} GiB`);
      }
    }
  } finally {
    closeSync(src);
    closeSync(out);
  }
  renameSync(tmp, dense);
  writeFileSync(stampFile, JSON.stringify(stamp));
  process.stderr.write('\r\x1b[K');
  row('dense copy made', `${dense}: ${(copied / 2 ** 20).toFixed(0)} MiB of guest data, the rest junk, in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}

/** Drop the file's pages from the page cache (posix_fadvise DONTNEED), so a run reads it from disk. */
function evictFromPageCache(file: string): void {
  spawnSync('python3', ['-c', 'import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)', file]);
}

export async function benchScale(): Promise<void> {
  const guest = process.env.NEARFIELD_BENCH_16G ?? join(root, 'images', 'out', 'bench-16g');
  const ram = join(guest, 'ram.raw');
  if (!existsSync(ram)) {
    row('scale (16 GiB)', `skipped: no 16 GiB guest at ${guest}; build it with ${BUILD_HINT}`);
    return;
  }
  const dense = process.env.NEARFIELD_BENCH_DENSE ?? join(dirname(realpathSync(guest)), 'dense-16g.raw');
  denseCopy(ram, dense);
  const sample = (await samplePaths()).ram;

  const node = process.execPath;
  const warmDir = mkdtempSync(join(tmpdir(), 'nf-bench-scale-'));
  const warm = { ...process.env, NEARFIELD_CACHE_DIR: warmDir };
  // A cold run gets an empty cache directory of its own: no profile, no remembered VMCOREINFO place.
  let coldDir = '';
  const cold = (label: string, args: string[], evict = false): Timed => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    return {
      label, cmd: node, args: [cliPath, ...args], env,
      before: () => {
        coldDir = mkdtempSync(join(tmpdir(), 'nf-bench-scale-cold-'));
        env.NEARFIELD_CACHE_DIR = coldDir;
        if (evict) evictFromPageCache(dense);
      },
      after: () => rmSync(coldDir, { recursive: true, force: true }),
    };
  };
  const hot = (label: string, args: string[]): Timed => ({ label, cmd: node, args: [cliPath, ...args], env: warm });
  try {
    interleaved([dense, sample, join(guest, 'kdump-zlib'), join(guest, 'core.elf')].filter((f) => existsSync(f)).map((f) => hot(`fill ${f}`, ['ps', '--ram', f])), 1);
    const commands: Timed[] = [
      cold('kernel, cold, file evicted from the page cache', ['kernel', '--ram', dense, '--json'], true),
      cold('kernel, cold', ['kernel', '--ram', dense, '--json']),
      cold('ps, cold', ['ps', '--ram', dense]),
      hot('kernel, warm', ['kernel', '--ram', dense, '--json']),
      hot('ps, warm', ['ps', '--ram', dense]),
      hot('ps, warm, sample (256 MiB)', ['ps', '--ram', sample]),
    ];
    // The guest's other RAM files, for peak RSS on every source of a 16 GiB guest (VMCOREINFO is in their headers).
    for (const file of ['kdump-zlib', 'core.elf']) {
      if (!existsSync(join(guest, file))) continue;
      commands.push(cold(`ps, cold, the guest's ${file}`, ['ps', '--ram', join(guest, file)]), hot(`ps, warm, the guest's ${file}`, ['ps', '--ram', join(guest, file)]));
    }
    const runs = benchRuns(7);
    const t = interleaved(commands, runs);
    row('guest', `${guest} (${(statSync(dense).size / 2 ** 30).toFixed(0)} GiB dense copy ${dense})`);
    row('command (16 GiB dense RAM file unless said)', `median of ${runs} interleaved runs, peak RSS (GNU time %M); targets: cold ≤ 2 s, RSS ≤ 150 MB`);
    for (const c of commands) {
      const { medianMs, peakRssMb } = t.get(c.label)!;
      row(`  ${c.label}`, `${medianMs.toFixed(1).padStart(7)} ms  ${String(peakRssMb).padStart(4)} MB`);
    }
    const ratio = t.get('ps, warm')!.medianMs / t.get('ps, warm, sample (256 MiB)')!.medianMs;
    row('warm ps, 16 GiB / 256 MiB sample', `${ratio.toFixed(2)}× (target ≤ 1.2×)`);
  } finally {
    rmSync(warmDir, { recursive: true, force: true });
  }
}
