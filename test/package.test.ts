// The importable API as a user gets it: `npm pack`, install the tarball into a new project, type-check and run
// `import { openGuest, openDisk } from 'nearfield'` on the sample, and compare with the guest's truth.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTruth, root, sample, type Sample, type Truth } from './walkers-helpers.js';

let dir: string;
let s: Sample & { disk: string };
let truth: Truth;

const consumer = `
import { openGuest, openDisk, SCHEMA_VERSION, type TaskList } from 'nearfield';
declare const process: { argv: string[] };

const guest = await openGuest({ ram: process.argv[2]!, cache: false });
const tasks: TaskList = guest.tasks({ cmdline: false });
const mem = guest.meminfo().fields.find((f) => f.name === 'MemTotal')?.value;
const release = guest.kernel().release;
guest.close();
const disk = openDisk(process.argv[3]!);
const avail = disk.statfs().statfs.fBavail;
disk.close();
console.log(JSON.stringify({ version: SCHEMA_VERSION, processes: tasks.tasks.length, mem, release, avail }));
`;

beforeAll(async () => {
  s = (await sample()) as Sample & { disk: string };
  truth = readTruth(s);
  dir = mkdtempSync(join(tmpdir(), 'nf-pack-'));
  // --ignore-scripts: pack what `npm run build` made, without building again
  execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], { cwd: root, stdio: 'pipe' });
  const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'))!;
  const project = join(dir, 'project');
  execFileSync('mkdir', [project]);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  execFileSync('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', join(dir, tarball)], { cwd: project, stdio: 'pipe' });
  writeFileSync(join(project, 'consumer.ts'), consumer);
}, 300_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the packed package', () => {
  it('type-checks a consumer against its shipped declarations', () => {
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const project = join(dir, 'project');
    const out = execFileSync(process.execPath, [tsc, '--strict', '--noEmit', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', 'consumer.ts'], { cwd: project, encoding: 'utf8' });
    expect(out).toBe('');
  });

  it('imports and reads the sample guest like the CLI does', () => {
    const project = join(dir, 'project');
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    execFileSync(process.execPath, [tsc, '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', 'consumer.ts'], { cwd: project });
    const got = JSON.parse(execFileSync(process.execPath, ['consumer.js', s.ram, s.disk], { cwd: project, encoding: 'utf8' }));
    expect(got).toEqual({ version: 1, processes: truth.processes.length, mem: truth.meminfo.MemTotal, release: truth.uname.release, avail: truth.statfs.f_bavail });
  });
});
