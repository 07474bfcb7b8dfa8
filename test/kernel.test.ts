// Kernel discovery on the committed sample guest, checked against the guest's own /proc and uname (truth.json).

import { spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtGuest } from './built-guests.js';
import { cli } from './walkers-helpers.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

interface Sample { dir: string; ram: string; core: string; truth: string }
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

let s: Sample;
let truth: Json;
let cacheDir: string;

function run(args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], {
    encoding: 'utf8',
    env: { ...process.env, NEARFIELD_CACHE_DIR: cacheDir },
    maxBuffer: 16 << 20,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function kernelJson(ram: string, extra: string[] = []): Json {
  const r = run(['kernel', '--ram', ram, '--json', ...extra]);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout);
}

beforeAll(async () => {
  const mod = (await import(join(root, 'images', 'unpack-sample.mjs'))) as { samplePaths(): Promise<Sample> };
  s = await mod.samplePaths();
  truth = JSON.parse(readFileSync(s.truth, 'utf8'));
  cacheDir = mkdtempSync(join(tmpdir(), 'nf-kernel-test-'));
}, 120_000);

afterAll(() => {
  if (cacheDir) rmSync(cacheDir, { recursive: true, force: true });
});

describe('nearfield kernel on the sample guest', () => {
  it('finds the release, version and banner the guest reports', () => {
    const k = kernelJson(s.ram, ['--no-cache']);
    expect(k.release).toBe(truth.uname.release);
    expect(k.release).toBe(truth.kernel.osrelease);
    // /proc/version is linux_banner without its newline.
    expect(k.banner).toBe(truth.kernel.proc_version);
    expect(k.banner).toContain(truth.uname.version);
    expect(k.buildId).toMatch(/^[0-9a-f]{40}$/);
    expect(k.pagingLevels).toBe(5);
    expect(k.pageSize).toBe(4096);
    expect(k.symbolSource).toBe('kallsyms');
    expect(k.typeSource).toBe('btf');
    expect(k.symbolCount).toBeGreaterThan(50_000);
    expect(k.btfTypeCount).toBeGreaterThan(50_000);
    expect(k.cacheHit).toBe(false);
  });

  it('KASLR offset, phys_base and the page-table root agree with the addresses the guest printed', () => {
    const k = kernelJson(s.ram, ['--no-cache']);
    const sym = (name: string) => BigInt(truth.kernel.symbols[name].address);
    // _text is linked at __START_KERNEL (0xffffffff81000000); KASLR moves it by KERNELOFFSET.
    expect(BigInt(k.kaslrOffset)).toBe(sym('_text') - 0xffffffff81000000n);
    // VMCOREINFO's own physical address, as /sys/kernel/vmcoreinfo gave it (the text follows the 24-byte header).
    expect(BigInt(k.vmcoreinfoPhys)).toBe(BigInt(truth.kernel.vmcoreinfo_note.paddr) + 24n);
    // The DTB is __pa(init_top_pgt).
    expect(BigInt(k.dtb)).toBe((sym('init_top_pgt') - 0xffffffff80000000n + BigInt(k.physBase)) & 0xffffffffffffffffn);
    const sources = Object.fromEntries(k.sources.map((x: Json) => [x.fact, x.source]));
    expect(sources).toMatchObject({ release: 'vmcoreinfo', dtb: 'vmcoreinfo', page_offset_base: 'kallsyms', vmcoreinfo: 'scan' });
  });

  it('raw RAM and the ELF core of the same instant give identical facts', () => {
    const raw = kernelJson(s.ram, ['--no-cache']);
    const core = kernelJson(s.core, ['--no-cache']);
    expect(core.format).toBe('elf-core');
    for (const key of ['release', 'banner', 'buildId', 'kaslrOffset', 'physBase', 'dtb', 'pagingLevels', 'pageOffsetBase', 'vmemmapBase', 'vmallocBase', 'symbolCount', 'btfTypeCount']) {
      expect(core[key], key).toEqual(raw[key]);
    }
  });

  it('the second run is served from the profile cache with the same facts', () => {
    const first = kernelJson(s.ram);
    const second = kernelJson(s.ram);
    expect(second.cacheHit).toBe(true);
    expect(second.cacheFile.startsWith(cacheDir)).toBe(true);
    expect(second.symbolSource).toBe('cache');
    for (const key of ['release', 'kaslrOffset', 'dtb', 'pageOffsetBase', 'symbolCount', 'btfTypeCount']) {
      expect(second[key], key).toEqual(first[key]);
    }
  });

  it('remembers where VMCOREINFO is on disk: a warm run reads that page instead of scanning; a stale place is scanned past', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nf-hint-'));
    try {
      const ram = join(dir, 'ram.raw');
      copyFileSync(s.ram, ram);
      const source = (k: Json) => k.sources.find((f: { fact: string }) => f.fact === 'vmcoreinfo')?.source;
      const cold = kernelJson(ram);
      expect(source(cold)).toBe('scan');
      const hints = readdirSync(cacheDir).filter((f) => f.startsWith('vmcoreinfo-'));
      expect(hints.length).toBeGreaterThan(0);
      const warm = kernelJson(ram);
      expect(source(warm)).toBe('cache');
      expect(warm.vmcoreinfoPhys).toBe(cold.vmcoreinfoPhys);
      // A valid-looking note elsewhere whose page-table root maps nothing (a guest rebooted since, say):
      // discovery finds it does not hold, forgets it and scans.
      const fake = readFileSync(ram).subarray(Number(BigInt(cold.vmcoreinfoPhys)) - 24, Number(BigInt(cold.vmcoreinfoPhys)) + 4072);
      const text = fake.toString('latin1').replace(/SYMBOL\(init_top_pgt\)=[0-9a-f]+/, 'SYMBOL(init_top_pgt)=ffffffff80000000');
      const at = 0x1000;
      const fd = openSync(ram, 'r+');
      writeSync(fd, Buffer.from(text, 'latin1'), 0, fake.length, at);
      closeSync(fd);
      for (const h of readdirSync(cacheDir).filter((f) => f.startsWith('vmcoreinfo-'))) writeFileSync(join(cacheDir, h), `0x${(at + 24).toString(16)}\n`);
      const after = kernelJson(ram);
      expect(source(after)).toBe('scan');
      expect(after.staleVmcoreinfo).toEqual([`0x${(at + 24).toString(16)}`]); // found first by the scan, passed over
      expect(after.vmcoreinfoPhys).toBe(cold.vmcoreinfoPhys);
      expect(after.kaslrOffset).toBe(cold.kaslrOffset);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('prints a table by default and answers to `uname`', () => {
    const r = run(['uname', '--ram', s.ram]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(truth.uname.release);
    expect(r.stdout).toMatch(/KASLR offset\s+vmcoreinfo\s+0x[0-9a-f]+/);
  });

  it('a truncated RAM file fails with one line naming the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nf-trunc-'));
    try {
      const cut = join(dir, 'ram.raw');
      copyFileSync(s.ram, cut);
      truncateSync(cut, 8 << 20);
      const r = run(['kernel', '--ram', cut, '--no-cache']);
      expect(r.status).toBe(1);
      expect(r.stdout).toBe('');
      const lines = r.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^nearfield: kernel: .+\(.*ram\.raw\)$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('without VMCOREINFO, a System.map and the banner scan find KASLR and the page-table root', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nf-noinfo-'));
    try {
      // The guest's own /proc/kallsyms lines, moved back to link-time addresses, stand in for System.map.
      const k = kernelJson(s.ram, ['--no-cache']);
      const kaslr = BigInt(k.kaslrOffset);
      const map = (truth.raw.kallsyms as string).trim().split('\n').map((l) => {
        const [a, t, n] = l.split(/\s+/);
        let addr = BigInt('0x' + a);
        if (addr >= 0xffffffff80000000n) addr -= kaslr;
        return `${addr.toString(16).padStart(16, '0')} ${t} ${n}`;
      });
      writeFileSync(join(dir, 'System.map'), map.join('\n') + '\n');
      // A copy of the RAM whose VMCOREINFO note name is wiped.
      const ram = join(dir, 'ram.raw');
      copyFileSync(s.ram, ram);
      const fd = openSync(ram, 'r+');
      writeSync(fd, Buffer.from('XXXXXXXXXX'), 0, 10, Number(BigInt(truth.kernel.vmcoreinfo_note.paddr) + 12n));
      closeSync(fd);
      const bare = run(['kernel', '--ram', ram, '--no-cache']);
      expect(bare.status).toBe(1);
      expect(bare.stderr).toMatch(/no VMCOREINFO.*--system-map/);
      const f = kernelJson(ram, ['--no-cache', '--system-map', join(dir, 'System.map')]);
      for (const key of ['release', 'banner', 'kaslrOffset', 'physBase', 'dtb', 'pagingLevels', 'pageOffsetBase']) {
        expect(f[key], key).toEqual(k[key]);
      }
      const sources = Object.fromEntries(f.sources.map((x: Json) => [x.fact, x.source]));
      expect(sources).toMatchObject({ kaslr_offset: 'scan', dtb: 'scan', page_offset_base: 'system-map' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('profile export writes a Volatility 3 ISF whose symbols and types match the guest, and reads back as --isf', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nf-isf-'));
    try {
      const out = join(dir, 'kernel.json');
      const r = run(['profile', 'export', '--isf', out, '--ram', s.ram]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toBe('');
      const text = readFileSync(out, 'utf8');
      const isf = JSON.parse(text);
      // 64-bit addresses lose precision in JSON.parse: read them from the text.
      const isfAddress = (name: string): bigint => {
        const m = new RegExp(`"${name}":\\s*\\{[^{}]*?"address":\\s*(\\d+)`).exec(text);
        if (!m?.[1]) throw new Error(`no ${name} in the ISF`);
        return BigInt(m[1]);
      };
      const k = kernelJson(s.ram);
      const kaslr = BigInt(k.kaslrOffset);
      // ISF addresses are link-time: the guest's runtime address minus KASLR.
      for (const name of ['init_task', 'linux_banner', 'init_top_pgt', 'jiffies_64', 'page_offset_base', '__start_BTF']) {
        expect(isfAddress(name), name).toBe(BigInt(truth.kernel.symbols[name].address) - kaslr);
      }
      expect(isf.user_types.task_struct.size).toBeGreaterThan(1000);
      expect(isf.user_types.task_struct.fields.pid).toBeDefined();
      // Fed back as the only profile for a RAM copy without VMCOREINFO, it finds the same boot.
      const ram = join(dir, 'ram.raw');
      copyFileSync(s.ram, ram);
      const fd = openSync(ram, 'r+');
      writeSync(fd, Buffer.from('XXXXXXXXXX'), 0, 10, Number(BigInt(truth.kernel.vmcoreinfo_note.paddr) + 12n));
      closeSync(fd);
      const f = kernelJson(ram, ['--no-cache', '--isf', out]);
      for (const key of ['release', 'kaslrOffset', 'physBase', 'dtb', 'pagingLevels', 'pageOffsetBase']) {
        expect(f[key], key).toEqual(k[key]);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the async and sync openers find the same kernel and keep error codes', async () => {
    const { Guest } = (await import(join(root, 'dist', 'src', 'guest.js'))) as typeof import('../src/guest.js');
    const g = await Guest.open({ ram: s.core, cache: false });
    expect(g.kernel().release).toBe(truth.uname.release);
    expect(g.symbol('init_task')).toBe(truth.kernel.symbols.init_task.address);
    g.close();
    expect(() => g.kernel()).toThrow(/closed/);
    await expect(Guest.open({ ram: s.truth, cache: false })).rejects.toMatchObject({ code: 'NOT_FOUND', file: s.truth });
    expect(() => Guest.openSync({ ram: s.truth, cache: false })).toThrow(expect.objectContaining({ code: 'NOT_FOUND', file: s.truth }));
  });

  it('an unknown layout is refused as a usage error', () => {
    const r = run(['kernel', '--ram', s.ram, '--ram-layout', 'vmware', '--no-cache']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^nearfield: kernel: --ram-layout: unknown RAM layout "vmware"/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});

// Variant guests built by images/build-guest.mjs (4-level paging; RAM above the PCI hole; the 6.12 kernel; the
// hung and panicked guests). Skipped when absent, except those CI builds and names in NEARFIELD_REQUIRED_GUESTS
// (test/built-guests.ts): there an absent guest fails. The sample above is the proof that must always run.
const variants: [string, string, number][] = [
  ['no5lvl', 'no5lvl-256m', 4],
  ['5 GiB pc split', 'pc-5g', 5],
  ['q35 machine', 'q35-256m', 5],
  ['cloud kernel build', 'cloud-256m', 5],
  ['Debian 6.12 kernel', 'k612-256m', 5],
  ['hung guest', 'hung-256m', 4],
  ['panicked guest', 'panic-256m', 4],
];
for (const [label, name, levels] of variants) {
  const g = builtGuest(name);
  const dir = g.dir;
  describe.skipIf(!g.present && !g.required)(`variant guest: ${label} (${g.present ? dir : `absent: build it with images/build-guest.mjs --out ${dir}`})`, () => {
    it.runIf(g.required)('was built', () => {
      expect(g.present, `no ram.raw/core.elf/truth.json in ${dir}: the guest build failed (see the CI output above)`).toBe(true);
    });
    it.runIf(g.present)('discovers the kernel and matches its truth', () => {
      const t = JSON.parse(readFileSync(join(dir, 'truth.json'), 'utf8'));
      const k = kernelJson(join(dir, 'ram.raw'), ['--no-cache']);
      expect(k.release).toBe(t.uname.release);
      expect(k.banner).toBe(t.kernel.proc_version);
      expect(k.pagingLevels).toBe(levels);
      expect(k.symbolSource).toBe('kallsyms');
      expect(k.typeSource).toBe('btf');
      expect(k.warnings).toEqual([]);
      // KASLR as the guest saw it: _text moved from __START_KERNEL.
      expect(BigInt(k.kaslrOffset)).toBe(BigInt(t.kernel.symbols._text.address) - 0xffffffff81000000n);
    });
  });
}
