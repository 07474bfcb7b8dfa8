// `nearfield report` end to end on the sample guest: values against the in-guest truth, every output format, several VMs at once.

import { describe, expect, it, beforeAll } from 'vitest';
import { mkdtempSync, mkdirSync, symlinkSync, readFileSync, readdirSync, openSync, closeSync, ftruncateSync, copyFileSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { XMLParser } from 'fast-xml-parser';
import { atEndTolerance, readTruth, run, sample, type Sample, type Truth } from './walkers-helpers.js';
import type { VmReport } from '../src/generated/records.js';

let s: Sample & { disk?: string };
let truth: Truth;
let report: VmReport;

beforeAll(async () => {
  s = await sample();
  truth = readTruth(s);
  const r = run(['report', '--json', '--no-cache']);
  expect(r.status, r.stderr).toBe(0);
  const all = JSON.parse(r.stdout) as VmReport[];
  expect(all).toHaveLength(1);
  report = all[0]!;
});

// Processes the guest had at print time; the printer itself is there too (sleeping by the pause).
const truthPids = () => new Set<number>(truth.processes.map((p: { pid: number }) => p.pid));

describe('report on the sample guest equals the in-guest truth', () => {
  it('kernel and host identity', () => {
    expect(report.consistency).toBe('paused');
    expect(report.sections.kernel?.release).toBe(truth.uname.release);
    expect(report.sections.uptime?.nodename).toBe(truth.hostname);
    expect(report.sections.uptime?.version).toBe(truth.uname.version);
    expect(report.sections.uptime?.machine).toBe(truth.uname.machine);
  });

  it('uptime and load are what the guest re-read just before END, uptime advanced by no more than the pause delay', () => {
    const reread = truth.at_end.clocks.boottime_ns / 1e9;
    const u = report.sections.uptime!;
    expect(u.uptimeSeconds).toBeGreaterThanOrEqual(truth.at_end.uptime.uptime_s);
    expect(u.uptimeSeconds).toBeGreaterThanOrEqual(reread);
    // + 0.25 s for the trailer and END line crossing the UART and the host's 20 ms polling (0.07 s measured)
    expect(u.uptimeSeconds).toBeLessThanOrEqual(reread + truth.after_print.host_pause_delay_ms / 1000 + 0.25);
    const l = truth.at_end.loadavg;
    expect(u.loadavg.map(Number)).toEqual([l.load1, l.load5, l.load15]);
    expect(u.nrThreads).toBe(l.total);
  });

  it('process count and states match the truth (tasks running at the print may have settled; the printer is S)', () => {
    const p = report.sections.processes!;
    expect(p.processes).toBe(truthPids().size);
    // Every task that was not running while the guest printed keeps its state; the few that were running
    // then (the printer, the spinner, an RCU kthread) may be anything by the pause.
    const fixed: Record<string, number> = {};
    let flexible = 0;
    for (const p of truth.processes as { pid: number; state: string }[]) {
      if (p.pid === truth.printer_pid) fixed.S = (fixed.S ?? 0) + 1;
      else if (p.state === 'R') flexible++;
      else fixed[p.state] = (fixed[p.state] ?? 0) + 1;
    }
    let extra = 0;
    for (const [state, n] of Object.entries(p.byState)) {
      const d = n - (fixed[state] ?? 0);
      expect(d, `state ${state}`).toBeGreaterThanOrEqual(0);
      extra += d;
    }
    for (const state of Object.keys(fixed)) expect(p.byState[state] ?? 0, `state ${state}`).toBeGreaterThanOrEqual(fixed[state]!);
    expect(extra).toBe(flexible);
    const big = p.topRss[0]!;
    const truthBig = (truth.processes as { pid: number; rss_pages: number; comm: string }[]).find((p) => p.pid === big.pid)!;
    expect(truthBig.comm).toBe('nf-big');
    expect(Math.abs(big.rssBytes! / 4096 - truthBig.rss_pages)).toBeLessThanOrEqual(1);
  });

  it('meminfo and buddy lists are what the guest re-read just before END', () => {
    const fields = new Map(report.sections.meminfo!.fields.map((f) => [f.name, f.value]));
    expect(fields.get('MemTotal')).toBe(truth.meminfo.MemTotal);
    const tolerance = atEndTolerance; // what may still move after the re-read (walkers-helpers.ts)
    for (const [field, want] of Object.entries(truth.at_end.meminfo as Record<string, number>)) {
      const got = fields.get(field)!;
      expect(Math.abs(got - want), `${field}: ours ${got} vs guest ${want}`).toBeLessThanOrEqual(tolerance[field] ?? 0);
    }
    expect(report.sections.buddyinfo!.zones.map((z) => [z.node, z.zone, z.free])).toEqual(
      (truth.at_end.buddyinfo as { node: number; zone: string; free: number[] }[]).map((z) => [z.node, z.zone, z.free]),
    );
  });

  it('filesystem numbers are the guest\'s statfs of its rootfs', () => {
    const fs = report.sections.statfs!;
    const st = truth.statfs;
    expect(fs.filesystem).toBe('ext4');
    expect(fs.df.sizeBytes).toBe(st.f_blocks * st.f_bsize);
    expect(fs.statfs.fBfree * fs.statfs.fFrsize).toBe(st.f_bfree * st.f_bsize);
    expect(fs.df.availBytes).toBe(st.f_bavail * st.f_bsize);
    expect(fs.df.inodes).toBe(st.f_files);
    expect(fs.df.inodesFree).toBe(st.f_ffree);
  });
  it('kernel log tail is the guest\'s newest /dev/kmsg records, with its count of err-or-worse lines', () => {
    const log = report.sections.dmesg!;
    const want = (truth.dmesg as { ts_usec: number; text: string; level: number; seq: number }[]).slice(-log.records.length);
    // /dev/kmsg escapes unprintable bytes and backslashes as \xNN; the ring buffer holds the bytes themselves.
    const kmsgText = (t: string) => t.replace(/\\x([0-9a-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
    expect(log.records.map((l) => l.text)).toEqual(want.map((r) => kmsgText(r.text)));
    expect(log.records.map((l) => l.tsUsec)).toEqual(want.map((r) => r.ts_usec));
    expect(log.total).toBe((truth.dmesg as { seq: number }[]).at(-1)!.seq + 1);
    // truth holds the newest 200 records only: the whole log has at least their err-or-worse lines
    expect(log.errorsOrWorse).toBeGreaterThanOrEqual((truth.dmesg as { level: number }[]).filter((r) => r.level <= 3).length);
  });
});

describe('report formats', () => {
  it('Prometheus output parses and carries the truth under node_exporter names', () => {
    const r = run(['report', '--prometheus', '--instance', 'hv1']);
    expect(r.status, r.stderr).toBe(0);
    const families = parsePrometheusTextFormat(r.stdout) as { name: string; metrics: { value: string; labels?: Record<string, string> }[] }[];
    const value = (name: string) => Number(families.find((f) => f.name === name)?.metrics[0]?.value);
    expect(value('node_memory_MemTotal_bytes')).toBe(truth.meminfo.MemTotal * 1024);
    expect(value('node_filesystem_avail_bytes')).toBe(truth.statfs.f_bavail * truth.statfs.f_bsize);
    expect(value('node_filesystem_files_free')).toBe(truth.statfs.f_ffree);
    expect(families.find((f) => f.name === 'node_uname_info')?.metrics[0]?.labels).toMatchObject({ nodename: truth.hostname, release: truth.uname.release, vm: 'sample', instance: 'hv1' });
  });

  it('--textfile writes the exposition atomically and nothing to stdout', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nf-textfile-'));
    const file = join(dir, 'nearfield.prom');
    const r = run(['report', '--textfile', file]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe('');
    expect(readFileSync(file, 'utf8')).toMatch(/^# HELP /);
    expect(readdirSync(dir)).toEqual(['nearfield.prom']);
  });

  it('vhostmd XML has the DTD\'s structure and the guest\'s MemTotal', () => {
    const r = run(['report', '--vhostmd']);
    expect(r.status, r.stderr).toBe(0);
    const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '', isArray: (n) => n === 'metric', parseTagValue: false }).parse(r.stdout);
    const metrics = doc.metrics.metric as { type: string; context: string; name: string; value: string }[];
    for (const m of metrics) {
      expect(['int32', 'uint32', 'int64', 'uint64', 'real32', 'real64', 'string']).toContain(m.type);
      expect(m.context).toBe('vm');
    }
    expect(metrics.find((m) => m.name === 'MemTotalKiB')?.value).toBe(String(truth.meminfo.MemTotal));
  });

  it('the table names the sections an operator expects', () => {
    const r = run(['report']);
    expect(r.status, r.stderr).toBe(0);
    for (const heading of ['-- system', '-- memory', '-- free pages (buddy)', '-- processes', '-- filesystems']) expect(r.stdout).toContain(heading);
    expect(r.stdout).toContain(truth.hostname);
  });
});

describe('report over several VMs', () => {
  it('reads them in parallel; a broken one is reported as failed without hiding the others (exit 3)', () => {
    const root = mkdtempSync(join(tmpdir(), 'nf-multi-'));
    for (const name of ['vm-a', 'vm-b']) {
      const dir = join(root, name);
      symlinkSync(s.dir, dir);
    }
    // A VM whose RAM file was cut short: its collectors fail with a one-line reason naming the file.
    const broken = join(root, 'vm-c');
    mkdirSync(broken);
    copyFileSync(s.ram, join(broken, 'ram.raw'));
    const fd = openSync(join(broken, 'ram.raw'), 'r+');
    ftruncateSync(fd, 4 << 20);
    closeSync(fd);

    const r = run(['report', join(root, 'vm-*'), '--json', '--parallel', '2']);
    expect(r.status, r.stderr).toBe(3);
    const reports = JSON.parse(r.stdout) as VmReport[];
    expect(reports.map((x) => x.vm)).toEqual(['vm-a', 'vm-b', 'vm-c']);
    expect(reports[0]!.sections.meminfo!.fields[0]).toEqual({ name: 'MemTotal', value: truth.meminfo.MemTotal, unit: 'kB' });
    expect(reports[1]!.sections.processes!.processes).toBe(truthPids().size);
    // its RAM cannot be opened: one error for the source, not one per collector reading it
    expect(reports[2]!.up).toBe(false);
    expect(reports[2]!.errors).toHaveLength(1);
    expect(reports[2]!.errors[0]!.collector).toBe('ram');
    expect(reports[2]!.errors[0]!.message).toContain(join(broken, 'ram.raw'));
    expect(r.stderr.match(/^nearfield: report vm-c: /gm)).toHaveLength(1);
    expect(r.stderr).toMatch(/^nearfield: report vm-c: ram: /m);
  });

  it('a stray file, an empty directory and a bad manifest in the glob are reported as down; the others are read (exit 3)', () => {
    const root = mkdtempSync(join(tmpdir(), 'nf-odd-'));
    symlinkSync(s.dir, join(root, 'vm-a'));
    writeFileSync(join(root, 'README'), 'snapshots live here\n');
    mkdirSync(join(root, 'empty'));
    mkdirSync(join(root, 'badman'));
    writeFileSync(join(root, 'badman', 'manifest.json'), '{ not json');
    const reasons = { README: /^not a snapshot directory/, badman: /^manifest is not valid JSON/, empty: /^no RAM file or disk image in the directory/ };

    const json = run(['report', join(root, '*'), '--json']);
    expect(json.status, json.stderr).toBe(3);
    const reports = JSON.parse(json.stdout) as VmReport[];
    expect(reports.map((x) => [x.vm, x.up])).toEqual([['README', false], ['badman', false], ['empty', false], ['vm-a', true]]);
    for (const [vm, reason] of Object.entries(reasons)) {
      const r = reports.find((x) => x.vm === vm)!;
      expect(r.errors).toHaveLength(1);
      expect(r.errors[0]!.collector).toBe('target');
      expect(r.errors[0]!.message).toMatch(reason);
      // printed once, on stderr (the JSON carries it too)
      expect(json.stderr.match(new RegExp(`^nearfield: report ${vm}: `, 'gm'))).toHaveLength(1);
    }
    expect(reports[3]!.sections.meminfo!.fields[0]!.value).toBe(truth.meminfo.MemTotal);

    // the cron job's textfile is still written, with the bad ones down and why
    const prom = join(root, 'nf.prom');
    const t = run(['report', join(root, '*'), '--textfile', prom]);
    expect(t.status).toBe(3);
    const families = parsePrometheusTextFormat(readFileSync(prom, 'utf8')) as { name: string; metrics: { value: string; labels?: Record<string, string> }[] }[];
    const up = families.find((f) => f.name === 'nearfield_target_up')!.metrics.map((m) => [m.labels!.vm, m.value]);
    expect(up).toEqual([['README', '0'], ['badman', '0'], ['empty', '0'], ['vm-a', '1']]);
    const why = families.find((f) => f.name === 'nearfield_target_error_info')!.metrics;
    for (const [vm, reason] of Object.entries(reasons)) expect(why.find((m) => m.labels!.vm === vm)!.labels!.reason).toMatch(reason);
    expect(families.find((f) => f.name === 'node_memory_MemTotal_bytes')!.metrics.map((m) => m.labels!.vm)).toEqual(['vm-a']);

    // the table says FAILED with the reason, and does not repeat it on stderr
    const table = run(['report', join(root, '*')]);
    expect(table.status).toBe(3);
    expect(table.stdout).toMatch(/^== README \(.*README\) — FAILED: not a snapshot directory/m);
    expect(table.stderr).toBe('');
    rmSync(root, { recursive: true, force: true });
  });

  it('every target down: exit 1, still one report each', () => {
    const root = mkdtempSync(join(tmpdir(), 'nf-down-'));
    mkdirSync(join(root, 'empty'));
    const r = run(['report', join(root, 'empty'), '--json']);
    expect(r.status).toBe(1);
    expect((JSON.parse(r.stdout) as VmReport[]).map((x) => [x.vm, x.up])).toEqual([['empty', false]]);
    rmSync(root, { recursive: true, force: true });
  });

  it('a glob that matches nothing is a one-line error, exit 1', () => {
    const r = run(['report', join(tmpdir(), 'nf-no-such-*')]);
    expect(r.status).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^nearfield: report: no snapshot directory matches/);
  });
});

