// Real services the tests start on loopback with throwaway config and data (installed by .ci/setup): a Prometheus
// server and a carbon-cache (Graphite). Each picks free ports, waits until it answers, and is stopped by `stop()`.

import { spawn, type ChildProcess } from 'node:child_process';
import { createConnection, createServer } from 'node:net';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Service { port: number; dir: string; log: () => string; stop(): Promise<void> }

function started(child: ChildProcess, dir: string, port: number, out: { text: string }): Service {
  child.stdout?.on('data', (d) => (out.text += d));
  child.stderr?.on('data', (d) => (out.text += d));
  return {
    port,
    dir,
    log: () => out.text,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await Promise.race([gone, sleep(5000)]);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Poll `check` until it is true or `ms` pass. */
export async function waitFor(check: () => Promise<boolean> | boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(200);
  }
}

/** A Prometheus server (Debian `prometheus`) scraping `targets` every second. */
export async function startPrometheus(targets: string[]): Promise<Service> {
  const dir = mkdtempSync(join(tmpdir(), 'nf-prom-'));
  const port = await freePort();
  writeFileSync(join(dir, 'prometheus.yml'), [
    'global:', '  scrape_interval: 1s', '  scrape_timeout: 1s', 'scrape_configs:', '  - job_name: nearfield', '    static_configs:',
    `      - targets: [${targets.map((t) => `'${t}'`).join(', ')}]`, '',
  ].join('\n'));
  const child = spawn('prometheus', [
    `--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { text: '' };
  const svc = started(child, dir, port, out);
  await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/-/ready`)).ok, 30_000, `prometheus ready\n${out.text}`);
  return svc;
}

/** Instant query through Prometheus's HTTP API: the samples' labels and values. */
export async function promQuery(port: number, query: string): Promise<{ metric: Record<string, string>; value: number }[]> {
  const r = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(query)}`);
  const body = (await r.json()) as { status: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
  if (body.status !== 'success') throw new Error(`query ${query}: ${JSON.stringify(body)}`);
  return body.data.result.map((s) => ({ metric: s.metric, value: Number(s.value[1]) }));
}

/** A carbon-cache (Debian `graphite-carbon`) with its line receiver on a free port, whisper files under `dir`. */
export async function startCarbon(): Promise<Service & { whisper: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'nf-carbon-'));
  const [line, pickle, query] = [await freePort(), await freePort(), await freePort()];
  const storage = join(dir, 'storage');
  mkdirSync(join(dir, 'log'), { recursive: true });
  writeFileSync(join(dir, 'carbon.conf'), [
    '[cache]', `STORAGE_DIR = ${storage}`, `LOCAL_DATA_DIR = ${join(storage, 'whisper')}`, `WHITELISTS_DIR = ${join(storage, 'lists')}`,
    `CONF_DIR = ${dir}`, `LOG_DIR = ${join(dir, 'log')}`, `PID_DIR = ${dir}`, 'ENABLE_LOGROTATION = False', 'USER =',
    'MAX_CACHE_SIZE = inf', 'MAX_UPDATES_PER_SECOND = 100000', 'MAX_CREATES_PER_MINUTE = inf', 'ENABLE_TAGS = False',
    'LINE_RECEIVER_INTERFACE = 127.0.0.1', `LINE_RECEIVER_PORT = ${line}`, 'ENABLE_UDP_LISTENER = False',
    'PICKLE_RECEIVER_INTERFACE = 127.0.0.1', `PICKLE_RECEIVER_PORT = ${pickle}`,
    'CACHE_QUERY_INTERFACE = 127.0.0.1', `CACHE_QUERY_PORT = ${query}`, 'LOG_UPDATES = False', 'LOG_CACHE_HITS = False', '',
  ].join('\n'));
  writeFileSync(join(dir, 'storage-schemas.conf'), '[default]\npattern = .*\nretentions = 1s:1h\n');
  const child = spawn('carbon-cache', [`--config=${join(dir, 'carbon.conf')}`, '--nodaemon', 'start'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { text: '' };
  const svc = started(child, dir, line, out);
  await waitFor(() => new Promise<boolean>((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port: line });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  }), 30_000, `carbon-cache listening\n${out.text}`);
  return { ...svc, whisper: join(storage, 'whisper') };
}
