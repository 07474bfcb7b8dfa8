// unpack-sample.mjs — unpacks the committed sample guest (images/sample/sample.tar.zst) once into images/.cache/sample/, verified against its manifest.
//
// CLI:    node images/unpack-sample.mjs        → prints the directory
// Import: const { dir, ram, core, disk, truth, manifest } = await samplePaths();
//
// The unpack goes to a temporary sibling directory that is renamed into place only after every file's
// sha256 matched manifest.json, so an interrupted unpack never looks complete.

import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const IMAGES_DIR = path.dirname(fileURLToPath(import.meta.url));
export const SAMPLE_DIR = path.join(IMAGES_DIR, 'sample');
export const CACHE_DIR = path.join(IMAGES_DIR, '.cache', 'sample');
const ARCHIVE = path.join(SAMPLE_DIR, 'sample.tar.zst');
const PACKED_FILES = ['ram.raw', 'core.elf', 'rootfs.ext4'];
const PLAIN_FILES = ['truth.json', 'manifest.json', 'serial.log'];

function sha256File(file) {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    fs.createReadStream(file, { highWaterMark: 8 << 20 })
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}

/** zstd -d (with the window the archive was made with) piped into tar -x, inside `dest`. */
function extract(archive, dest) {
  return new Promise((resolve, reject) => {
    const zstd = spawn('zstd', ['-d', '-q', '--long=30', '-c', archive], { stdio: ['ignore', 'pipe', 'pipe'] });
    const tar = spawn('tar', ['-x', '--sparse', '-f', '-', '-C', dest], { stdio: ['pipe', 'ignore', 'pipe'] });
    let errors = '';
    zstd.stderr.on('data', (d) => (errors += d));
    tar.stderr.on('data', (d) => (errors += d));
    zstd.on('error', (err) => reject(new Error(`cannot run zstd (apt-get install zstd): ${err.message}`)));
    tar.on('error', (err) => reject(new Error(`cannot run tar: ${err.message}`)));
    zstd.stdout.pipe(tar.stdin);
    let pending = 2;
    const done = (what) => (code) => {
      if (code !== 0) reject(new Error(`${what} exited with ${code} while unpacking ${archive}: ${errors.trim()}`));
      else if (--pending === 0) resolve();
    };
    zstd.on('close', done('zstd'));
    tar.on('close', done('tar'));
  });
}

function pathsIn(dir) {
  return {
    dir,
    ram: path.join(dir, 'ram.raw'),
    core: path.join(dir, 'core.elf'),
    disk: path.join(dir, 'rootfs.ext4'),
    truth: path.join(dir, 'truth.json'),
    manifest: path.join(dir, 'manifest.json'),
    serial: path.join(dir, 'serial.log'),
  };
}

/** True when `dir` holds every sample file at the size the manifest records (the cheap check for reuse). */
function looksComplete(dir, manifest) {
  return [...PACKED_FILES, ...PLAIN_FILES].every((name) => {
    const file = path.join(dir, name);
    if (!fs.existsSync(file)) return false;
    const expected = manifest.files[name];
    return !expected || name === 'manifest.json' || fs.statSync(file).size === expected.bytes;
  });
}

/** Unpacks the sample on first use and returns the paths of its files. */
export async function samplePaths() {
  const manifest = JSON.parse(fs.readFileSync(path.join(SAMPLE_DIR, 'manifest.json'), 'utf8'));
  const committedManifest = fs.readFileSync(path.join(SAMPLE_DIR, 'manifest.json'));
  const cachedManifest = path.join(CACHE_DIR, 'manifest.json');
  const cacheIsFresh = () =>
    fs.existsSync(cachedManifest) &&
    fs.readFileSync(cachedManifest).equals(committedManifest) &&
    looksComplete(CACHE_DIR, manifest);
  if (cacheIsFresh()) return pathsIn(CACHE_DIR);

  // A cache from an older sample is thrown away before unpacking anew, and so are temp dirs that
  // interrupted unpacks left behind (an hour old: a running unpack takes seconds).
  if (!cacheIsFresh()) fs.rmSync(CACHE_DIR, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(CACHE_DIR), { recursive: true });
  for (const entry of fs.readdirSync(path.dirname(CACHE_DIR))) {
    const leftover = path.join(path.dirname(CACHE_DIR), entry);
    if (entry.startsWith(`${path.basename(CACHE_DIR)}.tmp-`) && Date.now() - fs.statSync(leftover).mtimeMs > 3600_000) {
      fs.rmSync(leftover, { recursive: true, force: true });
    }
  }
  const tmp = fs.mkdtempSync(`${CACHE_DIR}.tmp-`);
  try {
    await extract(ARCHIVE, tmp);
    for (const name of PLAIN_FILES) fs.copyFileSync(path.join(SAMPLE_DIR, name), path.join(tmp, name));
    for (const name of [...PACKED_FILES, 'truth.json', 'serial.log']) {
      const expected = manifest.files[name]?.sha256;
      if (!expected) throw new Error(`sample manifest has no sha256 for ${name}`);
      const actual = await sha256File(path.join(tmp, name));
      if (actual !== expected) throw new Error(`sample file ${name}: sha256 ${actual}, manifest says ${expected}`);
    }
    fs.chmodSync(tmp, 0o755); // mkdtemp made it owner-only
    try {
      fs.renameSync(tmp, CACHE_DIR);
    } catch (err) {
      // Another process (a parallel test worker) finished first: use its copy.
      if (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST') throw err;
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  } catch (err) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  return pathsIn(CACHE_DIR);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  samplePaths().then(
    (paths) => console.log(paths.dir),
    (err) => {
      process.stderr.write(`unpack-sample: ${err.message}\n`);
      process.exit(1);
    },
  );
}
