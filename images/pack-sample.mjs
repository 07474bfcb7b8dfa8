// pack-sample.mjs — packs a built guest (build-guest.mjs --out DIR) into the committed sample: images/sample/{sample.tar.zst, truth.json, manifest.json, serial.log}.
//
// Usage: node images/pack-sample.mjs --from images/out/default-256m
// The archive is tar (ram.raw, core.elf, rootfs.ext4) through `zstd -19 --long=30`: the 1 GiB window
// lets zstd find the ELF core's RAM again in ram.raw, so the core costs almost nothing.

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const IMAGES_DIR = path.dirname(fileURLToPath(import.meta.url));
const SAMPLE_DIR = path.join(IMAGES_DIR, 'sample');

const { values } = parseArgs({ options: { from: { type: 'string' }, level: { type: 'string', default: '19' } } });
if (!values.from) {
  console.error('usage: node images/pack-sample.mjs --from BUILT_GUEST_DIR');
  process.exit(2);
}
const from = path.resolve(values.from);
fs.mkdirSync(SAMPLE_DIR, { recursive: true });

const archive = path.join(SAMPLE_DIR, 'sample.tar.zst');
const tmp = `${archive}.tmp`;
// A reproducible tar: fixed order, owner and mtime; --sparse keeps ram.raw's holes out of the stream.
const tarArgs = ['--sparse', '--format=gnu', '--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0',
  '-C', from, '-cf', '-', 'core.elf', 'ram.raw', 'rootfs.ext4'];
const tar = spawn('tar', tarArgs, { stdio: ['ignore', 'pipe', 'inherit'] });
const zstd = spawn('zstd', ['-q', '-T0', `-${values.level}`, '--long=30', '-f', '-o', tmp], { stdio: ['pipe', 'inherit', 'inherit'] });
tar.stdout.pipe(zstd.stdin);
const exitCode = (child) => new Promise((resolve) => child.on('close', resolve));
const [tarCode, zstdCode] = await Promise.all([exitCode(tar), exitCode(zstd)]);
if (tarCode !== 0 || zstdCode !== 0) {
  fs.rmSync(tmp, { force: true });
  console.error(`pack-sample: tar exited ${tarCode}, zstd exited ${zstdCode}`);
  process.exit(1);
}
fs.renameSync(tmp, archive);
for (const name of ['truth.json', 'manifest.json', 'serial.log']) fs.copyFileSync(path.join(from, name), path.join(SAMPLE_DIR, name));
console.log(`${archive}: ${(fs.statSync(archive).size / 2 ** 20).toFixed(1)} MiB`);
