// build-guest.mjs — builds a real Debian-kernel sample guest under QEMU/TCG, pauses it, and captures RAM, an ELF core, its disk and in-guest ground truth.
//
// Usage: node images/build-guest.mjs --out DIR [--kernel-package linux-image-6.1.0-NN-amd64 | --kernel-series 6.12]
//          [--mem 256M] [--no5lvl] [--machine pc|q35] [--smp 2] [--work DIR] [--hostname nf-sample] [--timeout 180]
//          [--scenario none|hung|panic]
//
// Only Node built-ins; the host tools it runs are listed in images/APT_PACKAGES.

import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { addHostScenarioTruth, checkScenario, kernelCmdline, SCENARIOS, waitAfterTruth } from './scenarios.mjs';
import { parseTruth, TRUTH_BEGIN, TRUTH_END } from './truth-parse.mjs';
import { writeMakedumpfileDumps, writeQemuDumps } from './dumps.mjs';

const IMAGES_DIR = path.dirname(fileURLToPath(import.meta.url));
const GUEST_SRC = path.join(IMAGES_DIR, 'guest');

// Modules the guest needs (Debian 6.1 builds these as modules). They are loaded in the order their
// own `depends=` modinfo dictates, plus any dependency they pull in. `optional` ones are skipped when
// the package has neither a .ko nor a built-in entry for them.
const GUEST_MODULES = [
  { name: 'crc32c_generic' }, // ext4's metadata_csum needs a crc32c implementation
  { name: 'ext4' },
  { name: 'virtio_pci' },
  { name: 'virtio_blk' },
  // Hands the kernel's VMCOREINFO to QEMU (-device vmcoreinfo), so dump-guest-memory can add the note.
  { name: 'qemu_fw_cfg', optional: true },
  // A network interface with a MAC and addresses of its own (nf0), though the guest has no network device.
  { name: 'dummy', optional: true },
];

const GUEST_PROGRAMS = ['worker', 'spinner', 'zombie', 'asuser', 'sockets', 'files', 'hang', 'churn', 'truth'];
const ROOTFS_BYTES = 64 * 1024 * 1024;

// ---------------------------------------------------------------- small helpers

const startedAt = Date.now();
function log(message) {
  process.stderr.write(`[build-guest ${((Date.now() - startedAt) / 1000).toFixed(1)}s] ${message}\n`);
}

class BuildError extends Error {}

function run(cmd, args, options = {}) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 28, ...options });
  } catch (err) {
    const stderr = err.stderr ? String(err.stderr).trim() : '';
    throw new BuildError(`${cmd} ${args.join(' ')} failed: ${stderr || err.message}`);
  }
}

function sha256File(file) {
  const hash = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  const buf = Buffer.allocUnsafe(8 << 20);
  try {
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

/** "256M", "5G", "1024" (MiB) → bytes. */
function parseSize(text) {
  const m = /^(\d+)([KMGT]?)i?B?$/i.exec(text.trim());
  if (!m) throw new BuildError(`bad size "${text}" (use e.g. 256M or 5G)`);
  const unit = { '': 2 ** 20, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 }[m[2].toUpperCase()];
  return Number(m[1]) * unit;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------- the kernel package

/** `apt-get update`, at most once per build: package lists may be missing (fresh machine) or stale (a
    kernel version that the archive no longer serves). */
let aptUpdated = false;
function aptUpdateOnce() {
  if (aptUpdated) return false;
  aptUpdated = true;
  log('refreshing package lists (apt-get update)');
  try {
    run('apt-get', ['update', '-qq']);
    return true;
  } catch (err) {
    log(`note: ${err.message}`);
    return false;
  }
}

/** Kernel series `--kernel-series` accepts: the package names apt-cache is asked for, and the number that orders them. */
const KERNEL_SERIES = {
  '6.1': { search: '^linux-image-6\\.1\\.0-[0-9]+-amd64$', pattern: /^linux-image-6\.1\.0-(\d+)-amd64$/ },
  // Debian 12 serves 6.12 (its LTS kernel) only as images named by upstream version, e.g. 6.12.107+deb12-amd64-unsigned.
  '6.12': { search: '^linux-image-6\\.12\\.[0-9]+\\+deb[0-9]+-amd64-unsigned$', pattern: /^linux-image-6\.12\.(\d+)\+deb\d+-amd64-unsigned$/ },
};

/** The newest package of a kernel series that apt-cache knows, else the newest one already downloaded. */
function newestKernelPackage(workDir, series = '6.1') {
  const { search: query, pattern } = KERNEL_SERIES[series];
  const search = () => run('apt-cache', ['search', '--names-only', query])
    .split('\n').map((line) => line.split(' ')[0]).filter((name) => pattern.test(name));
  let names = search();
  if (names.length === 0 && aptUpdateOnce()) names = search();
  if (names.length === 0) {
    const debDir = path.join(workDir, 'debs');
    names = (fs.existsSync(debDir) ? fs.readdirSync(debDir) : []).map((f) => f.split('_')[0]).filter((name) => pattern.test(name));
  }
  if (names.length === 0) {
    throw new BuildError(`apt-cache knows no package matching ${query} (run \`apt-get update\` first)`);
  }
  const abi = (name) => Number(pattern.exec(name)[1]);
  return names.sort((a, b) => abi(a) - abi(b)).at(-1);
}

/** Downloads the .deb once into WORK/debs and unpacks it once into WORK/kernels/NAME_VERSION. */
function fetchKernel(pkg, workDir) {
  const debDir = path.join(workDir, 'debs');
  fs.mkdirSync(debDir, { recursive: true });
  const findDeb = () => fs.readdirSync(debDir).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
  if (!findDeb()) {
    log(`downloading ${pkg}`);
    try {
      run('apt-get', ['download', pkg], { cwd: debDir });
    } catch (err) {
      if (!aptUpdateOnce()) throw err;
      run('apt-get', ['download', pkg], { cwd: debDir });
    }
  }
  const debFile = path.join(debDir, findDeb());
  const version = run('dpkg-deb', ['-f', debFile, 'Version']).trim();

  const root = path.join(workDir, 'kernels', `${pkg}_${version}`);
  if (!fs.existsSync(root)) {
    log(`unpacking ${path.basename(debFile)}`);
    const tmp = `${root}.tmp-${process.pid}`;
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(tmp, { recursive: true });
    run('dpkg', ['-x', debFile, tmp]);
    try {
      fs.renameSync(tmp, root);
    } catch (err) {
      // A concurrent build unpacked the same package first: keep its copy.
      if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
  const releases = fs.readdirSync(path.join(root, 'lib/modules'));
  if (releases.length !== 1) throw new BuildError(`expected one kernel release in ${root}/lib/modules, found ${releases}`);
  const release = releases[0];
  const vmlinuz = path.join(root, 'boot', `vmlinuz-${release}`);
  if (!fs.existsSync(vmlinuz)) throw new BuildError(`no ${vmlinuz} in ${pkg}`);
  return { pkg, version, release, root, vmlinuz, debFile, debSha256: sha256File(debFile) };
}

/** The `depends=` list in a module's .modinfo section (a NUL-separated key=value table). */
function moduleDepends(koBytes) {
  const at = koBytes.indexOf('\0depends=');
  if (at < 0) return [];
  const end = koBytes.indexOf(0, at + 9);
  return koBytes.toString('latin1', at + 9, end).split(',').filter(Boolean).map((d) => d.replace(/-/g, '_'));
}

/** Finds each guest module and its dependencies as .ko / .ko.xz / .ko.zst, decompresses them on the host
    (busybox insmod takes plain .ko), and returns them in load order (dependencies first). */
function collectModules(kernel, destDir) {
  const modRoot = path.join(kernel.root, 'lib/modules', kernel.release);
  const builtin = fs.readFileSync(path.join(modRoot, 'modules.builtin'), 'utf8');
  const isBuiltin = (name) => new RegExp(`/${name.replace(/_/g, '[_-]')}\\.ko$`, 'm').test(builtin);
  const available = new Map();
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else {
        const m = /^(.+)\.ko(\.xz|\.zst|\.gz)?$/.exec(entry.name);
        if (m) available.set(m[1].replace(/-/g, '_'), { file: full, compression: m[2] ?? '' });
      }
    }
  };
  walk(path.join(modRoot, 'kernel'));

  const plainKo = (module) => {
    if (module.compression === '') return fs.readFileSync(module.file);
    const tool = { '.xz': 'xz', '.zst': 'zstd', '.gz': 'gzip' }[module.compression];
    return execFileSync(tool, ['-dc', module.file], { maxBuffer: 1 << 28 });
  };

  const loaded = [];
  const skipped = [];
  const visit = (name, optional, chain) => {
    if (loaded.includes(name) || skipped.some((s) => s.name === name)) return;
    if (chain.includes(name)) throw new BuildError(`module dependency cycle: ${[...chain, name].join(' -> ')}`);
    const module = available.get(name);
    if (!module) {
      if (isBuiltin(name) || optional) {
        skipped.push({ name, reason: isBuiltin(name) ? 'built-in' : 'absent' });
        return;
      }
      throw new BuildError(`module ${name} is neither a .ko nor built into ${kernel.pkg}`);
    }
    const ko = plainKo(module);
    for (const dep of moduleDepends(ko)) visit(dep, false, [...chain, name]);
    fs.writeFileSync(path.join(destDir, `${name}.ko`), ko);
    loaded.push(name);
  };
  for (const { name, optional } of GUEST_MODULES) visit(name, optional, []);
  return { loaded, skipped };
}

// ---------------------------------------------------------------- initramfs and rootfs

function compileGuestPrograms(binDir) {
  for (const program of GUEST_PROGRAMS) {
    run('gcc', ['-static', '-O2', '-pthread', '-o', path.join(binDir, program), path.join(GUEST_SRC, `${program}.c`)]);
  }
}

function buildInitramfs({ kernel, stageDir, outFile, hostname, scenario }) {
  for (const dir of ['bin', 'etc', 'lib/modules/nf', 'dev', 'proc', 'sys', 'run', 'tmp', 'mnt/root']) {
    fs.mkdirSync(path.join(stageDir, dir), { recursive: true });
  }
  fs.copyFileSync('/bin/busybox', path.join(stageDir, 'bin/busybox'));
  fs.chmodSync(path.join(stageDir, 'bin/busybox'), 0o755);
  fs.copyFileSync(path.join(GUEST_SRC, 'init.sh'), path.join(stageDir, 'init'));
  fs.chmodSync(path.join(stageDir, 'init'), 0o755);
  compileGuestPrograms(path.join(stageDir, 'bin'));
  const modules = collectModules(kernel, path.join(stageDir, 'lib/modules/nf'));
  fs.writeFileSync(path.join(stageDir, 'etc/nf-modules'), modules.loaded.join('\n') + '\n');
  fs.writeFileSync(path.join(stageDir, 'etc/nf-hostname'), `${hostname}\n`);
  fs.writeFileSync(path.join(stageDir, 'etc/nf-scenario'), `${scenario}\n`);

  // cpio newc, owned by root, gzip'd; file order sorted so the archive is reproducible.
  const files = run('find', ['.', '-mindepth', '1'], { cwd: stageDir }).split('\n').filter(Boolean).sort();
  const cpio = execFileSync('cpio', ['--quiet', '-o', '-H', 'newc', '-R', '0:0'], {
    cwd: stageDir,
    input: files.join('\n') + '\n',
    maxBuffer: 1 << 30,
  });
  fs.writeFileSync(outFile, execFileSync('gzip', ['-9', '-n'], { input: cpio, maxBuffer: 1 << 30 }));
  return modules;
}

/** A small but realistic root filesystem: os-release, users, a kernel in /boot, modules, many entries. */
function buildRootfs({ kernel, stageDir, outFile, hostname }) {
  const put = (rel, content, mode = 0o644) => {
    const file = path.join(stageDir, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, content);
    fs.chmodSync(file, mode);
  };
  put('etc/os-release', [
    'PRETTY_NAME="nearfield sample guest (Debian 12 kernel)"',
    'NAME="nearfield-sample"',
    'ID=nearfield-sample',
    'ID_LIKE=debian',
    'VERSION_ID="1"',
    '',
  ].join('\n'));
  put('etc/hostname', `${hostname}\n`);
  put('etc/passwd', 'root:x:0:0:root:/root:/bin/sh\nnf:x:1000:1000:nearfield user:/home/nf:/bin/sh\n');
  put('etc/group', 'root:x:0:\nnf:x:1000:\n');
  put('etc/fstab', '/dev/vda / ext4 defaults 0 1\n');
  put('root/.profile', 'export PS1="# "\n', 0o600);
  put('home/nf/notes.txt', 'a file owned by uid 1000\n');
  fs.chownSync(path.join(stageDir, 'home/nf'), 1000, 1000);
  fs.chownSync(path.join(stageDir, 'home/nf/notes.txt'), 1000, 1000);

  fs.mkdirSync(path.join(stageDir, 'boot'), { recursive: true });
  fs.copyFileSync(kernel.vmlinuz, path.join(stageDir, 'boot', path.basename(kernel.vmlinuz)));
  fs.copyFileSync(path.join(kernel.root, 'boot', `config-${kernel.release}`), path.join(stageDir, 'boot', `config-${kernel.release}`));
  fs.symlinkSync(path.basename(kernel.vmlinuz), path.join(stageDir, 'boot/vmlinuz'));

  const modSrc = path.join(kernel.root, 'lib/modules', kernel.release);
  const modDest = path.join(stageDir, 'lib/modules', kernel.release);
  fs.mkdirSync(path.join(modDest, 'kernel/fs/ext4'), { recursive: true });
  for (const f of ['modules.order', 'modules.builtin']) fs.copyFileSync(path.join(modSrc, f), path.join(modDest, f));
  const ext4 = ['ext4.ko', 'ext4.ko.xz', 'ext4.ko.zst'].map((f) => path.join(modSrc, 'kernel/fs/ext4', f)).find(fs.existsSync);
  if (ext4) fs.copyFileSync(ext4, path.join(modDest, 'kernel/fs/ext4', path.basename(ext4)));

  put('data/hello.txt', 'hello from the nearfield sample rootfs\n');
  put('data/remove-me.txt', 'the guest deletes this file at boot\n');
  put('data/empty', '');
  put('data/lines.txt', Array.from({ length: 5000 }, (_, i) => `line ${i + 1}\n`).join(''));
  put('data/bin/run.sh', '#!/bin/sh\necho run\n', 0o755);
  // Mapped MAP_SHARED by the hung scenario's guest/hang.c (64 KiB: the whole mapping must lie inside the file).
  put('data/mapped.bin', Buffer.alloc(64 * 1024, 0x6e));
  fs.symlinkSync('hello.txt', path.join(stageDir, 'data/hello-link'));
  fs.symlinkSync('/does/not/exist', path.join(stageDir, 'data/dangling-link'));
  // A directory big enough to need an htree index.
  const many = path.join(stageDir, 'data/many');
  fs.mkdirSync(many, { recursive: true });
  for (let i = 0; i < 2000; i++) fs.writeFileSync(path.join(many, `entry-${String(i).padStart(4, '0')}`), i % 100 === 0 ? `entry ${i}\n` : '');
  fs.mkdirSync(path.join(stageDir, 'var/nf'), { recursive: true });
  fs.mkdirSync(path.join(stageDir, 'tmp'), { recursive: true });
  fs.chmodSync(path.join(stageDir, 'tmp'), 0o1777);

  fs.rmSync(outFile, { force: true });
  run('mkfs.ext4', ['-q', '-F', '-b', '4096', '-I', '256', '-L', 'nf-root', '-E', 'root_owner=0:0', '-d', stageDir, outFile, `${ROOTFS_BYTES / 1024}k`]);
  const dump = run('dumpe2fs', ['-h', outFile], { stdio: ['ignore', 'pipe', 'ignore'] });
  const field = (name) => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(dump)?.[1].trim();
  return {
    bytes: ROOTFS_BYTES,
    block_size: Number(field('Block size')),
    uuid: field('Filesystem UUID'),
    volume_name: field('Filesystem volume name'),
    features: field('Filesystem features')?.split(/\s+/) ?? [],
  };
}

// ---------------------------------------------------------------- QMP

/** A minimal QMP client: one command at a time, events kept in a list. */
class Qmp {
  constructor(socket) {
    this.socket = socket;
    this.buffer = '';
    this.pending = new Map();
    this.nextId = 1;
    this.events = [];
    this.greeting = new Promise((resolve) => (this.onGreeting = resolve));
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => {
      this.buffer += chunk;
      let nl;
      while ((nl = this.buffer.indexOf('\n')) >= 0) {
        const line = this.buffer.slice(0, nl).trim();
        this.buffer = this.buffer.slice(nl + 1);
        if (line) this.receive(JSON.parse(line));
      }
    });
    socket.on('close', () => {
      for (const { reject } of this.pending.values()) reject(new BuildError('QMP connection closed'));
      this.pending.clear();
    });
  }

  static async connect(socketPath, deadline) {
    for (;;) {
      try {
        const socket = await new Promise((resolve, reject) => {
          const s = net.createConnection(socketPath);
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        });
        const qmp = new Qmp(socket);
        await qmp.greeting;
        await qmp.execute('qmp_capabilities');
        return qmp;
      } catch (err) {
        if (Date.now() > deadline) throw new BuildError(`cannot connect to QMP at ${socketPath}: ${err.message}`);
        await sleep(100);
      }
    }
  }

  receive(message) {
    if (message.QMP) this.onGreeting(message);
    else if (message.event) this.events.push(message);
    else if (message.id !== undefined && this.pending.has(message.id)) {
      const { resolve, reject, command } = this.pending.get(message.id);
      this.pending.delete(message.id);
      if (message.error) reject(new BuildError(`QMP ${command}: ${message.error.class}: ${message.error.desc}`));
      else resolve(message.return);
    }
  }

  execute(command, args) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, command });
      this.socket.write(JSON.stringify(args ? { execute: command, arguments: args, id } : { execute: command, id }) + '\n');
    });
  }

  close() {
    this.socket.destroy();
  }
}

// ---------------------------------------------------------------- RAM layout and ELF notes

/** The RAM file's layout, from QEMU's own memory tree: which GPA ranges map to which file offsets. */
function ramLayoutFromMtree(mtree, machine, memBytes) {
  const ranges = [];
  const seen = new Set();
  const re = /([0-9a-f]+)-([0-9a-f]+) \(prio [-\d]+, ram\): alias (ram-(?:below|above)-4g) @ram0 ([0-9a-f]+)-([0-9a-f]+)/g;
  for (const m of mtree.matchAll(re)) {
    if (seen.has(m[3])) continue;
    seen.add(m[3]);
    const gpa = BigInt(`0x${m[1]}`);
    const size = BigInt(`0x${m[2]}`) - gpa + 1n;
    ranges.push({ name: m[3], gpa: `0x${gpa.toString(16)}`, file_offset: `0x${BigInt(`0x${m[4]}`).toString(16)}`, size: `0x${size.toString(16)}` });
  }
  const below = ranges.find((r) => r.name === 'ram-below-4g');
  return {
    kind: `qemu-${machine}`,
    description: `memory-backend-file ram.raw: file offset = GPA below ${below ? below.size : '?'}; the rest of the file appears at GPA 4 GiB`,
    mem_bytes: memBytes,
    below_4g_bytes: below ? Number(BigInt(below.size)) : null,
    ranges,
  };
}

/** Whether an ELF64 core carries a note named VMCOREINFO in any PT_NOTE segment. */
function elfHasVmcoreinfo(file) {
  const fd = fs.openSync(file, 'r');
  try {
    const read = (offset, length) => {
      const buf = Buffer.alloc(length);
      fs.readSync(fd, buf, 0, length, offset);
      return buf;
    };
    const ehdr = read(0, 64);
    if (ehdr.readUInt32BE(0) !== 0x7f454c46 || ehdr[4] !== 2) return false;
    const phoff = Number(ehdr.readBigUInt64LE(32));
    const phentsize = ehdr.readUInt16LE(54);
    const phnum = ehdr.readUInt16LE(56);
    for (let i = 0; i < phnum; i++) {
      const ph = read(phoff + i * phentsize, phentsize);
      if (ph.readUInt32LE(0) !== 4 /* PT_NOTE */) continue;
      const notes = read(Number(ph.readBigUInt64LE(8)), Number(ph.readBigUInt64LE(32)));
      for (let at = 0; at + 12 <= notes.length;) {
        const namesz = notes.readUInt32LE(at);
        const descsz = notes.readUInt32LE(at + 4);
        const name = notes.toString('latin1', at + 12, at + 12 + namesz).replace(/\0+$/, '');
        if (name === 'VMCOREINFO') return true;
        at += 12 + Math.ceil(namesz / 4) * 4 + Math.ceil(descsz / 4) * 4;
      }
    }
    return false;
  } finally {
    fs.closeSync(fd);
  }
}

// ---------------------------------------------------------------- booting and capturing

/** Boots QEMU, waits for the truth END marker, pauses, dumps, quits. Returns timings and QEMU facts. */
async function bootAndCapture({ outDir, vmlinuz, initramfs, memBytes, machine, smp, no5lvl, scenario, timeoutSeconds, keepRunning = false, anonRam = false }) {
  const memArg = `${memBytes / 2 ** 20}M`;
  const ramFile = path.join(outDir, 'ram.raw');
  const truthSerial = path.join(outDir, 'truth-serial.log');
  const coreFile = path.join(outDir, 'core.elf');
  for (const f of [ramFile, truthSerial, coreFile, path.join(outDir, 'serial.log')]) fs.rmSync(f, { force: true });
  // Unix socket paths are limited to ~107 bytes: keep it short, in the temp dir.
  const socketPath = path.join(os.tmpdir(), `nf-qmp-${process.pid}-${Date.now()}.sock`);
  const cmdline = kernelCmdline({ no5lvl, scenario });
  const args = [
    '-accel', 'tcg', '-cpu', 'max', '-smp', String(smp),
    '-m', memArg,
    // --anon-ram: QEMU's own anonymous RAM, as most QEMU/libvirt VMs have it (read live from the QEMU process).
    ...(anonRam ? ['-machine', machine] : [
      '-object', `memory-backend-file,id=ram0,size=${memArg},mem-path=${ramFile},share=on`,
      '-machine', `${machine},memory-backend=ram0`,
    ]),
    '-kernel', vmlinuz, '-initrd', initramfs, '-append', cmdline,
    '-drive', `file=${path.join(outDir, 'rootfs.ext4')},format=raw,if=virtio`,
    '-device', 'vmcoreinfo',
    '-nic', 'none',
    '-nographic', '-monitor', 'none', '-parallel', 'none',
    '-serial', `file:${path.join(outDir, 'serial.log')}`,
    '-serial', `file:${truthSerial}`,
    '-qmp', `unix:${socketPath},server=on,wait=off`,
    '-no-reboot',
  ];
  log(`booting: qemu-system-x86_64 ${args.join(' ')}`);
  const bootStart = Date.now();
  // A guest kept running outlives this script: detached, its own output to a file instead of our pipes.
  const qemuLog = keepRunning ? fs.openSync(path.join(outDir, 'qemu.log'), 'w') : null;
  const qemu = spawn('qemu-system-x86_64', args, keepRunning
    ? { stdio: ['ignore', qemuLog, qemuLog], detached: true }
    : { stdio: ['ignore', 'pipe', 'pipe'] });
  let qemuOutput = '';
  qemu.stdout?.on('data', (d) => (qemuOutput += d));
  qemu.stderr?.on('data', (d) => (qemuOutput += d));
  let exited = null;
  const exitPromise = new Promise((resolve) => qemu.on('exit', (code, signal) => resolve((exited = { code, signal }))));
  const kill = () => exited || qemu.kill('SIGKILL');

  let qmp;
  try {
    const deadline = bootStart + timeoutSeconds * 1000;
    qmp = await Qmp.connect(socketPath, Math.min(deadline, Date.now() + 20000));
    const version = await qmp.execute('query-version');

    // Watch the truth port for the END marker line.
    let endSeenAt = null;
    let text = '';
    while (endSeenAt === null) {
      if (exited) throw new BuildError(`QEMU exited early (${JSON.stringify(exited)}): ${qemuOutput.trim()}\n${tail(path.join(outDir, 'serial.log'))}`);
      if (Date.now() > deadline) throw new BuildError(`guest did not print its truth within ${timeoutSeconds}s; serial.log ends:\n${tail(path.join(outDir, 'serial.log'))}`);
      if (fs.existsSync(truthSerial)) {
        text = fs.readFileSync(truthSerial, 'latin1');
        const end = text.indexOf(`\n${TRUTH_END}`);
        if (end >= 0 && text.indexOf('\n', end + 1) >= 0) endSeenAt = Date.now();
      }
      if (endSeenAt === null) await sleep(20);
    }
    if (keepRunning) {
      // For live-capture tests: leave the guest running and say where to reach it.
      qemu.unref();
      return { truthText: text, bootStart, endSeenAt, pausedAt: null, running: { pid: qemu.pid, qmp: socketPath }, cmdline };
    }
    // The panicked guest: keep it running until the console shows the end of the panic.
    const afterTruth = await waitAfterTruth({
      scenario, serialLog: path.join(outDir, 'serial.log'), deadline, hasExited: () => exited !== null, sleep,
      fail: (message) => { throw new BuildError(`${message}; serial.log ends:\n${tail(path.join(outDir, 'serial.log'))}`); },
    });
    await qmp.execute('stop');
    const pausedAt = Date.now();
    const status = await qmp.execute('query-status');
    log(`END marker seen after ${((endSeenAt - bootStart) / 1000).toFixed(1)}s; ${afterTruth.panic_seen_at ? `panic on the console ${afterTruth.panic_seen_at - endSeenAt} ms later; ` : ''}paused ${pausedAt - endSeenAt} ms later (status ${status.status})`);

    const mtree = await qmp.execute('human-monitor-command', { 'command-line': 'info mtree' });
    await qmp.execute('dump-guest-memory', { paging: false, protocol: `file:${coreFile}` });
    let dump = await qmp.execute('query-dump');
    while (dump.status === 'active') {
      await sleep(100);
      dump = await qmp.execute('query-dump');
    }
    if (dump.status !== 'completed') throw new BuildError(`dump-guest-memory ended with status ${dump.status}`);
    fs.chmodSync(coreFile, 0o644); // QEMU creates it owner-read-only; tests may run as another user
    digHoles(coreFile);
    log(`ELF core written (${dump.completed} bytes of RAM)`);
    const qemuDumps = await writeQemuDumps(qmp, outDir, log); // kdump-compressed, same instant (dumps.mjs)
    await qmp.execute('quit').catch(() => {});
    await Promise.race([exitPromise, sleep(10000)]);
    if (!exited) throw new BuildError('QEMU did not exit after quit');

    return {
      truthText: text,
      bootStart, endSeenAt, pausedAt, panicSeenAt: afterTruth.panic_seen_at ?? null,
      qemu: { version: version.qemu, package: version.package.trim(), binary: 'qemu-system-x86_64', args, command: ['qemu-system-x86_64', ...args] },
      mtree,
      cmdline,
      qemuDumps,
    };
  } catch (err) {
    kill();
    throw err;
  } finally {
    qmp?.close();
    if (!keepRunning) {
      kill();
      fs.rmSync(socketPath, { force: true });
    }
    if (qemuLog !== null) fs.closeSync(qemuLog);
  }
}

/** QEMU writes the core densely (a 5 GiB guest makes 5 GiB of mostly zeros); turn zero runs back into holes. */
function digHoles(file) {
  try {
    execFileSync('fallocate', ['--dig-holes', file], { stdio: 'ignore' });
  } catch {
    log(`note: could not punch holes into ${path.basename(file)} (fallocate --dig-holes); it stays dense`);
  }
}

function tail(file, lines = 30) {
  try {
    return fs.readFileSync(file, 'latin1').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no serial output)';
  }
}

// ---------------------------------------------------------------- checking the guest did what we asked

/** Fails the build when the guest's truth lacks the mounted rootfs, a workload process in its expected state,
    or one of the sockets, open files, interfaces, environment variables and cgroups init.sh sets up. */
function checkWorkload(truth, { dummyLoaded }) {
  const problems = [];
  const rootfs = truth.mounts.find((m) => m.mountpoint === '/mnt/root');
  if (rootfs?.fstype !== 'ext4') problems.push('the rootfs is not mounted as ext4 on /mnt/root');
  if (truth.statfs?.f_type !== 0xef53) problems.push(`statfs of /mnt/root is not ext4 (f_type ${truth.statfs?.f_type})`);
  const expected = {
    'nf-small': 'S', 'nf-big': 'S', 'nf-threads': 'S', 'nf-longcmd': 'S', 'nf-user': 'S', 'nf-nice': 'S', 'nf) odd (x': 'S',
    'nf-stopped': 'T', 'nf-zparent': 'S', 'nf-zombie': 'Z', 'nf-spin': 'R', truth: 'R',
    'nf-net-srv': 'S', 'nf-net-cli': 'S', 'nf-files': 'S', 'nf-pipe-rd': 'S', 'nf-batch': 'S',
    'nf-session': 'S', 'nf-session-fg': 'S',
  };
  const proc = (comm) => truth.processes.find((q) => q.comm === comm);
  for (const [comm, state] of Object.entries(expected)) {
    const p = proc(comm);
    if (!p) problems.push(`no process ${comm}`);
    else if (p.state !== state) problems.push(`${comm} is in state ${p.state}, expected ${state}`);
  }
  if (problems.length) throw new BuildError(`the guest's workload is incomplete (see serial.log):\n  ${problems.join('\n  ')}`);
  const want = (ok, what) => ok || problems.push(what);

  // Per-process truth: every task's stack and wchan, every user process's fds, maps and environment.
  for (const p of truth.processes) {
    if (!p.threads.every((t) => Array.isArray(t.stack))) problems.push(`pid ${p.pid} ${p.comm}: a task without /proc/…/stack`);
    if (!p.kernel_thread && !p.mm_skipped && p.state !== 'Z' && (!p.maps?.length || !p.environ)) problems.push(`pid ${p.pid} ${p.comm}: no maps or environ`);
  }
  want(proc('nf-pipe-rd').wchan === 'pipe_read', `nf-pipe-rd waits in ${proc('nf-pipe-rd').wchan}, expected pipe_read`);

  // The session with a controlling terminal (ps STAT "s", "+", "L"): /proc/PID/stat fields 5–8 and VmLck.
  const stat = (p) => p.raw.stat.slice(p.raw.stat.lastIndexOf(')') + 2).split(' ');
  const [leader, member] = [proc('nf-session'), proc('nf-session-fg')];
  const [ls, ms] = [stat(leader), stat(member)];
  want(ls[3] === String(leader.pid) && ls[2] === String(leader.pid), `nf-session is not a session and group leader (pgrp ${ls[2]}, session ${ls[3]})`);
  want(ls[4] !== '0' && ls[5] === String(leader.pid), `nf-session has no controlling terminal in its foreground (tty_nr ${ls[4]}, tpgid ${ls[5]})`);
  want(ms[2] === String(leader.pid) && ms[3] === String(leader.pid) && ms[5] === String(leader.pid), `nf-session-fg is not in nf-session's foreground group (${ms.slice(2, 6)})`);
  want(/^VmLck:\s+[1-9]/m.test(leader.raw.status) && /^VmLck:\s+0 /m.test(member.raw.status), 'nf-session has no mlock()ed memory, or nf-session-fg has');

  // Sockets: listeners, established pairs with data left unread, datagram sockets, unix sockets.
  const tcp = (state, address, port) => truth.net.tcp.find((t) => t.state === state && t.local_address === address && t.local_port === port);
  for (const [address, port] of [['127.0.0.1', 7001], ['::1', 7002], ['0.0.0.0', 7005]]) want(tcp('LISTEN', address, port), `no TCP listener on ${address}:${port}`);
  for (const [address, port] of [['127.0.0.1', 7001], ['::1', 7002]]) {
    const accepted = tcp('ESTABLISHED', address, port);
    want(accepted?.rx_queue === 2000, `the accepted TCP connection on ${address}:${port} should hold 2000 unread bytes (${accepted?.rx_queue})`);
    want(truth.net.tcp.some((t) => t.state === 'ESTABLISHED' && t.remote_port === port && t.uid === 1000), `no uid-1000 client connected to ${address}:${port}`);
  }
  for (const [address, port] of [['127.0.0.1', 7003], ['::1', 7004]]) want(truth.net.udp.some((u) => u.local_address === address && u.local_port === port), `no UDP socket on ${address}:${port}`);
  for (const path of ['/run/nf-stream.sock', '/run/nf-dgram.sock', '@nf-abstract']) want(truth.net.unix.some((u) => u.path === path), `no unix socket ${path}`);
  want(truth.net.unix.some((u) => u.path === '/run/nf-stream.sock' && u.state === 'LISTEN'), 'the unix stream socket is not listening');
  want(truth.net.dev?.lo?.rx_bytes > 0, 'no traffic counted on lo');

  // Interfaces: lo up with its addresses; nf0 (the dummy) as init.sh configured it.
  const iface = (name) => truth.interfaces.find((i) => i.name === name);
  const has = (i, address, prefixlen) => i?.addresses.some((a) => a.address === address && a.prefixlen === prefixlen);
  want(iface('lo') && (iface('lo').flags & 1) === 1 && has(iface('lo'), '127.0.0.1', 8) && has(iface('lo'), '::1', 128), 'lo is not up with 127.0.0.1/8 and ::1/128');
  if (dummyLoaded) {
    const nf0 = iface('nf0');
    want(nf0?.mac === '02:6e:66:00:00:01' && nf0.mtu === 1400 && has(nf0, '10.42.0.1', 24) && has(nf0, 'fd42:6e66::1', 64), 'nf0 is not configured as init.sh says');
  }

  // Open files: deleted ones on ext4 and tmpfs, a pipe shared with the reader, offsets.
  const files = proc('nf-files');
  const fd = (pred) => files.fds?.find(pred);
  want(fd((f) => f.target === '/mnt/root/var/nf/deleted-on-ext4.bin (deleted)')?.pos === 12345, 'nf-files has no deleted ext4 file at offset 12345');
  want(fd((f) => f.target === '/run/nf-deleted-on-tmpfs.txt (deleted)'), 'nf-files has no deleted tmpfs file');
  want(fd((f) => f.target === '/mnt/root/data/lines.txt')?.pos === 100, 'nf-files has no data/lines.txt at offset 100');
  const pipe = fd((f) => /^pipe:\[\d+\]$/.test(f.target ?? ''));
  want(pipe && proc('nf-pipe-rd').fds?.some((f) => f.target === pipe.target), 'nf-files and nf-pipe-rd do not share a pipe');

  // Environment and cgroups.
  const env = (comm, entry) => want(proc(comm).environ?.includes(entry), `${comm} has no ${entry} in its environment`);
  env('nf-net-srv', 'NF_SERVICE=web');
  env('nf-files', 'NF_QUOTED=two words = one value');
  env('nf-files', 'NF_EMPTY=');
  env('nf-small', 'NF_GUEST=nearfield-sample');
  const cgroup = (path) => truth.cgroups?.find((c) => c.path === path);
  for (const [comm, path] of [['nf-net-srv', '/nf/web'], ['nf-net-cli', '/nf/web'], ['nf-files', '/nf/batch'], ['nf-pipe-rd', '/nf/batch'], ['nf-batch', '/nf/batch'], ['nf-small', '/nf/batch'], ['nf-big', '/']]) {
    want(proc(comm).cgroup === path && cgroup(path)?.procs?.includes(proc(comm).pid), `${comm} is not in cgroup ${path}`);
  }
  want(['memory', 'cpu'].every((c) => cgroup('/nf')?.subtree_control?.includes(c)), 'memory and cpu are not enabled below /nf');
  want(cgroup('/nf/batch')?.memory_current >= 8 << 20, `/nf/batch's memory.current (${cgroup('/nf/batch')?.memory_current}) is below nf-batch's 8 MiB`);

  if (problems.length) throw new BuildError(`the guest's workload is incomplete (see serial.log):\n  ${problems.join('\n  ')}`);
}

// ---------------------------------------------------------------- main

function usage() {
  return 'usage: node images/build-guest.mjs --out DIR [--kernel-package linux-image-6.1.0-NN-amd64 | --kernel-series 6.1|6.12] [--mem 256M] [--no5lvl] [--machine pc|q35] [--smp 2] [--work DIR] [--hostname NAME] [--timeout SECONDS] [--scenario none|hung|panic|churn] [--keep-running [--anon-ram]]';
}

async function main() {
  const { values } = parseArgs({
    options: {
      out: { type: 'string' },
      'kernel-package': { type: 'string' },
      'kernel-series': { type: 'string', default: '6.1' },
      scenario: { type: 'string', default: 'none' },
      mem: { type: 'string', default: '256M' },
      no5lvl: { type: 'boolean', default: false },
      machine: { type: 'string', default: 'pc' },
      smp: { type: 'string', default: '2' },
      work: { type: 'string', default: path.join(IMAGES_DIR, '.work') },
      hostname: { type: 'string', default: 'nf-sample' },
      timeout: { type: 'string', default: '180' },
      'keep-running': { type: 'boolean', default: false },
      'anon-ram': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(usage());
    return;
  }
  if (!values.out) throw new BuildError(usage());
  if (!['pc', 'q35'].includes(values.machine)) throw new BuildError(`--machine must be pc or q35, not ${values.machine}`);
  if (!SCENARIOS.includes(values.scenario)) throw new BuildError(`--scenario must be one of ${SCENARIOS.join(', ')}, not ${values.scenario}`);
  if (!KERNEL_SERIES[values['kernel-series']]) throw new BuildError(`--kernel-series must be one of ${Object.keys(KERNEL_SERIES).join(', ')}`);
  if (values['keep-running'] && !['none', 'churn'].includes(values.scenario)) throw new BuildError('--keep-running is for the default and churn scenarios only');
  if (values.scenario === 'churn' && !values['keep-running']) throw new BuildError('--scenario churn needs --keep-running (it is a moving target for live reads)');
  if (values['anon-ram'] && !values['keep-running']) throw new BuildError('--anon-ram needs --keep-running (there is no RAM file to capture)');
  const scenario = values.scenario;

  const outDir = path.resolve(values.out);
  const workDir = path.resolve(values.work);
  const memBytes = parseSize(values.mem);
  fs.mkdirSync(outDir, { recursive: true });
  fs.mkdirSync(workDir, { recursive: true });
  // An earlier build's outputs must not outlive a failed one (tests take a present truth.json as a built guest).
  for (const f of ['ram.raw', 'core.elf', 'rootfs.ext4', 'serial.log', 'truth-serial.log', 'truth.json', 'manifest.json', 'running.json', 'qemu.log']) {
    fs.rmSync(path.join(outDir, f), { force: true });
  }

  const kernel = fetchKernel(values['kernel-package'] ?? newestKernelPackage(workDir, values['kernel-series']), workDir);
  log(`kernel ${kernel.pkg} ${kernel.version} (release ${kernel.release})`);

  const stage = fs.mkdtempSync(path.join(workDir, 'stage-'));
  try {
    const initramfs = path.join(stage, 'initramfs.cpio.gz');
    const modules = buildInitramfs({ kernel, stageDir: path.join(stage, 'initramfs'), outFile: initramfs, hostname: values.hostname, scenario });
    log(`initramfs built (${fs.statSync(initramfs).size} bytes; modules: ${modules.loaded.join(' ')})`);
    const rootfs = buildRootfs({ kernel, stageDir: path.join(stage, 'rootfs'), outFile: path.join(outDir, 'rootfs.ext4'), hostname: values.hostname });
    log(`rootfs built (${rootfs.features.join(',')})`);

    const boot = await bootAndCapture({
      outDir, vmlinuz: kernel.vmlinuz, initramfs, memBytes, machine: values.machine, smp: Number(values.smp),
      no5lvl: values.no5lvl, scenario, timeoutSeconds: Number(values.timeout), keepRunning: values['keep-running'], anonRam: values['anon-ram'],
    });
    if (boot.running) {
      const truth = parseTruth(boot.truthText, {
        host_end_marker_seen: new Date(boot.endSeenAt).toISOString(),
        host_paused: null,
        host_pause_delay_ms: null,
        still_running: true,
      });
      fs.writeFileSync(path.join(outDir, 'truth.json'), JSON.stringify(truth, null, 1) + '\n');
      fs.writeFileSync(path.join(outDir, 'running.json'), JSON.stringify({ ...boot.running, ram: values['anon-ram'] ? null : path.join(outDir, 'ram.raw'), disk: path.join(outDir, 'rootfs.ext4'), machine: values.machine, mem_bytes: memBytes, scenario }, null, 2) + '\n');
      log(`guest left running: QEMU pid ${boot.running.pid}, QMP ${boot.running.qmp} (see running.json); stop it with QMP quit`);
      return;
    }

    // The RAM file is QEMU's backing store: after quit it holds the paused RAM, at full (sparse) size.
    const ramFile = path.join(outDir, 'ram.raw');
    const ramSize = fs.statSync(ramFile).size;
    if (ramSize !== memBytes) throw new BuildError(`ram.raw is ${ramSize} bytes, expected ${memBytes}`);

    const truth = parseTruth(boot.truthText, {
      host_end_marker_seen: new Date(boot.endSeenAt).toISOString(),
      host_paused: new Date(boot.pausedAt).toISOString(),
      host_pause_delay_ms: boot.pausedAt - boot.endSeenAt,
    });
    addHostScenarioTruth(truth, {
      scenario, serialText: fs.readFileSync(path.join(outDir, 'serial.log'), 'latin1'), endSeenAt: boot.endSeenAt, panicSeenAt: boot.panicSeenAt,
    });
    fs.writeFileSync(path.join(outDir, 'truth.json'), JSON.stringify(truth, null, 1) + '\n');
    log(`truth.json: ${truth.processes.length} processes, printer pid ${truth.printer_pid}; ${(fs.statSync(path.join(outDir, 'truth-serial.log')).size / 1024).toFixed(0)} KiB over the UART in ${truth.after_print.guest_transmit_ms.toFixed(0)} ms`);
    checkWorkload(truth, { dummyLoaded: modules.loaded.includes('dummy') });
    try {
      checkScenario(truth, scenario);
    } catch (err) {
      throw new BuildError(err.message);
    }

    const coreFile = path.join(outDir, 'core.elf');
    const vmcores = writeMakedumpfileDumps(outDir, log, memBytes);
    const dumps = { ...boot.qemuDumps.dumps, ...vmcores.dumps };
    const files = {};
    for (const name of ['ram.raw', 'core.elf', 'rootfs.ext4', 'serial.log', 'truth-serial.log', 'truth.json', ...Object.keys(dumps)]) {
      const st = fs.statSync(path.join(outDir, name));
      files[name] = { bytes: st.size, allocated_bytes: st.blocks * 512, sha256: sha256File(path.join(outDir, name)) };
    }
    const manifest = {
      format: 'nearfield-sample-guest/1',
      built_at: new Date(startedAt).toISOString(),
      build_seconds: (Date.now() - startedAt) / 1000,
      boot_seconds_to_truth: (boot.endSeenAt - boot.bootStart) / 1000,
      kernel: {
        package: kernel.pkg, version: kernel.version, release: kernel.release,
        deb: path.basename(kernel.debFile), deb_sha256: kernel.debSha256,
        cmdline: boot.cmdline, kaslr: true,
      },
      qemu: boot.qemu,
      machine: values.machine,
      accel: 'tcg',
      cpu: 'max',
      smp: Number(values.smp),
      mem: values.mem,
      mem_bytes: memBytes,
      paging_requested: values.no5lvl ? '4-level (no5lvl on the kernel command line)' : '5-level (LA57 offered by -cpu max under TCG)',
      ram_layout: ramLayoutFromMtree(boot.mtree, values.machine, memBytes),
      qemu_mtree: boot.mtree,
      modules,
      rootfs,
      hostname: values.hostname,
      core_elf_has_vmcoreinfo: elfHasVmcoreinfo(coreFile),
      dumps,
      dumps_skipped: [...boot.qemuDumps.skipped, ...vmcores.skipped],
      truth_pause_delay_ms: boot.pausedAt - boot.endSeenAt,
      scenario,
      panic: truth.scenario.panic ? { message: truth.scenario.panic.message, pid: truth.scenario.panic.pid, comm: truth.scenario.panic.comm, console_ms_after_end: truth.scenario.panic.console_ms_after_end } : null,
      truth_uart_bytes: fs.statSync(path.join(outDir, 'truth-serial.log')).size,
      truth_transmit_ms: truth.after_print.guest_transmit_ms,
      host: { node: process.version, os: `${os.type()} ${os.release()}` },
      files,
    };
    fs.writeFileSync(path.join(outDir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    log(`done: ${outDir} (VMCOREINFO note in core.elf: ${manifest.core_elf_has_vmcoreinfo})`);
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`build-guest: ${err instanceof BuildError ? err.message : err.stack}\n`);
  process.exit(1);
});
