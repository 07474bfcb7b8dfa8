// Disk half end to end: real images made here (mkfs.ext4 -d, qemu-img, sfdisk), `nearfield df` checked
// against the kernel's own statfs of a loop mount (or dumpe2fs sums where mounting is not allowed) and
// against the sample guest's in-guest statfs; every image's sha256 is unchanged after every command.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { cli } from './walkers-helpers.js';

const root = resolve(import.meta.dirname, '..');
let dir = '';

interface Kstatfs { blocks: number; bfree: number; bavail: number; files: number; ffree: number }

interface Ran { code: number | null; stdout: string; stderr: string }

/** Run a command without blocking the test worker (vitest's RPC times out on long sync calls). */
function run(cmd: string, args: string[], opts: { input?: string; cwd?: string } = {}): Promise<Ran> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, stdout, stderr }));
    if (child.stdin) {
      child.stdin.on('error', () => { /* the child may exit before reading all of it */ });
      child.stdin.end(opts.input);
    }
  });
}

async function sh(cmd: string, args: string[], opts: { input?: string; cwd?: string } = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

function nearfield(args: string[]): Promise<Ran> {
  return run(process.execPath, [cli, ...args]);
}

/** Run `df --json` and check the image is byte-identical afterwards. */
async function dfJson(image: string, extra: string[] = [], files: string[] = [image]) {
  const before = files.map(sha256);
  const r = await nearfield(['df', '--disk', image, '--json', ...extra]);
  expect(files.map(sha256)).toEqual(before);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

/** The kernel's statfs of a read-only loop mount, or null when this machine does not allow mounting. */
async function loopStatfs(image: string, offset = 0): Promise<Kstatfs | null> {
  const mnt = mkdtempSync(join(dir, 'mnt-'));
  try {
    await sh('mount', ['-o', `loop,ro,noload,offset=${offset}`, image, mnt]);
  } catch {
    // ext2's driver has no noload; without a journal there is nothing to replay, so plain ro is safe.
    try {
      await sh('mount', ['-o', `loop,ro,offset=${offset}`, image, mnt]);
    } catch {
      return null;
    }
  }
  try {
    const [blocks, bfree, bavail, files, ffree] = (await sh('stat', ['-f', '-c', '%b %f %a %c %d', mnt])).trim().split(' ').map(Number);
    return { blocks: blocks!, bfree: bfree!, bavail: bavail!, files: files!, ffree: ffree! };
  } finally {
    await sh('umount', [mnt]);
  }
}

/** Sums of the group descriptors' free counts as dumpe2fs prints them (what f_bfree/f_ffree are made of). */
async function dumpe2fsFree(image: string): Promise<{ bfree: number; ffree: number; files: number }> {
  const out = await sh('dumpe2fs', [image]);
  let bfree = 0;
  let ffree = 0;
  for (const m of out.matchAll(/^\s+(\d+) free (?:blocks|clusters), (\d+) free inodes/gm)) {
    bfree += Number(m[1]);
    ffree += Number(m[2]);
  }
  const files = Number(/^Inode count:\s+(\d+)/m.exec(out)![1]);
  return { bfree, ffree, files };
}

async function expectMatches(image: string, got: { statfs: Record<string, number> }, offset = 0) {
  const truth = await loopStatfs(image, offset);
  const s = got.statfs;
  if (truth) {
    expect([s.fBlocks, s.fBfree, s.fBavail, s.fFiles, s.fFfree]).toEqual([truth.blocks, truth.bfree, truth.bavail, truth.files, truth.ffree]);
  } else if (offset === 0) {
    const d = await dumpe2fsFree(image);
    expect([s.fBfree, s.fFfree, s.fFiles]).toEqual([d.bfree, d.ffree, d.files]);
  }
}

async function mkfs(name: string, sizeMiB: number, opts: string[]): Promise<string> {
  const img = join(dir, name);
  await sh('truncate', ['-s', `${sizeMiB}M`, img]);
  await sh('mkfs.ext4', ['-q', '-F', '-d', join(dir, 'src'), ...opts, img]);
  return img;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'nf-disk-'));
  const src = join(dir, 'src');
  mkdirSync(join(src, 'etc'), { recursive: true });
  writeFileSync(join(src, 'etc', 'hostname'), 'guest\n');
  writeFileSync(join(src, 'big'), Buffer.alloc(3 << 20, 7));
  for (let i = 0; i < 300; i++) writeFileSync(join(src, `f${i}`), `file ${i}\n`.repeat(i));
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('df on raw ext4 images', () => {
  it('1 KiB blocks without 64bit', async () => {
    const img = await mkfs('k1.img', 64, ['-b', '1024', '-O', '^64bit,^metadata_csum']);
    const j = await dfJson(img);
    expect(j.superblock.blockSize).toBe(1024);
    expect(j.superblock.featuresIncompat).not.toContain('64bit');
    await expectMatches(img, j);
  });

  it('4 KiB blocks with 64bit and metadata_csum, checksums verified', async () => {
    const img = await mkfs('k4.img', 256, ['-b', '4096', '-O', '64bit,metadata_csum', '-L', 'rootfs']);
    const j = await dfJson(img);
    expect(j.superblock.featuresRoCompat).toContain('metadata_csum');
    expect(j.superblock.label).toBe('rootfs');
    expect(j.warnings).toEqual([]);
    expect(j.df.usePercent).toBe(Math.ceil(((j.statfs.fBlocks - j.statfs.fBfree) * 100) / (j.statfs.fBlocks - j.statfs.fBfree + j.statfs.fBavail)));
    await expectMatches(img, j);
  });

  it('ext2 and ext3 (no extents: no kernel reservation)', async () => {
    const img = await mkfs('e3.img', 64, ['-t', 'ext3']);
    const j = await dfJson(img);
    expect(j.filesystem).toBe('ext3');
    expect(j.kernelReservedBlocks).toBe(0);
    await expectMatches(img, j);
  });

  it.each([
    ['bigalloc, 16 KiB clusters', ['-O', 'bigalloc', '-C', '16384']],
    ['bigalloc, 2 KiB blocks', ['-b', '2048', '-O', 'bigalloc', '-C', '8192']],
    ['meta_bg', ['-O', 'meta_bg,^resize_inode']],
    ['meta_bg, 1 KiB blocks, 64bit', ['-b', '1024', '-O', 'meta_bg,^resize_inode,64bit']],
    ['sparse_super2', ['-O', 'sparse_super2']],
    ['no journal', ['-O', '^has_journal']],
    ['inline_data', ['-O', 'inline_data']],
    ['ext2', ['-t', 'ext2']],
  ])('%s', async (name, opts) => {
    const img = await mkfs(`v-${name.replace(/\W+/g, '_')}.img`, 96, opts);
    await expectMatches(img, await dfJson(img));
  });

  it('a 1 TiB sparse image in milliseconds', async () => {
    const img = join(dir, 'tera.img');
    await sh('truncate', ['-s', '1T', img]);
    await sh('mkfs.ext4', ['-q', '-F', '-E', 'nodiscard,lazy_itable_init=1', img]);
    const t0 = performance.now();
    const j = await dfJson(img, [], []);
    const ms = performance.now() - t0;
    expect(j.superblock.groupsCount).toBe(8192);
    await expectMatches(img, j);
    expect(ms).toBeLessThan(2000); // whole process incl. node start-up; the bench measures properly
  });
});

describe('df through qcow2 and partition tables', () => {
  let base = '';
  beforeAll(async () => {
    base = await mkfs('base.img', 128, ['-b', '4096']);
  });

  it.each([
    ['plain', []],
    ['deflate-compressed', ['-c']],
    ['zstd-compressed', ['-c', '-o', 'compression_type=zstd']],
    ['extended L2 / subclusters', ['-o', 'extended_l2=on,cluster_size=128k']],
  ])('qcow2 %s equals the raw image', async (_name, opts) => {
    const out = join(dir, `q-${_name.replace(/\W+/g, '_')}.qcow2`);
    await sh('qemu-img', ['convert', '-O', 'qcow2', ...(opts as string[]), base, out]);
    const raw = await dfJson(base);
    const q = await dfJson(out);
    expect(q.image.format).toBe('qcow2');
    expect(q.statfs).toEqual(raw.statfs);
    await expectMatches(base, q);
  });

  it('qcow2 overlay reads through its backing file (relative name)', async () => {
    const b = join(dir, 'back.qcow2');
    await sh('qemu-img', ['convert', '-O', 'qcow2', '-c', base, b]);
    const over = join(dir, 'over.qcow2');
    await sh('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', 'back.qcow2', '-F', 'qcow2', 'over.qcow2'], { cwd: dir });
    const j = await dfJson(over, [], [over, b]);
    expect(j.image.backingChain).toEqual([join(dir, 'back.qcow2')]);
    expect(j.statfs).toEqual((await dfJson(base)).statfs);
  });

  it('MBR: picks the Linux partition, --partition chooses, other content is named', async () => {
    const img = join(dir, 'mbr.img');
    await sh('truncate', ['-s', '200M', img]);
    await sh('sfdisk', ['-q', img], { input: 'label: dos\nstart=2048, size=40960, type=82\nstart=43008, type=83\n' });
    const fs = await mkfs('part.img', 150, ['-b', '4096']);
    await sh('dd', [`if=${fs}`, `of=${img}`, 'bs=512', 'seek=43008', 'conv=notrunc', 'status=none']);
    const swap = join(dir, 'swap.img');
    await sh('truncate', ['-s', '16M', swap]);
    await sh('mkswap', ['-q', swap]);
    await sh('dd', [`if=${swap}`, `of=${img}`, 'bs=512', 'seek=2048', 'conv=notrunc', 'status=none']);
    const j = await dfJson(img);
    expect(j.image.partitionTable).toBe('mbr');
    expect(j.image.selectedPartition).toBe(2);
    expect(j.image.partitions.map((p: { filesystem: string }) => p.filesystem)).toEqual(['swap', 'ext4']);
    await expectMatches(img, j, 43008 * 512);
    const r = await nearfield(['df', '--disk', img, '--partition', '1']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/unsupported filesystem swap on partition 1/);
  });

  it('GPT: the x86-64 root partition wins', async () => {
    const img = join(dir, 'gpt.img');
    await sh('truncate', ['-s', '200M', img]);
    await sh('sfdisk', ['-q', img], {
      input: 'label: gpt\nsize=40960, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\nsize=61440, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\ntype=4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709, name=root\n',
    });
    const parts = JSON.parse(await sh('sfdisk', ['--json', img])).partitiontable.partitions as { start: number }[];
    const start = parts[2]!.start;
    await sh('mkfs.ext4', ['-q', '-F', '-E', `offset=${start * 512}`, img, '90M']);
    const j = await dfJson(img);
    expect(j.image.partitionTable).toBe('gpt');
    expect(j.image.selectedPartition).toBe(3);
    expect(j.image.partitions[2].name).toBe('root');
    await expectMatches(img, j, start * 512);
  });
});

describe('df output', () => {
  it('prints a df-style table, -h, -i, -B and -T', async () => {
    const img = join(dir, 'k4.img');
    const plain = await nearfield(['df', '--disk', img]);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(/^Filesystem\s+1K-blocks\s+Used\s+Avail\s+Use%\s+Mounted on/);
    // never mounted, and no RAM to ask: the mount point is unknown
    expect(plain.stdout).toMatch(/\d+%\s+-\n$/);
    expect((await nearfield(['df', '--disk', img, '-h'])).stdout).toMatch(/\s\d+(\.\d)?M\s/);
    expect((await nearfield(['df', '--disk', img, '-i'])).stdout).toMatch(/^Filesystem\s+Inodes\s+IUsed\s+IFree\s+IUse%/);
    expect((await nearfield(['df', '--disk', img, '-B', '1M', '-T'])).stdout).toMatch(/^Filesystem\s+Type\s+1M-blocks.*\n.*ext4/);
  });
});

describe('clear failures', () => {
  it('truncated image, wrong magic, missing backing file: exit 1, one line naming the file', async () => {
    const trunc = join(dir, 'trunc.img');
    const k4 = readFileSync(join(dir, 'k4.img')).subarray(0, 3000);
    writeFileSync(trunc, k4);
    const junk = join(dir, 'junk.img');
    writeFileSync(junk, Buffer.alloc(1 << 20, 0x5a));
    const orphan = join(dir, 'orphan.qcow2');
    await sh('qemu-img', ['create', '-q', '-f', 'qcow2', '-u', '-b', join(dir, 'gone.qcow2'), '-F', 'qcow2', orphan, '64M']);
    const qtrunc = join(dir, 'qtrunc.qcow2');
    const fd = openSync(qtrunc, 'w');
    writeSync(fd, readFileSync(join(dir, 'over.qcow2')).subarray(0, 200));
    closeSync(fd);
    for (const [img, why] of [[trunc, /truncated|past the end/], [junk, /no ext2\/3\/4 superblock/], [orphan, /gone\.qcow2.*not found/], [qtrunc, /truncated|too short|past the end/]] as const) {
      const before = sha256(img);
      const r = await nearfield(['df', '--disk', img]);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stdout).toBe('');
      const lines = r.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^nearfield: df: /);
      expect(lines[0]).toMatch(why);
      expect(lines[0]).toContain(img);
      expect(sha256(img)).toBe(before);
    }
  });
});

describe('the sample guest', () => {
  it('df equals the guest kernel\'s own statfs of its rootfs (truth.json)', async () => {
    let disk: string | undefined;
    let truthFile: string | undefined;
    const unpack = join(root, 'images', 'unpack-sample.mjs');
    if (existsSync(unpack)) {
      try {
        const s = await (await import(pathToFileURL(unpack).href)).samplePaths();
        disk = s.disk;
        truthFile = s.truth;
      } catch { /* fall back below */ }
    }
    const ready = join(root, 'images', 'FIRST_GUEST_READY');
    if (!disk && existsSync(ready)) {
      const d = readFileSync(ready, 'utf8').trim();
      disk = join(d, 'rootfs.ext4');
      truthFile = join(d, 'truth.json');
    }
    expect(disk, 'no sample guest (images/sample or FIRST_GUEST_READY)').toBeTruthy();
    const truth = JSON.parse(readFileSync(truthFile!, 'utf8')).statfs;
    const j = await dfJson(disk!);
    const s = j.statfs;
    expect([s.fBsize, s.fBlocks, s.fBfree, s.fBavail, s.fFiles, s.fFfree, s.fNamelen]).toEqual([
      truth.f_bsize, truth.f_blocks, truth.f_bfree, truth.f_bavail, truth.f_files, truth.f_ffree, truth.f_namelen,
    ]);
    expect(s.fFsid.map((h: string) => Number.parseInt(h, 16) | 0)).toEqual(truth.f_fsid);
  });
});
