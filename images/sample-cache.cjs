// sample-cache.cjs — where the sample guest is unpacked (images/.cache/sample/) and whether that copy is the
// committed one. unpack-sample.mjs builds on it; the CLI require()s it directly, so a warm command on the
// sample loads no ES module loader (~10 ms of `nearfield ps`).

const fs = require('node:fs');
const path = require('node:path');

const SAMPLE_DIR = path.join(__dirname, 'sample');
const CACHE_DIR = path.join(__dirname, '.cache', 'sample');
const PACKED_FILES = ['ram.raw', 'core.elf', 'rootfs.ext4'];
const PLAIN_FILES = ['truth.json', 'manifest.json', 'serial.log'];

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

/** The unpacked sample's paths when CACHE_DIR holds the committed sample (same manifest, every file at its size), else null. */
function freshSample() {
  const committed = fs.readFileSync(path.join(SAMPLE_DIR, 'manifest.json'));
  const cached = path.join(CACHE_DIR, 'manifest.json');
  const fresh = fs.existsSync(cached) && fs.readFileSync(cached).equals(committed) && looksComplete(CACHE_DIR, JSON.parse(committed.toString('utf8')));
  return fresh ? pathsIn(CACHE_DIR) : null;
}

module.exports = { SAMPLE_DIR, CACHE_DIR, PACKED_FILES, PLAIN_FILES, pathsIn, freshSample };
