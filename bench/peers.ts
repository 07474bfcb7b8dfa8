// Peers benchmark (issue 13), only with `npm run bench -- --peers`: drgn (PyPI) with the Debian -dbg vmlinux and
// Volatility 3 (PyPI) `linux.pslist` with the ISF `nearfield profile export --isf` writes, each listing the tasks
// of the same 4-level guest's ELF core beside `nearfield ps`, interleaved in one run: medians, ratios, peak RSS.
//
// Everything it fetches goes under images/.cache/peers/ (NEARFIELD_PEERS_DIR to choose): a venv with drgn and
// volatility3 from PyPI, and the vmlinux from the guest kernel's linux-image-…-dbg package (apt-get download from
// the Debian mirror; ~860 MB, the .deb is removed once its vmlinux is out). Never part of npm test.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchRuns, cliPath, interleaved, root, row, type Timed } from './util.js';

const GUEST_HINT = 'node images/build-guest.mjs --out images/out/no5lvl-256m --no5lvl';

/** The drgn side: every process as ps lists them (thread-group leaders: pid, parent, comm). */
const DRGN_PS = `from drgn.helpers.linux.pid import for_each_task
for t in for_each_task(prog):
    if t.pid.value_() == t.tgid.value_():
        print(t.pid.value_(), t.real_parent.pid.value_(), t.comm.string_().decode(errors="replace"))
`;

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 << 20, ...opts });
  if (r.error || (r.status !== 0 && r.status !== 3)) throw new Error(`${cmd} ${args.join(' ')}: ${r.error?.message ?? r.stderr.trim().split('\n').slice(-3).join(' ')}`);
  return r.stdout;
}

/** A venv with drgn and volatility3 from PyPI; their versions. */
function venv(dir: string): { drgn: string; vol: string; drgnVersion: string; volVersion: string } {
  const bin = join(dir, 'venv', 'bin');
  if (!existsSync(join(bin, 'drgn')) || !existsSync(join(bin, 'vol'))) {
    row('peers', `installing drgn and volatility3 from PyPI into ${join(dir, 'venv')}`);
    run('python3', ['-m', 'venv', join(dir, 'venv')]);
    run(join(bin, 'pip'), ['install', '--quiet', 'drgn', 'volatility3']);
  }
  const frozen = run(join(bin, 'pip'), ['list', '--format=freeze']);
  const version = (name: string) => new RegExp(`^${name}==(\\S+)$`, 'im').exec(frozen)?.[1] ?? '?';
  return { drgn: join(bin, 'drgn'), vol: join(bin, 'vol'), drgnVersion: version('drgn'), volVersion: version('volatility3') };
}

/** The guest kernel's vmlinux with debug info, from Debian's linux-image-RELEASE-dbg of the same version. */
function debugVmlinux(dir: string, pkg: string, version: string, release: string): string {
  const vmlinux = join(dir, 'usr', 'lib', 'debug', 'boot', `vmlinux-${release}`);
  if (existsSync(vmlinux)) return vmlinux;
  row('peers', `downloading ${pkg}-dbg=${version} (apt-get download, ~860 MB) for drgn`);
  run('apt-get', ['download', `${pkg}-dbg=${version}`], { cwd: dir });
  const deb = readdirSync(dir).find((f) => f.startsWith(`${pkg}-dbg_`) && f.endsWith('.deb'));
  if (!deb) throw new Error(`apt-get download left no ${pkg}-dbg .deb in ${dir}`);
  execFileSync('sh', ['-c', `dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" --wildcards './usr/lib/debug/boot/vmlinux-*'`, 'sh', join(dir, deb), dir]);
  rmSync(join(dir, deb));
  if (!existsSync(vmlinux)) throw new Error(`${deb} holds no usr/lib/debug/boot/vmlinux-${release}`);
  return vmlinux;
}

export async function benchPeers(): Promise<void> {
  if (!process.argv.includes('--peers')) {
    row('peers', 'skipped: run `npm run bench -- --peers` (installs drgn and Volatility 3 from PyPI, downloads the -dbg vmlinux)');
    return;
  }
  const guest = process.env.NEARFIELD_PEERS_GUEST ?? join(root, 'images', 'out', 'no5lvl-256m');
  const core = join(guest, 'core.elf');
  if (!existsSync(core)) {
    row('peers', `skipped: no 4-level guest with an ELF core at ${guest}; build it with ${GUEST_HINT}`);
    return;
  }
  const manifest = JSON.parse(readFileSync(join(guest, 'manifest.json'), 'utf8')) as { kernel: { package: string; version: string; release: string } };
  const { package: pkg, version, release } = manifest.kernel;
  const dir = process.env.NEARFIELD_PEERS_DIR ?? join(root, 'images', '.cache', 'peers');
  mkdirSync(dir, { recursive: true });
  const py = venv(dir);
  const vmlinux = debugVmlinux(dir, pkg, version, release);

  const node = process.execPath;
  const cacheDir = mkdtempSync(join(tmpdir(), 'nf-bench-peers-'));
  const env = { ...process.env, NEARFIELD_CACHE_DIR: cacheDir };
  try {
    // Volatility's symbols: the ISF nearfield exports from the guest's own RAM, alone in a symbol directory.
    const isfDir = join(cacheDir, 'symbols');
    mkdirSync(join(isfDir, 'linux'), { recursive: true });
    run(node, [cliPath, 'profile', 'export', '--isf', join(isfDir, 'linux', `${release}.json`), '--ram', core], { env });
    const script = join(cacheDir, 'ps.py');
    writeFileSync(script, DRGN_PS);
    const volCache = join(cacheDir, 'volatility-cache');
    mkdirSync(volCache);

    let coldDir = '';
    const coldEnv: NodeJS.ProcessEnv = { ...process.env };
    const commands: Timed[] = [
      { label: 'nearfield ps (profile cached)', cmd: node, args: [cliPath, 'ps', '--ram', core], env },
      {
        label: 'nearfield ps (no cache)', cmd: node, args: [cliPath, 'ps', '--ram', core], env: coldEnv,
        before: () => { coldDir = mkdtempSync(join(tmpdir(), 'nf-bench-peers-cold-')); coldEnv.NEARFIELD_CACHE_DIR = coldDir; },
        after: () => rmSync(coldDir, { recursive: true, force: true }),
      },
      { label: `drgn ${py.drgnVersion} (-dbg vmlinux)`, cmd: py.drgn, args: ['-q', '-c', core, '-s', vmlinux, '--no-default-symbols', script] },
      { label: `Volatility 3 ${py.volVersion} linux.pslist (nearfield's ISF)`, cmd: py.vol, args: ['-q', '--cache-path', volCache, '-f', core, '-s', isfDir, 'linux.pslist'] },
    ];
    // Each lists the same tasks (once, untimed; it also fills Volatility's cache).
    const counted = [commands[0]!, commands[2]!, commands[3]!].map((c) => {
      const out = run(c.cmd, c.args, { env: c.env ?? env });
      return `${c.label.split(' ')[0]} ${out.split('\n').filter((l) => /^\s*(0x[0-9a-f]+\s+)?\d+\s/.test(l)).length}`;
    });
    row('guest', `${guest} (ELF core, ${release}); tasks listed: ${counted.join(', ')}`);
    const runs = benchRuns(7);
    const t = interleaved(commands, runs);
    const ours = t.get(commands[0]!.label)!;
    row(`peers, same guest (${new Date().toISOString().slice(0, 10)})`, `median of ${runs} interleaved runs, ratio to nearfield ps (cached), peak RSS (GNU time %M)`);
    for (const c of commands) {
      const { medianMs, peakRssMb } = t.get(c.label)!;
      row(`  ${c.label}`, `${(medianMs / 1000).toFixed(2).padStart(6)} s  ${(medianMs / ours.medianMs).toFixed(1).padStart(5)}×  ${String(peakRssMb).padStart(4)} MB`);
    }
    row('  needs', `drgn: ${vmlinux} (the -dbg package); Volatility: the ISF nearfield exported; nearfield: nothing`);
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
}
