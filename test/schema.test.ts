// Every command's --json (and --jsonl) output on the sample validates against its shipped JSON Schema (ajv,
// JSON Schema 2020-12), and the committed schemas and generated types are what the code generates.

import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { root, run, sample, type Sample } from './walkers-helpers.js';
import { commandIndex } from '../src/generated/commands.js';
import { builtGuest } from './built-guests.js';

const schemaDir = join(root, 'src', 'schema');
const ajv = new Ajv2020({ allErrors: true, strict: true, strictTypes: false });
addFormats.default(ajv);
// schemars' integer formats: the JSON number must be an integer in the type's range
const ints: Record<string, [number, number]> = {
  uint: [0, Number.MAX_SAFE_INTEGER], uint8: [0, 255], uint16: [0, 65535], uint32: [0, 2 ** 32 - 1], uint64: [0, Number.MAX_SAFE_INTEGER],
  int8: [-128, 127], int16: [-32768, 32767], int32: [-(2 ** 31), 2 ** 31 - 1], int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER], int: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
};
for (const [name, [lo, hi]] of Object.entries(ints)) ajv.addFormat(name, { type: 'number', validate: (n: number) => Number.isInteger(n) && n >= lo && n <= hi });
for (const name of ['double', 'float']) ajv.addFormat(name, { type: 'number', validate: (n: number) => Number.isFinite(n) });
for (const f of readdirSync(schemaDir).filter((f) => f.endsWith('.json'))) ajv.addSchema(JSON.parse(readFileSync(join(schemaDir, f), 'utf8')));

const id = (file: string, def?: string) => `https://nearfield.invalid/schema/${file}${def ? `#/$defs/${def}` : ''}`;

function check(schema: string, value: unknown): void {
  const validate = ajv.getSchema(schema);
  expect(validate, `schema ${schema}`).toBeDefined();
  const ok = validate!(value);
  expect(ok ? [] : validate!.errors!.slice(0, 5).map((e) => `${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`), schema).toEqual([]);
}

let s: Sample & { disk: string };
let scratch: string;
let snapshots = 0;

beforeAll(async () => {
  s = (await sample()) as Sample & { disk: string };
  scratch = mkdtempSync(join(tmpdir(), 'nf-schema-'));
  return () => rmSync(scratch, { recursive: true, force: true });
});

/** Each command: its arguments for a --json run on the sample, the schema of the document, and of one --jsonl line
 *  (default: the document's own: a command without a list prints its record on one line). */
const hungGuest = builtGuest('hung-256m');
const cases: Record<string, { args: () => string[]; schema: string; line?: string; mayBeEmpty?: boolean }> = {
  ps: { args: () => ['ps', '-L', '--ram', s.ram], schema: id('tasks.schema.json'), line: id('tasks.schema.json', 'Task') },
  pstree: { args: () => ['pstree', '--ram', s.ram], schema: id('pstree.schema.json') },
  free: { args: () => ['free', '--ram', s.ram], schema: id('free.schema.json') },
  meminfo: { args: () => ['meminfo', '--ram', s.ram], schema: id('meminfo.schema.json'), line: id('meminfo.schema.json', 'Field') },
  buddyinfo: { args: () => ['buddyinfo', '--ram', s.ram], schema: id('buddyinfo.schema.json'), line: id('buddyinfo.schema.json', 'BuddyZone') },
  uptime: { args: () => ['uptime', '--ram', s.ram], schema: id('uptime.schema.json') },
  dmesg: { args: () => ['dmesg', '--ram', s.ram], schema: id('dmesg.schema.json'), line: id('dmesg.schema.json', 'LogRecord') },
  kernel: { args: () => ['kernel', '--ram', s.core], schema: id('kernel.schema.json') },
  cpustat: { args: () => ['cpustat', '--ram', s.ram], schema: id('cpustat.schema.json') },
  lsmod: { args: () => ['lsmod', '--ram', s.ram], schema: id('modules.schema.json'), line: id('modules.schema.json', 'LoadedModule') },
  mount: { args: () => ['mount', '--ram', s.ram], schema: id('mounts.schema.json'), line: id('mounts.schema.json', 'Mount') },
  lsof: { args: () => ['lsof', '--ram', s.ram], schema: id('files.schema.json'), line: id('files.schema.json', 'OpenFile') },
  net: { args: () => ['net', '--ram', s.ram], schema: id('net.schema.json') },
  pmap: { args: () => ['pmap', '--all', '--ram', s.ram], schema: id('maps.schema.json'), line: id('maps.schema.json', 'ProcessMaps') },
  env: { args: () => ['env', '--all', '--ram', s.ram], schema: id('environ.schema.json'), line: id('environ.schema.json', 'ProcessEnviron') },
  cgroups: { args: () => ['cgroups', '--ram', s.ram], schema: id('cgroups.schema.json'), line: id('cgroups.schema.json', 'Cgroup') },
  df: { args: () => ['df', '--ram', s.ram, '--disk', s.disk], schema: id('statfs.schema.json') },
  ls: { args: () => ['ls', '-l', '/etc', '--disk', s.disk], schema: id('ls.schema.json'), line: id('files.defs.json', 'FileEntry') },
  stat: { args: () => ['stat', '/etc/passwd', '--disk', s.disk], schema: id('stat.schema.json'), line: id('stat.schema.json') },
  find: { args: () => ['find', '/etc', '--disk', s.disk], schema: id('find.schema.json'), line: id('files.defs.json', 'FoundFile') },
  inspect: { args: () => ['inspect', '--disk', s.disk], schema: id('inspect.schema.json') },
  report: { args: () => ['report', '--ram', s.ram, '--disk', s.disk], schema: id('report-vm.schema.json'), line: id('report-vm.schema.json') },
  bt: { args: () => ['bt', '--all', '--ram', s.core], schema: id('stacks.schema.json'), line: id('stacks.schema.json', 'TaskStack') },
  // the sample has no task in D (no --jsonl lines): the hung guest, when built, has six
  hung: { args: () => ['hung', '--ram', hungGuest.present ? hungGuest.ram : s.ram], schema: id('hung.schema.json'), line: id('hung.schema.json', 'HungTask'), mayBeEmpty: !hungGuest.present },
  triage: { args: () => ['triage', '--ram', s.ram, '--disk', s.disk], schema: id('triage.schema.json'), line: id('triage.schema.json', 'Verdict') },
  snapshot: { args: () => ['snapshot', join(scratch, `snap-${++snapshots}`), '--disk', s.disk, '--paused'], schema: id('snapshot.schema.json') },
  convert: { args: () => ['convert', s.ram, join(scratch, `convert-${++snapshots}.elf`), '--to', 'elf'], schema: id('convert.schema.json') },
};

describe('every command with --json', () => {
  it('has a case here (a new command must say which schema its output follows)', () => {
    // host needs a running VM and is validated in test/live.test.ts; exporter serves HTTP, not JSON
    const withJson = commandIndex.filter((c) => c.name !== null && !['cat', 'profile', 'host', 'exporter'].includes(c.name)).map((c) => c.name);
    expect(Object.keys(cases).sort()).toEqual([...withJson].sort());
  });

  it.each(Object.keys(cases))('%s --json validates against its schema, and so does each --jsonl line', (name) => {
    const c = cases[name]!;
    const r = run([...c.args(), '--json']);
    expect(r.status === 0 || r.status === 3, r.stderr).toBe(true);
    const doc = JSON.parse(r.stdout);
    for (const d of name === 'report' ? (expect(Array.isArray(doc)).toBe(true), doc) : [doc]) {
      expect(d.schemaVersion).toBe(1);
      check(c.schema, d);
    }
    const l = run([...c.args(), '--jsonl']);
    expect(l.status === 0 || l.status === 3, l.stderr).toBe(true);
    const lines = l.stdout.trim().split('\n').filter((x) => c.mayBeEmpty !== true || x !== '');
    if (c.mayBeEmpty !== true) expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) check(c.line ?? c.schema, JSON.parse(line));
  });

  it('rejects a record with a field its schema does not have (the check is real)', () => {
    const doc = JSON.parse(run(['uptime', '--ram', s.ram, '--json']).stdout);
    expect(ajv.getSchema(id('uptime.schema.json'))!({ ...doc, extra: 1 })).toBe(false);
    expect(ajv.getSchema(id('uptime.schema.json'))!({ ...doc, boottimeNs: 5 })).toBe(false); // a U64 is a string
  });
});

describe('generated files', () => {
  it('src/schema and src/generated are what scripts/generate.mjs makes from the current code', () => {
    const r = spawnSync(process.execPath, [join(root, 'scripts', 'generate.mjs'), '--check'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
  });
});
