// run.mjs — `npm run fuzz -- [--seconds N] [--runs N] [--target NAME[,NAME…]]`: builds the cargo-fuzz targets
// (installing cargo-fuzz with `cargo +nightly install cargo-fuzz` when it is missing), seeds their corpora from
// the sample guest and small qemu-img/sfdisk/sgdisk/mkfs.ext4 images, then runs each target in turn for N seconds
// (or N runs, whichever ends first) and prints executions and crashes per target. Exits 1 when a target crashed,
// hung (-timeout) or ran out of memory (-rss_limit_mb, -malloc_limit_mb); its input is kept under artifacts/.
//
// Targets run one at a time, one process each (the machine's cores are shared).

import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

import { samplePaths } from '../../images/unpack-sample.mjs';

const FUZZ_DIR = path.dirname(fileURLToPath(import.meta.url));
const BIN_DIR = path.join(FUZZ_DIR, 'target', 'x86_64-unknown-linux-gnu', 'release');
/** Every target (native/src/fuzzing/mod.rs TARGETS), in the order they run. */
const TARGETS = ['elf_core', 'lime', 'raw_layout', 'ram_source', 'kdump', 'vmcoreinfo', 'kallsyms', 'btf', 'isf', 'printk',
  'system_map', 'vmlinux', 'qcow2', 'partition', 'ext4', 'walkers'];
/** An input slower than this, a process above this RSS, or one allocation above this size is a finding. */
const LIMITS = { timeout: 10, rssMb: 2048, mallocMb: 512 };

function usage(msg) {
  if (msg) console.error(`fuzz: ${msg}`);
  console.error('usage: npm run fuzz -- [--seconds N] [--runs N] [--target NAME[,NAME…]]\n' +
    `targets: ${TARGETS.join(', ')}`);
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { seconds: 60, runs: 0, targets: TARGETS };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const value = () => inline ?? argv[++i] ?? usage(`${flag} needs a value`);
    if (flag === '--seconds') opts.seconds = Number(value());
    else if (flag === '--runs') opts.runs = Number(value());
    else if (flag === '--target') opts.targets = value().split(',').filter(Boolean);
    else if (flag === '-h' || flag === '--help') usage();
    else usage(`unknown argument ${argv[i]}`);
  }
  if (!(opts.seconds > 0) || !Number.isInteger(opts.seconds)) usage('--seconds takes a whole number above 0');
  if (!(opts.runs >= 0) || !Number.isInteger(opts.runs)) usage('--runs takes a whole number');
  const unknown = opts.targets.filter((t) => !TARGETS.includes(t));
  if (unknown.length) usage(`unknown target ${unknown.join(', ')}`);
  return opts;
}

/** Run a command inheriting stdio; throw when it fails. */
function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...options });
  if (r.error) throw new Error(`cannot run ${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status ?? r.signal}`);
  return r;
}

function works(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return !r.error && r.status === 0;
}

function ensureTools() {
  if (!works('cargo', ['+nightly', '--version'])) {
    throw new Error('cargo-fuzz needs a nightly Rust toolchain (rustup toolchain install nightly)');
  }
  if (!works('cargo', ['+nightly', 'fuzz', '--version'])) {
    console.error('fuzz: installing cargo-fuzz (cargo +nightly install cargo-fuzz --locked)');
    run('cargo', ['+nightly', 'install', 'cargo-fuzz', '--locked']);
  }
}

/** libFuzzer's final statistics and what it found, from its stderr. */
function summarize(log) {
  const stat = (name) => Number(log.match(new RegExp(`stat::${name}:\\s*(\\d+)`))?.[1] ?? NaN);
  const artifact = log.match(/Test unit written to (\S+)/)?.[1] ?? null;
  const kind = log.match(/ERROR: libFuzzer: ([\w-]+)/)?.[1] ?? (/panicked at/.test(log) ? 'panic' : null);
  return { execs: stat('number_of_executed_units'), execPerSec: stat('average_exec_per_sec'), peakRssMb: stat('peak_rss_mb'), artifact, kind };
}

function fuzzOne(target, opts, sampleDir) {
  const corpus = path.join(FUZZ_DIR, 'corpus', target);
  const regressions = path.join(FUZZ_DIR, 'regressions', target);
  const artifacts = path.join(FUZZ_DIR, 'artifacts', target);
  for (const d of [corpus, regressions, artifacts]) fs.mkdirSync(d, { recursive: true });
  const dict = path.join(FUZZ_DIR, 'dict', `${target}.dict`);
  const args = [
    corpus, regressions,
    `-max_total_time=${opts.seconds}`,
    `-timeout=${LIMITS.timeout}`,
    `-rss_limit_mb=${LIMITS.rssMb}`,
    `-malloc_limit_mb=${LIMITS.mallocMb}`,
    `-artifact_prefix=${artifacts}/`,
    '-print_final_stats=1',
    ...(opts.runs ? [`-runs=${opts.runs}`] : []),
    ...(fs.existsSync(dict) ? [`-dict=${dict}`] : []),
  ];
  const logFile = path.join(artifacts, 'last-run.log');
  return new Promise((resolve) => {
    const child = spawn(path.join(BIN_DIR, target), args, {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, NEARFIELD_SAMPLE_DIR: sampleDir },
    });
    const out = fs.createWriteStream(logFile);
    let log = '';
    child.stderr.on('data', (d) => {
      out.write(d);
      log += d;
      if (log.length > 4 << 20) log = log.slice(-(1 << 20)) + log.slice(0, 64 << 10);
    });
    child.on('close', (code, signal) => {
      out.end();
      const s = summarize(log);
      resolve({ target, code, signal, ...s, log: logFile });
    });
  });
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  ensureTools();
  const sample = await samplePaths();
  console.error('fuzz: building the targets (cargo +nightly fuzz build)');
  run('cargo', ['+nightly', 'fuzz', 'build'], { cwd: FUZZ_DIR });
  console.error('fuzz: seeding the corpora');
  run(path.join(BIN_DIR, 'seed'), [path.join(FUZZ_DIR, 'corpus'), sample.dir], { stdio: ['ignore', 'ignore', 'inherit'] });

  const results = [];
  for (const target of opts.targets) {
    console.error(`fuzz: ${target} for ${opts.seconds} s${opts.runs ? ` or ${opts.runs} runs` : ''}`);
    const r = await fuzzOne(target, opts, sample.dir);
    results.push(r);
    const found = r.code !== 0;
    console.error(`fuzz: ${target}: ${r.execs} executions (${r.execPerSec}/s), ${found ? `FOUND ${r.kind ?? `exit ${r.code ?? r.signal}`}: ${r.artifact ?? r.log}` : 'no crash'}`);
  }
  const rows = [['target', 'executions', 'exec/s', 'peak RSS MB', 'result']].concat(results.map((r) => [
    r.target, String(r.execs), String(r.execPerSec), String(r.peakRssMb),
    r.code === 0 ? 'ok' : `${r.kind ?? 'failed'} ${r.artifact ?? `(see ${r.log})`}`,
  ]));
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  for (const row of rows) console.log(row.map((c, i) => (i === 4 ? c : c.padEnd(widths[i]))).join('  ').trimEnd());
  const bad = results.filter((r) => r.code !== 0);
  if (bad.length) {
    console.error(`fuzz: ${bad.length} target(s) found a problem; reproduce with native/fuzz/target/x86_64-unknown-linux-gnu/release/TARGET ARTIFACT`);
    process.exit(1);
  }
}

main().catch((err) => {
  console.error(`fuzz: ${err.message}`);
  process.exit(1);
});
