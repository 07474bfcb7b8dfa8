// dumps.mjs — the kdump-compressed dumps forensic users take of a hung VM, written of the paused sample guest next to
// ram.raw (same instant): QEMU's own `dump-guest-memory format=kdump-*`, and makedumpfile's from core.elf.
//
// Used by build-guest.mjs: writeQemuDumps() while the guest is paused (QMP), writeMakedumpfileDumps() after.
// Only Node built-ins; makedumpfile is a Debian package (images/APT_PACKAGES) and is skipped when absent.

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** The kdump formats QEMU can write (QAPI DumpGuestMemoryFormat); which ones a build supports it says itself. */
const QEMU_KDUMP_FORMATS = ['kdump-zlib', 'kdump-lzo', 'kdump-snappy'];

/**
 * makedumpfile dumps from core.elf, named like the vmcore a guest's own kdump service writes, both in the
 * standard "KDUMP   " form (QEMU 7.2 writes only the flattened one): an LZO dump without its zero pages (-d 1: they
 * read back as the zeros they were; -d 0 of the 5 GiB guest takes 45 s, -d 1 5 s) and a `-d 31` one (zero, cache,
 * user and free pages left out).
 */
const MAKEDUMPFILE_DUMPS = [
  { name: 'vmcore-lzo', args: ['-l', '-d', '1'], compression: 'lzo', dumpLevel: 1 },
  { name: 'vmcore-d31', args: ['-c', '-d', '31'], compression: 'zlib', dumpLevel: 31 },
];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * While the guest is paused: one dump per kdump format this QEMU offers (query-dump-guest-memory-capability).
 * Returns { dumps: {name: facts}, skipped: [why] }. `qmp.execute(command, args)` is build-guest's QMP client.
 */
export async function writeQemuDumps(qmp, outDir, log) {
  const dumps = {};
  const skipped = [];
  for (const name of [...QEMU_KDUMP_FORMATS, ...MAKEDUMPFILE_DUMPS.map((d) => d.name)]) fs.rmSync(path.join(outDir, name), { force: true });
  const { formats } = await qmp.execute('query-dump-guest-memory-capability');
  for (const format of QEMU_KDUMP_FORMATS) {
    if (!formats.includes(format)) {
      skipped.push(`${format}: this QEMU does not offer it (query-dump-guest-memory-capability: ${formats.join(', ')})`);
      continue;
    }
    const file = path.join(outDir, format);
    fs.rmSync(file, { force: true });
    const started = Date.now();
    await qmp.execute('dump-guest-memory', { paging: false, protocol: `file:${file}`, format });
    let status = await qmp.execute('query-dump');
    while (status.status === 'active') {
      await sleep(100);
      status = await qmp.execute('query-dump');
    }
    if (status.status !== 'completed') throw new Error(`dump-guest-memory format=${format} ended with status ${status.status}`);
    fs.chmodSync(file, 0o644); // QEMU creates it owner-read-only; tests may run as another user
    dumps[format] = {
      writer: `QEMU dump-guest-memory format=${format}`,
      form: flattened(file) ? 'flattened' : 'standard',
      compression: format.slice('kdump-'.length),
      dump_level: 1,
      seconds: (Date.now() - started) / 1000,
    };
    log(`${format} written (${dumps[format].form}, ${fs.statSync(file).size} bytes, ${dumps[format].seconds} s)`);
  }
  return { dumps, skipped };
}

/** Guests above this get QEMU's dump only: makedumpfile on the 5 GiB guest's core.elf took ~30 s, and the
 *  256 MiB guests' vmcores are what the tests read. */
const MAKEDUMPFILE_MAX_MEM = 1 << 30;

/** After the guest is gone: makedumpfile's dumps from core.elf (it needs core.elf's VMCOREINFO note). */
export function writeMakedumpfileDumps(outDir, log, memBytes) {
  const dumps = {};
  const skipped = [];
  if (memBytes > MAKEDUMPFILE_MAX_MEM) {
    for (const d of MAKEDUMPFILE_DUMPS) skipped.push(`${d.name}: guest larger than 1 GiB (makedumpfile would take ~30 s; the small guests carry these)`);
    return { dumps, skipped };
  }
  const makedumpfile = findTool('makedumpfile');
  if (!makedumpfile) {
    for (const d of MAKEDUMPFILE_DUMPS) skipped.push(`${d.name}: makedumpfile is not installed (apt-get install makedumpfile)`);
    return { dumps, skipped };
  }
  const version = /version (\S+)/.exec(run(makedumpfile, ['-v']))?.[1] ?? 'unknown';
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nf-dumps-'));
  try {
    const core = path.join(tmp, 'core.elf');
    copyWithPhdrsFirst(path.join(outDir, 'core.elf'), core);
    for (const d of MAKEDUMPFILE_DUMPS) {
      const file = path.join(outDir, d.name);
      fs.rmSync(file, { force: true });
      const started = Date.now();
      // It warns that it does not know kernels newer than its release; the dump is still complete.
      run(makedumpfile, [...d.args, core, file]);
      fs.chmodSync(file, 0o644);
      dumps[d.name] = {
        writer: `makedumpfile ${version}: makedumpfile ${d.args.join(' ')} core.elf`,
        form: flattened(file) ? 'flattened' : 'standard',
        compression: d.compression,
        dump_level: d.dumpLevel,
        seconds: (Date.now() - started) / 1000,
      };
      log(`${d.name} written (${fs.statSync(file).size} bytes, ${dumps[d.name].seconds} s)`);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return { dumps, skipped };
}

function flattened(file) {
  const fd = fs.openSync(file, 'r');
  try {
    const head = Buffer.alloc(12);
    fs.readSync(fd, head, 0, 12, 0);
    return head.toString('latin1') === 'makedumpfile';
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * A copy of an ELF core whose program headers sit right after the ELF header. QEMU 7.2 puts section headers
 * there (e_phoff 192) and makedumpfile 1.7.2 reads program headers at offset 64 regardless of e_phoff, finding
 * no PT_LOAD. The copy keeps every other byte at its offset (reflink or sparse copy, then a ~400-byte patch).
 */
function copyWithPhdrsFirst(src, dst) {
  execFileSync('cp', ['--reflink=auto', '--sparse=always', src, dst]);
  const fd = fs.openSync(dst, 'r+');
  try {
    const eh = Buffer.alloc(64);
    fs.readSync(fd, eh, 0, 64, 0);
    const phoff = Number(eh.readBigUInt64LE(32));
    const phentsize = eh.readUInt16LE(54);
    const phnum = eh.readUInt16LE(56);
    if (phoff === 64) return;
    const ph = Buffer.alloc(phentsize * phnum);
    fs.readSync(fd, ph, 0, ph.length, phoff);
    for (let i = 0; i < phnum; i++) {
      // nothing of the notes or memory may lie where the program headers go
      if (Number(ph.readBigUInt64LE(i * phentsize + 32)) > 0 && Number(ph.readBigUInt64LE(i * phentsize + 8)) < 64 + ph.length) {
        throw new Error('core.elf: a segment starts where its program headers would move to');
      }
    }
    eh.writeBigUInt64LE(64n, 32); // e_phoff
    eh.writeBigUInt64LE(0n, 40); // e_shoff: the section headers are not needed by anyone here
    eh.writeUInt16LE(64, 52); // e_ehsize (QEMU 7.2 writes 8)
    eh.writeUInt16LE(0, 58); // e_shentsize
    eh.writeUInt16LE(0, 60); // e_shnum
    eh.writeUInt16LE(0, 62); // e_shstrndx
    fs.writeSync(fd, eh, 0, 64, 0);
    fs.writeSync(fd, ph, 0, ph.length, 64);
  } finally {
    fs.closeSync(fd);
  }
}

function findTool(name) {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin'])) {
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

function run(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    throw new Error(`${cmd} ${args.join(' ')} failed: ${String(err.stderr ?? err.message).trim()}`);
  }
}
