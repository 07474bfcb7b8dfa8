// Live and exporter benchmarks (issue 11): a warm scrape of one VM in-process (process summary, meminfo, buddyinfo,
// uptime, statfs) ≤ 5 ms; 50 VMs (the sample opened 50 times) in one exporter scraped in < 500 ms; the exporter's RSS
// ≤ 150 MB + 2 MB per VM; live reads of a 512 MiB running guest through the process source ≥ 20 crawls (ps + meminfo)/s.

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { samplePaths, resolveTarget } from '../src/target.js';
import { closeHandles, collectWith, openHandles } from '../src/report/collect.js';
import { loadCollectors } from '../src/report/collectors.js';
import { Guest } from '../src/guest.js';
import { resolveLiveRam } from '../src/live/qemu.js';
import { QmpClient } from '../src/snapshot/qmp.js';
import { cliPath, median, row, timeInProcess } from './util.js';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export async function benchScrapeOneVm(): Promise<void> {
  const s = await samplePaths();
  const target = await resolveTarget(s.dir, {});
  const all = await loadCollectors();
  const subset = all.filter((c) => ['processes', 'memory', 'buddyinfo', 'uptime', 'filesystems'].includes(c.name));
  const h = await openHandles(target, {});
  try {
    const opts = { top: 5 };
    const warm = await timeInProcess(() => collectWith(target, h, opts, subset), 31, 3);
    row('warm scrape of one VM, 5 collectors (in-process)', `${warm.toFixed(2)} ms median of 31 (target ≤ 5 ms)`);
    const full = await timeInProcess(() => collectWith(target, h, opts, all), 15, 2);
    row(`warm scrape of one VM, all ${all.length} collectors (in-process)`, `${full.toFixed(2)} ms median of 15`);
  } finally {
    closeHandles(h);
  }
}

export async function benchExporter50(): Promise<void> {
  const s = await samplePaths();
  const vms = Array.from({ length: 50 }, (_, i) => ['--vm', `vm${i + 1}=${s.dir}`]).flat();
  const child = spawn(process.execPath, [cliPath, 'exporter', '--listen', '127.0.0.1:0', ...vms], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d) => (log += d));
  try {
    let port = 0;
    for (let i = 0; i < 300 && !port; i++) {
      port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(log)?.[1] ?? 0);
      if (!port) await new Promise((r) => setTimeout(r, 100));
    }
    if (!port) throw new Error(`exporter did not start: ${log}`);
    const scrape = async () => {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      if (!text.includes('node_memory_MemFree_bytes{vm="vm50"}')) throw new Error('vm50 missing from the scrape');
    };
    const t0 = performance.now();
    await scrape();
    row('exporter, 50 VMs, first scrape (opens every VM)', `${(performance.now() - t0).toFixed(0)} ms`);
    const times: number[] = [];
    for (let i = 0; i < 9; i++) {
      const t = performance.now();
      await scrape();
      times.push(performance.now() - t);
    }
    row('exporter, 50 VMs, warm scrape over HTTP', `${median(times).toFixed(0)} ms median of 9 (target < 500 ms)`);
    const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]);
    row('exporter RSS after 10 scrapes of 50 VMs', `${(kb('VmRSS') / 1024).toFixed(0)} MB (peak ${(kb('VmHWM') / 1024).toFixed(0)} MB; target ≤ ${150 + 2 * 50} MB)`);
  } finally {
    child.kill('SIGTERM');
  }
}

/** A 512 MiB guest with anonymous RAM, booted for this benchmark (NEARFIELD_BENCH_LIVE_QMP reuses a running one). */
export async function benchLiveCrawls(): Promise<void> {
  let qmp = process.env.NEARFIELD_BENCH_LIVE_QMP;
  let work: string | undefined;
  let pid: number | undefined;
  if (!qmp) {
    work = mkdtempSync(join(tmpdir(), 'nf-bench-live-'));
    const code = await new Promise<number | null>((resolve) => {
      const b = spawn(process.execPath, [join(repo, 'images', 'build-guest.mjs'), '--out', work!, '--keep-running', '--anon-ram', '--mem', '512M', '--timeout', '500'], { stdio: 'ignore' });
      b.on('exit', resolve);
    });
    const running = join(work, 'running.json');
    if (code !== 0 || !existsSync(running)) throw new Error('the 512 MiB live guest did not boot (images/build-guest.mjs --keep-running --anon-ram)');
    ({ qmp, pid } = JSON.parse(readFileSync(running, 'utf8')) as { qmp: string; pid: number });
  }
  try {
    const live = await resolveLiveRam({ qmp });
    const guest = await Guest.open({ ram: 'live', pid: live.pid, processMap: live.map, processMapSource: live.mapSource });
    const crawl = () => {
      guest.tasks({ cmdline: true });
      guest.meminfo();
    };
    const per = await timeInProcess(crawl, 41, 3);
    let n = 0;
    const until = performance.now() + 5000;
    while (performance.now() < until) {
      crawl();
      n++;
    }
    const c = guest.takeConsistency();
    const tasks = guest.tasks().tasks.length;
    guest.close();
    row(`live crawl (ps with cmdlines + meminfo), 512 MiB guest, ${tasks} tasks`, `${per.toFixed(1)} ms median of 41; ${(n / 5).toFixed(0)} crawls/s over 5 s (target ≥ 20/s); ${c.retries} retries`);
  } finally {
    if (work) {
      const q = await QmpClient.connect(qmp!, 5000).catch(() => undefined);
      await q?.execute('quit').catch(() => undefined);
      q?.close();
      if (pid) try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      rmSync(work, { recursive: true, force: true });
    }
  }
}
