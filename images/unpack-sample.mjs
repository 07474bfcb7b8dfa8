// unpack-sample.mjs — unpacks the committed sample guest (images/sample/sample.tar.zst) once into images/.cache/sample/, verified against its manifest.
//
// CLI:    node images/unpack-sample.mjs        → prints the directory
// Import: const { dir, ram, core, disk, truth, manifest } = await samplePaths();
//
// The unpack goes to a temporary sibling directory that is renamed into place only after every file's
// sha256 matched manifest.json, so an interrupted unpack never looks complete.

// node:child_process and node:crypto are imported only when unpacking: every command on the sample imports this
// module, and loading them costs ~10 ms of a warm `nearfield ps`.
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);

const { SAMPLE_DIR, CACHE_DIR, PACKED_FILES, PLAIN_FILES, pathsIn, freshSample } = require('./sample-cache.cjs');
export { SAMPLE_DIR, CACHE_DIR };
const ARCHIVE = path.join(SAMPLE_DIR, 'sample.tar.zst');

async function sha256File(file) {
  const { createHash } = await import('node:crypto');
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    fs.createReadStream(file, { highWaterMark: 8 << 20 })
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}

/** zstd -d (with the window the archive was made with) piped into tar -x, inside `dest`. */
async function extract(archive, dest) {
  const { spawn } = await import('node:child_process');
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

/** Unpacks the sample on first use and returns the paths of its files. */
export async function samplePaths() {
  const fresh = freshSample();
  if (fresh) return fresh;
  const manifest = JSON.parse(fs.readFileSync(path.join(SAMPLE_DIR, 'manifest.json'), 'utf8'));

  // A cache from an older sample is thrown away before unpacking anew, and so are temp dirs that
  // interrupted unpacks left behind (an hour old: a running unpack takes seconds).
  fs.rmSync(CACHE_DIR, { recursive: true, force: true });
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
