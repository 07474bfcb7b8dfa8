// File commands (ls, cat, stat, find, inspect) on real ext4 images made here with mkfs.ext4 -d: results match the
// source tree and debugfs, and no byte of any image changes (the libext2fs bridge is read-only).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { makeWideDirImage } from '../bench/files.js';
import { cli } from './walkers-helpers.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const hasTools = spawnSync('mkfs.ext4', ['-V']).status === 0 && spawnSync('debugfs', ['-V']).status === 0 && fs.existsSync(cli);

let work: string;
let tree: string;

function sha256(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** Deterministic pseudo-random bytes (xorshift32) so the 5 MB file has no long runs. */
function noise(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n + 4);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i += 4) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    b.writeUInt32LE(x, i);
  }
  return b.subarray(0, n);
}

function put(rel: string, content: string | Buffer, mode = 0o644): void {
  const f = path.join(tree, rel);
  fs.mkdirSync(path.dirname(f), { recursive: true });
  fs.writeFileSync(f, content);
  fs.chmodSync(f, mode);
}

function buildTree(): void {
  put('etc/os-release', 'PRETTY_NAME="Test Linux 12 (bookworm)"\nNAME="Test Linux"\nVERSION_ID="12"\nID=testlinux\nVERSION_CODENAME=bookworm\n');
  put('etc/hostname', 'files-test\n');
  put('etc/passwd', 'root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nalice:x:1000:1000:Alice,,,:/home/alice:/bin/zsh\n');
  put('etc/group', 'root:x:0:\ndaemon:x:1:\nalice:x:1000:\n');
  put('etc/fstab', '# static file system information\nUUID=1234-abcd / ext4 errors=remount-ro 0 1\n/dev/vdb\t/srv/my\\040data xfs noatime 0 2\n\n');
  put('boot/vmlinuz-6.1.0-50-amd64', 'not really a kernel');
  put('boot/config-6.1.0-50-amd64', 'CONFIG_X=y\n');
  fs.mkdirSync(path.join(tree, 'lib/modules/6.1.0-50-amd64/kernel'), { recursive: true });
  put('data/hello.txt', 'hello, nearfield\n');
  put('data/empty', '');
  put('data/big.bin', noise(5 * 1024 * 1024 + 123, 0x5eed));
  put('data/nested/a/b/c/deep.txt', 'deep\n');
  put('data/nested/a/other.txt', 'other\n');
  put('data/suid', '#!/bin/sh\n');
  fs.chownSync(path.join(tree, 'data/suid'), 1000, 1000); // before chmod: chown clears set-user-ID
  fs.chmodSync(path.join(tree, 'data/suid'), 0o4755);
  fs.symlinkSync('hello.txt', path.join(tree, 'data/link'));
  fs.symlinkSync('/etc/os-release', path.join(tree, 'data/abs-link'));
  fs.symlinkSync('x'.repeat(100), path.join(tree, 'data/long-link')); // slow symlink: target in a data block
  // Big enough for an htree index; the 20 000-entry directory gets its own image (mkfs -d is O(n²) in entries).
  const many = path.join(tree, 'data/many');
  fs.mkdirSync(many);
  for (let i = 0; i < 1500; i++) fs.closeSync(fs.openSync(path.join(many, `f${String(i).padStart(5, '0')}`), 'w'));
}

interface Variant { name: string; args: string[] }
const variants: Variant[] = [
  { name: '4k-csum', args: ['-b', '4096', '-O', 'metadata_csum'] },
  { name: '1k-nocsum', args: ['-b', '1024', '-O', '^metadata_csum,^metadata_csum_seed'] },
  { name: '4k-nocsum-no64', args: ['-b', '4096', '-O', '^metadata_csum,^64bit'] },
  { name: '1k-csum', args: ['-b', '1024', '-O', 'metadata_csum'] },
];
const images: Record<string, string> = {};
const hashes: Record<string, string> = {};
let wide: string;

function mkfs(name: string, args: string[]): string {
  const img = path.join(work, `${name}.img`);
  execFileSync('mkfs.ext4', ['-q', '-F', '-N', '4096', '-I', '256', '-E', 'root_owner=0:0', ...args, '-d', tree, img, '24M'], { stdio: 'pipe' });
  return img;
}

beforeAll(() => {
  if (!hasTools) return;
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'nf-files-'));
  tree = path.join(work, 'tree');
  buildTree();
  for (const v of variants) {
    images[v.name] = mkfs(v.name, v.args);
    hashes[v.name] = sha256(images[v.name]!);
  }
  wide = makeWideDirImage(work, 20000);
}, 600_000);

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

interface Run { code: number; stdout: Buffer; stderr: string }

/** Run the built CLI on an image and check the image's bytes did not change. */
function nf(img: string, args: string[]): Run {
  const before = sha256(img);
  const r = spawnSync(process.execPath, [cli, ...args, '--disk', img], { maxBuffer: 64 << 20 });
  expect(sha256(img), `image changed by ${args.join(' ')}`).toBe(before);
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr.toString() };
}

function json(img: string, args: string[]): any {
  const r = nf(img, [...args, '--json']);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout.toString());
}

/** debugfs's view of one inode: the second truth. */
function debugfsStat(img: string, p: string): Record<string, string> {
  const out = execFileSync('debugfs', ['-R', `stat ${p}`, img], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
  const f: Record<string, string> = {};
  const inode = /Inode:\s+(\d+)/.exec(out);
  if (inode) f.ino = inode[1]!;
  for (const m of out.matchAll(/^\s*(ctime|atime|mtime|crtime):\s+0x([0-9a-f]+)(?::([0-9a-f]+))?/gm)) {
    f[`${m[1]}_sec`] = String(parseInt(m[2]!, 16) | 0);
    f[`${m[1]}_nsec`] = m[3] ? String(Math.floor(parseInt(m[3], 16) / 4)) : '0';
  }
  const uid = /User:\s+(\d+)\s+Group:\s+(\d+)/.exec(out);
  if (uid) { f.uid = uid[1]!; f.gid = uid[2]!; }
  const size = /Size:\s+(\d+)/.exec(out);
  if (size) f.size = size[1]!;
  const links = /Links:\s+(\d+)/.exec(out);
  if (links) f.links = links[1]!;
  return f;
}

describe.skipIf(!hasTools).each(variants)('files on $name', (v) => {
  const img = (): string => images[v.name]!;

  it('ls -l lists what was put there, names from the guest passwd/group', () => {
    const r = json(img(), ['ls', '-l', '/data']);
    const byName = Object.fromEntries(r.entries.map((e: any) => [e.name, e]));
    expect(Object.keys(byName).sort()).toEqual(fs.readdirSync(path.join(tree, 'data')).sort());
    for (const name of Object.keys(byName)) {
      const st = fs.lstatSync(path.join(tree, 'data', name));
      const e = byName[name];
      expect(e.mode, name).toBe((st.mode & 0o7777).toString(8).padStart(4, '0'));
      expect(e.uid, name).toBe(st.uid);
      expect(e.gid, name).toBe(st.gid);
      if (!st.isDirectory()) expect(e.sizeBytes, name).toBe(st.size);
      if (!st.isDirectory()) expect(e.links, name).toBe(st.nlink);
      expect(e.mtime.sec, name).toBe(Math.floor(st.mtimeMs / 1000));
    }
    expect(byName.suid.modeString).toBe('-rwsr-xr-x');
    expect(byName.suid.user).toBe('alice');
    expect(byName.suid.group).toBe('alice');
    expect(byName.link.target).toBe('hello.txt');
    expect(byName['abs-link'].target).toBe('/etc/os-release');
    expect(byName['long-link'].target).toBe('x'.repeat(100));
    expect(byName.many.type).toBe('dir');
  });

  it('ls text output looks like ls -l', () => {
    const r = nf(img(), ['ls', '-l', '/data']);
    expect(r.code).toBe(0);
    const lines = r.stdout.toString().trimEnd().split('\n');
    expect(lines.find((l) => l.endsWith(' link -> hello.txt'))).toMatch(/^lrwxrwxrwx 1 root\s+root\s+9 \w{3} [ \d]\d /);
    expect(lines.find((l) => l.endsWith(' suid'))).toMatch(/^-rwsr-xr-x 1 alice root|^-rwsr-xr-x 1 alice alice/);
  });

  it('ls of the htree directory returns every name', () => {
    const r = nf(img(), ['ls', '/data/many']);
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toBe(fs.readdirSync(path.join(tree, 'data/many')).sort().map((n) => n + '\n').join(''));
  });

  it('stat matches debugfs (inode, ids, size, links, all four timestamps with nanoseconds)', async () => {
    // One mount for the comparisons (each CLI run costs a process); the CLI's own output is checked below.
    const { GuestFiles } = await import(pathToFileURL(path.join(root, 'dist/wasm/client.js')).href);
    const g = await GuestFiles.open(img());
    try {
      for (const p of ['/data/suid', '/data/big.bin', '/data/empty', '/data/link', '/data/long-link', '/data/many', '/']) {
        const s = await g.lstat(p);
        const d = debugfsStat(img(), p);
        expect(String(s.ino), p).toBe(d.ino);
        expect(String(s.uid), p).toBe(d.uid);
        expect(String(s.gid), p).toBe(d.gid);
        expect(String(s.size), p).toBe(d.size);
        expect(String(s.links), p).toBe(d.links);
        for (const t of ['atime', 'mtime', 'ctime', 'crtime'] as const) {
          expect(String(s[t].sec), `${p} ${t}`).toBe(d[`${t}_sec`]);
          expect(String(s[t].nsec), `${p} ${t}`).toBe(d[`${t}_nsec`]);
        }
      }
    } finally {
      await g.close();
    }
    const suid = json(img(), ['stat', '/data/suid']);
    expect(suid).toMatchObject({ mode: '4755', modeString: '-rwsr-xr-x', uid: 1000, user: 'alice', gid: 1000, type: 'file' });
    expect(Object.keys(suid.crtime)).toEqual(['sec', 'nsec', 'iso']);
    const text = nf(img(), ['stat', '-L', '/data/link']);
    expect(text.code).toBe(0);
    expect(text.stdout.toString()).toMatch(/^  File: \/data\/link\n  Size: 17 .*regular file\n/);
    expect(text.stdout.toString()).toMatch(/\n Birth: \d{4}-\d\d-\d\dT/);
  });

  it('cat is byte-exact (5 MB binary, empty file, through a symlink)', () => {
    const big = nf(img(), ['cat', '/data/big.bin']);
    expect(big.code).toBe(0);
    expect(createHash('sha256').update(big.stdout).digest('hex')).toBe(sha256(path.join(tree, 'data/big.bin')));
    const empty = nf(img(), ['cat', '/data/empty']);
    expect(empty.code).toBe(0);
    expect(empty.stdout.length).toBe(0);
    expect(nf(img(), ['cat', '/data/link']).stdout.toString()).toBe('hello, nearfield\n');
    expect(nf(img(), ['cat', '/data/abs-link']).stdout.toString()).toContain('Test Linux');
  });

  it('find by name and type, bounded by --max', () => {
    const txt = json(img(), ['find', '/data', '--name', '*.txt']);
    expect(txt.matches.map((m: any) => m.path).sort()).toEqual(['/data/hello.txt', '/data/nested/a/b/c/deep.txt', '/data/nested/a/other.txt']);
    const dirs = json(img(), ['find', '/data/nested', '--type', 'd']);
    expect(dirs.matches.map((m: any) => m.path).sort()).toEqual(['/data/nested', '/data/nested/a', '/data/nested/a/b', '/data/nested/a/b/c']);
    const links = json(img(), ['find', '/', '--type', 'l']);
    expect(links.matches.map((m: any) => m.path).sort()).toEqual(['/data/abs-link', '/data/link', '/data/long-link']);
    const capped = nf(img(), ['find', '/data/many', '--name', 'f01*', '--max', '5']);
    expect(capped.code).toBe(3);
    expect(capped.stdout.toString().trimEnd().split('\n')).toHaveLength(5);
    expect(capped.stderr).toMatch(/stopped after 5 matches/);
  });

  it('inspect reads the fake root like virt-inspector', () => {
    const r = json(img(), ['inspect']);
    expect(r.os).toMatchObject({ name: 'Test Linux', versionId: '12', prettyName: 'Test Linux 12 (bookworm)', id: 'testlinux' });
    expect(r.hostname).toBe('files-test');
    expect(r.kernels).toEqual({ boot: ['vmlinuz-6.1.0-50-amd64'], modules: ['6.1.0-50-amd64'] });
    expect(r.fstab).toEqual([
      { spec: 'UUID=1234-abcd', file: '/', vfstype: 'ext4', mntops: 'errors=remount-ro', freq: 0, passno: 1 },
      { spec: '/dev/vdb', file: '/srv/my data', vfstype: 'xfs', mntops: 'noatime', freq: 0, passno: 2 },
    ]);
    expect(r.users).toEqual([
      { name: 'root', uid: 0, gid: 0, gecos: 'root', home: '/root', shell: '/bin/bash' },
      { name: 'daemon', uid: 1, gid: 1, gecos: 'daemon', home: '/usr/sbin', shell: '/usr/sbin/nologin' },
      { name: 'alice', uid: 1000, gid: 1000, gecos: 'Alice,,,', home: '/home/alice', shell: '/bin/zsh' },
    ]);
  });

  it('errors: a missing path, a path above the root', () => {
    const missing = nf(img(), ['ls', '/nope']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(`nearfield: ls /nope: no such file or directory (${img()})\n`);
    const catDir = nf(img(), ['cat', '/data']);
    expect(catDir.code).not.toBe(0);
    expect(catDir.stderr).toMatch(/^nearfield: cat \/data: is a directory/);
    const escape = nf(img(), ['ls', '/data/../../etc']);
    expect(escape.code).toBe(2);
    expect(escape.stderr).toMatch(/climbs above the guest's root/);
  });

  it('the image is unchanged and libext2fs never tried to write (mount, reads, umount)', async () => {
    const { GuestFiles } = await import(pathToFileURL(path.join(root, 'dist/wasm/client.js')).href);
    const g = await GuestFiles.open(img());
    await g.readdir('/data/many');
    await g.readFile('/etc/passwd');
    let n = 0;
    await g.stream('/data/big.bin', (c: Buffer) => { n += c.length; });
    expect(n).toBe(5 * 1024 * 1024 + 123);
    const stats = await g.umount();
    await g.close();
    expect(stats.writeAttempts).toBe(0);
    expect(stats.recorded).toEqual([]);
    expect(sha256(img())).toBe(hashes[v.name]);
  });
});

describe.skipIf(!hasTools)('a 20 000-entry directory', () => {
  it('ls and ls -l return every entry with its inode, matching debugfs', () => {
    const r = nf(wide, ['ls', '/many']);
    expect(r.code).toBe(0);
    const names = r.stdout.toString().trimEnd().split('\n');
    expect(names.length).toBe(20000);
    expect(names[0]).toBe('f00000');
    expect(names[19999]).toBe('f19999');
    const l = json(wide, ['ls', '-l', '/many']);
    expect(l.entries.length).toBe(20000);
    const dbg = execFileSync('debugfs', ['-R', 'ls -l /many', wide], { stdio: ['ignore', 'pipe', 'ignore'], maxBuffer: 64 << 20 }).toString();
    const inodes = new Map<string, number>();
    for (const m of dbg.matchAll(/^\s*(\d+)\s+\d+\s+\(\d+\)\s+\d+\s+\d+\s+\d+\s+\S+\s+\S+\s+(f\d{5})\s*$/gm)) inodes.set(m[2]!, Number(m[1]));
    expect(inodes.size).toBe(20000);
    for (const e of l.entries) expect(e.ino, e.name).toBe(inodes.get(e.name));
  });
});

const hasBlockTools = hasTools && spawnSync('qemu-img', ['--version']).status === 0 && spawnSync('sfdisk', ['--version']).status === 0;

describe.skipIf(!hasBlockTools)('through the native block layer (qcow2, GPT partition)', () => {
  it('cat and ls read the same bytes from a qcow2 and from a GPT-partitioned raw disk', () => {
    const src = images['4k-csum']!;
    const qcow = path.join(work, 'fs.qcow2');
    execFileSync('qemu-img', ['convert', '-c', '-O', 'qcow2', src, qcow]);
    const disk = path.join(work, 'gpt.img');
    execFileSync('truncate', ['-s', `${fs.statSync(src).size + (2 << 20)}`, disk]);
    execFileSync('sfdisk', ['-q', disk], { input: 'label: gpt\nstart=2048, type=0FC63DAF-8483-4772-8E79-3D69DE47C47D\n' });
    execFileSync('dd', [`if=${src}`, `of=${disk}`, 'bs=1M', 'seek=1', 'conv=notrunc', 'status=none']);
    const want = sha256(path.join(tree, 'data/big.bin'));
    for (const [img, extra] of [[qcow, []], [disk, []], [disk, ['--partition', '1']]] as const) {
      const r = nf(img, ['cat', '/data/big.bin', ...extra]);
      expect(r.stderr, img).toBe('');
      expect(createHash('sha256').update(r.stdout).digest('hex'), img).toBe(want);
      expect(nf(img, ['ls', '/data/many', ...extra]).stdout.toString().split('\n').length, img).toBe(1501);
    }
  });
});

describe.skipIf(!hasTools)('a filesystem too large for libext2fs', () => {
  it('ends the worker, not the CLI: one clear line, exit 1, image untouched', () => {
    const img = path.join(work, 'tera.img');
    execFileSync('truncate', ['-s', '1T', img]);
    execFileSync('mkfs.ext4', ['-q', '-F', '-E', 'nodiscard,lazy_itable_init=1', img], { stdio: 'pipe' });
    // Too big to hash: the superblock as dumpe2fs shows it, and the file's mtime (any write moves it).
    const header = (): string => execFileSync('dumpe2fs', ['-h', img], { stdio: ['ignore', 'pipe', 'ignore'] }).toString();
    const before = header();
    const mtime = fs.statSync(img).mtimeMs;
    const r = spawnSync(process.execPath, [cli, 'ls', '/', '--disk', img]);
    expect(r.status).toBe(1);
    expect(r.stderr.toString()).toBe(`nearfield: ls /: libext2fs aborted: out of memory in its fixed 16 MiB heap (the bitmaps of a large filesystem do not fit) (${img})\n` +
      'hint: libext2fs runs in a sandboxed worker with a 16 MiB heap; `nearfield df` reads the filesystem natively and keeps working\n');
    expect(header()).toBe(before);
    expect(fs.statSync(img).mtimeMs).toBe(mtime);
    fs.rmSync(img);
  });
});

describe.skipIf(!hasTools)('unknown ro_compat features', () => {
  it('are masked for libext2fs in a superblock copy; the image keeps them', async () => {
    const { superblockChecksum } = await import(pathToFileURL(path.join(root, 'dist/wasm/ext4.js')).href);
    const img = path.join(work, 'rocompat.img');
    fs.copyFileSync(images['4k-csum']!, img);
    // orphan_present (0x10000), verity (0x8000) and shared_blocks (0x4000): unknown to libext2fs 1.44.
    const fd = fs.openSync(img, 'r+');
    const sb = Buffer.alloc(1024);
    fs.readSync(fd, sb, 0, 1024, 1024);
    sb.writeUInt32LE((sb.readUInt32LE(0x64) | 0x10000 | 0x8000 | 0x4000) >>> 0, 0x64);
    sb.writeUInt32LE(superblockChecksum(sb), 0x3fc);
    fs.writeSync(fd, sb, 0, 1024, 1024);
    fs.closeSync(fd);
    // e2fsprogs 1.47 agrees the patched superblock is valid (checksum included) and names the features.
    const dump = execFileSync('dumpe2fs', ['-h', img], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
    expect(dump).toMatch(/Filesystem features:.*verity/);
    expect(dump).toMatch(/Filesystem features:.*orphan_present/);
    const before = sha256(img);

    // Plain npm ext2fs refuses it (EXT2_ET_RO_UNSUPP_FEATURE = EXT2_ET_BASE + 68)...
    const { createRequire } = await import('node:module');
    const ext2fs = createRequire(import.meta.url)(path.join(root, 'node_modules/ext2fs'));
    const bytes = fs.readFileSync(img);
    const disk = {
      read: async (b: Buffer, o: number, l: number, p: number) => { bytes.copy(b, o, p, p + l); return { bytesRead: l }; },
      write: async () => { throw new Error('ro'); }, discard: async () => { throw new Error('ro'); }, flush: async () => {},
    };
    await expect(ext2fs.mount(disk, 0)).rejects.toMatchObject({ errno: 2133571328 + 68 });

    // ...and through the bridge it mounts, lists and reads.
    const r = spawnSync(process.execPath, [cli, 'ls', '-l', '/data', '--disk', img, '--json']);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout.toString()).entries.length).toBe(fs.readdirSync(path.join(tree, 'data')).length);
    const { GuestFiles } = await import(pathToFileURL(path.join(root, 'dist/wasm/client.js')).href);
    const g = await GuestFiles.open(img);
    expect(g.info.maskedFeatures).toEqual(['shared_blocks', 'verity', 'orphan_present']);
    expect((await g.readFile('/data/hello.txt')).toString()).toBe('hello, nearfield\n');
    expect((await g.umount()).writeAttempts).toBe(0);
    await g.close();
    expect(sha256(img)).toBe(before);
  });
});

describe.skipIf(!fs.existsSync(cli))('laziness', () => {
  it('commands that do not read files never reach the libext2fs client (static import graph of the CLI)', () => {
    // tsc's modules, which the shipped bundle is made of (esbuild keeps a module reached only by import() uninitialised until then).
    const main = path.join(root, 'dist/src/cli/main.js');
    const seen = new Set<string>();
    const walk = (file: string): void => {
      if (seen.has(file)) return;
      seen.add(file);
      const src = fs.readFileSync(file, 'utf8');
      for (const m of src.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+['"](\.[^'"]+)['"]/gm)) {
        walk(path.resolve(path.dirname(file), m[1]!));
      }
    };
    walk(main);
    // The CLI loads command modules with import() through the generated index (all of them for --help): follow those too.
    const commands = path.join(path.dirname(main), 'commands');
    for (const f of fs.readdirSync(commands).filter((f) => f.endsWith('.js'))) walk(path.join(commands, f));
    const reached = [...seen].map((f) => path.relative(root, f));
    expect(reached).toContain('dist/src/cli/commands/ls.js');
    expect(reached.filter((f) => /wasm\/(client|worker|readonly-disk)\.js$/.test(f))).toEqual([]);
    for (const f of seen) expect(fs.readFileSync(f, 'utf8'), f).not.toMatch(/require\(['"]ext2fs['"]\)|from ['"]ext2fs['"]/);
    const help = spawnSync(process.execPath, [cli, '--help']);
    expect(help.status).toBe(0);
    expect(help.stdout.toString()).toMatch(/\bls\b/);
  });
});

// The real guest: its rootfs as the guest left it (guest-written files included), truth from images/build-guest.mjs.
async function realGuest(): Promise<{ disk: string; truth: any } | undefined> {
  try {
    const mod = await import(pathToFileURL(path.join(root, 'images/unpack-sample.mjs')).href);
    const s = await mod.samplePaths();
    return { disk: s.disk, truth: JSON.parse(fs.readFileSync(s.truth, 'utf8')) };
  } catch {
    const ready = path.join(root, 'images/FIRST_GUEST_READY');
    if (!fs.existsSync(ready)) return undefined;
    const dir = fs.readFileSync(ready, 'utf8').trim();
    return { disk: path.join(dir, 'rootfs.ext4'), truth: JSON.parse(fs.readFileSync(path.join(dir, 'truth.json'), 'utf8')) };
  }
}

describe.skipIf(!fs.existsSync(cli))('the real guest rootfs', () => {
  it('inspect and ls see what the image build and the guest wrote', async () => {
    const g = await realGuest();
    if (!g) return;
    const inspect = json(g.disk, ['inspect']);
    expect(inspect.hostname).toBe(g.truth.hostname);
    expect(inspect.kernels.boot).toEqual([`vmlinuz-${g.truth.uname.release}`]);
    expect(inspect.kernels.modules).toEqual([g.truth.uname.release]);
    expect(inspect.users.map((u: any) => [u.name, u.uid])).toEqual([['root', 0], ['nf', 1000]]);
    expect(inspect.fstab[0]).toMatchObject({ spec: '/dev/vda', file: '/', vfstype: 'ext4' });
    expect(inspect.os.name).toBe('nearfield-sample');

    // Written in the guest at boot (images/guest/init.sh), then synced and frozen.
    const nfDir = json(g.disk, ['ls', '-l', '/var/nf']);
    const sizes = Object.fromEntries(nfDir.entries.map((e: any) => [e.name, e.sizeBytes]));
    // nf-files appends to append.log (its size: the file position the guest reported for that fd) and holds
    // deleted-on-ext4.bin open after unlinking it (so it is not listed)
    const appended = g.truth.processes.flatMap((p: any) => p.fds ?? []).find((f: any) => f.target.endsWith('/var/nf/append.log'));
    expect(sizes).toEqual({ 'append.log': appended.pos, 'hello.txt': 29, 'numbers.txt': 1288895, 'zeros.bin': 3 * 1024 * 1024 });
    expect(nf(g.disk, ['cat', '/var/nf/hello.txt']).stdout.toString()).toBe('written by the guest at boot\n');
    const numbers = nf(g.disk, ['cat', '/var/nf/numbers.txt']).stdout.toString().trimEnd().split('\n');
    expect(numbers.length).toBe(200000);
    expect(numbers[199999]).toBe('200000');
    // Deleted by the guest.
    expect(nf(g.disk, ['stat', '/data/remove-me.txt']).code).toBe(1);
    const data = json(g.disk, ['ls', '-l', '/data']);
    const link = data.entries.find((e: any) => e.name === 'dangling-link');
    expect(link.target).toBe('/does/not/exist');
    expect(nf(g.disk, ['ls', '/data/many']).stdout.toString().trimEnd().split('\n')).toHaveLength(2000);
    const notes = json(g.disk, ['stat', '/home/nf/notes.txt']);
    expect([notes.uid, notes.gid, notes.user]).toEqual([1000, 1000, 'nf']);
  });
});
