// The CLI's manners (issue 12): a closed stdout stops a command quietly; usage errors exit 2 with one line; errors
// say what is wrong (a disk image given as RAM, a truncated RAM file, ELF core or disk image); -h means human sizes.

import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { spawnSync, execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, readTruth, run, sample, type Sample, type Truth } from './walkers-helpers.js';

let s: Sample & { disk: string };
let truth: Truth;
let work: string;

beforeAll(async () => {
  s = (await sample()) as typeof s;
  truth = readTruth(s);
  work = mkdtempSync(join(tmpdir(), 'nf-hygiene-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Run the CLI with stdout into a reader that has already gone (`| true` exits at once): its exit code and stderr. */
function intoClosedPipe(args: string[]): { status: number; stderr: string } {
  const quoted = [cli, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const r = spawnSync('bash', ['-c', `"${process.execPath}" ${quoted} 2>"$ERR" | true; exit \${PIPESTATUS[0]}`], {
    env: { ...process.env, ERR: join(work, 'stderr.txt') },
  });
  return { status: r.status ?? -1, stderr: execFileSync('cat', [join(work, 'stderr.txt')]).toString() };
}

describe('a closed stdout ends a command quietly (EPIPE)', () => {
  it.each([
    ['dmesg', '--json'],
    ['ps', '--jsonl'],
    ['ps', '-L', '--jsonl'],
    ['ps'],
    ['free', '-h'],
  ])('nearfield %s %s %s | true: exit 0, nothing on stderr', (...args) => {
    const r = intoClosedPipe([...args, '--ram', s.ram]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('report --prometheus | true: exit 0, nothing on stderr', () => {
    const r = intoClosedPipe(['report', s.dir, '--prometheus']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});

describe('usage errors exit 2 with one line', () => {
  const cases: [string, () => string[], RegExp][] = [
    ['--json with --jsonl (ps)', () => ['ps', '--ram', s.ram, '--json', '--jsonl'], /^nearfield: ps: choose one of --json and --jsonl/],
    ['--json with --jsonl (ls)', () => ['ls', '--disk', s.disk, '--json', '--jsonl'], /^nearfield: ls: choose one of --json and --jsonl/],
    ['two units for free', () => ['free', '--ram', s.ram, '-m', '-g'], /^nearfield: free: choose one unit, not --mebi and --gibi/],
    ['an unknown state letter', () => ['ps', '--ram', s.ram, '--state', 'Q'], /^nearfield: ps: --state takes \/proc state letters .* not "Q"/],
    ['a repeated --disk', () => ['df', '--disk', s.disk, '--disk', s.disk], /^nearfield: df: --disk given twice/],
    ['a repeated --ram', () => ['ps', '--ram', s.ram, '--ram', s.core], /^nearfield: ps: --ram given twice/],
    ['an unknown RAM layout', () => ['ps', '--ram', s.ram, '--ram-layout', 'bogus'], /^nearfield: ps: --ram-layout: unknown RAM layout "bogus"/],
    ['a snapshot directory with --ram (report)', () => ['report', s.dir, '--ram', s.ram], /^nearfield: report: give snapshot directories or --ram\/--disk files, not both/],
    ['a snapshot directory with --disk (df)', () => ['df', s.dir, '--disk', s.disk], /^nearfield: df: give a snapshot directory or --ram\/--disk files, not both/],
    ['an unknown option', () => ['ps', '--ram', s.ram, '-x'], /^nearfield: ps: unknown option '-x' \(see nearfield ps --help\)$/m],
    ['an unknown ps column', () => ['ps', '--ram', s.ram, '-o', 'pid,colour'], /^nearfield: ps: unknown ps column "colour"/],
    ['an unknown command', () => ['frobnicate'], /^nearfield: unknown command 'frobnicate'/],
    ['--json with several ls paths', () => ['ls', '/etc', '/var', '--disk', s.disk, '--json'], /^nearfield: ls: --json lists one path/],
  ];
  it.each(cases)('%s', (_what, args, message) => {
    const r = run(args());
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
    expect(r.stdout).toBe('');
  });

  it('help stays on --help and exits 0; -h is not help', () => {
    const r = run(['ls', '--help']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/-h, --human-readable/);
  });
});

describe('errors that say what is wrong', () => {
  it('an ext4 image given as RAM: give it with --disk', () => {
    const r = run(['ps', '--ram', s.disk]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`nearfield: ps: this is an ext4 filesystem image, not guest memory; give it with --disk (${s.disk})\n`);
  });

  it('a qcow2 image given as RAM: give it with --disk', () => {
    const q = join(work, 'disk.qcow2');
    execFileSync('qemu-img', ['convert', '-O', 'qcow2', s.disk, q]);
    const r = run(['free', '--ram', q]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^nearfield: free: this is a qcow2 disk image, not guest memory; give it with --disk/);
  });

  it('a RAM file cut short of the guest memory map: truncated?', () => {
    const short = join(work, 'short.raw');
    copyFileSync(s.ram, short);
    truncateSync(short, 100 << 20);
    const r = run(['ps', '--ram', short, '--no-cache']);
    expect(r.status).toBe(1);
    // QEMU's e820 for the guest's RAM, as the guest printed /proc/iomem ("System RAM" up to the top)
    const top = Math.ceil(ramTop(truth) / (1 << 20));
    expect(r.stderr).toMatch(new RegExp(`^nearfield: ps: the RAM file holds guest-physical memory up to 100 MiB, but the guest's e820 map has RAM up to ${top} MiB \\(${top - 100} MiB missing\\): truncated\\?`));
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('an ELF core cut short: says how much is missing, reads what is there, exit 3', () => {
    const short = join(work, 'short.elf');
    copyFileSync(s.core, short);
    truncateSync(short, 150 << 20);
    const r = run(['ps', '--ram', short, '--no-cache']);
    expect(r.status).toBe(3);
    const full = Number(execFileSync('stat', ['-c', '%s', s.core]).toString().trim());
    const m = /^nearfield: warning: the ELF core is truncated: it is (\d+) bytes, its headers describe (\d+) \((\d+) bytes of guest memory missing\)$/m.exec(r.stderr);
    expect(m, r.stderr).not.toBeNull();
    const [have, promised, missing] = [Number(m![1]), Number(m![2]), Number(m![3])];
    expect(have).toBe(150 << 20);
    expect(promised - have).toBe(missing);
    // the headers describe the whole file but for the padding after the last segment
    expect(full - promised).toBeGreaterThanOrEqual(0);
    expect(full - promised).toBeLessThan(4096);
    // a command whose reads fall into the missing part fails, and says why
    const up = run(['uptime', '--ram', short]);
    expect(up.status).toBe(1);
    expect(up.stderr).toMatch(/^nearfield: uptime: .*is not backed by guest memory.*; the ELF core is truncated: /);
  });

  it('a disk image shorter than its superblock says: df warns and exits 3', () => {
    const short = join(work, 'short.ext4');
    copyFileSync(s.disk, short);
    truncateSync(short, 20 << 20);
    const r = run(['df', '--disk', short, '-q']);
    expect(r.status).toBe(3);
    expect(r.stderr).toMatch(/^nearfield: warning: raw image .*short\.ext4 is 20971520 bytes, but its superblock says the filesystem is 67108864 bytes \(16384 blocks of 4096\): truncated\?$/m);
    expect(r.stderr).not.toMatch(/note:/); // -q silences notes
  });

  it('a file where a snapshot directory belongs: the hint names the command and the flag, never <command>', () => {
    const disk = run(['ls', s.disk]);
    // (for ls a single argument is a guest path; df takes the target)
    expect(disk.status).toBe(1);
    const df = run(['df', s.disk]);
    expect(df.status).toBe(2);
    expect(df.stderr).toBe(`nearfield: df: not a snapshot directory; give a disk image with --disk (${s.disk})\nhint: nearfield df --disk ${s.disk}\n`);
    const ram = run(['ps', s.ram]);
    expect(ram.stderr).toContain(`hint: nearfield ps --ram ${s.ram}`);
    expect(ram.stderr + df.stderr).not.toContain('<command>');
  });
});

describe('ls takes several guest paths and -h', () => {
  it('ls /etc /var lists both, each under its heading, like ls', () => {
    const r = run(['ls', '/etc', '/var', '--disk', s.disk]);
    expect(r.status, r.stderr).toBe(0);
    const names = (p: string) => JSON.parse(run(['ls', p, '--disk', s.disk, '--json']).stdout).entries.map((e: { name: string }) => e.name);
    expect(r.stdout).toBe(`/etc:\n${names('/etc').join('\n')}\n\n/var:\n${names('/var').join('\n')}\n`);
  });

  it('the last argument is the target only when it is a snapshot directory', () => {
    const r = run(['ls', '/etc', s.dir]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.split('\n')).toContain('passwd');
    expect(r.stdout).not.toContain('/etc:');
  });

  it('ls -lh prints sizes as coreutils does (powers of 1024, rounded up), not the help', () => {
    const long = run(['ls', '-l', '/boot', '--disk', s.disk]);
    const human = run(['ls', '-lh', '/boot', '--disk', s.disk]);
    expect(human.status, human.stderr).toBe(0);
    const size = (line: string) => line.split(/\s+/)[4]!;
    const lines = long.stdout.trim().split('\n');
    const hLines = human.stdout.trim().split('\n');
    expect(hLines).toHaveLength(lines.length);
    lines.forEach((l, i) => expect(size(hLines[i]!)).toBe(coreutilsHuman(Number(size(l)))));
    expect(hLines.some((l) => /[KM] /.test(l))).toBe(true);
  });
});

/** coreutils' -h by its definition (human_ceiling, base 1024), written out independently of src/report/units.ts. */
function coreutilsHuman(n: number): string {
  if (n < 1024) return String(n);
  const units = 'KMGTPE';
  let e = 0;
  let v = n / 1024;
  while (v >= 1024) {
    v /= 1024;
    e++;
  }
  if (Math.ceil(v * 10) / 10 < 10) return `${(Math.ceil(v * 10) / 10).toFixed(1)}${units[e]}`;
  const whole = Math.ceil(v);
  return whole >= 1024 ? `1.0${units[e + 1]}` : `${whole}${units[e]}`;
}

/** The end of the guest's highest "System RAM" range in its /proc/iomem (truth.raw.files). */
function ramTop(t: Truth): number {
  const iomem = t.raw.files['/proc/iomem'] as string;
  let top = 0;
  for (const line of iomem.split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) : System RAM$/.exec(line);
    if (m) top = Math.max(top, parseInt(m[2]!, 16) + 1);
  }
  expect(top).toBeGreaterThan(0);
  return top;
}
