// mount from outside vs the guest's own /proc/mounts (truth.json), on ram.raw and core.elf; df and report then
// name the guest's mount point of its disk.

import { beforeAll, describe, expect, it } from 'vitest';
import { json, readTruth, run, sample, type Truth } from './walkers-helpers.js';

let truth: Truth;
let files: Record<string, string>;
let disk: string;

beforeAll(async () => {
  const s = await sample();
  truth = readTruth(s);
  files = { 'ram.raw': s.ram, 'core.elf': s.core };
  disk = (s as unknown as { disk: string }).disk;
});

describe.each(['ram.raw', 'core.elf'])('mount on %s', (name) => {
  it('equals /proc/mounts: device, mount point, type and options, in order', () => {
    const ours = json('mount', files[name]!);
    expect(ours.warnings).toEqual([]);
    expect(truth.mounts.length).toBeGreaterThan(4);
    const got = ours.mounts.map((m: Truth) => ({ device: m.device, mountpoint: m.mountpoint, fstype: m.fstype, options: m.options }));
    // Where nearfield does not know a filesystem's own show_options, it lists the generic options: a prefix.
    const want = truth.mounts.map((m: Truth, i: number) => (ours.mounts[i]?.fsOptionsComplete === false ? { ...m, options: m.options.slice(0, ours.mounts[i].options.length) } : m));
    expect(got).toEqual(want);
    expect(ours.mounts.filter((m: Truth) => m.fsOptionsComplete).map((m: Truth) => m.fstype)).toEqual(expect.arrayContaining(['rootfs', 'devtmpfs', 'proc', 'sysfs', 'tmpfs']));
  });
});

describe('the disk is named where the guest mounted it', () => {
  it('df with RAM and disk says the guest\'s mount point, matched by the superblock UUID', () => {
    const ext4 = truth.mounts.find((m: Truth) => m.fstype === 'ext4');
    const df = JSON.parse(run(['df', '--ram', files['ram.raw']!, '--disk', disk, '--json']).stdout);
    expect(df.mountpoint).toBe(ext4.mountpoint);
    const table = run(['df', '--ram', files['ram.raw']!, '--disk', disk]);
    expect(table.stdout.trimEnd().endsWith(` ${ext4.mountpoint}`)).toBe(true);
    // the disk alone: where its superblock says it was last mounted
    const alone = JSON.parse(run(['df', '--disk', disk, '--json']).stdout);
    expect(alone.mountpoint).toBeNull();
    expect(alone.superblock.lastMountedOn).toBe(ext4.mountpoint);
    expect(run(['df', '--disk', disk]).stdout.trimEnd().endsWith(` ${ext4.mountpoint}`)).toBe(true);
    const report = JSON.parse(run(['report', '--json']).stdout)[0];
    expect(report.sections.statfs.mountpoint).toBe(ext4.mountpoint);
    const prom = run(['report', '--prometheus']).stdout;
    expect(prom).toMatch(new RegExp(`node_filesystem_avail_bytes\\{[^}]*mountpoint="${ext4.mountpoint}"`));
  });
});
