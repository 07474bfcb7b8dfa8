// The committed sample guest: its unpacked files match the manifest's sha256, and its in-guest truth has the shape every other test relies on.

import { describe, expect, it, beforeAll } from 'vitest';
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { readTruth, root, sample, type Sample, type Truth } from './walkers-helpers.js';

const hash = (file: string) =>
  new Promise<string>((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file, { highWaterMark: 8 << 20 }).on('data', (c) => h.update(c)).on('error', reject).on('end', () => resolve(h.digest('hex')));
  });

let s: Sample & { disk: string; manifest: string };
let truth: Truth;
let manifest: { files: Record<string, { bytes: number; sha256: string }>; kernel: { release: string; package: string }; format: string; mem_bytes: number };

beforeAll(async () => {
  s = (await sample()) as typeof s;
  truth = readTruth(s);
  manifest = JSON.parse(readFileSync(s.manifest, 'utf8'));
});

describe('committed sample guest', () => {
  it('unpacks to files whose size and sha256 are the manifest\'s', async () => {
    for (const name of ['ram.raw', 'core.elf', 'rootfs.ext4', 'truth.json', 'serial.log']) {
      const want = manifest.files[name]!;
      expect(want, name).toBeDefined();
      expect(statSync(join(s.dir, name)).size, name).toBe(want.bytes);
      expect(await hash(join(s.dir, name)), name).toBe(want.sha256);
    }
  });

  it('keeps the committed manifest and truth identical to the unpacked ones', () => {
    for (const name of ['manifest.json', 'truth.json']) {
      expect(readFileSync(join(s.dir, name)).equals(readFileSync(join(root, 'images', 'sample', name))), name).toBe(true);
    }
  });

  it('was built from a real Debian kernel package, and the RAM file is the guest\'s size', () => {
    expect(manifest.format).toMatch(/^nearfield-sample-guest\//);
    expect(manifest.kernel.package).toMatch(/^linux-image-6\.1\.0-\d+-amd64$/);
    expect(statSync(s.ram).size).toBe(manifest.mem_bytes);
  });

  it('has ground truth with every section the tests compare against', () => {
    expect(truth.uname.release).toBe(manifest.kernel.release);
    expect(truth.hostname).toBe('nf-sample');
    expect(truth.processes.length).toBeGreaterThan(30);
    for (const p of truth.processes) {
      expect(typeof p.pid).toBe('number');
      expect(typeof p.comm).toBe('string');
      expect('RSDTtXZPI').toContain(p.state);
      expect(Array.isArray(p.cmdline)).toBe(true);
    }
    const comms = new Set(truth.processes.map((p: { comm: string }) => p.comm));
    for (const c of ['nf-small', 'nf-big', 'nf-threads', 'nf-spin', 'nf-stopped', 'nf-zombie']) expect(comms, c).toContain(c);
    expect(truth.meminfo.MemTotal).toBeGreaterThan(100_000);
    expect(truth.buddyinfo.length).toBeGreaterThan(0);
    expect(truth.statfs.f_blocks).toBeGreaterThan(0);
    expect(truth.loadavg.load1).toBeGreaterThanOrEqual(0);
    expect(truth.clocks.boottime_ns).toBeGreaterThan(truth.clocks_begin.boottime_ns);
    // the trailer re-read after transmission: later than the body, same fields
    expect(truth.at_end.clocks.boottime_ns).toBeGreaterThan(truth.clocks.boottime_ns);
    expect(Object.keys(truth.at_end.meminfo)).toEqual(Object.keys(truth.meminfo));
    expect(truth.at_end.buddyinfo.map((z: { zone: string }) => z.zone)).toEqual(truth.buddyinfo.map((z: { zone: string }) => z.zone));
    expect(truth.at_end.vmstat.nr_free_pages * 4).toBe(truth.at_end.meminfo.MemFree);
    expect(truth.printer_pid).toBeGreaterThan(1);
    expect(truth.after_print.host_pause_delay_ms).toBeLessThan(1000);
  });
});
