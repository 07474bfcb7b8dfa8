// kdump-compressed dumps (issue 15) of a guest built by images/build-guest.mjs: QEMU's kdump-zlib (flattened) and
// makedumpfile's vmcores, all of the paused instant ram.raw holds. Every command reads them like ram.raw, and so
// like the guest's own truth; a filtered dump says what it left out; broken dumps give one line and exit 1.
// CI sets NEARFIELD_KDUMP_GUEST (a guest it builds), so a guest without dumps fails there instead of skipping.

import { closeSync, copyFileSync, existsSync, ftruncateSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { root, run, type Truth } from './walkers-helpers.js';

const required = process.env.NEARFIELD_KDUMP_GUEST;
const dir = required ?? join(root, 'images', 'out', 'no5lvl-256m');
const present = existsSync(join(dir, 'kdump-zlib')) && existsSync(join(dir, 'truth.json')) && existsSync(join(dir, 'manifest.json'));

interface DumpFacts { writer: string; form: 'flattened' | 'standard'; compression: string; dump_level: number }

const manifest = present ? JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) : { dumps: {} };
const truth: Truth = present ? JSON.parse(readFileSync(join(dir, 'truth.json'), 'utf8')) : undefined;
const dumps = Object.entries(manifest.dumps as Record<string, DumpFacts>);
const complete = dumps.filter(([, d]) => d.dump_level <= 1);
const filtered = dumps.filter(([, d]) => d.dump_level === 31);
const tmp = mkdtempSync(join(tmpdir(), 'nf-kdump-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** `nearfield CMD --ram FILE --json --no-cache`: exit 0 and its JSON. */
function json(cmd: string[], file: string): Truth {
  const r = run([...cmd, '--ram', file, '--json', '--no-cache']);
  expect(r.status, `${cmd.join(' ')} on ${file}: ${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout);
}

const rawCache = new Map<string, Truth>();
function onRaw(cmd: string): Truth {
  if (!rawCache.has(cmd)) rawCache.set(cmd, json([cmd], join(dir, 'ram.raw')));
  return rawCache.get(cmd);
}

/** /dev/kmsg escapes bytes below space, from 127 up, and the backslash as \xNN (kernel/printk/printk.c). */
const kmsgEscape = (s: string) => s.replace(/[\x00-\x1f\x7f-\xff\\]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);

const pids = (tasks: { pid: number }[]) => tasks.map((t) => t.pid).sort((a, b) => a - b);
const truthPids = () => pids(truth.processes);

/** One line on stderr, exit 1, and no crash. */
function failsWithOneLine(args: string[], pattern: RegExp) {
  const r = run(args);
  expect(r.status, r.stderr).toBe(1);
  expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
  expect(r.stderr).toMatch(/^nearfield: /);
  expect(r.stderr).toMatch(pattern);
  expect(r.stderr).not.toMatch(/panicked|RUST_BACKTRACE|at .*\.js:\d+/);
  expect(r.stdout).toBe('');
}

describe.skipIf(!present && !required)(`kdump dumps of the guest in ${dir}`, () => {
  it('the guest was built with its dumps (node images/build-guest.mjs)', () => {
    expect(present, `no kdump-zlib/truth.json/manifest.json in ${dir}`).toBe(true);
    expect(Object.keys(manifest.dumps)).toContain('kdump-zlib');
    expect(manifest.dumps['kdump-zlib'].form).toBe('flattened'); // QEMU 7.2 writes every kdump-* flattened
    for (const name of Object.keys(manifest.dumps)) expect(manifest.files[name].sha256).toMatch(/^[0-9a-f]{64}$/);
    // CI installs makedumpfile (images/APT_PACKAGES): its standard-form and filtered dumps must be there too.
    if (required) expect(Object.keys(manifest.dumps)).toEqual(expect.arrayContaining(['vmcore-lzo', 'vmcore-d31']));
  });

  it.each(complete)('%s: ps, meminfo, buddyinfo and dmesg equal those of ram.raw of the same instant, and the truth', (name) => {
    const file = join(dir, name);
    const ps = json(['ps'], file);
    expect(ps).toEqual(onRaw('ps'));
    expect(pids(ps.tasks)).toEqual(truthPids());
    for (const p of truth.processes.filter((q: Truth) => q.comm.startsWith('nf-'))) {
      const t = ps.tasks.find((x: Truth) => x.pid === p.pid);
      expect([t.comm, t.ppid, t.uid, t.nice], `pid ${p.pid}`).toEqual([p.comm, p.ppid, p.uid, p.nice]);
      if (p.state === 'Z') continue; // no mm: no RSS, no cmdline
      expect([t.rss.pages, t.cmdline], `pid ${p.pid}`).toEqual([p.rss_pages, p.cmdline]);
    }
    const meminfo = json(['meminfo'], file);
    expect(meminfo).toEqual(onRaw('meminfo'));
    const kb = Object.fromEntries(meminfo.fields.map((f: Truth) => [f.name, f.value]));
    expect(kb.MemTotal).toBe(truth.meminfo.MemTotal);
    const buddy = json(['buddyinfo'], file);
    expect(buddy).toEqual(onRaw('buddyinfo'));
    expect(buddy.zones.map((z: Truth) => z.zone)).toEqual(truth.buddyinfo.map((z: Truth) => z.zone));
    expect(kb.MemFree * 1024).toBe(buddy.summary.freeBytes);
    const dmesg = json(['dmesg'], file);
    expect(dmesg).toEqual(onRaw('dmesg'));
    const bySeq = new Map(dmesg.records.map((r: Truth) => [r.seq, r]));
    for (const t of truth.dmesg) expect(kmsgEscape(bySeq.get(t.seq)?.text ?? ''), `seq ${t.seq}`).toBe(t.text);
  });

  it.each(dumps)('%s: kernel names the format and takes VMCOREINFO from the dump header', (name, facts) => {
    const k = json(['kernel'], join(dir, name));
    expect(k.format).toBe(facts.form === 'flattened' ? 'kdump-flattened' : 'kdump');
    expect(k.layout).toContain(`${facts.compression} pages`);
    expect(k.layout).toContain(`dump level ${facts.dump_level}`);
    expect(k.sources.find((s: Truth) => s.fact === 'vmcoreinfo').source).toBe('dump-header');
    expect(k.release).toBe(truth.uname.release);
    expect(k.banner).toBe(truth.kernel.proc_version);
    expect(k.warnings).toEqual([]);
  });

  it.each(filtered)('%s (makedumpfile -d 31): every task listed, the user pages it left out named as such', (name) => {
    const file = join(dir, name);
    const ps = json(['ps'], file);
    expect(ps.warnings).toEqual([]);
    expect(pids(ps.tasks)).toEqual(truthPids());
    const raw = onRaw('ps');
    const users = ps.tasks.filter((t: Truth) => !t.kernelThread && t.state !== 'Z');
    expect(users.length).toBeGreaterThanOrEqual(10);
    for (const t of ps.tasks) {
      const r = raw.tasks.find((x: Truth) => x.pid === t.pid);
      const strip = ({ cmdline: _c, cmdlineError: _e, ...rest }: Truth) => rest;
      expect(strip(t), `pid ${t.pid}`).toEqual(strip(r)); // RSS, VSZ, states, times: all kernel memory, all there
      if (users.includes(t)) {
        expect(t.cmdline, `pid ${t.pid}`).toBeNull();
        expect(t.cmdlineError).toMatch(/^user page at 0x[0-9a-f]+: page excluded by the dump \(makedumpfile -d 31\)/);
      } else {
        expect(t.cmdline, `pid ${t.pid}`).toEqual(r.cmdline);
      }
    }
    const table = run(['ps', '--ram', file, '--no-cache']);
    expect(table.status).toBe(0);
    expect(table.stdout).toMatch(/nf-longcmd \(cmdline user page at 0x[0-9a-f]+: page excluded by the dump \(makedumpfile -d 31\)/);
    for (const cmd of ['meminfo', 'buddyinfo', 'dmesg']) expect(json([cmd], file), cmd).toEqual(onRaw(cmd));
  });

  it('the report and the Volatility ISF export are those of ram.raw', () => {
    // Every section but the kernel's own facts about its RAM file (format, layout, timings) is the same.
    // A kdump also carries QEMU's per-vCPU register notes, which a raw RAM file cannot: where each CPU was is
    // compared apart.
    const sections = (file: string) => {
      const { kernel, health, ...rest } = json(['report'], file)[0].sections;
      const cpus = health.cpus.map(({ ip: _i, registers: _r, userMode: _u, ...c }: Truth) => c);
      return { ...rest, health: { ...health, cpus }, kernel: [kernel.release, kernel.banner, kernel.buildId, kernel.kaslrOffset, kernel.dtb] };
    };
    expect(sections(join(dir, 'kdump-zlib'))).toEqual(sections(join(dir, 'ram.raw')));
    const registers = (file: string) => json(['report'], file)[0].sections.health.cpus.map((c: Truth) => c.registers);
    expect(registers(join(dir, 'ram.raw')).every((r: unknown) => r === null)).toBe(true);
    expect(registers(join(dir, 'kdump-zlib')).every((r: unknown) => r === 'kdump')).toBe(true);
    const isf = (file: string, out: string) => {
      const r = run(['profile', 'export', '--isf', out, '--ram', file, '--no-cache']);
      expect(r.status, r.stderr).toBe(0);
      return readFileSync(out, 'utf8');
    };
    expect(isf(join(dir, 'kdump-zlib'), join(tmp, 'kdump.isf.json'))).toEqual(isf(join(dir, 'ram.raw'), join(tmp, 'raw.isf.json')));
  });

  it('convert --to elf makes a core every command reads as ram.raw; --to raw of a filtered dump warns', () => {
    const elf = join(tmp, 'from-kdump.elf');
    const r = run(['convert', join(dir, 'kdump-zlib'), elf, '--to', 'elf']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/ELF core from kdump-flattened, \d+ ranges, .* written \(the rest are holes\), VMCOREINFO note/);
    expect(statSync(elf).blocks * 512).toBeLessThan(statSync(elf).size); // sparse: zero pages are holes
    expect(json(['kernel'], elf).format).toBe('elf-core');
    expect(json(['ps'], elf)).toEqual(onRaw('ps'));
    // Never overwrites.
    const again = run(['convert', join(dir, 'kdump-zlib'), elf, '--to', 'elf']);
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/cannot create .*File exists/);
    if (filtered.length) {
      const out = join(tmp, 'from-d31.raw');
      const c = run(['convert', join(dir, filtered[0]![0]), out, '--to', 'raw', '--json']);
      expect(c.status, c.stderr).toBe(3);
      expect(c.stderr).toMatch(/warning: \d+ pages the dump excluded \(makedumpfile -d\) are zeros in the output/);
      expect(JSON.parse(c.stdout).excludedPages).toBeGreaterThan(1000);
    }
  });

  describe('broken dumps: one clear line, exit 1, never a crash', () => {
    const derive = (from: string, name: string, edit: (fd: number, size: number) => void) => {
      const file = join(tmp, name);
      copyFileSync(join(dir, from), file);
      const fd = openSync(file, 'r+');
      try {
        edit(fd, statSync(file).size);
      } finally {
        closeSync(fd);
      }
      return file;
    };
    const u32 = (fd: number, at: number) => {
      const b = Buffer.alloc(4);
      readSync(fd, b, 0, 4, at);
      return b.readUInt32LE(0);
    };
    const put32 = (fd: number, at: number, v: number) => {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(v >>> 0);
      writeSync(fd, b, 0, 4, at);
    };
    /** Rewrite one u32 field of every page descriptor of a standard dump (disk_dump_header: block_size 428,
     *  sub_hdr_size 432, bitmap_blocks 436; descriptors follow the bitmaps, 24 bytes each, up to the first page's data). */
    const everyDescriptor = (fd: number, field: number, value: number) => {
      const block = u32(fd, 428);
      const start = (1 + u32(fd, 432) + u32(fd, 436)) * block;
      const b = Buffer.alloc(8);
      readSync(fd, b, 0, 8, start);
      const end = Number(b.readBigUInt64LE(0));
      for (let at = start; at + 24 <= end; at += 24) put32(fd, at + field, value);
    };
    const standard = dumps.find(([, d]) => d.form === 'standard')?.[0];

    it('a flattened dump cut short', () => {
      const file = derive('kdump-zlib', 'cut.flat', (fd, size) => ftruncateSync(fd, Math.floor(size * 0.4)));
      failsWithOneLine(['kernel', '--ram', file, '--no-cache'], /truncated.*cut short/);
      failsWithOneLine(['ps', '--ram', file, '--no-cache'], /truncated/);
    });

    it.runIf(standard)('a standard dump cut short, its bitmap pointing past the end, an absurd descriptor, an unknown compression', () => {
      const cut = derive(standard!, 'cut.std', (fd, size) => ftruncateSync(fd, Math.floor(size * 0.6)));
      failsWithOneLine(['kernel', '--ram', cut, '--no-cache'], /truncated/);
      const bitmap = derive(standard!, 'bitmap.std', (fd) => put32(fd, 436, 0x7ffffffe));
      failsWithOneLine(['ps', '--ram', bitmap, '--no-cache'], /bitmaps .* past the end of the dump/);
      const absurd = derive(standard!, 'absurd.std', (fd) => everyDescriptor(fd, 8, 0xfffffff0));
      failsWithOneLine(['kernel', '--ram', absurd, '--no-cache'], /absurd size of 4294967280 bytes/);
      const unknown = derive(standard!, 'unknown.std', (fd) => everyDescriptor(fd, 12, 0x40));
      failsWithOneLine(['meminfo', '--ram', unknown, '--no-cache'], /unknown compression flags 0x40/);
    });
  });
});

// The 5 GiB pc guest CI also builds: RAM above the PCI hole sits at pfns past 4 GiB, and QEMU leaves out the bitmap
// blocks of the hole (they read as zeros in the flattened stream). Its kdump-zlib must read like its ram.raw.
const big = join(root, 'images', 'out', 'pc-5g');
const bigPresent = existsSync(join(big, 'kdump-zlib')) && existsSync(join(big, 'ram.raw'));
describe.skipIf(!bigPresent && !required)(`kdump-zlib of the 5 GiB pc guest in ${big}`, () => {
  it('kernel, ps and meminfo equal those of its ram.raw', () => {
    expect(bigPresent, `no kdump-zlib in ${big}: build it with images/build-guest.mjs --mem 5G`).toBe(true);
    const k = json(['kernel'], join(big, 'kdump-zlib'));
    expect(k.format).toBe('kdump-flattened');
    expect(k.warnings).toEqual([]);
    for (const cmd of ['ps', 'meminfo']) expect(json([cmd], join(big, 'kdump-zlib')), cmd).toEqual(json([cmd], join(big, 'ram.raw')));
  });
});
