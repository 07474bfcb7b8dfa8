// `nearfield exporter` and Graphite against real components started here on loopback: a Prometheus server scrapes the
// exporter and its query API must return the sample guest's own MemFree; a carbon-cache receives `report --graphite`
// and its whisper file must hold it. Also: /healthz, one failing VM costing only its own collector_success, SIGHUP
// rescans, a replaced snapshot is rediscovered, SIGTERM stops cleanly. Truth: the sample's truth.json (at_end).

import { describe, expect, it, beforeAll, afterAll } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, symlinkSync, readdirSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, readTruth, sample, type Sample, type Truth } from './walkers-helpers.js';
import { promQuery, sleep, startCarbon, startPrometheus, waitFor, type Service } from './services.js';
import { renderGraphite, sanitize, GraphiteClient } from '../src/report/render/graphite.js';
import { parseConfig, parseVmSpec } from '../src/exporter/exporter.js';
import { createServer } from 'node:net';

let s: Sample;
let truth: Truth;
let work: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  s = await sample();
  truth = readTruth(s);
  work = mkdtempSync(join(tmpdir(), 'nf-exporter-'));
});

afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

interface Running { child: ChildProcess; port: number; log: () => string; exited: Promise<number | null> }

/** Start the exporter on a free port (port 0), read the port from its log line. */
async function exporter(args: string[]): Promise<Running> {
  const child = spawn(process.execPath, [cli, 'exporter', '--listen', '127.0.0.1:0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let log = '';
  child.stderr!.on('data', (d) => (log += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  let port = 0;
  await waitFor(() => {
    const m = /listening on http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(log);
    if (m) port = Number(m[1]);
    return port > 0;
  }, 30_000, `exporter start\n${log}`);
  return { child, port, log: () => log, exited };
}

const metricsOf = async (port: number) => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
const sampleValue = (text: string, name: string, vm: string) => {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{vm="${vm}"`) || l.startsWith(`${name}{vm="${vm}",`));
  return line === undefined ? undefined : Number(line.split(' ').pop());
};

describe('exporter', () => {
  it('serves every VM, resident, with node_exporter names and a vm label; a failing VM costs only its own collector_success', async () => {
    const e = await exporter(['--vm', `a=${s.dir}`, '--vm', `b=${s.dir}`, '--vm', 'broken=/nonexistent/snap']);
    const first = await metricsOf(e.port);
    const second = await metricsOf(e.port);
    for (const text of [first, second]) {
      for (const vm of ['a', 'b']) {
        expect(sampleValue(text, 'node_memory_MemFree_bytes', vm)).toBe(truth.at_end.meminfo.MemFree * 1024);
        expect(sampleValue(text, 'node_memory_MemTotal_bytes', vm)).toBe(truth.meminfo.MemTotal * 1024);
        expect(text).toMatch(new RegExp(`nearfield_collector_success\\{vm="${vm}",collector="memory"\\} 1`));
      }
      expect(text).toMatch(/nearfield_collector_success\{vm="broken",collector="memory"\} 0/);
      expect(text).not.toMatch(/node_memory_MemFree_bytes\{vm="broken"/);
      expect(text).toMatch(/nearfield_torn_reads_total\{vm="a"\} 0/);
    }
    const health = (await (await fetch(`http://127.0.0.1:${e.port}/healthz`)).json()) as { status: string; vms: { vm: string; status: string }[] };
    expect(health.status).toBe('ok');
    expect(Object.fromEntries(health.vms.map((v) => [v.vm, v.status]))).toEqual({ a: 'up', b: 'up', broken: 'down' });
    // one log line per state change, not per scrape
    expect(e.log().match(/vm a: up/g)?.length).toBe(1);
    expect(e.log().match(/vm broken: down/g)?.length).toBe(1);
    e.child.kill('SIGTERM');
    expect(await e.exited).toBe(0);
    expect(e.log()).toMatch(/SIGTERM: shutting down/);
  });

  it('rescans its directory on SIGHUP and rediscovers a VM whose snapshot was replaced', async () => {
    const dir = join(work, 'vms');
    const other = join(work, 'other');
    for (const d of [dir, other]) rmSync(d, { recursive: true, force: true });
    spawnSync('mkdir', ['-p', dir, join(other, 'web')]);
    symlinkSync(s.dir, join(dir, 'web1'));
    // a second snapshot directory holding the sample's files under other names
    for (const f of ['ram.raw', 'manifest.json']) symlinkSync(join(s.dir, f), join(other, 'web', f));
    const e = await exporter(['--dir', dir]);
    let text = await metricsOf(e.port);
    expect(sampleValue(text, 'node_memory_MemFree_bytes', 'web1')).toBe(truth.at_end.meminfo.MemFree * 1024);
    expect(text).not.toMatch(/vm="web2"/);
    symlinkSync(join(other, 'web'), join(dir, 'web2'));
    e.child.kill('SIGHUP');
    await waitFor(() => /SIGHUP: rescanned; 1 added \(web2\)/.test(e.log()), 10_000, e.log());
    text = await metricsOf(e.port);
    expect(sampleValue(text, 'node_memory_MemFree_bytes', 'web2')).toBe(truth.at_end.meminfo.MemFree * 1024);
    // replace web2's RAM file by a new one (as a new snapshot would): the exporter notices and rediscovers it
    const ram = join(other, 'web', 'ram.raw');
    rmSync(ram);
    symlinkSync(join(s.dir, 'core.elf'), join(other, 'web', 'ram.raw.new'));
    renameSync(join(other, 'web', 'ram.raw.new'), ram);
    text = await metricsOf(e.port);
    expect(e.log()).toMatch(/vm web2: its RAM file was replaced; rediscovering/);
    expect(sampleValue(text, 'node_memory_MemFree_bytes', 'web2')).toBe(truth.at_end.meminfo.MemFree * 1024);
    e.child.kill('SIGTERM');
    expect(await e.exited).toBe(0);
  });

  it('reads NAME=TARGET specs and config files', () => {
    expect(parseVmSpec('web=qmp:/run/web.sock')).toEqual({ name: 'web', target: 'qmp:/run/web.sock' });
    expect(parseConfig('# vms\nweb1=/snaps/web1\n\ndb pid:1234  # the database\n', 'f')).toEqual([
      { name: 'web1', target: '/snaps/web1' }, { name: 'db', target: 'pid:1234' },
    ]);
    expect(() => parseVmSpec('justaname')).toThrow(/NAME=TARGET/);
  });
});

describe('a real Prometheus scraping the exporter', () => {
  let prom: Service | undefined;
  afterAll(async () => prom?.stop());

  it('stores node_memory_MemFree_bytes{vm} equal to the guest\'s own MemFree', async () => {
    const e = await exporter(['--vm', `sample=${s.dir}`]);
    prom = await startPrometheus([`127.0.0.1:${e.port}`]);
    let got: { metric: Record<string, string>; value: number }[] = [];
    await waitFor(async () => (got = await promQuery(prom!.port, 'node_memory_MemFree_bytes{vm="sample"}')).length > 0, 30_000, `prometheus scrape\n${prom.log()}`);
    expect(got[0]!.value).toBe(truth.at_end.meminfo.MemFree * 1024);
    expect(got[0]!.metric.job).toBe('nearfield');
    const up = await promQuery(prom.port, 'up{job="nearfield"}');
    expect(up[0]!.value).toBe(1);
    e.child.kill('SIGTERM');
    expect(await e.exited).toBe(0);
  });
});

describe('Graphite', () => {
  let carbon: (Service & { whisper: string }) | undefined;
  afterAll(async () => carbon?.stop());

  it('names paths nearfield.<vm>.<group>.<metric>, sanitised, with label values or 1.1 tags', () => {
    const r = { vm: 'web.1 prod', collectedAt: '2026-01-01T00:00:00Z', errors: [], durationMs: 5, tornReads: 0, retries: 0, warnings: [], sections: {} } as never;
    const collector = { name: 'memory', needs: 'ram', order: 1, collect() {}, prometheus: (_r: unknown, m: { gauge: Function }) => {
      m.gauge('node_memory_MemFree_bytes', '', 1024);
      m.gauge('node_buddyinfo_blocks', '', 7, { node: '0', zone: 'Normal', size: '3' });
    } } as never;
    const lines = renderGraphite([r], [collector]);
    expect(lines).toContain('nearfield.web_1_prod.memory.MemFree_bytes 1024 1767225600');
    expect(lines).toContain('nearfield.web_1_prod.memory.buddyinfo_blocks.0.3.Normal 7 1767225600');
    expect(renderGraphite([r], [collector], { tags: true })).toContain('nearfield.web_1_prod.memory.buddyinfo_blocks;node=0;size=3;zone=Normal 7 1767225600');
    expect(sanitize('a.b/c d')).toBe('a_b_c_d');
  });

  it('buffers while the server is down, drops the oldest beyond the bound, and delivers after reconnecting', async () => {
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const p = (probe.address() as { port: number }).port;
        probe.close(() => resolve(p));
      });
    });
    const client = new GraphiteClient('127.0.0.1', port, { maxBuffered: 3, minBackoffMs: 50, maxBackoffMs: 100 });
    client.send(['a 1 1', 'b 2 1', 'c 3 1', 'd 4 1', 'e 5 1']);
    await sleep(150);
    expect(client.dropped).toBe(2);
    const received: string[] = [];
    const server = createServer((sock) => sock.on('data', (d) => received.push(...d.toString().split('\n').filter(Boolean)))).listen(port, '127.0.0.1');
    await client.flush(5000);
    await waitFor(() => received.length === 3, 5000, 'lines received');
    expect(received).toEqual(['c 3 1', 'd 4 1', 'e 5 1']);
    client.close();
    server.close();
  });

  it('report --graphite reaches a real carbon-cache, whose whisper file holds the guest\'s MemFree', async () => {
    carbon = await startCarbon();
    const r = spawnSync(process.execPath, [cli, 'report', s.dir, '--graphite', `127.0.0.1:${carbon.port}`], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/sent \d+ lines to Graphite/);
    const file = join(carbon.whisper, 'nearfield', 'sample', 'memory', 'MemFree_bytes.wsp');
    await waitFor(() => existsSync(file), 30_000, `whisper file ${file}\n${carbon.log()}`);
    let values: number[] = [];
    await waitFor(() => {
      const f = spawnSync('whisper-fetch', ['--from', String(Math.floor(Date.now() / 1000) - 600), file], { encoding: 'utf8' });
      values = f.stdout.split('\n').map((l) => l.split('\t')[1]).filter((v) => v && v !== 'None').map(Number);
      return values.length > 0;
    }, 30_000, 'a stored point');
    expect(values).toEqual([truth.at_end.meminfo.MemFree * 1024]);
    expect(readdirSync(join(carbon.whisper, 'nearfield', 'sample')).sort()).toEqual(expect.arrayContaining(['memory', 'uptime', 'processes', 'nearfield']));
  });
});

